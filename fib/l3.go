package fib

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// RouteProtocol is the route protocol number (rtm_protocol) evpnd marks
// its routes with, so that it recognises them in a dump and after a
// restart. 241 is used by neither the kernel's own numbers
// (linux/rtnetlink.h, below 100) nor FRR's (186-199: 196 is zebra's static
// routes), nor iproute2's rt_protos; configs/evpnd.rt_protos.conf names it
// "evpnd" for `ip route`.
const RouteProtocol = 241

// MainTable is RT_TABLE_MAIN.
const MainTable = 254

// LastResortMetric is the metric (priority) of a remote default route
// (0.0.0.0/0, ::/0 from a border leaf's type-5) in a table that routes
// the underlay (L3Devices.UnderlayTable: the default backend's main
// table). Without it the route would replace the operator's own default
// route there (the kernel keys a route by prefix and metric, not by
// protocol), and with it the underlay's route to the VTEPs and BGP peers
// if that is the default route. With the highest metric, any default
// route of another owner wins and stays; evpnd's is used only where the
// table has none, which is also what makes the underlay unhijackable:
// a VTEP reached through the operator's default route keeps it, and one
// reached through a more specific route keeps that. FRR's zebra adds its
// default route next to the kernel's in the same way (metric 20).
const LastResortMetric = 1<<32 - 1

// lastResort reports whether a route to p in dev's table takes
// LastResortMetric.
func lastResort(dev L3Devices, p netip.Prefix) bool { return dev.UnderlayTable && p.Bits() == 0 }

// L3Devices are the kernel objects of one tenant VRF that fib writes
// through: the L3VNI's SVI (its bridge) and VXLAN device, and the routing
// table, all in the namespace of the handle the kernel side is given.
type L3Devices struct {
	VRF   string
	L3VNI uint32
	Table int    // MainTable for the default and netns backends
	SVI   string // the L3VNI's bridge (brL)
	VXLAN string // the L3VNI's VXLAN device (vxlanL)
	// MemberSVIs are the member L2VNIs' bridges, where suppression
	// neighbours go: fib owns their extern_learn neighbours.
	MemberSVIs []string
	// MemberVNIs are the L2VNIs of MemberSVIs, in the same order
	// (optional: only traces use them).
	MemberVNIs []uint32
	// UnderlayTable is set when Table also routes the underlay (the
	// default backend): no route for a VTEP address may go there.
	UnderlayTable bool
	LocalVTEP     netip.Addr
}

// NextHop is a remote VTEP with the router MAC it advertised for the
// VRF's L3VNI.
type NextHop struct {
	VTEP      netip.Addr
	RouterMAC evpn.MAC
}

// NeighEntry is an extern_learn, NUD_NOARP neighbour: on a member SVI an
// ARP/ND suppression entry for a remote host; on the L3VNI's SVI a
// remote VTEP (or its IPv4-mapped IPv6 address, the next hop of IPv6
// routes) resolved to its router MAC.
type NeighEntry struct {
	Dev string
	IP  netip.Addr
	MAC evpn.MAC
}

// RMACEntry is the VXLAN FDB entry of a remote router MAC on the L3VNI's
// VXLAN device (self and master, extern_learn), with the number of
// routes that use it.
type RMACEntry struct {
	MAC    evpn.MAC
	VTEP   netip.Addr
	Routes int // not compared with the kernel
}

// RouteEntry is a route in the VRF's table via the L3VNI's SVI, onlink,
// marked RouteProtocol: a host route (symmetric IRB) or a type-5 prefix,
// with one next hop per VTEP (ECMP when several). IPv6 routes go via the
// VTEPs' IPv4-mapped addresses, as zebra installs them (the kernel refuses
// an IPv4 gateway, RTA_VIA, in an IPv6 route).
type RouteEntry struct {
	Prefix netip.Prefix
	VTEPs  []netip.Addr // sorted, distinct
}

// gateway returns the next hop address of vtep for a route of p's family.
func gateway(p netip.Prefix, vtep netip.Addr) netip.Addr {
	if p.Addr().Is6() {
		return netip.AddrFrom16(vtep.As16())
	}
	return vtep
}

