package fib

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
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
	// dump is a socket with strict checking, so that a neighbour or FDB
	// dump is filtered by device in the kernel (NDA_IFINDEX) instead of
	// listing every entry of the namespace: the L2VNIs' 100k FDB entries
	// are not read to find the L3VNI's router MACs. dumpMu serialises
	// its users (the loop, Check).
	dumpMu sync.Mutex
	dump   *nl.SocketHandle
	// dh dumps routes with strict checking too, so that the kernel reads
	// only the VRF's table (by table and protocol) rather than every
	// table of the namespace.
	dh *netlink.Handle
}

// NewL3Netlink returns the kernel side of a VRF working through h, a
// handle bound to ns (netns.None() for the caller's own namespace); the
// caller keeps h and must Close the L3Netlink.
func NewL3Netlink(h *netlink.Handle, ns netns.NsHandle) (*L3Netlink, error) {
	open := func() (*nl.NetlinkSocket, error) {
		if ns.IsOpen() {
			return nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
		}
		return nl.Subscribe(unix.NETLINK_ROUTE)
	}
	s, err := open()
	if err != nil {
		return nil, fmt.Errorf("fib l3: open route socket: %w", err)
	}
	d, err := open()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("fib l3: open dump socket: %w", err)
	}
	if err := unix.SetsockoptInt(d.GetFd(), unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1); err != nil {
		s.Close()
		d.Close()
		return nil, fmt.Errorf("fib l3: dump socket: strict checking: %w", err)
	}
	var dh *netlink.Handle
	if ns.IsOpen() {
		dh, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	} else {
		dh, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	if err == nil {
		if err = dh.SetStrictCheck(true); err != nil {
			dh.Close()
		}
	}
	if err != nil {
		s.Close()
		d.Close()
		return nil, fmt.Errorf("fib l3: route dump handle: %w", err)
	}
	return &L3Netlink{h: h, route: &nl.SocketHandle{Socket: s}, dump: &nl.SocketHandle{Socket: d}, dh: dh}, nil
}

// Close closes the route and dump sockets.
func (k *L3Netlink) Close() {
	k.route.Close()
	k.dump.Close()
	k.dh.Close()
}

