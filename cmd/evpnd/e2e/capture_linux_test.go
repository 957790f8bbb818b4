package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/evpnd/evpnd/containerlab/netns"
	"golang.org/x/sys/unix"
)

// vxlanPort is the VXLAN UDP port of the labs (IANA's, RFC 7348).
const vxlanPort = 4789

// resolution is an address resolution request carried in a VXLAN frame:
// an ARP request or an IPv6 Neighbor Solicitation, as its inner frame
// shows it.
type resolution struct {
	At        time.Time
	Outgoing  bool // sent by the node (PACKET_OUTGOING), else received
	VNI       uint32
	InnerDst  net.HardwareAddr
	Target    netip.Addr // the address being resolved
	Broadcast bool       // a broadcast ARP or a multicast NS (not a unicast probe)
}

func (r resolution) String() string {
	kind, dir := "ARP request", "received"
	if r.Target.Is6() {
		kind = "NS"
	}
	if r.Outgoing {
		dir = "sent"
	}
	return fmt.Sprintf("%s %s %s for %s in VNI %d to %s", r.At.Format("15:04:05.000000"), dir, kind, r.Target, r.VNI, r.InnerDst)
}

// fabricCapture reads every frame of one link of a node with an
// AF_PACKET socket, both directions, and keeps the ARP requests and
// Neighbor Solicitations found inside VXLAN frames: the address
// resolution that crossed the fabric.
type fabricCapture struct {
	node, link string
	fd         int
	done       chan struct{}
	wg         sync.WaitGroup

	mu     sync.Mutex
	frames int // every frame read
	vxlan  int // VXLAN frames among them
	res    []resolution
	err    error
}

// captureFabric starts a capture on link in ns (the socket is bound
// before it returns, so everything the link carries from then on is
// seen). t.Cleanup stops it.
func captureFabric(t *testing.T, ns *netns.NS, node, link string) *fabricCapture {
	t.Helper()
	c := &fabricCapture{node: node, link: link, fd: -1, done: make(chan struct{})}
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(link)
		if err != nil {
			return err
		}
		// Protocol 0 receives nothing until bind names the protocol and
		// the link: no frame of another link slips in before.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20); err != nil {
			unix.Close(fd)
			return err
		}
		// Reads wake up every 50 ms to notice stop.
		tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind to %s: %w", link, err)
		}
		c.fd = fd
		return nil
	})
	if err != nil {
		t.Fatalf("capture on %s %s: %v", node, link, err)
	}
	c.wg.Add(1)
	go c.read()
	t.Cleanup(func() { c.stop() })
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *fabricCapture) read() {
	defer c.wg.Done()
	buf := make([]byte, 65536)
	for {
		select {
		case <-c.done:
			return
		default:
		}
		n, from, err := unix.Recvfrom(c.fd, buf, unix.MSG_TRUNC)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			c.mu.Lock()
			c.err = fmt.Errorf("read: %w", err)
			c.mu.Unlock()
			return
		}
		at := time.Now()
		outgoing := false
		if ll, ok := from.(*unix.SockaddrLinklayer); ok {
			outgoing = ll.Pkttype == unix.PACKET_OUTGOING
		}
		r, isVXLAN := decodeVXLANResolution(buf[:min(n, len(buf))])
		c.mu.Lock()
		c.frames++
		if isVXLAN {
			c.vxlan++
		}
		if r != nil {
			r.At, r.Outgoing = at, outgoing
			c.res = append(c.res, *r)
		}
		c.mu.Unlock()
	}
}

// stop ends the capture and returns an error if reading failed or the
// kernel dropped frames for it (then a count of zero proves nothing).
func (c *fabricCapture) stop() error {
	c.mu.Lock()
	select {
	case <-c.done:
		err := c.err
		c.mu.Unlock()
		return err
	default:
	}
	close(c.done)
	c.mu.Unlock()
	c.wg.Wait()
	var st unix.TpacketStats
	size := uint32(unsafe.Sizeof(st))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(c.fd), unix.SOL_PACKET, unix.PACKET_STATISTICS,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&size)), 0)
	unix.Close(c.fd)
	c.mu.Lock()
	defer c.mu.Unlock()
	if errno != 0 {
		c.err = errors.Join(c.err, fmt.Errorf("PACKET_STATISTICS: %w", errno))
	} else if st.Drops > 0 {
		c.err = errors.Join(c.err, fmt.Errorf("the kernel dropped %d of %d frames for the capture", st.Drops, st.Packets))
	}
	return c.err
}

