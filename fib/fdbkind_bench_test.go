package fib

import (
	"context"
	"net/netip"
	"testing"
)

// nullKernel holds the VXLAN devices of its VNIs and accepts every write:
// a benchmark of it measures the loop's own cost per key.
type nullKernel struct{}

func (nullKernel) Dump(_ context.Context, vnis []VNIDevices) ([]KernelEntry, error) {
	out := make([]KernelEntry, 0, len(vnis))
	for _, v := range vnis {
		out = append(out, KernelEntry{VNI: v.VNI, Dev: v.VXLAN, Device: true})
	}
	return out, nil
}

func (nullKernel) Apply(_ context.Context, ops []Op) []error { return make([]error, len(ops)) }

const benchLoopMACs = 20000

// BenchmarkLoopFDBReconciler and BenchmarkLoopFDBEngine move 20k MACs
// between two VTEPs per op, through the Reconciler's own loop and through
// the generic engine's FDB kind, over a kernel that costs nothing: the
// loops' overhead per key, which the L2 burst must not grow.
func BenchmarkLoopFDBReconciler(b *testing.B) {
	ctx := context.Background()
	d := NewDesired()
	dev := vniDevs(100)
	must(b, d.SetVNI(dev))
	r := NewReconciler(d, nullKernel{}, nil, Config{})
	_, devs := d.takeDevicesChanged()
	must(b, r.resync(ctx, devs))
	vteps := [2]netip.Addr{ip("10.0.0.2"), ip("10.0.0.3")}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for m := range benchLoopMACs {
			must(b, d.SetMAC(100, macN(m), vteps[i%2]))
		}
		r.drain(ctx)
	}
	b.StopTimer()
	if s := r.loopStats; s.Writes != uint64(b.N*benchLoopMACs) {
		b.Fatalf("writes %d, want %d", s.Writes, b.N*benchLoopMACs)
	}
}

func BenchmarkLoopFDBEngine(b *testing.B) {
	ctx := context.Background()
	dev := vniDevs(100)
	tb := newTable[Key, Installed]("fdb", fdbOps{k: nullKernel{}, devs: func() []VNIDevices { return []VNIDevices{dev} }, ops: new([]Op)},
		engineConfig{Batch: 4096, EchoHold: echoHold, EchoWindow: echoWindow})
	l := newLoop(tb)
	if _, err := l.drain(ctx); err != nil {
		b.Fatal(err)
	}
	vteps := [2]netip.Addr{ip("10.0.0.2"), ip("10.0.0.3")}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for m := range benchLoopMACs {
			mac := macN(m)
			tb.set(MACKey(100, mac), fdbWant(FDBEntry{VNI: 100, Dev: dev.VXLAN, MAC: mac, VTEP: vteps[i%2]}))
		}
		if _, err := l.drain(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if s := tb.snapshotStats(); s.Writes != b.N*benchLoopMACs {
		b.Fatalf("writes %d, want %d", s.Writes, b.N*benchLoopMACs)
	}
}
