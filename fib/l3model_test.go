package fib

import (
	"net/netip"
	"slices"
	"strconv"
	"testing"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// applyL3Effects feeds the L3 model's effects to an L3Desired, as the
// daemon's wiring will: suppression neighbours on the member L2VNI's
// bridge, host routes and type-5 paths with the model's next hops as they
// are. A PrefixRoute carries the whole ECMP set, so the paths it no longer
// lists are deleted.
func applyL3Effects(t *testing.T, d *L3Desired, eff []evpn.L3Effect) {
	t.Helper()
	svi := func(vni uint32) string { return "br" + strconv.FormatUint(uint64(vni), 10) }
	for _, e := range eff {
		var err error
		switch e.Kind {
		case evpn.L3SetNeigh:
			err = d.SetNeigh(svi(e.Neigh.L2VNI), e.Neigh.IP, e.Neigh.MAC)
		case evpn.L3DelNeigh:
			d.DeleteNeigh(svi(e.Neigh.L2VNI), e.Neigh.IP)
		case evpn.L3SetHost:
			err = d.SetHost(e.Host.IP, NextHop(e.Host.NextHop))
		case evpn.L3DelHost:
			d.DeleteHost(e.Host.IP)
		case evpn.L3SetPrefix:
			for vtep := range d.Snapshot().Paths[e.Prefix.Prefix] {
				if !slices.ContainsFunc(e.Prefix.NextHops, func(n evpn.NextHop) bool { return n.VTEP == vtep }) {
					d.DeletePath(e.Prefix.Prefix, vtep)
				}
			}
			for _, nh := range e.Prefix.NextHops {
				if err = d.AddPath(e.Prefix.Prefix, NextHop(nh)); err != nil {
					break
				}
			}
		case evpn.L3DelPrefix:
			for _, nh := range e.Prefix.NextHops {
				d.DeletePath(e.Prefix.Prefix, nh.VTEP)
			}
		}
		if err != nil {
			t.Fatalf("%v: %v", e.Kind, err)
		}
	}
}

// TestL3ModelIntoDesired: the L3 model's output (speaker/evpn) is what
// fib's L3 side takes. Remote MAC+IP and type-5 routes of two leafs, a host
// move and the withdrawal of everything, planned against an empty kernel.
func TestL3ModelIntoDesired(t *testing.T) {
	vtep1, vtep2, vtep3 := a("10.0.0.1"), a("10.0.0.2"), a("10.0.0.3")
	model := evpn.NewL3Table(evpn.L3Options{LocalVTEP: vtep1, RouterID: vtep1, VRFs: []evpn.L3VRF{{
		Name: "a", L3VNI: 4001, RD: evpn.RDFromIP(vtep1, 1), RouterMAC: evpn.MAC{2, 0xee, 10, 0, 0, 1},
		ExportRTs: []evpn.RT{evpn.AutoRT(65000, 4001)}, Import: evpn.ImportRule{Auto: true},
		Members: []evpn.L3Member{{L2VNI: 100, RD: evpn.RDFromIP(vtep1, 2), ExportRTs: []evpn.RT{evpn.AutoRT(65000, 100)},
			Import: evpn.ImportRule{Auto: true}, GatewayMAC: evpn.MAC{0, 0, 0x5e, 0, 1, 1}}},
	}}})
	d := NewL3Desired(l3dev)
	macIP := func(vtep netip.Addr, ip string, seq uint32, rmac evpn.MAC) *evpn.Route {
		return &evpn.Route{
			Key:    evpn.Key{Type: evpn.RouteTypeMACIP, RD: evpn.RDFromIP(vtep, 2), MAC: h1, IP: a(ip)},
			Labels: []uint32{100, 4001}, NextHop: vtep, Encap: evpn.TunnelTypeVXLAN,
			RTs: []evpn.RT{evpn.AutoRT(65000, 100), evpn.AutoRT(65000, 4001)}, Mobility: true, Seq: seq,
			RouterMAC: rmac, HasRMAC: true,
		}
	}
	type5 := func(vtep netip.Addr, pfx string, rmac evpn.MAC) *evpn.Route {
		return &evpn.Route{
			Key:    evpn.Key{Type: evpn.RouteTypeIPPrefix, RD: evpn.RDFromIP(vtep, 1), Prefix: p(pfx)},
			Labels: []uint32{4001}, NextHop: vtep, Encap: evpn.TunnelTypeVXLAN,
			RTs: []evpn.RT{evpn.AutoRT(65000, 4001)}, RouterMAC: rmac, HasRMAC: true,
		}
	}
	routes := []*evpn.Route{
		macIP(vtep2, "10.1.0.20", 0, rm2), macIP(vtep2, "2001:db8:1::20", 0, rm2),
		type5(vtep2, "0.0.0.0/0", rm2), type5(vtep3, "0.0.0.0/0", rm3),
	}
	for _, r := range routes {
		applyL3Effects(t, d, model.Update(r))
	}
	plan := func() string {
		want, refused := WantL3(d.Snapshot())
		if len(refused) != 0 {
			t.Errorf("refused %v", refused)
		}
		return opLines(l3dev, PlanL3(want, L3State{}, true))
	}
	exp := `bridge fdb replace 02:ee:0a:00:00:02 dev vxlan4001 dst 10.0.0.2 self master extern_learn
bridge fdb replace 02:ee:0a:00:00:03 dev vxlan4001 dst 10.0.0.3 self master extern_learn
ip neigh replace 10.1.0.20 lladdr 02:00:00:00:00:11 dev br100 nud noarp extern_learn
ip neigh replace 2001:db8:1::20 lladdr 02:00:00:00:00:11 dev br100 nud noarp extern_learn
ip neigh replace 10.0.0.2 lladdr 02:ee:0a:00:00:02 dev br4001 nud noarp extern_learn
ip neigh replace 10.0.0.3 lladdr 02:ee:0a:00:00:03 dev br4001 nud noarp extern_learn
ip neigh replace ::ffff:10.0.0.2 lladdr 02:ee:0a:00:00:02 dev br4001 nud noarp extern_learn
ip route replace 0.0.0.0/0 nexthop via 10.0.0.2 dev br4001 onlink nexthop via 10.0.0.3 dev br4001 onlink table 254 proto 241
ip route replace 10.1.0.20/32 via 10.0.0.2 dev br4001 onlink table 254 proto 241
ip route replace 2001:db8:1::20/128 via ::ffff:10.0.0.2 dev br4001 onlink table 254 proto 241
`
	if got := plan(); got != exp {
		t.Errorf("plan:\n%s\nwant:\n%s", got, exp)
	}
	// The IPv4 host moves to leaf3 (seq 1); leaf2 withdraws its default.
	applyL3Effects(t, d, model.Update(macIP(vtep3, "10.1.0.20", 1, rm3)))
	applyL3Effects(t, d, model.Withdraw(routes[2].Key))
	exp = `bridge fdb replace 02:ee:0a:00:00:02 dev vxlan4001 dst 10.0.0.2 self master extern_learn
bridge fdb replace 02:ee:0a:00:00:03 dev vxlan4001 dst 10.0.0.3 self master extern_learn
ip neigh replace 10.1.0.20 lladdr 02:00:00:00:00:11 dev br100 nud noarp extern_learn
ip neigh replace 2001:db8:1::20 lladdr 02:00:00:00:00:11 dev br100 nud noarp extern_learn
ip neigh replace 10.0.0.2 lladdr 02:ee:0a:00:00:02 dev br4001 nud noarp extern_learn
ip neigh replace 10.0.0.3 lladdr 02:ee:0a:00:00:03 dev br4001 nud noarp extern_learn
ip neigh replace ::ffff:10.0.0.2 lladdr 02:ee:0a:00:00:02 dev br4001 nud noarp extern_learn
ip route replace 0.0.0.0/0 via 10.0.0.3 dev br4001 onlink table 254 proto 241
ip route replace 10.1.0.20/32 via 10.0.0.3 dev br4001 onlink table 254 proto 241
ip route replace 2001:db8:1::20/128 via ::ffff:10.0.0.2 dev br4001 onlink table 254 proto 241
`
	if got := plan(); got != exp {
		t.Errorf("after the move:\n%s\nwant:\n%s", got, exp)
	}
	for _, r := range append(routes, macIP(vtep3, "10.1.0.20", 1, rm3)) {
		applyL3Effects(t, d, model.Withdraw(r.Key))
	}
	if got := plan(); got != "" {
		t.Errorf("after withdrawing everything:\n%s", got)
	}
}
