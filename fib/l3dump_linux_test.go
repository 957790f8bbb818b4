package fib

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestL3DumpAmidNoise: next to another VNI's 300 neighbours and 300 FDB
// entries, and 300 routes of fib's protocol in another table, the L3
// dumps (strictly checked: the kernel filters them by device, and routes
// by table and protocol) return only the VRF's entries and agree with
// what fib wrote.
func TestL3DumpAmidNoise(t *testing.T) {
	const noise = 300
	l, dev, k := newL3Lab(t, MainTable)
	d := NewL3Desired(dev)
	fillL3(t, d)
	ctx := context.Background()
	if _, err := NewL3Reconciler(d, k, testLogger(t)).Sync(ctx); err != nil {
		t.Fatal(err)
	}
	l.addVNI(t, 200)
	var b strings.Builder
	for i := range noise {
		fmt.Fprintf(&b, "neigh add 10.200.%d.%d lladdr 02:c8:00:00:%02x:%02x dev br200 extern_learn nud noarp\n", i/256, i%256, i/256, i%256)
		fmt.Fprintf(&b, "route add 10.201.%d.%d/32 via 10.0.0.2 dev br4001 onlink table 1002 proto %d\n", i/256, i%256, RouteProtocol)
	}
	var fdb strings.Builder
	for i := range noise {
		fmt.Fprintf(&fdb, "fdb add 02:c9:00:00:%02x:%02x dev vxlan200 dst 10.0.0.9 self extern_learn\n", i/256, i%256)
	}
	dir := t.TempDir()
	ipb, brb := filepath.Join(dir, "ip"), filepath.Join(dir, "bridge")
	if err := os.WriteFile(ipb, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(brb, []byte(fdb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	l.run(t, []string{"ip", "-batch", ipb}, []string{"bridge", "-batch", brb})
	if n := strings.Count(l.run(t, []string{"ip", "neigh", "show", "dev", "br200"}), "\n"); n < noise {
		t.Fatalf("%d neighbours on br200, want %d", n, noise)
	}

	got, err := k.Dump(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		fam  uint8
		name string
	}{{unix.AF_BRIDGE, "vxlan4001"}, {unix.AF_UNSPEC, "br4001"}, {unix.AF_UNSPEC, "br100"}} {
		idx, err := k.index(c.name)
		if err != nil {
			t.Fatal(err)
		}
		ns, err := k.neighList(c.fam, idx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ns) >= noise {
			t.Errorf("%s: the kernel returned %d entries: not filtered by device", c.name, len(ns))
		}
	}
	want, _ := WantL3(d.Snapshot())
	if ops := PlanL3(want, got, true); len(ops) != 0 {
		t.Errorf("the dump disagrees with what fib wrote: plan %v\ndump %+v", ops, got)
	}
	for _, r := range got.Routes {
		if strings.HasPrefix(r.Prefix.String(), "10.201.") {
			t.Errorf("route %v of table 1002 in the dump of the main table", r.Prefix)
		}
	}
	for _, n := range got.Neighs {
		if n.Dev != "br4001" && n.Dev != "br100" {
			t.Errorf("neighbour of %s in the dump", n.Dev)
		}
	}

	// Each kind alone, as the reconciler asks after a change of that kind.
	for _, kind := range []L3Kind{L3KindRoute, L3KindNeigh, L3KindRMAC} {
		one, err := k.Dump(ctx, dev, kind)
		if err != nil {
			t.Fatalf("kind %v: %v", kind, err)
		}
		if kind == L3KindRoute && len(one.Routes) != len(got.Routes) ||
			kind == L3KindNeigh && len(one.Neighs) != len(got.Neighs) ||
			kind == L3KindRMAC && len(one.RMACs) != len(got.RMACs) {
			t.Errorf("kind %v alone: %+v, all: %+v", kind, one, got)
		}
	}

	// The L2 reconciler's per-device dumps are filtered too.
	es, err := l.kernel(t).Dump(ctx, []VNIDevices{vniDevs(100)})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.VNI != 100 {
			t.Errorf("L2 dump of VNI 100 returned %+v", e)
		}
	}
}
