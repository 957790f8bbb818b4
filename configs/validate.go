package configs

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// Limits checked by Validate.
const (
	MaxVNI            = 1<<24 - 1 // VNIs are 24 bits (RFC 7348 §5)
	MaxRestartTime    = 4095 * time.Second
	MinMTU            = 68 // IPv4 minimum (RFC 791)
	MaxMTU            = 65535
	MaxInterfaceName  = 15 // IFNAMSIZ - 1
	MinDuplicateMoves = 2
)

// Validate checks c as ApplyDefaults would complete it, without modifying c,
// and returns every problem at once as a *ValidationError (nil if there is
// none). Each problem names the key path, the bad value, what is wrong and
// how to fix it; configs from Parse also carry the line.
//
// Choices worth knowing:
//   - Every node needs at least one neighbor or dynamic-neighbors range: a
//     speaker without peers can neither learn nor advertise anything.
//   - A leaf may have no l2vnis (they can be added at run time); a route
//     reflector may have none, since it installs nothing.
//   - Interface names (vxlan-device, bridge, access-interfaces) share one
//     namespace: each may appear once in the whole file.
//   - An explicit import RT may not be imported by two L2VNIs, including by
//     another L2VNI's auto RT (which matches on the VNI part alone): a route
//     carrying it would be installed in two bridge domains.
func (c *Config) Validate() error {
	cc := c.withDefaults()
	v := validator{c: cc, orig: c, ps: &problems{lines: c.lines}, names: map[string]string{}, rds: map[evpn.RD]string{}}
	v.global()
	v.neighbors()
	v.l2vnis()
	v.vrfs()
	v.importRTs()
	v.api()
	return v.ps.err(c.source)
}

// withDefaults returns a copy of c with defaults applied, sharing nothing
// that ApplyDefaults writes.
func (c *Config) withDefaults() *Config {
	cc := *c
	cc.Neighbors = slices.Clone(c.Neighbors)
	cc.DynamicNeighbors = slices.Clone(c.DynamicNeighbors)
	cc.L2VNIs = slices.Clone(c.L2VNIs)
	cc.ApplyDefaults()
	return &cc
}

type validator struct {
	c    *Config // with defaults
	orig *Config // as given
	ps   *problems
	// names holds the interface names used so far (l2vnis, then vrfs),
	// rds the RDs: both are unique across the file.
	names map[string]string
	rds   map[evpn.RD]string
}

