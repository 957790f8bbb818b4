package fib

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func driftLines(ds []Drift) string {
	var l []string
	for _, d := range ds {
		l = append(l, d.String())
	}
	return strings.Join(l, "\n")
}

// TestCheck: a check of a synced reconciler is clean; changes behind its
// back are reported; keys waiting for a retry are counted in flight, not
// reported.
func TestCheck(t *testing.T) {
	k := newFakeKernel("vxlan100")
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, macN(1), ip("10.0.0.2")))
	must(t, d.SetMAC(100, macN(2), ip("10.0.0.2")))
	must(t, d.AddFlood(100, ip("10.0.0.2")))
	r := NewReconciler(d, k, quietLogger(), Config{MinBackoff: time.Hour, MaxBackoff: time.Hour})
	runReconciler(t, r)
	r.MarkSynced()
	waitFor(t, "sync", func() bool { return r.Synced() && settled(d, r) })

	res, err := r.Check(context.Background(), 0)
	must(t, err)
	if len(res.Drifts) != 0 || res.InFlight != 0 || res.CheckedMACs != 2 || res.CheckedFloods != 1 || !res.Synced {
		t.Fatalf("clean check: %+v", res)
	}

	// Behind the reconciler's back: MAC 1 gone, a stray MAC 9.
	k.mu.Lock()
	delete(k.vxlan, devMAC{"vxlan100", macN(1)})
	delete(k.bridge, macN(1))
	k.mu.Unlock()
	k.putMAC("vxlan100", macN(9), ip("10.9.9.9"), false)
	// MAC 3 fails to be written and waits an hour for its retry.
	k.mu.Lock()
	k.failSet[macN(3)] = 1
	k.mu.Unlock()
	must(t, d.SetMAC(100, macN(3), ip("10.0.0.3")))
	waitFor(t, "failed write", func() bool { return r.Stats().Pending == 1 })

	res, err = r.Check(context.Background(), 0)
	must(t, err)
	want := "vni 100 mac 02:00:00:00:00:01 missing on vxlan100 want 10.0.0.2\n" +
		"vni 100 mac 02:00:00:00:00:09 extra on vxlan100 have 10.9.9.9"
	if got := driftLines(res.Drifts); got != want || res.InFlight != 1 || res.CheckedMACs != 3 {
		t.Errorf("check:\n%s\nin flight %d, checked %d MACs; want\n%s\nwith 1 in flight (MAC 3) of 3", got, res.InFlight, res.CheckedMACs, want)
	}

	res, err = r.Check(context.Background(), 100)
	must(t, err)
	if len(res.Drifts) != 2 {
		t.Errorf("check of VNI 100: %d drifts, want 2", len(res.Drifts))
	}
	if _, err := r.Check(context.Background(), 200); err == nil || !strings.Contains(err.Error(), "not a managed L2VNI") {
		t.Errorf("check of an unmanaged VNI: %v", err)
	}
}

// TestCheckInFlight: without a running reconciler, dirty keys and
// reported kernel changes are in flight.
func TestCheckInFlight(t *testing.T) {
	k := newFakeKernel("vxlan100")
	k.putMAC("vxlan100", macN(9), ip("10.9.9.9"), false)
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, macN(1), ip("10.0.0.2"))) // dirty
	must(t, d.SetMAC(200, macN(2), ip("10.0.0.2"))) // VNI without devices: not checked
	r := NewReconciler(d, k, quietLogger(), Config{})

	res, err := r.Check(context.Background(), 0)
	must(t, err)
	if got := driftLines(res.Drifts); got != "vni 100 mac 02:00:00:00:00:09 extra on vxlan100 have 10.9.9.9" ||
		res.InFlight != 1 || res.CheckedMACs != 1 || res.Synced {
		t.Errorf("check: %q, %+v; want only the extra MAC 9, MAC 1 in flight", got, res)
	}
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(9), VTEP: ip("10.9.9.9")})
	res, err = r.Check(context.Background(), 0)
	must(t, err)
	if len(res.Drifts) != 0 || res.InFlight != 2 {
		t.Errorf("after KernelChanged: %+v, want both in flight", res)
	}

	// A missing device is reported once, never in flight.
	must(t, d.SetVNI(vniDevs(300)))
	must(t, d.SetMAC(300, macN(3), ip("10.0.0.2")))
	res, err = r.Check(context.Background(), 300)
	must(t, err)
	if got := driftLines(res.Drifts); got != "vni 300 device missing on vxlan300" {
		t.Errorf("check of VNI 300: %q", got)
	}

	k.mu.Lock()
	k.dumpErr = 1
	k.mu.Unlock()
	if _, err := r.Check(context.Background(), 0); !errors.Is(err, errFake) {
		t.Errorf("failing dump: %v", err)
	}
}

// recorder collects the observer hooks' events.
type recorder struct {
	mu      sync.Mutex
	applies []ApplyEvent
	passes  []PassEvent
}

func (c *recorder) apply(e ApplyEvent) { c.mu.Lock(); c.applies = append(c.applies, e); c.mu.Unlock() }
func (c *recorder) pass(e PassEvent)   { c.mu.Lock(); c.passes = append(c.passes, e); c.mu.Unlock() }

func TestObserverHooks(t *testing.T) {
	k := newFakeKernel("vxlan100")
	k.failSet[macN(2)] = 1
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, macN(1), ip("10.0.0.2")))
	must(t, d.SetMAC(100, macN(2), ip("10.0.0.3")))
	var rec recorder
	cfg := fastRetry
	cfg.OnApply, cfg.OnPass = rec.apply, rec.pass
	r := NewReconciler(d, k, quietLogger(), cfg)
	runReconciler(t, r)
	waitFor(t, "writes", func() bool { return settled(d, r) && r.Stats().Writes == 2 })
	d.DeleteMAC(100, macN(1))
	waitFor(t, "delete", func() bool { return settled(d, r) && r.Stats().Deletes == 1 })

	rec.mu.Lock()
	defer rec.mu.Unlock()
	var ok, failed, deletes int
	for _, e := range rec.applies {
		switch {
		case e.Err != nil:
			failed++
			if e.Key != MACKey(100, macN(2)) || e.VTEP != ip("10.0.0.3") || !errors.Is(e.Err, errFake) {
				t.Errorf("failed op: %+v", e)
			}
		case e.Delete:
			deletes++
			if e.Key != MACKey(100, macN(1)) || e.VTEP != ip("10.0.0.2") {
				t.Errorf("delete: %+v", e)
			}
		default:
			ok++
		}
		if e.Time.IsZero() {
			t.Errorf("op without time: %+v", e)
		}
	}
	if ok != 2 || failed != 1 || deletes != 1 {
		t.Errorf("OnApply: %d writes, %d failures, %d deletes; want 2, 1, 1: %+v", ok, failed, deletes, rec.applies)
	}
	var ops, errs int
	for _, p := range rec.passes {
		ops, errs = ops+p.Ops, errs+p.Errors
		if p.Duration <= 0 {
			t.Errorf("pass without duration: %+v", p)
		}
	}
	if ops != len(rec.applies) || errs != 1 {
		t.Errorf("OnPass: %d ops, %d errors over %d passes; want %d and 1", ops, errs, len(rec.passes), len(rec.applies))
	}
}
