package vtep

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// Backend is how a tenant VRF is isolated (DESIGN §4; configs.Backend).
type Backend string

const (
	BackendDefault Backend = "default" // the main table of the underlay namespace
	BackendNetns   Backend = "netns"   // a network namespace per tenant
	BackendVRF     Backend = "vrf"     // a Linux VRF device (CONFIG_NET_VRF)
)

// VRF describes the devices of one tenant VRF: the L3VNI's VXLAN device in
// its bridge, the bridge being the L3VNI's SVI with the router MAC, and
// the member L2VNIs, whose bridges are SVIs with the anycast gateway
// addresses and MAC (RFC 9135 symmetric IRB; DESIGN §3.5, §4).
//
// PlanVRF plans the member L2VNIs' own devices (VXLAN device, bridge,
// access ports) too, in the tenant's namespace: callers pass only the
// L2VNIs routed in no VRF to PlanL2.
type VRF struct {
	Name      string
	Backend   Backend
	Namespace string // BackendNetns: the tenant's namespace
	Table     uint32 // BackendVRF: the VRF device's table
	// L3 holds the L3VNI's devices: VNI, VXLAN, Bridge, Local, UDPPort,
	// MTU, DefaultVXLANMTU. It has no access ports.
	L3        L2VNI
	RouterMAC evpn.MAC
	Members   []SVI
	// Uplinks are the VRF's external interfaces: moved into the tenant's
	// namespace (netns), enslaved to the VRF device (vrf) or left in the
	// underlay namespace (default), each with its addresses, and up.
	Uplinks []Uplink
}

// Uplink is an external interface of a VRF with its addresses (address
// and subnet length).
type Uplink struct {
	Name  string
	Addrs []netip.Prefix
}

// SVI is a member L2VNI of a VRF with its anycast gateway.
type SVI struct {
	L2         L2VNI
	GatewayMAC evpn.MAC
	GatewayIPs []netip.Prefix // the gateway's address with the subnet's length
}

// L3Op is the kind of change an L3Action makes.
type L3Op int

const (
	L3CreateNS     L3Op = iota + 1 // ip netns add NS
	L3CreateVRF                    // ip link add Dev type vrf table T (down)
	L3CreateBridge                 // in NS, down, without IPv6 link-local unless IPv6
	L3CreateVXLAN                  // in the underlay namespace (NS ""), down, without IPv6 link-local
	L3MoveToNS                     // ip link set Dev netns To (from NS)
	L3SetMTU
	L3SetMaster
	L3SetPortFlags // learning off, neigh_suppress on
	L3SetMAC       // ip link set Dev address MAC
	L3SetIPv6      // ip link set Dev addrgenmode eui64: IPv6 on for an SVI
	L3AddAddr      // ip addr add Addr dev Dev (nodad for IPv6)
	L3SetUp
)

// Name is the op's stable snake_case name.
func (o L3Op) Name() string {
	switch o {
	case L3CreateNS:
		return "create_netns"
	case L3CreateVRF:
		return "create_vrf"
	case L3CreateBridge:
		return "create_bridge"
	case L3CreateVXLAN:
		return "create_vxlan"
	case L3MoveToNS:
		return "move_to_netns"
	case L3SetMTU:
		return "set_mtu"
	case L3SetMaster:
		return "set_master"
	case L3SetPortFlags:
		return "set_port_flags"
	case L3SetMAC:
		return "set_mac"
	case L3SetIPv6:
		return "set_ipv6"
	case L3AddAddr:
		return "add_addr"
	case L3SetUp:
		return "set_up"
	}
	return "l3op_" + strconv.Itoa(int(o))
}

// L3Action is one step of a VRF's plan. NS is the namespace the step runs
// in: "" for the underlay namespace (the Manager's), else a tenant
// namespace's name. Prev* carry what an undo restores; Created says that
// Dev (or NS) is created earlier in the same plan.
type L3Action struct {
	Op      L3Op
	NS      string
	VNI     uint32
	Dev     string
	Master  string       // L3SetMaster
	To      string       // L3MoveToNS: the target namespace
	MTU     int          // L3Create*, L3SetMTU
	MAC     evpn.MAC     // L3SetMAC
	Addr    netip.Prefix // L3AddAddr
	Table   uint32       // L3CreateVRF
	Spec    L2VNI        // L3CreateVXLAN
	IPv6    bool         // L3CreateBridge: keep IPv6 address generation (an SVI)
	Created bool

	PrevMTU  int
	PrevMAC  string
	PrevPort *PortFlags
}

