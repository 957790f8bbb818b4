package speaker

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// Issue 8.4f: the End-of-RIB timeout counts from the first Established,
// and never declares the table in while no session is up.
func TestSyncTrackerTimeout(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p, q := netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("10.9.0.2")
	up := func(a netip.Addr) *Event { return &Event{Type: EventPeer, Peer: a, State: PeerStateEstablished} }
	down := func(a netip.Addr) *Event { return &Event{Type: EventPeer, Peer: a, State: PeerStateActive} }
	eor := func(a netip.Addr) *Event { return &Event{Type: EventEndOfRIB, Peer: a} }

	s := newSyncTracker(10 * time.Second)
	if _, ok := s.check(t0.Add(time.Hour)); ok {
		t.Fatal("synced with no session ever up")
	}
	// The first session comes up late: the timeout counts from then.
	s.observe(up(p), t0.Add(9*time.Second))
	if _, ok := s.check(t0.Add(11 * time.Second)); ok {
		t.Fatal("synced 2 s after the first Established: the timeout counted from the start")
	}
	if w := s.wake(); !w.Equal(t0.Add(19 * time.Second)) {
		t.Fatalf("wake at %v, want 19 s after start", w.Sub(t0))
	}
	// The session drops before the timeout: nothing is pruned at it.
	s.observe(down(p), t0.Add(12*time.Second))
	if _, ok := s.check(t0.Add(20 * time.Second)); ok {
		t.Fatal("synced by timeout with no session up")
	}
	// The timer starts again at the next Established.
	s.observe(up(q), t0.Add(30*time.Second))
	if _, ok := s.check(t0.Add(35 * time.Second)); ok {
		t.Fatal("synced 5 s after the session came back")
	}
	ev, ok := s.check(t0.Add(40 * time.Second))
	if !ok || ev.Type != EventSynced || !ev.TimedOut || len(ev.Pending) != 1 || ev.Pending[0] != q {
		t.Fatalf("timeout with q established and silent: got %+v, %v", ev, ok)
	}
	if _, ok := s.check(t0.Add(time.Hour)); ok {
		t.Fatal("EventSynced twice")
	}
	// End-of-RIB from every established peer: at once.
	s = newSyncTracker(10 * time.Second)
	s.observe(up(p), t0)
	s.observe(up(q), t0)
	s.observe(eor(p), t0)
	if _, ok := s.check(t0); ok {
		t.Fatal("synced with q's End-of-RIB missing")
	}
	s.observe(down(q), t0)
	if ev, ok := s.check(t0); !ok || ev.TimedOut {
		t.Fatalf("p synced, q down: got %+v, %v", ev, ok)
	}
}

// EventSynced through a real session: after the peer's routes and its
// End-of-RIB, once.
func TestWatchSynced(t *testing.T) {
	ctx := context.Background()
	const aAddr, bAddr = "127.0.0.171", "127.0.0.172"
	gr := grConfig(30*time.Second, false)
	a := newSpeaker(t, aAddr, 65000, gr)
	b := newSpeaker(t, bAddr, 65000, func(c *Config) { gr(c); c.SyncTimeout = time.Hour })
	routes := leafRoutes("10.0.0.1", "10.0.0.1", 3)
	if err := a.Announce(ctx, routes); err != nil {
		t.Fatal(err)
	}
	a.peerWith(b, 65000, nil)
	b.peerWith(a, 65000, nil)
	synced := func() (int, int) {
		b.rec.mu.Lock()
		defer b.rec.mu.Unlock()
		n, at := 0, -1
		for i, ev := range b.rec.events {
			if ev.Type == EventSynced {
				n++
				at = i
			}
		}
		return n, at
	}
	waitFor(t, settle, "B's EventSynced", func() bool { n, _ := synced(); return n > 0 }, b.rec)
	n, at := synced()
	b.rec.mu.Lock()
	ev := b.rec.events[at]
	routesBefore := 0
	for _, e := range b.rec.events[:at] {
		if e.Type == EventRoute && !e.Withdraw {
			routesBefore++
		}
	}
	b.rec.mu.Unlock()
	if n != 1 || ev.TimedOut || len(ev.Pending) != 0 {
		t.Fatalf("EventSynced %d times, last %+v", n, ev)
	}
	if routesBefore != len(routes) {
		t.Fatalf("EventSynced after %d routes, want all %d before it", routesBefore, len(routes))
	}
}

// Issue 8.4d: a consumer that takes its time with a batch gets what came
// meanwhile coalesced per route key, not every event: memory is bounded
// by routes.
func TestWatchBatchesCoalescesBehindSlowConsumer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := newSpeaker(t, "127.0.0.173", 65000, nil)
	b := startSpeaker(t, "127.0.0.174", 65000, false, nil)
	release := make(chan struct{})
	var mu sync.Mutex
	var batches [][]Event
	if err := b.WatchBatches(ctx, func(evs []Event) {
		mu.Lock()
		batches = append(batches, evs)
		first := len(batches) == 1
		mu.Unlock()
		if first {
			<-release // the loop is busy
		}
	}); err != nil {
		t.Fatal(err)
	}
	a.peerWith(b, 65000, nil)
	b.peerWith(a, 65000, nil)
	waitFor(t, settle, "the session", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(batches) > 0
	})
	// The first batch is held; A changes one route 200 times.
	r := leafRoutes("10.0.0.1", "10.0.0.1", 7)[0]
	const changes = 200
	for i := range changes {
		c := *r
		c.Seq = uint32(i + 1)
		if err := a.Announce(ctx, []*evpn.Route{&c}); err != nil {
			t.Fatal(err)
		}
	}
	last := func() (uint32, int) {
		mu.Lock()
		defer mu.Unlock()
		n, seq := 0, uint32(0)
		for _, bt := range batches {
			for _, ev := range bt {
				if ev.Type == EventRoute && ev.Route.Key == r.Key && !ev.Withdraw {
					n++
					seq = ev.Route.Seq
				}
			}
		}
		return seq, n
	}
	close(release)
	waitFor(t, settle, "the last change", func() bool { s, _ := last(); return s == changes })
	if _, n := last(); n > changes/4 {
		t.Fatalf("%d route events for one key after %d changes behind a busy consumer: not coalesced", n, changes)
	}
}
