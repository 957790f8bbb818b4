package evpn

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// L3VRF describes one tenant VRF to the L3 model (RFC 9135 symmetric IRB
// over an L3VNI, RFC 9136 type-5).
type L3VRF struct {
	Name      string
	L3VNI     uint32
	RD        RD  // of the VRF's type-5 routes
	RouterMAC MAC // this leaf's router MAC in the VRF
	ExportRTs []RT
	// Import selects the MAC+IP routes whose IP part (the host route) and
	// the type-5 routes that belong to this VRF. Its VNI is ignored: it is
	// the L3VNI.
	Import  ImportRule
	Members []L3Member
}

// L3Member is an L2VNI routed in a VRF: its SVI carries the anycast
// gateway.
type L3Member struct {
	L2VNI     uint32
	RD        RD   // the L2VNI's RD, of its MAC and MAC+IP routes
	ExportRTs []RT // the L2VNI's export RTs
	// Import selects the MAC+IP routes whose MAC part (the ARP/ND
	// suppression neighbour) belongs to this L2VNI; its VNI is ignored.
	Import     ImportRule
	GatewayMAC MAC
	GatewayIPs []netip.Addr // the anycast gateway addresses, never hosts
}

// L3Options configure an L3Table.
type L3Options struct {
	// LocalVTEP and RouterID identify this leaf's own routes, as in
	// Options.
	LocalVTEP netip.Addr
	RouterID  netip.Addr
	VRFs      []L3VRF
}

// NextHop is a remote VTEP with the router MAC it advertised for a VRF's
// L3VNI: the next hop of a host or prefix route, resolved to that MAC on
// the L3VNI's SVI and in its VXLAN FDB.
type NextHop struct {
	VTEP      netip.Addr
	RouterMAC MAC
}

// Neigh is an ARP/ND suppression entry: IP resolves to MAC on the SVI of
// L2VNI (installed extern_learn, NUD_NOARP).
type Neigh struct {
	L2VNI uint32
	IP    netip.Addr
	MAC   MAC
}

// HostRoute is a /32 or /128 route to IP in the VRF, through the L3VNI
// towards NextHop (symmetric IRB, RFC 9135 §4.2).
type HostRoute struct {
	VRF     string
	L3VNI   uint32
	IP      netip.Addr
	NextHop NextHop
}

// PrefixRoute is a type-5 prefix in the VRF with one next hop per VTEP
// that advertises it (ECMP when several), sorted by VTEP.
type PrefixRoute struct {
	VRF      string
	L3VNI    uint32
	Prefix   netip.Prefix
	NextHops []NextHop
}

// RouterMAC is the router MAC a remote VTEP uses for a VRF's L3VNI, with
// the number of received routes carrying it.
type RouterMAC struct {
	VRF    string
	L3VNI  uint32
	VTEP   netip.Addr
	MAC    MAC
	Routes int
}

// L3EffectKind says what the caller must do with an L3Effect.
type L3EffectKind uint8

const (
	// L3SetNeigh / L3DelNeigh: install (replace in place) or remove Neigh.
	L3SetNeigh L3EffectKind = iota + 1
	L3DelNeigh
	// L3SetHost / L3DelHost: install (replace in place) or remove Host.
	L3SetHost
	L3DelHost
	// L3SetPrefix: install Prefix with exactly its NextHops (replace);
	// L3DelPrefix: remove it.
	L3SetPrefix
	L3DelPrefix
	// L3Advertise: originate (or update) Route; L3Withdraw: withdraw the
	// local route with key Route.Key.
	L3Advertise
	L3Withdraw
	// L3Rejected: a received route, or the part of it named in Reason, is
	// not installed. It asks for no action.
	L3Rejected
	// L3GatewayConflict: a received MAC+IP route for an anycast gateway
	// address of a local routed L2VNI (or one with the Default Gateway
	// community) carries another MAC than this leaf's gateway MAC: the
	// leaf at Gateway.VTEP is configured with a different gateway MAC.
	// The route is not installed (an L3Rejected follows); the caller
	// warns. It asks for no kernel action.
	L3GatewayConflict
	// L3ProbeNeigh: the suppression neighbour of Neigh.IP (L3SetNeigh)
	// is no longer wanted because the host is now local here, behind
	// Neigh.MAC: hand the entry over to the kernel rather than delete it.
	// The caller replaces it by a kernel-owned neighbour (no
	// extern_learn) to Neigh.MAC in NUD_PROBE, so that the kernel keeps
	// forwarding to the host and confirms it at once with a unicast
	// ARP/NS; the host's answer makes it REACHABLE (a LocalHost report),
	// its silence FAILED (LocalHostGone). It replaces the L3DelNeigh.
	L3ProbeNeigh
)

func (k L3EffectKind) String() string {
	switch k {
	case L3SetNeigh:
		return "set-neigh"
	case L3DelNeigh:
		return "del-neigh"
	case L3SetHost:
		return "set-host"
	case L3DelHost:
		return "del-host"
	case L3SetPrefix:
		return "set-prefix"
	case L3DelPrefix:
		return "del-prefix"
	case L3Advertise:
		return "advertise"
	case L3Withdraw:
		return "withdraw"
	case L3Rejected:
		return "rejected"
	case L3GatewayConflict:
		return "gateway-conflict"
	case L3ProbeNeigh:
		return "probe-neigh"
	}
	return fmt.Sprintf("L3EffectKind(%d)", k)
}

// L3Effect is one consequence of an input to the L3Table. Which field is
// set depends on Kind.
type L3Effect struct {
	Kind    L3EffectKind
	Neigh   Neigh
	Host    HostRoute
	Prefix  PrefixRoute
	Route   *Route // L3Advertise, L3Withdraw (key only), L3Rejected, L3GatewayConflict
	Reason  string
	Gateway GatewayConflict // L3GatewayConflict
}

// GatewayConflict is a remote leaf's anycast gateway that differs from
// this leaf's: on L2VNI, the leaf at VTEP advertises gateway address IP
// with MAC where this leaf has Local.
type GatewayConflict struct {
	L2VNI     uint32
	IP        netip.Addr
	MAC       MAC
	Local     MAC
	VTEP      netip.Addr
	DefaultGW bool // the route carries the Default Gateway community
}

