package speaker

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

func burstRoutes(n int) []*evpn.Route {
	rd := evpn.RDFromIP(mustAddr("10.0.0.1"), 2)
	rts := []evpn.RT{evpn.AutoRT(65000, 100)}
	out := make([]*evpn.Route, n)
	for i := range out {
		out[i] = &evpn.Route{
			Key:    evpn.Key{Type: evpn.RouteTypeMACIP, RD: rd, MAC: evpn.MAC{2, 0x42, 0, byte(i >> 16), byte(i >> 8), byte(i)}},
			Labels: []uint32{100}, NextHop: mustAddr("10.0.0.1"), RTs: rts, Encap: evpn.TunnelTypeVXLAN,
		}
	}
	return out
}

// vmRSS is this process's resident set size in bytes, from
// /proc/self/status; 0 where that is unavailable.
func vmRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuTime is the CPU time this process used so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkBurst100k: A announces 100k type-2 routes to B over an
// established iBGP session; the clock runs from the first Announce until
// B's Watch has delivered the last route. Both servers live in this
// process, so the memory figures cover both sides (A's local RIB and B's
// RIB plus the watch). Run it with -benchtime=1x: GoBGP v3's Serve
// goroutine outlives Stop and keeps a stopped server's RIB alive, so
// further iterations measure on top of the previous ones.
func BenchmarkBurst100k(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	routes := burstRoutes(n)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		a := startSpeaker(b, "127.0.0.91", 65000, false, nil)
		bs := startSpeaker(b, "127.0.0.92", 65000, false, nil)
		var delivered atomic.Int64
		done := make(chan struct{})
		// B's consumer only counts, so that the figures are the speaker's.
		if err := bs.Watch(ctx, func(ev Event) {
			if ev.Type == EventRoute && !ev.Withdraw && delivered.Add(1) == n {
				close(done)
			}
		}); err != nil {
			b.Fatal(err)
		}
		a.peerWith(bs, 65000, nil)
		bs.peerWith(a, 65000, nil)
		waitFor(b, settle, "the session", func() bool {
			p, err := bs.Peers(ctx)
			return err == nil && len(p) == 1 && p[0].State == PeerStateEstablished
		})

		heap0, rss0 := heapAlloc(), vmRSS()
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		if err := a.Announce(ctx, routes); err != nil {
			b.Fatal(err)
		}
		injected := time.Since(start)
		select {
		case <-done:
		case <-time.After(5 * time.Minute):
			b.Fatalf("B delivered %d of %d routes in 5 min", delivered.Load(), n)
		}
		total, cpu := time.Since(start), cpuTime()-cpu0
		b.StopTimer()
		heap1, rss1 := heapAlloc(), vmRSS()

		b.ReportMetric(float64(n)/total.Seconds(), "routes/s")
		b.ReportMetric(float64(n)/injected.Seconds(), "announce-routes/s")
		b.ReportMetric(total.Seconds(), "s/burst")
		b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/route")
		b.ReportMetric(float64(int64(heap1)-int64(heap0))/n, "heapB/route")
		b.ReportMetric(float64(int64(rss1)-int64(rss0))/n, "rssB/route")
		stop, cancel := context.WithTimeout(ctx, 30*time.Second)
		_ = a.Stop(stop, false)
		_ = bs.Stop(stop, false)
		cancel()
	}
}

// BenchmarkAnnounce100k: a server without peers takes 100k type-2 routes
// into its RIB; the GoBGP v3 API takes one path per call.
func BenchmarkAnnounce100k(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	routes := burstRoutes(n)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		a := startSpeaker(b, "127.0.0.93", 65000, false, nil)
		heap0 := heapAlloc()
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		if err := a.Announce(ctx, routes); err != nil {
			b.Fatal(err)
		}
		d, cpu := time.Since(start), cpuTime()-cpu0
		b.StopTimer()
		b.ReportMetric(float64(n)/d.Seconds(), "routes/s")
		b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/route")
		b.ReportMetric(float64(int64(heapAlloc())-int64(heap0))/n, "heapB/route")
		stop, cancel := context.WithTimeout(ctx, 30*time.Second)
		_ = a.Stop(stop, false)
		cancel()
	}
}

// BenchmarkPaths100k: ListPaths over a table of 100k type-2 paths (the
// server's own, as listing decodes received ones alike). The table is
// built once; each iteration lists it whole with a callback that only
// counts.
func BenchmarkPaths100k(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	a := startSpeaker(b, "127.0.0.94", 65000, false, nil)
	if err := a.Announce(ctx, burstRoutes(n)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var listed int
	start, cpu0 := time.Now(), cpuTime()
	for b.Loop() {
		st, err := a.ListPaths(ctx, func(Path) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		if st.Listed != n || st.Skipped != 0 {
			b.Fatalf("listed %d skipped %d, want %d and 0", st.Listed, st.Skipped, n)
		}
		listed += st.Listed
	}
	d, cpu := time.Since(start), cpuTime()-cpu0
	b.ReportMetric(float64(listed)/d.Seconds(), "paths/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(listed), "cpu-ns/path")
	b.ReportMetric(float64(d.Nanoseconds())/float64(listed), "ns/path")
}

// BenchmarkPeersAdvertised100k: PeersAdvertised on a server that sends its
// 100k type-2 paths to one established peer, next to Peers, which leaves
// the count out. GoBGP runs the export rules over the whole table for the
// count (it keeps no Adj-RIB-Out), inside its event loop.
func BenchmarkPeersAdvertised100k(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	a := startSpeaker(b, "127.0.0.97", 65000, false, nil)
	bs := startSpeaker(b, "127.0.0.98", 65000, false, nil)
	if err := a.Announce(ctx, burstRoutes(n)); err != nil {
		b.Fatal(err)
	}
	a.peerWith(bs, 65000, nil)
	bs.peerWith(a, 65000, nil)
	waitFor(b, 5*time.Minute, "B to receive A's paths", func() bool {
		p, err := bs.Peers(ctx)
		return err == nil && len(p) == 1 && p[0].State == PeerStateEstablished && p[0].Received == n
	})
	start := time.Now()
	if _, err := a.Peers(ctx); err != nil {
		b.Fatal(err)
	}
	plain := time.Since(start)
	var calls int
	start, cpu0 := time.Now(), cpuTime()
	for b.Loop() {
		p, err := a.PeersAdvertised(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(p) != 1 || p[0].Advertised != n {
			b.Fatalf("PeersAdvertised: %+v, want one peer with %d advertised", p, n)
		}
		calls++
	}
	d, cpu := time.Since(start), cpuTime()-cpu0
	b.ReportMetric(float64(d.Milliseconds())/float64(calls), "ms/peer")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(calls), "cpu-ms/peer")
	b.ReportMetric(float64(plain.Microseconds()), "µs/Peers")
}
