package fib

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evpnd/evpnd/vtep"
	vnetns "github.com/vishvananda/netns"
)

// gatedLearner runs a vtep.Learner on the lab's namespace and passes its
// foreign VXLAN changes to the reconciler as the daemon does, once the
// gate is open; before, it queues them.
type gatedLearner struct {
	mu     sync.Mutex
	r      *Reconciler
	open   bool
	queued []vtep.VXLANChange
	seen   []vtep.VXLANChange
}

func (g *gatedLearner) change(c vtep.VXLANChange) {
	g.mu.Lock()
	g.seen = append(g.seen, c)
	if !g.open {
		g.queued = append(g.queued, c)
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	g.r.KernelChanged(KernelEvent{VNI: c.VNI, MAC: c.MAC, VTEP: c.VTEP, Bridge: c.Bridge, Deleted: c.Deleted, ExternLearn: c.ExternLearn})
}

// release opens the gate and delivers what was queued.
func (g *gatedLearner) release() {
	g.mu.Lock()
	q := g.queued
	g.open, g.queued = true, nil
	g.mu.Unlock()
	for _, c := range q {
		g.r.KernelChanged(KernelEvent{VNI: c.VNI, MAC: c.MAC, VTEP: c.VTEP, Bridge: c.Bridge, Deleted: c.Deleted, ExternLearn: c.ExternLearn})
	}
}

func (g *gatedLearner) saw(pred func(vtep.VXLANChange) bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.seen {
		if pred(c) {
			return true
		}
	}
	return false
}

func startLearner(t *testing.T, l *labNS, g *gatedLearner) {
	t.Helper()
	nsh, err := vnetns.GetFromPath(l.ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nsh.Close() }) // after Run has returned (cleanups run last-in first-out)
	learner := vtep.NewLearner(nsh, []vtep.L2VNI{{VNI: 100, VXLAN: "vxlan100", Bridge: "br100"}}, testLogger(t))
	learner.OnForeignVXLAN(g.change)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- learner.Run(ctx, func(vtep.MACEvent) {}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("learner: %v", err)
		}
	})
	// Subscribed once a change made now is seen.
	marker := "02:00:00:00:00:ee"
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		l.run(t, []string{"bridge", "fdb", "replace", marker, "dev", "vxlan100", "dst", fmt.Sprintf("10.0.1.%d", 1+i%200), "self", "static"})
		seen := func() bool { return g.saw(func(c vtep.VXLANChange) bool { return c.MAC.String() == marker }) }
		for end := time.Now().Add(50 * time.Millisecond); !seen() && time.Now().Before(end); {
			time.Sleep(2 * time.Millisecond)
		}
		if seen() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the learner reported no change of vxlan100")
		}
	}
}