type l3cand struct {
	mac    MAC
	vtep   netip.Addr
	seq    uint32
	sticky bool
}

func (c l3cand) candidate() candidate { return candidate{vtep: c.vtep, seq: c.seq, sticky: c.sticky} }

// hostKey is one IP in one L2VNI (neighbour) or in one VRF (host route,
// vni = the L3VNI).
type hostKey struct {
	vni uint32
	ip  netip.Addr
}

type localHost struct {
	mac    MAC
	seq    uint32
	sticky bool
	// away is set while the MAC Table has the MAC at another leaf
	// (LocalMACAway): the binding is kept but not advertised.
	away bool
	// adv is set while the MAC+IP route is advertised (the local host
	// wins its IP), advAs is what was advertised.
	adv   bool
	advAs hostBid
}

type hostBid struct {
	mac    MAC
	seq    uint32
	sticky bool
}

func (l localHost) bid() hostBid { return hostBid{l.mac, l.seq, l.sticky} }

// ipState selects one location for an IP in an L2VNI or a VRF.
type ipState struct {
	remote    l3remotes
	installed bool
	inst      l3cand // what the caller was told, when installed
	instRMAC  MAC
}

// l3remotes are the received MAC+IP routes for one IP in an L2VNI or a
// VRF: usually one, so a slice, far smaller than a map by route Key (at
// 50k hosts the maps held about 2.5 KB per route).
type l3remotes []l3remote

// l3remote is one of them: the parts of its route's Key that vary within
// the IP's state (the type is MAC+IP; the IP is the state's, unmapped; the
// MAC is the candidate's), and its candidacy.
type l3remote struct {
	rd     RD
	ethTag uint32
	mapped bool // the Key's IP is IPv4-mapped IPv6
	l3cand
}

func (r *l3remote) is(k Key) bool {
	return r.mac == k.MAC && r.rd == k.RD && r.ethTag == k.EthTag && r.mapped == k.IP.Is4In6()
}

// set records the route k (whose MAC is c's) as c.
func (rs *l3remotes) set(k Key, c l3cand) {
	for i := range *rs {
		if (*rs)[i].is(k) {
			(*rs)[i].l3cand = c
			return
		}
	}
	*rs = append(*rs, l3remote{rd: k.RD, ethTag: k.EthTag, mapped: k.IP.Is4In6(), l3cand: c})
}

func (rs *l3remotes) del(k Key) {
	s := *rs
	for i := range s {
		if s[i].is(k) {
			s[i] = s[len(s)-1]
			*rs = s[:len(s)-1]
			if len(*rs) == 0 {
				*rs = nil
			}
			return
		}
	}
}

type prefixKey struct {
	l3vni  uint32
	prefix netip.Prefix
}

type prefixState struct {
	paths     map[Key]netip.Addr // route → VTEP
	installed []NextHop
}

type rmacKey struct {
	l3vni uint32
	vtep  netip.Addr
}

type rmacState struct {
	mac  MAC
	refs int
}

// l3ref is what the table keeps of a received route it imported.
type l3ref struct {
	neigh  *hostKey // MAC part: (L2VNI, IP)
	host   *hostKey // IP part: (L3VNI, IP)
	prefix *prefixKey
	rmac   *rmacKey
}

// L3Table holds the L3 side of a leaf's EVPN state: per (L2VNI, IP) the
// selected MAC of a remote host (ARP/ND suppression), per (VRF, IP) its
// selected VTEP (host route), per (VRF, prefix) the VTEPs of type-5 routes
// (ECMP), and per (VTEP, L3VNI) the remote router MAC; and the local hosts
// it originates MAC+IP routes for. Like Table it is a pure state machine,
// not safe for concurrent use. With no VRFs configured it imports nothing
// and originates nothing.
//
// Selection follows RFC 7432 §15 as for MACs: a MAC+IP route carries the
// mobility sequence of its MAC, so the same rule (sticky, then the higher
// sequence, then the lower VTEP) picks one route per (L2VNI, IP) and per
// (VRF, IP) across RDs, and across MACs when an IP moved to a new MAC. A
// local host wins unless a remote route outbids it (a higher sequence, or
// sticky): the caller gives local hosts their MAC's sequence.
//
// Import is by route target (RFC 7432 §7.10, RFC 9135 §5.1): the MAC part
// of a MAC+IP route by the member L2VNIs' rules, its IP part by the VRFs'
// rules (and only with an L3VNI label and a Router's MAC), type-5 routes
// by the VRFs' rules. A MAC-only route for the same host is the MAC
// Table's business; both coexist, as their NLRIs differ.
type L3Table struct {
	opts    L3Options
	l2imp   *Importer
	l3imp   *Importer
	vrfs    map[uint32]*L3VRF   // by L3VNI
	members map[uint32]l3member // by L2VNI
	routes  map[Key]l3ref
	neighs  map[hostKey]*ipState // (L2VNI, IP)
	// byMAC indexes the installed neighbours by their MAC (LocalMACSeq's
	// inheritance).
	byMAC map[MACKey]map[netip.Addr]struct{}
	hosts map[hostKey]*ipState // (L3VNI, IP)
	local map[hostKey]localHost
	prefs map[prefixKey]*prefixState
	rmacs map[rmacKey]*rmacState
}

type l3member struct {
	vrf *L3VRF
	m   *L3Member
}

// NewL3Table returns an empty L3 table for the VRFs of opts.
func NewL3Table(opts L3Options) *L3Table {
	t := &L3Table{opts: opts, vrfs: map[uint32]*L3VRF{}, members: map[uint32]l3member{},
		routes: map[Key]l3ref{}, neighs: map[hostKey]*ipState{}, byMAC: map[MACKey]map[netip.Addr]struct{}{}, hosts: map[hostKey]*ipState{},
		local: map[hostKey]localHost{}, prefs: map[prefixKey]*prefixState{}, rmacs: map[rmacKey]*rmacState{}}
	t.opts.VRFs = nil
	for _, v := range opts.VRFs {
		t.addVRF(v)
	}
	t.index()
	return t
}

