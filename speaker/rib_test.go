package speaker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// listPaths returns every path s lists, grouped by route key.
func listPaths(t testing.TB, s *testSpeaker) (map[evpn.Key][]Path, ListStats) {
	t.Helper()
	out := map[evpn.Key][]Path{}
	st, err := s.ListPaths(context.Background(), func(p Path) error {
		out[p.Route.Key] = append(out[p.Route.Key], p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, st
}

func dumpPaths(m map[evpn.Key][]Path) string {
	var b strings.Builder
	for k, ps := range m {
		for _, p := range ps {
			fmt.Fprintf(&b, "  %s peer=%s local=%v best=%v stale=%v as=%v lp=%d ec=%q cl=%v\n",
				k, p.Peer, p.Local, p.Best, p.Stale, p.ASPath, p.LocalPref, p.ExtCommunities, p.ClusterList)
		}
	}
	return b.String()
}

// accepted reports whether s accepted n l2vpn-evpn paths from each of
// peers.
func accepted(s *testSpeaker, n uint64, peers ...netip.Addr) bool {
	st, err := s.Peers(context.Background())
	if err != nil {
		return false
	}
	got := 0
	for _, p := range st {
		if slices.Contains(peers, p.Address) && p.State == PeerStateEstablished && p.Accepted == n {
			got++
		}
	}
	return got == len(peers)
}

// TestPaths: X has an iBGP peer P1 and an eBGP peer P2 that both announce
// the same four NLRIs, and routes of its own. Paths lists X's routes as
// local, and both paths of each received NLRI, the iBGP one (shorter AS
// path) best, each with its attributes. A type-4 route in the table is
// skipped and counted.
func TestPaths(t *testing.T) {
	ctx := context.Background()
	x := startSpeaker(t, "127.0.0.101", 65000, false, nil)
	p1 := startSpeaker(t, "127.0.0.102", 65000, false, nil)
	p2 := startSpeaker(t, "127.0.0.103", 65002, false, nil)
	x.peerWith(p1, 65000, nil)
	p1.peerWith(x, 65000, nil)
	x.peerWith(p2, 65002, nil)
	p2.peerWith(x, 65000, nil)

	own := leafRoutes("10.0.0.1", "10.0.0.1", 1)
	rd := evpn.RDFromIP(mustAddr("10.0.0.1"), 2)
	sticky := &evpn.Route{
		Key:    evpn.Key{Type: evpn.RouteTypeMACIP, RD: rd, MAC: evpn.MAC{2, 0, 0, 0, 0, 0x51}},
		Labels: []uint32{100}, NextHop: mustAddr("10.0.0.1"), RTs: []evpn.RT{evpn.AutoRT(65000, 100)}, Encap: evpn.TunnelTypeVXLAN,
		Mobility: true, Seq: 0, Sticky: true,
	}
	gw := &evpn.Route{
		Key:    evpn.Key{Type: evpn.RouteTypeMACIP, RD: rd, MAC: evpn.MAC{2, 0, 0, 0, 0, 0x52}, IP: mustAddr("192.168.100.254")},
		Labels: []uint32{100}, NextHop: mustAddr("10.0.0.1"), RTs: []evpn.RT{evpn.AutoRT(65000, 100)}, Encap: evpn.TunnelTypeVXLAN,
		Mobility: true, Seq: 3, DefaultGW: true,
	}
	own = append(own, sticky, gw)
	if err := x.Announce(ctx, own); err != nil {
		t.Fatal(err)
	}
	theirs := leafRoutes("10.0.0.2", "10.0.0.2", 2)
	for _, p := range []*testSpeaker{p1, p2} {
		if err := p.Announce(ctx, theirs); err != nil {
			t.Fatal(err)
		}
	}
	// A route type evpnd does not model, straight into X's RIB.
	esi := bgp.EthernetSegmentIdentifier{Type: bgp.ESI_ARBITRARY, Value: make([]byte, 9)}
	es := must(bgp.NewEVPNEthernetSegmentRoute(must(bgp.NewRouteDistinguisherIPAddressAS(mustAddr("10.0.0.1"), 9)), esi, mustAddr("10.0.0.1")))
	esPath := &apiutil.Path{Family: bgp.RF_EVPN, Nlri: es, Age: time.Now().Unix(), Attrs: []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0),
		mpReach(t, "10.0.0.1", es),
	}}
	if _, err := x.bgp.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{esPath}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "X to accept both peers' routes", func() bool {
		return accepted(x, uint64(len(theirs)), p1.addr, p2.addr)
	})

	started := time.Now()
	paths, st := listPaths(t, x)
	if want := len(own) + 2*len(theirs); st.Listed != want || st.Skipped != 1 {
		t.Errorf("listed %d skipped %d, want %d and 1 (the type-4 route)\n%s", st.Listed, st.Skipped, want, dumpPaths(paths))
	}
	for _, r := range own {
		ps := paths[r.Key]
		if len(ps) != 1 {
			t.Errorf("own %s: %d paths, want 1\n%s", r.Key, len(ps), dumpPaths(paths))
			continue
		}
		p := ps[0]
		if !p.Local || p.Peer.IsValid() || !p.Best || p.Stale || p.Origin != "i" || len(p.ASPath) != 0 || len(p.ClusterList) != 0 {
			t.Errorf("own %s: %+v, want local best, origin i, empty AS path", r.Key, p)
		}
		if p.Age < 0 || p.Age > time.Since(started)+settle {
			t.Errorf("own %s: age %v", r.Key, p.Age)
		}
		for _, d := range routeDiff(r, p.Route) {
			t.Errorf("own %s: %s", r.Key, d)
		}
	}
	wantEC := map[evpn.Key][]string{
		own[0].Key: {"ET:8", "MM:1"},
		own[1].Key: {"ET:8", "MM:1", "Rmac:32:42:95:bd:fd:01"},
		own[2].Key: {"ET:8"},
		own[3].Key: {"ET:8", "Rmac:32:42:95:bd:fd:01"},
		sticky.Key: {"ET:8", "MM:0, sticky"},
		gw.Key:     {"ET:8", "MM:3", "Default Gateway"},
	}
	for k, want := range wantEC {
		if ps := paths[k]; len(ps) == 1 && !slices.Equal(ps[0].ExtCommunities, want) {
			t.Errorf("own %s: extended communities %q, want %q", k, ps[0].ExtCommunities, want)
		}
	}

	for _, r := range theirs {
		ps := paths[r.Key]
		if len(ps) != 2 {
			t.Errorf("received %s: %d paths, want 2 (from P1 and P2)\n%s", r.Key, len(ps), dumpPaths(paths))
			continue
		}
		slices.SortFunc(ps, func(a, b Path) int { return a.Peer.Compare(b.Peer) })
		ibgp, ebgp := ps[0], ps[1]
		if ibgp.Peer != p1.addr || !ibgp.Best || ibgp.Local || len(ibgp.ASPath) != 0 || ibgp.LocalPref != 100 || ibgp.Origin != "i" {
			t.Errorf("received %s from P1: %+v, want best, empty AS path, local-pref 100", r.Key, ibgp)
		}
		if ebgp.Peer != p2.addr || ebgp.Best || ebgp.Local || !slices.Equal(ebgp.ASPath, []uint32{65002}) || ebgp.LocalPref != 0 || ebgp.Origin != "i" {
			t.Errorf("received %s from P2: %+v, want not best, AS path [65002], no local-pref", r.Key, ebgp)
		}
		wantEC := map[evpn.Key][]string{
			theirs[0].Key: {"ET:8", "MM:1"},
			theirs[1].Key: {"ET:8", "MM:1", "Rmac:32:42:95:bd:fd:02"},
			theirs[2].Key: {"ET:8"},
			theirs[3].Key: {"ET:8", "Rmac:32:42:95:bd:fd:02"},
		}[r.Key]
		for _, p := range ps {
			if !slices.Equal(p.ExtCommunities, wantEC) {
				t.Errorf("received %s from %s: extended communities %q, want %q", r.Key, p.Peer, p.ExtCommunities, wantEC)
			}
			for _, d := range routeDiff(r, p.Route) {
				t.Errorf("received %s from %s: %s", r.Key, p.Peer, d)
			}
			if p.Stale {
				t.Errorf("received %s from %s: stale", r.Key, p.Peer)
			}
		}
	}

	// fn's error ends the listing and comes back.
	stop := errors.New("enough")
	n := 0
	st, err := x.ListPaths(ctx, func(Path) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 || st.Listed != 1 {
		t.Errorf("ListPaths with a failing callback: %v after %d calls (listed %d), want %v after 1", err, n, st.Listed, stop)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := x.Paths(cctx, func(Path) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Paths with a cancelled context: %v", err)
	}
}

// TestPathsReflected: R reflects A's routes to B, a client that came
// through a dynamic range. B lists them with R's cluster id and A's
// ORIGINATOR_ID; R reports both clients as such, B as dynamic.
func TestPathsReflected(t *testing.T) {
	ctx := context.Background()
	rr := startSpeaker(t, "127.0.0.111", 65000, false, func(c *Config) { c.RouteReflector = true })
	a := startSpeaker(t, "127.0.0.112", 65000, false, nil)
	b := startSpeaker(t, "127.0.0.113", 65000, false, nil)
	rr.peerWith(a, 65000, func(n *Neighbor) { n.RRClient = true })
	if err := rr.AddDynamicNeighbor(ctx, DynamicNeighbor{Prefix: netip.MustParsePrefix("127.0.0.113/32"), ASN: 65000, RRClient: true}); err != nil {
		t.Fatal(err)
	}
	a.peerWith(rr, 65000, nil)
	b.peerWith(rr, 65000, nil)
	routes := leafRoutes("10.0.0.1", "10.0.0.1", 1)
	if err := a.Announce(ctx, routes); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "B to accept the reflected routes", func() bool { return accepted(b, uint64(len(routes)), rr.addr) })

	paths, st := listPaths(t, b)
	if st.Listed != len(routes) || st.Skipped != 0 {
		t.Errorf("B listed %d skipped %d, want %d and 0\n%s", st.Listed, st.Skipped, len(routes), dumpPaths(paths))
	}
	for _, r := range routes {
		ps := paths[r.Key]
		if len(ps) != 1 {
			t.Errorf("%s: %d paths on B, want 1", r.Key, len(ps))
			continue
		}
		p := ps[0]
		if p.Peer != rr.addr || !p.Best || p.Local || p.LocalPref != 100 || len(p.ASPath) != 0 ||
			!slices.Equal(p.ClusterList, []netip.Addr{rr.addr}) || p.Route.Originator != a.addr {
			t.Errorf("%s on B: %+v originator %s, want from R, cluster list [%s], originator %s", r.Key, p, p.Route.Originator, rr.addr, a.addr)
		}
	}

	peers, err := rr.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 2 {
		t.Fatalf("R's peers: %+v, want A and B", peers)
	}
	for _, p := range peers {
		wantDynamic := p.Address == b.addr
		if !p.RRClient || p.Dynamic != wantDynamic || p.State != PeerStateEstablished {
			t.Errorf("R's peer %s: RR client %v dynamic %v state %s, want RR client, dynamic %v, established", p.Address, p.RRClient, p.Dynamic, p.State, wantDynamic)
		}
	}
	if ap, _ := a.Peers(ctx); len(ap) != 1 || ap[0].RRClient || ap[0].Dynamic {
		t.Errorf("A's view of R: %+v, want neither RR client nor dynamic", ap)
	}
}

// TestPathsStale: B retains A's routes across A's graceful stop and lists
// them stale.
func TestPathsStale(t *testing.T) {
	if raceEnabled {
		// GoBGP v4.9 still races here, in its own code: ListPath converts
		// the paths (toPathApiUtil reads Path.IsStale) on the caller's
		// goroutine after releasing its lock, while the FSM goroutine of
		// the peer going down marks the same paths stale (AdjRib.StaleAll
		// -> Path.MarkStale) under its read lock. Nothing evpnd holds can
		// order the two; the watch's conversion shares the same flag
		// (Path clones share OriginInfo).
		t.Skip("GoBGP v4.9's ListPath/MarkStale data race (pkg/server ListPath vs table.AdjRib.StaleAll); see the comment")
	}
	ctx := context.Background()
	a := startSpeaker(t, "127.0.0.121", 65000, false, grConfig(30*time.Second, false))
	b := startSpeaker(t, "127.0.0.122", 65000, false, grConfig(30*time.Second, false))
	a.peerWith(b, 65000, nil)
	b.peerWith(a, 65000, nil)
	routes := leafRoutes("10.0.0.1", "10.0.0.1", 1)
	if err := a.Announce(ctx, routes); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "B to accept A's routes with graceful restart", func() bool {
		p, err := b.Peers(ctx)
		return err == nil && len(p) == 1 && p[0].Accepted == uint64(len(routes)) && p[0].GracefulRestart
	})
	staleCount := func() (stale, all int) {
		paths, _ := listPaths(t, b)
		for _, ps := range paths {
			for _, p := range ps {
				all++
				if p.Stale {
					stale++
				}
			}
		}
		return stale, all
	}
	if s, n := staleCount(); s != 0 || n != len(routes) {
		t.Fatalf("before the restart: %d of %d paths stale, want 0 of %d", s, n, len(routes))
	}
	if err := a.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "B to retain A's routes as stale", func() bool { return peerRestarting(b, a.addr) })
	if s, n := staleCount(); s != len(routes) || n != len(routes) {
		t.Errorf("while A restarts: %d of %d paths stale, want all %d", s, n, len(routes))
	}
}

