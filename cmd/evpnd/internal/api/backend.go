// Package api is evpnd's gRPC management API (proto/evpnd/v1): the server
// that converts between the daemon's state and the generated protobuf
// types, and the listeners it serves on. The daemon implements Backend;
// nothing below this package imports protobuf types.
package api

import (
	"context"
	"net/netip"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/trace"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// Backend is what the API reads and changes. The daemon implements it.
// Methods that stream call fn once per row, in order, and stop early when
// fn returns an error (which they then return).
type Backend interface {
	Status(ctx context.Context) (Status, error)
	// VNIs returns every L2VNI, sorted by VNI.
	VNIs(ctx context.Context) ([]VNI, error)
	// MACs calls fn for every MAC matching f, sorted by VNI then MAC.
	MACs(ctx context.Context, f MACFilter, fn func(MAC) error) error
	// ClearDuplicate clears the duplicate flag of one MAC, or of every MAC
	// of the VNI when mac is nil, and returns how many were cleared.
	ClearDuplicate(ctx context.Context, vni uint32, mac *evpn.MAC) (int, error)
	// Routes calls fn for every path of the l2vpn-evpn BGP table matching
	// f, sorted by RD then NLRI.
	Routes(ctx context.Context, f RouteFilter, fn func(RoutePath) error) error
	// Peers returns every BGP neighbour, sorted by address; advertised
	// also counts the paths sent to each established one, which costs a
	// pass over the table per neighbour (else Advertised is 0).
	Peers(ctx context.Context, advertised bool) ([]Peer, error)
	// Watch calls fn for every change until ctx ends or fn fails. With
	// initial, the current state comes first, then one Change with Kind
	// ChangeSynced. It returns ErrSlowConsumer if fn falls too far behind.
	Watch(ctx context.Context, initial bool, fn func(Change) error) error
	// AddVNI validates v exactly as the config file's l2vnis[] entry (with
	// the same defaults), then creates its devices and starts it. A
	// *configs.ValidationError means the request was invalid; on any error
	// nothing changed.
	AddVNI(ctx context.Context, v configs.L2VNI) (VNI, error)
	// DeleteVNI stops an L2VNI and deletes its devices. ErrNotFound if it
	// is not configured.
	DeleteVNI(ctx context.Context, vni uint32) error
	// Check compares BGP's selection with the kernel.
	Check(ctx context.Context, vni uint32) (CheckReport, error)
	// Trace returns the recorded history of mac, in one VNI or (vni 0)
	// every VNI that has some.
	Trace(ctx context.Context, vni uint32, mac evpn.MAC) ([]TraceKey, error)
	// Reload re-reads the config file and applies its difference. An
	// error wrapping ErrConfigRefused (and maybe a
	// *configs.ValidationError) means nothing changed; otherwise the
	// result says what was applied, what needs a restart and what failed.
	Reload(ctx context.Context) (ReloadResult, error)
}

// ReloadResult is the outcome of a reload that was not refused.
type ReloadResult struct {
	File          string
	Applied       []string // "l2vni 300 added", in order
	RestartNeeded []string // "router-id: A -> B": left as they are
	Failed        []string // tried and failed, with why
}

// Errors a Backend returns that the API maps to gRPC codes.
var (
	ErrNotFound     = errorString("not found")                                               // NOT_FOUND
	ErrNotLeaf      = errorString("not available on a route reflector")                      // FAILED_PRECONDITION
	ErrSlowConsumer = errorString("watch client too slow: events were dropped; watch again") // RESOURCE_EXHAUSTED
	// ErrTooManyWatchers: the daemon serves a bounded number of Watch
	// streams at once.
	ErrTooManyWatchers = errorString("too many watch streams at once: close one (evpnctl watch) and try again") // RESOURCE_EXHAUSTED
	// ErrUnavailable: the daemon is starting or stopping; retry.
	ErrUnavailable = errorString("evpnd is starting or stopping; try again") // UNAVAILABLE
	// ErrConfigRefused: a reload found the file unusable; nothing changed.
	ErrConfigRefused = errorString("reload refused, nothing changed") // INVALID_ARGUMENT with a ValidationError, else FAILED_PRECONDITION
)

type errorString string

func (e errorString) Error() string { return string(e) }

// Status is the daemon's identity and health.
type Status struct {
	Version          string
	Started          time.Time
	RouterID         netip.Addr
	ASN              uint32
	Role             configs.Role
	VTEP             netip.Addr
	KernelInSync     bool
	BGPSynced        bool
	FIBPending       int
	FIBErrors        uint64
	L2VNIs           int
	PeersEstablished int
	PeersConfigured  int
	Restarted        bool
	VRFs             int // tenant VRFs configured
	// VRFStates are the tenant VRFs' states, sorted by L3VNI.
	VRFStates []VRFStatus
	// ConfigFile is the file read at start and on reload.
	ConfigFile string
	// VNIsNotInFile run but are not in the file as last read, or are set
	// otherwise there; FileVNIsNotRunning are in it but do not run.
	VNIsNotInFile, FileVNIsNotRunning []uint32
	// RestartNeeded names the keys of the file, as last read, that differ
	// from the running daemon's and that only a restart applies.
	RestartNeeded []string
}

// VRFKernel is a tenant VRF's kernel L3 state (fib's L3 reconciler).
type VRFKernel struct {
	VRF    string
	L3VNI  uint32
	InSync bool // BGP synced, nothing waiting for a write or a retry
	Kinds  []VRFKernelKind
}

// VRFKernelKind is one kind of a VRF's kernel L3 objects.
type VRFKernelKind struct {
	Kind              string // "rmac", "neigh", "route"
	Installed, Wanted int
	Pending           int // waiting for a retry after a failed write
	Errors, Repairs   uint64
}

// VRFStatus is one tenant VRF's state in the status.
type VRFStatus struct {
	Name           string
	L3VNI          uint32
	Backend        configs.Backend
	DevicesPresent bool
	// LocalHosts are the hosts learned on its SVIs and advertised;
	// RemoteHosts those of other leafs installed as suppression
	// neighbours.
	LocalHosts, RemoteHosts  int
	HostRoutes, PrefixRoutes int
	RemoteVTEPs              int
	Uplinks                  []string // interface names, as configured
	StaticRoutes             int
	// KernelInSync and Kernel are its kernel L3 state (fib's L3
	// reconciler); Kernel is empty before the reconciler runs.
	KernelInSync bool
	Kernel       []VRFKernelKind
}

// VNI is one L2VNI with its counters.
type VNI struct {
	VNI            uint32
	VXLAN, Bridge  string
	AccessPorts    []string
	RD             evpn.RD
	ImportRTs      []evpn.RT
	ImportAuto     bool
	ExportRTs      []evpn.RT
	LocalMACs      int
	RemoteMACs     int
	DuplicateMACs  int
	Flood          []netip.Addr // sorted
	UDPPort, MTU   int
	DevicesPresent bool
	LocalVTEP      netip.Addr
}

// MACSource selects local or remote MACs in a MACFilter.
type MACSource uint8

const (
	MACAny MACSource = iota
	MACLocal
	MACRemote
)

// MACFilter selects rows of the MAC table. Zero values match everything.
type MACFilter struct {
	VNI            uint32
	Source         MACSource
	MAC            *evpn.MAC
	DuplicatesOnly bool
	// VerifyKernel reads the kernel's FDB for InKernel instead of using
	// fib's record of it.
	VerifyKernel bool
}

// MAC is one row of the MAC table.
type MAC struct {
	VNI       uint32
	MAC       evpn.MAC
	Local     bool
	VTEP      netip.Addr // the remote VTEP, or the local VTEP for a local MAC
	Seq       uint32
	Sticky    bool
	Duplicate bool
	InKernel  bool
	Others    []netip.Addr // other VTEPs advertising it, not selected
	Port      string       // local MACs: access port, if known
}

// RouteFilter selects paths of the BGP table. Zero values match everything.
type RouteFilter struct {
	Type evpn.RouteType // 0, 2, 3 or 5
	VNI  uint32         // the VNI the path imports into
	RD   *evpn.RD
}

// RoutePath is one path of the l2vpn-evpn BGP table.
type RoutePath struct {
	Route *evpn.Route
	// Peer sent the path; invalid for a local one.
	Peer     netip.Addr
	Local    bool
	Best     bool // BGP's best path for the NLRI
	Selected bool // evpnd uses it (see the proto)
	Stale    bool
	VNI      uint32 // the L2VNI it imports into; 0 if none
	Age      time.Duration
	// ExtCommunities are the extended communities other than route
	// targets, as text ("ET:8", "MM:3", ...).
	ExtCommunities []string
	ASPath         []uint32
	LocalPref      uint32
	Origin         string // "i", "e" or "?"
	ClusterList    []netip.Addr
}

// PeerState mirrors speaker.PeerState (RFC 4271 §8.2.2).
type PeerState uint8

const (
	PeerUnknown PeerState = iota
	PeerIdle
	PeerConnect
	PeerActive
	PeerOpenSent
	PeerOpenConfirm
	PeerEstablished
)

// Peer is one BGP neighbour.
type Peer struct {
	Address         netip.Addr
	ASN             uint32
	Description     string
	RouterID        netip.Addr
	State           PeerState
	Uptime          time.Duration
	Received        uint64
	Accepted        uint64
	EORReceived     bool
	GracefulRestart bool
	PeerRestarting  bool
	LastError       string
	Dynamic         bool
	RRClient        bool
	// Advertised is the number of l2vpn-evpn paths advertised to the
	// neighbour (FRR's PfxSnt), 0 unless the session is established.
	// Computing it runs the export rules over the whole table: see
	// speaker.Server.PeersAdvertised.
	Advertised uint64
	// MessagesReceived and MessagesSent count the BGP messages of every
	// type over every session since the neighbour was configured (FRR's
	// MsgRcvd and MsgSent).
	MessagesReceived, MessagesSent uint64
}

// ChangeKind is what a Change reports.
type ChangeKind uint8

const (
	ChangeAdded ChangeKind = iota + 1
	ChangeMoved
	ChangeRemoved
	ChangeUp
	ChangeDown
	ChangeSynced
	ChangeDuplicate
)

// Change is one Watch event. Exactly one of MAC, VTEP, Peer, VRFRoute,
// ARP is set, except for ChangeSynced.
type Change struct {
	Time    time.Time
	Kind    ChangeKind
	Initial bool
	MAC     *MACChange
	VTEP    *VTEPChange
	Peer    *PeerChange
	// VRFRoute: a route of a VRF added or changed (ChangeAdded) or
	// removed (ChangeRemoved).
	VRFRoute *VRFRouteChange
	// ARP: a row of the ARP cache added or changed (ChangeAdded) or gone
	// (ChangeRemoved, with its last row).
	ARP *ARPChange
}

// MACChange is a MAC added, moved, removed or flagged duplicate.
type MACChange struct {
	MAC MAC
	// Previous location for ChangeMoved: invalid = local, else the VTEP.
	PreviousLocal bool
	PreviousVTEP  netip.Addr
}

// VTEPChange is a remote VTEP added to or removed from a flood list.
type VTEPChange struct {
	VNI  uint32
	VTEP netip.Addr
}

// PeerChange is a session going up or down.
type PeerChange struct {
	Address netip.Addr
	State   PeerState
}

// DriftKind classifies one difference between BGP and the kernel.
type DriftKind uint8

const (
	DriftMissing DriftKind = iota + 1
	DriftExtra
	DriftWrong
)

// Drift is one entry that differs between BGP's selection and the kernel.
type Drift struct {
	Kind       DriftKind
	VNI        uint32
	Table      string // "mac", "bridge", "flood", "device"; L3: "neigh", "rmac", "route", "static-route"
	MAC        evpn.MAC
	WantVTEP   netip.Addr
	KernelVTEP netip.Addr
	Device     string
	Detail     string
	// L3 drift: the VRF and the entry (an IP, a prefix or a router MAC).
	VRF, Entry string
}

// CheckReport is the result of Check.
type CheckReport struct {
	Drifts        []Drift
	CheckedMACs   int
	CheckedFloods int
	Time          time.Time
	InFlight      int
	CheckedL3     int // L3 entries compared (neighbours, router MACs, routes)
}

// The trace types are the trace package's: it records them, the API
// converts them to protobuf.
type (
	TraceKind  = trace.Kind
	TraceEvent = trace.Event
	TraceKey   = trace.Key
)

// The kinds of step of a MAC's history.
const (
	TraceLocalLearned   = trace.LocalLearned
	TraceLocalRemoved   = trace.LocalRemoved
	TraceAdvertised     = trace.Advertised
	TraceWithdrawn      = trace.Withdrawn
	TraceRouteReceived  = trace.RouteReceived
	TraceRouteWithdrawn = trace.RouteWithdrawn
	TraceSelected       = trace.Selected
	TraceRejected       = trace.Rejected
	TraceKernelWritten  = trace.KernelWritten
	TraceKernelRemoved  = trace.KernelRemoved
	TraceKernelError    = trace.KernelError
	TraceDuplicate      = trace.Duplicate
)
