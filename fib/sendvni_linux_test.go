package fib

import (
	"context"
	"strings"
	"testing"
)

// TestKernelDownstreamVNI installs a MAC whose remote expects another VNI
// (a downstream-assigned VNI): the VXLAN entry carries it ("vni 5100" in
// bridge fdb show), a restart reads it back as installed, a move to the
// local VNI replaces it, and a delete removes it.
func TestKernelDownstreamVNI(t *testing.T) {
	l := newLab(t, "fibv", 100)
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	m1, m2 := mac(t, "02:00:00:00:00:21"), mac(t, "02:00:00:00:00:22")
	must(t, d.SetMACVNI(100, m1, ip("10.0.0.2"), 5100))
	must(t, d.SetMACVNI(100, m2, ip("10.0.0.2"), 5100))
	k := l.kernel(t)
	r := NewReconciler(d, k, testLogger(t), Config{})
	stop := runReconciler(t, r)
	waitFor(t, "writes", func() bool { return settled(d, r) && r.Stats().Writes == 2 })
	lines := l.fdbShow(t, "vxlan100")
	for _, m := range []string{m1.String(), m2.String()} {
		if want := m + " dst 10.0.0.2 vni 5100 self extern_learn permanent"; !hasLine(lines, want) {
			t.Fatalf("bridge fdb show lacks %q; have:\n%s", want, strings.Join(lines, "\n"))
		}
		if want := m + " extern_learn master br100"; !hasLine(lines, want) {
			t.Fatalf("bridge fdb show lacks %q; have:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	// fib's record of its write carries the VNI: looking at the key again
	// writes nothing.
	d.markDirty(MACKey(100, m1))
	waitFor(t, "re-check", func() bool { return settled(d, r) })
	if s := r.Stats(); s.Writes != 2 {
		t.Fatalf("a dirty downstream-VNI MAC was written again: %d writes, want 2", s.Writes)
	}
	stop()

	// A new reconciler reads the entries back and finds nothing to write.
	r2 := NewReconciler(d, k, testLogger(t), Config{})
	r2.MarkSynced()
	runReconciler(t, r2)
	waitFor(t, "second run settles", func() bool { return settled(d, r2) && r2.Stats().Resyncs >= 1 })
	if s := r2.Stats(); s.Writes != 0 || s.Deletes != 0 {
		t.Fatalf("restart rewrote downstream-VNI entries: %+v", s)
	}
	dump, err := k.Dump(context.Background(), d.VNIs())
	must(t, err)
	if drift := Diff(d.Snapshot(), dump); len(drift) != 0 {
		t.Fatalf("drift after install: %v", drift)
	}

	// Back to the local VNI: one replace, the VNI gone.
	must(t, d.SetMAC(100, m1, ip("10.0.0.2")))
	// Deleted: the VXLAN driver matches on the VNI too.
	d.DeleteMAC(100, m2)
	waitFor(t, "move and delete", func() bool { return settled(d, r2) && r2.Stats().Writes == 1 && r2.Stats().Deletes == 1 })
	lines = l.fdbShow(t, "vxlan100")
	if want := m1.String() + " dst 10.0.0.2 self extern_learn permanent"; !hasLine(lines, want) {
		t.Errorf("after the move, bridge fdb show lacks %q; have:\n%s", want, strings.Join(lines, "\n"))
	}
	if got := linesFor(lines, m2.String()); len(got) != 0 {
		t.Errorf("deleted downstream-VNI MAC still present: %q", got)
	}
}