// L3State is the whole kernel state of one VRF, wanted or found.
type L3State struct {
	Neighs []NeighEntry
	RMACs  []RMACEntry
	Routes []RouteEntry
}

// Refusal is a remote route fib does not install, and why.
type Refusal struct {
	Prefix netip.Prefix
	Reason string
}

// L3Desired holds the remote L3 state of one VRF: suppression neighbours,
// host routes and type-5 paths. Its mutations only update maps under a
// mutex and wake the reconciler (a channel with a buffer of one); they
// never do IO, so they may be called from BGP callbacks.
type L3Desired struct {
	mu     sync.Mutex
	dev    L3Devices
	neighs map[neighKey]evpn.MAC
	// handovers are neighbours to hand over to the kernel (HandOverNeigh)
	// that the reconciler has not taken yet.
	handovers map[neighKey]evpn.MAC
	hosts     map[netip.Addr]NextHop
	paths     map[netip.Prefix]map[netip.Addr]evpn.MAC // prefix → VTEP → router MAC
	// gen counts mutations: the reconciler derives the kernel state again
	// only when it moved.
	gen  uint64
	wake chan struct{}
}

type neighKey struct {
	dev string
	ip  netip.Addr
}

// NewL3Desired returns an empty desired state for the VRF of dev.
func NewL3Desired(dev L3Devices) *L3Desired {
	return &L3Desired{dev: dev, neighs: map[neighKey]evpn.MAC{}, handovers: map[neighKey]evpn.MAC{}, hosts: map[netip.Addr]NextHop{},
		paths: map[netip.Prefix]map[netip.Addr]evpn.MAC{}, wake: make(chan struct{}, 1)}
}

// Wake is signalled (buffer of one) after every change.
func (d *L3Desired) Wake() <-chan struct{} { return d.wake }

func (d *L3Desired) notify() {
	d.mu.Lock()
	d.gen++
	d.mu.Unlock()
	d.signal()
}

func (d *L3Desired) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Devices returns the VRF's devices.
func (d *L3Desired) Devices() L3Devices { return d.dev }

func checkNextHop(nh NextHop) error {
	if err := validVTEP(nh.VTEP); err != nil {
		return err
	}
	if !nh.VTEP.Is4() {
		// evpnd's VTEPs are IPv4 (configs); routes go via the VTEP or, for
		// IPv6, its IPv4-mapped address.
		return fmt.Errorf("VTEP %s: want an IPv4 VTEP for a routed next hop", nh.VTEP)
	}
	if !nh.RouterMAC.IsUnicast() {
		return fmt.Errorf("router MAC %s of VTEP %s is not a unicast MAC", nh.RouterMAC, nh.VTEP)
	}
	return nil
}

// SetNeigh wants ip resolved to mac on the member SVI svi (ARP/ND
// suppression for a remote host).
func (d *L3Desired) SetNeigh(svi string, ip netip.Addr, mac evpn.MAC) error {
	if svi == "" || !ip.IsValid() || !mac.IsUnicast() {
		return fmt.Errorf("neighbour %s %s on %q: want an SVI, an IP address and a unicast MAC", ip, mac, svi)
	}
	k := neighKey{svi, ip.Unmap()}
	d.mu.Lock()
	d.neighs[k] = mac
	delete(d.handovers, k)
	d.mu.Unlock()
	d.notify()
	return nil
}

// DeleteNeigh removes the suppression entry of ip on svi.
func (d *L3Desired) DeleteNeigh(svi string, ip netip.Addr) {
	k := neighKey{svi, ip.Unmap()}
	d.mu.Lock()
	delete(d.neighs, k)
	delete(d.handovers, k)
	d.mu.Unlock()
	d.notify()
}

// HandOverNeigh removes the suppression entry of ip on svi as
// DeleteNeigh does, but hands it over to the kernel rather than delete
// it: the reconciler replaces it by a kernel-owned neighbour to mac in
// NUD_PROBE (an L3Handover op), so that the host stays reachable and the
// kernel confirms it at once. Call it when the remote host became local
// (it moved here with its MAC). The handover is written even when fib
// has no entry for ip, unless ip is wanted again (SetNeigh) first.
func (d *L3Desired) HandOverNeigh(svi string, ip netip.Addr, mac evpn.MAC) error {
	if svi == "" || !ip.IsValid() || !mac.IsUnicast() {
		return fmt.Errorf("neighbour %s %s on %q: want an SVI, an IP address and a unicast MAC", ip, mac, svi)
	}
	k := neighKey{svi, ip.Unmap()}
	d.mu.Lock()
	delete(d.neighs, k)
	d.handovers[k] = mac
	d.mu.Unlock()
	d.notify()
	return nil
}