// addVRF adds v (a copy) to the VRFs, without the importers.
func (t *L3Table) addVRF(v L3VRF) {
	v.Members = slices.Clone(v.Members)
	t.opts.VRFs = append(t.opts.VRFs, v)
}

// index rebuilds the lookups from t.opts.VRFs: the VRFs by L3VNI, the
// members by L2VNI and the importers, in configuration order.
func (t *L3Table) index() {
	clear(t.vrfs)
	clear(t.members)
	var l2, l3 []ImportRule
	for i := range t.opts.VRFs {
		v := &t.opts.VRFs[i]
		t.vrfs[v.L3VNI] = v
		r := v.Import
		r.VNI = v.L3VNI
		l3 = append(l3, r)
		for j := range v.Members {
			m := &v.Members[j]
			t.members[m.L2VNI] = l3member{v, m}
			r := m.Import
			r.VNI = m.L2VNI
			l2 = append(l2, r)
		}
	}
	t.l2imp, t.l3imp = NewImporter(l2), NewImporter(l3)
}

// AddVRF adds tenant VRF v at run time (a config reload). Its L3VNI and
// member L2VNIs must be in no VRF of the table. Routes received before it
// that it imports are not in the table: feed them again (Update), and
// report its local hosts (LocalHost).
func (t *L3Table) AddVRF(v L3VRF) error {
	if _, ok := t.vrfs[v.L3VNI]; ok {
		return fmt.Errorf("l3 table: vrf %s: l3vni %d is in use", v.Name, v.L3VNI)
	}
	for _, m := range v.Members {
		if o, ok := t.members[m.L2VNI]; ok {
			return fmt.Errorf("l3 table: vrf %s: l2vni %d is routed in vrf %s", v.Name, m.L2VNI, o.vrf.Name)
		}
	}
	t.addVRF(v)
	t.index()
	return nil
}

// RemoveVRF removes the VRF with l3vni at run time (a config reload) and
// returns what undoes its state: the removal of its installed suppression
// neighbours, host and prefix routes, and the withdrawal of its local
// MAC+IP routes, in a stable order. The parts of received routes that it
// imported are forgotten (a route imported by another VRF too stays
// there). An unknown l3vni changes nothing.
func (t *L3Table) RemoveVRF(l3vni uint32) []L3Effect {
	v, ok := t.vrfs[l3vni]
	if !ok {
		return nil
	}
	member := map[uint32]bool{}
	for _, m := range v.Members {
		member[m.L2VNI] = true
	}
	var eff []L3Effect
	// Local hosts: their advertised routes are withdrawn.
	var locals []hostKey
	advAs := map[hostKey]MAC{}
	for k, l := range t.local {
		if member[k.vni] {
			if l.adv {
				locals = append(locals, k)
				advAs[k] = l.advAs.mac
			}
			delete(t.local, k)
		}
	}
	slices.SortFunc(locals, compareHostKey)
	for _, k := range locals {
		m := t.members[k.vni]
		eff = append(eff, L3Effect{Kind: L3Withdraw, Route: &Route{Key: Key{Type: RouteTypeMACIP, RD: m.m.RD, MAC: advAs[k], IP: k.ip}}})
	}
	// Received routes forget the parts of this VRF.
	for k, ref := range t.routes {
		if ref.neigh != nil && member[ref.neigh.vni] {
			ref.neigh = nil
		}
		if ref.host != nil && ref.host.vni == l3vni {
			ref.host = nil
		}
		if ref.prefix != nil && ref.prefix.l3vni == l3vni {
			ref.prefix = nil
		}
		if ref.rmac != nil && ref.rmac.l3vni == l3vni {
			ref.rmac = nil
		}
		if ref.neigh == nil && ref.host == nil && ref.prefix == nil {
			delete(t.routes, k)
			continue
		}
		t.routes[k] = ref
	}
	// Installed state is removed.
	var nks []hostKey
	neighMAC := map[hostKey]MAC{}
	for k, st := range t.neighs {
		if member[k.vni] {
			if st.installed {
				nks = append(nks, k)
				neighMAC[k] = st.inst.mac
				t.unindexNeigh(k, st.inst.mac)
			}
			delete(t.neighs, k)
		}
	}
	slices.SortFunc(nks, compareHostKey)
	for _, k := range nks {
		eff = append(eff, L3Effect{Kind: L3DelNeigh, Neigh: Neigh{L2VNI: k.vni, IP: k.ip, MAC: neighMAC[k]}})
	}
	var hks []hostKey
	hosts := map[hostKey]*ipState{}
	for k, st := range t.hosts {
		if k.vni == l3vni {
			if st.installed {
				hks = append(hks, k)
				hosts[k] = st
			}
			delete(t.hosts, k)
		}
	}
	slices.SortFunc(hks, compareHostKey)
	for _, k := range hks {
		st := hosts[k]
		eff = append(eff, L3Effect{Kind: L3DelHost, Host: HostRoute{VRF: v.Name, L3VNI: l3vni, IP: k.ip, NextHop: NextHop{st.inst.vtep, st.instRMAC}}})
	}
	var pks []prefixKey
	prefs := map[prefixKey]*prefixState{}
	for k, st := range t.prefs {
		if k.l3vni == l3vni {
			if st.installed != nil {
				pks = append(pks, k)
				prefs[k] = st
			}
			delete(t.prefs, k)
		}
	}
	slices.SortFunc(pks, func(a, b prefixKey) int { return comparePrefix(a.prefix, b.prefix) })
	for _, k := range pks {
		eff = append(eff, L3Effect{Kind: L3DelPrefix, Prefix: PrefixRoute{VRF: v.Name, L3VNI: l3vni, Prefix: k.prefix, NextHops: prefs[k].installed}})
	}
	for k := range t.rmacs {
		if k.l3vni == l3vni {
			delete(t.rmacs, k)
		}
	}
	t.opts.VRFs = slices.DeleteFunc(t.opts.VRFs, func(x L3VRF) bool { return x.L3VNI == l3vni })
	t.index()
	return eff
}

func compareHostKey(a, b hostKey) int { return cmp.Or(cmp.Compare(a.vni, b.vni), a.ip.Compare(b.ip)) }

func (t *L3Table) isOwn(r *Route) bool {
	return (t.opts.LocalVTEP.IsValid() && r.VTEP() == t.opts.LocalVTEP) ||
		(t.opts.RouterID.IsValid() && r.Originator == t.opts.RouterID)
}

