package speaker

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

const settle = 30 * time.Second // session setup takes 1-2 s; leave room on a busy machine

// TestAnnounceWatchWithdraw: A announces every route type to B over iBGP;
// B's Watch sees them decoded, from A; A's own watch never sees them; a
// withdrawal and a Cease reach B.
func TestAnnounceWatchWithdraw(t *testing.T) {
	ctx := context.Background()
	a := newSpeaker(t, "127.0.0.11", 65000, nil)
	b := newSpeaker(t, "127.0.0.12", 65000, nil)
	a.peerWith(b, 65000, func(n *Neighbor) { n.Description = "to-b" })
	b.peerWith(a, 65000, nil)

	routes := leafRoutes("10.0.0.1", "10.0.0.1", 1)
	if err := a.Announce(ctx, routes); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "B to see A established", func() bool { return b.rec.peerState(a.addr) == PeerStateEstablished }, b.rec)
	waitFor(t, settle, "B to receive A's routes", func() bool { return b.rec.count() == len(routes) }, b.rec)
	for _, want := range routes {
		ev, _ := b.rec.route(want.Key)
		if ev.Peer != a.addr || ev.PeerASN != 65000 || ev.Stale {
			t.Errorf("%s: peer %s AS %d stale %v, want %s AS 65000", want.Key, ev.Peer, ev.PeerASN, ev.Stale, a.addr)
		}
		for _, d := range routeDiff(want, ev.Route) {
			t.Errorf("%s: %s", want.Key, d)
		}
	}

	// A barrier for A's watch: once A sees B's route, any event about A's
	// own routes would have been delivered before it.
	bRoute := leafRoutes("10.0.0.2", "10.0.0.2", 2)[0]
	if err := b.Announce(ctx, []*evpn.Route{bRoute}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "A to receive B's route", func() bool { _, ok := a.rec.route(bRoute.Key); return ok }, a.rec)
	if n := a.rec.count(); n != 1 {
		t.Errorf("A's watch holds %d routes, want only B's: own routes leak\n%s", n, a.rec.dump())
	}

	peers, err := b.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 1 || peers[0].Address != a.addr || peers[0].State != PeerStateEstablished ||
		peers[0].ASN != 65000 || peers[0].Received != uint64(len(routes)) || peers[0].Accepted != uint64(len(routes)) ||
		peers[0].RouterID != a.addr {
		t.Errorf("B's peers: %+v", peers)
	}
	if ap, _ := a.Peers(ctx); len(ap) != 1 || ap[0].Description != "to-b" {
		t.Errorf("A's peers: %+v", ap)
	}
	// Each side received and sent at least an OPEN, a KEEPALIVE and an
	// UPDATE. Peers leaves Advertised out (it is costly); PeersAdvertised
	// counts what each side sends the other: its own routes only (iBGP
	// split horizon: B's route is not sent back, nor A's to A).
	// B's counters of what it sent may lag what A received: poll.
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := peers[0]
		if p.MessagesReceived >= 3 && p.MessagesSent >= 3 && p.Advertised == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("B's peer A: %d messages received, %d sent, advertised %d; want at least 3, 3, and 0 from Peers",
				p.MessagesReceived, p.MessagesSent, p.Advertised)
			break
		}
		time.Sleep(20 * time.Millisecond)
		if peers, err = b.Peers(ctx); err != nil || len(peers) != 1 {
			t.Fatalf("B's peers: %v %v", peers, err)
		}
	}
	wantAdvertised(t, b, a.addr, 1)
	wantAdvertised(t, a, b.addr, uint64(len(routes)))

	gone := routes[0]
	if err := a.Withdraw(ctx, []*evpn.Route{gone}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "B to see the withdrawal", func() bool { _, ok := b.rec.route(gone.Key); return !ok }, b.rec)
	if b.rec.withdrawn(gone.Key) != 1 {
		t.Errorf("withdraw events for %s: %d, want 1", gone.Key, b.rec.withdrawn(gone.Key))
	}
	if ev, _ := b.rec.lastWithdraw(gone.Key); ev.Peer != a.addr || ev.Route.VTEP() != gone.NextHop {
		t.Errorf("withdrawal from %s VTEP %s, want %s VTEP %s", ev.Peer, ev.Route.VTEP(), a.addr, gone.NextHop)
	}
	if b.rec.count() != len(routes)-1 {
		t.Errorf("B holds %d routes, want %d", b.rec.count(), len(routes)-1)
	}
	wantAdvertised(t, a, b.addr, uint64(len(routes)-1))
	// Withdrawing a route not announced is not an error.
	if err := a.Withdraw(ctx, []*evpn.Route{gone}); err != nil {
		t.Errorf("second withdraw: %v", err)
	}

	// A non-graceful stop sends Cease: B flushes at once.
	if err := a.Stop(ctx, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "B to see A down", func() bool { return b.rec.peerState(a.addr) != PeerStateEstablished }, b.rec)
	waitFor(t, settle, "B to flush A's routes", func() bool { return b.rec.count() == 0 }, b.rec)
	if err := a.Announce(ctx, routes); err == nil {
		t.Error("Announce after Stop: no error")
	}
}

