package daemon

import (
	"net/netip"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// maxGatewayWarnings bounds the (VNI, leaf, MAC) triples warned about, so
// that a peer sending many MACs cannot grow the set without end; past it
// the routes are still counted and refused, just not logged.
const maxGatewayWarnings = 1024

// gwWarnKey is one remote leaf's differing gateway MAC on one L2VNI, or
// (vtep invalid) one access port's frames from the gateway MAC.
type gwWarnKey struct {
	vni  uint32
	vtep netip.Addr
	mac  evpn.MAC
	port string
}

// warnOnce reports whether k is new, recording it.
func (l *leaf) warnOnce(k gwWarnKey) bool {
	if l.gwWarned[k] || len(l.gwWarned) >= maxGatewayWarnings {
		return false
	}
	if l.gwWarned == nil {
		l.gwWarned = map[gwWarnKey]bool{}
	}
	l.gwWarned[k] = true
	return true
}

// gatewayConflict counts a received route that shows another leaf's
// anycast gateway MAC differing from ours (evpn.L3GatewayConflict), and
// warns once per (VNI, leaf, MAC) while the daemon runs. The L3 model has
// refused the route: our gateway stays.
func (l *leaf) gatewayConflict(e evpn.L3Effect) {
	g := e.Gateway
	l.d.metrics.GatewayMACConflict(g.L2VNI)
	if !l.warnOnce(gwWarnKey{vni: g.L2VNI, vtep: g.VTEP, mac: g.MAC}) {
		return
	}
	args := []any{"vni", g.L2VNI, "leaf", g.VTEP, "ip", g.IP, "mac", g.MAC, "local_gateway_mac", g.Local,
		"default_gateway_community", g.DefaultGW}
	if e.Route != nil {
		args = append(args, "rd", e.Route.RD.String())
	}
	l.d.log.Warn("another leaf advertises this L2VNI's anycast gateway with a different MAC: hosts that move between it and this leaf keep a gateway MAC the new leaf does not answer for; "+
		"set the same gateway-mac (vrfs[].gateway-mac, or vrfs[].l2vnis[].gateway-mac) on every leaf. The route is not installed; this leaf keeps its own gateway", args...)
}

// ownGatewayMAC reports whether a received type-2 route is for the
// anycast gateway MAC of the routed L2VNI it imports into: every leaf has
// that MAC on its own SVI, so no remote entry may replace it (zebra
// ignores such a route too).
func (l *leaf) ownGatewayMAC(r *evpn.Route) (uint32, bool) {
	if r.Type != evpn.RouteTypeMACIP {
		return 0, false
	}
	vni, ok := l.table.ImportVNI(r)
	if !ok {
		return 0, false
	}
	gw, ok := l.hosts.gateway(vni)
	return vni, ok && gw == r.MAC
}

// gateway returns the anycast gateway MAC of routed L2VNI vni; h may be
// nil (no VRFs).
func (h *localHosts) gateway(vni uint32) (evpn.MAC, bool) {
	if h == nil {
		return evpn.MAC{}, false
	}
	gw, ok := h.gw[vni]
	return gw, ok
}

// gatewayMACLearned warns, once per (VNI, port), that the bridge learned
// the anycast gateway MAC on an access port: a host configured with it,
// or a loop to another leaf's SVI. It is not advertised: the gateway MAC
// is never an ordinary host (RFC 9135; DESIGN §3.2).
func (l *leaf) gatewayMACLearned(vni uint32, mac evpn.MAC, port string) {
	if !l.warnOnce(gwWarnKey{vni: vni, mac: mac, port: port}) {
		return
	}
	l.d.log.Warn("the anycast gateway MAC was learned on an access port (a host using it, or a bridging loop to another leaf): not advertised, the gateway MAC is never an ordinary host; find the device sending from it",
		"vni", vni, "mac", mac, "port", port)
}
