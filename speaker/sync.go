package speaker

import (
	"net/netip"
	"slices"
	"time"
)

// syncTracker decides when the initial table is in (EventSynced): every
// established peer has sent End-of-RIB, with at least one established; or
// the timeout has passed while a peer is established.
//
// The timeout counts from the first Established, not from the start: a
// leaf that starts while the fabric is unreachable keeps the kernel state
// of its previous run (it is still forwarding with it) instead of pruning
// it against an empty table. When the timeout passes with no session up it
// starts again at the next Established.
type syncTracker struct {
	timeout     time.Duration
	done        bool
	deadline    time.Time // zero: not running
	established map[netip.Addr]bool
	eors        map[netip.Addr]bool
}

func newSyncTracker(timeout time.Duration) *syncTracker {
	return &syncTracker{timeout: timeout, established: map[netip.Addr]bool{}, eors: map[netip.Addr]bool{}}
}

// observe feeds one delivered event.
func (s *syncTracker) observe(ev *Event, now time.Time) {
	if s.done {
		return
	}
	switch ev.Type {
	case EventPeer:
		if ev.State == PeerStateEstablished {
			s.established[ev.Peer] = true
			if s.deadline.IsZero() && s.timeout > 0 {
				s.deadline = now.Add(s.timeout)
			}
		} else {
			delete(s.established, ev.Peer)
			delete(s.eors, ev.Peer)
		}
	case EventEndOfRIB:
		s.eors[ev.Peer] = true
	}
}

// check returns EventSynced once, when it is due.
func (s *syncTracker) check(now time.Time) (Event, bool) {
	if s.done || len(s.established) == 0 {
		if !s.done && !s.deadline.IsZero() && !now.Before(s.deadline) {
			s.deadline = time.Time{} // no session up: wait for the next one
		}
		return Event{}, false
	}
	pending := s.pending()
	timedOut := len(pending) > 0
	if timedOut && (s.deadline.IsZero() || now.Before(s.deadline)) {
		return Event{}, false
	}
	s.done = true
	s.established, s.eors = nil, nil
	return Event{Type: EventSynced, TimedOut: timedOut, Pending: pending}, true
}

// wake returns when check should run again without new events (zero:
// only on events).
func (s *syncTracker) wake() time.Time {
	if s.done {
		return time.Time{}
	}
	return s.deadline
}

func (s *syncTracker) pending() []netip.Addr {
	var out []netip.Addr
	for p := range s.established {
		if !s.eors[p] {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}
