package speaker

import (
	"net/netip"
	"sync"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// EventType says what an Event reports.
type EventType uint8

const (
	// EventRoute: the best path for Route.Key from a peer changed
	// (Withdraw false) or no remote path is left for it (Withdraw true).
	EventRoute EventType = iota + 1
	// EventPeer: the BGP session with Peer changed state.
	EventPeer
	// EventEndOfRIB: Peer sent End-of-RIB for Family (RFC 4724 §2).
	EventEndOfRIB
	// EventSynced: the initial table is in: every established peer has
	// sent End-of-RIB, or Config.SyncTimeout passed with a peer
	// established (TimedOut, Pending naming the peers that had not).
	// Delivered once per Watch, after the events it covers. Stale remote
	// state (of a previous run, or of a restarted peer) may be pruned now.
	EventSynced
)

func (t EventType) String() string {
	switch t {
	case EventRoute:
		return "route"
	case EventPeer:
		return "peer"
	case EventEndOfRIB:
		return "end-of-rib"
	case EventSynced:
		return "synced"
	}
	return "unknown"
}

// Event is what Watch delivers.
type Event struct {
	Type EventType

	// EventRoute. For a withdrawal, Route is the route withdrawn as GoBGP
	// last held it (so Route.VTEP() says which VTEP withdrew), or only its
	// Key when our own path replaced it as best; Route.Key identifies it.
	Route    *evpn.Route
	Withdraw bool
	// Stale: GoBGP retains this route from a restarting peer until the
	// peer's End-of-RIB or its restart time (RFC 4724 §4.2); keep using it.
	// GoBGP emits no event when it marks a peer's routes stale (the best
	// path does not change): a peer that restarts gracefully shows as an
	// EventPeer leaving Established, with Peers reporting PeerRestarting,
	// and its routes stay until withdrawn. Stale is only set when such a
	// route is reported again for another reason.
	Stale bool

	// The neighbour: for EventRoute the one the path was learned from (for
	// a withdrawal, the one of the route withdrawn).
	Peer    netip.Addr
	PeerASN uint32

	State  PeerState // EventPeer
	Family Family    // EventEndOfRIB

	// EventSynced.
	TimedOut bool
	Pending  []netip.Addr
}

// eventQueue hands decoded events from the decoder goroutine to the
// delivery goroutine. It is unbounded but coalesces route events per key:
// a newer event for a key still pending replaces the older one in place.
// Replacing in place only ever moves news earlier, never later than an
// event queued after it, so an End-of-RIB is never delivered before a route
// the peer sent ahead of it. Peer and End-of-RIB events are not coalesced,
// and each peer's events keep their order: a route event never moves ahead
// of a peer or End-of-RIB event of its own peer (a withdrawal after a
// session came back stays after the Established); it is queued after it
// instead, and the older event for the key is then delivered too.
type eventQueue struct {
	mu    sync.Mutex
	items []Event
	index map[evpn.Key]int
	// barrier holds, per peer, the position of its last peer or
	// End-of-RIB event pending.
	barrier map[netip.Addr]int
	wake    chan struct{}
}

func newEventQueue() *eventQueue {
	return &eventQueue{index: make(map[evpn.Key]int), barrier: make(map[netip.Addr]int), wake: make(chan struct{}, 1)}
}

func (q *eventQueue) push(evs []Event) {
	if len(evs) == 0 {
		return
	}
	q.mu.Lock()
	for _, ev := range evs {
		if ev.Type == EventRoute {
			if i, ok := q.index[ev.Route.Key]; ok {
				if b, ok := q.barrier[ev.Peer]; !ok || i > b {
					q.items[i] = ev
					continue
				}
			}
			q.index[ev.Route.Key] = len(q.items)
		} else {
			q.barrier[ev.Peer] = len(q.items)
		}
		q.items = append(q.items, ev)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns every pending event, oldest first, and empties the queue.
func (q *eventQueue) take() []Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	if len(q.index) > 4096 {
		q.index = make(map[evpn.Key]int) // let a burst's map go
	} else {
		clear(q.index)
	}
	clear(q.barrier)
	return items
}
