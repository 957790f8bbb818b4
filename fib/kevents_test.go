package fib

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// delMAC and delFlood change the fake kernel behind the reconciler's back.
func (k *fakeKernel) delMAC(dev string, m int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.vxlan, devMAC{dev, macN(m)})
	if b, ok := k.bridge[macN(m)]; ok && b.port == dev {
		delete(k.bridge, macN(m))
	}
}

func (k *fakeKernel) delFlood(dev string, vtep string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v := k.vxlan[devMAC{dev, evpn.MAC{}}]
	if j := indexAddr(v.dsts, ip(vtep)); j >= 0 {
		v.dsts = append(v.dsts[:j], v.dsts[j+1:]...)
	}
}

func TestKernelChangedRepairs(t *testing.T) {
	k := newFakeKernel("vxlan100")
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, macN(1), ip("10.0.0.2")))
	must(t, d.AddFlood(100, ip("10.0.0.2")))
	r := NewReconciler(d, k, quietLogger(), fastRetry)
	runReconciler(t, r)
	waitFor(t, "first sync", func() bool { return settled(d, r) && r.Stats().Writes == 2 })
	ops := func() int { return len(k.applied()) }
	has := func(s string) bool { return strings.Contains(k.state(), s) }

	// Before MarkSynced a stray entry is kept, like any entry found.
	k.putMAC("vxlan100", macN(9), ip("10.9.9.9"), false)
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(9), VTEP: ip("10.9.9.9")})
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(9), Bridge: true})
	waitFor(t, "stray recorded", func() bool { return settled(d, r) && r.Stats().Stale == 1 })
	if !has("02:00:00:00:00:09") || ops() != 2 {
		t.Fatalf("stray entry touched before MarkSynced:\n%s", k.state())
	}
	r.MarkSynced()
	waitFor(t, "stray deleted at sync", func() bool { return r.Synced() && settled(d, r) && !has("02:00:00:00:00:09") })

	// A wanted MAC deleted behind fib's back is written again.
	k.delMAC("vxlan100", 1)
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(1), Bridge: true, Deleted: true})
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(1), VTEP: ip("10.0.0.2"), Deleted: true})
	waitFor(t, "MAC 1 restored", func() bool { return settled(d, r) && has("02:00:00:00:00:01 dev vxlan100 master extern_learn") })

	// Pointed elsewhere: put back.
	k.putMAC("vxlan100", macN(1), ip("10.0.0.7"), false)
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(1), VTEP: ip("10.0.0.7")})
	waitFor(t, "MAC 1 back at 10.0.0.2", func() bool {
		return settled(d, r) && has("02:00:00:00:00:01 dev vxlan100 dst 10.0.0.2 self extern_learn")
	})

	// A stray after sync goes at once; so does an extra flood VTEP, and a
	// deleted wanted flood VTEP comes back.
	k.putMAC("vxlan100", macN(8), ip("10.9.9.8"), false)
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(8), VTEP: ip("10.9.9.8")})
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(8), Bridge: true})
	k.putFlood("vxlan100", ip("10.0.0.5"))
	r.KernelChanged(KernelEvent{VNI: 100, VTEP: ip("10.0.0.5")})
	k.delFlood("vxlan100", "10.0.0.2")
	r.KernelChanged(KernelEvent{VNI: 100, VTEP: ip("10.0.0.2"), Deleted: true})
	defer func() {
		if t.Failed() {
			t.Logf("kernel:\n%s\nops: %q", k.state(), k.applied())
		}
	}()
	waitFor(t, "repairs", func() bool {
		return settled(d, r) && !has("02:00:00:00:00:08") && !has("dst 10.0.0.5") && has("00:00:00:00:00:00 dev vxlan100 dst 10.0.0.2 self")
	})

	// fib's own delete, reported back as the learner would: nothing more.
	before := r.Stats()
	n := ops()
	d.DeleteMAC(100, macN(1))
	waitFor(t, "delete", func() bool { return settled(d, r) && r.Stats().Deletes == before.Deletes+1 })
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(1), Bridge: true, Deleted: true})
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(1), VTEP: ip("10.0.0.2"), Deleted: true})
	// Ignored: multicast MAC, flood without VTEP, unmanaged VNI.
	r.KernelChanged(KernelEvent{VNI: 100, MAC: mac(t, "01:00:5e:00:00:01"), VTEP: ip("10.0.0.2")})
	r.KernelChanged(KernelEvent{VNI: 100})
	r.KernelChanged(KernelEvent{VNI: 200, MAC: macN(3), VTEP: ip("10.0.0.2")})
	waitFor(t, "events folded", func() bool { return settled(d, r) })
	if got := ops(); got != n+1 {
		t.Errorf("%d ops after fib's own delete was reported back, want 1 (the delete): %q", got-n, k.applied()[n:])
	}
	if s := r.Stats(); s.Errors != 0 || s.Stale != 0 {
		t.Errorf("stats: %+v", s)
	}
}