func (v *validator) global() {
	c, ps := v.c, v.ps
	routerIDOK := false
	switch {
	case !c.RouterID.IsValid():
		ps.add("router-id", "", "missing: set it to this node's IPv4 address, usually its loopback (for example 10.0.0.1); a leaf also uses it as its VTEP address unless vtep-ip is set")
	case !c.RouterID.Is4():
		ps.add("router-id", c.RouterID.String(), "not IPv4: a BGP identifier is 32 bits (RFC 6286); use the node's IPv4 loopback address")
	case c.RouterID.IsUnspecified():
		ps.add("router-id", c.RouterID.String(), "must not be 0.0.0.0; use the node's IPv4 loopback address")
	default:
		routerIDOK = true
	}
	if c.ASN == 0 {
		ps.add("asn", "", "missing: set it to this node's AS number, 1-4294967295 (for example 65000; the leafs of an iBGP fabric share one)")
	}
	if c.Role != RoleLeaf && c.Role != RoleRouteReflector {
		ps.add("role", quote(string(c.Role)), "unknown role: use %q (the default) or %q", RoleLeaf, RoleRouteReflector)
	}
	if _, ok := logLevels[c.LogLevel]; !ok {
		ps.add("log-level", quote(c.LogLevel), "unknown level: use debug, info, warn or error")
	}
	// vtep-ip defaults to router-id: don't report a bad router-id twice.
	if c.Role == RoleLeaf && (routerIDOK || c.VTEPIP != c.RouterID) {
		checkVTEP(ps, c.VTEPIP)
	}

	b := c.BGP
	if b.ListenPort != -1 && (b.ListenPort < 1 || b.ListenPort > 65535) {
		ps.add("bgp.listen-port", strconv.Itoa(b.ListenPort), "out of range: use 1-65535, or -1 not to listen (then every session must be opened by this node)")
	}
	if b.ConnectRetry < time.Second || b.ConnectRetry > time.Hour {
		ps.add("bgp.connect-retry", b.ConnectRetry.String(), "out of range: use a duration from 1s to 1h, such as 5s")
	}
	if b.HoldTime < 3*time.Second || b.HoldTime > 65535*time.Second {
		ps.add("bgp.hold-time", b.HoldTime.String(), "out of range: use 3s to 65535s (RFC 4271), such as 90s (the default); a hold time of 0s, which turns keepalives off, is not supported")
	}
	if b.ListenPort == -1 && len(b.ListenAddresses) > 0 {
		ps.add("bgp.listen-addresses", "", "set while bgp.listen-port is -1 (don't listen): remove one of them")
	}
	seen := map[netip.Addr]string{}
	for i, a := range b.ListenAddresses {
		p := fmt.Sprintf("bgp.listen-addresses[%d]", i)
		if !a.IsValid() {
			ps.add(p, "", "empty entry: write an address of this node, or remove the line")
			continue
		}
		if first, dup := seen[a]; dup {
			ps.add(p, a.String(), "listed twice (also %s): remove one", first)
			continue
		}
		seen[a] = p
	}

	gr := c.GracefulRestart
	if gr.RestartTime < time.Second || gr.RestartTime > MaxRestartTime || gr.RestartTime%time.Second != 0 {
		ps.add("graceful-restart.restart-time", gr.RestartTime.String(), "out of range: the restart time is a whole number of seconds from 1s to 4095s (12 bits, RFC 4724 §3); the default is 120s")
	}
	if gr.EORTimeout <= 0 {
		ps.add("graceful-restart.eor-timeout", gr.EORTimeout.String(), "must be positive: it bounds the wait for End-of-RIB before stale kernel entries are removed (default 30s)")
	}

	mm := c.MACMobility
	if mm.DuplicateMoves < MinDuplicateMoves {
		ps.add("mac-mobility.duplicate-moves", strconv.Itoa(mm.DuplicateMoves), "must be at least 2: with 1 every ordinary move would mark the MAC duplicate, and duplicate detection cannot be turned off (default 5)")
	}
	if mm.DuplicateWindow <= 0 {
		ps.add("mac-mobility.duplicate-window", mm.DuplicateWindow.String(), "must be positive: it is the time within which duplicate-moves moves mark a MAC duplicate, such as 180s (the default)")
	}
}

func checkVTEP(ps *problems, a netip.Addr) {
	const path = "vtep-ip"
	switch {
	case !a.Is4():
		ps.add(path, a.String(), "not IPv4: evpnd's VXLAN devices and type-3 routes use an IPv4 VTEP; use the IPv4 address of the interface that sources VXLAN (usually the loopback), or remove vtep-ip to use router-id")
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		ps.add(path, a.String(), "not a unicast address other leafs can reach: use the IPv4 address of the interface that sources VXLAN (usually the loopback), or remove vtep-ip to use router-id")
	}
}

