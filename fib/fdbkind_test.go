package fib

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"
)

// countingKernel counts the Apply calls (batches) of a Kernel.
type countingKernel struct {
	Kernel
	mu      sync.Mutex
	applies []int
}

func (c *countingKernel) Apply(ctx context.Context, ops []Op) []error {
	c.mu.Lock()
	c.applies = append(c.applies, len(ops))
	c.mu.Unlock()
	return c.Kernel.Apply(ctx, ops)
}

// The L2 FDB as an engine kind keeps the L2 rules: entries of an earlier
// run stay until markSynced, a MAC is one replace (self and master), a
// flood VTEP an append, a sticky MAC made movable is unpinned, a MAC that
// local learning moved off the VXLAN port is written again once
// invalidated, and a burst goes to the kernel in batches.
func TestFDBKind(t *testing.T) {
	fk := newFakeKernel("vxlan100")
	ck := &countingKernel{Kernel: fk}
	dev := vniDevs(100)
	fk.putMAC(dev.VXLAN, macN(1), ip("10.0.0.9"), true) // an earlier run's
	fk.putFlood(dev.VXLAN, ip("10.0.0.9"))
	tb := newTable[Key, Installed]("fdb", fdbOps{k: ck, devs: func() []VNIDevices { return []VNIDevices{dev} }}, engineConfig{Batch: 1000})
	l := newLoop(tb)
	put := func(e FDBEntry) { tb.set(e.Key(), fdbWant(e)) }
	put(FDBEntry{VNI: 100, Dev: dev.VXLAN, MAC: macN(1), VTEP: ip("10.0.0.2")})
	put(FDBEntry{VNI: 100, Dev: dev.VXLAN, MAC: macN(2), VTEP: ip("10.0.0.2"), Sticky: true})
	put(FDBEntry{VNI: 100, Dev: dev.VXLAN, VTEP: ip("10.0.0.2")})
	if n := drainT(t, l); n != 3 {
		t.Errorf("first pass: %d changes, want 3", n)
	}
	st := fk.state()
	for _, w := range []string{
		macN(1).String() + " dev vxlan100 dst 10.0.0.2 self extern_learn",
		macN(2).String() + " dev vxlan100 master extern_learn",
		"00:00:00:00:00:00 dev vxlan100 dst 10.0.0.9 self", // kept until markSynced
		"00:00:00:00:00:00 dev vxlan100 dst 10.0.0.2 self",
	} {
		if !strings.Contains(st, w) {
			t.Errorf("kernel lacks %q:\n%s", w, st)
		}
	}
	tb.markSynced()
	drainT(t, l)
	if st := fk.state(); strings.Contains(st, "10.0.0.9") {
		t.Errorf("earlier run's flood VTEP kept after markSynced:\n%s", st)
	}

	// Sticky to movable: the replace unpins the bridge entry.
	put(FDBEntry{VNI: 100, Dev: dev.VXLAN, MAC: macN(2), VTEP: ip("10.0.0.2")})
	drainT(t, l)
	if a := fk.applied(); !strings.Contains(a[len(a)-1], "master dynamic") {
		t.Errorf("sticky MAC made movable without unpinning: %q", a[len(a)-1])
	}

	// Local learning moves MAC 1's bridge entry, no event: invalidate.
	fk.learnLocal(macN(1), "eth1")
	if n := drainT(t, l); n != 0 {
		t.Fatalf("wrote %d before the invalidate", n)
	}
	tb.invalidate(MACKey(100, macN(1)))
	if n := drainT(t, l); n != 1 {
		t.Errorf("invalidate: %d changes, want 1", n)
	}
	if st := fk.state(); !strings.Contains(st, macN(1).String()+" dev vxlan100 master extern_learn") {
		t.Errorf("MAC 1 not back on the VXLAN port:\n%s", st)
	}

	// A burst in batches, one Apply each; then withdrawn.
	ck.mu.Lock()
	ck.applies = nil
	ck.mu.Unlock()
	for i := 10; i < 2510; i++ {
		put(FDBEntry{VNI: 100, Dev: dev.VXLAN, MAC: macN(i), VTEP: ip("10.0.0.3")})
	}
	if n := drainT(t, l); n != 2500 {
		t.Errorf("burst: %d changes", n)
	}
	ck.mu.Lock()
	if len(ck.applies) != 3 || ck.applies[0] != 1000 {
		t.Errorf("burst applies %v, want 3 batches of up to 1000", ck.applies)
	}
	ck.mu.Unlock()
	for i := 10; i < 2510; i++ {
		tb.del(MACKey(100, macN(i)))
	}
	if n := drainT(t, l); n != 2500 {
		t.Errorf("withdraw: %d changes", n)
	}
	if st := fk.state(); strings.Contains(st, "10.0.0.3") {
		t.Error("withdrawn MACs left in the kernel")
	}

	// A restart finds what this one wrote and changes nothing.
	tb2 := newTable[Key, Installed]("fdb", fdbOps{k: fk, devs: func() []VNIDevices { return []VNIDevices{dev} }}, engineConfig{})
	tb.mu.Lock()
	want := maps.Clone(tb.want)
	tb.mu.Unlock()
	tb2.replace(want)
	l2 := newLoop(tb2)
	if n := drainT(t, l2); n != 0 {
		t.Errorf("restart rewrote %d entries that were right", n)
	}
}