// TestFoldEvent covers the record updates one by one.
func TestFoldEvent(t *testing.T) {
	mk := MACKey(100, macN(1))
	ours := Installed{Dev: "vxlan100", VTEP: ip("10.0.0.2"), Self: true, Master: true}
	tests := []struct {
		name string
		k    Key
		st   kstate
		in   Installed
		had  bool
		want Installed
	}{
		{"VXLAN entry changed", mk, kstate{self: 1, vtep: ip("10.0.0.3")}, ours, true,
			Installed{Dev: "vxlan100", VTEP: ip("10.0.0.3"), Self: true, Master: true}},
		{"VXLAN entry deleted", mk, kstate{self: -1, vtep: ip("10.0.0.2")}, ours, true,
			Installed{Dev: "vxlan100", Master: true}},
		{"another remote deleted: not ours", mk, kstate{self: -1, vtep: ip("10.0.0.9")}, ours, true, ours},
		{"bridge entry replaced by hand", mk, kstate{master: 1}, ours, true,
			Installed{Dev: "vxlan100", VTEP: ip("10.0.0.2"), Self: true, Master: true, Unmarked: true}},
		{"bridge entry written marked (fib's own, or another program's)", mk, kstate{master: 2},
			Installed{Dev: "vxlan100", VTEP: ip("10.0.0.2"), Self: true, Master: true, Unmarked: true}, true, ours},
		{"bridge entry deleted", mk, kstate{master: -1}, ours, true,
			Installed{Dev: "vxlan100", VTEP: ip("10.0.0.2"), Self: true}},
		{"new entry found: stale", mk, kstate{self: 1, vtep: ip("10.0.0.9"), master: 1}, Installed{}, false,
			Installed{Dev: "vxlan100", VTEP: ip("10.0.0.9"), Self: true, Master: true, Unmarked: true, Stale: true}},
		{"flood appended", FloodKey(100, ip("10.0.0.5")), kstate{self: 1, vtep: ip("10.0.0.5")}, Installed{}, false,
			Installed{Dev: "vxlan100", VTEP: ip("10.0.0.5"), Self: true, Stale: true}},
		{"flood deleted", FloodKey(100, ip("10.0.0.5")), kstate{self: -1, vtep: ip("10.0.0.5")},
			Installed{Dev: "vxlan100", VTEP: ip("10.0.0.5"), Self: true}, true, Installed{Dev: "vxlan100"}},
	}
	for _, tt := range tests {
		if got := foldEvent(tt.k, tt.st, tt.in, tt.had, "vxlan100"); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// BenchmarkKernelChangedOwnDeletes: the cost, on the learner's goroutine
// and then the reconciler's, of the reports of fib's own deletes in a
// 100k-MAC withdraw burst (two per MAC), which change nothing.
func BenchmarkKernelChangedOwnDeletes(b *testing.B) {
	const n = 100_000
	r := NewReconciler(NewDesired(), newFakeKernel("vxlan100"), nil, Config{})
	r.devs[100] = vniDevs(100)
	b.ReportAllocs()
	for b.Loop() {
		for i := range n {
			r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(i), Bridge: true, Deleted: true})
			r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(i), VTEP: ip("10.0.0.2"), Deleted: true})
		}
		r.foldKernelEvents(time.Now())
	}
	if r.d.Dirty() != 0 {
		b.Errorf("%d keys queued for nothing", r.d.Dirty())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(2*n), "ns/event")
}