// String renders the action as the iproute2 command that does the same.
func (a L3Action) String() string {
	pre := ""
	if a.NS != "" {
		pre = "ip -n " + a.NS + " "
	} else {
		pre = "ip "
	}
	switch a.Op {
	case L3CreateNS:
		return "ip netns add " + a.NS
	case L3CreateVRF:
		return fmt.Sprintf("%slink add %s type vrf table %d", pre, a.Dev, a.Table)
	case L3CreateBridge:
		s := pre + "link add " + a.Dev + mtuArg(a.MTU) + " type bridge"
		if !a.IPv6 {
			s += "; " + pre + "link set " + a.Dev + " addrgenmode none"
		}
		return s
	case L3CreateVXLAN:
		return fmt.Sprintf("%slink add %s%s type vxlan id %d local %s dstport %d nolearning; %slink set %s addrgenmode none",
			pre, a.Dev, mtuArg(a.MTU), a.Spec.VNI, a.Spec.Local, a.Spec.port(), pre, a.Dev)
	case L3MoveToNS:
		return pre + "link set " + a.Dev + " netns " + a.To
	case L3SetMTU:
		return pre + "link set " + a.Dev + " mtu " + strconv.Itoa(a.MTU)
	case L3SetMaster:
		return pre + "link set " + a.Dev + " master " + a.Master
	case L3SetPortFlags:
		b := "bridge "
		if a.NS != "" {
			b = "bridge -n " + a.NS + " "
		}
		return b + "link set dev " + a.Dev + " learning off neigh_suppress on"
	case L3SetMAC:
		return pre + "link set " + a.Dev + " address " + a.MAC.String()
	case L3SetIPv6:
		return pre + "link set " + a.Dev + " addrgenmode eui64"
	case L3AddAddr:
		s := pre + "addr add " + a.Addr.String() + " dev " + a.Dev
		if a.Addr.Addr().Is6() {
			s += " nodad"
		}
		return s
	case L3SetUp:
		return pre + "link set " + a.Dev + " up"
	}
	return fmt.Sprintf("l3op(%d) %s", a.Op, a.Dev)
}

// NSObserved is one namespace's links, as PlanVRF sees them.
type NSObserved struct {
	Exists bool // false: the tenant namespace does not exist (yet)
	Links  []LinkInfo
}

// VRFPlan is what EnsureVRF will do for one VRF.
type VRFPlan struct {
	VRF     string
	Actions []L3Action
	Adopted []string
	Absent  []AbsentPort
}

// nsOf returns the namespace a VRF's tenant devices live in ("" for the
// underlay's).
func (v VRF) nsOf() string {
	if v.Backend == BackendNetns {
		return v.Namespace
	}
	return ""
}

// hasIPv6 reports whether one of the VRF's gateways or uplinks has an
// IPv6 address.
func (v VRF) hasIPv6() bool {
	for _, m := range v.Members {
		for _, g := range m.GatewayIPs {
			if g.Addr().Is6() && !g.Addr().Is4In6() {
				return true
			}
		}
	}
	for _, u := range v.Uplinks {
		for _, a := range u.Addrs {
			if a.Addr().Is6() && !a.Addr().Is4In6() {
				return true
			}
		}
	}
	return false
}

// l2Set returns the VRF's L3VNI and member L2VNIs as L2VNIs.
func (v VRF) l2Set() []L2VNI {
	out := []L2VNI{v.L3}
	for _, m := range v.Members {
		out = append(out, m.L2)
	}
	return out
}