// resolutions returns the resolution requests seen so far for target
// (every one when target is the zero Addr).
func (c *fabricCapture) resolutions(target netip.Addr) []resolution {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []resolution
	for _, r := range c.res {
		if !target.IsValid() || r.Target == target {
			out = append(out, r)
		}
	}
	return out
}

// counts returns the frames and VXLAN frames read so far.
func (c *fabricCapture) counts() (frames, vxlan int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames, c.vxlan
}

// broadcasts keeps the broadcast ARP requests and multicast NS of rs.
func broadcasts(rs []resolution) []resolution {
	return slices.DeleteFunc(slices.Clone(rs), func(r resolution) bool { return !r.Broadcast })
}

// unicasts keeps the unicast requests of rs (probes of a cached entry).
func unicasts(rs []resolution) []resolution {
	return slices.DeleteFunc(slices.Clone(rs), func(r resolution) bool { return r.Broadcast })
}

func resolutionLines(rs []resolution) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString("\n  " + r.String())
	}
	return b.String()
}

// decodeVXLANResolution decodes an Ethernet frame of the underlay. It
// reports whether the frame is VXLAN (IPv4 or IPv6, UDP to vxlanPort),
// and returns the ARP request or Neighbor Solicitation its inner frame
// carries, if any.
func decodeVXLANResolution(b []byte) (*resolution, bool) {
	typ, p, ok := etherPayload(b)
	if !ok {
		return nil, false
	}
	var udp []byte
	switch typ {
	case 0x0800:
		if len(p) < 20 || p[0]>>4 != 4 {
			return nil, false
		}
		ihl := int(p[0]&0x0f) * 4
		if p[9] != unix.IPPROTO_UDP || len(p) < ihl+8 || binary.BigEndian.Uint16(p[6:8])&0x1fff != 0 {
			return nil, false // not UDP, or a later fragment
		}
		udp = p[ihl:]
	case 0x86dd:
		if len(p) < 48 || p[6] != unix.IPPROTO_UDP {
			return nil, false
		}
		udp = p[40:]
	default:
		return nil, false
	}
	if binary.BigEndian.Uint16(udp[2:4]) != vxlanPort || len(udp) < 16 || udp[8]&0x08 == 0 {
		return nil, false
	}
	vni := binary.BigEndian.Uint32(udp[12:16]) >> 8
	inner := udp[16:]
	if len(inner) < 14 {
		return nil, true
	}
	dst := net.HardwareAddr(slices.Clone(inner[:6]))
	ityp, ip, ok := etherPayload(inner)
	if !ok {
		return nil, true
	}
	r := &resolution{VNI: vni, InnerDst: dst}
	switch ityp {
	case 0x0806:
		// htype 1, ptype IPv4, hlen 6, plen 4, op 1 (request).
		if len(ip) < 28 || binary.BigEndian.Uint16(ip[0:2]) != 1 || binary.BigEndian.Uint16(ip[2:4]) != 0x0800 ||
			ip[4] != 6 || ip[5] != 4 || binary.BigEndian.Uint16(ip[6:8]) != 1 {
			return nil, true
		}
		r.Target = netip.AddrFrom4([4]byte(ip[24:28]))
		r.Broadcast = dst.String() == "ff:ff:ff:ff:ff:ff"
	case 0x86dd:
		if len(ip) < 40 {
			return nil, true
		}
		next, off := ip[6], 40
		// Skip extension headers (hop-by-hop, routing, destination).
		for (next == 0 || next == 43 || next == 60) && len(ip) >= off+8 {
			next, off = ip[off], off+(int(ip[off+1])+1)*8
		}
		// ICMPv6 type 135: Neighbor Solicitation, target at 8..24.
		if next != 58 || len(ip) < off+24 || ip[off] != 135 {
			return nil, true
		}
		r.Target = netip.AddrFrom16([16]byte(ip[off+8 : off+24]))
		r.Broadcast = dst[0] == 0x33 && dst[1] == 0x33
	default:
		return nil, true
	}
	return r, true
}

