package speaker

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// Family is a BGP address family a session carries.
type Family uint8

const (
	FamilyL2VPNEVPN Family = iota + 1 // AFI 25 SAFI 70
	// FamilyIPv4Unicast can be negotiated on a session (for a later
	// underlay, RFC 7938 style); evpnd announces and watches nothing in it
	// yet.
	FamilyIPv4Unicast
)

func (f Family) String() string {
	switch f {
	case FamilyL2VPNEVPN:
		return "l2vpn-evpn"
	case FamilyIPv4Unicast:
		return "ipv4-unicast"
	}
	return "unknown"
}

// PeerState is a BGP session state (RFC 4271 §8.2.2).
type PeerState uint8

const (
	PeerStateUnknown PeerState = iota
	PeerStateIdle
	PeerStateConnect
	PeerStateActive
	PeerStateOpenSent
	PeerStateOpenConfirm
	PeerStateEstablished
)

func (s PeerState) String() string {
	switch s {
	case PeerStateIdle:
		return "idle"
	case PeerStateConnect:
		return "connect"
	case PeerStateActive:
		return "active"
	case PeerStateOpenSent:
		return "opensent"
	case PeerStateOpenConfirm:
		return "openconfirm"
	case PeerStateEstablished:
		return "established"
	}
	return "unknown"
}

// Config configures the BGP instance.
type Config struct {
	RouterID netip.Addr // IPv4; also the ORIGINATOR_ID a route reflector puts on our routes
	ASN      uint32
	// ListenPort is the TCP port to accept sessions on: 0 means 179, -1
	// means do not listen (sessions are then only dialled).
	ListenPort      int32
	ListenAddresses []string // default: all addresses

	// RouteReflector lets neighbours be route-reflector clients
	// (RFC 4456). ClusterID defaults to RouterID.
	RouteReflector bool
	ClusterID      netip.Addr

	// GracefulRestart advertises the capability (RFC 4724) with l2vpn-evpn
	// on every neighbour: peers keep our routes while we restart, and we
	// keep theirs. RestartTime is what we advertise (0: GoBGP's default,
	// the hold time, 90 s; at most 4095 s).
	GracefulRestart bool
	RestartTime     time.Duration
	// Restarting: this process comes back from a graceful restart. It sets
	// the Restart State bit and, per address family, the Forwarding State
	// bit on the neighbours added, and GoBGP holds back our routes until
	// every peer's End-of-RIB (or its 360 s selection deferral timer), then
	// sends them followed by our End-of-RIB. Announce the re-learned local
	// routes before adding neighbours so they are part of that table.
	Restarting bool

	// SyncTimeout bounds the wait for End-of-RIB behind EventSynced (see
	// Watch): counted from the first Established session, and applied only
	// while a session is established. 0: no timeout.
	SyncTimeout time.Duration

	// ResyncWindow: when a peer's session comes back in this run (a route
	// reflector that restarted, typically), Watch holds its withdrawals for
	// this long after it re-establishes and after its End-of-RIB; a route
	// announced again meanwhile cancels its withdrawal, and the rest are
	// delivered when the window ends. This keeps the routes a restarted
	// reflector has not re-learned yet in place (see resyncHold). 0: none.
	ResyncWindow time.Duration

	// ConnectRetry and HoldTime apply to every neighbour; 0 keeps GoBGP's
	// defaults: dial every 120 s (the first attempt 1-2 s after a
	// neighbour is added or its session drops, after a 5 s idle hold), hold
	// time 90 s with keepalives every third of it. A short connect retry
	// brings sessions back faster after a peer restarts.
	ConnectRetry time.Duration
	HoldTime     time.Duration

	// LocalVTEPs are this leaf's VTEP addresses. A route from a peer whose
	// VTEP is one of them is our own coming back (DESIGN §3.3) and is not
	// delivered as a remote route.
	LocalVTEPs []netip.Addr

	// GoBGPAPIListen, when set (host:port), also serves GoBGP's own gRPC
	// API there from Start to Stop, so that GoBGP's CLI works against the
	// embedded instance: gobgp -p PORT neighbor, gobgp -p PORT global rib
	// -a evpn. The host must be a loopback address literal (127.0.0.0/8 or
	// ::1) and the port explicit: that API has no authentication and can
	// change the RIB and the neighbours. "" (the default) serves nothing.
	GoBGPAPIListen string

	Logger *slog.Logger // default slog.Default()
}

// Neighbor is a configured BGP peer.
type Neighbor struct {
	Address netip.Addr
	ASN     uint32
	Port    uint16 // remote TCP port, default 179
	// LocalAddress is the session's source address. Set it when the
	// default source the kernel picks is not the address the peer knows us
	// by.
	LocalAddress netip.Addr
	RRClient     bool // route-reflector client (iBGP, Config.RouteReflector)
	Description  string
	Families     []Family // default l2vpn-evpn
	Passive      bool     // never dial; wait for the peer
	// EBGPMultihop is the TTL of an eBGP session whose peer is more than
	// one hop away (between loopbacks); 0 sends TTL 1, as RFC 4271 eBGP does.
	EBGPMultihop uint8
}