// Validate checks the VRF on its own.
func (v VRF) Validate() error {
	var errs []error
	switch v.Backend {
	case BackendDefault:
	case BackendNetns:
		if v.Namespace == "" {
			errs = append(errs, fmt.Errorf("vrf %s: backend netns needs a namespace", v.Name))
		}
	case BackendVRF:
		if err := validIfName(v.Name); err != nil {
			errs = append(errs, fmt.Errorf("vrf %s: the VRF device: %w", v.Name, err))
		}
		if v.Table == 0 || (v.Table >= 253 && v.Table <= 255) {
			errs = append(errs, fmt.Errorf("vrf %s: table %d is reserved", v.Name, v.Table))
		}
	default:
		errs = append(errs, fmt.Errorf("vrf %s: unknown backend %q", v.Name, v.Backend))
	}
	if len(v.L3.AccessPorts) > 0 {
		errs = append(errs, fmt.Errorf("vrf %s: the L3VNI has no access ports", v.Name))
	}
	if !v.RouterMAC.IsUnicast() {
		errs = append(errs, fmt.Errorf("vrf %s: router MAC %s is not unicast", v.Name, v.RouterMAC))
	}
	for _, m := range v.Members {
		if !m.GatewayMAC.IsUnicast() {
			errs = append(errs, fmt.Errorf("vrf %s: l2vni %d: gateway MAC %s is not unicast", v.Name, m.L2.VNI, m.GatewayMAC))
		}
	}
	if err := ValidateSet(v.l2Set()); err != nil {
		errs = append(errs, fmt.Errorf("vrf %s: %w", v.Name, err))
	}
	taken := map[string]bool{v.Name: v.Backend == BackendVRF}
	for _, l := range v.l2Set() {
		taken[l.VXLAN], taken[l.Bridge] = true, true
		for _, p := range l.AccessPorts {
			taken[p] = true
		}
	}
	for _, u := range v.Uplinks {
		if err := validIfName(u.Name); err != nil {
			errs = append(errs, fmt.Errorf("vrf %s: uplink: %w", v.Name, err))
		} else if taken[u.Name] {
			errs = append(errs, fmt.Errorf("vrf %s: uplink %s is also one of the VRF's devices or access ports", v.Name, u.Name))
		}
		taken[u.Name] = true
		for _, a := range u.Addrs {
			if !a.IsValid() || a.IsSingleIP() {
				errs = append(errs, fmt.Errorf("vrf %s: uplink %s: address %s: want an address with its subnet's length", v.Name, u.Name, a))
			}
		}
	}
	return errors.Join(errs...)
}

