package configs

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// Backend is how a tenant VRF is isolated in the kernel (DESIGN §4).
type Backend string

const (
	// BackendDefault puts the tenant in the main routing table and the
	// underlay namespace, as FRR's "vrf default" with an L3VNI. At most one
	// VRF may use it: there is one main table.
	BackendDefault Backend = "default"
	// BackendNetns gives the tenant a network namespace of its own: its
	// VXLAN devices are created in the underlay namespace and moved in, its
	// bridges, SVIs and access ports live there. Overlapping tenant
	// addresses are isolated on kernels without VRF devices.
	BackendNetns Backend = "netns"
	// BackendVRF uses a Linux VRF device (CONFIG_NET_VRF) enslaving the
	// tenant's SVIs, with its own routing table.
	BackendVRF Backend = "vrf"
)

// VRF is a tenant's layer-3 domain: its L3VNI (symmetric IRB, RFC 9135),
// the L2VNIs routed in it with their anycast gateways, and what it
// advertises as type-5 routes.
type VRF struct {
	Name    string  `yaml:"name"`    // 1-15 characters, as an interface name
	L3VNI   uint32  `yaml:"l3vni"`   // 1-16777215, distinct from every L2VNI
	Backend Backend `yaml:"backend"` // required: default, netns or vrf
	// Namespace is the tenant's network namespace (backend netns only).
	// Default: the VRF's name.
	Namespace string `yaml:"namespace"`
	// Table is the routing table of the VRF device (backend vrf only).
	// Default: the L3VNI; 253-255 (default, main, local) are refused.
	Table uint32 `yaml:"table"`
	// RouterMAC is the MAC of the L3VNI's SVI, carried in the Router's MAC
	// extended community. Default: DerivedRouterMAC(router-id), the same
	// for every VRF of this leaf and different on every leaf.
	RouterMAC   string `yaml:"router-mac"`
	VXLANDevice string `yaml:"vxlan-device"` // default vxlan<L3VNI>
	Bridge      string `yaml:"bridge"`       // the L3VNI's SVI; default br<L3VNI>
	UDPPort     int    `yaml:"udp-port"`     // default 4789
	MTU         int    `yaml:"mtu"`          // as for l2vnis
	// RD, ImportRTs and ExportRTs follow the rules of an L2VNI's, with
	// the L3VNI in place of the VNI.
	RD        string   `yaml:"rd"`
	ImportRTs []string `yaml:"import-rts"`
	ExportRTs []string `yaml:"export-rts"`
	// GatewayMAC is the anycast gateway MAC of the members that set none.
	// It must be the same on every leaf.
	GatewayMAC string `yaml:"gateway-mac"`
	// L2VNIs are the segments routed in this VRF; each must also be listed
	// under the top-level l2vnis, and belongs to one VRF at most.
	L2VNIs []VRFMember `yaml:"l2vnis"`
	// AdvertiseDefaultRoute makes this leaf a border leaf: it advertises
	// 0.0.0.0/0 and ::/0 as type-5 routes of the VRF.
	AdvertiseDefaultRoute bool `yaml:"advertise-default-route"`
	// AdvertisePrefixes are advertised as type-5 routes, besides the
	// members' gateway subnets.
	AdvertisePrefixes []netip.Prefix `yaml:"advertise-prefixes"`
	// Uplinks connect the VRF to the outside (a border leaf's external
	// links): evpnd moves each interface into the tenant's namespace
	// (netns), enslaves it to the VRF device (vrf) or leaves it in place
	// (default), and gives it its addresses. Their subnets are connected
	// in the VRF and advertised as type-5 routes like the members'.
	Uplinks []Uplink `yaml:"uplinks"`
	// Routes are static routes of the VRF, each via a next hop on an
	// uplink's subnet, installed in the VRF's table marked with evpnd's
	// static protocol. A remote type-5 route for the same prefix is not
	// installed: the local route wins, as zebra's static over BGP.
	Routes []StaticRoute `yaml:"routes"`
}