// takeHandovers returns the pending handovers and forgets them.
func (d *L3Desired) takeHandovers() map[neighKey]evpn.MAC {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.handovers) == 0 {
		return nil
	}
	m := d.handovers
	d.handovers = map[neighKey]evpn.MAC{}
	return m
}

// SetHost wants a host route (/32 or /128) to ip via nh: the selected
// location of a remote MAC+IP route. A host that moves is a SetHost with
// the new next hop (the route is replaced in place).
func (d *L3Desired) SetHost(ip netip.Addr, nh NextHop) error {
	if !ip.IsValid() {
		return errors.New("host route: no IP address")
	}
	if err := checkNextHop(nh); err != nil {
		return fmt.Errorf("host route %s: %w", ip, err)
	}
	d.mu.Lock()
	d.hosts[ip.Unmap()] = nh
	d.mu.Unlock()
	d.notify()
	return nil
}

// DeleteHost removes the host route to ip.
func (d *L3Desired) DeleteHost(ip netip.Addr) {
	d.mu.Lock()
	delete(d.hosts, ip.Unmap())
	d.mu.Unlock()
	d.notify()
}

// AddPath adds nh as a path of type-5 prefix p (one per advertising VTEP;
// several make ECMP).
func (d *L3Desired) AddPath(p netip.Prefix, nh NextHop) error {
	if !p.IsValid() || p.Masked() != p {
		return fmt.Errorf("type-5 prefix %s: not a network prefix", p)
	}
	if err := checkNextHop(nh); err != nil {
		return fmt.Errorf("type-5 prefix %s: %w", p, err)
	}
	d.mu.Lock()
	m := d.paths[p]
	if m == nil {
		m = map[netip.Addr]evpn.MAC{}
		d.paths[p] = m
	}
	m[nh.VTEP] = nh.RouterMAC
	d.mu.Unlock()
	d.notify()
	return nil
}

// DeletePath removes the path of p via vtep.
func (d *L3Desired) DeletePath(p netip.Prefix, vtep netip.Addr) {
	d.mu.Lock()
	if m := d.paths[p]; m != nil {
		delete(m, vtep)
		if len(m) == 0 {
			delete(d.paths, p)
		}
	}
	d.mu.Unlock()
	d.notify()
}

// L3Snapshot is a copy of an L3Desired's contents.
type L3Snapshot struct {
	Dev    L3Devices
	Neighs map[NeighEntry]bool
	Hosts  map[netip.Addr]NextHop
	Paths  map[netip.Prefix]map[netip.Addr]evpn.MAC
}

// Snapshot copies the desired state.
func (d *L3Desired) Snapshot() L3Snapshot {
	s, _ := d.snapshotGen()
	return s
}

// generation returns the count of mutations so far.
func (d *L3Desired) generation() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gen
}

// snapshotGen copies the desired state and returns its generation.
func (d *L3Desired) snapshotGen() (L3Snapshot, uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := L3Snapshot{Dev: d.dev, Neighs: make(map[NeighEntry]bool, len(d.neighs)), Hosts: make(map[netip.Addr]NextHop, len(d.hosts)),
		Paths: make(map[netip.Prefix]map[netip.Addr]evpn.MAC, len(d.paths))}
	for k, mac := range d.neighs {
		s.Neighs[NeighEntry{Dev: k.dev, IP: k.ip, MAC: mac}] = true
	}
	for ip, nh := range d.hosts {
		s.Hosts[ip] = nh
	}
	for p, m := range d.paths {
		c := make(map[netip.Addr]evpn.MAC, len(m))
		for v, mac := range m {
			c[v] = mac
		}
		s.Paths[p] = c
	}
	return s, d.gen
}

