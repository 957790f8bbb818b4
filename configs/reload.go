package configs

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// What a running evpnd applies from a re-read config file (evpnd's
// reload), and what only a restart changes. Keys not listed as live are
// restart-only: the BGP identity and listener (router-id, asn, role,
// vtep-ip, bgp.*), graceful restart, dynamic neighbours and the API's
// listeners and rights.
//
// Live: log-level, mac-mobility.*, neighbors, l2vnis, metrics.listen, and
// vrfs (see DiffVRFs for what of a VRF a reload changes in place, what it
// rebuilds and what it refuses), unless router-id or asn changes: a VRF's
// automatic RD, RTs and router MAC derive from them, so the running VRFs
// then stay as they are until the restart.

// RestartNeeded compares the restart-only keys of the config in force
// (cur) and a re-read file (next), both with defaults applied, and names
// each that differs as "key: old -> new", sorted by key.
func RestartNeeded(cur, next *Config) []string {
	var out []string
	diff := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, fmt.Sprintf("%s: %s -> %s", key, show(a), show(b)))
		}
	}
	diff("router-id", cur.RouterID, next.RouterID)
	diff("asn", cur.ASN, next.ASN)
	diff("role", cur.Role, next.Role)
	diff("vtep-ip", cur.VTEPIP, next.VTEPIP)
	diff("bgp.listen-addresses", cur.BGP.ListenAddresses, next.BGP.ListenAddresses)
	diff("bgp.listen-port", cur.BGP.ListenPort, next.BGP.ListenPort)
	diff("bgp.connect-retry", cur.BGP.ConnectRetry, next.BGP.ConnectRetry)
	diff("bgp.hold-time", cur.BGP.HoldTime, next.BGP.HoldTime)
	diff("graceful-restart.enabled", cur.GracefulRestart.IsEnabled(), next.GracefulRestart.IsEnabled())
	diff("graceful-restart.restart-time", cur.GracefulRestart.RestartTime, next.GracefulRestart.RestartTime)
	diff("graceful-restart.eor-timeout", cur.GracefulRestart.EORTimeout, next.GracefulRestart.EORTimeout)
	diff("dynamic-neighbors", dynamicKeys(cur.DynamicNeighbors, cur.Role), dynamicKeys(next.DynamicNeighbors, next.Role))
	diff("api.socket", cur.API.Socket, next.API.Socket)
	diff("api.socket-group", cur.API.SocketGroup, next.API.SocketGroup)
	diff("api.admin-group", cur.API.AdminGroup, next.API.AdminGroup)
	diff("api.listen", cur.API.Listen, next.API.Listen)
	diff("api.tls", cur.API.TLS, next.API.TLS)
	diff("api.gobgp-listen", cur.API.GoBGPListen, next.API.GoBGPListen)
	slices.Sort(out)
	return out
}

func dynamicKeys(ds []DynamicNeighbor, role Role) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s AS %d rr-client %v", d.Prefix, d.ASN, role == RoleRouteReflector && d.IsRouteReflectorClient()))
	}
	slices.Sort(out)
	return out
}

