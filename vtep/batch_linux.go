package vtep

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// batchWindow is the number of requests written to the kernel in one
// sendmsg. The kernel handles them one after the other within that call
// and queues their answers (an echoed link of 1-3 KB for a creation, an
// ack for each) on the socket, so the window is bounded by the receive
// buffer: 64 answers fit in batchRcvBuf with room to spare, and 16 in the
// kernel's default 208 KB when the buffer cannot be forced.
const (
	batchWindow        = 64
	batchWindowLimited = 16
	batchRcvBuf        = 4 << 20
)

// nlBatch is a route netlink socket that sends requests in windows of
// many messages per write and matches the answers by sequence number.
type nlBatch struct {
	keep   bool // keep the RTM_NEWLINK answers in the results
	fd     int
	window int
	seq    uint32
	buf    []byte
}

// batchResult is the kernel's answer to one request: the ifindex of an
// echoed link (creations are sent with NLM_F_ECHO) and the error, nil on
// success.
type batchResult struct {
	index int
	err   error
	links [][]byte // with keep: the RTM_NEWLINK answers (ifinfomsg and attributes)
}

func openBatch(ns netns.NsHandle) (*nlBatch, error) {
	fd := -1
	err := inNetns(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	b := &nlBatch{fd: fd, window: batchWindow, buf: make([]byte, 64<<10)}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, batchRcvBuf); err != nil {
		b.window = batchWindowLimited
	}
	// Acks without the request copied in, errors with the kernel's
	// message (extended ack); both are optional.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind netlink socket: %w", err)
	}
	return b, nil
}

func (b *nlBatch) Close() error { return unix.Close(b.fd) }

// request is one message to send: its type, flags and body (ifinfomsg and
// attributes); exchange adds the header.
type request struct {
	typ   uint16
	flags uint16
	body  []byte
}