// WantL3 computes the kernel state a snapshot wants. It is pure.
//
//   - Each host gives a /32 or /128 route via its VTEP; each type-5 prefix
//     a route with a next hop per VTEP. A host route and a type-5 route for
//     the same /32 (/128) are one route: the host's (the selected location
//     of the host). Covering prefixes coexist with host routes; longest
//     match picks the host.
//   - In a table that routes the underlay (UnderlayTable), a route whose
//     prefix holds a VTEP address (a next hop of the VRF, or the local
//     VTEP) is refused, except a default route (never more specific than
//     the underlay's route to a VTEP): installing it would send the
//     tunnel's own packets into the tunnel. The default route goes in
//     with LastResortMetric, next to (never over) a default route of the
//     operator's.
//   - Router MACs are counted per VTEP (the VRF fixes the L3VNI, so the
//     key is (VTEP, L3VNI)): each route's next hop needs its VTEP's router
//     MAC as a neighbour on the L3VNI SVI (and, for IPv6 routes, one for
//     the VTEP's IPv4-mapped address) and as an FDB entry on the L3VNI
//     device. A router MAC goes with the last route using it. Should two
//     routes give one VTEP different router MACs, the one more routes
//     carry wins (ties: the lower MAC).
func WantL3(s L3Snapshot) (L3State, []Refusal) {
	routes := map[netip.Prefix]map[netip.Addr]evpn.MAC{}
	for p, m := range s.Paths {
		routes[p] = m
	}
	for ip, nh := range s.Hosts {
		routes[netip.PrefixFrom(ip, ip.BitLen())] = map[netip.Addr]evpn.MAC{nh.VTEP: nh.RouterMAC}
	}
	vteps := map[netip.Addr]bool{}
	if s.Dev.LocalVTEP.IsValid() {
		vteps[s.Dev.LocalVTEP] = true
	}
	for _, m := range routes {
		for v := range m {
			vteps[v] = true
		}
	}
	var out L3State
	var refused []Refusal
	type rmacKey struct {
		vtep netip.Addr
		mac  evpn.MAC
	}
	count := map[rmacKey]int{}
	for p, m := range routes {
		if s.Dev.UnderlayTable && p.Bits() > 0 {
			if v, hit := holdsAny(p, vteps); hit {
				refused = append(refused, Refusal{Prefix: p, Reason: fmt.Sprintf("holds VTEP address %s and the VRF's table routes the underlay: the tunnel's own packets would be routed into it", v)})
				delete(routes, p)
				continue
			}
		}
		for v, mac := range m {
			count[rmacKey{v, mac}]++
		}
	}
	best := map[netip.Addr]RMACEntry{}
	for k, n := range count {
		b, ok := best[k.vtep]
		if !ok || n > b.Routes || (n == b.Routes && macLess(k.mac, b.MAC)) {
			best[k.vtep] = RMACEntry{MAC: k.mac, VTEP: k.vtep, Routes: n}
		}
	}
	// The L3VNI's FDB holds one VTEP per MAC: a router MAC claimed by two
	// VTEPs (a misconfiguration) stays with the lower one, and the other's
	// paths are not installed.
	owner := map[evpn.MAC]netip.Addr{}
	for v, e := range best {
		if o, ok := owner[e.MAC]; !ok || v.Less(o) {
			owner[e.MAC] = v
		}
	}
	v6 := map[netip.Addr]bool{} // VTEPs with IPv6 routes
	for p, m := range routes {
		r := RouteEntry{Prefix: p}
		var clash netip.Addr
		for v := range m {
			if owner[best[v].MAC] != v {
				clash = v
				continue
			}
			r.VTEPs = append(r.VTEPs, v)
			if p.Addr().Is6() {
				v6[v] = true
			}
		}
		if len(r.VTEPs) == 0 {
			refused = append(refused, Refusal{Prefix: p, Reason: fmt.Sprintf("VTEP %s advertises router MAC %s, which VTEP %s also does: one of the leafs must change its router-mac", clash, best[clash].MAC, owner[best[clash].MAC])})
			continue
		}
		slices.SortFunc(r.VTEPs, func(a, b netip.Addr) int { return a.Compare(b) })
		out.Routes = append(out.Routes, r)
	}
	for v, e := range best {
		if owner[e.MAC] != v {
			continue
		}
		out.RMACs = append(out.RMACs, e)
		out.Neighs = append(out.Neighs, NeighEntry{Dev: s.Dev.SVI, IP: v, MAC: e.MAC})
		if v6[v] {
			out.Neighs = append(out.Neighs, NeighEntry{Dev: s.Dev.SVI, IP: netip.AddrFrom16(v.As16()), MAC: e.MAC})
		}
	}
	for n := range s.Neighs {
		out.Neighs = append(out.Neighs, n)
	}
	out.sort()
	slices.SortFunc(refused, func(a, b Refusal) int { return prefixCompare(a.Prefix, b.Prefix) })
	return out, refused
}

