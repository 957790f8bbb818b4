package configs

import (
	"net/netip"
	"time"
)

// Role is what evpnd does on this node.
type Role string

const (
	RoleLeaf           Role = "leaf"            // originates and installs EVPN routes
	RoleRouteReflector Role = "route-reflector" // reflects l2vpn-evpn, installs nothing
)

// Config is evpnd's configuration file. YAML keys are kebab-case; unknown
// keys are errors.
type Config struct {
	RouterID netip.Addr `yaml:"router-id"`
	ASN      uint32     `yaml:"asn"`
	// VTEPIP is the local VTEP (VXLAN source) address. A leaf defaults it
	// to RouterID, as FRR does; it must be configured on an interface of the
	// node (for example lo). Unused by a route reflector.
	VTEPIP   netip.Addr `yaml:"vtep-ip"`
	Role     Role       `yaml:"role"`      // default leaf
	LogLevel string     `yaml:"log-level"` // debug, info (default), warn, error

	BGP              BGP               `yaml:"bgp"`
	GracefulRestart  GracefulRestart   `yaml:"graceful-restart"`
	MACMobility      MACMobility       `yaml:"mac-mobility"`
	Neighbors        []Neighbor        `yaml:"neighbors"`
	DynamicNeighbors []DynamicNeighbor `yaml:"dynamic-neighbors"`
	Underlay         Underlay          `yaml:"underlay"`
	L2VNIs           []L2VNI           `yaml:"l2vnis"`
	VRFs             []VRF             `yaml:"vrfs"` // tenant VRFs (L3); see vrf.go
	API              API               `yaml:"api"`
	Metrics          Metrics           `yaml:"metrics"`

	// Set by Parse, for error messages only: where the config came from and
	// the source line of each key path.
	source string
	lines  map[string]int
	// explicit holds the key paths of the numbers and durations the file
	// sets, so that ApplyDefaults leaves an explicit zero in place for
	// Validate to refuse instead of replacing it.
	explicit map[string]bool
}

// isSet reports whether the source file set the number or duration at
// path; false for a Config built in code.
func (c *Config) isSet(path string) bool { return c.explicit[path] }

// BGP holds the listener settings of the embedded speaker.
type BGP struct {
	ListenAddresses []netip.Addr `yaml:"listen-addresses"` // default: all
	ListenPort      int          `yaml:"listen-port"`      // default 179; -1 = don't listen
	// ConnectRetry is how long to wait before dialling a neighbour again
	// after a failed attempt. Default 5s, so a leaf that starts before its
	// route reflector peers within seconds, not GoBGP's 120 s.
	ConnectRetry time.Duration `yaml:"connect-retry"`
	// HoldTime is the BGP hold time offered to peers (RFC 4271 §4.2).
	// Default 90s; 0 after defaults is not allowed, minimum 3s.
	HoldTime time.Duration `yaml:"hold-time"`
}

// GracefulRestart configures BGP graceful restart (RFC 4724) for l2vpn-evpn
// and evpnd's own stale sweep after a restart.
type GracefulRestart struct {
	Enabled     *bool         `yaml:"enabled"`      // default true
	RestartTime time.Duration `yaml:"restart-time"` // advertised to peers; default 120s
	// EORTimeout bounds how long evpnd waits for End-of-RIB from every
	// established peer before it removes kernel entries left from its
	// previous run. Default 30s.
	EORTimeout time.Duration `yaml:"eor-timeout"`
}

// MACMobility configures duplicate detection (RFC 7432 §15.1).
type MACMobility struct {
	DuplicateMoves  int           `yaml:"duplicate-moves"`  // default 5
	DuplicateWindow time.Duration `yaml:"duplicate-window"` // default 180s
	Freeze          bool          `yaml:"freeze"`           // keep the last location of a duplicate MAC
}

// Neighbor is a static BGP peer, by address or by interface.
type Neighbor struct {
	Address netip.Addr `yaml:"address"`
	// Interface names the local end of a point-to-point link (an IPv4
	// /31 or /30) instead of Address: the peer is the other host address
	// of the link's subnet, found when evpnd starts (run --wait waits for
	// the interface's address). For per-link underlay sessions (RFC 7938).
	Interface   string `yaml:"interface"`
	ASN         uint32 `yaml:"asn"`
	Description string `yaml:"description"`
	Port        int    `yaml:"port"` // default 179
	// EBGPMultihop is the TTL of an eBGP session to a peer more than one
	// hop away (sessions between loopbacks across a routed underlay);
	// 0 = directly connected (TTL 1). eBGP only: iBGP sessions use TTL 255.
	EBGPMultihop int `yaml:"ebgp-multihop"`
	// RouteReflectorClient marks the peer as a client; only valid with the
	// route-reflector role. Default true in that role.
	RouteReflectorClient *bool `yaml:"route-reflector-client"`
	// AddressFamilies the session carries: l2vpn-evpn and/or ipv4-unicast.
	// Default [l2vpn-evpn], and [l2vpn-evpn, ipv4-unicast] with
	// underlay.enabled. ipv4-unicast needs a directly connected eBGP peer
	// (the underlay next hop is the peer's link address).
	AddressFamilies []string `yaml:"address-families"`
}

