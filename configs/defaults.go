package configs

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// Defaults that ApplyDefaults fills in.
const (
	DefaultRole            = RoleLeaf
	DefaultLogLevel        = "info"
	DefaultBGPPort         = 179 // bgp.listen-port and neighbors[].port
	DefaultConnectRetry    = 5 * time.Second
	DefaultHoldTime        = 90 * time.Second
	DefaultRestartTime     = 120 * time.Second
	DefaultEORTimeout      = 30 * time.Second
	DefaultDuplicateMoves  = 5 // FRR's default, RFC 7432 §15.1
	DefaultDuplicateWindow = 180 * time.Second
	DefaultVXLANPort       = 4789 // IANA VXLAN port (RFC 7348)
	DefaultAPISocket       = "/run/evpnd/evpnd.sock"
)

// ApplyDefaults fills in every unset field that has a default. It is
// idempotent, never overwrites a value that is set, and never writes through
// a pointer it did not create, so a shallow copy of c stays untouched.
// A zero number or duration counts as unset unless the config file set it:
// "hold-time: 0s" in a file stays 0s, which Validate refuses (an explicit
// value is never silently replaced).
//
//   - role: leaf; log-level: info.
//   - vtep-ip (leaf only): router-id, as FRR does when no VTEP address is
//     configured.
//   - bgp.listen-port: 179; bgp.connect-retry: 5s; bgp.hold-time: 90s.
//   - graceful-restart: enabled, restart-time 120s, eor-timeout 30s.
//   - mac-mobility: 5 moves within 180s make a MAC duplicate; no freeze.
//   - neighbors[].port: 179.
//   - route-reflector-client (neighbors and dynamic-neighbors): true for
//     iBGP peers (same asn) in the route-reflector role, unset otherwise;
//     route reflection does not apply to eBGP peers (RFC 4456).
//   - l2vnis[]: vxlan-device "vxlan<VNI>", bridge "br<VNI>", udp-port 4789,
//     rd "<router-id>:<AutoRDNumber(VNI)>" (left empty while router-id is
//     unset, so that Validate reports the router-id rather than a bad RD).
//     Empty import-rts and export-rts stay empty: they mean auto, see
//     ImportRTs and ExportRTs.
//   - vrfs[]: vxlan-device "vxlan<L3VNI>", bridge "br<L3VNI>", udp-port
//     4789, rd "<router-id>:<AutoRDNumber(L3VNI)>", router-mac
//     DerivedRouterMAC(router-id), namespace the VRF's name (backend
//     netns), table the L3VNI (backend vrf); each member's gateway-mac the
//     VRF's gateway-mac. The backend has no default: it is required.
func (c *Config) ApplyDefaults() {
	if c.Role == "" {
		c.Role = DefaultRole
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	if c.Role == RoleLeaf && !c.VTEPIP.IsValid() {
		c.VTEPIP = c.RouterID
	}
	if c.BGP.ConnectRetry == 0 && !c.isSet("bgp.connect-retry") {
		c.BGP.ConnectRetry = DefaultConnectRetry
	}
	if c.BGP.HoldTime == 0 && !c.isSet("bgp.hold-time") {
		c.BGP.HoldTime = DefaultHoldTime
	}
	if c.API.Socket == "" {
		c.API.Socket = DefaultAPISocket
	}
	if c.BGP.ListenPort == 0 && !c.isSet("bgp.listen-port") {
		c.BGP.ListenPort = DefaultBGPPort
	}

	gr := &c.GracefulRestart
	if gr.Enabled == nil {
		gr.Enabled = ptr(true)
	}
	if gr.RestartTime == 0 && !c.isSet("graceful-restart.restart-time") {
		gr.RestartTime = DefaultRestartTime
	}
	if gr.EORTimeout == 0 && !c.isSet("graceful-restart.eor-timeout") {
		gr.EORTimeout = DefaultEORTimeout
	}

	mm := &c.MACMobility
	if mm.DuplicateMoves == 0 && !c.isSet("mac-mobility.duplicate-moves") {
		mm.DuplicateMoves = DefaultDuplicateMoves
	}
	if mm.DuplicateWindow == 0 && !c.isSet("mac-mobility.duplicate-window") {
		mm.DuplicateWindow = DefaultDuplicateWindow
	}

	// Route reflection is iBGP only (RFC 4456), so only iBGP peers of a
	// route reflector become clients by default.
	rr := c.Role == RoleRouteReflector
	for i := range c.Neighbors {
		n := &c.Neighbors[i]
		if n.Port == 0 && !c.isSet(fmt.Sprintf("neighbors[%d].port", i)) {
			n.Port = DefaultBGPPort
		}
		if rr && n.RouteReflectorClient == nil && n.ASN == c.ASN {
			n.RouteReflectorClient = ptr(true)
		}
		if len(n.AddressFamilies) == 0 {
			n.AddressFamilies = []string{FamilyL2VPNEVPN}
			if c.Underlay.Enabled {
				n.AddressFamilies = append(n.AddressFamilies, FamilyIPv4Unicast)
			}
		}
	}
	if c.Underlay.Enabled && len(c.Underlay.Advertise) == 0 {
		a := c.VTEPIP
		if c.Role == RoleRouteReflector || !a.IsValid() {
			a = c.RouterID
		}
		if a.Is4() {
			c.Underlay.Advertise = []netip.Prefix{netip.PrefixFrom(a, 32)}
		}
	}
	for i := range c.DynamicNeighbors {
		d := &c.DynamicNeighbors[i]
		if rr && d.RouteReflectorClient == nil && d.ASN == c.ASN {
			d.RouteReflectorClient = ptr(true)
		}
	}

	for i := range c.L2VNIs {
		v := &c.L2VNIs[i]
		if v.VXLANDevice == "" {
			v.VXLANDevice = fmt.Sprintf("vxlan%d", v.VNI)
		}
		if v.Bridge == "" {
			v.Bridge = fmt.Sprintf("br%d", v.VNI)
		}
		if v.UDPPort == 0 && !c.isSet(fmt.Sprintf("l2vnis[%d].udp-port", i)) {
			v.UDPPort = DefaultVXLANPort
		}
		if c.RouterID.Is4() { // else Validate refuses the config
			if v.RD == "" {
				v.RD = c.autoRD(v.VNI).String()
			}
			r := c.parseRouting(*v)
			v.routing = &r
		}
	}
	c.applyVRFDefaults()
}

func ptr[T any](v T) *T { return &v }

// AutoRDNumber is the number N of the RD "<router-id>:N" that evpnd derives
// for an L2VNI whose rd is not configured:
//
//	N = (VNI-1) mod 65535 + 1
//
// That is the VNI itself for VNIs 1-65535, and wraps into 1-65535 above
// (a type-1 RD has 16 bits for N). It depends on the VNI alone, so adding or
// removing a VNI, or reordering the list, never changes another VNI's RD;
// an RD change would make every peer withdraw and relearn that VNI's routes.
// FRR instead numbers VNIs in the order it meets them, which is not stable
// across restarts or config edits.
//
// Two VNIs that differ by a multiple of 65535 (say 100 and 65635) get the
// same number; Validate reports it and the fix is an explicit rd on one.
// Any contiguous block of up to 65535 VNIs gets distinct numbers.
func AutoRDNumber(vni uint32) uint16 {
	if vni == 0 {
		return 0
	}
	return uint16((vni-1)%65535 + 1)
}

func (c *Config) autoRD(vni uint32) evpn.RD {
	return evpn.RDFromIP(c.RouterID, AutoRDNumber(vni))
}

// Routing is the typed form of an L2VNI's rd, import-rts and export-rts,
// with their defaults: the RD and route targets its routes carry, and the
// route targets it imports. ApplyDefaults parses them once per L2VNI, so
// that advertising a MAC parses nothing.
type Routing struct {
	// RD is rd if set, else "<router-id>:N" with N from AutoRDNumber.
	RD evpn.RD
	// ImportRTs are the route targets whose routes are imported. With no
	// import-rts configured, ImportAuto is true and ImportRTs holds the
	// one auto RT, evpn.AutoRT(asn, VNI); received RTs must then be
	// matched on the VNI part alone (DESIGN §3.1), because in an eBGP
	// fabric every leaf exports its own ASN. With import-rts configured,
	// ImportAuto is false and ImportRTs must match exactly.
	ImportRTs  []evpn.RT
	ImportAuto bool
	// ExportRTs are attached to the VNI's routes: export-rts if
	// configured, else the auto RT evpn.AutoRT(asn, VNI).
	ExportRTs []evpn.RT
}

// L2VNIRouting returns v's Routing: the one ApplyDefaults parsed, or, for
// an L2VNI that did not go through it (built in code), parsed now. Call it
// on a validated config: an rd or route target that does not parse is
// left out (an rd then yields the derived RD).
func (c *Config) L2VNIRouting(v L2VNI) Routing {
	if v.routing != nil {
		return *v.routing
	}
	return c.parseRouting(v)
}

func (c *Config) parseRouting(v L2VNI) Routing {
	r := Routing{ImportAuto: len(v.ImportRTs) == 0}
	if rd, err := evpn.ParseRD(v.RD); v.RD != "" && err == nil {
		r.RD = rd
	} else {
		r.RD = c.autoRD(v.VNI)
	}
	auto := []evpn.RT{evpn.AutoRT(c.ASN, v.VNI)}
	r.ImportRTs, r.ExportRTs = auto, auto
	if !r.ImportAuto {
		r.ImportRTs = parseRTs(v.ImportRTs)
	}
	if len(v.ExportRTs) > 0 {
		r.ExportRTs = parseRTs(v.ExportRTs)
	}
	return r
}

// L2VNIRD returns the RD of v (L2VNIRouting's RD).
func (c *Config) L2VNIRD(v L2VNI) evpn.RD { return c.L2VNIRouting(v).RD }

// ImportRTs returns the route targets whose routes are imported into v,
// and whether they are the auto RT (L2VNIRouting's ImportRTs and
// ImportAuto).
func (c *Config) ImportRTs(v L2VNI) (rts []evpn.RT, auto bool) {
	r := c.L2VNIRouting(v)
	return r.ImportRTs, r.ImportAuto
}

// ExportRTs returns the route targets attached to v's routes
// (L2VNIRouting's ExportRTs).
func (c *Config) ExportRTs(v L2VNI) []evpn.RT { return c.L2VNIRouting(v).ExportRTs }

func parseRTs(ss []string) []evpn.RT {
	rts := make([]evpn.RT, 0, len(ss))
	for _, s := range ss {
		if rt, err := evpn.ParseRT(s); err == nil {
			rts = append(rts, rt)
		}
	}
	return rts
}

// IsEnabled reports whether graceful restart is on; unset means on.
func (g GracefulRestart) IsEnabled() bool { return g.Enabled == nil || *g.Enabled }

// IsRouteReflectorClient reports whether the peer is a route-reflector
// client. After ApplyDefaults that is true for every peer of a route
// reflector unless configured false.
func (n Neighbor) IsRouteReflectorClient() bool {
	return n.RouteReflectorClient != nil && *n.RouteReflectorClient
}

// IsRouteReflectorClient is as for Neighbor, for every peer in the range.
func (d DynamicNeighbor) IsRouteReflectorClient() bool {
	return d.RouteReflectorClient != nil && *d.RouteReflectorClient
}

// logLevels maps the accepted log-level values to slog levels.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// SlogLevel returns log-level as a slog.Level; unset or unknown means info.
func (c *Config) SlogLevel() slog.Level {
	if l, ok := logLevels[c.LogLevel]; ok {
		return l
	}
	return slog.LevelInfo
}
