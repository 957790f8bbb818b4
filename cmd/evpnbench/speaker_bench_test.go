//go:build linux

package main

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/evpnd/evpnd/speaker"
)

// BenchmarkSpeakerReceive isolates evpnd's BGP receive path: an in-process
// speaker.Server (GoBGP v4 plus evpnd's watch decoder) takes the raw
// source's 100k type-2 burst over loopback and delivers the route events
// to a callback that only counts them: no selection, no kernel. Its time,
// CPU and live heap per route are the share of evpnd's burst figures that
// GoBGP and the speaker package cost; profile it with -cpuprofile:
//
//	go test -run '^$' -bench SpeakerReceive -benchtime 1x -cpuprofile /tmp/speaker.pprof ./cmd/evpnbench
//	go tool pprof -top /tmp/speaker.pprof
//
// It needs no privileges: sessions run on 127.0.0.1 and 127.0.0.2.
func BenchmarkSpeakerReceive(b *testing.B) {
	routes := *benchRoutes
	fc := feederConfig{ASN: benchASN, RouterID: rrAddr, Peer: leafLoopback(1), Routes: routes,
		VTEPs: 10, FirstVTEP: firstRemote, VNI: burstVNI}
	raw, _, err := rawUpdates(fc, rrAddr, 0)
	if err != nil {
		b.Fatal(err)
	}
	var total, cpu time.Duration
	var heap uint64 // live heap grown by the bursts
	for range b.N {
		b.StopTimer()
		port := freePort(b)
		srv, err := speaker.New(speaker.Config{
			RouterID: leafLoopback(1), ASN: benchASN, ListenPort: int32(port),
			ListenAddresses: []string{"127.0.0.1"},
			Logger:          slog.New(slog.DiscardHandler),
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := srv.Start(ctx); err != nil {
			b.Fatal(err)
		}
		var got atomic.Int64
		done := make(chan time.Time, 1)
		err = srv.Watch(ctx, func(ev speaker.Event) {
			if ev.Type == speaker.EventRoute && !ev.Withdraw && ev.Route.MAC.IsUnicast() {
				if got.Add(1) == int64(routes) {
					done <- time.Now()
				}
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		peer := netip.MustParseAddr("127.0.0.2")
		if err := srv.AddNeighbor(ctx, speaker.Neighbor{Address: peer, ASN: benchASN, Passive: true}); err != nil {
			b.Fatal(err)
		}
		src := &rawSource{local: peer, peer: netip.MustParseAddr("127.0.0.1"), port: port, id: rrAddr, asn: benchASN, msgs: raw}
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		heap0 := ms.HeapAlloc
		cpu0 := processCPU(b)
		b.StartTimer()
		t0, err := src.start(ctx)
		if err != nil {
			b.Fatal(err)
		}
		select {
		case t1 := <-done:
			total += t1.Sub(t0)
		case err := <-src.failed():
			b.Fatal(err)
		case <-time.After(5 * time.Minute):
			b.Fatalf("%d of %d routes delivered", got.Load(), routes)
		}
		b.StopTimer()
		cpu += processCPU(b) - cpu0
		runtime.GC()
		runtime.ReadMemStats(&ms)
		heap += ms.HeapAlloc - heap0 // GoBGP's table, the decoder's index
		src.close()
		_ = srv.Stop(context.Background(), false)
		cancel()
	}
	n := float64(b.N)
	b.ReportMetric(total.Seconds()/n, "s/burst")
	b.ReportMetric(float64(routes)*n/total.Seconds(), "routes/s")
	b.ReportMetric(float64(cpu)/float64(time.Microsecond)/n/float64(routes), "cpu-µs/route")
	b.ReportMetric(float64(heap)/n/float64(routes), "live-B/route")
}

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort(b *testing.B) uint16 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// processCPU is this process's user + system time.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