// isGateway reports whether ip is an anycast gateway address of l2vni.
func (t *L3Table) isGateway(l2vni uint32, ip netip.Addr) bool {
	m, ok := t.members[l2vni]
	return ok && slices.Contains(m.m.GatewayIPs, ip)
}

// Update feeds a received (best) route: type-2 routes with an IP and
// type-5 routes are considered, others ignored. Re-feeding the same route
// is harmless; a changed route for a known key replaces it.
func (t *L3Table) Update(r *Route) []L3Effect {
	if t.isOwn(r) || (r.Type != RouteTypeIPPrefix && !(r.Type == RouteTypeMACIP && r.IP.IsValid())) {
		return nil
	}
	eff, touched := t.remove(r.Key)
	reject := func(why string) []L3Effect {
		eff = append(eff, t.flush(touched)...)
		return append(eff, L3Effect{Kind: L3Rejected, Route: r, Reason: why})
	}
	vtep := r.VTEP()
	if !UsableVTEP(vtep) {
		return reject(ReasonUnusableVTEP)
	}
	if r.Encap != 0 && r.Encap != TunnelTypeVXLAN {
		return reject("encapsulation is not VXLAN")
	}
	ref := l3ref{}
	var why string
	switch r.Type {
	case RouteTypeMACIP:
		ip := r.IP.Unmap()
		if !r.MAC.IsUnicast() {
			return reject("MAC is not unicast")
		}
		if ip.IsMulticast() || ip.IsUnspecified() || ip.IsLoopback() {
			return reject("IP is not a unicast host address")
		}
		l2, l2ok := t.l2imp.VNIFor(r)
		if m, ok := t.members[l2]; l2ok && ok {
			gw := t.isGateway(l2, ip)
			if (gw || r.DefaultGW) && r.MAC != m.m.GatewayMAC {
				// Another leaf's gateway with another MAC: hosts that
				// move there, or whose ARP it answers, get a gateway MAC
				// this leaf does not own.
				eff = append(eff, L3Effect{Kind: L3GatewayConflict, Route: r, Gateway: GatewayConflict{
					L2VNI: l2, IP: ip, MAC: r.MAC, Local: m.m.GatewayMAC, VTEP: vtep, DefaultGW: r.DefaultGW}})
			}
			switch {
			case gw:
				return reject(fmt.Sprintf("IP %s is an anycast gateway address of VNI %d", ip, l2))
			case r.MAC == m.m.GatewayMAC:
				// Never a remote host over this leaf's own gateway.
				return reject(fmt.Sprintf("MAC %s is the anycast gateway MAC of VNI %d", r.MAC, l2))
			}
		}
		if r.DefaultGW {
			// RFC 7432 §7.8: a gateway, which every leaf has locally.
			return reject("default gateway route: the anycast gateway is local on every leaf")
		}
		c := l3cand{mac: r.MAC, vtep: vtep, seq: r.Seq, sticky: r.Sticky}
		if l2ok {
			k := hostKey{l2, ip}
			ref.neigh = &k
			t.ipState(t.neighs, k).remote.set(r.Key, c)
			touched = append(touched, touchNeigh(k))
		}
		if l3, ok := t.l3VNIFor(r); !ok {
			why = "no route target matches a VRF: no host route"
		} else if r.L3VNI() == 0 || !r.HasRMAC || !r.RouterMAC.IsUnicast() {
			why = "no L3VNI label or no unicast Router's MAC (asymmetric IRB or L2 only): no host route"
		} else {
			k := hostKey{l3, ip}
			ref.host = &k
			t.ipState(t.hosts, k).remote.set(r.Key, c)
			touched = append(touched, touchHost(k))
			ref.rmac = t.refRMAC(l3, vtep, r.RouterMAC, &touched)
		}
		if ref.neigh == nil && ref.host == nil {
			return reject("no route target matches a routed L2VNI or a VRF")
		}
	case RouteTypeIPPrefix:
		l3, ok := t.l3VNIFor(r)
		switch {
		case !ok:
			return reject("no route target matches a VRF")
		case r.L3VNI() == 0:
			return reject("type-5 with label 0: no L3VNI")
		case !r.HasRMAC || !r.RouterMAC.IsUnicast():
			return reject("type-5 without a unicast Router's MAC: unusable over VXLAN (RFC 9136 §4.4.1)")
		case r.GatewayIP.IsValid() && !r.GatewayIP.IsUnspecified():
			return reject(fmt.Sprintf("type-5 with gateway IP %s as overlay index: not supported", r.GatewayIP))
		case !r.ESI.IsZero():
			return reject(fmt.Sprintf("type-5 with ESI %s as overlay index: not supported", r.ESI))
		}
		p := r.Prefix.Masked()
		k := prefixKey{l3, p}
		ps := t.prefs[k]
		if ps == nil {
			ps = &prefixState{paths: map[Key]netip.Addr{}}
			t.prefs[k] = ps
		}
		ps.paths[r.Key] = vtep
		ref.prefix = &k
		touched = append(touched, touchPrefix(k))
		ref.rmac = t.refRMAC(l3, vtep, r.RouterMAC, &touched)
	}
	t.routes[r.Key] = ref
	eff = append(eff, t.flush(touched)...)
	if why != "" {
		eff = append(eff, L3Effect{Kind: L3Rejected, Route: r, Reason: why})
	}
	return eff
}

// l3VNIFor maps a route to a VRF by its RTs. Importer prefers the VNI
// equal to the first label, which for a MAC+IP route is the L2VNI: the
// L3VNI label is preferred here instead.
func (t *L3Table) l3VNIFor(r *Route) (uint32, bool) {
	l3 := r.L3VNI()
	probe := &Route{Key: Key{Type: RouteTypeIPPrefix}, Labels: []uint32{l3}, RTs: r.RTs}
	return t.l3imp.VNIFor(probe)
}

