package speaker

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// resyncHold keeps remote state in place while a peer that restarted (a
// route reflector, typically) re-sends its table.
//
// Why: when a graceful-restart peer comes back, GoBGP drops every route it
// kept as stale from that peer — at once if the peer's OPEN lacks the
// Restart State bit, else at its End-of-RIB. A restarted reflector sends
// its table and End-of-RIB as soon as the first leaf has re-sent its own,
// before the other leafs have reconnected, so the stale flush would delete
// every remote MAC and flood entry of the others for the seconds it takes
// them to reconnect. GoBGP v4's selection deferral waits for configured
// neighbours only, not for dynamic ones (an evpnd reflector's leafs), and
// only up to its deferral time; the e2e TestRouteReflectorRestart, run on
// v4 without this hold, saw leafs delete valid entries. So withdrawals from a peer that re-established in
// this run are held for a window after it comes back; a route announced
// again in the window cancels its withdrawal, and the rest are applied
// when the window ends. This extends graceful restart's "keep stale
// routes" by the window; genuine withdrawals in it are late by at most
// that much.
type resyncHold struct {
	window time.Duration
	wasUp  map[netip.Addr]bool
	until  map[netip.Addr]time.Time // peer → end of its hold
	held   map[evpn.Key]Event       // withdrawals held, by route
}

func newResyncHold(window time.Duration) *resyncHold {
	return &resyncHold{window: window, wasUp: map[netip.Addr]bool{},
		until: map[netip.Addr]time.Time{}, held: map[evpn.Key]Event{}}
}

// established notes that a session came up; from the second time on in
// this run, withdrawals from the peer are held for the window.
func (h *resyncHold) established(p netip.Addr, now time.Time) {
	if h.wasUp[p] && h.window > 0 {
		h.until[p] = now.Add(h.window)
	}
	h.wasUp[p] = true
}

// endOfRIB extends the hold of a re-syncing peer to a window after its
// End-of-RIB, when GoBGP flushes what the peer did not re-send.
func (h *resyncHold) endOfRIB(p netip.Addr, now time.Time) {
	if _, ok := h.until[p]; ok {
		h.until[p] = now.Add(h.window)
	}
}

// withdraw reports whether the withdrawal ev is held.
func (h *resyncHold) withdraw(ev Event) bool {
	if _, ok := h.until[ev.Peer]; !ok {
		return false
	}
	h.held[ev.Route.Key] = ev
	return true
}

// announced cancels a held withdrawal: the route came back.
func (h *resyncHold) announced(k evpn.Key) {
	if len(h.held) > 0 {
		delete(h.held, k)
	}
}

// expire ends the holds whose window has passed and returns the
// withdrawals to deliver now.
func (h *resyncHold) expire(now time.Time) []Event {
	var out []Event
	for p, t := range h.until {
		if now.Before(t) {
			continue
		}
		delete(h.until, p)
		for k, ev := range h.held {
			if ev.Peer == p {
				out = append(out, ev)
				delete(h.held, k)
			}
		}
	}
	return out
}

// active reports whether any hold is running.
func (h *resyncHold) active() bool { return len(h.until) > 0 }

// next is when the earliest hold ends (zero: none runs).
func (h *resyncHold) next() time.Time {
	var at time.Time
	for _, t := range h.until {
		if at.IsZero() || t.Before(at) {
			at = t
		}
	}
	return at
}

// filter applies the hold to a batch of events, in place: held
// withdrawals are taken out; the others are returned in order.
func (h *resyncHold) filter(evs []Event, now time.Time, log *slog.Logger) []Event {
	out := evs[:0]
	for _, ev := range evs {
		switch ev.Type {
		case EventPeer:
			if ev.State == PeerStateEstablished {
				h.established(ev.Peer, now)
				if _, ok := h.until[ev.Peer]; ok {
					log.Info("peer re-established: holding its withdrawals while it re-sends its table",
						"peer", ev.Peer, "window", h.window)
				}
			}
		case EventEndOfRIB:
			h.endOfRIB(ev.Peer, now)
		case EventRoute:
			if ev.Withdraw {
				if h.withdraw(ev) {
					continue
				}
			} else {
				h.announced(ev.Route.Key)
			}
		}
		out = append(out, ev)
	}
	return out
}
