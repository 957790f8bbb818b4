package fib

import (
	"context"
	"errors"
	"testing"
)

// KernelState tells per kind what is installed and wanted, what failed,
// and whether the VRF's kernel state is in sync: not before MarkSynced,
// not while an entry waits for a retry.
func TestL3KernelState(t *testing.T) {
	refuse := errors.New("refused")
	k := &fakeL3{}
	d := NewL3Desired(l3dev)
	r := NewL3Reconciler(d, k, nil)
	must(t, d.SetHost(a("10.1.0.20"), NextHop{a("10.0.0.2"), rm2}))
	must(t, d.SetHost(a("10.1.0.30"), NextHop{a("10.0.0.3"), rm3}))
	if _, err := r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := r.KernelState(); s.InSync {
		t.Errorf("in sync before MarkSynced: %+v", s)
	}
	r.MarkSynced()
	if _, err := r.loop.drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := r.KernelState()
	if !s.InSync || len(s.Kinds) != 3 {
		t.Fatalf("after MarkSynced: %+v, want in sync, three kinds", s)
	}
	for _, kd := range s.Kinds {
		if kd.Installed != 2 || kd.Wanted != 2 || kd.Pending != 0 || kd.Errors != 0 {
			t.Errorf("%s: %+v, want 2 installed and wanted, nothing failed", kd.Kind, kd)
		}
	}

	// A route the kernel refuses: out of sync, pending, counted.
	k.fail = func(op L3Op) error {
		if op.Route != nil && op.Route.Prefix.Addr() == a("10.1.0.40") {
			return refuse
		}
		return nil
	}
	must(t, d.SetHost(a("10.1.0.40"), NextHop{a("10.0.0.2"), rm2}))
	if _, err := r.loop.drain(context.Background()); !errors.Is(err, refuse) {
		t.Fatalf("drain: %v, want the refusal", err)
	}
	s = r.KernelState()
	route := s.Kinds[2]
	if s.InSync || route.Kind != "route" || route.Pending != 1 || route.Errors < 1 || route.Installed != 2 || route.Wanted != 3 {
		t.Errorf("with a refused route: %+v (route %+v), want out of sync, 1 pending, 2 of 3 installed", s, route)
	}
}
