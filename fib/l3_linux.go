package fib

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// L3Netlink reads and writes one VRF's L3 state in one namespace: through
// a netlink handle for neighbours, FDB entries and dumps, and a route
// socket of its own for route writes (vishvananda/netlink refuses the
// IPv4-mapped gateway of an IPv6 route, which the kernel takes).
type L3Netlink struct {
	h     *netlink.Handle
	route *nl.SocketHandle
}

// NewL3Netlink returns the kernel side of a VRF working through h, a
// handle bound to ns (netns.None() for the caller's own namespace); the
// caller keeps h and must Close the L3Netlink.
func NewL3Netlink(h *netlink.Handle, ns netns.NsHandle) (*L3Netlink, error) {
	var s *nl.NetlinkSocket
	var err error
	if ns.IsOpen() {
		s, err = nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	} else {
		s, err = nl.Subscribe(unix.NETLINK_ROUTE)
	}
	if err != nil {
		return nil, fmt.Errorf("fib l3: open route socket: %w", err)
	}
	return &L3Netlink{h: h, route: &nl.SocketHandle{Socket: s}}, nil
}

// Close closes the route socket.
func (k *L3Netlink) Close() { k.route.Close() }

func (k *L3Netlink) index(name string) (int, error) {
	l, err := k.h.LinkByName(name)
	if err != nil {
		return 0, err
	}
	return l.Attrs().Index, nil
}

