package vtep

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func nlmsg(typ uint16, body []byte) []byte {
	b := make([]byte, nlmsgHdrLen, nlmsgHdrLen+len(body)+3)
	binary.NativeEndian.PutUint32(b[0:4], uint32(nlmsgHdrLen+len(body)))
	binary.NativeEndian.PutUint16(b[4:6], typ)
	b = append(b, body...)
	return append(b, make([]byte, rtaAlign(len(b))-len(b))...)
}

func TestEachMessage(t *testing.T) {
	n1 := neighMsg(afBridge, 12, 0x02, 0, "02:00:00:00:00:01", 10, 0)
	n2 := neighMsg(afBridge, 11, 0x02, 0, "02:00:00:00:00:02", 10, 0)
	errMsg := nlmsg(nlmsgError, binary.NativeEndian.AppendUint32(nil, uint32(^uint32(unix.ENOBUFS)+1)))
	dgram := slices.Concat(nlmsg(rtmNewNeigh, n1), nlmsg(3 /* NLMSG_DONE */, nil), nlmsg(rtmDelNeigh, n2))
	var got []uint16
	var bodies [][]byte
	fn := func(typ uint16, b []byte) { got = append(got, typ); bodies = append(bodies, slices.Clone(b)) }
	if err := eachMessage(dgram, fn); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []uint16{rtmNewNeigh, rtmDelNeigh}) || !slices.Equal(bodies[0], n1) || !slices.Equal(bodies[1], n2) {
		t.Errorf("messages %v %x", got, bodies)
	}
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"truncated":           {dgram[:len(dgram)-4], errMalformed},
		"header cut":          {dgram[:10], errMalformed},
		"length below header": {append(make([]byte, 0, 16), 8, 0, 0, 0, 28, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), errMalformed},
		"NLMSG_ERROR":         {errMsg, unix.ENOBUFS},
	} {
		if err := eachMessage(tc.b, func(uint16, []byte) {}); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

// The event socket is connected to the kernel, so another socket cannot
// unicast fake notifications to it.
func TestEventSocketRefusesUnicast(t *testing.T) {
	leaf, _ := testNS(t, "vtu")
	ns := nsHandle(t, leaf)
	s, err := openEvents(ns, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sa, err := unix.Getsockname(s.fd)
	if err != nil {
		t.Fatal(err)
	}
	pid := sa.(*unix.SockaddrNetlink).Pid
	fake := nlmsg(rtmNewNeigh, neighMsg(afBridge, 12, 0x02, 0, "02:00:00:00:00:01", 10, 0))
	err = inNetns(ns, func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, fake, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: pid})
	})
	if !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("unicast to the event socket (port %d): %v, want ECONNREFUSED", pid, err)
	}
}