// PrefixRoute reports, for a received type-5 route by key, the L3VNI it
// imports into (ok false when it imports into none, or is unknown) and
// whether its path is among the next hops installed for its prefix.
func (t *L3Table) PrefixRoute(k Key) (l3vni uint32, ok, used bool) {
	ref, known := t.routes[k]
	if !known || ref.prefix == nil {
		return 0, false, false
	}
	st := t.prefs[*ref.prefix]
	if st == nil {
		return ref.prefix.l3vni, true, false
	}
	vtep := st.paths[k]
	return ref.prefix.l3vni, true, slices.ContainsFunc(st.installed, func(n NextHop) bool { return n.VTEP == vtep })
}

// Withdraw removes a received route by identity. Unknown keys are ignored.
func (t *L3Table) Withdraw(k Key) []L3Effect {
	eff, touched := t.remove(k)
	return append(eff, t.flush(touched)...)
}

// remove forgets a received route and says what it touched.
func (t *L3Table) remove(k Key) ([]L3Effect, []touch) {
	ref, ok := t.routes[k]
	if !ok {
		return nil, nil
	}
	delete(t.routes, k)
	var touched []touch
	if ref.neigh != nil {
		if st := t.neighs[*ref.neigh]; st != nil {
			st.remote.del(k)
		}
		touched = append(touched, touchNeigh(*ref.neigh))
	}
	if ref.host != nil {
		if st := t.hosts[*ref.host]; st != nil {
			st.remote.del(k)
		}
		touched = append(touched, touchHost(*ref.host))
	}
	if ref.prefix != nil {
		delete(t.prefs[*ref.prefix].paths, k)
		touched = append(touched, touchPrefix(*ref.prefix))
	}
	if ref.rmac != nil {
		if st := t.rmacs[*ref.rmac]; st != nil {
			if st.refs--; st.refs <= 0 {
				delete(t.rmacs, *ref.rmac)
			}
		}
	}
	return nil, touched
}

// refRMAC counts a route's router MAC for (l3vni, vtep). The last one
// received wins: a VTEP has one router MAC per L3VNI (RFC 9135 §8.1),
// and a change (a leaf's new router MAC) re-points every route through
// that VTEP.
func (t *L3Table) refRMAC(l3vni uint32, vtep netip.Addr, mac MAC, touched *[]touch) *rmacKey {
	k := rmacKey{l3vni, vtep}
	st := t.rmacs[k]
	if st == nil {
		st = &rmacState{}
		t.rmacs[k] = st
	}
	st.refs++
	if st.mac != mac {
		st.mac = mac
		*touched = append(*touched, touch{rmac: &k})
	}
	return &k
}

// touch names one thing whose selection must be re-evaluated.
type touch struct {
	neigh  *hostKey
	host   *hostKey
	prefix *prefixKey
	rmac   *rmacKey
}

func touchNeigh(k hostKey) touch    { return touch{neigh: &k} }
func touchHost(k hostKey) touch     { return touch{host: &k} }
func touchPrefix(k prefixKey) touch { return touch{prefix: &k} }

func (t *L3Table) ipState(m map[hostKey]*ipState, k hostKey) *ipState {
	st := m[k]
	if st == nil {
		st = &ipState{}
		m[k] = st
	}
	return st
}

// flush re-selects what was touched and returns the changes.
func (t *L3Table) flush(touched []touch) []L3Effect {
	var eff []L3Effect
	for _, tc := range touched {
		switch {
		case tc.neigh != nil:
			eff = append(eff, t.reselectNeigh(*tc.neigh)...)
		case tc.host != nil:
			eff = append(eff, t.reselectHost(*tc.host)...)
		case tc.prefix != nil:
			eff = append(eff, t.reselectPrefix(*tc.prefix)...)
		case tc.rmac != nil:
			// Sorted, so that the effects come in a stable order.
			var hs []hostKey
			for k, st := range t.hosts {
				if k.vni == tc.rmac.l3vni && st.installed && st.inst.vtep == tc.rmac.vtep {
					hs = append(hs, k)
				}
			}
			slices.SortFunc(hs, func(a, b hostKey) int { return a.ip.Compare(b.ip) })
			for _, k := range hs {
				eff = append(eff, t.reselectHost(k)...)
			}
			var ps []prefixKey
			for k, st := range t.prefs {
				if k.l3vni == tc.rmac.l3vni && slices.ContainsFunc(st.installed, func(n NextHop) bool { return n.VTEP == tc.rmac.vtep }) {
					ps = append(ps, k)
				}
			}
			slices.SortFunc(ps, func(a, b prefixKey) int { return comparePrefix(a.prefix, b.prefix) })
			for _, k := range ps {
				eff = append(eff, t.reselectPrefix(k)...)
			}
		}
	}
	return eff
}

// best picks the winning remote candidate, deterministically.
func bestL3(remote l3remotes) (l3cand, bool) {
	var win l3cand
	found := false
	for i := range remote {
		c := remote[i].l3cand
		if !found || better(c.candidate(), win.candidate()) ||
			(!better(win.candidate(), c.candidate()) && slices.Compare(c.mac[:], win.mac[:]) < 0) {
			win, found = c, true
		}
	}
	return win, found
}

