package fib

import (
	"context"
	"strings"
	"testing"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// A router MAC is two FDB entries on the L3VNI's VXLAN device: the VXLAN
// one (self, dst VTEP) and the bridge one (master). Either deleted alone
// is drift that check reports and a pass repairs; the half left of an
// unwanted router MAC is deleted once pruning is allowed.
func TestL3RouterMACBothSides(t *testing.T) {
	l, dev, k := newL3Lab(t, MainTable)
	d := NewL3Desired(dev)
	fillL3(t, d)
	rm4 := evpn.MAC{2, 0xee, 10, 0, 0, 4}
	must(t, d.SetHost(a("10.1.0.40"), NextHop{a("10.0.0.4"), rm4}))
	r := NewL3Reconciler(d, k, testLogger(t))
	ctx := context.Background()
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	fdb := func() string { return l.run(t, []string{"bridge", "fdb", "show", "dev", "vxlan4001"}) }
	const selfSide, masterSide = "02:ee:0a:00:00:02 dst 10.0.0.2 self extern_learn", "02:ee:0a:00:00:02 extern_learn master br4001"
	for _, c := range []struct {
		side string
		del  []string
	}{
		{masterSide, []string{"bridge", "fdb", "del", "02:ee:0a:00:00:02", "dev", "vxlan4001", "master"}},
		{selfSide, []string{"bridge", "fdb", "del", "02:ee:0a:00:00:02", "dev", "vxlan4001", "dst", "10.0.0.2", "self"}},
	} {
		l.run(t, c.del)
		if out := fdb(); strings.Contains(out, c.side) {
			t.Fatalf("%q not deleted:\n%s", c.side, out)
		}
		if ops, err := r.Check(ctx); err != nil || len(ops) != 1 || ops[0].RMAC == nil || ops[0].Kind != L3Replace {
			t.Errorf("check with %q deleted: %s %v", c.side, opLines(dev, ops), err)
		}
		if n, err := r.Sync(ctx); n != 1 || err != nil {
			t.Errorf("repair of %q wrote %d (%v)", c.side, n, err)
		}
		contains(t, "L3VNI FDB after the repair of "+c.side, fdb(), selfSide, masterSide)
		if ops, err := r.Check(ctx); err != nil || len(ops) != 0 {
			t.Errorf("check after the repair of %q: %s %v", c.side, opLines(dev, ops), err)
		}
	}

	// 10.0.0.3 and 10.0.0.4 withdraw everything; by hand, the VXLAN entry
	// of 10.0.0.3's router MAC and the bridge entry of 10.0.0.4's were
	// deleted first: the halves left are fib's to delete.
	l.run(t, []string{"bridge", "fdb", "del", "02:ee:0a:00:00:03", "dev", "vxlan4001", "dst", "10.0.0.3", "self"})
	l.run(t, []string{"bridge", "fdb", "del", "02:ee:0a:00:00:04", "dev", "vxlan4001", "master"})
	contains(t, "L3VNI FDB with halves", fdb(), "02:ee:0a:00:00:03 extern_learn master br4001", "02:ee:0a:00:00:04 dst 10.0.0.4 self extern_learn")
	d.DeletePath(p("10.1.0.0/24"), a("10.0.0.3"))
	d.DeletePath(p("10.99.0.0/16"), a("10.0.0.3"))
	d.DeletePath(p("2001:db8:99::/48"), a("10.0.0.3"))
	d.DeleteHost(a("10.1.0.40"))
	r.MarkSynced()
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if out := fdb(); strings.Contains(out, "02:ee:0a:00:00:03") || strings.Contains(out, "02:ee:0a:00:00:04") {
		t.Errorf("the halves left of the router MACs of 10.0.0.3 and 10.0.0.4 were not deleted:\n%s", out)
	}
	contains(t, "L3VNI FDB", fdb(), selfSide, masterSide)
}
