package fib

import (
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

var fastRetry = Config{MinBackoff: time.Millisecond, MaxBackoff: 8 * time.Millisecond}

func TestReconcilerWritesMovesDeletes(t *testing.T) {
	k := newFakeKernel("vxlan100")
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, macN(1), ip("10.0.0.2")))
	must(t, d.AddFlood(100, ip("10.0.0.2")))
	r := NewReconciler(d, k, quietLogger(), fastRetry)
	runReconciler(t, r)
	waitFor(t, "writes", func() bool { return settled(d, r) })

	must(t, d.SetMAC(100, macN(1), ip("10.0.0.3"))) // move
	waitFor(t, "move", func() bool { return settled(d, r) && r.Stats().Writes == 3 })
	d.DeleteMAC(100, macN(1))
	d.DeleteFlood(100, ip("10.0.0.2"))
	waitFor(t, "deletes", func() bool { return settled(d, r) && r.Stats().Deletes == 2 })

	want := []string{
		"bridge fdb append 00:00:00:00:00:00 dev vxlan100 dst 10.0.0.2 self extern_learn",
		"bridge fdb replace 02:00:00:00:00:01 dev vxlan100 dst 10.0.0.2 self master extern_learn",
		"bridge fdb replace 02:00:00:00:00:01 dev vxlan100 dst 10.0.0.3 self master extern_learn",
		"bridge fdb del 00:00:00:00:00:00 dev vxlan100 dst 10.0.0.2 self",
		"bridge fdb del 02:00:00:00:00:01 dev vxlan100 master; bridge fdb del 02:00:00:00:00:01 dev vxlan100 dst 10.0.0.3 self",
	}
	got := k.applied()
	// The first batch holds two keys in map order, and so may the deletes.
	if len(got) == len(want) {
		slices.Sort(got[:2])
		slices.Sort(got[3:])
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ops:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := k.state(); s != "" {
		t.Errorf("kernel not empty:\n%s", s)
	}
}

func TestReconcilerRetriesWithBackoff(t *testing.T) {
	k := newFakeKernel("vxlan100")
	k.failSet[macN(1)] = 3
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, macN(1), ip("10.0.0.2")))
	must(t, d.SetMAC(100, macN(2), ip("10.0.0.2")))
	r := NewReconciler(d, k, quietLogger(), Config{MinBackoff: 20 * time.Millisecond, MaxBackoff: time.Second})
	start := time.Now()
	runReconciler(t, r)

	var sawStatus Status
	waitFor(t, "first failure", func() bool {
		st, ok := r.Status(MACKey(100, macN(1)))
		sawStatus = st
		return ok
	})
	if !errors.Is(sawStatus.LastError, errFake) || sawStatus.Attempts < 1 || !strings.Contains(sawStatus.Op, "02:00:00:00:00:01") {
		t.Errorf("status: %+v", sawStatus)
	}
	waitFor(t, "success after retries", func() bool { return settled(d, r) && r.Stats().Writes == 2 })
	// Backoff 20, 40, 80 ms (±10%) before attempts 2-4.
	if el := time.Since(start); el < 120*time.Millisecond {
		t.Errorf("three retries took %v, want at least ~126ms of backoff", el)
	}
	if s := r.Stats(); s.Errors != 3 || s.Pending != 0 {
		t.Errorf("stats: errors %d pending %d, want 3 and 0", s.Errors, s.Pending)
	}
	if _, ok := r.Status(MACKey(100, macN(1))); ok {
		t.Error("status kept after success")
	}
}

