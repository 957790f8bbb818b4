package speaker

import (
	"net/netip"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// must returns v, and panics on err: for GoBGP v4's constructors in tests.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// mpReach is an MP_REACH_NLRI of l2vpn-evpn NLRIs with next hop nh.
func mpReach(t testing.TB, nh string, nlris ...bgp.NLRI) *bgp.PathAttributeMpReachNLRI {
	t.Helper()
	ps := make([]bgp.PathNLRI, len(nlris))
	for i, n := range nlris {
		ps[i] = bgp.PathNLRI{NLRI: n}
	}
	a, err := bgp.NewPathAttributeMpReachNLRI(bgp.RF_EVPN, ps, netip.MustParseAddr(nh))
	if err != nil {
		t.Fatal(err)
	}
	return a
}
