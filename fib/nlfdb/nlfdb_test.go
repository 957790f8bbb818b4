package nlfdb

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/evpnd/evpnd/speaker/evpn"
)

func attr(typ uint16, v []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(rtaHdrLen+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func ndmsg(family uint8, ifindex int32, state uint16, flags uint8, attrs ...[]byte) []byte {
	b := make([]byte, NdmsgLen)
	b[0] = family
	binary.NativeEndian.PutUint32(b[4:], uint32(ifindex))
	binary.NativeEndian.PutUint16(b[8:], state)
	b[10] = flags
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func TestParse(t *testing.T) {
	mac := evpn.MAC{2, 0, 0, 0, 0, 7}
	mapped := netip.AddrFrom16(netip.MustParseAddr("::ffff:10.0.0.9").As16())
	msg := ndmsg(7, 42, 0x40, 0x12,
		attr(NdaLLAddr, mac[:]),
		attr(NdaDst, mapped.AsSlice()),
		attr(NdaMaster|0x8000, u32(5)), // a flag bit in the type is masked off
		attr(NdaVNI, u32(300)),
		attr(NdaFlagsExt, u32(1)),
		attr(99, []byte{1, 2, 3}), // unknown: skipped
	)
	n, ok := Parse(msg)
	got, macOK := n.MAC()
	if !ok || !macOK || got != mac || n.Family != 7 || n.Ifindex != 42 || n.State != 0x40 || n.Flags != 0x12 ||
		n.Dst != netip.MustParseAddr("10.0.0.9") || n.Master != 5 || n.VNI != 300 || n.FlagsExt != 1 {
		t.Errorf("Parse = %+v, %v", n, ok)
	}

	short := ndmsg(7, 42, 0, 0, attr(NdaLLAddr, []byte{1, 2, 3}))
	if n, ok := Parse(short); !ok {
		t.Error("a 3-byte lladdr is well formed")
	} else if _, macOK := n.MAC(); macOK {
		t.Error("a 3-byte lladdr is not a MAC")
	}
	for name, b := range map[string][]byte{
		"shorter than ndmsg":     msg[:NdmsgLen-1],
		"attribute overruns":     msg[:NdmsgLen+rtaHdrLen+3],
		"attribute below header": append(ndmsg(7, 1, 0, 0, attr(NdaLLAddr, mac[:])), 2, 0, 2, 0),
	} {
		if _, ok := Parse(b); ok {
			t.Errorf("%s: parsed", name)
		}
	}
	// The attributes before a malformed one are decoded.
	if n, _ := Parse(append(ndmsg(7, 1, 0, 0, attr(NdaMaster, u32(9))), 2, 0, 2, 0)); n.Master != 9 {
		t.Errorf("attributes before a bad one: %+v", n)
	}
}

func TestMessages(t *testing.T) {
	nlmsg := func(typ uint16, payload []byte) []byte {
		b := binary.NativeEndian.AppendUint32(nil, uint32(NlmsgHdrLen+len(payload)))
		b = binary.NativeEndian.AppendUint16(b, typ)
		b = append(b, make([]byte, NlmsgHdrLen-6)...)
		b = append(b, payload...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	buf := append(nlmsg(28, []byte{1, 2, 3}), nlmsg(29, nil)...)
	var typs []uint16
	var lens []int
	if err := Messages(buf, func(typ uint16, p []byte) { typs, lens = append(typs, typ), append(lens, len(p)) }); err != nil {
		t.Fatal(err)
	}
	if len(typs) != 2 || typs[0] != 28 || lens[0] != 3 || typs[1] != 29 || lens[1] != 0 {
		t.Errorf("messages %v of lengths %v, want 28 (3 bytes) and 29 (none)", typs, lens)
	}
	n := 0
	buf = append(nlmsg(29, nil), nlmsg(28, []byte{1, 2, 3, 4, 5})...)
	if err := Messages(buf[:len(buf)-4], func(uint16, []byte) { n++ }); err == nil || n != 1 {
		t.Errorf("truncated: %d messages, err %v; want the first and an error", n, err)
	}
}
