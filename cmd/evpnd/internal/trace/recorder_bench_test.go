package trace

import (
	"testing"
)

// BenchmarkRecord records into a few hot keys whose rings are full: the
// steady state of a busy MAC.
func BenchmarkRecord(b *testing.B) {
	r := New(DefaultPerKey, DefaultMaxKeys)
	e := ev(1)
	e.Detail = "selected: higher seq"
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Record(uint32(i&3), mac(i&15), e)
		i++
	}
}

// BenchmarkRecord100kKeys records one event each into 100k distinct keys in
// turn, as a 100k-route burst does. With the default maxKeys every new key
// evicts the oldest and reuses its ring; with room for all of them the
// first pass allocates each key's entry and ring and later passes refill
// them.
func BenchmarkRecord100kKeys(b *testing.B) {
	const n = 100_000
	keys := make([]key, n)
	for i := range keys {
		keys[i] = key{vni: uint32(100 + i%4), mac: mac(i)}
	}
	for _, bc := range []struct {
		name    string
		maxKeys int
	}{
		{"evicting", DefaultMaxKeys},
		{"fits", n},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := New(DefaultPerKey, bc.maxKeys)
			e := Event{Kind: RouteReceived, Time: t0, Seq: 1}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := keys[i%n]
				r.Record(k.vni, k.mac, e)
				i++
			}
			keys, events := r.Len()
			b.ReportMetric(float64(keys), "keys")
			b.ReportMetric(float64(events), "events")
		})
	}
}

// BenchmarkRecordParallel shows the cost of the one lock under contention
// from several goroutines, like the daemon loop and the fib reconciler.
func BenchmarkRecordParallel(b *testing.B) {
	r := New(DefaultPerKey, DefaultMaxKeys)
	e := ev(1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.Record(uint32(i&3), mac(i&1023), e)
			i++
		}
	})
}

// BenchmarkGet copies a full history out.
func BenchmarkGet(b *testing.B) {
	r := New(DefaultPerKey, DefaultMaxKeys)
	for s := range 2 * DefaultPerKey {
		r.Record(1, mac(1), ev(uint32(s)))
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Get(1, mac(1))
	}
}