// waitClean polls Check until it reports neither drift nor repairs in
// flight.
func waitClean(t *testing.T, r *Reconciler, what string) CheckResult {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := r.Check(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Drifts) == 0 && res.InFlight == 0 {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still drifting: %+v\n%s", what, res, driftLines(res.Drifts))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestKernelDriftRepair installs MACs and a flood entry, changes the
// kernel behind the reconciler's back, and checks that Check reports
// exactly that, and that the learner's foreign-change reports make the
// reconciler repair it within a pass, without repairing its own repairs.
func TestKernelDriftRepair(t *testing.T) {
	const n = 20
	l := newLab(t, "fibk", 100)
	g := &gatedLearner{}
	startLearner(t, l, g) // leaves a stray hand-made entry (the marker) on vxlan100

	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	vtepOf := func(i int) string { return fmt.Sprintf("10.0.0.%d", 2+i%3) }
	for i := range n {
		must(t, d.SetMAC(100, macN(0x100+i), ip(vtepOf(i))))
	}
	must(t, d.AddFlood(100, ip("10.0.0.2")))
	gk := &gatedKernel{Kernel: l.kernel(t)}
	r := NewReconciler(d, gk, testLogger(t), Config{})
	g.r = r
	runReconciler(t, r)
	waitFor(t, "install", func() bool { return settled(d, r) && r.Stats().Writes == n+1 })
	if res, err := r.Check(context.Background(), 0); err != nil || len(res.Drifts) != 1 || res.Drifts[0].Kind != DriftExtra {
		t.Fatalf("before MarkSynced: %+v, %v; want the marker as the one Extra drift", res, err)
	}
	// After MarkSynced entries nobody wants go, hand-made ones too.
	r.MarkSynced()
	waitFor(t, "sync", func() bool { return r.Synced() && settled(d, r) })
	res := waitClean(t, r, "after sync")
	if res.CheckedMACs != n || res.CheckedFloods != 1 || !res.Synced {
		t.Errorf("clean check: %+v", res)
	}
	if lines := linesFor(l.fdbShow(t, "vxlan100"), "02:00:00:00:00:ee"); len(lines) != 0 {
		t.Errorf("hand-made entry survived MarkSynced: %q", lines)
	}
	// Held back so far: the marker's changes, and its delete at sync. Drop
	// them once the delete has been seen: delivered late, one at a time,
	// the marker's older changes would cost a delete of nothing.
	waitFor(t, "the learner's report of the marker's delete", func() bool {
		return g.saw(func(c vtep.VXLANChange) bool { return c.MAC.String() == "02:00:00:00:00:ee" && c.Deleted })
	})
	g.mu.Lock()
	g.queued = nil
	g.mu.Unlock()

	// Behind the reconciler's back, the learner's reports held back: MAC
	// 5's entries deleted, a stray static entry added.
	m5, stray := macN(0x105), "02:00:00:00:00:99"
	base := r.Stats()
	l.run(t,
		[]string{"bridge", "fdb", "del", m5.String(), "dev", "vxlan100", "master"},
		[]string{"bridge", "fdb", "del", m5.String(), "dev", "vxlan100", "self"},
		[]string{"bridge", "fdb", "add", stray, "dev", "vxlan100", "dst", "10.9.9.9", "self", "static"},
	)
	waitFor(t, "the learner's report of the stray entry", func() bool {
		return g.saw(func(c vtep.VXLANChange) bool { return c.MAC.String() == stray })
	})
	res, err := r.Check(context.Background(), 0)
	must(t, err)
	want := fmt.Sprintf("vni 100 mac %s extra on vxlan100 have 10.9.9.9\nvni 100 mac %s missing on vxlan100 want %s", stray, m5, vtepOf(5))
	if got := driftLines(res.Drifts); got != want || res.InFlight != 0 {
		t.Fatalf("check after sabotage:\n%s\n(in flight %d)\nwant:\n%s", got, res.InFlight, want)
	}
	for i, cmd := range []string{
		fmt.Sprintf("bridge fdb del %s dev vxlan100 dst 10.9.9.9 self", stray),
		fmt.Sprintf("bridge fdb replace %s dev vxlan100 dst %s self master extern_learn", m5, vtepOf(5)),
	} {
		if res.Drifts[i].Detail != cmd {
			t.Errorf("drift %d detail %q, want %q", i, res.Drifts[i].Detail, cmd)
		}
	}

	// The reports reach the reconciler, all in one pass (it is held busy
	// with a write of an unrelated MAC meanwhile): both repaired.
	whileBusy(t, gk, d, macN(0x1ff), g.release)
	waitClean(t, r, "after the learner's reports")
	lines := l.fdbShow(t, "vxlan100")
	if len(linesFor(lines, m5.String())) != 2 || len(linesFor(lines, stray)) != 0 {
		t.Errorf("after repair:\n%s", strings.Join(lines, "\n"))
	}
	waitFor(t, "settle", func() bool { return settled(d, r) })
	if s := r.Stats(); s.Writes != base.Writes+2 || s.Deletes != base.Deletes+1 || s.Resyncs != base.Resyncs {
		t.Errorf("repair took %d writes, %d deletes, %d resyncs; want 2 (MAC 5 and the busy MAC), 1, 0",
			s.Writes-base.Writes, s.Deletes-base.Deletes, s.Resyncs-base.Resyncs)
	}

	// Live: a flood VTEP deleted, a MAC pointed elsewhere by hand, a
	// stray bridge entry. Then a sentinel change: once it is repaired,
	// every event the earlier repairs caused has been handled, so the
	// counts show that no repair triggered another.
	base = r.Stats()
	m7 := macN(0x107)
	l.run(t,
		[]string{"bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vxlan100", "dst", "10.0.0.2", "self"},
		[]string{"bridge", "fdb", "replace", m7.String(), "dev", "vxlan100", "dst", "10.0.0.77", "self"},
		[]string{"bridge", "fdb", "add", "02:00:00:00:00:98", "dev", "vxlan100", "master", "static"},
	)
	waitClean(t, r, "live repair")
	l.run(t, []string{"bridge", "fdb", "add", "02:00:00:00:00:97", "dev", "vxlan100", "dst", "10.9.9.7", "self", "static"})
	waitFor(t, "sentinel repaired", func() bool {
		return settled(d, r) && len(linesFor(l.fdbShow(t, "vxlan100"), "02:00:00:00:00:97")) == 0
	})
	waitClean(t, r, "after the sentinel")
	if s := r.Stats(); s.Writes != base.Writes+2 || s.Deletes != base.Deletes+2 || s.Errors != 0 {
		t.Errorf("live repairs took %d writes and %d deletes (errors %d); want 2 (flood, MAC 7) and 2 (bridge stray, sentinel)",
			s.Writes-base.Writes, s.Deletes-base.Deletes, s.Errors)
	}
	if got := linesFor(l.fdbShow(t, "vxlan100"), m7.String()); !hasLine(got, m7.String()+" dst "+vtepOf(7)+" self permanent") {
		t.Errorf("MAC 7 after repair: %q", got)
	}
}
