package fib

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"
)

// engKernel is a fake kernel for one kind: a map, with counters of its
// dumps and ops, and failures to inject.
type engKernel struct {
	name string
	mu   sync.Mutex
	m    map[string]int
	log  *[]string // shared by kinds, to check their order
	// fail holds, per key, how many more writes of it fail.
	fail    map[string]int
	dumps   int
	ops     int
	batches []int
	// during, when set, runs inside apply after the kernel changed
	// (a concurrent kernel event).
	during func(change[string, int])
}

func newEngKernel(name string, log *[]string) *engKernel {
	return &engKernel{name: name, m: map[string]int{}, log: log, fail: map[string]int{}}
}

func (k *engKernel) dump(context.Context) (map[string]int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dumps++
	if k.fail["dump"] > 0 {
		k.fail["dump"]--
		return nil, errors.New("dump failed")
	}
	return maps.Clone(k.m), nil
}

func (k *engKernel) apply(_ context.Context, cs []change[string, int]) []error {
	k.mu.Lock()
	errs := make([]error, len(cs))
	k.batches = append(k.batches, len(cs))
	var during []change[string, int]
	for i, c := range cs {
		k.ops++
		if k.fail[c.Key] > 0 {
			k.fail[c.Key]--
			errs[i] = fmt.Errorf("write %s: injected", c.Key)
			continue
		}
		verb := "set"
		if c.Delete {
			verb = "del"
			delete(k.m, c.Key)
		} else {
			k.m[c.Key] = c.Value
		}
		if k.log != nil {
			*k.log = append(*k.log, fmt.Sprintf("%s %s %s", k.name, verb, c.Key))
		}
		during = append(during, c)
	}
	k.mu.Unlock()
	if k.during != nil {
		for _, c := range during {
			k.during(c)
		}
	}
	return errs
}

func (*engKernel) equal(a, b int) bool { return a == b }

func (k *engKernel) counts() (dumps, ops int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.dumps, k.ops
}

func (k *engKernel) state() map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return maps.Clone(k.m)
}