// Address family names of Neighbor.AddressFamilies.
const (
	FamilyL2VPNEVPN   = "l2vpn-evpn"
	FamilyIPv4Unicast = "ipv4-unicast"
)

// HasFamily reports whether the neighbour carries the address family f
// (after defaults).
func (n Neighbor) HasFamily(f string) bool {
	for _, x := range n.AddressFamilies {
		if x == f {
			return true
		}
	}
	return false
}

// Underlay is evpnd's BGP underlay (RFC 7938 style): the node advertises
// its loopback (VTEP) /32 in ipv4-unicast to its eBGP neighbours on the
// fabric links, and installs what it learns in the main routing table with
// ECMP over equally good paths, with route protocol fib.UnderlayProtocol.
type Underlay struct {
	Enabled bool `yaml:"enabled"`
	// Advertise lists the IPv4 prefixes this node originates. Default: the
	// vtep-ip /32 of a leaf, the router-id /32 of a route reflector. They
	// must be configured on this node (evpnd does not check).
	Advertise []netip.Prefix `yaml:"advertise"`
}

// DynamicNeighbor accepts sessions from any address in Prefix.
type DynamicNeighbor struct {
	Prefix netip.Prefix `yaml:"prefix"`
	ASN    uint32       `yaml:"asn"`
	// RouteReflectorClient marks the peers as clients, as for Neighbor:
	// only valid with the route-reflector role, default true in that role.
	RouteReflectorClient *bool `yaml:"route-reflector-client"`
}

// API configures evpnd's gRPC management API (proto/evpnd/v1), which
// evpnctl uses.
type API struct {
	// Socket is the Unix socket path. Default /run/evpnd/evpnd.sock.
	Socket string `yaml:"socket"`
	// SocketGroup, a group name or numeric GID, may also use the socket
	// (mode 0660); by default only root can (mode 0600).
	SocketGroup string `yaml:"socket-group"`
	// AdminGroup, a group name or numeric GID, may also make the calls
	// that change the daemon (vni add/del, clear) on the socket; by default
	// only root can. Members of socket-group without it only read. Its
	// members must be in socket-group too, to reach the socket.
	AdminGroup string `yaml:"admin-group"`
	// Listen is an optional TCP host:port. Beyond loopback it requires TLS
	// with client-ca. Without client-ca it serves read-only calls.
	Listen string `yaml:"listen"`
	TLS    APITLS `yaml:"tls"`
	// GoBGPListen, off by default, serves the embedded GoBGP's own gRPC API
	// at this loopback host:port, for the gobgp CLI. It has no
	// authentication, so only loopback addresses are allowed.
	GoBGPListen string `yaml:"gobgp-listen"`
}

// APITLS holds the PEM files of the TCP API listener.
type APITLS struct {
	Cert     string `yaml:"cert"`
	Key      string `yaml:"key"`
	ClientCA string `yaml:"client-ca"` // set: clients need a certificate it signed
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is the host:port of /metrics; "" (the default) is off.
	Listen string `yaml:"listen"`
}

// L2VNI is a layer-2 VXLAN segment bridged on this leaf.
type L2VNI struct {
	VNI              uint32   `yaml:"vni"`
	VXLANDevice      string   `yaml:"vxlan-device"` // default vxlan<VNI>
	Bridge           string   `yaml:"bridge"`       // default br<VNI>
	AccessInterfaces []string `yaml:"access-interfaces"`
	RD               string   `yaml:"rd"`         // default router-id:N, N = AutoRDNumber(VNI)
	ImportRTs        []string `yaml:"import-rts"` // default auto ASN:VNI, matched on VNI only
	ExportRTs        []string `yaml:"export-rts"` // default auto ASN:VNI
	UDPPort          int      `yaml:"udp-port"`   // default 4789
	MTU              int      `yaml:"mtu"`        // default: a created VXLAN device gets the underlay MTU less 50 (IPv4) or 70 (IPv6)

	// routing is RD, ImportRTs and ExportRTs parsed, with their
	// defaults: ApplyDefaults fills it, Config.L2VNIRouting reads it.
	routing *Routing
}

// PeerOnLink returns the other end of a point-to-point link whose local
// address is local: the other address of a /31 (RFC 3021), or the other
// host address of a /30. Other prefixes have no single peer.
func PeerOnLink(local netip.Prefix) (netip.Addr, bool) {
	if !local.Addr().Is4() {
		return netip.Addr{}, false
	}
	b := local.Addr().As4()
	switch local.Bits() {
	case 31:
		b[3] ^= 1
	case 30:
		switch b[3] & 3 {
		case 1:
			b[3]++
		case 2:
			b[3]--
		default:
			return netip.Addr{}, false // the network or broadcast address
		}
	default:
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(b), true
}