// Uplink is an external interface of a VRF with its addresses.
type Uplink struct {
	Interface string `yaml:"interface"`
	// Addresses are the interface's addresses with their subnet's length,
	// such as 192.0.2.1/30 or 2001:db8:ff::1/126: at least one.
	Addresses []netip.Prefix `yaml:"addresses"`
}

// StaticRoute is a route of a VRF to Prefix via the next hop Via, an
// address on the subnet of one of the VRF's uplinks, of Prefix's family.
type StaticRoute struct {
	Prefix netip.Prefix `yaml:"prefix"`
	Via    netip.Addr   `yaml:"via"`
}

// VRFMember is an L2VNI routed in a VRF: its SVI (the L2VNI's bridge)
// carries the anycast gateway addresses and MAC, the same on every leaf.
type VRFMember struct {
	VNI uint32 `yaml:"vni"`
	// GatewayIPs are the SVI's addresses with their subnet's length, such
	// as 10.1.0.1/24 or 2001:db8:1::1/64: at least one.
	GatewayIPs []netip.Prefix `yaml:"gateway-ips"`
	GatewayMAC string         `yaml:"gateway-mac"` // default: the VRF's gateway-mac
}

// DerivedRouterMAC is the router MAC of a VRF whose router-mac is not set:
// 02:ee followed by the four octets of the router-id. It is locally
// administered (bit 1 of the first octet), unicast, stable across restarts
// and config edits, and distinct on every leaf since router-ids are. The
// zero MAC for a router-id that is not IPv4 (Validate reports it).
func DerivedRouterMAC(routerID netip.Addr) evpn.MAC {
	if !routerID.Is4() {
		return evpn.MAC{}
	}
	b := routerID.As4()
	return evpn.MAC{0x02, 0xee, b[0], b[1], b[2], b[3]}
}

// Reserved routing tables (linux/rtnetlink.h): RT_TABLE_DEFAULT,
// RT_TABLE_MAIN, RT_TABLE_LOCAL.
func reservedTable(t uint32) bool { return t == 0 || (t >= 253 && t <= 255) }

// applyVRFDefaults fills in the VRFs' defaults (see ApplyDefaults). It
// clones what it writes, so a shallow copy of c stays untouched.
func (c *Config) applyVRFDefaults() {
	if len(c.VRFs) == 0 {
		return
	}
	c.VRFs = slices.Clone(c.VRFs)
	for i := range c.VRFs {
		v := &c.VRFs[i]
		p := fmt.Sprintf("vrfs[%d]", i)
		if v.Backend == BackendNetns && v.Namespace == "" {
			v.Namespace = v.Name
		}
		if v.Backend == BackendVRF && v.Table == 0 && !c.isSet(p+".table") {
			v.Table = v.L3VNI
		}
		if v.RouterMAC == "" && c.RouterID.Is4() {
			v.RouterMAC = DerivedRouterMAC(c.RouterID).String()
		}
		if v.VXLANDevice == "" {
			v.VXLANDevice = fmt.Sprintf("vxlan%d", v.L3VNI)
		}
		if v.Bridge == "" {
			v.Bridge = fmt.Sprintf("br%d", v.L3VNI)
		}
		if v.UDPPort == 0 && !c.isSet(p+".udp-port") {
			v.UDPPort = DefaultVXLANPort
		}
		if v.RD == "" && c.RouterID.Is4() {
			v.RD = c.autoRD(v.L3VNI).String()
		}
		v.L2VNIs = slices.Clone(v.L2VNIs)
		for j := range v.L2VNIs {
			if m := &v.L2VNIs[j]; m.GatewayMAC == "" {
				m.GatewayMAC = v.GatewayMAC
			}
		}
	}
}

// VRFRD returns the RD of v: its rd if set, else "<router-id>:N" with N =
// AutoRDNumber(L3VNI). Call it on a validated config.
func (c *Config) VRFRD(v VRF) evpn.RD {
	if v.RD != "" {
		if rd, err := evpn.ParseRD(v.RD); err == nil {
			return rd
		}
	}
	return c.autoRD(v.L3VNI)
}