// wantAdvertised checks that s's PeersAdvertised lists peer, established,
// with want l2vpn-evpn paths advertised to it.
func wantAdvertised(t *testing.T, s *testSpeaker, peer netip.Addr, want uint64) {
	t.Helper()
	ps, err := s.PeersAdvertised(context.Background())
	if err != nil {
		t.Fatalf("%s: PeersAdvertised: %v", s.addr, err)
	}
	for _, p := range ps {
		if p.Address != peer {
			continue
		}
		if p.State != PeerStateEstablished || p.Advertised != want {
			t.Errorf("%s: peer %s %s, %d paths advertised, want Established and %d", s.addr, peer, p.State, p.Advertised, want)
		}
		return
	}
	t.Errorf("%s: PeersAdvertised lacks peer %s: %+v", s.addr, peer, ps)
}

// TestRouteReflector: A and C are clients of RR; C receives A's routes with
// A's next hop and A's router-id as ORIGINATOR_ID.
func TestRouteReflector(t *testing.T) {
	ctx := context.Background()
	rr := newSpeaker(t, "127.0.0.21", 65000, func(c *Config) { c.RouteReflector = true })
	a := newSpeaker(t, "127.0.0.22", 65000, nil)
	c := newSpeaker(t, "127.0.0.23", 65000, nil)
	for _, leaf := range []*testSpeaker{a, c} {
		rr.peerWith(leaf, 65000, func(n *Neighbor) { n.RRClient = true })
		leaf.peerWith(rr, 65000, nil)
	}
	routes := leafRoutes("10.0.0.1", "10.0.0.1", 1)
	if err := a.Announce(ctx, routes); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "C to receive A's routes via RR", func() bool { return c.rec.count() == len(routes) }, c.rec)
	for _, want := range routes {
		ev, _ := c.rec.route(want.Key)
		if ev.Peer != rr.addr {
			t.Errorf("%s: from %s, want the RR %s", want.Key, ev.Peer, rr.addr)
		}
		w := *want
		w.Originator = a.addr // A's router-id
		for _, d := range routeDiff(&w, ev.Route) {
			t.Errorf("%s: %s", want.Key, d)
		}
	}
	// The RR's own watch sees them from A.
	waitFor(t, settle, "RR to hold A's routes", func() bool { return rr.rec.count() == len(routes) }, rr.rec)

	// An RR client must be iBGP and needs Config.RouteReflector.
	if err := a.AddNeighbor(ctx, Neighbor{Address: mustAddr("127.0.0.29"), ASN: 65000, RRClient: true}); err == nil {
		t.Error("RR client without Config.RouteReflector: no error")
	}
	if err := rr.AddNeighbor(ctx, Neighbor{Address: mustAddr("127.0.0.29"), ASN: 65009, RRClient: true}); err == nil {
		t.Error("eBGP RR client: no error")
	}
}

// TestEBGPNextHopUnchanged: L1 (AS 65001) - S (AS 65100) - L2 (AS 65002).
// GoBGP rewrites the next hop of transit routes on eBGP; evpnd's export
// policy keeps the VTEP. The subtest without the policy shows the rewrite,
// so that this test fails if the policy stops working.
func TestEBGPNextHopUnchanged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy bool
	}{{"with-policy", true}, {"gobgp-default", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			base := byte(31)
			if !tc.policy {
				base = 41
			}
			addr := func(i byte) string { return netip.AddrFrom4([4]byte{127, 0, 0, base + i}).String() }
			skip := func(s *Server) { s.skipExportPolicy = !tc.policy }
			l1 := newSpeaker(t, addr(0), 65001, nil, skip)
			sp := newSpeaker(t, addr(1), 65100, nil, skip)
			l2 := newSpeaker(t, addr(2), 65002, nil, skip)
			l1.peerWith(sp, 65100, nil)
			sp.peerWith(l1, 65001, nil)
			sp.peerWith(l2, 65002, nil)
			l2.peerWith(sp, 65100, nil)
			routes := leafRoutes("10.0.0.1", "10.0.0.1", 1)
			if err := l1.Announce(ctx, routes); err != nil {
				t.Fatal(err)
			}
			waitFor(t, settle, "L2 to receive L1's routes via S", func() bool { return l2.rec.count() == len(routes) }, l2.rec)
			for _, r := range routes {
				ev, _ := l2.rec.route(r.Key)
				want := r.NextHop
				if !tc.policy {
					want = sp.addr // GoBGP's next-hop-self on eBGP
				}
				if ev.Route.NextHop != want {
					t.Errorf("%s: next hop %s, want %s", r.Key, ev.Route.NextHop, want)
				}
				if ev.Route.Type == evpn.RouteTypeIMET && ev.Route.VTEP() != r.NextHop {
					t.Errorf("%s: VTEP %s, want %s", r.Key, ev.Route.VTEP(), r.NextHop)
				}
			}
			// S (transit) sees L1's own next hop: GoBGP keeps the next
			// hop L1 set explicitly on its locally originated routes.
			if ev, _ := sp.rec.route(routes[0].Key); ev.Route == nil || ev.Route.NextHop != routes[0].NextHop {
				t.Errorf("S: %+v", ev)
			}
		})
	}
}