// PlanVRF compares a VRF with the observed underlay namespace and, for
// the netns backend, the tenant's namespace (ignored otherwise), and
// returns the actions that make the kernel match, or every conflict found.
// It is pure, and a kernel that matches gives no actions.
//
// Order: the namespace or VRF device; then per L2 set (the L3VNI, then
// each member) PlanL2's actions for its devices, with, on the netns
// backend, a VXLAN device created in the underlay and moved in (its UDP
// socket stays in the underlay, DESIGN §4) and an access port found in the
// underlay moved in; then the SVI: enslaved to the VRF device (before its
// addresses: enslaving cycles the device, which flushes IPv6 addresses),
// MAC, IPv6 on, gateway addresses. The VRF device comes up last.
//
// Addresses on an SVI besides the wanted ones are left alone (an
// operator's), as are its extra ports.
func PlanVRF(v VRF, underlay, tenant NSObserved) (VRFPlan, error) {
	if err := v.Validate(); err != nil {
		return VRFPlan{}, err
	}
	p := VRFPlan{VRF: v.Name}
	var errs []error
	ns := v.nsOf()
	uw := Observed{Links: underlay.Links}.view()
	tw := uw
	var tail []L3Action

	switch v.Backend {
	case BackendNetns:
		if !tenant.Exists {
			p.Actions = append(p.Actions, L3Action{Op: L3CreateNS, NS: ns})
		}
		// Devices of the tenant found in the underlay are moved in: they
		// join the tenant's view released from any master and down (a move
		// does both), under a fresh index.
		links := slices.Clone(tenant.Links)
		next := -1
		move := func(name string, vni uint32) {
			if _, ok := tw.byName[name]; ok {
				return
			}
			l, ok := uw.byName[name]
			if !ok {
				return
			}
			p.Actions = append(p.Actions, L3Action{Op: L3MoveToNS, VNI: vni, Dev: name, To: ns})
			c := *l
			// A move also flushes the addresses.
			c.Index, c.MasterIndex, c.Up, c.Port, c.Addrs = next, 0, false, nil, nil
			next--
			links = append(links, c)
		}
		tw = Observed{Links: tenant.Links}.view()
		for _, l2 := range v.l2Set() {
			move(l2.VXLAN, l2.VNI)
			for _, ap := range l2.AccessPorts {
				move(ap, l2.VNI)
			}
		}
		for _, u := range v.Uplinks {
			if _, in := tw.byName[u.Name]; !in {
				if l, ok := uw.byName[u.Name]; ok {
					if err := foreignAddrs(v, u, l); err != nil {
						errs = append(errs, err)
						continue
					}
				}
			}
			move(u.Name, 0)
		}
		tw = Observed{Links: links}.view()
	case BackendVRF:
		switch d, ok := uw.byName[v.Name]; {
		case !ok:
			p.Actions = append(p.Actions, L3Action{Op: L3CreateVRF, Dev: v.Name, Table: v.Table})
			tail = append(tail, L3Action{Op: L3SetUp, Dev: v.Name, Created: true})
		case d.Kind != "vrf":
			errs = append(errs, &ConflictError{VNI: v.L3.VNI, Device: v.Name, Param: "kind", Expected: "vrf", Found: d.Kind,
				Fix: fmt.Sprintf("the name is taken by another device: rename VRF %s, or delete %s if it is a leftover", v.Name, v.Name)})
		case d.VRFTable != v.Table:
			errs = append(errs, &ConflictError{VNI: v.L3.VNI, Device: v.Name, Param: "table", Expected: strconv.FormatUint(uint64(v.Table), 10), Found: strconv.FormatUint(uint64(d.VRFTable), 10),
				Fix: fmt.Sprintf("delete it (ip link del %s) so evpnd re-creates it, or configure table %d for VRF %s", v.Name, d.VRFTable, v.Name)})
		default:
			p.Adopted = append(p.Adopted, v.Name)
			if !d.Up {
				tail = append(tail, L3Action{Op: L3SetUp, Dev: v.Name})
			}
		}
	}

	svis := append([]SVI{{L2: v.L3, GatewayMAC: v.RouterMAC}}, v.Members...)
	for _, s := range svis {
		acts, adopted, absent, verrs := planOne(s.L2, tw, false)
		if ns != "" && tw.byName[s.L2.VXLAN] == nil {
			// Created in the underlay, where its UDP socket stays: the
			// VNI and port must be free there too.
			for _, o := range uw.byVNI[vniPort{s.L2.VNI, s.L2.port()}] {
				verrs = append(verrs, &ConflictError{VNI: s.L2.VNI, Device: o.Name, Param: "vni",
					Expected: fmt.Sprintf("VNI %d only on %s in namespace %s", s.L2.VNI, s.L2.VXLAN, ns), Found: fmt.Sprintf("VNI %d with dstport %d in the underlay namespace", s.L2.VNI, s.L2.port()),
					Fix: fmt.Sprintf("the kernel allows one VXLAN socket per VNI and port in a namespace: delete %s, or configure vxlan-device %s so evpnd moves it in", o.Name, o.Name)})
			}
		}
		errs = append(errs, verrs...)
		p.Adopted = append(p.Adopted, adopted...)
		p.Absent = append(p.Absent, absent...)
		if len(verrs) > 0 {
			continue
		}
		// The SVI is configured before anything comes up, so that it
		// comes up with its MAC (and the link-local address made from it).
		var ups []L3Action
		for _, a := range acts {
			for _, x := range l3From(a, ns) {
				if x.Op == L3SetUp {
					ups = append(ups, x)
				} else {
					p.Actions = append(p.Actions, x)
				}
			}
		}
		master := ""
		br := tw.byName[s.L2.Bridge]
		if br != nil {
			if m, ok := tw.byIndex[br.MasterIndex]; ok && br.MasterIndex != 0 {
				master = m.Name
			}
		}
		p.Actions = append(p.Actions, planSVI(v, s, br, master, ns)...)
		p.Actions = append(p.Actions, ups...)
	}
	for _, u := range v.Uplinks {
		acts, absent, err := planUplink(v, u, tw, ns)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if absent {
			p.Absent = append(p.Absent, AbsentPort{Port: u.Name, Uplink: true})
			continue
		}
		p.Actions = append(p.Actions, acts...)
	}
	p.Actions = append(p.Actions, tail...)
	if len(errs) > 0 {
		return VRFPlan{}, errors.Join(errs...)
	}
	return p, nil
}

// foreignAddrs refuses to take interface l as uplink u of v (into the
// tenant's namespace or VRF device) while it holds an address u does not
// configure (link-local ones aside): an interface with an address of its
// own routes for someone, maybe the underlay, which moving it would cut.
func foreignAddrs(v VRF, u Uplink, l *LinkInfo) error {
	for _, a := range l.Addrs {
		if a.Addr().IsLinkLocalUnicast() || slices.Contains(u.Addrs, a) {
			continue
		}
		to := "the namespace " + v.Namespace
		if v.Backend == BackendVRF {
			to = "the VRF device " + v.Name
		}
		return &ConflictError{VNI: v.L3.VNI, Device: u.Name, Param: "address", Expected: "none but the uplink's", Found: a.String(),
			Fix: fmt.Sprintf("an interface with an address of its own routes for someone, maybe the underlay, and moving it into %s would cut that off: remove the address (ip addr del %s dev %s), or add it to the uplink's addresses, or choose another interface", to, a, u.Name)}
	}
	return nil
}

