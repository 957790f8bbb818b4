package interop

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

var (
	frrVTEP   = netip.MustParseAddr("10.0.0.1") // frr1 in frr-leaf
	evpndVTEP = netip.MustParseAddr("10.0.0.2") // leaf2 in frr-leaf
)

// TestFRRLeaf puts an FRR 8.4 leaf and an evpnd leaf in VNI 100 behind an
// evpnd route reflector: hosts behind each reach each other, each kernel
// points the other side's host at the other VTEP, FRR takes the routes
// evpnd originated and evpnd reflected, and a host that goes away on
// either side disappears from the other side.
func TestFRRLeaf(t *testing.T) {
	f := deploy(t, "frr-leaf.clab.yml")

	f.waitFDB("leaf2", "vxlan100", "flood to frr1", func(es []fdbEntry) bool { return floodsTo(es, frrVTEP) })
	f.waitFDB("frr1", "vxlan100", "flood to leaf2", func(es []fdbEntry) bool { return floodsTo(es, evpndVTEP) })
	f.ping("h1", ip2)
	f.ping("h2", ip1)
	f.waitFDB("leaf2", "vxlan100", "h1 at frr1", func(es []fdbEntry) bool { return remoteMAC(es, mac1, frrVTEP) })
	f.waitFDB("frr1", "vxlan100", "h2 at leaf2", func(es []fdbEntry) bool { return remoteMAC(es, mac2, evpndVTEP) })
	t.Logf("leaf2$ bridge fdb show dev vxlan100\n%s", f.exec("leaf2", "bridge", "fdb", "show", "dev", "vxlan100"))
	t.Logf("frr1$ bridge fdb show dev vxlan100\n%s", f.exec("frr1", "bridge", "fdb", "show", "dev", "vxlan100"))

	// evpnctl on the evpnd leaf shows FRR's route for h1 as received,
	// imported into VNI 100 and used, and the kernel agrees with BGP.
	var routes evpndv1.ListRoutesResponse
	out := f.exec("leaf2", "evpnctl", "-o", "json", "show", "evpn", "route", "type", "2")
	if err := protojson.Unmarshal([]byte(out), &routes); err != nil {
		t.Fatalf("evpnctl -o json show evpn route: %v\n%s", err, out)
	}
	found := false
	for _, r := range routes.GetRoutes() {
		if r.GetMac() == mac1 && r.GetNextHop() == frrVTEP.String() && r.GetBest() {
			found = true
			if r.GetVni() != 100 || !r.GetSelected() || r.GetLocal() || !slices.Contains(r.GetExtendedCommunities(), "ET:8") {
				t.Errorf("FRR's route for h1 as evpnd shows it: %v", r)
			}
		}
	}
	if !found {
		t.Errorf("evpnctl shows no best route for h1 from FRR:\n%s", out)
	}
	t.Logf("leaf2$ evpnctl show evpn route\n%s", f.exec("leaf2", "evpnctl", "show", "evpn", "route"))
	t.Logf("leaf2$ evpnctl check\n%s", f.exec("leaf2", "evpnctl", "check"))

	// leaf2's routes as FRR got them through the evpnd reflector.
	want := evpndRoutes(evpndVTEP.String(), "10.0.0.254", mac2)
	for i := range want {
		want[i].Originator = evpndVTEP.String()
	}
	f.waitRoutes("frr1", "leaf2's routes reflected by evpnd", func(tb evpnTable) error { return checkRoutes(tb, want) })
	f.waitPeers("frr1", "10.0.0.254")
	f.logShow("frr1", "show bgp l2vpn evpn", "show bgp l2vpn evpn summary")

	// h1 goes away behind FRR: its port loses carrier, the bridge flushes
	// the MAC, FRR withdraws it, evpnd removes both kernel entries.
	f.exec("h1", "ip", "link", "set", "eth1", "down")
	took := f.waitFDB("leaf2", "vxlan100", "h1 gone", func(es []fdbEntry) bool { return !hasMAC(es, mac1) })
	t.Logf("h1 withdrawn by FRR: gone from leaf2's FDB after %v", took.Round(time.Millisecond))

	// And the other way round.
	f.exec("h2", "ip", "link", "set", "eth1", "down")
	took = f.waitFDB("frr1", "vxlan100", "h2 gone", func(es []fdbEntry) bool { return !hasMAC(es, mac2) })
	t.Logf("h2 withdrawn by evpnd: gone from frr1's FDB after %v", took.Round(time.Millisecond))
	f.waitRoutes("frr1", "h2's route withdrawn", func(tb evpnTable) error {
		if rs := tb.routesFor(mac2); len(rs) > 0 {
			return fmt.Errorf("routes for %s still in FRR's table: %v", mac2, rs)
		}
		return nil
	})
}

