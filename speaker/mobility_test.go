package speaker

import (
	"context"
	"testing"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// ownPath returns our path for k as GoBGP holds it.
func ownPath(t *testing.T, s *testSpeaker, k evpn.Key) *evpn.Route {
	t.Helper()
	var found *evpn.Route
	err := s.bgp.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_EVPN},
		func(_ bgp.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				if p.PeerAddress.IsValid() && !p.PeerAddress.IsUnspecified() {
					continue
				}
				if r, err := FromPath(p); err == nil && r.Key == k {
					found = r
				}
			}
		})
	if err != nil || found == nil {
		t.Fatalf("own path %s: %v", k, err)
	}
	return found
}

// TestGoBGPMobility pins down what GoBGP v3.37 does to the MAC mobility
// community of type-2 routes we announce (server.go fixupApiPath), which
// is why ToNative always sets it explicitly when evpnd has a sequence.
func TestGoBGPMobility(t *testing.T) {
	ctx := context.Background()
	a := newSpeaker(t, "127.0.0.81", 65000, nil)
	b := newSpeaker(t, "127.0.0.82", 65000, nil)
	a.peerWith(b, 65000, nil)
	b.peerWith(a, 65000, nil)

	mac := leafRoutes("10.0.0.1", "10.0.0.1", 1)[0] // MAC route, seq 1
	mac.Seq = 3
	macIP := *leafRoutes("10.0.0.1", "10.0.0.1", 1)[1] // same MAC, with IP
	macIP.Mobility, macIP.Seq = false, 0
	if err := a.Announce(ctx, []*evpn.Route{mac, &macIP}); err != nil {
		t.Fatal(err)
	}
	// 1. Left out, GoBGP copies the highest sequence of our paths for the
	//    MAC (same RT) onto the route.
	if got := ownPath(t, a, macIP.Key); !got.Mobility || got.Seq != 3 {
		t.Errorf("MAC+IP without mobility: GoBGP gave mobility %v seq %d, want seq 3 copied from the MAC route", got.Mobility, got.Seq)
	}
	// 2. An explicit lower sequence than GoBGP's view is refused.
	lower := macIP
	lower.Mobility, lower.Seq = true, 1
	if err := a.Announce(ctx, []*evpn.Route{&lower}); err == nil {
		t.Error("seq 1 below our own seq 3: GoBGP accepted it")
	}

	// 3. A MAC another leaf advertises without the community (seq 0):
	//    announced by us without it, GoBGP adds seq 0, where RFC 7432 §15
	//    wants seq 1 for a move.
	remote := leafRoutes("10.0.0.2", "10.0.0.2", 7)[0]
	remote.Mobility, remote.Seq = false, 0
	if err := b.Announce(ctx, []*evpn.Route{remote}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "A to learn B's MAC", func() bool { _, ok := a.rec.route(remote.Key); return ok }, a.rec)
	moved := leafRoutes("10.0.0.1", "10.0.0.1", 7)[0]
	moved.Mobility, moved.Seq = false, 0
	if err := a.Announce(ctx, []*evpn.Route{moved}); err != nil {
		t.Fatal(err)
	}
	if got := ownPath(t, a, moved.Key); !got.Mobility || got.Seq != 0 {
		t.Errorf("moved MAC without mobility: GoBGP gave mobility %v seq %d; expected GoBGP's seq 0", got.Mobility, got.Seq)
	}
	moved.Mobility, moved.Seq = true, 1
	if err := a.Announce(ctx, []*evpn.Route{moved}); err != nil {
		t.Fatal(err)
	}
	if got := ownPath(t, a, moved.Key); got.Seq != 1 {
		t.Errorf("explicit seq 1: GoBGP holds seq %d", got.Seq)
	}
}