// reselectNeigh selects the location of an IP in an L2VNI: a local host,
// which is then advertised, or the best remote route, whose MAC the
// suppression neighbour then resolves it to.
func (t *L3Table) reselectNeigh(k hostKey) []L3Effect {
	l, hasLocal := t.local[k]
	st := t.neighs[k]
	if st == nil {
		if !hasLocal {
			return nil
		}
		st = t.ipState(t.neighs, k)
	}
	var eff []L3Effect
	win, found := bestL3(st.remote)
	localWins := false
	if hasLocal {
		// The local host competes as the MAC Table's local MAC does:
		// it keeps the IP unless a remote route beats it.
		lc := candidate{vtep: t.opts.LocalVTEP, seq: l.seq, sticky: l.sticky}
		wins := !l.away && (!found || !better(win.candidate(), lc))
		m := t.members[k.vni]
		switch {
		case wins && (!l.adv || l.advAs != l.bid()):
			l.adv, l.advAs = true, l.bid()
			eff = append(eff, L3Effect{Kind: L3Advertise, Route: t.localRoute(m, l.mac, k.ip, l.seq, l.sticky)})
		case !wins && l.adv:
			l.adv = false
			eff = append(eff, L3Effect{Kind: L3Withdraw, Route: &Route{Key: Key{Type: RouteTypeMACIP, RD: m.m.RD, MAC: l.advAs.mac, IP: k.ip}}})
		}
		t.local[k] = l
		if wins {
			found = false // the kernel learned the neighbour itself
		}
		localWins = wins
	}
	switch {
	case found && (!st.installed || st.inst.mac != win.mac):
		if st.installed {
			t.unindexNeigh(k, st.inst.mac)
		}
		st.installed, st.inst = true, win
		t.indexNeigh(k, win.mac)
		eff = append(eff, L3Effect{Kind: L3SetNeigh, Neigh: Neigh{L2VNI: k.vni, IP: k.ip, MAC: win.mac}})
	case found:
		st.inst = win
	case st.installed && localWins:
		// The host is here now (it moved back, or its MAC did): the
		// kernel takes the entry over and probes the host rather than
		// forget it and wait for traffic to resolve it again.
		st.installed = false
		t.unindexNeigh(k, st.inst.mac)
		eff = append(eff, L3Effect{Kind: L3ProbeNeigh, Neigh: Neigh{L2VNI: k.vni, IP: k.ip, MAC: l.mac}})
	case st.installed:
		st.installed = false
		t.unindexNeigh(k, st.inst.mac)
		eff = append(eff, L3Effect{Kind: L3DelNeigh, Neigh: Neigh{L2VNI: k.vni, IP: k.ip, MAC: st.inst.mac}})
	}
	if len(st.remote) == 0 && !st.installed && !hasLocal {
		delete(t.neighs, k)
	}
	return eff
}

// indexNeigh and unindexNeigh keep byMAC: the neighbour k is installed with mac.
func (t *L3Table) indexNeigh(k hostKey, mac MAC) {
	mk := MACKey{VNI: k.vni, MAC: mac}
	ips := t.byMAC[mk]
	if ips == nil {
		ips = map[netip.Addr]struct{}{}
		t.byMAC[mk] = ips
	}
	ips[k.ip] = struct{}{}
}

func (t *L3Table) unindexNeigh(k hostKey, mac MAC) {
	mk := MACKey{VNI: k.vni, MAC: mac}
	if ips := t.byMAC[mk]; ips != nil {
		delete(ips, k.ip)
		if len(ips) == 0 {
			delete(t.byMAC, mk)
		}
	}
}

// localInVRF reports whether a local host that wins its IP (and is
// advertised) holds ip in a member L2VNI of the VRF with l3vni: then the
// IP is reached through the local SVI and needs no host route.
func (t *L3Table) localInVRF(l3vni uint32, ip netip.Addr) bool {
	v := t.vrfs[l3vni]
	if v == nil {
		return false
	}
	for _, m := range v.Members {
		if l, ok := t.local[hostKey{m.L2VNI, ip}]; ok && l.adv {
			return true
		}
	}
	return false
}

func (t *L3Table) reselectHost(k hostKey) []L3Effect {
	st := t.hosts[k]
	if st == nil {
		return nil
	}
	win, found := bestL3(st.remote)
	if t.localInVRF(k.vni, k.ip) {
		found = false // connected through the local SVI
	}
	var rmac MAC
	if found {
		if rs := t.rmacs[rmacKey{k.vni, win.vtep}]; rs != nil {
			rmac = rs.mac
		}
	}
	name := t.vrfName(k.vni)
	var eff []L3Effect
	switch {
	case found && (!st.installed || st.inst.vtep != win.vtep || st.instRMAC != rmac):
		st.installed, st.inst, st.instRMAC = true, win, rmac
		eff = append(eff, L3Effect{Kind: L3SetHost, Host: HostRoute{VRF: name, L3VNI: k.vni, IP: k.ip, NextHop: NextHop{win.vtep, rmac}}})
	case found:
		st.inst = win
	case st.installed:
		st.installed = false
		eff = append(eff, L3Effect{Kind: L3DelHost, Host: HostRoute{VRF: name, L3VNI: k.vni, IP: k.ip, NextHop: NextHop{st.inst.vtep, st.instRMAC}}})
	}
	if len(st.remote) == 0 && !st.installed {
		delete(t.hosts, k)
	}
	return eff
}

func (t *L3Table) vrfName(l3vni uint32) string {
	if v := t.vrfs[l3vni]; v != nil {
		return v.Name
	}
	return ""
}

func (t *L3Table) reselectPrefix(k prefixKey) []L3Effect {
	st := t.prefs[k]
	if st == nil {
		return nil
	}
	var nhs []NextHop
	for _, vtep := range st.paths {
		if slices.ContainsFunc(nhs, func(n NextHop) bool { return n.VTEP == vtep }) {
			continue // one VTEP under several RDs is one next hop
		}
		nh := NextHop{VTEP: vtep}
		if rs := t.rmacs[rmacKey{k.l3vni, vtep}]; rs != nil {
			nh.RouterMAC = rs.mac
		}
		nhs = append(nhs, nh)
	}
	slices.SortFunc(nhs, func(a, b NextHop) int { return a.VTEP.Compare(b.VTEP) })
	name := t.vrfName(k.l3vni)
	var eff []L3Effect
	switch {
	case len(nhs) > 0 && !slices.Equal(nhs, st.installed):
		st.installed = nhs
		eff = append(eff, L3Effect{Kind: L3SetPrefix, Prefix: PrefixRoute{VRF: name, L3VNI: k.l3vni, Prefix: k.prefix, NextHops: slices.Clone(nhs)}})
	case len(nhs) == 0 && st.installed != nil:
		eff = append(eff, L3Effect{Kind: L3DelPrefix, Prefix: PrefixRoute{VRF: name, L3VNI: k.l3vni, Prefix: k.prefix, NextHops: st.installed}})
		st.installed = nil
	}
	if len(st.paths) == 0 && st.installed == nil {
		delete(t.prefs, k)
	}
	return eff
}