// planUplink plans uplink u of v as the view w of namespace ns holds it:
// enslaved to the VRF device (backend vrf: before its addresses, as an
// SVI), its missing addresses, up. An uplink that does not exist is
// absent (a warning; taken when it appears). One with a master other than
// the VRF device, such as a bridge, is a conflict: evpnd does not take an
// interface from another owner.
func planUplink(v VRF, u Uplink, w view, ns string) (acts []L3Action, absent bool, err error) {
	l, ok := w.byName[u.Name]
	if !ok {
		return nil, true, nil
	}
	master := ""
	if m, ok := w.byIndex[l.MasterIndex]; ok && l.MasterIndex != 0 {
		master = m.Name
	}
	if master != "" && (v.Backend != BackendVRF || master != v.Name) {
		want := "none"
		if v.Backend == BackendVRF {
			want = v.Name
		}
		return nil, false, &ConflictError{VNI: v.L3.VNI, Device: u.Name, Param: "master", Expected: want, Found: master,
			Fix: fmt.Sprintf("release it (ip link set %s nomaster) or remove it from the uplinks of VRF %s", u.Name, v.Name)}
	}
	if v.Backend == BackendVRF && master != v.Name {
		if err := foreignAddrs(v, u, l); err != nil {
			return nil, false, err
		}
		acts = append(acts, L3Action{Op: L3SetMaster, NS: ns, Dev: u.Name, Master: v.Name})
	}
	for _, a := range u.Addrs {
		if !slices.Contains(l.Addrs, a) {
			acts = append(acts, L3Action{Op: L3AddAddr, NS: ns, Dev: u.Name, Addr: a})
		}
	}
	if !l.Up {
		acts = append(acts, L3Action{Op: L3SetUp, NS: ns, Dev: u.Name})
	}
	return acts, false, nil
}

// l3From turns one of planOne's actions into the VRF plan's, in namespace
// ns. On the netns backend a VXLAN device is created in the underlay and
// moved in; bridges are created with IPv6 on, as SVIs.
func l3From(a Action, ns string) []L3Action {
	x := L3Action{NS: ns, VNI: a.VNI, Dev: a.Dev, Master: a.Master, MTU: a.MTU, Spec: a.Spec, Created: a.Created, PrevMTU: a.PrevMTU, PrevPort: a.PrevPort}
	switch a.Op {
	case OpCreateBridge:
		x.Op, x.IPv6 = L3CreateBridge, true
	case OpCreateVXLAN:
		x.Op, x.NS = L3CreateVXLAN, ""
		if ns != "" {
			return []L3Action{x, {Op: L3MoveToNS, VNI: a.VNI, Dev: a.Dev, To: ns, Created: true}}
		}
	case OpSetMTU:
		x.Op = L3SetMTU
	case OpSetMaster:
		x.Op = L3SetMaster
	case OpSetPortFlags:
		x.Op = L3SetPortFlags
	case OpSetUp:
		x.Op = L3SetUp
	}
	return []L3Action{x}
}

// planSVI plans an SVI (the bridge br, nil when planned for creation):
// enslaved to the VRF device, its MAC, IPv6 on, its addresses.
func planSVI(v VRF, s SVI, br *LinkInfo, master, ns string) []L3Action {
	var out []L3Action
	dev, vni := s.L2.Bridge, s.L2.VNI
	created := br == nil
	if v.Backend == BackendVRF {
		if created || master != v.Name {
			out = append(out, L3Action{Op: L3SetMaster, NS: ns, VNI: vni, Dev: dev, Master: v.Name, Created: created})
		}
	}
	if created || br.MAC != s.GatewayMAC.String() {
		a := L3Action{Op: L3SetMAC, NS: ns, VNI: vni, Dev: dev, MAC: s.GatewayMAC, Created: created}
		if !created {
			a.PrevMAC = br.MAC
		}
		out = append(out, a)
	}
	if !created && !hasLinkLocal(br.Addrs) {
		out = append(out, L3Action{Op: L3SetIPv6, NS: ns, VNI: vni, Dev: dev})
	}
	for _, g := range s.GatewayIPs {
		if !created && slices.Contains(br.Addrs, g) {
			continue
		}
		out = append(out, L3Action{Op: L3AddAddr, NS: ns, VNI: vni, Dev: dev, Addr: g, Created: created})
	}
	return out
}

func hasLinkLocal(as []netip.Prefix) bool {
	for _, a := range as {
		if a.Addr().Is6() && a.Addr().IsLinkLocalUnicast() {
			return true
		}
	}
	return false
}
