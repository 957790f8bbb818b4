package vtep

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// foreignLog records a Learner's VXLANChanges.
type foreignLog struct {
	mu  sync.Mutex
	got []VXLANChange
}

func (f *foreignLog) add(c VXLANChange) {
	f.mu.Lock()
	f.got = append(f.got, c)
	f.mu.Unlock()
}

func (f *foreignLog) waitFor(t *testing.T, what string, cond func([]VXLANChange) bool) []VXLANChange {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		got := slices.Clone(f.got)
		f.mu.Unlock()
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; reported %+v", what, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLearnerForeignVXLAN writes remote MACs and a flood entry as evpnd
// does (extern_learn, one message per MAC) and then changes the VXLAN
// device's FDB by hand. evpnd's writes are reported marked (ExternLearn),
// both halves of each MAC; the hand-made changes and deletes unmarked, in
// order. A stray extern_learn entry made by hand is reported marked.
func TestLearnerForeignVXLAN(t *testing.T) {
	leaf, vnis := accessLab(t, "vtf")
	l := NewLearner(nsHandle(t, leaf), vnis, testLog(t))
	var f foreignLog
	l.OnForeignVXLAN(f.add)
	c := newCollector()
	runLearner(t, l, c)
	// A local MAC proves the subscription is up.
	sh(t, leaf, "bridge", "fdb", "add", "02:00:00:00:00:01", "dev", "acc0", "master", "static")
	c.waitFor(t, "initial MAC", func() bool { return len(c.state) == 1 })
	skipped0 := l.skipped.Load()

	const n = 500
	var batch strings.Builder
	for i := range n {
		fmt.Fprintf(&batch, "fdb replace 02:10:00:00:%02x:%02x dev vxlan100 dst 10.0.0.%d self master extern_learn\n", i>>8, i&0xff, 2+i%100)
	}
	batch.WriteString("fdb append 00:00:00:00:00:00 dev vxlan100 dst 10.0.0.5 self extern_learn\n")
	file := filepath.Join(t.TempDir(), "fdb")
	if err := os.WriteFile(file, []byte(batch.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, leaf, "bridge", "-batch", file)

	type step struct {
		cmd  []string
		want *VXLANChange
	}
	m := func(s string) [6]byte { return emac(s) }
	a := netip.MustParseAddr
	// evpnd's writes: both halves of every MAC, and the flood entry.
	own := f.waitFor(t, "evpnd's writes", func(got []VXLANChange) bool { return len(got) >= 2*n+1 })
	var selfs, bridges, floods int
	for _, c := range own {
		switch {
		case !c.ExternLearn || c.Deleted:
			t.Errorf("evpnd's write reported as %+v", c)
		case c.MAC == [6]byte{}:
			floods++
		case c.Bridge:
			bridges++
		default:
			selfs++
		}
	}
	if selfs != n || bridges != n || floods != 1 {
		t.Errorf("evpnd's writes reported: %d VXLAN, %d bridge, %d flood; want %d, %d, 1", selfs, bridges, floods, n, n)
	}
	f.mu.Lock()
	f.got = nil
	f.mu.Unlock()

	steps := []step{
		{[]string{"bridge", "fdb", "add", "02:00:00:00:10:95", "dev", "vxlan100", "dst", "10.9.9.5", "self", "extern_learn"},
			&VXLANChange{VNI: 100, MAC: m("02:00:00:00:10:95"), VTEP: a("10.9.9.5"), ExternLearn: true}},
		{[]string{"bridge", "fdb", "add", "02:00:00:00:10:99", "dev", "vxlan100", "dst", "10.9.9.9", "self", "static"},
			&VXLANChange{VNI: 100, MAC: m("02:00:00:00:10:99"), VTEP: a("10.9.9.9")}},
		{[]string{"bridge", "fdb", "del", "02:10:00:00:00:00", "dev", "vxlan100", "self"},
			&VXLANChange{VNI: 100, MAC: m("02:10:00:00:00:00"), VTEP: a("10.0.0.2"), Deleted: true}},
		{[]string{"bridge", "fdb", "del", "02:10:00:00:00:01", "dev", "vxlan100", "master"},
			&VXLANChange{VNI: 100, MAC: m("02:10:00:00:00:01"), Bridge: true, Deleted: true}},
		{[]string{"bridge", "fdb", "add", "02:00:00:00:10:98", "dev", "vxlan100", "master", "static"},
			&VXLANChange{VNI: 100, MAC: m("02:00:00:00:10:98"), Bridge: true}},
		// A local entry: never fib's, not reported.
		{[]string{"bridge", "fdb", "add", "02:00:00:00:10:97", "dev", "vxlan100", "master", "permanent"}, nil},
		{[]string{"bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan100", "dst", "10.0.0.6", "self"},
			&VXLANChange{VNI: 100, VTEP: a("10.0.0.6")}},
		{[]string{"bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vxlan100", "dst", "10.0.0.5", "self"},
			&VXLANChange{VNI: 100, VTEP: a("10.0.0.5"), Deleted: true}},
		// The last one marks the end: everything before it has been read.
		{[]string{"bridge", "fdb", "del", "02:00:00:00:10:99", "dev", "vxlan100", "self"},
			&VXLANChange{VNI: 100, MAC: m("02:00:00:00:10:99"), VTEP: a("10.9.9.9"), Deleted: true}},
	}
	var want []VXLANChange
	for _, s := range steps {
		sh(t, leaf, s.cmd...)
		if s.want != nil {
			want = append(want, *s.want)
		}
	}
	got := f.waitFor(t, "the last change", func(got []VXLANChange) bool {
		return len(got) > 0 && got[len(got)-1] == want[len(want)-1]
	})
	if !slices.Equal(got, want) {
		t.Errorf("reported:\n%s\nwant:\n%s", fmtChanges(got), fmtChanges(want))
	}
	// None of evpnd's writes was decoded as a local MAC.
	if skipped := l.skipped.Load() - skipped0; skipped < 2*n {
		t.Errorf("%d notifications skipped by local learning for %d MACs written: want at least %d", skipped, n, 2*n)
	}
	if len(c.state) != 1 {
		t.Errorf("local MACs %v, want only the initial one", c.state)
	}
}

func fmtChanges(cs []VXLANChange) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "  %+v\n", c)
	}
	return b.String()
}

