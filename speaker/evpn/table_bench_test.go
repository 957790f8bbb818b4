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

// BenchmarkRemoveVNIs64 removes 64 of 128 VNIs from a table of 100k
// remote MACs, as a reload's batch does in the loop: one VNI at a time
// (a walk of the table each) against RemoveVNIs (one walk).
func BenchmarkRemoveVNIs64(b *testing.B) {
	const n, vnis = 100_000, 128
	build := func() *Table {
		var rules []ImportRule
		for v := range vnis {
			rules = append(rules, ImportRule{VNI: uint32(1000 + v), Auto: true})
		}
		t := NewTable(Options{LocalVTEP: netip.MustParseAddr("10.0.0.1")}, rules)
		now := time.Unix(0, 0)
		for i := range n {
			v := uint32(1000 + i%vnis)
			vtep := netip.AddrFrom4([4]byte{10, 0, 0, byte(10 + i%10)})
			mac := MAC{2, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
			t.Update(LocalMACRoute(RDFromIP(vtep, uint16(v)), v, mac, vtep, []RT{AutoRT(65000, v)}, 0, false), now)
		}
		return t
	}
	drop := map[uint32]bool{}
	for v := range 64 {
		drop[uint32(1000+v)] = true
	}
	for _, mode := range []string{"one-by-one", "batch"} {
		b.Run(mode, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				t := build()
				b.StartTimer()
				if mode == "batch" {
					t.RemoveVNIs(drop)
				} else {
					for v := range drop {
						t.RemoveVNI(v)
					}
				}
			}
		})
	}
}