func (v *validator) neighbors() {
	c, ps := v.c, v.ps
	if len(c.Neighbors) == 0 && len(c.DynamicNeighbors) == 0 {
		ps.add("neighbors", "", "no BGP peers: add neighbors (peers this node connects to) or dynamic-neighbors (ranges it accepts sessions from); without a peer nothing is learned or advertised")
	}
	rr := c.Role == RoleRouteReflector
	underlayPeers := 0
	seen := map[netip.Addr]string{}
	seenIf := map[string]string{}
	for i, n := range c.Neighbors {
		p := fmt.Sprintf("neighbors[%d]", i)
		a := n.Address
		switch {
		case n.Interface != "" && a.IsValid():
			ps.add(p+".interface", n.Interface, "set together with address %s: give one of them", a)
		case n.Interface != "":
			if msg := ifnameProblem(n.Interface); msg != "" {
				ps.add(p+".interface", n.Interface, "%s", msg)
			} else if first, dup := seenIf[n.Interface]; dup {
				ps.add(p+".interface", n.Interface, "same link as %s: there can be one session per link; merge the two entries", first)
			}
			seenIf[n.Interface] = p
			if n.EBGPMultihop > 0 {
				ps.add(p+".ebgp-multihop", strconv.Itoa(n.EBGPMultihop), "set on a neighbor by interface, which is directly connected: remove it")
			}
		case !a.IsValid():
			ps.add(p+".address", "", "missing: set it to the peer's IP address, or interface to the local end of a /31 or /30 link to it")
		case a.IsUnspecified() || a.IsMulticast():
			ps.add(p+".address", a.String(), "not a unicast address: set it to the peer's IP address")
		case a == c.RouterID:
			ps.add(p+".address", a.String(), "is this node's own router-id: set it to the peer's address")
		case a == c.VTEPIP:
			ps.add(p+".address", a.String(), "is this node's own vtep-ip: set it to the peer's address")
		default:
			if first, dup := seen[a]; dup {
				ps.add(p+".address", a.String(), "same peer as %s: there can be one session per address; merge the two entries", first)
			}
			seen[a] = p
		}
		if n.ASN == 0 {
			ps.add(p+".asn", "", "missing: set it to the peer's AS number (the same as asn for iBGP, the peer's own for eBGP)")
		}
		if n.Port < 1 || n.Port > 65535 {
			ps.add(p+".port", strconv.Itoa(n.Port), "out of range: use 1-65535 (default 179)")
		}
		switch {
		case n.EBGPMultihop < 0 || n.EBGPMultihop > 255:
			ps.add(p+".ebgp-multihop", strconv.Itoa(n.EBGPMultihop), "out of range: a TTL of 2-255 (0 or unset: directly connected)")
		case n.EBGPMultihop > 0 && n.ASN == c.ASN:
			ps.add(p+".ebgp-multihop", strconv.Itoa(n.EBGPMultihop), "set on an iBGP neighbor (same ASN), which needs none: remove it")
		}
		checkRRClient(ps, p, n.RouteReflectorClient, rr, n.ASN, c.ASN)
		seenF := map[string]bool{}
		for j, f := range n.AddressFamilies {
			fp := fmt.Sprintf("%s.address-families[%d]", p, j)
			switch {
			case f != FamilyL2VPNEVPN && f != FamilyIPv4Unicast:
				ps.add(fp, f, "unknown address family: use l2vpn-evpn or ipv4-unicast")
			case seenF[f]:
				ps.add(fp, f, "listed twice: remove one")
			case f == FamilyIPv4Unicast && !c.Underlay.Enabled:
				ps.add(fp, f, "ipv4-unicast carries evpnd's BGP underlay: set underlay.enabled: true, or remove it")
			case f == FamilyIPv4Unicast && n.ASN != 0 && n.ASN == c.ASN:
				ps.add(fp, f, "ipv4-unicast on an iBGP neighbor (same asn): the underlay runs eBGP on the fabric links (RFC 7938), so that each hop sets its own next hop; give this node or the peer its own asn, or remove ipv4-unicast")
			case f == FamilyIPv4Unicast && n.EBGPMultihop > 0:
				ps.add(fp, f, "ipv4-unicast with ebgp-multihop: underlay routes must come from a directly connected peer, whose address is the next hop; peer over the link address instead")
			}
			seenF[f] = true
		}
		if n.HasFamily(FamilyIPv4Unicast) {
			underlayPeers++
		}
	}
	if c.Underlay.Enabled && underlayPeers == 0 {
		ps.add("underlay.enabled", "true", "no neighbor carries ipv4-unicast: list the directly connected eBGP peers of the fabric links under neighbors (their address-families default to l2vpn-evpn and ipv4-unicast)")
	}
	for i, pf := range c.Underlay.Advertise {
		p := fmt.Sprintf("underlay.advertise[%d]", i)
		switch {
		case !c.Underlay.Enabled:
			ps.add(p, pf.String(), "set without underlay.enabled: true; enable the underlay or remove advertise")
		case !pf.Addr().Is4():
			ps.add(p, pf.String(), "not IPv4: the underlay carries ipv4-unicast only")
		case pf.Masked() != pf:
			ps.add(p, pf.String(), "has host bits set: write %s", pf.Masked())
		}
	}

	for i, d := range c.DynamicNeighbors {
		p := fmt.Sprintf("dynamic-neighbors[%d]", i)
		switch pf := d.Prefix; {
		case !pf.IsValid():
			ps.add(p+".prefix", "", "missing: set it to the range peers connect from, such as 10.0.0.0/24")
		case pf.Masked() != pf:
			ps.add(p+".prefix", pf.String(), "has host bits set: write %s", pf.Masked())
		default:
			for j, e := range c.DynamicNeighbors[:i] {
				if e.Prefix.IsValid() && e.Prefix.Overlaps(pf) {
					ps.add(p+".prefix", pf.String(), "overlaps dynamic-neighbors[%d].prefix %s: a peer would match both; make the ranges disjoint", j, e.Prefix)
					break
				}
			}
		}
		if d.ASN == 0 {
			ps.add(p+".asn", "", "missing: set it to the AS number of the peers in the range")
		}
		checkRRClient(ps, p, d.RouteReflectorClient, rr, d.ASN, c.ASN)
	}
	if len(c.DynamicNeighbors) > 0 && c.BGP.ListenPort == -1 {
		ps.add("bgp.listen-port", "-1", "dynamic-neighbors need a listening port: their peers open the sessions; remove listen-port or set it to 179")
	}
}