// show prints a value of a config key for RestartNeeded, cut short.
func show(v any) string {
	s := fmt.Sprint(v)
	switch x := v.(type) {
	case string:
		s = strconv.Quote(x)
	case APITLS:
		s = fmt.Sprintf("cert %q key %q client-ca %q", x.Cert, x.Key, x.ClientCA)
	case []string:
		s = "[" + strings.Join(x, "; ") + "]"
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// WithLive returns a copy of c (the config in force) with the keys a
// running evpnd applies live taken from next (a re-read file): log-level,
// mac-mobility, neighbors, l2vnis, metrics and (with the same router-id
// and asn: VRFsLive) vrfs. The restart-only keys keep c's values. The
// file's record of lines and explicit values is next's.
func (c *Config) WithLive(next *Config) *Config {
	cc := *c
	if VRFsLive(c, next) {
		cc.VRFs = slices.Clone(next.VRFs)
	}
	cc.LogLevel = next.LogLevel
	cc.MACMobility = next.MACMobility
	cc.Neighbors = slices.Clone(next.Neighbors)
	cc.L2VNIs = slices.Clone(next.L2VNIs)
	cc.Metrics = next.Metrics
	cc.source, cc.lines, cc.explicit = next.source, next.lines, next.explicit
	return &cc
}

// VRFsLive reports whether a reload from cur to next may change the VRFs:
// not when router-id or asn changes, from which their automatic RD, RTs
// and router MAC derive (those apply with the restart).
func VRFsLive(cur, next *Config) bool {
	return cur.RouterID == next.RouterID && cur.ASN == next.ASN
}

// OnlyL2VNIs returns a copy of c keeping the L2VNIs for which keep is
// true, in order; the file's record of lines and explicit values follows
// the kept entries to their new index.
func (c *Config) OnlyL2VNIs(keep func(L2VNI) bool) *Config {
	cc := *c
	cc.L2VNIs = nil
	index := map[int]int{}
	for i, v := range c.L2VNIs {
		if keep(v) {
			index[i] = len(cc.L2VNIs)
			cc.L2VNIs = append(cc.L2VNIs, v)
		}
	}
	to := func(i int) (int, bool) { j, ok := index[i]; return j, ok }
	cc.lines = moveL2VNIPaths(c.lines, to)
	cc.explicit = moveL2VNIPaths(c.explicit, to)
	return &cc
}

// moveL2VNIPaths returns a copy of m (keyed by key path) in which the paths
// of l2vnis[i] move to l2vnis[to(i)], or are dropped where to says false.
// Other keys are kept. A nil m stays nil.
func moveL2VNIPaths[V any](m map[string]V, to func(i int) (int, bool)) map[string]V {
	if m == nil {
		return nil
	}
	out := make(map[string]V, len(m))
	for k, v := range m {
		rest, ok := strings.CutPrefix(k, "l2vnis[")
		end := strings.IndexByte(rest, ']')
		if !ok || end < 0 {
			out[k] = v
			continue
		}
		i, err := strconv.Atoi(rest[:end])
		if err != nil {
			out[k] = v
			continue
		}
		if j, ok := to(i); ok {
			out["l2vnis["+strconv.Itoa(j)+rest[end:]] = v
		}
	}
	return out
}

// SameL2VNI reports whether two L2VNIs (defaults applied) are the same in
// every setting, so a reload leaves the VNI running as it is.
// (A nil list and an empty one are the same.)
func SameL2VNI(a, b L2VNI) bool {
	return a.VNI == b.VNI && a.VXLANDevice == b.VXLANDevice && a.Bridge == b.Bridge &&
		slices.Equal(a.AccessInterfaces, b.AccessInterfaces) && a.RD == b.RD &&
		slices.Equal(a.ImportRTs, b.ImportRTs) && slices.Equal(a.ExportRTs, b.ExportRTs) &&
		a.UDPPort == b.UDPPort && a.MTU == b.MTU
}

// SameNeighbor reports whether two neighbours are configured alike.
func SameNeighbor(a, b Neighbor) bool {
	return a.Address == b.Address && a.ASN == b.ASN && a.Description == b.Description && a.Port == b.Port &&
		a.EBGPMultihop == b.EBGPMultihop && a.IsRouteReflectorClient() == b.IsRouteReflectorClient()
}

// VRFChanges is what a reload changes in the tenant VRFs, matched by
// name. Each list is in the order of the file it comes from.
type VRFChanges struct {
	// Added are in the new file only: built and started.
	Added []VRF
	// Removed are in the running config only: their routes withdrawn,
	// their kernel state and devices removed.
	Removed []VRF
	// Changed are in both with a change to their members (added,
	// removed, or an L2VNI setting), gateways, RD, RTs or router MAC:
	// changed in place (the element here is the new VRF); only a member
	// whose L2VNI settings change has its devices made again.
	Changed []VRF
	// Rebuilt are in both with a change to the L3VNI's devices
	// (vxlan-device, bridge, udp-port, mtu), uplinks or static routes, or
	// a setting evpnd does not know to change in place: the running VRF is removed and the new one
	// (the element here) built, which disturbs that tenant alone.
	Rebuilt []VRF
	// Readvertised are in both and differ only in advertise-prefixes or
	// advertise-default-route: only their type-5 routes change.
	Readvertised []VRF
}

// Empty reports whether no VRF changes.
func (c VRFChanges) Empty() bool {
	return len(c.Added)+len(c.Removed)+len(c.Changed)+len(c.Rebuilt)+len(c.Readvertised) == 0
}

// DiffVRFs compares the VRFs of the config in force (cur) and of a
// re-read file (next), both validated with defaults applied. A VRF whose
// backend, L3VNI, namespace or table changes cannot change in place (its
// devices, namespace and routing table are its identity): each such
// change is a problem saying to remove the VRF and add it back, in two
// reloads, or to restart. A member's L2VNI counts as changed when
// SameL2VNI says so.
func DiffVRFs(cur, next *Config) (VRFChanges, []Problem) {
	var ch VRFChanges
	var ps []Problem
	old := map[string]VRF{}
	for _, f := range cur.VRFs {
		old[f.Name] = f
	}
	for i, f := range next.VRFs {
		o, ok := old[f.Name]
		delete(old, f.Name)
		if !ok {
			ch.Added = append(ch.Added, f)
			continue
		}
		p := fmt.Sprintf("vrfs[%d]", i)
		refuse := func(key string, was, now any) {
			ps = append(ps, Problem{Path: p + "." + key, Line: next.lines[p+"."+key], Value: fmt.Sprint(now),
				Reason: fmt.Sprintf("vrf %s runs with %s %v, which a reload cannot change: remove the VRF from the file and reload, then add it back and reload (its tenant is cut off meanwhile), or restart evpnd", f.Name, key, was)})
		}
		if o.Backend != f.Backend {
			refuse("backend", o.Backend, f.Backend) // namespace and table follow it
		}
		if o.L3VNI != f.L3VNI {
			refuse("l3vni", o.L3VNI, f.L3VNI)
		}
		if o.Backend == f.Backend && o.Namespace != f.Namespace {
			refuse("namespace", o.Namespace, f.Namespace)
		}
		if o.Backend == f.Backend && o.Table != f.Table {
			refuse("table", o.Table, f.Table)
		}
		switch {
		case !sameL3Devices(o, f):
			ch.Rebuilt = append(ch.Rebuilt, f)
		case !sameVRFDevices(cur, next, o, f):
			ch.Changed = append(ch.Changed, f)
		case o.AdvertiseDefaultRoute != f.AdvertiseDefaultRoute || !slices.Equal(o.AdvertisePrefixes, f.AdvertisePrefixes):
			ch.Readvertised = append(ch.Readvertised, f)
		}
	}
	for _, f := range cur.VRFs {
		if _, gone := old[f.Name]; gone {
			ch.Removed = append(ch.Removed, f)
		}
	}
	return ch, ps
}

// sameL3Devices reports whether VRFs a and b have the same L3VNI devices,
// and no other difference than those a reload changes in place (members,
// gateways, RD, RTs, router MAC, what they advertise): every other field
// counts, so a field added later needs, by default, a rebuild.
func sameL3Devices(a, b VRF) bool {
	for _, v := range []*VRF{&a, &b} {
		v.L2VNIs, v.GatewayMAC, v.RD, v.ImportRTs, v.ExportRTs, v.RouterMAC = nil, "", "", nil, nil, ""
		v.AdvertiseDefaultRoute, v.AdvertisePrefixes = false, nil
	}
	return reflect.DeepEqual(normalVRF(a), normalVRF(b))
}

// sameVRFDevices reports whether VRF a of config ca and VRF b of cb are
// the same in everything but what they advertise: every field of the VRF
// (so a field added later counts, by default, as needing a rebuild) and
// the settings of each member L2VNI.
func sameVRFDevices(ca, cb *Config, a, b VRF) bool {
	a.AdvertiseDefaultRoute, a.AdvertisePrefixes = false, nil
	b.AdvertiseDefaultRoute, b.AdvertisePrefixes = false, nil
	if !reflect.DeepEqual(normalVRF(a), normalVRF(b)) {
		return false
	}
	for _, m := range a.L2VNIs {
		la, oka := ca.l2vni(m.VNI)
		lb, okb := cb.l2vni(m.VNI)
		if oka != okb || !SameL2VNI(la, lb) {
			return false
		}
	}
	return true
}

// normalVRF makes empty and nil lists alike, so that DeepEqual compares
// settings only.
func normalVRF(v VRF) VRF {
	if len(v.ImportRTs) == 0 {
		v.ImportRTs = nil
	}
	if len(v.ExportRTs) == 0 {
		v.ExportRTs = nil
	}
	if len(v.L2VNIs) == 0 {
		v.L2VNIs = nil
	}
	ms := make([]VRFMember, len(v.L2VNIs))
	for i, m := range v.L2VNIs {
		if len(m.GatewayIPs) == 0 {
			m.GatewayIPs = nil
		}
		ms[i] = m
	}
	if v.L2VNIs != nil {
		v.L2VNIs = ms
	}
	if len(v.Uplinks) == 0 {
		v.Uplinks = nil
	}
	if len(v.Routes) == 0 {
		v.Routes = nil
	}
	return v
}

// l2vni returns the L2VNI vni of c.
func (c *Config) l2vni(vni uint32) (L2VNI, bool) {
	for _, v := range c.L2VNIs {
		if v.VNI == vni {
			return v, true
		}
	}
	return L2VNI{}, false
}