func drainT(t *testing.T, l *loop) int {
	t.Helper()
	n, err := l.drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A start reads the kernel once, writes what is missing or wrong, keeps
// what an earlier run left until markSynced, and then deletes it.
func TestEngineRestartAndPrune(t *testing.T) {
	k := newEngKernel("t", nil)
	k.m = map[string]int{"a": 1, "b": 9, "old": 3}
	tb := newTable[string, int]("t", k, engineConfig{})
	l := newLoop(tb)
	tb.setWake(l.signal)
	tb.replace(map[string]int{"a": 1, "b": 2, "c": 3})
	if n := drainT(t, l); n != 2 {
		t.Errorf("first pass wrote %d, want 2 (b fixed, c added; a already right)", n)
	}
	if got := k.state(); !maps.Equal(got, map[string]int{"a": 1, "b": 2, "c": 3, "old": 3}) {
		t.Errorf("kernel before markSynced: %v", got)
	}
	// A key this run wrote and then withdrew goes before markSynced.
	tb.del("c")
	drainT(t, l)
	if _, ok := k.state()["c"]; ok {
		t.Error("c, written by this run and withdrawn, was kept")
	}
	tb.markSynced()
	drainT(t, l)
	if got := k.state(); !maps.Equal(got, map[string]int{"a": 1, "b": 2}) {
		t.Errorf("kernel after markSynced: %v", got)
	}
	if dumps, _ := k.counts(); dumps != 1 {
		t.Errorf("%d dumps, want 1", dumps)
	}
	s := tb.snapshotStats()
	if s.Writes != 2 || s.Deletes != 2 || s.Skipped == 0 || s.Repairs != 0 {
		t.Errorf("stats %+v", s)
	}
}

// One change and one drift each cost one op and no dump, and fib's own
// writes read back cost none.
func TestEngineSingleKeyCost(t *testing.T) {
	k := newEngKernel("t", nil)
	tb := newTable[string, int]("t", k, engineConfig{})
	l := newLoop(tb)
	want := map[string]int{}
	for i := range 10000 {
		want[fmt.Sprint(i)] = i
	}
	tb.replace(want)
	drainT(t, l)
	dumps0, ops0 := k.counts()
	// Every write comes back as a kernel event.
	for key, v := range k.state() {
		tb.observed(key, v, true)
	}
	tb.set("5", 55)
	drainT(t, l)
	// Someone deletes an entry, and another changes one.
	delete(k.m, "7")
	tb.observed("7", 0, false)
	k.m["8"] = 88
	tb.observed("8", 88, true)
	drainT(t, l)
	dumps, ops := k.counts()
	if dumps != dumps0 || ops-ops0 != 3 {
		t.Errorf("a change and two drifts cost %d dumps and %d ops, want 0 and 3", dumps-dumps0, ops-ops0)
	}
	if got := k.state(); got["5"] != 55 || got["7"] != 7 || got["8"] != 8 {
		t.Errorf("kernel 5=%d 7=%d 8=%d", got["5"], got["7"], got["8"])
	}
	if s := tb.snapshotStats(); s.Repairs != 2 {
		t.Errorf("repairs %d, want 2", s.Repairs)
	}
	// An event for a key nobody wants and that is not fib's: nothing.
	tb.observed("stranger", 1, false)
	if tb.pending() {
		t.Error("an event for an unknown key made work")
	}
}

// A failed write is retried with backoff, reported meanwhile, and a
// change of the key retries it at once.
func TestEngineRetry(t *testing.T) {
	k := newEngKernel("t", nil)
	k.fail["x"] = 2
	tb := newTable[string, int]("t", k, engineConfig{MinBackoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
	l := newLoop(tb)
	tb.replace(map[string]int{"x": 1, "y": 2})
	if n, err := l.drain(context.Background()); n != 1 || err == nil {
		t.Errorf("first pass: %d %v, want 1 write and an error", n, err)
	}
	if f := tb.failures(); f["x"] == nil || len(f) != 1 {
		t.Errorf("failures %v", f)
	}
	at, ok := tb.nextRetry()
	if !ok || time.Until(at) <= 0 {
		t.Fatalf("next retry %v %v", at, ok)
	}
	// Not due yet: a plan before its time leaves x alone (the clock is
	// passed in: no test of elapsed time).
	if b := tb.plan(at.Add(-time.Millisecond)); len(b.ups)+len(b.dels) != 0 {
		t.Errorf("retried before its time: %+v", b.ups)
	}
	if b := tb.plan(at); len(b.ups) != 1 || b.ups[0].Key != "x" {
		t.Errorf("not retried at its time: %+v", b.ups)
	}
	tb.mu.Lock()
	delete(tb.flight, "x")
	tb.dirty["x"] = true // planned above but not applied: run does it
	tb.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runLoop[struct{}](ctx, l, nil, nil, nil) }()
	deadline := time.Now().Add(5 * time.Second)
	for k.state()["x"] != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	if k.state()["x"] != 1 {
		t.Fatal("x never written")
	}
	if s := tb.snapshotStats(); s.Errors != 2 || s.Pending != 0 {
		t.Errorf("stats %+v", s)
	}
}

// Keys go in batches of the configured size.
func TestEngineBatches(t *testing.T) {
	k := newEngKernel("t", nil)
	tb := newTable[string, int]("t", k, engineConfig{Batch: 3})
	l := newLoop(tb)
	tb.replace(map[string]int{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7})
	if n := drainT(t, l); n != 7 {
		t.Errorf("wrote %d", n)
	}
	if !slices.Equal(k.batches, []int{3, 3, 1}) {
		t.Errorf("batches %v, want [3 3 1]", k.batches)
	}
}

// The loop writes the kinds' upserts in their order and their deletes in
// reverse: a next hop before the route that uses it, after it when both
// go.
func TestEngineKindOrder(t *testing.T) {
	var log []string
	kn, kr := newEngKernel("nexthop", &log), newEngKernel("route", &log)
	nh := newTable[string, int]("nexthop", kn, engineConfig{})
	rt := newTable[string, int]("route", kr, engineConfig{})
	l := newLoop(nh, rt)
	rt.replace(map[string]int{"r": 1})
	nh.replace(map[string]int{"n": 1})
	drainT(t, l)
	rt.replace(map[string]int{})
	nh.replace(map[string]int{})
	drainT(t, l)
	want := []string{"nexthop set n", "route set r", "route del r", "nexthop del n"}
	if !slices.Equal(log, want) {
		t.Errorf("order %q, want %q", log, want)
	}
}

// A drift reported while the key's write is in flight is not forgotten
// when the write's outcome is recorded.
func TestEngineEventDuringApply(t *testing.T) {
	k := newEngKernel("t", nil)
	tb := newTable[string, int]("t", k, engineConfig{})
	l := newLoop(tb)
	tb.replace(map[string]int{"a": 1})
	drainT(t, l) // the dump
	tb.set("a", 2)
	k.during = func(c change[string, int]) {
		// Someone deletes the entry just written, and says so before
		// apply returns.
		k.mu.Lock()
		delete(k.m, c.Key)
		k.mu.Unlock()
		tb.observed(c.Key, 0, false)
	}
	if _, err := l.pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	k.during = nil
	drainT(t, l)
	if k.state()["a"] != 2 {
		t.Errorf("a drift during the write was lost: kernel %v", k.state())
	}
}

// A failed kernel read leaves the kind out of the pass (no write on a
// guess); the next pass reads again.
func TestEngineDumpFails(t *testing.T) {
	k := newEngKernel("t", nil)
	k.fail["dump"] = 1
	k.m["old"] = 1
	tb := newTable[string, int]("t", k, engineConfig{})
	l := newLoop(tb)
	tb.replace(map[string]int{"a": 1})
	if n, err := l.drain(context.Background()); n != 0 || err == nil {
		t.Errorf("pass with a failed dump: %d %v", n, err)
	}
	if !tb.dumpDue() {
		t.Error("dump not due again")
	}
	if n := drainT(t, l); n != 1 {
		t.Errorf("second pass wrote %d", n)
	}
}

// run hands events to their handler and repairs at once; it stops with
// its context.
func TestEngineRunEvents(t *testing.T) {
	k := newEngKernel("t", nil)
	tb := newTable[string, int]("t", k, engineConfig{})
	l := newLoop(tb)
	tb.setWake(l.signal)
	tb.replace(map[string]int{"a": 1})
	type ev struct {
		key     string
		present bool
	}
	events := make(chan ev, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runLoop(ctx, l, events, func(e ev) { tb.observed(e.key, 0, e.present) }, nil)
	}()
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5s", what)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	wait("install", func() bool { return k.state()["a"] == 1 })
	k.mu.Lock()
	delete(k.m, "a")
	k.mu.Unlock()
	events <- ev{"a", false}
	wait("repair", func() bool { return k.state()["a"] == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	if dumps, _ := k.counts(); dumps != 1 {
		t.Errorf("%d dumps, want 1", dumps)
	}
}
