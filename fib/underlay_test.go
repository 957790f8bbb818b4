package fib

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestPlanUnderlay(t *testing.T) {
	pf := netip.MustParsePrefix
	a := netip.MustParseAddr
	src := a("10.0.0.1")
	want := []UnderlayRoute{
		{Prefix: pf("10.0.0.2/32"), NextHops: []netip.Addr{a("10.2.1.0"), a("10.1.1.0")}, Src: src}, // same set, other order
		{Prefix: pf("10.0.0.3/32"), NextHops: []netip.Addr{a("10.1.1.0"), a("10.2.1.0")}, Src: src}, // kernel has one hop
		{Prefix: pf("10.0.0.4/32"), NextHops: []netip.Addr{a("10.1.1.0")}, Src: src},                // missing
		{Prefix: pf("10.0.0.5/32"), NextHops: []netip.Addr{a("10.3.1.0")}, Src: src},                // next hop not usable: not wanted
		{Prefix: pf("10.0.0.6/32"), NextHops: []netip.Addr{a("10.3.1.0"), a("10.2.1.0")}, Src: src}, // loses the unusable hop
	}
	found := []UnderlayRoute{
		{Prefix: pf("10.0.0.2/32"), NextHops: []netip.Addr{a("10.1.1.0"), a("10.2.1.0")}, Src: src},
		{Prefix: pf("10.0.0.3/32"), NextHops: []netip.Addr{a("10.1.1.0")}, Src: src},
		{Prefix: pf("10.0.0.5/32"), NextHops: []netip.Addr{a("10.3.1.0")}, Src: src},
		{Prefix: pf("10.0.0.6/32"), NextHops: []netip.Addr{a("10.2.1.0")}, Src: src},
		{Prefix: pf("10.0.0.9/32"), NextHops: []netip.Addr{a("10.1.1.0")}}, // withdrawn
	}
	usable := func(h netip.Addr) bool { return h != a("10.3.1.0") }
	got := fmt.Sprint(PlanUnderlay(want, found, usable))
	const exp = "[replace 10.0.0.3/32 nexthop via 10.1.1.0 nexthop via 10.2.1.0 src 10.0.0.1 " +
		"replace 10.0.0.4/32 nexthop via 10.1.1.0 src 10.0.0.1 " +
		"delete 10.0.0.5/32 nexthop via 10.3.1.0 src 10.0.0.1 " +
		"delete 10.0.0.9/32 nexthop via 10.1.1.0]"
	if got != exp {
		t.Errorf("PlanUnderlay =\n%s\nwant\n%s", got, exp)
	}
	if ops := PlanUnderlay(want, nil, nil); len(ops) != len(want) {
		t.Errorf("into an empty kernel: %v", ops)
	}

	// The drift each op repairs, as OnRepair reports it.
	var drifts []string
	for _, op := range PlanUnderlay(want, found, usable) {
		drifts = append(drifts, op.Route.Prefix.String()+" "+underlayDrift(op, found).String())
	}
	const expDrift = "[10.0.0.3/32 wrong 10.0.0.4/32 missing 10.0.0.5/32 extra 10.0.0.9/32 extra]"
	if got := fmt.Sprint(drifts); got != expDrift {
		t.Errorf("drifts = %s, want %s", got, expDrift)
	}
}