// VRFImportRTs is ImportRTs for a VRF: auto (ASN:L3VNI, matched on the
// L3VNI alone) unless import-rts is set.
func (c *Config) VRFImportRTs(v VRF) (rts []evpn.RT, auto bool) {
	if len(v.ImportRTs) == 0 {
		return []evpn.RT{evpn.AutoRT(c.ASN, v.L3VNI)}, true
	}
	return parseRTs(v.ImportRTs), false
}

// VRFExportRTs is ExportRTs for a VRF.
func (c *Config) VRFExportRTs(v VRF) []evpn.RT {
	if len(v.ExportRTs) == 0 {
		return []evpn.RT{evpn.AutoRT(c.ASN, v.L3VNI)}
	}
	return parseRTs(v.ExportRTs)
}

// VRFRouterMAC returns v's router MAC: router-mac if set, else
// DerivedRouterMAC. Call it on a validated config.
func (c *Config) VRFRouterMAC(v VRF) evpn.MAC {
	if m, err := evpn.ParseMAC(v.RouterMAC); err == nil {
		return m
	}
	return DerivedRouterMAC(c.RouterID)
}

// MemberGatewayMAC returns m's gateway MAC (its own, else the VRF's).
// Call it on a validated config.
func MemberGatewayMAC(v VRF, m VRFMember) evpn.MAC {
	s := m.GatewayMAC
	if s == "" {
		s = v.GatewayMAC
	}
	mac, _ := evpn.ParseMAC(s)
	return mac
}