// neighList dumps the neighbours (family AF_UNSPEC) or FDB entries
// (AF_BRIDGE) of one device, filtered in the kernel.
func (k *L3Netlink) neighList(family uint8, ifindex int) ([]netlink.Neigh, error) {
	k.dumpMu.Lock()
	defer k.dumpMu.Unlock()
	req := nl.NewNetlinkRequest(unix.RTM_GETNEIGH, unix.NLM_F_DUMP)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: k.dump}
	req.AddData(&netlink.Ndmsg{Family: family})
	idx := make([]byte, 4)
	nl.NativeEndian().PutUint32(idx, uint32(ifindex))
	req.AddData(nl.NewRtAttr(unix.NDA_IFINDEX, idx))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWNEIGH)
	if err != nil {
		return nil, err
	}
	out := make([]netlink.Neigh, 0, len(msgs))
	for _, m := range msgs {
		n, err := netlink.NeighDeserialize(m)
		if err != nil {
			continue
		}
		out = append(out, *n)
	}
	return out, nil
}

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
func (k *L3Netlink) Dump(ctx context.Context, dev L3Devices, kinds ...L3Kind) (L3State, error) {
	var s L3State
	want := func(kind L3Kind) bool { return len(kinds) == 0 || slices.Contains(kinds, kind) }
	svi, err := k.index(dev.SVI)
	if err != nil {
		return s, fmt.Errorf("fib l3 %s: SVI %s: %w", dev.VRF, dev.SVI, err)
	}
	vx, err := k.index(dev.VXLAN)
	if err != nil {
		return s, fmt.Errorf("fib l3 %s: VXLAN device %s: %w", dev.VRF, dev.VXLAN, err)
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		if !want(L3KindRoute) {
			break
		}
		rs, err := retry(func() ([]netlink.Route, error) {
			return k.dh.RouteListFiltered(fam, &netlink.Route{Table: dev.Table, Protocol: RouteProtocol}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
		})
		if errors.Is(err, unix.ENOENT) {
			continue // strict: the kernel has no such table yet
		}
		if err != nil {
			return s, fmt.Errorf("fib l3 %s: list routes: %w", dev.VRF, err)
		}
		for _, r := range rs {
			s.Routes = append(s.Routes, routeEntry(r))
		}
	}
	devs := append([]string{dev.SVI}, dev.MemberSVIs...)
	for i, name := range devs {
		if !want(L3KindNeigh) {
			break
		}
		idx := svi
		if i > 0 {
			if idx, err = k.index(name); err != nil {
				continue
			}
		}
		ns, err := retry(func() ([]netlink.Neigh, error) { return k.neighList(unix.AF_UNSPEC, idx) })
		if err != nil {
			return s, fmt.Errorf("fib l3 %s: list neighbours of %s: %w", dev.VRF, name, err)
		}
		for _, n := range ns {
			if e, ok := neighEntry(n); ok && n.LinkIndex == idx {
				e.Dev = name
				s.Neighs = append(s.Neighs, e)
			}
		}
	}
	if want(L3KindRMAC) {
		fdb, err := retry(func() ([]netlink.Neigh, error) { return k.neighList(unix.AF_BRIDGE, vx) })
		if err != nil {
			return s, fmt.Errorf("fib l3 %s: list FDB of %s: %w", dev.VRF, dev.VXLAN, err)
		}
		// A router MAC is written as two entries, the VXLAN one (self, to
		// the VTEP) and the bridge one (master). One with a side missing
		// is reported with no VTEP: unequal to any wanted entry, so a
		// pass writes both sides again (or deletes what is left of an
		// unwanted one).
		self, master := map[evpn.MAC]netip.Addr{}, map[evpn.MAC]bool{}
		for _, n := range fdb {
			if n.LinkIndex != vx {
				continue
			}
			if e, ok := rmacEntry(n); ok {
				self[e.MAC] = e.VTEP
			} else if mac, ok := rmacMaster(n); ok {
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
	}
	s.sort()
	return s, nil
}

// routeEntry reads a route as fib writes it (its marks are not checked).
func routeEntry(r netlink.Route) RouteEntry {
	var e RouteEntry
	if r.Dst != nil {
		e.Prefix = ipNetPrefix(r.Dst)
	} else if r.Family == unix.AF_INET6 {
		e.Prefix = netip.PrefixFrom(netip.IPv6Unspecified(), 0) // a default route has no RTA_DST
	} else {
		e.Prefix = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	if r.Gw != nil {
		e.VTEPs = append(e.VTEPs, ipAddr(r.Gw))
	}
	for _, nh := range r.MultiPath {
		if nh.Gw != nil {
			e.VTEPs = append(e.VTEPs, ipAddr(nh.Gw))
		}
	}
	sortAddrs(e.VTEPs)
	return e
}

// neighEntry reads an extern_learn neighbour with a MAC (fib's); Dev is
// left to the caller.
func neighEntry(n netlink.Neigh) (NeighEntry, bool) {
	mac, ok := evpn.MACFrom(n.HardwareAddr)
	if n.Flags&unix.NTF_EXT_LEARNED == 0 || !ok || n.IP == nil {
		return NeighEntry{}, false
	}
	ip := ipAddr(n.IP)
	if n.Family == unix.AF_INET6 {
		ip = netip.AddrFrom16(ip.As16()) // keep a mapped address mapped
	}
	return NeighEntry{IP: ip, MAC: mac}, true
}

// rmacEntry reads a unicast remote (self) entry of a VXLAN device's FDB.
func rmacEntry(n netlink.Neigh) (RMACEntry, bool) {
	mac, ok := evpn.MACFrom(n.HardwareAddr)
	if !ok || !mac.IsUnicast() || n.IP == nil || n.Flags&unix.NTF_SELF == 0 {
		return RMACEntry{}, false
	}
	return RMACEntry{MAC: mac, VTEP: ipAddr(n.IP)}, true
}

// rmacMaster reads the bridge (master) side of a router MAC on a VXLAN
// device: a unicast extern_learn entry without a remote (not the bridge's
// permanent entry of the port's own MAC).
func rmacMaster(n netlink.Neigh) (evpn.MAC, bool) {
	mac, ok := evpn.MACFrom(n.HardwareAddr)
	if !ok || !mac.IsUnicast() || n.IP != nil || n.Flags&unix.NTF_SELF != 0 || n.Flags&unix.NTF_EXT_LEARNED == 0 {
		return evpn.MAC{}, false
	}
	return mac, true
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
		if op.Kind.Removes() && isLinkNotFound(err) {
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
	switch op.Kind {
	case L3Delete:
		typ, flags = unix.RTM_DELNEIGH, unix.NLM_F_ACK
	case L3Handover:
		// Without extern_learn the entry is the kernel's (a replace
		// clears the flag); in NUD_PROBE it still forwards to the MAC
		// and the kernel sends unicast probes to it at once.
		ndm.State = netlink.NUD_PROBE
	default:
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

// WatchL3 reports, until ctx ends (then it closes the channel), the
// changes of routes, neighbours (FDB entries included) and links in
// namespace ns, each as an L3Change an L3Reconciler takes one key from:
// fib's own writes come back too, and cost the reconciler a map lookup.
// A link created, deleted, renamed or set up or down is reported as a
// Resync of that link: the kernel drops the IPv4 routes of a link that
// goes without a report, so the reconciler reads the kernel again when
// one of its VRF's devices changes.
//
// The netlink library reports through its error callback much that is
// harmless (messages from a sender other than the kernel, a message it
// cannot decode, an interrupted dump): those are ignored, the
// subscription goes on. When a subscription really ends (its socket
// fails, e.g. on an overrun) the watch subscribes again, with backoff,
// and reports a Resync of all once it has: changes may have been missed.
func WatchL3(ctx context.Context, ns netns.NsHandle) (<-chan L3Change, error) {
	var nsp *netns.NsHandle
	var h *netlink.Handle
	var err error
	if ns.IsOpen() {
		nsp = &ns
		h, err = netlink.NewHandleAt(ns)
	} else {
		h, err = netlink.NewHandle()
	}
	if err != nil {
		return nil, fmt.Errorf("fib l3: watch: netlink handle: %w", err)
	}
	sub, err := subscribeL3(nsp)
	if err != nil {
		h.Close()
		return nil, err
	}
	links := newLinkNames(h)
	out := make(chan L3Change, 4096)
	send := func(c L3Change) bool {
		select {
		case out <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	go func() {
		defer close(out)
		defer h.Close()
		defer func() { close(sub.done) }()
		backoff, since := time.Duration(0), time.Now()
		for {
			ok := true
			select {
			case <-ctx.Done():
				return
			case u, open := <-sub.routes:
				if ok = open; ok {
					if c, hit := routeChange(u); hit && !send(c) {
						return
					}
				}
			case u, open := <-sub.neighs:
				if ok = open; ok {
					if c, hit := neighChange(u, links); hit && !send(c) {
						return
					}
				}
			case u, open := <-sub.links:
				if ok = open; ok {
					for _, c := range links.update(u) {
						if !send(c) {
							return
						}
					}
				}
			}
			if ok {
				continue
			}
			// A subscription ended: start them all again. The library's
			// goroutines of the others may be blocked on a full channel:
			// drained until they end.
			close(sub.done)
			go sub.drain()
			if time.Since(since) > 5*time.Second {
				backoff = 0
			}
			for {
				backoff = min(max(2*backoff, 10*time.Millisecond), 5*time.Second)
				select {
				case <-ctx.Done():
					sub.done = make(chan struct{})
					return
				case <-time.After(backoff):
				}
				if sub, err = subscribeL3(nsp); err == nil {
					since = time.Now()
					break
				}
			}
			links.reload()
			if !send(L3Change{Resync: true}) {
				return
			}
		}
	}()
	return out, nil
}

// routeChange turns a route update into the change of its key: a route
// of fib's (RouteProtocol) written or deleted, or any other route written
// at its key (which replaced fib's, if it held it).
func routeChange(u netlink.RouteUpdate) (L3Change, bool) {
	r := u.Route
	if u.Type == unix.RTM_DELROUTE && r.Protocol != RouteProtocol {
		return L3Change{}, false // not fib's: fib's, if any, stays
	}
	e := routeEntry(r)
	foreign := r.Protocol != RouteProtocol
	return L3Change{Route: &e, Table: r.Table, Gone: u.Type == unix.RTM_DELROUTE || foreign, Foreign: foreign, Metric: r.Priority}, true
}

// neighChange turns a neighbour update into the change of its key: a
// router MAC (a unicast remote of a VXLAN device's FDB) or a neighbour,
// gone when deleted or no longer marked extern_learn.
func neighChange(u netlink.NeighUpdate, links *linkNames) (L3Change, bool) {
	n := u.Neigh
	name, ok := links.name(n.LinkIndex)
	if !ok {
		return L3Change{}, false
	}
	gone := u.Type == unix.RTM_DELNEIGH
	if mac, ok := rmacMaster(n); ok && n.Family == unix.AF_BRIDGE && gone {
		// The bridge side of a router MAC deleted: what is left is a
		// half, reported without a VTEP (as Dump does), which a pass
		// writes again whole (or deletes). (Its writing is not
		// reported: the VXLAN side's event, or the write's own
		// completion, tells the VTEP.)
		return L3Change{RMAC: &RMACEntry{MAC: mac}, Dev: name}, true
	}
	if n.IP == nil {
		return L3Change{}, false
	}
	if n.Family == unix.AF_BRIDGE {
		e, ok := rmacEntry(n)
		if !ok {
			return L3Change{}, false
		}
		return L3Change{RMAC: &e, Dev: name, Gone: gone}, true
	}
	e, ok := neighEntry(n)
	if !ok {
		ip := ipAddr(n.IP)
		if n.Family == unix.AF_INET6 {
			ip = netip.AddrFrom16(ip.As16())
		}
		e, gone = NeighEntry{IP: ip}, true
	}
	e.Dev = name
	return L3Change{Neigh: &e, Gone: gone}, true
}

// linkNames maps the namespace's interface indexes to names, and reports
// the links that come, go, are renamed or set up or down.
type linkNames struct {
	h    *netlink.Handle
	byID map[int]linkState
}

type linkState struct {
	name string
	up   bool
}

func newLinkNames(h *netlink.Handle) *linkNames {
	l := &linkNames{h: h}
	l.reload()
	return l
}

func (l *linkNames) reload() {
	l.byID = map[int]linkState{}
	links, err := retry(l.h.LinkList)
	if err != nil {
		return // filled on demand
	}
	for _, k := range links {
		a := k.Attrs()
		l.byID[a.Index] = linkState{a.Name, a.Flags&net.FlagUp != 0}
	}
}

func (l *linkNames) name(idx int) (string, bool) {
	if s, ok := l.byID[idx]; ok {
		return s.name, true
	}
	k, err := l.h.LinkByIndex(idx)
	if err != nil {
		return "", false
	}
	a := k.Attrs()
	l.byID[idx] = linkState{a.Name, a.Flags&net.FlagUp != 0}
	return a.Name, true
}

func (l *linkNames) update(u netlink.LinkUpdate) []L3Change {
	a := u.Attrs()
	old, known := l.byID[a.Index]
	if u.Header.Type == unix.RTM_DELLINK {
		delete(l.byID, a.Index)
		return []L3Change{{Resync: true, Link: a.Name}}
	}
	now := linkState{a.Name, u.Flags&unix.IFF_UP != 0}
	l.byID[a.Index] = now
	switch {
	case !known:
		return []L3Change{{Resync: true, Link: a.Name}}
	case old.name != now.name:
		return []L3Change{{Resync: true, Link: old.name}, {Resync: true, Link: now.name}}
	case old.up != now.up:
		return []L3Change{{Resync: true, Link: a.Name}}
	}
	return nil
}

// l3Sub is one subscription to route, neighbour and link changes.
type l3Sub struct {
	routes chan netlink.RouteUpdate
	neighs chan netlink.NeighUpdate
	links  chan netlink.LinkUpdate
	done   chan struct{}
}

func (s *l3Sub) drain() {
	for range s.routes {
	}
	for range s.neighs {
	}
	for range s.links {
	}
}

// l3RcvBuf is the receive buffer of the watch's sockets: fib's own
// writes come back on them, 150k messages for a burst of 50k hosts.
const l3RcvBuf = 8 << 20

// subscribeL3 subscribes to route, neighbour and link changes (in *nsp,
// if not nil) until done is closed.
func subscribeL3(nsp *netns.NsHandle) (*l3Sub, error) {
	s := &l3Sub{done: make(chan struct{}), routes: make(chan netlink.RouteUpdate, 4096),
		neighs: make(chan netlink.NeighUpdate, 4096), links: make(chan netlink.LinkUpdate, 64)}
	ignore := func(error) {}
	if err := netlink.RouteSubscribeWithOptions(s.routes, s.done, netlink.RouteSubscribeOptions{Namespace: nsp, ErrorCallback: ignore,
		ReceiveBufferSize: l3RcvBuf, ReceiveBufferForceSize: true}); err != nil {
		close(s.done)
		return nil, fmt.Errorf("fib l3: watch routes: %w", err)
	}
	if err := netlink.NeighSubscribeWithOptions(s.neighs, s.done, netlink.NeighSubscribeOptions{Namespace: nsp, ErrorCallback: ignore,
		ReceiveBufferSize: l3RcvBuf, ReceiveBufferForceSize: true}); err != nil {
		close(s.done)
		return nil, fmt.Errorf("fib l3: watch neighbours: %w", err)
	}
	if err := netlink.LinkSubscribeWithOptions(s.links, s.done, netlink.LinkSubscribeOptions{Namespace: nsp, ErrorCallback: ignore}); err != nil {
		close(s.done)
		return nil, fmt.Errorf("fib l3: watch links: %w", err)
	}
	return s, nil
}

var _ L3Kernel = (*L3Netlink)(nil)
