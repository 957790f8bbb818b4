package interop

import (
	"maps"
	"net/netip"
	"slices"
	"testing"
)

// TestFRRRouteReflector runs FRR 8.4 as the route reflector of two evpnd
// leafs: hosts behind them reach each other through routes FRR reflects,
// and FRR shows evpnd's routes exactly as RFC 7432/8365 and DESIGN §3.1
// want them: RD router-id:VNI, RT 65000:100, ET:8, VNI 100, next hop and
// PMSI endpoint the originating VTEP.
func TestFRRRouteReflector(t *testing.T) {
	f := deploy(t, "frr-rr.clab.yml")
	vtep1, vtep2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")

	f.waitFDB("leaf1", "vxlan100", "flood to leaf2", func(es []fdbEntry) bool { return floodsTo(es, vtep2) })
	f.waitFDB("leaf2", "vxlan100", "flood to leaf1", func(es []fdbEntry) bool { return floodsTo(es, vtep1) })
	f.ping("h1", ip2)
	f.ping("h2", ip1)
	f.waitFDB("leaf1", "vxlan100", "h2 at leaf2", func(es []fdbEntry) bool { return remoteMAC(es, mac2, vtep2) })
	f.waitFDB("leaf2", "vxlan100", "h1 at leaf1", func(es []fdbEntry) bool { return remoteMAC(es, mac1, vtep1) })

	// Each leaf's type-3 and its host's type-2, received from the leaf
	// itself, and nothing else.
	want := slices.Concat(evpndRoutes("10.0.0.1", "10.0.0.1", mac1), evpndRoutes("10.0.0.2", "10.0.0.2", mac2))
	table, raw := f.waitRoutes("rr", "evpnd's routes well formed", func(tb evpnTable) error { return checkRoutes(tb, want) })
	if rds := slices.Sorted(maps.Keys(table)); !slices.Equal(rds, []string{"10.0.0.1:100", "10.0.0.2:100"}) {
		t.Errorf("RDs in FRR's table: %v, want evpnd's auto RDs 10.0.0.1:100 and 10.0.0.2:100", rds)
	}
	f.logShow("rr", "show bgp l2vpn evpn", "show bgp l2vpn evpn route detail")
	f.rewriteGolden("frr-8.4-rr-table.json", raw)

	sum := f.waitPeers("rr", "10.0.0.1", "10.0.0.2")
	f.logShow("rr", "show bgp l2vpn evpn summary")
	f.rewriteGolden("frr-8.4-rr-summary.json", sum)
}