// DynamicNeighbor accepts sessions from any address in Prefix (they must
// dial us: Config.ListenPort must not be -1).
type DynamicNeighbor struct {
	Prefix   netip.Prefix
	ASN      uint32
	RRClient bool
	Families []Family
}

// PeerStatus is a neighbour's state as Peers and PeersAdvertised report it.
type PeerStatus struct {
	Address     netip.Addr
	ASN         uint32
	Description string
	RouterID    netip.Addr // the peer's BGP identifier, once known
	State       PeerState
	Uptime      time.Duration // since the session was established; 0 if it is not
	// l2vpn-evpn counters: paths received from the peer and accepted
	// after import policy.
	Received, Accepted uint64
	EORReceived        bool // End-of-RIB received for l2vpn-evpn on the current session
	GracefulRestart    bool // negotiated for l2vpn-evpn
	PeerRestarting     bool // the peer is restarting; its routes are retained as stale
	// Advertised is the number of l2vpn-evpn paths advertised to the
	// peer (FRR's PfxSnt). GoBGP keeps no Adj-RIB-Out (v3; not re-measured
	// on v4), so it is
	// computed on request by running the export rules over the whole
	// table: only PeersAdvertised fills it, and only for an established
	// peer; it is 0 otherwise.
	Advertised uint64
	// MessagesReceived and MessagesSent count BGP messages of every type
	// (OPEN, UPDATE, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH), as GoBGP's
	// FSM counts them. Like FRR's MsgRcvd/MsgSent they add up over every
	// session since the neighbour was configured: a session reset does
	// not clear them (a dynamic neighbour starts at 0 with each session,
	// as GoBGP deletes it when its session ends).
	MessagesReceived, MessagesSent uint64
	// LastError is why the session last went down or failed to come up
	// (to Idle from a later state): the NOTIFICATION sent or received,
	// "notification received: code 6(cease) subcode 3(peer deconfigured)",
	// "notification sent: code 2(open) subcode 2(bad peer as)", or else
	// GoBGP's FSM
	// reason: "hold-timer-expired", "read-failed" (the connection closed),
	// "invalid-msg" (an unexpected message during setup, which includes a
	// NOTIFICATION received in OpenConfirm: GoBGP keeps nothing of it).
	// It stays after the session is back up; "" if it never went down
	// while this Server ran. GoBGP v4's ListPeer does not report it: the
	// Server reads it from GoBGP's FSM log messages (gobgplog.go). A TCP
	// connection that cannot be made (the peer is down, its port closed)
	// is no FSM transition and leaves it unchanged.
	LastError string
	Dynamic   bool // accepted through a DynamicNeighbor range
	RRClient  bool // a route-reflector client of ours
}

// Path is one path of the l2vpn-evpn BGP table, as Paths lists it.
type Path struct {
	Route *evpn.Route
	Peer  netip.Addr // the neighbour that sent it; invalid for a local path
	Local bool       // originated here (Announce)
	Best  bool       // GoBGP's best path for the NLRI
	Stale bool       // retained while its peer restarts (RFC 4724)
	Age   time.Duration
	// ExtCommunities are the extended communities other than the route
	// targets in Route.RTs, as text, in the order of the attribute:
	// "ET:8" (encapsulation VXLAN), "MM:<seq>" or "MM:<seq>, sticky",
	// "Rmac:xx:xx:xx:xx:xx:xx", "Default Gateway"; route targets
	// Route.RTs cannot hold (4-octet AS) as "RT:" and GoBGP's text; any
	// other in GoBGP's text (for example "esi-label: 100").
	ExtCommunities []string
	ASPath         []uint32 // every AS of AS_PATH, in order, sets and confederation segments flattened
	LocalPref      uint32   // LOCAL_PREF; 0 when the path has none (eBGP)
	Origin         string   // "i", "e" or "?"
	ClusterList    []netip.Addr
}

// ListStats is what one ListPaths call did.
type ListStats struct {
	Listed  int // paths handed to the callback
	Skipped int // paths that did not decode (route types 1 and 4, malformed)
}

// RouteError is the error of one route that Announce (or Withdraw) could
// not hand to BGP, for example because GoBGP's RIB already holds a remote
// path for the MAC with a higher mobility sequence number.
type RouteError struct {
	Op    string // "announce" or "withdraw"
	Route *evpn.Route
	Err   error
}

func (e *RouteError) Error() string { return fmt.Sprintf("%s %s: %v", e.Op, e.Route.Key, e.Err) }
func (e *RouteError) Unwrap() error { return e.Err }

// FailedRoutes returns the routes named by the RouteErrors in err, which
// may be a single error or one joined with errors.Join.
func FailedRoutes(err error) []*evpn.Route {
	var out []*evpn.Route
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *RouteError:
			out = append(out, e.Route)
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}