// LocalHost reports a host (mac, ip) learned on the SVI of l2vni (an ARP
// or ND entry), with its MAC's current mobility sequence and stickiness as
// the MAC Table advertises them. It originates the MAC+IP route (label1
// the L2VNI, label2 the L3VNI, the RTs of both, the Router's MAC) and
// removes the remote entries for the IP, unless a remote route outbids
// it. Hosts on an L2VNI outside every VRF, and the anycast gateway's own
// addresses, are ignored.
func (t *L3Table) LocalHost(l2vni uint32, mac MAC, ip netip.Addr, seq uint32, sticky bool) []L3Effect {
	ip = ip.Unmap()
	m, ok := t.members[l2vni]
	if !ok || !mac.IsUnicast() || !ip.IsValid() || t.isGateway(l2vni, ip) || mac == m.m.GatewayMAC {
		return nil
	}
	k := hostKey{l2vni, ip}
	var eff []L3Effect
	l, had := t.local[k]
	if had && l.mac == mac && l.seq == seq && l.sticky == sticky {
		return nil
	}
	if had && l.adv && l.advAs.mac != mac {
		// The IP moved to another MAC on this leaf: the old binding's
		// route has another key.
		eff = append(eff, L3Effect{Kind: L3Withdraw, Route: &Route{Key: Key{Type: RouteTypeMACIP, RD: m.m.RD, MAC: l.advAs.mac, IP: ip}}})
		l.adv = false
	}
	if had && l.mac != mac {
		l.away = false // another MAC: the old one's state does not apply
	}
	l.mac, l.seq, l.sticky = mac, seq, sticky
	t.local[k] = l
	return append(eff, t.flush([]touch{touchNeigh(k), touchHost(hostKey{m.vrf.L3VNI, ip})})...)
}

// LocalHostAway is LocalHost for a host whose MAC is not local here now:
// the MAC Table has not learned it on an access port yet (the host's ARP
// or ND came first), or has it at another leaf (the kernel still holds,
// and refreshes, the neighbour of a host that left). The binding is kept
// as after LocalMACAway: nothing is advertised for it (a route already
// advertised is withdrawn), remote routes for the IP stay installed, and
// the MAC's next LocalMACSeq advertises it with the MAC's sequence.
func (t *L3Table) LocalHostAway(l2vni uint32, mac MAC, ip netip.Addr) []L3Effect {
	ip = ip.Unmap()
	m, ok := t.members[l2vni]
	if !ok || !mac.IsUnicast() || !ip.IsValid() || t.isGateway(l2vni, ip) || mac == m.m.GatewayMAC {
		return nil
	}
	k := hostKey{l2vni, ip}
	l, had := t.local[k]
	if had && l.mac == mac && l.away {
		return nil
	}
	if had && l.mac != mac {
		l.seq, l.sticky = 0, false // another MAC: its sequence comes with LocalMACSeq
	}
	// (An advertised route of the old binding is withdrawn by the
	// reselection: an away binding never wins.)
	l.mac, l.away = mac, true
	t.local[k] = l
	return t.flush([]touch{touchNeigh(k), touchHost(hostKey{m.vrf.L3VNI, ip})})
}

func (t *L3Table) localRoute(m l3member, mac MAC, ip netip.Addr, seq uint32, sticky bool) *Route {
	rts := append(append([]RT(nil), m.m.ExportRTs...), m.vrf.ExportRTs...)
	return LocalMACIPRoute(m.m.RD, m.m.L2VNI, m.vrf.L3VNI, mac, ip, t.opts.LocalVTEP, rts, m.vrf.RouterMAC, seq, sticky)
}

// LocalHostGone reports that the local neighbour for ip on l2vni was
// deleted or turned FAILED (not merely STALE: the caller decides). Its
// MAC+IP route is withdrawn and remote routes for the IP, if any, are
// installed.
func (t *L3Table) LocalHostGone(l2vni uint32, ip netip.Addr) []L3Effect {
	ip = ip.Unmap()
	k := hostKey{l2vni, ip}
	l, ok := t.local[k]
	if !ok {
		return nil
	}
	m := t.members[l2vni]
	delete(t.local, k)
	var eff []L3Effect
	if l.adv {
		eff = append(eff, L3Effect{Kind: L3Withdraw, Route: &Route{Key: Key{Type: RouteTypeMACIP, RD: m.m.RD, MAC: l.advAs.mac, IP: ip}}})
	}
	// Remote routes that lost to the local host come back.
	return append(eff, t.flush([]touch{touchNeigh(k), touchHost(hostKey{m.vrf.L3VNI, ip})})...)
}

// LocalMACSeq tells the table the sequence number and stickiness the MAC
// Table now advertises for (l2vni, mac) (its Advertise effect): every
// local MAC+IP route of that MAC is re-advertised with them, as RFC 7432
// §15 has a MAC+IP route carry its MAC's sequence. It ends a
// LocalMACAway.
//
// A remote MAC+IP binding of the MAC that the local MAC now outbids (the
// host moved here with its MAC and addresses, a VM migration) is
// inherited: the IP becomes a local binding of the MAC, advertised at
// once with the MAC's sequence, and the remote suppression neighbour is
// handed over to the kernel for a probe (L3ProbeNeigh) rather than
// deleted. Without it the new leaf would advertise the host's IP only
// once its kernel resolved the host again, on traffic, about a second
// later (ARP's retry), while the old leaf has already withdrawn its route
// and the other leafs have no host route to it. The probe confirms the
// binding: a host that does not answer turns the neighbour FAILED, and
// its LocalHostGone withdraws the route again. This is how zebra treats
// the neighbours of a remote MAC that turns local (RFC 9135 leaves it to
// the implementation; RFC 7432 §15 gives the MAC+IP route its MAC's
// sequence number).
func (t *L3Table) LocalMACSeq(l2vni uint32, mac MAC, seq uint32, sticky bool) []L3Effect {
	t.inherit(l2vni, mac, seq, sticky)
	return t.localMAC(l2vni, mac, func(l *localHost) { l.seq, l.sticky, l.away = seq, sticky, false })
}