// TestFRRLeafMACMove moves h3's MAC and address from the FRR leaf to the
// evpnd leaf and back, with the old location's bridge entry still in
// place, so that each new location must win by MAC mobility sequence
// number (RFC 7432 §15): evpnd must advertise seq 1 over FRR's 0 and FRR
// must withdraw; FRR must advertise 2 over evpnd's 1 and evpnd must
// withdraw and follow.
func TestFRRLeafMACMove(t *testing.T) {
	f := deploy(t, "frr-leaf.clab.yml")
	f.waitFDB("leaf2", "vxlan100", "flood to frr1", func(es []fdbEntry) bool { return floodsTo(es, frrVTEP) })
	f.waitFDB("frr1", "vxlan100", "flood to leaf2", func(es []fdbEntry) bool { return floodsTo(es, evpndVTEP) })
	f.ping("h3", ip2)
	f.waitFDB("leaf2", "vxlan100", "h3 at frr1", func(es []fdbEntry) bool { return remoteMAC(es, mac3, frrVTEP) })

	// FRR -> evpnd. frr1's bridge still has h3 on eth3; evpnd learns it on
	// its own eth3 and must win with seq 1.
	moveH3(f, "eth1", "eth2")
	start := time.Now()
	f.ping("h3", ip2)
	f.waitFDB("frr1", "vxlan100", "h3 moved to leaf2", func(es []fdbEntry) bool { return remoteMAC(es, mac3, evpndVTEP) })
	t.Logf("move to evpnd: frr1's FDB follows %v after h3 starts talking", time.Since(start).Round(time.Millisecond))
	moved := wantRoute{
		RD: "10.0.0.2:100", Prefix: "[2]:[0]:[48]:[" + mac3 + "]", Type: 2, MAC: mac3, VNI: "100",
		NextHop: evpndVTEP.String(), From: "10.0.0.254", Originator: evpndVTEP.String(),
		Ecomms: []string{"ET:8", "MM:1", "RT:65000:100"},
	}
	_, raw := f.waitRoutes("frr1", "evpnd's route for h3 with MM:1, FRR's own withdrawn", func(tb evpnTable) error {
		if rs := tb.routesFor(mac3); len(rs) != 1 {
			return fmt.Errorf("routes for %s in RDs %v, want only evpnd's", mac3, rdsOf(rs))
		}
		return moved.check(tb)
	})
	f.rewriteGolden("frr-8.4-leaf-moved-table.json", raw)
	if z, err := f.zebraMAC("frr1", mac3); err != nil || z.Type != "remote" || z.RemoteVTEP != "10.0.0.2" || z.RemoteSequence != 1 {
		t.Errorf("frr1's zebra: %s = %+v (%v), want remote at 10.0.0.2 with remote sequence 1", mac3, z, err)
	}
	f.waitFDB("leaf2", "vxlan100", "no remote entry for h3 on leaf2", func(es []fdbEntry) bool { return !hasMAC(es, mac3) })
	f.ping("h1", ip3)

	// evpnd -> FRR. leaf2's bridge still has h3 on eth3; FRR must win with
	// seq 2 and evpnd must withdraw its route and point h3 at frr1.
	moveH3(f, "eth2", "eth1")
	start = time.Now()
	f.ping("h3", ip1)
	f.waitFDB("leaf2", "vxlan100", "h3 back at frr1", func(es []fdbEntry) bool { return remoteMAC(es, mac3, frrVTEP) })
	t.Logf("move to FRR: leaf2's FDB follows %v after h3 starts talking", time.Since(start).Round(time.Millisecond))
	f.waitRoutes("frr1", "FRR's own route for h3 with MM:2, evpnd's withdrawn", func(tb evpnTable) error {
		rs := tb.routesFor(mac3)
		if len(rs) != 1 {
			return fmt.Errorf("routes for %s in RDs %v, want only FRR's", mac3, rdsOf(rs))
		}
		for rd, r := range rs {
			ps := r.paths()
			if rd == moved.RD || len(ps) != 1 || !ps[0].Local {
				return fmt.Errorf("route for %s: RD %s, %d paths, want one local path of FRR", mac3, rd, len(ps))
			}
			if seq, err := ps[0].mobilitySeq(); err != nil || seq != 2 {
				return fmt.Errorf("FRR's route for %s: MAC mobility %d (%v), want 2", mac3, seq, err)
			}
		}
		return nil
	})
	if z, err := f.zebraMAC("frr1", mac3); err != nil || z.Type != "local" || z.LocalSequence != 2 || z.RemoteSequence != 1 {
		t.Errorf("frr1's zebra: %s = %+v (%v), want local with sequences 2/1", mac3, z, err)
	}
	f.ping("h2", ip3)
	f.logShow("frr1", "show bgp l2vpn evpn", "show evpn mac vni 100")
}

// moveH3 moves h3's MAC and address from one of its ports to the other.
// The old port stays up with a parking MAC, so the old leaf's bridge keeps
// its entry for h3 until the control plane moves it; h3 answers ARP only on
// the port holding the address (arp_ignore=1 in the topology).
func moveH3(f *fabric, from, to string) {
	f.t.Helper()
	parking := map[string]string{"eth1": "02:00:00:00:01:e3", "eth2": "02:00:00:00:01:f3"}[from]
	f.exec("h3", "ip", "addr", "del", ip3+"/24", "dev", from)
	f.exec("h3", "ip", "link", "set", from, "address", parking)
	f.exec("h3", "ip", "link", "set", to, "address", mac3)
	f.exec("h3", "ip", "addr", "add", ip3+"/24", "dev", to)
}
