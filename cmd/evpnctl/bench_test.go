package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// serveEnv makes the test binary a fake evpnd serving the MAC table on
// the socket it names, until its stdin closes: the benchmark runs the
// server in its own process so that the heap it measures is the client's.
const serveEnv = "EVPNCTL_TEST_SERVE_SOCKET"

func TestMain(m *testing.M) {
	if sock := os.Getenv(serveEnv); sock != "" {
		os.Exit(serveChild(sock))
	}
	os.Exit(m.Run())
}

func serveChild(sock string) int {
	n, _ := strconv.Atoi(os.Getenv(serveEnv + "_MACS"))
	lis, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := grpc.NewServer()
	evpndv1.RegisterEvpndServiceServer(srv, &fakeServer{pageSize: 1000, macCount: n, macGen: bigMAC})
	go srv.Serve(lis)
	io.Copy(io.Discard, os.Stdin) // until the benchmark closes it, or dies
	srv.Stop()
	return 0
}

// startServerProcess runs the fake server with n MACs in a child process
// and returns its socket.
func startServerProcess(b *testing.B, n int) string {
	sock := socketPath(b)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"="+sock, serveEnv+"_MACS="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	waitFor(b, "the fake server's socket", func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return sock
}

// heapPeak samples the live heap (allocated objects, reachable or not yet
// swept) every millisecond until stop is called, and returns its peak.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	var mu sync.Mutex
	read := func() {
		metrics.Read(sample)
		mu.Lock()
		peak = max(peak, sample[0].Value.Uint64())
		mu.Unlock()
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() uint64 {
		close(quit)
		<-done
		read()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// lineCounter counts the lines written to it.
type lineCounter int

func (c *lineCounter) Write(p []byte) (int, error) {
	*c += lineCounter(strings.Count(string(p), "\n"))
	return len(p), nil
}

// BenchmarkShowMAC100k prints a 100k-row MAC table, sent in pages of
// 1000 by a fake evpnd in another process, to io.Discard. It reports the
// client's peak heap: streaming keeps it at a page or so, whatever the
// size of the table.
func BenchmarkShowMAC100k(b *testing.B) {
	const n = 100_000
	sock := startServerProcess(b, n)
	for _, format := range []string{"table", "json"} {
		b.Run(format, func(b *testing.B) {
			args := []string{"--socket", sock, "-o", format, "show", "evpn", "mac"}
			// Once, unmeasured: every row arrives.
			var lines lineCounter
			if code := runCLITo(context.Background(), &lines, os.Stderr, args...); code != 0 || int(lines) < n {
				b.Fatalf("exit %d, %d lines for %d MACs", code, lines, n)
			}
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			stop := heapPeak()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if code := runCLITo(context.Background(), io.Discard, os.Stderr, args...); code != 0 {
					b.Fatalf("exit %d", code)
				}
			}
			b.StopTimer()
			peak := stop()
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(before.HeapInuse)/(1<<20), "heap-inuse-before-MiB")
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
