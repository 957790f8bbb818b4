package speaker

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

func grConfig(restart time.Duration, restarting bool) func(*Config) {
	return func(c *Config) {
		c.GracefulRestart = true
		c.RestartTime = restart
		c.Restarting = restarting
	}
}

// peerRestarting reports whether s retains p's routes as stale. GoBGP
// marks them without a best-path event (the best path does not change), so
// the watch shows nothing until they are refreshed or swept.
func peerRestarting(s *testSpeaker, p netip.Addr) bool {
	peers, err := s.Peers(context.Background())
	if err != nil {
		return false
	}
	for _, st := range peers {
		if st.Address == p {
			return st.PeerRestarting
		}
	}
	return false
}

func noWithdrawals(t *testing.T, r *recorder, routes []*evpn.Route) {
	t.Helper()
	for _, rt := range routes {
		if n := r.withdrawn(rt.Key); n != 0 {
			t.Fatalf("%s withdrawn %d times while its origin restarts\n%s", rt.Key, n, r.dump())
		}
		if _, ok := r.route(rt.Key); !ok {
			t.Fatalf("%s gone while its origin restarts\n%s", rt.Key, r.dump())
		}
	}
}

// TestGracefulRestart: A restarts gracefully. B, its GoBGP peer, keeps A's
// routes (stale) while the session is down, takes the re-announced ones
// back without ever withdrawing them, and withdraws the one A did not
// re-announce once A's End-of-RIB arrives.
func TestGracefulRestart(t *testing.T) {
	ctx := context.Background()
	const aAddr, bAddr = "127.0.0.61", "127.0.0.62"
	a := newSpeaker(t, aAddr, 65000, grConfig(30*time.Second, false))
	b := newSpeaker(t, bAddr, 65000, grConfig(30*time.Second, false))
	a.peerWith(b, 65000, nil)
	b.peerWith(a, 65000, nil)
	routes := leafRoutes("10.0.0.1", "10.0.0.1", 1)
	if err := a.Announce(ctx, routes); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "B to receive A's routes", func() bool { return b.rec.count() == len(routes) }, b.rec)
	waitFor(t, settle, "B to receive A's End-of-RIB", func() bool {
		p, err := b.Peers(ctx)
		return err == nil && len(p) == 1 && p[0].EORReceived && p[0].GracefulRestart
	}, b.rec)
	// With graceful restart negotiated, GoBGP's own Advertised counter
	// would count the End-of-RIB marker too; ours counts paths only.
	wantAdvertised(t, a, b.addr, uint64(len(routes)))
	wantAdvertised(t, b, a.addr, 0)

	// Graceful stop: no Cease, the TCP connection just closes.
	if err := a.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "B to see A down", func() bool { return b.rec.peerState(a.addr) != PeerStateEstablished }, b.rec)
	waitFor(t, settle, "B to retain A's routes as stale", func() bool { return peerRestarting(b, a.addr) }, b.rec)
	noWithdrawals(t, b.rec, routes)

	// A comes back once B left its 5 s idle hold (GoBGP's holdtimeIdle):
	// two GoBGP speakers that both dial can otherwise fall into lockstep,
	// each dialling while the other is idle, and never meet (see the
	// report; one passive side avoids it).
	waitFor(t, settle, "B to wait for A in Active", func() bool { return b.rec.peerState(a.addr) == PeerStateActive }, b.rec)
	// A re-learns (here: is given) its local routes and announces them
	// before its neighbours, all but routes[0].
	a2 := newSpeaker(t, aAddr, 65000, func(c *Config) {
		grConfig(30*time.Second, true)(c)
		c.ListenPort = a.port
	})
	kept := routes[1:]
	if err := a2.Announce(ctx, kept); err != nil {
		t.Fatal(err)
	}
	upAt := time.Now()
	a2.peerWith(b, 65000, nil)
	waitFor(t, settle, "B to withdraw the route A did not re-announce", func() bool {
		_, ok := b.rec.route(routes[0].Key)
		return !ok
	}, b.rec)
	t.Logf("stale route swept %v after A's neighbour was added", time.Since(upAt).Round(time.Millisecond))
	for _, r := range kept {
		ev, ok := b.rec.route(r.Key)
		if !ok || ev.Stale {
			t.Errorf("%s after restart: present %v stale %v", r.Key, ok, ev.Stale)
		}
		if n := b.rec.withdrawn(r.Key); n != 0 {
			t.Errorf("%s was withdrawn %d times across the restart", r.Key, n)
		}
	}
	if p, _ := b.Peers(ctx); len(p) != 1 || p[0].PeerRestarting || !p[0].EORReceived || p[0].State != PeerStateEstablished {
		t.Errorf("B's view of A after the restart: %+v", p)
	}
	// A2 got B's End-of-RIB, which released its deferred table.
	waitFor(t, settle, "A2 to see B's End-of-RIB", func() bool {
		a2.rec.mu.Lock()
		defer a2.rec.mu.Unlock()
		return a2.rec.eor[b.addr] > 0
	}, a2.rec)

	// A Cease (non-graceful stop) flushes at once even with GR negotiated.
	if err := a2.Stop(ctx, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "B to flush A's routes after Cease", func() bool { return b.rec.count() == 0 }, b.rec)
}

// TestGracefulRestartTimeExpiry: A drops its sessions without a Cease and
// does not come back; B keeps A's routes for A's restart time, then
// withdraws them.
func TestGracefulRestartTimeExpiry(t *testing.T) {
	ctx := context.Background()
	const restart = 3 * time.Second
	a := newSpeaker(t, "127.0.0.71", 65000, grConfig(restart, false))
	b := newSpeaker(t, "127.0.0.72", 65000, grConfig(30*time.Second, false))
	a.peerWith(b, 65000, nil)
	b.peerWith(a, 65000, nil)
	routes := leafRoutes("10.0.0.1", "10.0.0.1", 1)
	if err := a.Announce(ctx, routes); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "B to receive A's routes", func() bool { return b.rec.count() == len(routes) }, b.rec)
	waitFor(t, settle, "graceful restart to be negotiated", func() bool {
		p, err := b.Peers(ctx)
		return err == nil && len(p) == 1 && p[0].GracefulRestart
	}, b.rec)
	if err := a.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "B to retain A's routes as stale", func() bool { return peerRestarting(b, a.addr) }, b.rec)
	staleAt := time.Now()
	noWithdrawals(t, b.rec, routes)
	waitFor(t, restart+settle, "B to drop A's routes after the restart time", func() bool { return b.rec.count() == 0 }, b.rec)
	held := time.Since(staleAt)
	t.Logf("stale routes held %v (restart time %v)", held.Round(time.Millisecond), restart)
	if held < restart/2 {
		t.Errorf("routes dropped after %v, before the %v restart time", held, restart)
	}
}
