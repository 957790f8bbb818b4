package vtep

import (
	"net/netip"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// Neighbour states (linux/neighbour.h), repeated for the pure code.
const (
	nudIncomplete = 0x01
	nudReachable  = 0x02
	nudStale      = 0x04
	nudDelay      = 0x08
	nudProbe      = 0x10
	nudFailed     = 0x20
)

// HostKey is a local host's address on a routed L2VNI.
type HostKey struct {
	VNI uint32
	IP  netip.Addr
}

// HostEvent is a local MAC+IP binding learned, changed or gone: the
// source of a type-2 MAC+IP route (label1 the L2VNI, label2 the L3VNI,
// the Router's MAC community).
type HostEvent struct {
	Key     HostKey
	MAC     evpn.MAC
	Removed bool
}

// NeighUpdate is an ARP/ND neighbour notification or dump entry on an
// SVI, reduced to what HostTable needs.
type NeighUpdate struct {
	Deleted bool // RTM_DELNEIGH
	VNI     uint32
	IP      netip.Addr
	MAC     evpn.MAC
	State   int
	Flags   int
}

// hostLive reports whether a neighbour in state is a host that is there:
// REACHABLE, and also STALE, DELAY and PROBE, which only mean that the
// kernel has not confirmed it lately (a quiet host goes STALE within a
// minute and stays there). FAILED, INCOMPLETE and NONE mean it is not.
// PERMANENT and NOARP entries are configured, not learned.
func hostLive(state int) bool {
	return state&(nudReachable|nudStale|nudDelay|nudProbe) != 0
}

// HostTable keeps the local MAC+IP bindings of the routed L2VNIs' SVIs, as
// reported. It is pure: Update maps one neighbour notification to the
// events it causes.
//
// What is a local host: a learned (not extern_learn, which is fib's
// remote entry; not PERMANENT or NOARP) neighbour with a unicast MAC and
// a unicast address that is not IPv6 link-local (FRR does not advertise
// those either), other than the SVI's own gateway addresses. A binding is
// withdrawn when its neighbour is deleted or turns FAILED (or INCOMPLETE),
// not when it turns STALE: a quiet host stays advertised. A binding whose
// MAC changes is reported again with the new MAC.
type HostTable struct {
	hosts map[HostKey]evpn.MAC
	// gateways holds the anycast gateway addresses per VNI, never hosts.
	gateways map[HostKey]bool
}

// NewHostTable returns an empty table; gateways are the SVIs' own
// addresses, per VNI.
func NewHostTable(gateways map[uint32][]netip.Addr) *HostTable {
	t := &HostTable{hosts: map[HostKey]evpn.MAC{}, gateways: map[HostKey]bool{}}
	for vni, as := range gateways {
		for _, a := range as {
			t.gateways[HostKey{vni, a.Unmap()}] = true
		}
	}
	return t
}

// Hosts returns a copy of the current bindings.
func (t *HostTable) Hosts() map[HostKey]evpn.MAC {
	out := make(map[HostKey]evpn.MAC, len(t.hosts))
	for k, v := range t.hosts {
		out[k] = v
	}
	return out
}

// Update applies one notification and returns the resulting event, if
// any.
func (t *HostTable) Update(u NeighUpdate) (HostEvent, bool) {
	ip := u.IP.Unmap()
	k := HostKey{u.VNI, ip}
	if !ip.IsValid() || ip.IsMulticast() || ip.IsUnspecified() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || t.gateways[k] {
		return HostEvent{}, false
	}
	live := !u.Deleted && hostLive(u.State) && u.Flags&ntfExtLearned == 0 && u.MAC.IsUnicast()
	old, had := t.hosts[k]
	switch {
	case live && (!had || old != u.MAC):
		t.hosts[k] = u.MAC
		return HostEvent{Key: k, MAC: u.MAC}, true
	case !live && had && (u.Deleted || u.State&(nudFailed|nudIncomplete) != 0 || u.State == 0 || u.Flags&ntfExtLearned != 0):
		// Gone, failed, or replaced by fib's remote entry (the host moved
		// to another leaf).
		delete(t.hosts, k)
		return HostEvent{Key: k, MAC: old, Removed: true}, true
	}
	return HostEvent{}, false
}

// Resync brings the table to a full dump of the SVIs' neighbours (after
// the notifications were lost, say to a socket overrun): each entry is
// applied as a notification, and a binding whose neighbour the dump does
// not hold at all is withdrawn as if deleted. It returns the events, in
// that order.
func (t *HostTable) Resync(dump []NeighUpdate) []HostEvent {
	var evs []HostEvent
	seen := make(map[HostKey]bool, len(dump))
	for _, u := range dump {
		seen[HostKey{u.VNI, u.IP.Unmap()}] = true
		if ev, ok := t.Update(u); ok {
			evs = append(evs, ev)
		}
	}
	for k, mac := range t.hosts {
		if !seen[k] {
			delete(t.hosts, k)
			evs = append(evs, HostEvent{Key: k, MAC: mac, Removed: true})
		}
	}
	return evs
}