func checkRRClient(ps *problems, p string, client *bool, rr bool, peerASN, asn uint32) {
	if client == nil || !*client {
		return
	}
	p += ".route-reflector-client"
	switch {
	case !rr:
		ps.add(p, "true", "only a route reflector has clients: remove it, or set role: route-reflector")
	case peerASN != 0 && peerASN != asn:
		ps.add(p, "true", "an eBGP peer (asn %d, this node %d) cannot be a route-reflector client (RFC 4456 reflects iBGP routes): remove it or fix the asn", peerASN, asn)
	}
}

func (v *validator) l2vnis() {
	c, ps := v.c, v.ps
	if len(c.L2VNIs) == 0 {
		return
	}
	if c.Role == RoleRouteReflector {
		ps.add("l2vnis", "", "a route reflector installs nothing and has no VTEP: remove l2vnis, or set role: leaf")
		return
	}
	vnis := map[uint32]string{}
	names, rds := v.names, v.rds
	for i, l := range c.L2VNIs {
		p := fmt.Sprintf("l2vnis[%d]", i)
		dupVNI := false
		switch {
		case l.VNI == 0:
			ps.add(p+".vni", "", "missing: set it to the segment's VXLAN network identifier, 1-16777215")
		case l.VNI > MaxVNI:
			ps.add(p+".vni", strconv.FormatUint(uint64(l.VNI), 10), "out of range: a VNI is 24 bits, 1-16777215")
		default:
			if first, dup := vnis[l.VNI]; dup {
				dupVNI = true
				ps.add(p+".vni", strconv.FormatUint(uint64(l.VNI), 10), "already configured by %s: each VNI appears once; merge the two entries", first)
			} else {
				vnis[l.VNI] = p
			}
		}

		// A repeated VNI repeats its default names and RD too; the one
		// problem above says it all.
		if !dupVNI {
			useName(ps, names, p+".vxlan-device", l.VXLANDevice, v.defaulted(p+".vxlan-device"))
			useName(ps, names, p+".bridge", l.Bridge, v.defaulted(p+".bridge"))
			for j, a := range l.AccessInterfaces {
				useName(ps, names, fmt.Sprintf("%s.access-interfaces[%d]", p, j), a, false)
			}
			// rd is empty only while router-id is unset, which is reported.
			if l.RD != "" {
				v.rd(rds, p+".rd", l.RD, v.defaulted(p+".rd"))
			}
		}

		for j, s := range l.ExportRTs {
			if _, err := evpn.ParseRT(s); err != nil {
				ps.add(fmt.Sprintf("%s.export-rts[%d]", p, j), quote(s), "%v", err)
			}
		}

		if l.UDPPort < 1 || l.UDPPort > 65535 {
			ps.add(p+".udp-port", strconv.Itoa(l.UDPPort), "out of range: use 1-65535 (default 4789)")
		}
		if l.MTU != 0 && (l.MTU < MinMTU || l.MTU > MaxMTU) {
			ps.add(p+".mtu", strconv.Itoa(l.MTU), "out of range: use %d-%d, or remove mtu to let the kernel choose", MinMTU, MaxMTU)
		}
	}
}

