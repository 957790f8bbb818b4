package vtep

import (
	"context"
	"fmt"
	"github.com/evpnd/evpnd/containerlab/netns"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkLearnerRemoteBurst measures what a burst of remote MACs costs
// the learner: evpnd's fib writes 100k remote MACs on the VXLAN port (one
// message per MAC with NTF_SELF|NTF_MASTER, as zebra and the fib do, so
// two notifications per MAC), while a Learner runs. None of them is a
// local MAC. The CPU the test process spends (user+sys, getrusage; the
// bridge(8) writer is a child and not counted) from the start of the
// burst until the learner has reported a marker MAC added after it is
// reported as cpu-ms/op. Run with -benchtime=1x.
func BenchmarkLearnerRemoteBurst(b *testing.B) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	for _, foreign := range []bool{false, true} {
		b.Run(fmt.Sprintf("foreign=%v", foreign), func(b *testing.B) { benchRemoteBurst(b, n, foreign) })
	}
}

// benchRemoteBurst is BenchmarkLearnerRemoteBurst with or without
// foreign VXLAN reporting (which, since evpnd's own writes are reported
// too, gets both notifications of every MAC into user space and to the
// callback, which here only counts).
func benchRemoteBurst(b *testing.B, n int, foreign bool) {
	leaf, h := testNS(b, "vtr")
	sh(b, leaf, "ip", "link", "add", "acc0", "type", "veth", "peer", "name", "host0")
	sh(b, leaf, "sysctl", "-qw", "net.ipv6.conf.host0.disable_ipv6=1")
	sh(b, leaf, "ip", "link", "set", "host0", "up")
	vnis := []L2VNI{vniSpec(100, "acc0")}
	if err := NewManager(h, nsHandle(b, leaf), nil).Ensure(context.Background(), vnis); err != nil {
		b.Fatal(err)
	}
	waitForwarding(b, leaf, "acc0")

	l := NewLearner(nsHandle(b, leaf), vnis, nil)
	var mu sync.Mutex
	var count int64
	if foreign {
		l.OnForeignVXLAN(func(VXLANChange) { mu.Lock(); count++; mu.Unlock() })
	}
	c := newCollector()
	runLearner(b, l, c)
	marker := func(i int) string { return fmt.Sprintf("02:00:00:00:ff:%02x", i) }
	sh(b, leaf, "bridge", "fdb", "add", marker(255), "dev", "acc0", "master", "static")
	c.waitFor(b, "initial marker", func() bool { return len(c.state) == 1 })

	dir := b.TempDir()
	var cpu, wall time.Duration
	b.ResetTimer()
	for it := range b.N {
		b.StopTimer()
		var batch strings.Builder
		for i := range n {
			fmt.Fprintf(&batch, "fdb add 02:%02x:00:%02x:%02x:%02x dev vxlan100 dst 10.0.%d.%d self master extern_learn\n",
				it+1, i>>16, (i>>8)&0xff, i&0xff, 1+i%8, 2+i%200)
		}
		file := filepath.Join(dir, fmt.Sprint(it))
		if err := os.WriteFile(file, []byte(batch.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		dc, dw := timedBurst(b, leaf, c, file, marker(it))
		cpu, wall = cpu+dc, wall+dw
	}
	b.StopTimer()
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(wall.Milliseconds())/float64(b.N), "wall-ms/op")
	b.ReportMetric(float64(l.resyncs.Load())/float64(b.N), "resyncs/op")
	b.ReportMetric(float64(l.skipped.Load())/float64(b.N), "skipped/op")
	b.ReportMetric(float64(l.decoded.Load())/float64(b.N), "decoded/op")
	mu.Lock()
	b.ReportMetric(float64(count)/float64(b.N), "foreign/op")
	mu.Unlock()
	if len(c.state) != b.N+1 {
		b.Errorf("reported %d local MACs, want %d markers", len(c.state), b.N+1)
	}
}

// rusage is the CPU time (user+sys) this process has used.
func rusage(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// timedBurst applies a bridge batch file in leaf, then adds the marker MAC m on
// acc0 and waits until the learner reported it (it comes after the whole
// burst), and returns the process CPU and wall time that took.
func timedBurst(b *testing.B, leaf *netns.NS, c *collector, file, m string) (cpu, wall time.Duration) {
	r0, t0 := rusage(b), time.Now()
	sh(b, leaf, "bridge", "-batch", file)
	sh(b, leaf, "bridge", "fdb", "add", m, "dev", "acc0", "master", "static")
	c.waitFor(b, "marker after the burst", func() bool {
		for k := range c.state {
			if k.MAC.String() == m {
				return true
			}
		}
		return false
	})
	return rusage(b) - r0, time.Since(t0)
}
