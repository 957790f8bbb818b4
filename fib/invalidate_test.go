package fib

import (
	"strings"
	"testing"

	"github.com/evpnd/evpnd/speaker/evpn"
)

func TestDesiredInvalidate(t *testing.T) {
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, macN(1), ip("10.0.0.2")))
	d.takeDirty(100, nil)
	<-d.wakeC()

	d.Invalidate(100, mac(t, "01:00:5e:00:00:01")) // multicast: ignored
	d.Invalidate(100, evpn.MAC{})                  // zero: ignored
	if n := d.Dirty(); n != 0 {
		t.Fatalf("invalidating non-unicast MACs left %d dirty keys", n)
	}

	d.Invalidate(100, macN(1))
	d.Invalidate(100, macN(1))
	d.Invalidate(100, macN(2)) // not wanted: still queued, the reconciler may own an entry
	select {
	case <-d.wakeC():
	default:
		t.Fatal("Invalidate did not wake the reconciler")
	}
	got := map[Key]want{}
	for _, w := range d.takeDirty(100, nil) {
		got[w.Key] = w
	}
	if w := got[MACKey(100, macN(1))]; len(got) != 2 || !w.Recheck || !w.OK || w.Entry.VTEP != ip("10.0.0.2") {
		t.Errorf("taken %+v, want mac 1 wanted at 10.0.0.2 with Recheck, and mac 2", got)
	}
	if w := got[MACKey(100, macN(2))]; !w.Recheck || w.OK {
		t.Errorf("mac 2: %+v, want Recheck and not wanted", w)
	}
	if len(d.recheck) != 0 {
		t.Errorf("recheck set keeps %d keys after takeDirty", len(d.recheck))
	}
	// A later change of the same key is an ordinary one.
	must(t, d.SetMAC(100, macN(1), ip("10.0.0.3")))
	if ws := d.takeDirty(100, nil); len(ws) != 1 || ws[0].Recheck {
		t.Errorf("after SetMAC: %+v, want one key without Recheck", ws)
	}
}

func TestPlanKeySuspect(t *testing.T) {
	e := FDBEntry{VNI: 100, Dev: "vxlan100", MAC: macN(1), VTEP: ip("10.0.0.2")}
	have := Installed{Dev: "vxlan100", VTEP: ip("10.0.0.2"), Self: true, Master: true}
	wanted := want{Key: e.Key(), Entry: e, OK: true}
	if _, do := planKey(wanted, have, true, false); do {
		t.Error("matching entry rewritten")
	}
	sus := have
	sus.suspect = true
	if op, do := planKey(wanted, sus, true, false); !do || op.Kind != OpSet || op.Entry != e {
		t.Errorf("suspect entry: %v %v, want a write of %v", op, do, e)
	}
	// Not wanted: the same delete as without suspicion, stale entries only
	// when pruning.
	if op, do := planKey(want{Key: e.Key()}, sus, true, false); !do || op.String() !=
		"bridge fdb del 02:00:00:00:00:01 dev vxlan100 master; bridge fdb del 02:00:00:00:00:01 dev vxlan100 dst 10.0.0.2 self" {
		t.Errorf("suspect, not wanted: %v %v", op, do)
	}
	sus.Stale = true
	if _, do := planKey(want{Key: e.Key()}, sus, true, false); do {
		t.Error("suspect stale entry deleted before MarkSynced")
	}
	if _, do := planKey(want{Key: e.Key()}, sus, true, true); !do {
		t.Error("suspect stale entry kept when pruning")
	}
}

