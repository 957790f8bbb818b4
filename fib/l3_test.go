package fib

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/evpnd/evpnd/speaker/evpn"
)

var (
	l3dev = L3Devices{VRF: "a", L3VNI: 4001, Table: MainTable, SVI: "br4001", VXLAN: "vxlan4001"}
	rm2   = evpn.MAC{2, 0xee, 10, 0, 0, 2}
	rm3   = evpn.MAC{2, 0xee, 10, 0, 0, 3}
	h1    = evpn.MAC{2, 0, 0, 0, 0, 0x11}
)

func a(s string) netip.Addr   { return netip.MustParseAddr(s) }
func p(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func opLines(dev L3Devices, ops []L3Op) string {
	var b strings.Builder
	for _, op := range ops {
		b.WriteString(op.String(dev))
		b.WriteByte('\n')
	}
	return b.String()
}

func TestWantAndPlanL3(t *testing.T) {
	d := NewL3Desired(l3dev)
	must(t, d.SetNeigh("br100", a("10.1.0.20"), h1))
	must(t, d.SetHost(a("10.1.0.20"), NextHop{a("10.0.0.2"), rm2}))
	must(t, d.SetHost(a("2001:db8:1::20"), NextHop{a("10.0.0.2"), rm2}))
	must(t, d.AddPath(p("10.1.0.0/24"), NextHop{a("10.0.0.2"), rm2}))
	must(t, d.AddPath(p("10.99.0.0/16"), NextHop{a("10.0.0.3"), rm3}))
	must(t, d.AddPath(p("10.99.0.0/16"), NextHop{a("10.0.0.2"), rm2}))
	want, refused := WantL3(d.Snapshot())
	if len(refused) != 0 {
		t.Errorf("refused %v", refused)
	}
	got := opLines(l3dev, PlanL3(want, L3State{}, true))
	exp := `bridge fdb replace 02:ee:0a:00:00:02 dev vxlan4001 dst 10.0.0.2 self master extern_learn
bridge fdb replace 02:ee:0a:00:00:03 dev vxlan4001 dst 10.0.0.3 self master extern_learn
ip neigh replace 10.1.0.20 lladdr 02:00:00:00:00:11 dev br100 nud noarp extern_learn
ip neigh replace 10.0.0.2 lladdr 02:ee:0a:00:00:02 dev br4001 nud noarp extern_learn
ip neigh replace 10.0.0.3 lladdr 02:ee:0a:00:00:03 dev br4001 nud noarp extern_learn
ip neigh replace ::ffff:10.0.0.2 lladdr 02:ee:0a:00:00:02 dev br4001 nud noarp extern_learn
ip route replace 10.1.0.0/24 via 10.0.0.2 dev br4001 onlink table 254 proto 241
ip route replace 10.1.0.20/32 via 10.0.0.2 dev br4001 onlink table 254 proto 241
ip route replace 10.99.0.0/16 nexthop via 10.0.0.2 dev br4001 onlink nexthop via 10.0.0.3 dev br4001 onlink table 254 proto 241
ip route replace 2001:db8:1::20/128 via ::ffff:10.0.0.2 dev br4001 onlink table 254 proto 241
`
	if got != exp {
		t.Errorf("plan:\n%s\nwant:\n%s", got, exp)
	}
	// The kernel matching it: nothing to do (own writes read back).
	if ops := PlanL3(want, want, true); len(ops) != 0 {
		t.Errorf("plan against itself: %s", opLines(l3dev, ops))
	}
	for _, r := range want.RMACs {
		if r.VTEP == a("10.0.0.2") && r.Routes != 4 {
			t.Errorf("router MAC of 10.0.0.2 used by %d routes, want 4", r.Routes)
		}
	}

	// The last route via 10.0.0.3 goes: its router MAC goes with it, after
	// the route is changed. Without prune nothing is deleted.
	d.DeletePath(p("10.99.0.0/16"), a("10.0.0.3"))
	w2, _ := WantL3(d.Snapshot())
	if got := opLines(l3dev, PlanL3(w2, want, false)); got != "ip route replace 10.99.0.0/16 via 10.0.0.2 dev br4001 onlink table 254 proto 241\n" {
		t.Errorf("without prune:\n%s", got)
	}
	got = opLines(l3dev, PlanL3(w2, want, true))
	exp = `ip route replace 10.99.0.0/16 via 10.0.0.2 dev br4001 onlink table 254 proto 241
ip neigh del 10.0.0.3 dev br4001
bridge fdb del 02:ee:0a:00:00:03 dev vxlan4001 self master
`
	if got != exp {
		t.Errorf("plan:\n%s\nwant:\n%s", got, exp)
	}

	// Drift: a route with a wrong next hop, a neighbour with a wrong MAC,
	// a router MAC pointing elsewhere: each rewritten.
	drift := w2
	drift.Routes = append([]RouteEntry(nil), w2.Routes...)
	drift.Routes[0] = RouteEntry{Prefix: drift.Routes[0].Prefix, VTEPs: []netip.Addr{a("10.0.0.9")}}
	drift.Neighs = append([]NeighEntry(nil), w2.Neighs...)
	drift.Neighs[0].MAC = rm3
	drift.RMACs = []RMACEntry{{MAC: rm2, VTEP: a("10.0.0.9")}}
	if n := len(PlanL3(w2, drift, true)); n != 3 {
		t.Errorf("drift repaired with %d ops, want 3: %s", n, opLines(l3dev, PlanL3(w2, drift, true)))
	}
}

func TestHostRouteWinsAndCoexists(t *testing.T) {
	d := NewL3Desired(l3dev)
	must(t, d.AddPath(p("10.1.0.20/32"), NextHop{a("10.0.0.3"), rm3}))
	must(t, d.SetHost(a("10.1.0.20"), NextHop{a("10.0.0.2"), rm2}))
	must(t, d.AddPath(p("10.1.0.0/24"), NextHop{a("10.0.0.3"), rm3}))
	w, _ := WantL3(d.Snapshot())
	if len(w.Routes) != 2 || w.Routes[1].Prefix != p("10.1.0.20/32") || w.Routes[1].VTEPs[0] != a("10.0.0.2") {
		t.Errorf("routes %v: the host's /32 must win over a type-5 /32 and coexist with the /24", w.Routes)
	}
}

func TestUnderlayGuard(t *testing.T) {
	dev := l3dev
	dev.UnderlayTable, dev.LocalVTEP = true, a("10.0.0.1")
	d := NewL3Desired(dev)
	must(t, d.AddPath(p("10.0.0.2/32"), NextHop{a("10.0.0.3"), rm3}))  // another VTEP's address
	must(t, d.AddPath(p("10.0.0.0/24"), NextHop{a("10.0.0.3"), rm3}))  // covers VTEPs
	must(t, d.AddPath(p("0.0.0.0/0"), NextHop{a("10.0.0.3"), rm3}))    // border leaf's default
	must(t, d.AddPath(p("10.99.0.0/16"), NextHop{a("10.0.0.3"), rm3})) // a tenant prefix
	must(t, d.SetHost(a("10.0.0.1"), NextHop{a("10.0.0.2"), rm2}))     // our own VTEP as a host
	w, refused := WantL3(d.Snapshot())
	if len(refused) != 3 || len(w.Routes) != 2 {
		t.Fatalf("refused %v, installed %v", refused, w.Routes)
	}
	for _, r := range refused {
		if !strings.Contains(r.Reason, "routes the underlay") {
			t.Errorf("reason %q", r.Reason)
		}
	}
	// Not an underlay table (netns, vrf): installed.
	d2 := NewL3Desired(l3dev)
	must(t, d2.AddPath(p("10.0.0.2/32"), NextHop{a("10.0.0.3"), rm3}))
	if w, r := WantL3(d2.Snapshot()); len(r) != 0 || len(w.Routes) != 1 {
		t.Errorf("tenant table: %v %v", w.Routes, r)
	}
}

func TestL3DesiredRefuses(t *testing.T) {
	d := NewL3Desired(l3dev)
	for name, err := range map[string]error{
		"bad vtep":       d.SetHost(a("10.1.0.5"), NextHop{a("127.0.0.1"), rm2}),
		"ipv6 vtep":      d.SetHost(a("10.1.0.5"), NextHop{a("2001:db8::1"), rm2}),
		"multicast rmac": d.AddPath(p("10.2.0.0/16"), NextHop{a("10.0.0.2"), evpn.MAC{1}}),
		"host bits":      d.AddPath(p("10.2.0.1/16"), NextHop{a("10.0.0.2"), rm2}),
		"neigh no mac":   d.SetNeigh("br100", a("10.1.0.5"), evpn.MAC{}),
	} {
		if err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// Two VTEPs claiming one router MAC: the L3VNI's FDB can point it at one
// only; the lower VTEP keeps it and the other's paths are dropped.
func TestRouterMACClash(t *testing.T) {
	d := NewL3Desired(l3dev)
	must(t, d.SetHost(a("10.1.0.20"), NextHop{a("10.0.0.2"), rm2}))
	must(t, d.SetHost(a("10.1.0.30"), NextHop{a("10.0.0.3"), rm2}))
	must(t, d.AddPath(p("10.99.0.0/16"), NextHop{a("10.0.0.3"), rm2}))
	must(t, d.AddPath(p("10.99.0.0/16"), NextHop{a("10.0.0.2"), rm2}))
	w, refused := WantL3(d.Snapshot())
	if len(w.RMACs) != 1 || w.RMACs[0].VTEP != a("10.0.0.2") {
		t.Errorf("router MACs %v", w.RMACs)
	}
	if len(w.Routes) != 2 || len(w.Routes[1].VTEPs) != 1 {
		t.Errorf("routes %v", w.Routes)
	}
	if len(refused) != 1 || refused[0].Prefix != p("10.1.0.30/32") || !strings.Contains(refused[0].Reason, "router-mac") {
		t.Errorf("refused %v", refused)
	}
}
