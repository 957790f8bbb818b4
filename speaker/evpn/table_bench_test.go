package evpn

import (
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// BenchmarkTableUpdate100k feeds 100k remote type-2 routes (10 VTEPs) and
// reports time and retained heap per route: the table's share of a leaf's
// memory in a burst.
func BenchmarkTableUpdate100k(b *testing.B) {
	const n = 100_000
	routes := make([]*Route, n)
	for i := range routes {
		vtep := netip.AddrFrom4([4]byte{10, 0, 0, byte(10 + i%10)})
		mac := MAC{2, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
		routes[i] = LocalMACRoute(RDFromIP(vtep, 100), 100, mac, vtep, []RT{AutoRT(65000, 100)}, 0, false)
	}
	now := time.Unix(0, 0)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		t := NewTable(Options{LocalVTEP: netip.MustParseAddr("10.0.0.1")}, []ImportRule{{VNI: 100, Auto: true}})
		for _, r := range routes {
			t.Update(r, now)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/route")
		runtime.KeepAlive(t)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/route")
}
