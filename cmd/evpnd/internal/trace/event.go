package trace

import (
	"net/netip"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// Kind is one step of a MAC's history.
type Kind uint8

// The kinds of step; the API maps each to the proto TraceKind of the same
// name.
const (
	LocalLearned Kind = iota + 1
	LocalRemoved
	Advertised
	Withdrawn
	RouteReceived
	RouteWithdrawn
	Selected
	Rejected
	KernelWritten
	KernelRemoved
	KernelError
	Duplicate
)

// Event is one step of a MAC's history.
type Event struct {
	Time   time.Time
	Kind   Kind
	Peer   netip.Addr
	Local  bool       // the VTEP is this leaf
	VTEP   netip.Addr // the VTEP concerned
	Seq    uint32
	RD     evpn.RD
	HasRD  bool
	Detail string
}

// Key is the recorded history of one MAC in one VNI.
type Key struct {
	VNI       uint32
	MAC       evpn.MAC
	Events    []Event
	Truncated bool
}