// inherit makes the IPs whose installed remote binding in l2vni is mac,
// and that a local host at (seq, sticky) outbids, local bindings of mac
// (see LocalMACSeq).
func (t *L3Table) inherit(l2vni uint32, mac MAC, seq uint32, sticky bool) {
	m, ok := t.members[l2vni]
	if !ok || !mac.IsUnicast() || mac == m.m.GatewayMAC {
		return
	}
	lc := candidate{vtep: t.opts.LocalVTEP, seq: seq, sticky: sticky}
	for ip := range t.byMAC[MACKey{VNI: l2vni, MAC: mac}] {
		k := hostKey{l2vni, ip}
		st := t.neighs[k]
		if st == nil || !st.installed || st.inst.mac != mac {
			continue
		}
		if _, ok := t.local[k]; ok {
			continue
		}
		if win, found := bestL3(st.remote); found && better(win.candidate(), lc) {
			continue
		}
		t.local[k] = localHost{mac: mac, seq: seq, sticky: sticky}
	}
}

// LocalMACAway tells the table that the MAC Table withdrew its local
// route for (l2vni, mac) (WithdrawLocal: the MAC moved to another leaf or
// aged out). The MAC+IP routes of that MAC are withdrawn too, even before
// the other leaf advertises the host's IP, as a MAC+IP route must not
// outlive its MAC here (RFC 7432 §15); the bindings are kept until
// LocalHostGone, or advertised again at the next LocalMACSeq.
func (t *L3Table) LocalMACAway(l2vni uint32, mac MAC) []L3Effect {
	return t.localMAC(l2vni, mac, func(l *localHost) { l.away = true })
}

// localMAC changes every local binding of (l2vni, mac) and re-selects
// their IPs, in address order.
func (t *L3Table) localMAC(l2vni uint32, mac MAC, change func(*localHost)) []L3Effect {
	m, ok := t.members[l2vni]
	if !ok {
		return nil
	}
	var ips []netip.Addr
	for k, l := range t.local {
		if k.vni == l2vni && l.mac == mac {
			ips = append(ips, k.ip)
		}
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	var eff []L3Effect
	for _, ip := range ips {
		k := hostKey{l2vni, ip}
		l := t.local[k]
		change(&l)
		t.local[k] = l
		eff = append(eff, t.flush([]touch{touchNeigh(k), touchHost(hostKey{m.vrf.L3VNI, ip})})...)
	}
	return eff
}

// LocalPrefixRoutes returns the type-5 routes the VRF with l3vni
// originates for prefixes (its connected subnets and configured
// prefixes), or nil for an unknown VRF.
func (t *L3Table) LocalPrefixRoutes(l3vni uint32, prefixes []netip.Prefix) []*Route {
	v := t.vrfs[l3vni]
	if v == nil {
		return nil
	}
	out := make([]*Route, 0, len(prefixes))
	for _, p := range prefixes {
		out = append(out, LocalPrefixRoute(v.RD, v.L3VNI, p, t.opts.LocalVTEP, v.ExportRTs, v.RouterMAC))
	}
	return out
}

// L3Snapshot is the whole desired remote L3 state, sorted: what a resync
// hands to fib.
type L3Snapshot struct {
	Neighs     []Neigh
	Hosts      []HostRoute
	Prefixes   []PrefixRoute
	RouterMACs []RouterMAC
}

// Snapshot returns the state the effects so far have asked for.
func (t *L3Table) Snapshot() L3Snapshot { return t.snapshot(nil, nil) }

// SnapshotVRF is Snapshot for the VRF with l3vni alone: its members'
// suppression neighbours, its host and prefix routes and its router
// MACs. Only that VRF's entries are copied and sorted. An unknown l3vni
// has none.
func (t *L3Table) SnapshotVRF(l3vni uint32) L3Snapshot {
	v, ok := t.vrfs[l3vni]
	if !ok {
		return L3Snapshot{}
	}
	member := make(map[uint32]bool, len(v.Members))
	for _, m := range v.Members {
		member[m.L2VNI] = true
	}
	return t.snapshot(func(l3 uint32) bool { return l3 == l3vni }, func(l2 uint32) bool { return member[l2] })
}

// snapshot copies the installed state of the L3VNIs and L2VNIs that
// inL3 and inL2 accept (nil: all).
func (t *L3Table) snapshot(inL3, inL2 func(uint32) bool) L3Snapshot {
	var s L3Snapshot
	if inL3 == nil {
		inL3 = func(uint32) bool { return true }
	}
	if inL2 == nil {
		inL2 = func(uint32) bool { return true }
	}
	for k, st := range t.neighs {
		if st.installed && inL2(k.vni) {
			s.Neighs = append(s.Neighs, Neigh{L2VNI: k.vni, IP: k.ip, MAC: st.inst.mac})
		}
	}
	for k, st := range t.hosts {
		if st.installed && inL3(k.vni) {
			s.Hosts = append(s.Hosts, HostRoute{VRF: t.vrfName(k.vni), L3VNI: k.vni, IP: k.ip, NextHop: NextHop{st.inst.vtep, st.instRMAC}})
		}
	}
	for k, st := range t.prefs {
		if st.installed != nil && inL3(k.l3vni) {
			s.Prefixes = append(s.Prefixes, PrefixRoute{VRF: t.vrfName(k.l3vni), L3VNI: k.l3vni, Prefix: k.prefix, NextHops: slices.Clone(st.installed)})
		}
	}
	for k, st := range t.rmacs {
		if !inL3(k.l3vni) {
			continue
		}
		s.RouterMACs = append(s.RouterMACs, RouterMAC{VRF: t.vrfName(k.l3vni), L3VNI: k.l3vni, VTEP: k.vtep, MAC: st.mac, Routes: st.refs})
	}
	slices.SortFunc(s.Neighs, func(a, b Neigh) int {
		return cmp.Or(cmp.Compare(a.L2VNI, b.L2VNI), a.IP.Compare(b.IP))
	})
	slices.SortFunc(s.Hosts, func(a, b HostRoute) int {
		return cmp.Or(cmp.Compare(a.L3VNI, b.L3VNI), a.IP.Compare(b.IP))
	})
	slices.SortFunc(s.Prefixes, func(a, b PrefixRoute) int {
		return cmp.Or(cmp.Compare(a.L3VNI, b.L3VNI), comparePrefix(a.Prefix, b.Prefix))
	})
	slices.SortFunc(s.RouterMACs, func(a, b RouterMAC) int {
		return cmp.Or(cmp.Compare(a.L3VNI, b.L3VNI), a.VTEP.Compare(b.VTEP))
	})
	return s
}

func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}