func TestBackoff(t *testing.T) {
	c := Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	for _, tt := range []struct {
		n    int
		want time.Duration
	}{{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {4, 800 * time.Millisecond}, {5, time.Second}, {50, time.Second}} {
		for range 20 {
			got := backoff(c, tt.n)
			if got < tt.want*9/10 || got > tt.want*11/10 {
				t.Errorf("backoff(%d) = %v, want %v ±10%%", tt.n, got, tt.want)
			}
		}
	}
}

func TestReconcilerRestart(t *testing.T) {
	k := newFakeKernel("vxlan100")
	k.putMAC("vxlan100", macN(1), ip("10.0.0.2"), true)  // correct
	k.putMAC("vxlan100", macN(2), ip("10.0.0.2"), true)  // stale
	k.putMAC("vxlan100", macN(3), ip("10.0.0.9"), false) // hand-added: managed all the same
	k.putFlood("vxlan100", ip("10.0.0.2"))               // correct
	k.putFlood("vxlan100", ip("10.0.0.7"))               // stale
	k.dumpErr = 2                                        // the first reads fail
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, macN(1), ip("10.0.0.2")))
	must(t, d.AddFlood(100, ip("10.0.0.2")))
	must(t, d.SetMAC(100, macN(4), ip("10.0.0.4")))
	r := NewReconciler(d, k, quietLogger(), fastRetry)
	runReconciler(t, r)
	waitFor(t, "first sync", func() bool { return settled(d, r) })

	if s := r.Stats(); s.Writes != 1 || s.Skipped != 2 || s.Deletes != 0 || s.Stale != 3 || s.Resyncs != 1 {
		t.Errorf("first sync: %+v, want 1 write (new MAC), 2 skipped, 0 deletes, 3 stale, 1 resync", s)
	}
	if got := k.applied(); len(got) != 1 || !strings.Contains(got[0], "02:00:00:00:00:04") {
		t.Errorf("first sync wrote %q, want only the new MAC", got)
	}
	before := k.state()
	if !strings.Contains(before, "02:00:00:00:00:02 dev vxlan100 dst 10.0.0.2 self extern_learn") ||
		!strings.Contains(before, "dst 10.0.0.7") || !strings.Contains(before, "02:00:00:00:00:03 dev vxlan100 dst 10.0.0.9 self") {
		t.Errorf("stale entries gone before MarkSynced:\n%s", before)
	}

	// After MarkSynced every entry nobody wants goes, the hand-added one
	// too: fib owns the managed VXLAN devices' FDB.
	r.MarkSynced()
	waitFor(t, "prune", func() bool { return r.Synced() && settled(d, r) })
	want := strings.Join([]string{
		"00:00:00:00:00:00 dev vxlan100 dst 10.0.0.2 self",
		"02:00:00:00:00:01 dev vxlan100 dst 10.0.0.2 self extern_learn",
		"02:00:00:00:00:01 dev vxlan100 master extern_learn",
		"02:00:00:00:00:04 dev vxlan100 dst 10.0.0.4 self extern_learn",
		"02:00:00:00:00:04 dev vxlan100 master extern_learn",
	}, "\n")
	if got := k.state(); got != want {
		t.Errorf("after prune:\n%s\nwant:\n%s", got, want)
	}
	if s := r.Stats(); s.Deletes != 3 || s.Stale != 0 {
		t.Errorf("after prune: deletes %d stale %d, want 3, 0", s.Deletes, s.Stale)
	}
}

