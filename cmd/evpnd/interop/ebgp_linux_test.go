package interop

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestFRREBGPSpine runs an eBGP EVPN fabric in the style of RFC 7938
// (testdata/ebgp.clab.yml): an FRR 8.4 spine in AS 65000 that only speaks
// plain eBGP, two evpnd leafs in AS 65001 and 65002 and an FRR leaf in AS
// 65003, sessions between loopbacks. Hosts behind the three leafs in VNI
// 100 reach each other; every leaf points the other hosts at the VTEP of
// the leaf that originated them, never at the spine; the auto RTs differ
// per leaf (65001:100, 65002:100, 65003:100) and still import; the spine
// shows evpnd's routes with their own AS's RT and the VTEP as next hop.
func TestFRREBGPSpine(t *testing.T) {
	f := deploy(t, "ebgp.clab.yml")
	vtep1, vtep2, vtep3 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")

	// Type-3 routes: every leaf floods to the other two.
	for _, c := range []struct {
		node string
		to   []netip.Addr
	}{
		{"leaf1", []netip.Addr{vtep2, vtep3}},
		{"leaf2", []netip.Addr{vtep1, vtep3}},
		{"frr3", []netip.Addr{vtep1, vtep2}},
	} {
		for _, v := range c.to {
			f.waitFDB(c.node, "vxlan100", "flood to "+v.String(), func(es []fdbEntry) bool { return floodsTo(es, v) })
		}
	}
	for _, p := range [][2]string{{"h1", ip2}, {"h2", ip1}, {"h1", ip3}, {"h3", ip1}, {"h2", ip3}, {"h3", ip2}} {
		f.ping(p[0], p[1])
	}

	// Type-2 routes: the next hop is the originating VTEP, which the
	// spine must not have replaced with its own address.
	for _, c := range []struct {
		node, mac string
		vtep      netip.Addr
	}{
		{"leaf1", mac2, vtep2}, {"leaf1", mac3, vtep3},
		{"leaf2", mac1, vtep1}, {"leaf2", mac3, vtep3},
		{"frr3", mac1, vtep1}, {"frr3", mac2, vtep2},
	} {
		f.waitFDB(c.node, "vxlan100", c.mac+" at "+c.vtep.String(), func(es []fdbEntry) bool { return remoteMAC(es, c.mac, c.vtep) })
	}
	// The spine sends every leaf its own routes back too; AS-path loop
	// detection must drop them.
	for _, c := range []struct {
		node, mac string
		vtep      netip.Addr
	}{{"leaf1", mac1, vtep1}, {"leaf2", mac2, vtep2}} {
		es, err := f.fdb(c.node, "vxlan100")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if (e.Self && e.Dst == c.vtep) || (e.MAC == c.mac && e.Extern) {
				t.Errorf("%s installed its own route: %v", c.node, e)
			}
		}
	}
	for _, n := range []string{"leaf1", "leaf2", "frr3"} {
		t.Logf("%s$ bridge fdb show dev vxlan100\n%s", n, f.exec(n, "bridge", "fdb", "show", "dev", "vxlan100"))
	}

	// The spine got each evpnd leaf's routes from the leaf itself, with
	// the leaf's own auto RT, and holds no other RD but frr3's.
	want := slices.Concat(ebgpRoutes("10.0.0.1", "65001", "10.0.0.1", mac1), ebgpRoutes("10.0.0.2", "65002", "10.0.0.2", mac2))
	table, _ := f.waitRoutes("spine", "evpnd's routes with RTs 65001:100 and 65002:100", func(tb evpnTable) error { return checkRoutes(tb, want) })
	// FRR's auto RD is router-id:<its own VNI index>, not router-id:VNI.
	rds := slices.Sorted(maps.Keys(table))
	if len(rds) != 3 || rds[0] != "10.0.0.1:100" || rds[1] != "10.0.0.2:100" || !strings.HasPrefix(rds[2], "10.0.0.3:") {
		t.Errorf("RDs in the spine's table: %v, want 10.0.0.1:100, 10.0.0.2:100 and one of frr3's", rds)
	} else {
		frr := wantRoute{
			RD: rds[2], Prefix: "[2]:[0]:[48]:[" + mac3 + "]", Type: 2, MAC: mac3, VNI: "100",
			NextHop: "10.0.0.3", From: "10.0.0.3", Ecomms: []string{"ET:8", "RT:65003:100"},
		}
		if err := frr.check(table); err != nil {
			t.Errorf("frr3's route on the spine: %v", err)
		}
	}
	f.waitPeers("spine", "10.0.0.1", "10.0.0.2", "10.0.0.3")

	// frr3 got them through the spine with the next hop unchanged.
	want = slices.Concat(ebgpRoutes("10.0.0.1", "65001", "10.0.0.254", mac1), ebgpRoutes("10.0.0.2", "65002", "10.0.0.254", mac2))
	f.waitRoutes("frr3", "evpnd's routes through the spine, next hop unchanged", func(tb evpnTable) error { return checkRoutes(tb, want) })
	for _, c := range []struct {
		mac, vtep string
	}{{mac1, "10.0.0.1"}, {mac2, "10.0.0.2"}} {
		if z, err := f.zebraMAC("frr3", c.mac); err != nil || z.Type != "remote" || z.RemoteVTEP != c.vtep {
			t.Errorf("frr3's zebra: %s = %+v (%v), want remote at %s", c.mac, z, err, c.vtep)
		}
	}
	f.logShow("spine", "show bgp l2vpn evpn summary", "show bgp l2vpn evpn")
	f.logShow("frr3", "show bgp l2vpn evpn")
}

// ebgpRoutes is evpndRoutes for a leaf in its own AS: the auto RT is
// asn:100 instead of 65000:100.
func ebgpRoutes(vtep, asn, from string, macs ...string) []wantRoute {
	ws := evpndRoutes(vtep, from, macs...)
	for i := range ws {
		ecomms := slices.Clone(ws[i].Ecomms)
		for j, c := range ecomms {
			if strings.HasPrefix(c, "RT:") {
				ecomms[j] = "RT:" + asn + ":100"
			}
		}
		ws[i].Ecomms = ecomms
	}
	return ws
}
