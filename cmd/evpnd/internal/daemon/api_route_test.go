package daemon

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// A route listing bigger than its memory bound comes in windows of RDs,
// never holding more than the bound (or one RD's paths), and lists the
// same paths in the same order as one held in full.
func TestRoutesWindowed(t *testing.T) {
	a := startSpeaker(t, "127.0.0.153", netip.MustParseAddr("10.0.0.1"))
	ctx := context.Background()
	var routes []*evpn.Route
	for i := range 40 {
		vtep := netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + i%5)}) // 5 RD admins
		rd := evpn.RDFromIP(vtep, uint16(100+i%4))                // 4 numbers: 20 RDs of 2 paths
		mac := evpn.MAC{2, 0, 0, 0, 0x52, byte(i)}
		routes = append(routes, evpn.LocalMACRoute(rd, 100, mac, vtep, rt100, 0, false))
	}
	// One RD with more paths than the bound: a window of its own.
	big := evpn.RDFromIP(netip.MustParseAddr("10.0.0.9"), 7)
	for i := range 6 {
		routes = append(routes, evpn.LocalMACRoute(big, 100, evpn.MAC{2, 0, 0, 0, 0x53, byte(i)}, netip.MustParseAddr("10.0.0.9"), rt100, 0, false))
	}
	if err := a.srv.Announce(ctx, routes); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{}
	d.srv.Store(a.srv)
	list := func(f api.RouteFilter, limit int) ([]api.RoutePath, int) {
		t.Helper()
		var out []api.RoutePath
		peak, err := d.routes(ctx, f, func(p api.RoutePath) error { out = append(out, p); return nil }, limit)
		if err != nil {
			t.Fatal(err)
		}
		return out, peak
	}
	if !waitFor(t, "every route in the table", 10*time.Second, func() bool { got, _ := list(api.RouteFilter{}, 1000); return len(got) == len(routes) }) {
		t.Fatal("the announced routes never all showed")
	}
	whole, peak := list(api.RouteFilter{}, 1000)
	if peak != len(routes) {
		t.Errorf("under the bound: held %d paths, want all %d in one pass", peak, len(routes))
	}
	for i := 1; i < len(whole); i++ {
		if comparePaths(whole[i-1], whole[i]) > 0 {
			t.Fatalf("not sorted at %d: %v then %v", i, whole[i-1].Route.Key, whole[i].Route.Key)
		}
	}
	for _, limit := range []int{3, 5, 10} {
		got, peak := list(api.RouteFilter{}, limit)
		if peak > max(limit+1, 6) { // the first pass notices the overflow at limit+1
			t.Errorf("limit %d: held %d paths at once", limit, peak)
		}
		if len(got) != len(whole) {
			t.Fatalf("limit %d: %d paths, want %d", limit, len(got), len(whole))
		}
		for i := range got {
			if got[i].Route.Key != whole[i].Route.Key {
				t.Fatalf("limit %d: path %d is %v, want %v", limit, i, got[i].Route.Key, whole[i].Route.Key)
			}
		}
	}
	// A filter applies to every window.
	rd := evpn.RDFromIP(netip.MustParseAddr("10.0.0.2"), 101)
	got, _ := list(api.RouteFilter{RD: &rd}, 1)
	if len(got) != 2 || got[0].Route.RD != rd || got[1].Route.RD != rd {
		t.Errorf("RD %v with limit 1: %d paths %v", rd, len(got), got)
	}
}

// Type-5 paths are annotated with their VRF's L3VNI (so that "show evpn
// route type 5 vni 4001" finds them) and marked used when the L3 model
// installs them, or, for our own, while their VRF is configured.
func TestAnnotatePrefix(t *testing.T) {
	l, _ := gatewayLeaf(t, evpn.MAC{0, 0, 0x5e, 0, 1, 1})
	vtep2 := netip.MustParseAddr("10.0.0.2")
	rmac := evpn.MAC{2, 0xaa, 0, 0, 0, 2}
	rt := []evpn.RT{evpn.AutoRT(65000, 4001)}
	remote := evpn.LocalPrefixRoute(evpn.RDFromIP(vtep2, 1), 4001, netip.MustParsePrefix("172.16.2.0/24"), vtep2, rt, rmac)
	l.l3.Update(remote)
	other := evpn.LocalPrefixRoute(evpn.RDFromIP(vtep2, 9), 4009, netip.MustParsePrefix("172.16.9.0/24"), vtep2,
		[]evpn.RT{evpn.AutoRT(65000, 4009)}, rmac)
	l.l3.Update(other)
	own := evpn.LocalPrefixRoute(evpn.RDFromIP(l.d.cfg.VTEPIP, 1), 4001, netip.MustParsePrefix("10.1.0.0/24"), l.d.cfg.VTEPIP, rt, rmac)
	for _, c := range []struct {
		what     string
		p        api.RoutePath
		vni      uint32
		selected bool
	}{
		{"remote, best", api.RoutePath{Route: remote, Best: true}, 4001, true},
		{"remote, not best", api.RoutePath{Route: remote}, 4001, false},
		{"remote, no VRF", api.RoutePath{Route: other, Best: true}, 0, false},
		{"own", api.RoutePath{Route: own, Local: true, Best: true}, 4001, true},
	} {
		p := c.p
		l.annotate(&p)
		if p.VNI != c.vni || p.Selected != c.selected {
			t.Errorf("%s: VNI %d selected %v, want %d %v", c.what, p.VNI, p.Selected, c.vni, c.selected)
		}
		if want := c.vni == 4001; pathMatches(p, api.RouteFilter{Type: evpn.RouteTypeIPPrefix, VNI: 4001}, true) != want {
			t.Errorf("%s: matches type 5 vni 4001: %v, want %v", c.what, !want, want)
		}
	}
}