// retry runs a dump again while the kernel reports it interrupted.
func retry[T any](f func() (T, error)) (T, error) {
	var v T
	var err error
	for range 10 {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// Dump reads fib's marked L3 entries of the VRF: routes of RouteProtocol
// in its table, extern_learn neighbours on its SVIs (the L3VNI's and the
// members'), and the unicast remote entries of the L3VNI's VXLAN device
// (fib owns that device's FDB: nothing is learned on it). A member SVI
// that does not exist is skipped; a missing L3VNI device is an error.
func (k *L3Netlink) Dump(ctx context.Context, dev L3Devices) (L3State, error) {
	var s L3State
	svi, err := k.index(dev.SVI)
	if err != nil {
		return s, fmt.Errorf("fib l3 %s: SVI %s: %w", dev.VRF, dev.SVI, err)
	}
	vx, err := k.index(dev.VXLAN)
	if err != nil {
		return s, fmt.Errorf("fib l3 %s: VXLAN device %s: %w", dev.VRF, dev.VXLAN, err)
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := retry(func() ([]netlink.Route, error) {
			return k.h.RouteListFiltered(fam, &netlink.Route{Table: dev.Table, Protocol: RouteProtocol}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
		})
		if err != nil {
			return s, fmt.Errorf("fib l3 %s: list routes: %w", dev.VRF, err)
		}
		for _, r := range rs {
			if r.Dst == nil {
				continue
			}
			e := RouteEntry{Prefix: ipNetPrefix(r.Dst)}
			if r.Gw != nil {
				e.VTEPs = append(e.VTEPs, ipAddr(r.Gw))
			}
			for _, nh := range r.MultiPath {
				if nh.Gw != nil {
					e.VTEPs = append(e.VTEPs, ipAddr(nh.Gw))
				}
			}
			sortAddrs(e.VTEPs)
			s.Routes = append(s.Routes, e)
		}
	}
	devs := append([]string{dev.SVI}, dev.MemberSVIs...)
	for i, name := range devs {
		idx := svi
		if i > 0 {
			if idx, err = k.index(name); err != nil {
				continue
			}
		}
		ns, err := retry(func() ([]netlink.Neigh, error) { return k.h.NeighList(idx, netlink.FAMILY_ALL) })
		if err != nil {
			return s, fmt.Errorf("fib l3 %s: list neighbours of %s: %w", dev.VRF, name, err)
		}
		for _, n := range ns {
			mac, ok := evpn.MACFrom(n.HardwareAddr)
			if n.LinkIndex != idx || n.Flags&unix.NTF_EXT_LEARNED == 0 || !ok || n.IP == nil {
				continue
			}
			ip := ipAddr(n.IP)
			if n.Family == unix.AF_INET6 {
				ip = netip.AddrFrom16(ip.As16()) // keep a mapped address mapped
			}
			s.Neighs = append(s.Neighs, NeighEntry{Dev: name, IP: ip, MAC: mac})
		}
	}
	fdb, err := retry(func() ([]netlink.Neigh, error) { return k.h.NeighList(vx, unix.AF_BRIDGE) })
	if err != nil {
		return s, fmt.Errorf("fib l3 %s: list FDB of %s: %w", dev.VRF, dev.VXLAN, err)
	}
	// A router MAC is written as two entries, the VXLAN one (self, to the
	// VTEP) and the bridge one (master). An entry with one side missing
	// is reported with no VTEP: unequal to any wanted entry, so the pass
	// writes both sides again (or deletes what is left of an unwanted
	// one).
	self, master := map[evpn.MAC]netip.Addr{}, map[evpn.MAC]bool{}
	for _, n := range fdb {
		mac, ok := evpn.MACFrom(n.HardwareAddr)
		if n.LinkIndex != vx || !ok || !mac.IsUnicast() {
			continue
		}
		switch {
		case n.Flags&unix.NTF_SELF != 0 && n.IP != nil:
			self[mac] = ipAddr(n.IP)
		case n.Flags&unix.NTF_SELF == 0 && n.IP == nil && n.Flags&unix.NTF_EXT_LEARNED != 0:
			// (Not the bridge's permanent entry of the port's own MAC.)
			master[mac] = true
		}
	}
	for mac, vtep := range self {
		if !master[mac] {
			vtep = netip.Addr{}
		}
		s.RMACs = append(s.RMACs, RMACEntry{MAC: mac, VTEP: vtep})
	}
	for mac := range master {
		if _, ok := self[mac]; !ok {
			s.RMACs = append(s.RMACs, RMACEntry{MAC: mac})
		}
	}
	s.sort()
	return s, nil
}

func ipAddr(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

func ipNetPrefix(n *net.IPNet) netip.Prefix {
	a, _ := netip.AddrFromSlice(n.IP)
	ones, bits := n.Mask.Size()
	if bits == 32 {
		a = a.Unmap()
	}
	return netip.PrefixFrom(a, ones)
}

func sortAddrs(as []netip.Addr) {
	for i := 1; i < len(as); i++ {
		for j := i; j > 0 && as[j].Less(as[j-1]); j-- {
			as[j], as[j-1] = as[j-1], as[j]
		}
	}
}

// Apply writes ops in order and returns one error per failed op (nil
// entries for the rest). Deleting what is already gone succeeds.
func (k *L3Netlink) Apply(ctx context.Context, dev L3Devices, ops []L3Op) []error {
	errs := make([]error, len(ops))
	svi, sviErr := k.index(dev.SVI)
	vx, vxErr := k.index(dev.VXLAN)
	// One lookup per SVI per call, not per neighbour.
	idx := map[string]int{}
	index := func(name string) (int, error) {
		if i, ok := idx[name]; ok {
			return i, nil
		}
		i, err := k.index(name)
		if err == nil {
			idx[name] = i
		}
		return i, err
	}
	for i, op := range ops {
		if err := ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		var err error
		switch {
		case op.Route != nil:
			if err = sviErr; err == nil {
				err = k.writeRoute(dev, svi, op)
			}
		case op.RMAC != nil:
			if err = vxErr; err == nil {
				err = k.writeRMAC(vx, op)
			}
		case op.Neigh != nil:
			err = k.writeNeigh(op, index)
		}
		if err != nil && op.Kind == L3Delete && ignorableDeleteErr(err) {
			err = nil
		}
		if err != nil {
			errs[i] = fmt.Errorf("%s: %w", op.String(dev), err)
		}
	}
	return errs
}

func (k *L3Netlink) writeNeigh(op L3Op, index func(string) (int, error)) error {
	n := op.Neigh
	idx, err := index(n.Dev)
	if err != nil {
		if op.Kind == L3Delete && isLinkNotFound(err) {
			return nil
		}
		return err
	}
	// A raw message: vishvananda/netlink sends an IPv4-mapped address as
	// 4 bytes, which the kernel refuses for an IPv6 neighbour.
	fam := uint8(unix.AF_INET)
	if n.IP.Is6() {
		fam = unix.AF_INET6
	}
	typ, flags := unix.RTM_NEWNEIGH, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK
	ndm := &netlink.Ndmsg{Family: fam, Index: uint32(idx)}
	if op.Kind == L3Delete {
		typ, flags = unix.RTM_DELNEIGH, unix.NLM_F_ACK
	} else {
		// extern_learn keeps the kernel from garbage-collecting a NOARP
		// entry (DESIGN §4: 994 of 100k survived without it).
		ndm.State, ndm.Flags = netlink.NUD_NOARP, unix.NTF_EXT_LEARNED
	}
	req := nl.NewNetlinkRequest(typ, flags)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: k.route}
	req.AddData(ndm)
	req.AddData(nl.NewRtAttr(unix.NDA_DST, n.IP.AsSlice()))
	if op.Kind != L3Delete {
		req.AddData(nl.NewRtAttr(unix.NDA_LLADDR, n.MAC[:]))
	}
	_, err = req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

func (k *L3Netlink) writeRMAC(vx int, op L3Op) error {
	r := op.RMAC
	nb := &netlink.Neigh{LinkIndex: vx, Family: unix.AF_BRIDGE, HardwareAddr: r.MAC.HardwareAddr(), IP: net.IP(r.VTEP.AsSlice())}
	if op.Kind == L3Delete {
		nb.Flags = unix.NTF_MASTER
		errM := k.h.NeighDel(nb)
		var errS error
		if r.VTEP.IsValid() {
			nb.Flags = unix.NTF_SELF
			errS = k.h.NeighDel(nb)
		} else {
			// Half of a router MAC (see Dump): the remote of its VXLAN
			// side, if that is the half left, is read here (rare).
			errS = k.deleteSelf(vx, nb.HardwareAddr)
		}
		if errS == nil || ignorableDeleteErr(errS) {
			if errM == nil || ignorableDeleteErr(errM) {
				return nil
			}
			return errM
		}
		return errS
	}
	// One message writes the VXLAN entry and the bridge entry, as zebra
	// does (see the package doc's kernel facts).
	nb.State = netlink.NUD_NOARP | netlink.NUD_PERMANENT
	nb.Flags = unix.NTF_SELF | unix.NTF_MASTER | unix.NTF_EXT_LEARNED
	return k.h.NeighSet(nb)
}

// deleteSelf deletes the VXLAN (self) entries of mac on the VXLAN device
// vx, whatever their remote.
func (k *L3Netlink) deleteSelf(vx int, mac net.HardwareAddr) error {
	fdb, err := retry(func() ([]netlink.Neigh, error) { return k.h.NeighList(vx, unix.AF_BRIDGE) })
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range fdb {
		if n.LinkIndex == vx && n.Flags&unix.NTF_SELF != 0 && n.IP != nil && bytes.Equal(n.HardwareAddr, mac) {
			err := k.h.NeighDel(&netlink.Neigh{LinkIndex: vx, Family: unix.AF_BRIDGE, HardwareAddr: mac, IP: n.IP, Flags: unix.NTF_SELF})
			if err != nil && !ignorableDeleteErr(err) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// writeRoute sends RTM_NEWROUTE (create|replace) or RTM_DELROUTE for one
// route of the VRF's table, marked RouteProtocol, every next hop via the
// SVI with RTNH_F_ONLINK (the VTEP is not on the SVI's subnet).
func (k *L3Netlink) writeRoute(dev L3Devices, svi int, op L3Op) error {
	r := op.Route
	typ, flags := uint16(unix.RTM_NEWROUTE), unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK
	if op.Kind == L3Delete {
		typ, flags = unix.RTM_DELROUTE, unix.NLM_F_ACK
	}
	req := nl.NewNetlinkRequest(int(typ), flags)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: k.route}
	msg := nl.NewRtMsg()
	msg.Family = unix.AF_INET
	if r.Prefix.Addr().Is6() {
		msg.Family = unix.AF_INET6
	}
	msg.Dst_len = uint8(r.Prefix.Bits())
	msg.Protocol = RouteProtocol
	msg.Table = unix.RT_TABLE_UNSPEC
	if dev.Table < 256 {
		msg.Table = uint8(dev.Table)
	}
	if op.Kind == L3Delete {
		msg.Scope = unix.RT_SCOPE_NOWHERE
	}
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.RTA_DST, r.Prefix.Addr().AsSlice()))
	table := make([]byte, 4)
	nl.NativeEndian().PutUint32(table, uint32(dev.Table))
	req.AddData(nl.NewRtAttr(unix.RTA_TABLE, table))
	if op.Kind == L3Replace && lastResort(dev, r.Prefix) {
		// A delete carries no metric: it matches evpnd's route by its
		// protocol, whatever its metric.
		prio := make([]byte, 4)
		nl.NativeEndian().PutUint32(prio, uint32(LastResortMetric))
		req.AddData(nl.NewRtAttr(unix.RTA_PRIORITY, prio))
	}
	if op.Kind == L3Replace {
		switch len(r.VTEPs) {
		case 0:
			return errors.New("route without a next hop")
		case 1:
			msg.Flags |= unix.RTNH_F_ONLINK
			oif := make([]byte, 4)
			nl.NativeEndian().PutUint32(oif, uint32(svi))
			req.AddData(nl.NewRtAttr(unix.RTA_OIF, oif))
			req.AddData(nl.NewRtAttr(unix.RTA_GATEWAY, gateway(r.Prefix, r.VTEPs[0]).AsSlice()))
		default:
			var buf []byte
			for _, v := range r.VTEPs {
				nh := &nl.RtNexthop{RtNexthop: unix.RtNexthop{Ifindex: int32(svi), Flags: unix.RTNH_F_ONLINK},
					Children: []nl.NetlinkRequestData{nl.NewRtAttr(unix.RTA_GATEWAY, gateway(r.Prefix, v).AsSlice())}}
				buf = append(buf, nh.Serialize()...)
			}
			req.AddData(nl.NewRtAttr(unix.RTA_MULTIPATH, buf))
		}
	}
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// WatchL3 signals (a channel with a buffer of one) every route and
// neighbour change in namespace ns until ctx ends (then it closes the
// channel): fib's own writes come back too, and cost the reconciler a
// dump that finds nothing to do.
//
// The netlink library reports through its error callback much that is
// harmless (messages from a sender other than the kernel, a message it
// cannot decode, an interrupted dump): those are ignored, the
// subscription goes on. When a subscription really ends (its socket
// fails, e.g. on an overrun) the watch subscribes again, with backoff,
// and signals once it has: changes may have been missed, the reconciler
// makes a full pass.
func WatchL3(ctx context.Context, ns netns.NsHandle) (<-chan struct{}, error) {
	var nsp *netns.NsHandle
	if ns.IsOpen() {
		nsp = &ns
	}
	routes, neighs, done, err := subscribeL3(nsp)
	if err != nil {
		return nil, err
	}
	out := make(chan struct{}, 1)
	signal := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	go func() {
		defer close(out)
		defer func() { close(done) }()
		backoff, since := time.Duration(0), time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-routes:
				if ok {
					signal()
					continue
				}
			case _, ok := <-neighs:
				if ok {
					signal()
					continue
				}
			}
			// A subscription ended: start both again. The library's
			// goroutine of the other may be blocked on a full channel:
			// drained until it ends.
			close(done)
			go drainL3(routes, neighs)
			if time.Since(since) > 5*time.Second {
				backoff = 0
			}
			for {
				backoff = min(max(2*backoff, 10*time.Millisecond), 5*time.Second)
				select {
				case <-ctx.Done():
					done = make(chan struct{})
					return
				case <-time.After(backoff):
				}
				if routes, neighs, done, err = subscribeL3(nsp); err == nil {
					since = time.Now()
					break
				}
			}
			signal()
		}
	}()
	return out, nil
}

func drainL3(routes chan netlink.RouteUpdate, neighs chan netlink.NeighUpdate) {
	for range routes {
	}
	for range neighs {
	}
}

// subscribeL3 subscribes to route and neighbour changes (in *nsp, if not
// nil) until done is closed.
func subscribeL3(nsp *netns.NsHandle) (chan netlink.RouteUpdate, chan netlink.NeighUpdate, chan struct{}, error) {
	done := make(chan struct{})
	routes := make(chan netlink.RouteUpdate, 256)
	neighs := make(chan netlink.NeighUpdate, 256)
	ignore := func(error) {}
	if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{Namespace: nsp, ErrorCallback: ignore}); err != nil {
		close(done)
		return nil, nil, nil, fmt.Errorf("fib l3: watch routes: %w", err)
	}
	if err := netlink.NeighSubscribeWithOptions(neighs, done, netlink.NeighSubscribeOptions{Namespace: nsp, ErrorCallback: ignore}); err != nil {
		close(done)
		return nil, nil, nil, fmt.Errorf("fib l3: watch neighbours: %w", err)
	}
	return routes, neighs, done, nil
}

var _ L3Kernel = (*L3Netlink)(nil)