// exchange sends reqs in windows and returns their answers, in order.
// An error is returned only when the socket fails; the kernel's refusal
// of a request is in its result.
func (b *nlBatch) exchange(reqs []request) ([]batchResult, error) {
	res := make([]batchResult, len(reqs))
	for start := 0; start < len(reqs); start += b.window {
		end := min(start+b.window, len(reqs))
		first := b.seq + 1
		var msg []byte
		for _, r := range reqs[start:end] {
			b.seq++
			msg = appendMsg(msg, r, b.seq)
		}
		if err := unix.Sendto(b.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return nil, fmt.Errorf("send netlink requests: %w", err)
		}
		if err := b.collect(first, res[start:end]); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func appendMsg(dst []byte, r request, seq uint32) []byte {
	var h [nlmsgHdrLen]byte
	binary.NativeEndian.PutUint32(h[0:4], uint32(nlmsgHdrLen+len(r.body)))
	binary.NativeEndian.PutUint16(h[4:6], r.typ)
	binary.NativeEndian.PutUint16(h[6:8], r.flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(h[8:12], seq)
	dst = append(dst, h[:]...)
	dst = append(dst, r.body...)
	for len(dst)%4 != 0 {
		dst = append(dst, 0)
	}
	return dst
}

// collect reads until every request of the window (sequence numbers
// first, first+1, ...) has its ack.
func (b *nlBatch) collect(first uint32, res []batchResult) error {
	left := len(res)
	for left > 0 {
		n, _, err := unix.Recvfrom(b.fd, b.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// ENOBUFS: answers were dropped, so what the kernel did
			// is unknown; the caller undoes by name.
			return fmt.Errorf("read netlink answers: %w", err)
		}
		p := b.buf[:n]
		for len(p) >= nlmsgHdrLen {
			l := int(binary.NativeEndian.Uint32(p[0:4]))
			if l < nlmsgHdrLen || l > len(p) {
				return errMalformed
			}
			typ := binary.NativeEndian.Uint16(p[4:6])
			flags := binary.NativeEndian.Uint16(p[6:8])
			i := int(binary.NativeEndian.Uint32(p[8:12]) - first)
			body := p[nlmsgHdrLen:l]
			p = p[min(rtaAlign(l), len(p)):]
			if i < 0 || i >= len(res) {
				continue // not ours (an answer to an earlier window cannot come late)
			}
			switch typ {
			case unix.RTM_NEWLINK:
				if len(body) >= unix.SizeofIfInfomsg {
					res[i].index = int(int32(binary.NativeEndian.Uint32(body[4:8])))
					if b.keep {
						res[i].links = append(res[i].links, slices.Clone(body))
					}
				}
			case unix.NLMSG_DONE: // the end of a dump: no ack follows
				if len(body) >= 4 {
					if e := int32(binary.NativeEndian.Uint32(body[0:4])); e < 0 {
						res[i].err = unix.Errno(-e)
					}
				}
				left--
			case nlmsgError:
				if len(body) < 4 {
					return errMalformed
				}
				if e := int32(binary.NativeEndian.Uint32(body[0:4])); e != 0 {
					res[i].err = ackError(unix.Errno(-e), flags, body)
				}
				left--
			}
		}
	}
	return nil
}

// ackError adds the kernel's extended-ack message, when there is one, to
// errno.
func ackError(errno unix.Errno, flags uint16, body []byte) error {
	const nlmsgerrAttrMsg = 1 // NLMSGERR_ATTR_MSG
	if flags&unix.NLM_F_ACK_TLVS == 0 || len(body) < 4+nlmsgHdrLen {
		return errno
	}
	// With NETLINK_CAP_ACK the request's header alone is copied in.
	attrs, err := nl.ParseRouteAttr(body[4+nlmsgHdrLen:])
	if err != nil {
		return errno
	}
	for _, a := range attrs {
		if a.Attr.Type == nlmsgerrAttrMsg && len(a.Value) > 1 {
			msg := string(a.Value)
			if i := len(msg) - 1; msg[i] == 0 {
				msg = msg[:i]
			}
			return fmt.Errorf("%s: %w", msg, errno)
		}
	}
	return errno
}

// linkMsg builds an ifinfomsg for ifindex (0 for a creation) with flags
// (IFF_UP to set, 0 to leave) followed by attrs.
func linkMsg(index int, up bool, attrs ...*nl.RtAttr) []byte {
	ifi := nl.NewIfInfomsg(unix.AF_UNSPEC)
	ifi.Index = int32(index)
	if up {
		ifi.Flags, ifi.Change = unix.IFF_UP, unix.IFF_UP
	}
	b := ifi.Serialize()
	for _, a := range attrs {
		b = append(b, a.Serialize()...)
	}
	return b
}

func strAttr(typ int, s string) *nl.RtAttr { return nl.NewRtAttr(typ, nl.ZeroTerminated(s)) }

func u32Attr(typ int, v uint32) *nl.RtAttr {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return nl.NewRtAttr(typ, b)
}

// createBridgeReq is `ip link add NAME [mtu MTU] type bridge`, echoed.
func createBridgeReq(name string, mtu int) request {
	attrs := []*nl.RtAttr{strAttr(unix.IFLA_IFNAME, name)}
	if mtu > 0 {
		attrs = append(attrs, u32Attr(unix.IFLA_MTU, uint32(mtu)))
	}
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bridge"))
	attrs = append(attrs, info)
	return request{typ: unix.RTM_NEWLINK, flags: unix.NLM_F_CREATE | unix.NLM_F_EXCL | unix.NLM_F_ECHO, body: linkMsg(0, false, attrs...)}
}

// createVXLANReq is `ip link add NAME [mtu MTU] [master MASTER] type vxlan
// id V local L dstport P nolearning`, echoed; master is an ifindex, 0 for
// none.
func createVXLANReq(name string, mtu int, spec L2VNI, master int) request {
	attrs := []*nl.RtAttr{strAttr(unix.IFLA_IFNAME, name)}
	if mtu > 0 {
		attrs = append(attrs, u32Attr(unix.IFLA_MTU, uint32(mtu)))
	}
	if master > 0 {
		attrs = append(attrs, u32Attr(unix.IFLA_MASTER, uint32(master)))
	}
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("vxlan"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	data.AddRtAttr(nl.IFLA_VXLAN_ID, nl.Uint32Attr(spec.VNI))
	if spec.Local.Is4() || spec.Local.Is4In6() {
		a := spec.Local.Unmap().As4()
		data.AddRtAttr(nl.IFLA_VXLAN_LOCAL, a[:])
	} else {
		a := spec.Local.As16()
		data.AddRtAttr(nl.IFLA_VXLAN_LOCAL6, a[:])
	}
	port := make([]byte, 2)
	binary.BigEndian.PutUint16(port, uint16(spec.port()))
	data.AddRtAttr(nl.IFLA_VXLAN_PORT, port)
	data.AddRtAttr(nl.IFLA_VXLAN_LEARNING, []byte{0})
	attrs = append(attrs, info)
	return request{typ: unix.RTM_NEWLINK, flags: unix.NLM_F_CREATE | unix.NLM_F_EXCL | unix.NLM_F_ECHO, body: linkMsg(0, false, attrs...)}
}

// setLinkReq changes the link at index: its alias, with portFlags the
// bridge-port flags evpnd wants on a VXLAN port (learning off,
// neigh_suppress as suppress says; the kernel applies them before the
// admin state), and with up its admin state up.
func setLinkReq(index int, alias string, portFlags, suppress, up bool) request {
	var attrs []*nl.RtAttr
	if alias != "" {
		attrs = append(attrs, nl.NewRtAttr(unix.IFLA_IFALIAS, []byte(alias)))
	}
	if portFlags {
		info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
		info.AddRtAttr(nl.IFLA_INFO_SLAVE_KIND, nl.NonZeroTerminated("bridge"))
		data := info.AddRtAttr(nl.IFLA_INFO_SLAVE_DATA, nil)
		data.AddRtAttr(nl.IFLA_BRPORT_LEARNING, []byte{0})
		on := byte(0)
		if suppress {
			on = 1
		}
		data.AddRtAttr(nl.IFLA_BRPORT_NEIGH_SUPPRESS, []byte{on})
		attrs = append(attrs, info)
	}
	return request{typ: unix.RTM_NEWLINK, body: linkMsg(index, up, attrs...)}
}

// disableIPv6 sets net.ipv6.conf.DEV.disable_ipv6=1 on each of devs, in
// the namespace ns. It runs on devices just created and still down, so
// they never get an IPv6 link-local address, multicast route (one per
// device in the same ff00::/8 list, whose insertion cost grows with the
// number of devices) or MLD state. A device the kernel gave no IPv6
// state (an MTU below 1280) has no such file, and a host booted with
// ipv6.disable=1 has none at all: there is nothing to turn off then.
//
// IPv6 is turned off per device rather than through
// net.ipv6.conf.default, which would also turn it off on any interface
// another program creates meanwhile.
func disableIPv6(ns netns.NsHandle, devs []string) (skipped []string, err error) {
	err = inNetns(ns, func() error {
		dir, err := unix.Open("/proc/sys/net/ipv6/conf", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			skipped = devs
			return nil
		}
		if err != nil {
			return fmt.Errorf("open /proc/sys/net/ipv6/conf: %w", err)
		}
		defer unix.Close(dir)
		one := []byte("1\n")
		for _, d := range devs {
			fd, err := unix.Openat(dir, d+"/disable_ipv6", unix.O_WRONLY|unix.O_CLOEXEC, 0)
			if errors.Is(err, unix.ENOENT) {
				skipped = append(skipped, d)
				continue
			}
			if err != nil {
				return &os.PathError{Op: "open", Path: "/proc/sys/net/ipv6/conf/" + d + "/disable_ipv6", Err: err}
			}
			for {
				_, err = unix.Write(fd, one)
				if err != unix.EINTR {
					break
				}
			}
			unix.Close(fd)
			if err != nil {
				return fmt.Errorf("turn IPv6 off on %s (net.ipv6.conf.%s.disable_ipv6=1): %w", d, d, err)
			}
		}
		return nil
	})
	return skipped, err
}

// getLinkReq is RTM_GETLINK for the link named name, or at index.
func getLinkReq(index int, name string) request {
	var attrs []*nl.RtAttr
	if name != "" {
		attrs = append(attrs, strAttr(unix.IFLA_IFNAME, name))
	}
	attrs = append(attrs, u32Attr(unix.IFLA_EXT_MASK, rtextFilterSkipStats))
	return request{typ: unix.RTM_GETLINK, body: linkMsg(index, false, attrs...)}
}

// portsOfReq is a dump of the links enslaved to the bridge at index (the
// kernel filters on IFLA_MASTER).
func portsOfReq(master int) request {
	return request{typ: unix.RTM_GETLINK, flags: unix.NLM_F_DUMP, body: linkMsg(0, false,
		u32Attr(unix.IFLA_MASTER, uint32(master)), u32Attr(unix.IFLA_EXT_MASK, rtextFilterSkipStats))}
}

// links decodes the links in answers (RTM_NEWLINK messages kept by
// exchange), with the bridge-port flags of those that are ports of a
// bridge (IFLA_INFO_SLAVE_DATA).
func decodeLinks(msgs [][]byte) ([]LinkInfo, error) {
	out := make([]LinkInfo, 0, len(msgs))
	for _, m := range msgs {
		l, err := netlink.LinkDeserialize(nil, m)
		if err != nil {
			return nil, fmt.Errorf("decode link: %w", err)
		}
		li := linkInfo(l)
		if li.MasterIndex != 0 {
			li.Port = slavePortFlags(m)
		}
		out = append(out, li)
	}
	return out, nil
}

// slavePortFlags reads the bridge-port flags from a link message's
// IFLA_LINKINFO, or nil when it is no bridge port.
func slavePortFlags(m []byte) *PortFlags {
	if len(m) < unix.SizeofIfInfomsg {
		return nil
	}
	attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfInfomsg:])
	if err != nil {
		return nil
	}
	for _, a := range attrs {
		if a.Attr.Type&nl.NLA_TYPE_MASK != unix.IFLA_LINKINFO {
			continue
		}
		infos, err := nl.ParseRouteAttr(a.Value)
		if err != nil {
			return nil
		}
		bridgePort := false
		for _, in := range infos {
			switch in.Attr.Type & nl.NLA_TYPE_MASK {
			case nl.IFLA_INFO_SLAVE_KIND:
				bridgePort = strings.TrimRight(string(in.Value), "\x00") == "bridge"
			case nl.IFLA_INFO_SLAVE_DATA:
				if !bridgePort {
					return nil
				}
				data, err := nl.ParseRouteAttr(in.Value)
				if err != nil {
					return nil
				}
				var f PortFlags
				for _, d := range data {
					if len(d.Value) == 0 {
						continue
					}
					switch d.Attr.Type & nl.NLA_TYPE_MASK {
					case nl.IFLA_BRPORT_LEARNING:
						f.Learning = d.Value[0] != 0
					case nl.IFLA_BRPORT_NEIGH_SUPPRESS:
						f.NeighSuppress = d.Value[0] != 0
					}
				}
				return &f
			}
		}
	}
	return nil
}

// rtextFilterSkipStats is RTEXT_FILTER_SKIP_STATS (linux/rtnetlink.h):
// links without their counters.
const rtextFilterSkipStats = 1 << 3

// ipv6Off reports whether dev in ns has IPv6 turned off
// (net.ipv6.conf.DEV.disable_ipv6=1); a device without IPv6 state is not.
func ipv6Off(ns netns.NsHandle, dev string) (bool, error) {
	var off bool
	err := inNetns(ns, func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + dev + "/disable_ipv6")
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		off = err == nil && strings.TrimSpace(string(b)) == "1"
		return err
	})
	return off, err
}

// setIPv6Off sets net.ipv6.conf.DEV.disable_ipv6 of dev in ns.
func setIPv6Off(ns netns.NsHandle, dev string, off bool) error {
	v := "0\n"
	if off {
		v = "1\n"
	}
	return inNetns(ns, func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/"+dev+"/disable_ipv6", []byte(v), 0o644)
	})
}