// VRFAdvertisedPrefixes returns the prefixes v advertises as type-5
// routes: its members' gateway subnets and its uplinks' subnets (its
// connected subnets), its advertise-prefixes, and 0.0.0.0/0 and ::/0 with advertise-default-route;
// sorted, without duplicates. Call it on a validated config.
func VRFAdvertisedPrefixes(v VRF) []netip.Prefix {
	seen := map[netip.Prefix]bool{}
	var out []netip.Prefix
	add := func(p netip.Prefix) {
		if p.IsValid() && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, m := range v.L2VNIs {
		for _, g := range m.GatewayIPs {
			add(g.Masked())
		}
	}
	for _, u := range v.Uplinks {
		for _, a := range u.Addresses {
			add(a.Masked())
		}
	}
	for _, p := range v.AdvertisePrefixes {
		add(p)
	}
	if v.AdvertiseDefaultRoute {
		add(netip.MustParsePrefix("0.0.0.0/0"))
		add(netip.MustParsePrefix("::/0"))
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}

// vrfs checks the vrfs section; the l2vnis were checked before, filling
// v.names and v.rds.
func (v *validator) vrfs() {
	c, ps := v.c, v.ps
	if len(c.VRFs) == 0 {
		return
	}
	if c.Role == RoleRouteReflector {
		ps.add("vrfs", "", "a route reflector installs nothing and has no VTEP: remove vrfs, or set role: leaf")
		return
	}
	l2 := map[uint32]int{} // L2VNI → index in l2vnis
	for i, l := range c.L2VNIs {
		if _, dup := l2[l.VNI]; !dup && l.VNI != 0 {
			l2[l.VNI] = i
		}
	}
	vrfNames := map[string]string{}
	namespaces := map[string]string{}
	l3vnis := map[uint32]string{}
	tables := map[uint32]string{}
	member := map[uint32]string{} // L2VNI → path of the member naming it
	defaultUser := ""
	for i, f := range c.VRFs {
		p := fmt.Sprintf("vrfs[%d]", i)
		if why := ifnameProblem(f.Name); why != "" {
			if f.Name == "" {
				ps.add(p+".name", "", "missing: name the tenant VRF (1-15 characters, as a Linux interface name: it names the VRF device or namespace)")
			} else {
				ps.add(p+".name", quote(f.Name), "%s", why)
			}
		} else if first, dup := vrfNames[f.Name]; dup {
			ps.add(p+".name", quote(f.Name), "already the name of %s: each VRF has its own name", first)
		} else {
			vrfNames[f.Name] = p
		}

		dupL3 := false
		switch {
		case f.L3VNI == 0:
			ps.add(p+".l3vni", "", "missing: set the VRF's L3VNI, 1-16777215, the same on every leaf of the tenant and distinct from every L2VNI")
		case f.L3VNI > MaxVNI:
			ps.add(p+".l3vni", u32(f.L3VNI), "out of range: a VNI is 24 bits, 1-16777215")
		default:
			if j, ok := l2[f.L3VNI]; ok {
				dupL3 = true // its default names and RD clash too; this says it all
				ps.add(p+".l3vni", u32(f.L3VNI), "is also l2vnis[%d].vni: an L3VNI carries routed traffic only and needs its own VNI; choose another", j)
			} else if first, dup := l3vnis[f.L3VNI]; dup {
				dupL3 = true
				ps.add(p+".l3vni", u32(f.L3VNI), "already the L3VNI of %s: each VRF has its own", first)
			} else {
				l3vnis[f.L3VNI] = p
			}
		}

		switch f.Backend {
		case "":
			ps.add(p+".backend", "", "missing: choose vrf (Linux VRF devices; the kernel needs CONFIG_NET_VRF), netns (a network namespace per tenant) or default (the main table; one VRF at most)")
		case BackendDefault:
			if defaultUser != "" {
				ps.add(p+".backend", quote(string(f.Backend)), "also used by %s: the default backend is the main routing table, which holds one tenant; use netns or vrf for the others", defaultUser)
			} else {
				defaultUser = p
			}
		case BackendNetns, BackendVRF:
		default:
			ps.add(p+".backend", quote(string(f.Backend)), "unknown backend: use vrf, netns or default")
		}
		if f.Namespace != "" {
			switch {
			case f.Backend != BackendNetns:
				ps.add(p+".namespace", quote(f.Namespace), "only for backend netns: remove it")
			case namespaceProblem(f.Namespace) != "":
				ps.add(p+".namespace", quote(f.Namespace), "%s", namespaceProblem(f.Namespace))
			default:
				if first, dup := namespaces[f.Namespace]; dup {
					ps.add(p+".namespace", quote(f.Namespace), "%salready the namespace of %s: each tenant needs its own; set namespace on one of them", isOrDefault(v.defaulted(p+".namespace")), first)
				} else {
					namespaces[f.Namespace] = p
				}
			}
		}
		if f.Backend != BackendVRF && (f.Table != 0 || v.orig.isSet(p+".table")) {
			ps.add(p+".table", u32(f.Table), "only for backend vrf: remove it")
		}
		if f.Backend == BackendVRF && !dupL3 {
			switch {
			case reservedTable(f.Table):
				ps.add(p+".table", u32(f.Table), "%sa reserved table (0, 253 default, 254 main, 255 local): set table to another number", isOrDefault(!v.orig.isSet(p+".table")))
			default:
				if first, dup := tables[f.Table]; dup {
					ps.add(p+".table", u32(f.Table), "already the table of %s: each VRF device needs its own", first)
				} else {
					tables[f.Table] = p
				}
			}
		}

		if !dupL3 {
			useName(ps, v.names, p+".vxlan-device", f.VXLANDevice, v.defaulted(p+".vxlan-device"))
			useName(ps, v.names, p+".bridge", f.Bridge, v.defaulted(p+".bridge"))
			if f.RD != "" {
				v.rd(v.rds, p+".rd", f.RD, v.defaulted(p+".rd"))
			}
		}
		if f.Backend == BackendVRF && f.Name != "" {
			// The VRF device is an interface of the underlay namespace.
			useName(ps, v.names, p+".name", f.Name, false)
		}
		for j, s := range f.ExportRTs {
			if _, err := evpn.ParseRT(s); err != nil {
				ps.add(fmt.Sprintf("%s.export-rts[%d]", p, j), quote(s), "%v", err)
			}
		}
		if f.UDPPort < 1 || f.UDPPort > 65535 {
			ps.add(p+".udp-port", strconv.Itoa(f.UDPPort), "out of range: use 1-65535 (default 4789)")
		}
		if f.MTU != 0 && (f.MTU < MinMTU || f.MTU > MaxMTU) {
			ps.add(p+".mtu", strconv.Itoa(f.MTU), "out of range: use %d-%d, or remove mtu to let the kernel choose", MinMTU, MaxMTU)
		}

		rmac, rmacOK := v.mac(p+".router-mac", f.RouterMAC, "the router MAC", v.defaulted(p+".router-mac"))
		if f.GatewayMAC != "" {
			v.gatewayMAC(p+".gateway-mac", f.GatewayMAC, rmac, rmacOK)
		}
		subnets := v.members(p, f, l2, member, rmac, rmacOK)
		v.prefixes(p, f)
		v.uplinks(p, f, subnets)
	}
}

// subnet is a connected subnet of a VRF with the path that gives it.
type subnet struct {
	pfx  netip.Prefix
	path string
}

// members checks the L2VNIs of VRF f at path p and returns their valid
// gateway subnets.
func (v *validator) members(p string, f VRF, l2 map[uint32]int, member map[uint32]string, rmac evpn.MAC, rmacOK bool) []subnet {
	ps := v.ps
	var subnets []subnet
	for j, m := range f.L2VNIs {
		mp := fmt.Sprintf("%s.l2vnis[%d]", p, j)
		switch _, ok := l2[m.VNI]; {
		case m.VNI == 0:
			ps.add(mp+".vni", "", "missing: name an L2VNI of the top-level l2vnis list")
		case !ok:
			ps.add(mp+".vni", u32(m.VNI), "not in l2vnis: add the segment to the top-level l2vnis list (its devices, access interfaces, RD and RTs are set there)")
		default:
			if first, dup := member[m.VNI]; dup {
				ps.add(mp+".vni", u32(m.VNI), "already routed by %s: an L2VNI belongs to one VRF; remove one of them", first)
			} else {
				member[m.VNI] = mp
			}
		}
		if len(m.GatewayIPs) == 0 {
			ps.add(mp+".gateway-ips", "", "missing: give the SVI's anycast gateway address with its subnet's length, such as [10.1.0.1/24, 2001:db8:1::1/64], the same on every leaf")
		}
		for k, g := range m.GatewayIPs {
			gp := fmt.Sprintf("%s.gateway-ips[%d]", mp, k)
			if why := gatewayProblem(g); why != "" {
				ps.add(gp, g.String(), "%s", why)
				continue
			}
			if f.Backend == BackendDefault && g.Contains(v.c.VTEPIP) {
				ps.add(gp, g.String(), "holds vtep-ip %s: with backend default the tenant shares the main table with the underlay, so the underlay would be routed into the overlay; use another subnet", v.c.VTEPIP)
				continue
			}
			for _, o := range subnets {
				if o.pfx.Overlaps(g.Masked()) {
					ps.add(gp, g.String(), "overlaps %s (%s) in the same VRF: a host address would be in two subnets; make the subnets disjoint", o.path, o.pfx)
					break
				}
			}
			subnets = append(subnets, subnet{g.Masked(), gp})
		}
		switch {
		case m.GatewayMAC != "" && m.GatewayMAC != f.GatewayMAC: // the VRF's own is checked once, above
			v.gatewayMAC(mp+".gateway-mac", m.GatewayMAC, rmac, rmacOK)
		case m.GatewayMAC == "":
			ps.add(mp+".gateway-mac", "", "missing: set the anycast gateway MAC, the same on every leaf (such as 00:00:5e:00:01:01), here or as the VRF's gateway-mac")
		}
	}
	return subnets
}

// prefixes checks the type-5 prefixes VRF f advertises.
func (v *validator) prefixes(p string, f VRF) {
	seen := map[netip.Prefix]string{}
	for j, pf := range f.AdvertisePrefixes {
		pp := fmt.Sprintf("%s.advertise-prefixes[%d]", p, j)
		switch {
		case !pf.IsValid():
			v.ps.add(pp, "", "empty entry: write a prefix such as 10.99.0.0/16, or remove the line")
		case pf.Masked() != pf:
			v.ps.add(pp, pf.String(), "has host bits set: write %s", pf.Masked())
		case pf.Addr().Is4In6():
			v.ps.add(pp, pf.String(), "an IPv4-mapped IPv6 prefix: write the IPv4 prefix")
		case pf.Bits() == 0:
			v.ps.add(pp, pf.String(), "a default route: set advertise-default-route: true instead")
		default:
			if first, dup := seen[pf]; dup {
				v.ps.add(pp, pf.String(), "listed twice (also %s): remove one", first)
			} else {
				seen[pf] = pp
			}
		}
	}
}

// mac parses a MAC that must be unicast and non-zero.
func (v *validator) mac(path, s, what string, auto bool) (evpn.MAC, bool) {
	if s == "" {
		return evpn.MAC{}, false // router-id unset: reported there
	}
	m, err := evpn.ParseMAC(s)
	switch {
	case err != nil:
		v.ps.add(path, quote(s), "not a MAC address: write six colon-separated hex octets such as 02:00:00:00:00:01")
		return m, false
	case !m.IsUnicast():
		v.ps.add(path, s, "%snot a unicast MAC (zero, or the multicast bit of the first octet set): %s must be a host's address; use a locally administered one such as 02:00:00:00:00:01", isOrDefault(auto), what)
		return m, false
	}
	return m, true
}

func (v *validator) gatewayMAC(path, s string, rmac evpn.MAC, rmacOK bool) {
	m, ok := v.mac(path, s, "a gateway MAC", false)
	if ok && rmacOK && m == rmac {
		v.ps.add(path, s, "equals the VRF's router MAC: the router MAC must be this leaf's own (it tells other leafs where to tunnel routed traffic) and the gateway MAC the same on every leaf; use different MACs")
	}
}

// gatewayProblem says why g cannot be an anycast gateway address, or "".
func gatewayProblem(g netip.Prefix) string {
	a := g.Addr()
	switch {
	case !g.IsValid():
		return "empty entry: write the gateway's address with its subnet's length, such as 10.1.0.1/24"
	case a.Is4In6():
		return "an IPv4-mapped IPv6 address: write the IPv4 address"
	case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast():
		return "not a routable unicast address: write the gateway's address in the tenant subnet, such as 10.1.0.1/24"
	case g.IsSingleIP():
		return "a host prefix: write the gateway address with its subnet's length, such as 10.1.0.1/24, so the subnet is reachable on the SVI"
	case a.Is4() && g.Bits() <= 30 && (a == g.Masked().Addr() || isBroadcast(g)):
		return fmt.Sprintf("the subnet's network or broadcast address: write a host address of %s, such as %s", g.Masked(), g.Masked().Addr().Next())
	}
	return ""
}

func isBroadcast(g netip.Prefix) bool {
	b := g.Addr().As4()
	a := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	host := uint32(1)<<(32-g.Bits()) - 1
	return a&host == host
}

// namespaceProblem says why name cannot be a network namespace name
// (a file under /run/netns), or "".
func namespaceProblem(name string) string {
	const fix = "a namespace name is a file name under /run/netns: 1-255 characters, no '/' or white space, not \".\" or \"..\""
	switch {
	case len(name) > 255:
		return "too long: " + fix
	case name == "." || name == "..":
		return "reserved: " + fix
	case strings.ContainsAny(name, "/ \t\n\v\f\r"):
		return "invalid character: " + fix
	}
	return ""
}

func u32(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// Warnings lists what is valid but probably not meant, in the form of
// Problems (path, line, value, reason). Call it on a config that passed
// Validate. It finds what one leaf's file shows; a gateway MAC that differs
// between leafs shows only across leafs and is not found here.
//
//   - Members of one VRF with different gateway MACs: hosts of the tenant
//     see a different gateway MAC per subnet, which peers' users have
//     found to break hosts and appliances that cache the gateway across
//     subnets; one gateway MAC per VRF is the usual practice.
//   - An L2VNI routed in no VRF while VRFs exist: it has no SVI, so no
//     neighbour entries answer ARP/ND there and it is flooded across the
//     fabric; evpnd leaves neigh_suppress off on its VXLAN port, where it
//     would only keep gratuitous ARPs and ARP probes from other leafs.
func (c *Config) Warnings() []Problem {
	cc := c.withDefaults()
	ps := &problems{lines: c.lines}
	if len(cc.VRFs) == 0 {
		return nil
	}
	routed := map[uint32]bool{}
	for i, f := range cc.VRFs {
		first, firstPath := "", ""
		for j, m := range f.L2VNIs {
			routed[m.VNI] = true
			mp := fmt.Sprintf("vrfs[%d].l2vnis[%d].gateway-mac", i, j)
			mac := MemberGatewayMAC(f, m)
			switch s := mac.String(); {
			case first == "":
				first, firstPath = s, mp
			case s != first:
				ps.add(mp, s, "differs from %s (%s) in the same VRF: the tenant's SVIs usually share one gateway MAC; set the VRF's gateway-mac and remove the members' own", firstPath, first)
			}
		}
	}
	for i, l := range cc.L2VNIs {
		if !routed[l.VNI] {
			ps.add(fmt.Sprintf("l2vnis[%d]", i), u32(l.VNI), "in no VRF: neigh_suppress stays off for it, as without an SVI there are no neighbour entries to answer ARP/ND from, so they are flooded across the fabric; add it to a VRF's l2vnis to route and suppress, or ignore this for a bridged-only segment")
		}
	}
	if ps.err("") == nil {
		return nil
	}
	return ps.list
}

// uplinks checks the uplinks and static routes of VRF f at path p;
// subnets are its members' gateway subnets.
func (v *validator) uplinks(p string, f VRF, subnets []subnet) {
	ps := v.ps
	type own struct {
		subnet
		addr netip.Addr
	}
	var ups []own
	for j, u := range f.Uplinks {
		up := fmt.Sprintf("%s.uplinks[%d]", p, j)
		if u.Interface == "" {
			ps.add(up+".interface", "", "missing: name the external interface, such as eth5 (evpnd moves it into the tenant's namespace on backend netns, enslaves it to the VRF device on vrf)")
		} else {
			useName(ps, v.names, up+".interface", u.Interface, false)
		}
		if len(u.Addresses) == 0 {
			ps.add(up+".addresses", "", "missing: give the interface's addresses with their subnet's length, such as [192.0.2.1/30, 2001:db8:ff::1/126]")
		}
		for k, a := range u.Addresses {
			ap := fmt.Sprintf("%s.addresses[%d]", up, k)
			if why := uplinkAddrProblem(a); why != "" {
				ps.add(ap, a.String(), "%s", why)
				continue
			}
			if f.Backend == BackendDefault && a.Contains(v.c.VTEPIP) {
				ps.add(ap, a.String(), "holds vtep-ip %s: with backend default the tenant shares the main table with the underlay; use another subnet", v.c.VTEPIP)
				continue
			}
			clash := false
			for _, o := range subnets {
				if o.pfx.Overlaps(a.Masked()) {
					ps.add(ap, a.String(), "overlaps %s (%s) in the same VRF: an address would be connected twice; make the subnets disjoint", o.path, o.pfx)
					clash = true
					break
				}
			}
			if !clash {
				for _, o := range ups {
					if o.pfx.Overlaps(a.Masked()) {
						ps.add(ap, a.String(), "overlaps %s (%s) in the same VRF: an address would be connected twice; make the subnets disjoint", o.path, o.pfx)
						clash = true
						break
					}
				}
			}
			if !clash {
				ups = append(ups, own{subnet{a.Masked(), ap}, a.Addr()})
			}
		}
	}
	conn := slices.Clone(subnets)
	for _, u := range ups {
		conn = append(conn, u.subnet)
	}
	seen := map[netip.Prefix]string{}
	for j, r := range f.Routes {
		rp := fmt.Sprintf("%s.routes[%d]", p, j)
		switch pf := r.Prefix; {
		case !pf.IsValid():
			ps.add(rp+".prefix", "", "missing: write the destination, such as 0.0.0.0/0 or 198.51.100.0/24")
		case pf.Masked() != pf:
			ps.add(rp+".prefix", pf.String(), "has host bits set: write %s", pf.Masked())
		case pf.Addr().Is4In6():
			ps.add(rp+".prefix", pf.String(), "an IPv4-mapped IPv6 prefix: write the IPv4 prefix")
		case f.Backend == BackendDefault && pf.Bits() > 0 && pf.Contains(v.c.VTEPIP):
			// A default route goes in with the highest metric, behind
			// the underlay's routes (fib.LastResortMetric).
			ps.add(rp+".prefix", pf.String(), "holds vtep-ip %s: with backend default the route would go into the main table, which routes the underlay, and take the tunnel's own packets; use a prefix that leaves the VTEPs out, or backend netns or vrf", v.c.VTEPIP)
		default:
			if first, dup := seen[pf]; dup {
				ps.add(rp+".prefix", pf.String(), "listed twice (also %s): one next hop per prefix; remove one", first)
				break
			}
			seen[pf] = rp
			for _, o := range conn {
				if o.pfx == pf {
					ps.add(rp+".prefix", pf.String(), "is connected here (%s): remove the route", o.path)
					break
				}
			}
		}
		via := r.Via
		switch {
		case !via.IsValid():
			ps.add(rp+".via", "", "missing: write the next hop, an address on the subnet of one of the VRF's uplinks")
			continue
		case via.Is4In6():
			ps.add(rp+".via", via.String(), "an IPv4-mapped IPv6 address: write the IPv4 address")
			continue
		case r.Prefix.IsValid() && via.Is4() != r.Prefix.Addr().Is4():
			ps.add(rp+".via", via.String(), "not of the prefix's address family: an IPv4 prefix needs an IPv4 next hop, an IPv6 prefix an IPv6 one")
			continue
		}
		on := false
		for _, u := range ups {
			if u.pfx.Contains(via) {
				on = true
				if via == u.addr {
					ps.add(rp+".via", via.String(), "is this leaf's own address (%s): write the address of the router at the other end of the uplink", u.path)
				}
				break
			}
		}
		if !on {
			ps.add(rp+".via", via.String(), "on no uplink's subnet of this VRF: evpnd installs the route via an uplink; add the uplink or its address, or correct the next hop")
		}
	}
}

// uplinkAddrProblem says why a cannot be an uplink's address, or "".
func uplinkAddrProblem(a netip.Prefix) string {
	ip := a.Addr()
	switch {
	case !a.IsValid():
		return "empty entry: write the interface's address with its subnet's length, such as 192.0.2.1/30"
	case ip.Is4In6():
		return "an IPv4-mapped IPv6 address: write the IPv4 address"
	case ip.IsUnspecified() || ip.IsLoopback() || ip.IsMulticast() || ip.IsLinkLocalUnicast():
		return "not a routable unicast address: write the uplink's address, such as 192.0.2.1/30"
	case a.IsSingleIP():
		return "a host prefix: write the address with its subnet's length, such as 192.0.2.1/30 or 192.0.2.0/31, so the router at the other end is reachable"
	case ip.Is4() && a.Bits() <= 30 && (ip == a.Masked().Addr() || isBroadcast(a)):
		return fmt.Sprintf("the subnet's network or broadcast address: write a host address of %s, such as %s", a.Masked(), a.Masked().Addr().Next())
	}
	return ""
}