// TestReconcilerInvalidate moves a remote MAC's bridge entry to an access
// port, as local learning does, and checks that the cache hides it until
// Invalidate, which makes the reconciler write it again.
func TestReconcilerInvalidate(t *testing.T) {
	m, busy := macN(1), macN(0xbb)
	k := newFakeKernel("vxlan100")
	g := &gatedKernel{Kernel: k}
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, m, ip("10.0.0.2")))
	r := NewReconciler(d, g, quietLogger(), fastRetry)
	runReconciler(t, r)
	waitFor(t, "first write", func() bool { return settled(d, r) && r.Stats().Writes == 1 })
	remote := "02:00:00:00:00:01 dev vxlan100 dst 10.0.0.2 self extern_learn\n" +
		"02:00:00:00:00:01 dev vxlan100 master extern_learn"
	local := "02:00:00:00:00:01 dev acc0 master\n" +
		"02:00:00:00:00:01 dev vxlan100 dst 10.0.0.2 self extern_learn"
	macState := func() string {
		var out []string
		for _, l := range strings.Split(k.state(), "\n") {
			if strings.HasPrefix(l, m.String()) {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}

	// The bug: a DeleteMAC and SetMAC with the same VTEP that meet while
	// the reconciler is busy leave the key dirty with an unchanged value,
	// the cache matches, and nothing is written.
	k.learnLocal(m, "acc0")
	whileBusy(t, g, d, busy, func() {
		d.DeleteMAC(100, m)
		must(t, d.SetMAC(100, m, ip("10.0.0.2")))
	})
	waitFor(t, "coalesced delete and set", func() bool { return settled(d, r) && r.Stats().Writes == 2 })
	if s := r.Stats(); s.Skipped != 1 {
		t.Fatalf("skipped %d, want 1: the coalesced key did not reach the cache check", s.Skipped)
	}
	if got := macState(); got != local {
		t.Fatalf("without Invalidate:\n%s\nwant the local entry kept (the stale cache):\n%s", got, local)
	}

	d.Invalidate(100, m)
	waitFor(t, "rewrite after Invalidate", func() bool { return settled(d, r) && r.Stats().Writes == 3 })
	if got := macState(); got != remote {
		t.Errorf("after Invalidate:\n%s\nwant:\n%s", got, remote)
	}

	// A remote that stays selected (sticky, frozen duplicate): no change
	// of the desired state, only Invalidate.
	k.learnLocal(m, "acc0")
	d.Invalidate(100, m)
	waitFor(t, "rewrite of an unchanged MAC", func() bool { return settled(d, r) && r.Stats().Writes == 4 })
	if got := macState(); got != remote {
		t.Errorf("after Invalidate of an unchanged MAC:\n%s\nwant:\n%s", got, remote)
	}

	// A rewrite that fails stays a rewrite on retry.
	k.learnLocal(m, "acc0")
	k.mu.Lock()
	k.failSet[m] = 2
	k.mu.Unlock()
	d.Invalidate(100, m)
	waitFor(t, "rewrite after failures", func() bool { return settled(d, r) && r.Stats().Writes == 5 })
	if s := r.Stats(); s.Errors != 2 {
		t.Errorf("errors %d, want 2", s.Errors)
	}
	if got := macState(); got != remote {
		t.Errorf("after a retried rewrite:\n%s\nwant:\n%s", got, remote)
	}

	// Not wanted: the VXLAN entry goes, the local bridge entry stays.
	k.learnLocal(m, "acc0")
	d.DeleteMAC(100, m)
	d.Invalidate(100, m)
	waitFor(t, "delete", func() bool { return settled(d, r) && r.Stats().Deletes == 1 })
	if got, want := macState(), "02:00:00:00:00:01 dev acc0 master"; got != want {
		t.Errorf("after DeleteMAC and Invalidate:\n%s\nwant:\n%s", got, want)
	}
	if s := r.Stats(); s.Writes != 5 || s.Installed != 1 {
		t.Errorf("writes %d installed %d, want 5 and 1 (the busy MAC)", s.Writes, s.Installed)
	}
}

// TestReconcilerInvalidateStale checks that Invalidate does not change
// restart semantics: an unwanted entry of an earlier run stays until
// MarkSynced; a wanted one is written again.
func TestReconcilerInvalidateStale(t *testing.T) {
	m1, m2 := macN(1), macN(2)
	k := newFakeKernel("vxlan100")
	k.putMAC("vxlan100", m1, ip("10.0.0.2"), true) // wanted again
	k.putMAC("vxlan100", m2, ip("10.0.0.2"), true) // not wanted
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, m1, ip("10.0.0.2")))
	r := NewReconciler(d, k, quietLogger(), fastRetry)
	runReconciler(t, r)
	waitFor(t, "first sync", func() bool { return settled(d, r) })
	if s := r.Stats(); s.Writes != 0 || s.Skipped != 1 || s.Stale != 1 {
		t.Fatalf("first sync: %+v, want 0 writes, 1 skipped, 1 stale", s)
	}

	k.learnLocal(m1, "acc0")
	k.learnLocal(m2, "acc1")
	d.Invalidate(100, m1)
	d.Invalidate(100, m2)
	waitFor(t, "invalidated", func() bool { return settled(d, r) && r.Stats().Writes == 1 })
	want := strings.Join([]string{
		"02:00:00:00:00:01 dev vxlan100 dst 10.0.0.2 self extern_learn",
		"02:00:00:00:00:01 dev vxlan100 master extern_learn",
		"02:00:00:00:00:02 dev acc1 master",
		"02:00:00:00:00:02 dev vxlan100 dst 10.0.0.2 self extern_learn",
	}, "\n")
	if got := k.state(); got != want {
		t.Errorf("before MarkSynced:\n%s\nwant:\n%s", got, want)
	}
	if s := r.Stats(); s.Deletes != 0 || s.Stale != 1 {
		t.Errorf("before MarkSynced: deletes %d stale %d, want 0 and 1", s.Deletes, s.Stale)
	}

	r.MarkSynced()
	waitFor(t, "prune", func() bool { return r.Synced() && settled(d, r) })
	want = strings.Join([]string{
		"02:00:00:00:00:01 dev vxlan100 dst 10.0.0.2 self extern_learn",
		"02:00:00:00:00:01 dev vxlan100 master extern_learn",
		"02:00:00:00:00:02 dev acc1 master",
	}, "\n")
	if got := k.state(); got != want {
		t.Errorf("after MarkSynced:\n%s\nwant:\n%s", got, want)
	}
	if s := r.Stats(); s.Deletes != 1 || s.Stale != 0 {
		t.Errorf("after MarkSynced: deletes %d stale %d, want 1 and 0", s.Deletes, s.Stale)
	}
}

