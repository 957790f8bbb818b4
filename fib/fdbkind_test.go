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