func TestReconcilerVNIChanges(t *testing.T) {
	k := newFakeKernel("vxlan100", "vxlan200")
	k.putMAC("vxlan200", macN(7), ip("10.0.0.7"), true) // left by an earlier run
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, macN(1), ip("10.0.0.2")))
	must(t, d.SetMAC(200, macN(2), ip("10.0.0.2"))) // VNI 200 not yet configured
	r := NewReconciler(d, k, quietLogger(), fastRetry)
	runReconciler(t, r)
	waitFor(t, "first sync", func() bool { return settled(d, r) && r.Stats().Writes == 1 })

	// Adding VNI 200 reads only its device, keeps the stale entry and
	// installs the MAC that waited for it.
	must(t, d.SetVNI(vniDevs(200)))
	waitFor(t, "VNI 200", func() bool { return settled(d, r) && r.Stats().Writes == 2 })
	k.mu.Lock()
	dumps := slices.Clone(k.dumps)
	k.mu.Unlock()
	if len(dumps) != 2 || strings.Join(dumps[1], ",") != "vxlan200" {
		t.Errorf("dumps %v, want the second to read vxlan200 only", dumps)
	}
	if s := r.Stats(); s.Stale != 1 || s.Installed != 3 {
		t.Errorf("after SetVNI: stale %d installed %d, want 1 and 3", s.Stale, s.Installed)
	}

	// Removing VNI 100 deletes what this run installed there at once.
	d.RemoveVNI(100)
	waitFor(t, "VNI 100 removed", func() bool { return settled(d, r) && r.Stats().Deletes == 1 })
	if strings.Contains(k.state(), "vxlan100") {
		t.Errorf("entries left on vxlan100:\n%s", k.state())
	}
	// Removing VNI 200 keeps the stale entry until MarkSynced.
	d.RemoveVNI(200)
	waitFor(t, "VNI 200 removed", func() bool { return settled(d, r) && r.Stats().Deletes == 2 })
	if !strings.Contains(k.state(), "02:00:00:00:00:07") {
		t.Error("stale entry of a removed VNI deleted before MarkSynced")
	}
	r.MarkSynced()
	waitFor(t, "prune", func() bool { return r.Synced() && settled(d, r) })
	if s := k.state(); s != "" {
		t.Errorf("after prune:\n%s", s)
	}
}

func TestReconcilerMissingDevice(t *testing.T) {
	k := newFakeKernel() // vxlan100 does not exist yet
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, macN(1), ip("10.0.0.2")))
	r := NewReconciler(d, k, quietLogger(), fastRetry)
	runReconciler(t, r)
	waitFor(t, "failures", func() bool { return r.Stats().Errors >= 3 && r.Stats().Pending == 1 })
	k.mu.Lock()
	k.devs["vxlan100"] = true
	k.mu.Unlock()
	waitFor(t, "write once the device exists", func() bool { return settled(d, r) && r.Stats().Writes == 1 })
}

func TestReconcilerRunTwice(t *testing.T) {
	d := NewDesired()
	r := NewReconciler(d, newFakeKernel(), nil, Config{})
	runReconciler(t, r)
	waitFor(t, "running", func() bool { return r.idle.Load() })
	if err := r.Run(t.Context()); err == nil {
		t.Error("second Run accepted")
	}
}

func TestReconcilerInstalled(t *testing.T) {
	k := newFakeKernel("vxlan100")
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	r := NewReconciler(d, k, quietLogger(), fastRetry)
	if err := r.Installed(t.Context(), func(map[Key]Installed) {}); err == nil {
		t.Fatal("Installed without Run: want an error")
	}
	must(t, d.SetMAC(100, macN(1), ip("10.0.0.2")))
	must(t, d.AddFlood(100, ip("10.0.0.2")))
	runReconciler(t, r)
	waitFor(t, "writes", func() bool { return settled(d, r) })
	var got Installed
	var n int
	if err := r.Installed(t.Context(), func(m map[Key]Installed) { got, n = m[MACKey(100, macN(1))], len(m) }); err != nil {
		t.Fatal(err)
	}
	if n != 2 || !got.Self || !got.Master || got.VTEP != ip("10.0.0.2") || got.Dev != "vxlan100" {
		t.Fatalf("record of the kernel: %d entries, MAC %+v", n, got)
	}
	d.DeleteMAC(100, macN(1))
	waitFor(t, "delete", func() bool { return settled(d, r) })
	if err := r.Installed(t.Context(), func(m map[Key]Installed) { _, ok := m[MACKey(100, macN(1))]; n = len(m); got.Self = ok }); err != nil {
		t.Fatal(err)
	}
	if n != 1 || got.Self {
		t.Fatalf("after the delete: %d entries, MAC still recorded: %v", n, got.Self)
	}
}