// TestPeersLastError: the reason a session went down or failed, on both
// sides: a Cease when A stops, an OPEN with the wrong AS.
func TestPeersLastError(t *testing.T) {
	ctx := context.Background()
	a := startSpeaker(t, "127.0.0.131", 65000, false, nil)
	b := startSpeaker(t, "127.0.0.132", 65000, false, nil)
	c := startSpeaker(t, "127.0.0.133", 65000, false, nil)
	a.peerWith(b, 65000, nil)
	b.peerWith(a, 65000, nil)
	// B expects C in AS 65009; C is in 65000. C only waits for B: with
	// both dialling, GoBGP v4 spends its time on connection collisions
	// (slowly, under the race detector) before B reads C's OPEN.
	b.peerWith(c, 65009, nil)
	c.peerWith(b, 65000, func(n *Neighbor) { n.Passive = true })

	peer := func(s *testSpeaker, addr netip.Addr) PeerStatus {
		ps, _ := s.Peers(ctx)
		for _, p := range ps {
			if p.Address == addr {
				return p
			}
		}
		return PeerStatus{}
	}
	waitFor(t, settle, "A and B established", func() bool { return peer(b, a.addr).State == PeerStateEstablished })
	if e := peer(b, a.addr).LastError; e != "" {
		t.Errorf("B's last error for A before any failure: %q", e)
	}
	defer func() {
		if t.Failed() {
			t.Logf("B about C: %q; C about B: %q; B about A: %q", peer(b, c.addr).LastError, peer(c, b.addr).LastError, peer(b, a.addr).LastError)
		}
	}()
	waitFor(t, settle, "B to refuse C's OPEN", func() bool { return peer(b, c.addr).LastError != "" && peer(c, b.addr).LastError != "" })
	if e := peer(b, c.addr).LastError; !strings.HasPrefix(e, "notification sent: ") || !strings.Contains(e, "bad peer as") {
		t.Errorf("B's last error for C: %q, want the bad-peer-AS notification B sent", e)
	}
	// GoBGP v3.37 hands a NOTIFICATION received in OpenConfirm to its FSM
	// as just an unexpected message: it neither logs nor keeps it.
	if e := peer(c, b.addr).LastError; e != "invalid-msg" {
		t.Errorf("C's last error for B: %q, want GoBGP's invalid-msg", e)
	}

	stop, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	if err := a.Stop(stop, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "B to record A's Cease", func() bool {
		e := peer(b, a.addr).LastError
		return strings.HasPrefix(e, "notification received: ") && strings.Contains(e, "peer deconfigured")
	})
	t.Logf("B about A: %q", peer(b, a.addr).LastError)
}
