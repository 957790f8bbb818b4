package vtep

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// The per-port FDB dump request must have zero padding: under strict
// checking the kernel answers EINVAL otherwise (seen with netlink.Ndmsg,
// whose padding comes from Go memory).
func TestNdmsgFilterZeroPadding(t *testing.T) {
	b := ndmsgFilter{ifindex: 0x01020304}.Serialize()
	if len(b) != unix.SizeofNdMsg {
		t.Fatalf("len %d, want %d", len(b), unix.SizeofNdMsg)
	}
	want := make([]byte, unix.SizeofNdMsg)
	want[0] = unix.AF_BRIDGE
	binary.NativeEndian.PutUint32(want[4:8], 0x01020304)
	if !bytes.Equal(b, want) {
		t.Fatalf("ndmsg % x, want % x", b, want)
	}
}
