package fib

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// BenchmarkReconcile100k installs 100k remote MACs over 10 VTEPs (plus the
// 10 flood entries) into a fresh namespace through Desired and Reconciler,
// and, in the same run and into another fresh namespace, the floor: a plain
// loop of vishvananda/netlink NeighSet calls sending the same zebra-shaped
// message per MAC, one request and ack each. It reports our entries/s and
// the ratio of our time to the floor's.
//
//	go test -run '^$' -bench Reconcile100k -benchtime 3x ./fib
func BenchmarkReconcile100k(b *testing.B) {
	const macs, vteps = 100_000, 10
	vtep := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 1, byte(1 + i%vteps)}) }

	var ours, floor, fill time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		took, filled := reconcileInto(b, macs, vteps)
		ours += took
		fill += filled

		// Floor.
		f := newLab(b, "fibf", 100)
		link, err := f.h.LinkByName("vxlan100")
		if err != nil {
			b.Fatal(err)
		}
		neigh := netlink.Neigh{
			LinkIndex: link.Attrs().Index,
			Family:    unix.AF_BRIDGE,
			State:     unix.NUD_NOARP | unix.NUD_PERMANENT,
			Flags:     netlink.NTF_SELF | netlink.NTF_MASTER | netlink.NTF_EXT_LEARNED,
		}
		b.StartTimer()
		t2 := time.Now()
		for n := range macs {
			m := macN(n)
			neigh.HardwareAddr = m[:]
			neigh.IP = vtep(n).AsSlice()
			if err := f.h.NeighSet(&neigh); err != nil {
				b.Fatalf("NeighSet: %v", err)
			}
		}
		floor += time.Since(t2)
		b.StopTimer()
		f.teardown(b)
	}
	b.ReportMetric(float64(b.N*(macs+vteps))/ours.Seconds(), "entries/s")
	b.ReportMetric(ours.Seconds()/float64(b.N), "s/100k")
	b.ReportMetric(floor.Seconds()/float64(b.N), "floor-s/100k")
	b.ReportMetric(ours.Seconds()/floor.Seconds(), "ours/floor")
	b.ReportMetric(fill.Seconds()/float64(b.N), "setmac-s/100k")
}

// reconcileInto fills a Desired with macs MACs over vteps VTEPs and
// measures how long a Reconciler takes to install them into a fresh lab.
func reconcileInto(b *testing.B, macs, vteps int) (took, fill time.Duration) {
	vtep := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 1, byte(1 + i%vteps)}) }
	l := newLab(b, "fibb", 100)
	k := l.kernel(b)
	t0 := time.Now()
	d := NewDesired()
	must(b, d.SetVNI(vniDevs(100)))
	for n := range macs {
		must(b, d.SetMAC(100, macN(n), vtep(n)))
	}
	for v := range vteps {
		must(b, d.AddFlood(100, vtep(v)))
	}
	fill = time.Since(t0)
	r := NewReconciler(d, k, nil, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.StartTimer()
	t1 := time.Now()
	go func() { done <- r.Run(ctx) }()
	want := uint64(macs + vteps)
	for r.Stats().Writes < want {
		if s := r.Stats(); s.Errors > 0 {
			b.Fatalf("reconcile errors: %+v", s)
		}
		time.Sleep(200 * time.Microsecond)
	}
	took = time.Since(t1)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if got := countSelf(b, l, "vxlan100"); got != macs+vteps {
		b.Fatalf("kernel holds %d VXLAN entries, want %d", got, macs+vteps)
	}
	k.Close()
	l.teardown(b)
	return took, fill
}

// countSelf counts VXLAN (self) entries on dev with fib's own dump.
func countSelf(tb testing.TB, l *labNS, dev string) int {
	tb.Helper()
	k := l.kernel(tb)
	es, err := k.Dump(context.Background(), []VNIDevices{{VNI: 100, VXLAN: dev, Bridge: "br100"}})
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, e := range es {
		if e.Self {
			n++
		}
	}
	return n
}

// teardown deletes the lab's devices, which flushes their FDBs
// synchronously, and then the namespace, so that the kernel's deferred
// namespace cleanup does not compete with the next measurement.
func (l *labNS) teardown(tb testing.TB) {
	tb.Helper()
	l.h.Close()
	l.run(tb, []string{"ip", "link", "del", "vxlan100"}, []string{"ip", "link", "del", "br100"})
	must(tb, l.ns.Delete())
}

// BenchmarkRestart100k measures a restart over 100k installed MACs: a new
// reconciler reads the kernel, finds every entry correct and writes nothing.
// The kernel resumes FDB dumps by skipping what it already sent, so this
// grows faster than linearly with the entries on one device.
func BenchmarkRestart100k(b *testing.B) {
	const macs, vteps = 100_000, 10
	vtep := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 1, byte(1 + i%vteps)}) }
	fill := func() *Desired {
		d := NewDesired()
		must(b, d.SetVNI(vniDevs(100)))
		for n := range macs {
			must(b, d.SetMAC(100, macN(n), vtep(n)))
		}
		return d
	}
	b.StopTimer()
	l := newLab(b, "fibrs", 100)
	k := l.kernel(b)
	d := fill()
	r := NewReconciler(d, k, nil, Config{})
	stop := runReconciler(b, r)
	waitFor(b, "install", func() bool { return r.Stats().Writes == macs })
	stop()
	var took time.Duration
	for i := 0; i < b.N; i++ {
		d := fill()
		r := NewReconciler(d, k, nil, Config{})
		b.StartTimer()
		t0 := time.Now()
		stop := runReconciler(b, r)
		for r.Stats().Skipped < macs {
			time.Sleep(200 * time.Microsecond)
		}
		took += time.Since(t0)
		b.StopTimer()
		stop()
		if s := r.Stats(); s.Writes != 0 {
			b.Fatalf("restart rewrote %d entries", s.Writes)
		}
	}
	b.ReportMetric(took.Seconds()/float64(b.N), "s/restart")
	l.teardown(b)
}