// BenchmarkKernelChangedOwnWrites: the cost of the reports of fib's own
// writes in a 100k-MAC burst (two per MAC, marked extern_learn), which
// match its record and change nothing.
func BenchmarkKernelChangedOwnWrites(b *testing.B) {
	const n = 100_000
	r := NewReconciler(NewDesired(), newFakeKernel("vxlan100"), nil, Config{})
	r.devs[100] = vniDevs(100)
	for i := range n {
		r.installed[MACKey(100, macN(i))] = Installed{Dev: "vxlan100", VTEP: ip("10.0.0.2"), Self: true, Master: true}
	}
	b.ReportAllocs()
	for b.Loop() {
		for i := range n {
			r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(i), Bridge: true, ExternLearn: true})
			r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(i), VTEP: ip("10.0.0.2"), ExternLearn: true})
		}
		r.foldKernelEvents(time.Now())
	}
	if r.d.Dirty() != 0 || len(r.repairs) != 0 {
		b.Errorf("%d keys queued, %d repairs for nothing", r.d.Dirty(), len(r.repairs))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(2*n), "ns/event")
}

// TestResyncRepairsDrift: after MarkSynced a resync, without any reported
// change, rewrites missing and wrong entries and deletes every entry
// nobody wants on the managed device, whoever wrote it.
func TestResyncRepairsDrift(t *testing.T) {
	k := newFakeKernel("vxlan100")
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, macN(1), ip("10.0.0.2")))
	must(t, d.SetMAC(100, macN(2), ip("10.0.0.2")))
	must(t, d.AddFlood(100, ip("10.0.0.2")))
	r := NewReconciler(d, k, quietLogger(), fastRetry)
	runReconciler(t, r)
	r.MarkSynced()
	waitFor(t, "sync", func() bool { return r.Synced() && settled(d, r) })
	want := k.state()

	k.delMAC("vxlan100", 1)
	k.putMAC("vxlan100", macN(2), ip("10.0.0.7"), false)
	k.putMAC("vxlan100", macN(9), ip("10.9.9.9"), false)
	k.putFlood("vxlan100", ip("10.0.0.8"))
	r.Resync()
	waitFor(t, "resync", func() bool { return settled(d, r) && r.Stats().Resyncs == 2 })
	if got := k.state(); got != want {
		t.Errorf("after resync:\n%s\nwant:\n%s", got, want)
	}
	res, err := r.Check(t.Context(), 0)
	must(t, err)
	if len(res.Drifts) != 0 || res.InFlight != 0 {
		t.Errorf("check after resync: %+v", res)
	}
}

// repairLog collects the repairs a reconciler reports through OnApply.
type repairLog struct {
	mu   sync.Mutex
	reps []string
}

func (l *repairLog) onApply(e ApplyEvent) {
	if !e.IsRepair() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := e.Repair.String()
	if e.Err != nil {
		s += " (failed)"
	}
	l.reps = append(l.reps, s)
}

func (l *repairLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.reps
	l.reps = nil
	slices.Sort(out)
	return out
}