func (v *validator) rd(rds map[evpn.RD]string, p, s string, auto bool) {
	rd, err := evpn.ParseRD(s)
	if err != nil {
		v.ps.add(p, quote(s), "%v; or remove rd to derive <router-id>:<N>", err)
		return
	}
	if first, dup := rds[rd]; dup {
		v.ps.add(p, quote(s), "%sthe same RD as %s: an RD must be unique per VNI on this node; set a different rd on one of them", isOrDefault(auto), first)
		return
	}
	rds[rd] = p
}

// defaulted reports whether the value at path came from a default rather
// than the source file; false when that is not known.
func (v *validator) defaulted(path string) bool {
	if v.orig.lines == nil {
		return false
	}
	_, inFile := v.orig.lines[path]
	return !inFile
}

func isOrDefault(d bool) string {
	if d {
		return "the default value is "
	}
	return "is "
}

// useName records an interface name, reporting it if invalid or taken.
func useName(ps *problems, names map[string]string, path, name string, auto bool) {
	if why := ifnameProblem(name); why != "" {
		ps.add(path, quote(name), "%s", why)
		return
	}
	if first, dup := names[name]; dup {
		ps.add(path, quote(name), "%salready used by %s: every vxlan-device, bridge and access interface is one distinct interface, and a port belongs to one bridge; choose another name", isOrDefault(auto), first)
		return
	}
	names[name] = path
}

// ifnameProblem says why name is not a valid Linux interface name
// (net/core/dev.c dev_valid_name), or returns "".
func ifnameProblem(name string) string {
	const fix = "a Linux interface name has 1-15 characters, none of them '/', ':', '%' or white space, and is not \".\" or \"..\""
	switch {
	case name == "":
		return "empty: " + fix
	case len(name) > MaxInterfaceName:
		return fmt.Sprintf("%d characters is too long: %s", len(name), fix)
	case name == "." || name == "..":
		return "reserved: " + fix
	case strings.ContainsAny(name, "/:% \t\n\v\f\r"):
		// The kernel treats a name with '%' as a template ("vxlan%d").
		return "invalid character: " + fix
	}
	return ""
}

// importRTs checks import-rts and that no route target is imported by two
// L2VNIs or VRFs. An auto import matches any 2-octet-AS RT whose value is
// the VNI (the L3VNI for a VRF).
func (v *validator) importRTs() {
	c, ps := v.c, v.ps
	type importer struct {
		path string
		vni  uint32
		rts  []string
	}
	var all []importer
	for i, l := range c.L2VNIs {
		all = append(all, importer{fmt.Sprintf("l2vnis[%d]", i), l.VNI, l.ImportRTs})
	}
	if c.Role == RoleLeaf {
		for i, f := range c.VRFs {
			all = append(all, importer{fmt.Sprintf("vrfs[%d]", i), f.L3VNI, f.ImportRTs})
		}
	}
	autoVNI := map[uint32]string{} // VNI → path of the L2VNI or VRF importing it by auto RT
	for _, im := range all {
		if len(im.rts) == 0 && im.vni != 0 {
			if _, dup := autoVNI[im.vni]; !dup {
				autoVNI[im.vni] = im.path
			}
		}
	}
	exact := map[evpn.RT]string{}
	for _, im := range all {
		for j, s := range im.rts {
			p := fmt.Sprintf("%s.import-rts[%d]", im.path, j)
			rt, err := evpn.ParseRT(s)
			if err != nil {
				ps.add(p, quote(s), "%v", err)
				continue
			}
			if first, dup := exact[rt]; dup {
				ps.add(p, quote(s), "also imported by %s: a route carrying it would be installed in two places; use a distinct RT per VNI", first)
				continue
			}
			exact[rt] = p
			if owner, ok := autoVNI[rt.Value]; ok && !rt.IPv4 && rt.Value != im.vni {
				ps.add(p, quote(s), "also matches the auto import of %s (VNI %d, matched on the VNI part alone): use another RT, or set import-rts on %s too", owner, rt.Value, owner)
			}
		}
	}
}