// Kernel events reach the FDB kind half by half (KernelEvent), folded on
// the record: fib's own writes coming back cost nothing, a bridge entry
// deleted by hand is written again (a repair), a flood VTEP added by hand
// is deleted once synced, and the delete of a remote fib does not know
// changes nothing. With OwnFound, a MAC an earlier run left that this
// run wanted is this run's: withdrawn before markSynced, it goes.
func TestFDBKindEvents(t *testing.T) {
	fk := newFakeKernel("vxlan100")
	dev := vniDevs(100)
	fk.putMAC(dev.VXLAN, macN(5), ip("10.0.0.2"), true) // an earlier run's, still right
	tb := newTable[Key, Installed]("fdb", fdbOps{k: fk, devs: func() []VNIDevices { return []VNIDevices{dev} }},
		engineConfig{OwnFound: true})
	l := newLoop(tb)
	event := func(ev KernelEvent) {
		t.Helper()
		k, fold, ok := fdbEvent(ev, dev.VXLAN)
		if !ok {
			t.Fatalf("event %+v ignored", ev)
		}
		tb.observedFold(k, fold)
	}
	e1 := FDBEntry{VNI: 100, Dev: dev.VXLAN, MAC: macN(1), VTEP: ip("10.0.0.2")}
	tb.set(e1.Key(), fdbWant(e1))
	e5 := FDBEntry{VNI: 100, Dev: dev.VXLAN, MAC: macN(5), VTEP: ip("10.0.0.2")}
	tb.set(e5.Key(), fdbWant(e5))
	if n := drainT(t, l); n != 1 {
		t.Fatalf("first pass: %d changes, want 1 (MAC 5 was right)", n)
	}

	// The echoes of fib's write.
	event(KernelEvent{VNI: 100, MAC: macN(1), VTEP: ip("10.0.0.2"), ExternLearn: true})
	event(KernelEvent{VNI: 100, MAC: macN(1), Bridge: true, ExternLearn: true})
	if tb.pending() {
		t.Error("fib's own write's echo made work")
	}
	// The delete of a remote fib does not know.
	event(KernelEvent{VNI: 100, MAC: macN(1), VTEP: ip("10.9.9.9"), Deleted: true})
	if tb.pending() {
		t.Error("deleting an unknown remote made work")
	}
	// The bridge entry deleted by hand.
	fk.mu.Lock()
	delete(fk.bridge, macN(1))
	fk.mu.Unlock()
	event(KernelEvent{VNI: 100, MAC: macN(1), Bridge: true, Deleted: true})
	if n := drainT(t, l); n != 1 {
		t.Errorf("repair: %d changes, want 1", n)
	}
	if !strings.Contains(fk.state(), macN(1).String()+" dev vxlan100 master extern_learn") {
		t.Errorf("bridge entry not repaired:\n%s", fk.state())
	}
	if s := tb.snapshotStats(); s.Repairs != 1 {
		t.Errorf("repairs %d, want 1", s.Repairs)
	}

	// MAC 5, adopted, is withdrawn before markSynced: deleted.
	tb.del(e5.Key())
	if n := drainT(t, l); n != 1 || strings.Contains(fk.state(), macN(5).String()) {
		t.Errorf("adopted MAC withdrawn: %d changes, kernel:\n%s", n, fk.state())
	}

	// A flood VTEP added by hand: kept before markSynced, deleted after.
	fk.putFlood(dev.VXLAN, ip("10.0.0.7"))
	event(KernelEvent{VNI: 100, VTEP: ip("10.0.0.7")})
	if n := drainT(t, l); n != 0 {
		t.Errorf("foreign flood VTEP deleted before markSynced (%d)", n)
	}
	tb.markSynced()
	drainT(t, l)
	if strings.Contains(fk.state(), "10.0.0.7") {
		t.Errorf("foreign flood VTEP kept after markSynced:\n%s", fk.state())
	}

	// Events to ignore.
	for _, ev := range []KernelEvent{
		{VNI: 100, Bridge: true, VTEP: ip("10.0.0.7")}, // flood, bridge side
		{VNI: 100}, // flood without a VTEP
		{VNI: 100, MAC: mac(t, "01:00:5e:00:00:01")}, // multicast
	} {
		if _, _, ok := fdbEvent(ev, dev.VXLAN); ok {
			t.Errorf("event %+v not ignored", ev)
		}
	}
}