// etherPayload returns the EtherType and payload of an Ethernet frame,
// past any 802.1Q tags.
func etherPayload(b []byte) (uint16, []byte, bool) {
	if len(b) < 14 {
		return 0, nil, false
	}
	typ, p := binary.BigEndian.Uint16(b[12:14]), b[14:]
	for (typ == 0x8100 || typ == 0x88a8) && len(p) >= 4 {
		typ, p = binary.BigEndian.Uint16(p[2:4]), p[4:]
	}
	return typ, p, true
}

// TestDecodeVXLANResolution decodes hand-built underlay frames: VXLAN
// carrying a broadcast ARP request, a multicast NS (behind a hop-by-hop
// header), a unicast ARP probe, an ARP reply, and a non-VXLAN frame.
func TestDecodeVXLANResolution(t *testing.T) {
	outer := func(vni uint32, inner []byte) []byte {
		b := []byte{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00}
		ip := make([]byte, 20)
		ip[0], ip[9] = 0x45, unix.IPPROTO_UDP
		udp := make([]byte, 16)
		binary.BigEndian.PutUint16(udp[0:2], 50000)
		binary.BigEndian.PutUint16(udp[2:4], vxlanPort)
		udp[8] = 0x08
		binary.BigEndian.PutUint32(udp[12:16], vni<<8)
		return slices.Concat(b, ip, udp, inner)
	}
	arp := func(dst []byte, op uint16, target [4]byte) []byte {
		b := slices.Concat(dst, []byte{0x02, 0, 0, 0, 1, 0x11, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, byte(op)})
		b = append(b, make([]byte, 16)...) // sender MAC, IP, target MAC
		return append(b, target[:]...)
	}
	ns := func(target netip.Addr) []byte {
		b := []byte{0x33, 0x33, 0xff, 0, 0, 0x12, 0x02, 0, 0, 0, 1, 0x11, 0x86, 0xdd}
		ip := make([]byte, 40)
		ip[0], ip[6] = 0x60, 0 // next: hop-by-hop
		hbh := []byte{58, 0, 0, 0, 0, 0, 0, 0}
		icmp := make([]byte, 24)
		icmp[0] = 135
		t16 := target.As16()
		copy(icmp[8:], t16[:])
		return slices.Concat(b, ip, hbh, icmp)
	}
	bcast := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	ucast := []byte{0x02, 0, 0, 0, 1, 0x12}
	cases := []struct {
		name  string
		frame []byte
		vxlan bool
		want  *resolution
	}{
		{"broadcast ARP request", outer(100, arp(bcast, 1, [4]byte{10, 1, 0, 12})), true,
			&resolution{VNI: 100, Target: netip.MustParseAddr("10.1.0.12"), Broadcast: true}},
		{"unicast ARP probe", outer(100, arp(ucast, 1, [4]byte{10, 1, 0, 12})), true,
			&resolution{VNI: 100, Target: netip.MustParseAddr("10.1.0.12")}},
		{"ARP reply", outer(100, arp(bcast, 2, [4]byte{10, 1, 0, 12})), true, nil},
		{"NS", outer(4001, ns(netip.MustParseAddr("2001:db8:1::12"))), true,
			&resolution{VNI: 4001, Target: netip.MustParseAddr("2001:db8:1::12"), Broadcast: true}},
		{"not VXLAN", arp(bcast, 1, [4]byte{10, 1, 0, 12}), false, nil},
	}
	for _, c := range cases {
		r, vx := decodeVXLANResolution(c.frame)
		if vx != c.vxlan {
			t.Errorf("%s: VXLAN %v, want %v", c.name, vx, c.vxlan)
		}
		switch {
		case (r == nil) != (c.want == nil):
			t.Errorf("%s: decoded %+v, want %+v", c.name, r, c.want)
		case r != nil && (r.VNI != c.want.VNI || r.Target != c.want.Target || r.Broadcast != c.want.Broadcast):
			t.Errorf("%s: decoded %+v, want %+v", c.name, r, c.want)
		}
	}
}
