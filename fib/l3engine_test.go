package fib

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeL3 is an L3Kernel in memory: the entries it holds, and the ops it
// was given, as iproute2 lines.
type fakeL3 struct {
	mu    sync.Mutex
	s     L3State
	ops   []string
	dumps int
	// fail, when set, refuses the ops it returns an error for.
	fail func(L3Op) error
}

func (k *fakeL3) Dump(_ context.Context, _ L3Devices, kinds ...L3Kind) (L3State, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dumps++
	var out L3State
	want := func(kd L3Kind) bool { return len(kinds) == 0 || slices.Contains(kinds, kd) }
	if want(L3KindNeigh) {
		out.Neighs = slices.Clone(k.s.Neighs)
	}
	if want(L3KindRMAC) {
		out.RMACs = slices.Clone(k.s.RMACs)
	}
	if want(L3KindRoute) {
		out.Routes = slices.Clone(k.s.Routes)
	}
	return out, nil
}

func (k *fakeL3) Apply(_ context.Context, dev L3Devices, ops []L3Op) []error {
	k.mu.Lock()
	defer k.mu.Unlock()
	errs := make([]error, len(ops))
	for i, op := range ops {
		if k.fail != nil {
			if errs[i] = k.fail(op); errs[i] != nil {
				continue
			}
		}
		k.ops = append(k.ops, op.String(dev))
		switch {
		case op.Neigh != nil:
			k.s.Neighs = slices.DeleteFunc(k.s.Neighs, func(n NeighEntry) bool { return n.Dev == op.Neigh.Dev && n.IP == op.Neigh.IP })
			if op.Kind == L3Replace {
				k.s.Neighs = append(k.s.Neighs, *op.Neigh)
			}
		case op.RMAC != nil:
			k.s.RMACs = slices.DeleteFunc(k.s.RMACs, func(r RMACEntry) bool { return r.MAC == op.RMAC.MAC })
			if op.Kind == L3Replace {
				k.s.RMACs = append(k.s.RMACs, *op.RMAC)
			}
		case op.Route != nil:
			k.s.Routes = slices.DeleteFunc(k.s.Routes, func(r RouteEntry) bool { return r.Prefix == op.Route.Prefix })
			if op.Kind == L3Replace {
				k.s.Routes = append(k.s.Routes, *op.Route)
			}
		}
	}
	return errs
}

func (k *fakeL3) lines() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return strings.Join(k.ops, "\n")
}

// A restart: the previous run's entries stay until MarkSynced, and
// MarkSynced takes effect only with a desired state derived after it. A
// pass that derived its tables before the last routes came in and
// MarkSynced was called must not prune with those tables.
func TestL3MarkSyncedAfterDerive(t *testing.T) {
	k := &fakeL3{}
	prev := NewL3Desired(l3dev)
	must(t, prev.SetHost(a("10.1.0.20"), NextHop{a("10.0.0.2"), rm2}))
	must(t, prev.SetHost(a("10.1.0.30"), NextHop{a("10.0.0.3"), rm3}))
	if _, err := NewL3Reconciler(prev, k, nil).Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	k.ops = nil

	d := NewL3Desired(l3dev)
	r := NewL3Reconciler(d, k, nil)
	must(t, d.SetHost(a("10.1.0.20"), NextHop{a("10.0.0.2"), rm2}))
	r.derive() // a pass begins: its snapshot lacks 10.1.0.30
	// The last batch before End-of-RIB, then MarkSynced, while that pass
	// goes on.
	must(t, d.SetHost(a("10.1.0.30"), NextHop{a("10.0.0.3"), rm3}))
	r.MarkSynced()
	before := r.loop.before
	r.loop.before = nil
	if _, err := r.loop.drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.loop.before = before
	if got := k.lines(); got != "" {
		t.Errorf("the pass that began before MarkSynced wrote:\n%s", got)
	}
	if _, err := r.loop.drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := k.lines(); got != "" {
		t.Errorf("after MarkSynced, with every route wanted:\n%s", got)
	}
	// Now a withdraw is carried out, with its router MAC.
	d.DeleteHost(a("10.1.0.30"))
	if _, err := r.loop.drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "ip route del 10.1.0.30/32 table 254 proto 241\nip neigh del 10.0.0.3 dev br4001\nbridge fdb del 02:ee:0a:00:00:03 dev vxlan4001 self master"
	if got := k.lines(); got != want {
		t.Errorf("withdraw after MarkSynced:\n%s\nwant:\n%s", got, want)
	}
	if k.dumps != 6 {
		t.Errorf("%d dumps, want 6 (one per kind per reconciler)", k.dumps)
	}
}