// TestDynamicNeighbor: the RR accepts a client from a prefix.
func TestDynamicNeighbor(t *testing.T) {
	ctx := context.Background()
	rr := newSpeaker(t, "127.0.0.51", 65000, func(c *Config) { c.RouteReflector = true })
	leaf := newSpeaker(t, "127.0.1.5", 65000, nil)
	if err := rr.AddDynamicNeighbor(ctx, DynamicNeighbor{Prefix: netip.MustParsePrefix("127.0.1.0/24"), ASN: 65000, RRClient: true}); err != nil {
		t.Fatal(err)
	}
	leaf.peerWith(rr, 65000, nil)
	routes := leafRoutes("10.0.0.5", "10.0.0.5", 5)
	if err := leaf.Announce(ctx, routes); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "RR to see the dynamic peer up", func() bool { return rr.rec.peerState(leaf.addr) == PeerStateEstablished }, rr.rec)
	waitFor(t, settle, "RR to receive the leaf's routes", func() bool { return rr.rec.count() == len(routes) }, rr.rec)
	peers, err := rr.Peers(ctx)
	if err != nil || len(peers) != 1 || peers[0].Address != leaf.addr || peers[0].State != PeerStateEstablished {
		t.Errorf("RR peers: %+v, %v", peers, err)
	}
	// A second range and a non-listening speaker.
	if err := rr.AddDynamicNeighbor(ctx, DynamicNeighbor{Prefix: netip.MustParsePrefix("127.0.2.0/24"), ASN: 65000}); err != nil {
		t.Errorf("second range: %v", err)
	}
	quiet := newSpeaker(t, "127.0.0.52", 65000, func(c *Config) { c.ListenPort = -1 })
	if err := quiet.AddDynamicNeighbor(ctx, DynamicNeighbor{Prefix: netip.MustParsePrefix("127.0.3.0/24"), ASN: 65000}); err == nil {
		t.Error("dynamic neighbor without a listener: no error")
	}
}

func TestConfigErrors(t *testing.T) {
	ok := Config{RouterID: mustAddr("10.0.0.1"), ASN: 65000}
	bad := map[string]func(*Config){
		"no router-id":   func(c *Config) { c.RouterID = netip.Addr{} },
		"ipv6 router-id": func(c *Config) { c.RouterID = mustAddr("2001:db8::1") },
		"AS 0":           func(c *Config) { c.ASN = 0 },
		"port":           func(c *Config) { c.ListenPort = -2 },
		"restart time":   func(c *Config) { c.RestartTime = 2 * time.Hour },
		"hold time":      func(c *Config) { c.HoldTime = time.Second },
	}
	for name, mod := range bad {
		c := ok
		mod(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	s, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddNeighbor(context.Background(), Neighbor{Address: mustAddr("10.0.0.2"), ASN: 1}); err == nil {
		t.Error("AddNeighbor before Start: no error")
	}
	if err := s.Stop(context.Background(), true); err != nil {
		t.Errorf("Stop before Start: %v", err)
	}
}

// TestAnnounceOrderPerKey: Announce pipelines calls into GoBGP but keeps
// the order of routes with one key, so the last advertisement wins.
func TestAnnounceOrderPerKey(t *testing.T) {
	ctx := context.Background()
	s := startSpeaker(t, "127.0.0.85", 65000, false, nil)
	routes := burstRoutes(64)
	last := *routes[3]
	last.Labels = []uint32{200}
	if err := s.Announce(ctx, append(routes, &last)); err != nil {
		t.Fatal(err)
	}
	if got := ownPath(t, s, last.Key); len(got.Labels) != 1 || got.Labels[0] != 200 {
		t.Errorf("labels %v, want the last announcement's [200]", got.Labels)
	}
	if err := s.Withdraw(ctx, routes); err != nil {
		t.Fatal(err)
	}
	if err := s.Announce(ctx, []*evpn.Route{nil}); err == nil {
		t.Error("nil route: no error")
	}
}