// TestLearnerForeignLost overruns the event socket with hand-made VXLAN
// entries while the consumer is stuck: once subscribed again the learner
// says changes were lost, and goes on reporting.
func TestLearnerForeignLost(t *testing.T) {
	leaf, vnis := accessLab(t, "vtg")
	l := NewLearner(nsHandle(t, leaf), vnis, testLog(t))
	l.rcvbuf = 1024
	var f foreignLog
	hold := make(chan struct{})
	var once sync.Once
	l.OnForeignVXLAN(func(c VXLANChange) {
		f.add(c)
		<-hold
	})
	c := newCollector()
	runLearner(t, l, c)
	t.Cleanup(func() { once.Do(func() { close(hold) }) })
	sh(t, leaf, "bridge", "fdb", "add", "02:00:00:00:00:01", "dev", "acc0", "master", "static")
	c.waitFor(t, "initial MAC", func() bool { return len(c.state) == 1 })

	const n = 2000
	var batch strings.Builder
	for i := range n {
		fmt.Fprintf(&batch, "fdb add 02:20:00:00:%02x:%02x dev vxlan100 dst 10.0.0.9 self static\n", i>>8, i&0xff)
	}
	file := filepath.Join(t.TempDir(), "fdb")
	if err := os.WriteFile(file, []byte(batch.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, leaf, "bridge", "-batch", file)
	once.Do(func() { close(hold) })
	got := f.waitFor(t, "Lost", func(got []VXLANChange) bool {
		return slices.ContainsFunc(got, func(c VXLANChange) bool { return c.Lost })
	})
	for _, c := range got {
		if c.Lost && c != (VXLANChange{Lost: true}) {
			t.Errorf("Lost change with other fields set: %+v", c)
		}
	}
	sh(t, leaf, "bridge", "fdb", "del", "02:20:00:00:00:00", "dev", "vxlan100", "self")
	f.waitFor(t, "a change after Lost", func(got []VXLANChange) bool {
		return got[len(got)-1] == VXLANChange{VNI: 100, MAC: emac("02:20:00:00:00:00"), VTEP: netip.MustParseAddr("10.0.0.9"), Deleted: true}
	})
}

// BenchmarkLearnerWithdrawBurst measures what a withdraw burst costs the
// learner, with and without foreign VXLAN reporting: n remote MACs written
// as evpnd writes them are deleted as fib deletes them (bridge entry, then
// VXLAN entry, two messages per MAC). With reporting, every delete reaches
// user space and the callback (which here only counts). CPU of the test
// process from the start of the deletes until a marker MAC added after
// them is reported, as cpu-ms/op. Run with -benchtime=1x.
func BenchmarkLearnerWithdrawBurst(b *testing.B) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	for _, foreign := range []bool{false, true} {
		b.Run(fmt.Sprintf("foreign=%v", foreign), func(b *testing.B) {
			leaf, vnis := accessLab(b, "vtw")
			l := NewLearner(nsHandle(b, leaf), vnis, nil)
			var count int64
			var mu sync.Mutex
			if foreign {
				l.OnForeignVXLAN(func(VXLANChange) { mu.Lock(); count++; mu.Unlock() })
			}
			c := newCollector()
			runLearner(b, l, c)
			marker := func(i int) string { return fmt.Sprintf("02:00:00:00:fe:%02x", i) }
			sh(b, leaf, "bridge", "fdb", "add", marker(255), "dev", "acc0", "master", "static")
			c.waitFor(b, "initial marker", func() bool { return len(c.state) == 1 })
			dir := b.TempDir()
			var cpu, wall time.Duration
			b.ResetTimer()
			for it := range b.N {
				b.StopTimer()
				var add, del strings.Builder
				for i := range n {
					m := fmt.Sprintf("02:%02x:00:%02x:%02x:%02x", it+1, i>>16, (i>>8)&0xff, i&0xff)
					dst := fmt.Sprintf("10.0.%d.%d", 1+i%8, 2+i%200)
					fmt.Fprintf(&add, "fdb add %s dev vxlan100 dst %s self master extern_learn\n", m, dst)
					fmt.Fprintf(&del, "fdb del %s dev vxlan100 master\nfdb del %s dev vxlan100 dst %s self\n", m, m, dst)
				}
				addFile, delFile := filepath.Join(dir, fmt.Sprint("add", it)), filepath.Join(dir, fmt.Sprint("del", it))
				if err := os.WriteFile(addFile, []byte(add.String()), 0o644); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(delFile, []byte(del.String()), 0o644); err != nil {
					b.Fatal(err)
				}
				sh(b, leaf, "bridge", "-batch", addFile)
				b.StartTimer()
				dc, dw := timedBurst(b, leaf, c, delFile, marker(it))
				cpu, wall = cpu+dc, wall+dw
			}
			b.StopTimer()
			mu.Lock()
			defer mu.Unlock()
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(wall.Milliseconds())/float64(b.N), "wall-ms/op")
			b.ReportMetric(float64(l.resyncs.Load())/float64(b.N), "resyncs/op")
			b.ReportMetric(float64(count)/float64(b.N), "foreign/op")
		})
	}
}