// TestReconcilerResyncKeepsLocalMove: a resync finds a wanted remote MAC
// learned on an access port (a VM arriving; the learner has not reported
// it yet) and leaves it there; Invalidate, the learner's report, decides.
func TestReconcilerResyncKeepsLocalMove(t *testing.T) {
	m := macN(1)
	k := newFakeKernel("vxlan100")
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, m, ip("10.0.0.2")))
	r := NewReconciler(d, k, quietLogger(), fastRetry)
	runReconciler(t, r)
	waitFor(t, "first write", func() bool { return settled(d, r) && r.Stats().Writes == 1 })
	k.learnLocal(m, "acc0")
	r.Resync()
	waitFor(t, "resync", func() bool { return settled(d, r) && r.Stats().Resyncs == 2 })
	if s := r.Stats(); s.Writes != 1 {
		t.Errorf("writes %d, want 1: the resync wrote over a local move", s.Writes)
	}
	port := func() string { k.mu.Lock(); defer k.mu.Unlock(); return k.bridge[m].port }
	if p := port(); p != "acc0" {
		t.Errorf("bridge entry on %q, want acc0", p)
	}
	d.Invalidate(100, m)
	waitFor(t, "rewrite after Invalidate", func() bool { return settled(d, r) && r.Stats().Writes == 2 })
	if p := port(); p != "vxlan100" {
		t.Errorf("bridge entry on %q after Invalidate, want vxlan100", p)
	}
}