// TestKernelChangedReportsRepairs: each repair of a reported change is
// reported once, in Drift terms, in ApplyEvent.Repair and Stats.Repairs;
// fib's own writes reported back (marked extern_learn) are neither
// repaired nor reported, but another program's marked entries are.
func TestKernelChangedReportsRepairs(t *testing.T) {
	k := newFakeKernel("vxlan100")
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, macN(1), ip("10.0.0.2")))
	must(t, d.SetMAC(100, macN(2), ip("10.0.0.2")))
	must(t, d.AddFlood(100, ip("10.0.0.2")))
	var log repairLog
	cfg := fastRetry
	cfg.OnApply = log.onApply
	r := NewReconciler(d, k, quietLogger(), cfg)
	runReconciler(t, r)
	r.MarkSynced()
	waitFor(t, "sync", func() bool { return r.Synced() && settled(d, r) })
	defer func() {
		if t.Failed() {
			t.Logf("kernel:\n%s\nops: %q", k.state(), k.applied())
		}
	}()

	// fib's own writes, reported back as the learner reports them now.
	n := len(k.applied())
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(1), VTEP: ip("10.0.0.2"), ExternLearn: true})
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(1), Bridge: true, ExternLearn: true})
	r.KernelChanged(KernelEvent{VNI: 100, VTEP: ip("10.0.0.2"), ExternLearn: true})
	waitFor(t, "own writes folded", func() bool { return settled(d, r) })
	if got := k.applied()[n:]; len(got) != 0 || r.Stats().Repairs != 0 {
		t.Fatalf("fib's own writes reported back cost %q, %d repairs", got, r.Stats().Repairs)
	}

	// The four cases: VXLAN entry, bridge entry, flood entry deleted; a
	// stray extern_learn entry (VXLAN and bridge) added by another program.
	k.mu.Lock()
	delete(k.vxlan, devMAC{"vxlan100", macN(1)})
	delete(k.bridge, macN(2))
	k.mu.Unlock()
	k.delFlood("vxlan100", "10.0.0.2")
	k.putMAC("vxlan100", macN(9), ip("10.9.9.9"), true)
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(1), VTEP: ip("10.0.0.2"), Deleted: true})
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(2), Bridge: true, Deleted: true})
	r.KernelChanged(KernelEvent{VNI: 100, VTEP: ip("10.0.0.2"), Deleted: true})
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(9), VTEP: ip("10.9.9.9"), ExternLearn: true})
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(9), Bridge: true, ExternLearn: true})
	waitFor(t, "repairs", func() bool { return settled(d, r) && r.Stats().Repairs == 4 })
	want := []string{
		"vni 100 bridge 02:00:00:00:00:02 wrong on vxlan100 want 10.0.0.2",
		"vni 100 flood missing on vxlan100 want 10.0.0.2",
		"vni 100 mac 02:00:00:00:00:01 wrong on vxlan100 want 10.0.0.2",
		"vni 100 mac 02:00:00:00:00:09 extra on vxlan100 have 10.9.9.9",
	}
	if got := log.take(); !slices.Equal(got, want) {
		t.Errorf("repairs reported:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	res, err := r.Check(t.Context(), 0)
	must(t, err)
	if len(res.Drifts) != 0 || res.InFlight != 0 {
		t.Errorf("check after the repairs: %+v", res)
	}
	// A MAC's two entries deleted: one repair, of a missing MAC. The two
	// reports are folded when the loop finds both queued; when it takes
	// the first alone (see KernelChanged), that half is repaired first and
	// the other after it: two repairs, both of MAC 1.
	k.delMAC("vxlan100", 1)
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(1), Bridge: true, Deleted: true})
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(1), VTEP: ip("10.0.0.2"), Deleted: true})
	waitFor(t, "repair", func() bool { return settled(d, r) && r.Stats().Repairs >= 5 })
	got := log.take()
	folded := slices.Equal(got, []string{"vni 100 mac 02:00:00:00:00:01 missing on vxlan100 want 10.0.0.2"})
	apart := len(got) == 2 && strings.Contains(got[0], "02:00:00:00:00:01") && strings.Contains(got[1], "02:00:00:00:00:01")
	if !folded && !apart {
		t.Errorf("repairs reported: %q", got)
	}
	if len(got) == 2 {
		t.Logf("the two halves' reports were taken apart: %q", got)
	}
	// A resync that finds drift nobody reported counts its repairs too.
	base := r.Stats().Repairs
	k.delMAC("vxlan100", 2)
	r.Resync()
	waitFor(t, "resync repair", func() bool { return settled(d, r) && r.Stats().Repairs == base+1 })
	if got := log.take(); !slices.Equal(got, []string{"vni 100 mac 02:00:00:00:00:02 missing on vxlan100 want 10.0.0.2"}) {
		t.Errorf("repairs reported after resync: %q", got)
	}
}

// TestInstalledWhileMissing: while an entry deleted behind fib's back is
// not back (here its rewrite fails), Installed does not say it is there.
func TestInstalledWhileMissing(t *testing.T) {
	k := newFakeKernel("vxlan100")
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, macN(1), ip("10.0.0.2")))
	cfg := fastRetry
	cfg.MinBackoff, cfg.MaxBackoff = time.Hour, time.Hour
	r := NewReconciler(d, k, quietLogger(), cfg)
	runReconciler(t, r)
	waitFor(t, "write", func() bool { return settled(d, r) && r.Stats().Writes == 1 })
	installed := func() Installed {
		var in Installed
		must(t, r.Installed(t.Context(), func(m map[Key]Installed) { in = m[MACKey(100, macN(1))] }))
		return in
	}
	if in := installed(); !in.Self || !in.Master {
		t.Fatalf("record before: %+v", in)
	}
	k.mu.Lock()
	k.failSet[macN(1)] = 1
	k.mu.Unlock()
	k.delMAC("vxlan100", 1)
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(1), VTEP: ip("10.0.0.2"), Deleted: true})
	// Asked at once (the query folds the report) and after the failed
	// repair: not installed either time.
	if in := installed(); in.Self {
		t.Errorf("record right after the delete was reported: %+v", in)
	}
	waitFor(t, "failed repair", func() bool { return r.Stats().Errors == 1 })
	if in := installed(); in.Self {
		t.Errorf("record after the failed repair: %+v", in)
	}
}