func holdsAny(p netip.Prefix, vteps map[netip.Addr]bool) (netip.Addr, bool) {
	for v := range vteps {
		if p.Contains(v) || p.Contains(netip.AddrFrom16(v.As16())) {
			return v, true
		}
	}
	return netip.Addr{}, false
}

func macLess(a, b evpn.MAC) bool { return slices.Compare(a[:], b[:]) < 0 }

func prefixCompare(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

func (s *L3State) sort() {
	slices.SortFunc(s.Neighs, func(a, b NeighEntry) int {
		if a.Dev != b.Dev {
			if a.Dev < b.Dev {
				return -1
			}
			return 1
		}
		return a.IP.Compare(b.IP)
	})
	slices.SortFunc(s.RMACs, func(a, b RMACEntry) int {
		if c := a.VTEP.Compare(b.VTEP); c != 0 {
			return c
		}
		return bytes.Compare(a.MAC[:], b.MAC[:])
	})
	slices.SortFunc(s.Routes, func(a, b RouteEntry) int { return prefixCompare(a.Prefix, b.Prefix) })
}

// L3OpKind is what an L3Op does.
type L3OpKind uint8

const (
	L3Replace L3OpKind = iota + 1
	L3Delete
	// L3Handover (neighbours only) gives one of fib's suppression
	// neighbours to the kernel: it is replaced by a kernel-owned entry
	// (no extern_learn) to the same host MAC in NUD_PROBE, which the
	// kernel confirms at once with a unicast ARP/NS. For fib it is a
	// delete: the entry is no longer its own.
	L3Handover
)

// Removes reports whether the op takes the entry out of fib's hands (a
// delete or a handover).
func (k L3OpKind) Removes() bool { return k == L3Delete || k == L3Handover }

// L3Op is one kernel write of a VRF's L3 state: exactly one of Neigh,
// RMAC and Route is set.
type L3Op struct {
	Kind  L3OpKind
	Neigh *NeighEntry
	RMAC  *RMACEntry
	Route *RouteEntry
}

// String renders the op as the iproute2 command that does the same.
func (op L3Op) String(dev L3Devices) string {
	verb := "replace"
	if op.Kind == L3Delete {
		verb = "del"
	}
	switch {
	case op.Neigh != nil:
		n := op.Neigh
		switch op.Kind {
		case L3Delete:
			return fmt.Sprintf("ip neigh del %s dev %s", n.IP, n.Dev)
		case L3Handover:
			return fmt.Sprintf("ip neigh replace %s lladdr %s dev %s nud probe", n.IP, n.MAC, n.Dev)
		}
		return fmt.Sprintf("ip neigh replace %s lladdr %s dev %s nud noarp extern_learn", n.IP, n.MAC, n.Dev)
	case op.RMAC != nil:
		r := op.RMAC
		if op.Kind == L3Delete {
			return fmt.Sprintf("bridge fdb del %s dev %s self master", r.MAC, dev.VXLAN)
		}
		return fmt.Sprintf("bridge fdb replace %s dev %s dst %s self master extern_learn", r.MAC, dev.VXLAN, r.VTEP)
	case op.Route != nil:
		r := op.Route
		s := fmt.Sprintf("ip route %s %s", verb, r.Prefix)
		if op.Kind == L3Delete {
			return s + fmt.Sprintf(" table %d proto %d", dev.Table, RouteProtocol)
		}
		if len(r.VTEPs) == 1 {
			s += fmt.Sprintf(" via %s dev %s onlink", gateway(r.Prefix, r.VTEPs[0]), dev.SVI)
		} else {
			for _, v := range r.VTEPs {
				s += fmt.Sprintf(" nexthop via %s dev %s onlink", gateway(r.Prefix, v), dev.SVI)
			}
		}
		if lastResort(dev, r.Prefix) {
			s += fmt.Sprintf(" metric %d", uint32(LastResortMetric))
		}
		return s + fmt.Sprintf(" table %d proto %d", dev.Table, RouteProtocol)
	}
	return "l3op(empty)"
}

// PlanL3 returns the writes that turn have (fib's marked entries found in
// the kernel) into want. It is pure. Entries that match are left alone, so
// fib's own writes, read back, cost nothing. Entries in have that are not
// wanted are deleted only when prune is set (after BGP has re-synced: a
// restart leaves the previous run's entries in place until then).
//
// Order: router MAC FDB entries and neighbours before the routes that
// need them; route deletes before the router MACs they used.
func PlanL3(want, have L3State, prune bool) []L3Op {
	return PlanL3With(want, have, func(L3Op) bool { return prune })
}

// L3Key identifies an L3 entry: its kind and what the kernel keys it by
// (device and IP for a neighbour, MAC for a router MAC, prefix for a
// route).
type L3Key struct {
	Kind   uint8 // 1 neighbour, 2 router MAC, 3 route
	Dev    string
	IP     netip.Addr
	MAC    evpn.MAC
	Prefix netip.Prefix
}

// Key returns the key of the entry op writes.
func (op L3Op) Key() L3Key {
	switch {
	case op.Neigh != nil:
		return L3Key{Kind: 1, Dev: op.Neigh.Dev, IP: op.Neigh.IP}
	case op.RMAC != nil:
		return L3Key{Kind: 2, MAC: op.RMAC.MAC}
	case op.Route != nil:
		return L3Key{Kind: 3, Prefix: op.Route.Prefix}
	}
	return L3Key{}
}

// PlanL3With is PlanL3 where mayDelete says, per unwanted entry found in
// the kernel (an L3Delete op), whether it may be deleted.
func PlanL3With(want, have L3State, mayDelete func(L3Op) bool) []L3Op {
	var ops []L3Op
	hn := map[neighKey]evpn.MAC{}
	for _, n := range have.Neighs {
		hn[neighKey{n.Dev, n.IP}] = n.MAC
	}
	hr := map[evpn.MAC]netip.Addr{}
	for _, r := range have.RMACs {
		hr[r.MAC] = r.VTEP
	}
	hroutes := map[netip.Prefix][]netip.Addr{}
	for _, r := range have.Routes {
		hroutes[r.Prefix] = r.VTEPs
	}
	wn := map[neighKey]bool{}
	wr := map[evpn.MAC]bool{}
	wroutes := map[netip.Prefix]bool{}
	for i := range want.RMACs {
		r := &want.RMACs[i]
		wr[r.MAC] = true
		if v, ok := hr[r.MAC]; !ok || v != r.VTEP {
			ops = append(ops, L3Op{Kind: L3Replace, RMAC: r})
		}
	}
	for i := range want.Neighs {
		n := &want.Neighs[i]
		k := neighKey{n.Dev, n.IP}
		wn[k] = true
		if mac, ok := hn[k]; !ok || mac != n.MAC {
			ops = append(ops, L3Op{Kind: L3Replace, Neigh: n})
		}
	}
	for i := range want.Routes {
		r := &want.Routes[i]
		wroutes[r.Prefix] = true
		if v, ok := hroutes[r.Prefix]; !ok || !slices.Equal(v, r.VTEPs) {
			ops = append(ops, L3Op{Kind: L3Replace, Route: r})
		}
	}
	del := func(op L3Op) {
		if mayDelete(op) {
			ops = append(ops, op)
		}
	}
	for i := range have.Routes {
		if r := &have.Routes[i]; !wroutes[r.Prefix] {
			del(L3Op{Kind: L3Delete, Route: r})
		}
	}
	for i := range have.Neighs {
		if n := &have.Neighs[i]; !wn[neighKey{n.Dev, n.IP}] {
			del(L3Op{Kind: L3Delete, Neigh: n})
		}
	}
	for i := range have.RMACs {
		if r := &have.RMACs[i]; !wr[r.MAC] {
			del(L3Op{Kind: L3Delete, RMAC: r})
		}
	}
	return ops
}