// TestLateEchoHeld: a report that would put back fib's record from
// before its latest operation on a key, within echoWindow, is held: the
// echo of the latest operation drops it; without one it is applied after
// echoHold and repaired. Outside the window it is applied at once.
func TestLateEchoHeld(t *testing.T) {
	r := NewReconciler(NewDesired(), newFakeKernel("vxlan100"), nil, Config{})
	r.devs[100] = vniDevs(100)
	k := MACKey(100, macN(1))
	set := func(vtep string) Op {
		return Op{Kind: OpSet, Entry: FDBEntry{VNI: 100, Dev: "vxlan100", MAC: macN(1), VTEP: ip(vtep)}, Self: true, Master: true}
	}
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	report := func(vtep string, ms int) {
		r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(1), VTEP: ip(vtep), ExternLearn: true})
		r.foldKernelEvents(at(ms))
	}
	record := func() string { return r.installed[k].VTEP.String() }

	// A move A→B; A's echo arrives late, then B's.
	r.applied(k, set("10.0.0.2"), at(0))
	r.applied(k, set("10.0.0.3"), at(1))
	report("10.0.0.2", 2)
	if len(r.held) != 1 || record() != "10.0.0.3" || r.d.Dirty() != 0 {
		t.Fatalf("late echo of A: held %d, record %s, dirty %d; want held, record B, nothing queued", len(r.held), record(), r.d.Dirty())
	}
	report("10.0.0.3", 3)
	r.expireHeld(at(100))
	if len(r.held) != 0 || record() != "10.0.0.3" || r.d.Dirty() != 0 || len(r.repairs) != 0 {
		t.Fatalf("after B's echo: held %d, record %s, dirty %d, repairs %d; want nothing", len(r.held), record(), r.d.Dirty(), len(r.repairs))
	}

	// A real change back to A, within the window: held, then repaired.
	report("10.0.0.2", 5)
	if due := r.expireHeld(at(10)); len(r.held) != 1 || !due.Equal(at(5).Add(echoHold)) {
		t.Fatalf("held %d, due %v; want 1 due at %v", len(r.held), due, at(5).Add(echoHold))
	}
	r.expireHeld(at(5).Add(echoHold))
	if _, rep := r.repairs[k]; len(r.held) != 0 || record() != "10.0.0.2" || r.d.Dirty() != 1 || !rep {
		t.Fatalf("after echoHold: held %d, record %s, dirty %d, repair %v; want the change applied and queued", len(r.held), record(), r.d.Dirty(), rep)
	}

	// After echoWindow nothing is held.
	r.d.takeDirty(10, nil)
	clear(r.repairs)
	r.applied(k, set("10.0.0.3"), at(20))
	report("10.0.0.2", 20+int(echoWindow/time.Millisecond))
	if len(r.held) != 0 || record() != "10.0.0.2" || r.d.Dirty() != 1 {
		t.Fatalf("outside the window: held %d, record %s, dirty %d; want applied at once", len(r.held), record(), r.d.Dirty())
	}

	// A delete and re-add: the delete's echo arrives after the re-add.
	r.d.takeDirty(10, nil)
	del := Op{Kind: OpDelete, Entry: FDBEntry{VNI: 100, Dev: "vxlan100", MAC: macN(1), VTEP: ip("10.0.0.2")}, Self: true, Master: true}
	r.applied(k, del, at(1000))
	r.applied(k, set("10.0.0.2"), at(1001))
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(1), Bridge: true, Deleted: true})
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(1), VTEP: ip("10.0.0.2"), Deleted: true})
	r.foldKernelEvents(at(1002))
	if len(r.held) != 1 || record() != "10.0.0.2" {
		t.Fatalf("late echo of the delete: held %d, record %s", len(r.held), record())
	}
	report("10.0.0.2", 1003)
	r.KernelChanged(KernelEvent{VNI: 100, MAC: macN(1), Bridge: true, ExternLearn: true})
	r.foldKernelEvents(at(1003))
	r.expireHeld(at(1100))
	if len(r.held) != 0 || r.d.Dirty() != 0 {
		t.Fatalf("after the re-add's echo: held %d, dirty %d", len(r.held), r.d.Dirty())
	}
}
