package fib

import (
	"context"
	"testing"
	"time"
)

// An invalidated key is written again although its record matches (the
// kernel changed it without an event), and a failed rewrite is retried
// as a write; the failure's state is the key's status until it works.
func TestEngineInvalidate(t *testing.T) {
	k := newEngKernel("t", nil)
	tb := newTable[string, int]("t", k, engineConfig{MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	l := newLoop(tb)
	tb.replace(map[string]int{"a": 1, "b": 2})
	drainT(t, l)
	_, ops := k.counts()
	// Changed behind the table's back, with no event.
	k.mu.Lock()
	k.m["a"] = 7
	k.fail["a"] = 1
	k.mu.Unlock()
	tb.invalidate("a")
	if n, err := l.drain(context.Background()); n != 0 || err == nil {
		t.Fatalf("rewrite: %d %v, want the injected failure", n, err)
	}
	st, ok := tb.status("a")
	if !ok || st.Attempts != 1 || st.Err == nil || st.RetryAt.IsZero() {
		t.Errorf("status after a failed rewrite: %+v %v", st, ok)
	}
	if _, ok := tb.status("b"); ok {
		t.Error("b has a status")
	}
	// The retry is a write again: the record is still distrusted.
	at, _ := tb.nextRetry()
	b := tb.plan(at)
	if len(b.ups) != 1 || b.ups[0].Key != "a" || b.ups[0].Value != 1 {
		t.Fatalf("retry: %+v", b.ups)
	}
	if _, err := b.applyUpserts(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := k.state()["a"]; got != 1 {
		t.Errorf("kernel a = %d, want 1", got)
	}
	if _, ok := tb.status("a"); ok {
		t.Error("status kept after the write worked")
	}
	// Trusted again: nothing more is written.
	_, ops2 := k.counts()
	if drainT(t, l); ops2 != ops+2 {
		t.Errorf("ops %d, want %d (one failed and one good rewrite of a)", ops2, ops+2)
	}
	if _, ops3 := k.counts(); ops3 != ops2 {
		t.Errorf("a written again after it was trusted: %d ops", ops3-ops2)
	}
	// Invalidating a key nobody wants and the kernel lacks costs nothing.
	tb.invalidate("zz")
	if n := drainT(t, l); n != 0 {
		t.Errorf("invalidating an unknown key wrote %d", n)
	}
}

// fakeClock is a clock a test moves by hand.
type fakeClock struct{ now time.Time }

func (c *fakeClock) get() time.Time { return c.now }

// With EchoHold, a kernel event that puts back what the table replaced a
// moment ago is held: the echo of the latest change confirms the record
// and drops it, at no cost; without that echo, it is taken as drift when
// the hold ends and repaired. Without EchoHold it is repaired at once.
func TestEngineEchoHold(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	setup := func(hold time.Duration) (*engKernel, *table[string, int], *loop) {
		k := newEngKernel("t", nil)
		tb := newTable[string, int]("t", k, engineConfig{EchoHold: hold})
		tb.clock = clk.get
		l := newLoop(tb)
		tb.set("m", 1) // the MAC at VTEP 1
		drainT(t, l)
		tb.set("m", 2) // moves to VTEP 2
		drainT(t, l)
		return k, tb, l
	}

	// The late echo of the first write, then the echo of the second.
	k, tb, l := setup(25 * time.Millisecond)
	_, ops := k.counts()
	clk.now = clk.now.Add(5 * time.Millisecond)
	tb.observed("m", 1, true)
	if tb.pending() {
		t.Error("a possible late echo made the key dirty at once")
	}
	if at, ok := tb.nextRetry(); !ok || !at.Equal(clk.now.Add(25*time.Millisecond)) {
		t.Errorf("next wake-up %v %v, want the end of the hold", at, ok)
	}
	tb.observed("m", 2, true)
	clk.now = clk.now.Add(time.Second)
	if n := drainT(t, l); n != 0 {
		t.Errorf("confirmed echo: %d writes", n)
	}
	if _, ops2 := k.counts(); ops2 != ops {
		t.Errorf("confirmed echo cost %d ops", ops2-ops)
	}
	if _, ok := tb.nextRetry(); ok {
		t.Error("hold kept after the confirming echo")
	}

	// A real change back to VTEP 1 (no confirming echo): repaired once
	// the hold ends, not before.
	k, tb, l = setup(25 * time.Millisecond)
	k.mu.Lock()
	k.m["m"] = 1
	k.mu.Unlock()
	clk.now = clk.now.Add(5 * time.Millisecond)
	tb.observed("m", 1, true)
	clk.now = clk.now.Add(24 * time.Millisecond)
	if n := drainT(t, l); n != 0 {
		t.Errorf("repaired during the hold: %d", n)
	}
	clk.now = clk.now.Add(time.Millisecond)
	if n := drainT(t, l); n != 1 || k.state()["m"] != 2 {
		t.Errorf("after the hold: %d writes, kernel %v", n, k.state())
	}
	if s := tb.snapshotStats(); s.Repairs != 1 {
		t.Errorf("repairs %d, want 1", s.Repairs)
	}

	// Past the window, the same event is drift at once.
	k, tb, l = setup(25 * time.Millisecond)
	clk.now = clk.now.Add(time.Second)
	tb.observed("m", 1, true)
	if !tb.pending() {
		t.Error("an event past the echo window was held")
	}
	if n := drainT(t, l); n != 1 || k.state()["m"] != 2 {
		t.Errorf("past the window: %d writes, kernel %v", n, k.state())
	}

	// Without EchoHold nothing is held.
	_, tb, _ = setup(0)
	tb.observed("m", 1, true)
	if !tb.pending() {
		t.Error("held without EchoHold")
	}

	// A held event outdated by a later change of the key is dropped.
	k, tb, l = setup(25 * time.Millisecond)
	tb.observed("m", 1, true)
	tb.set("m", 3)
	drainT(t, l)
	_, ops = k.counts()
	clk.now = clk.now.Add(time.Second)
	if n := drainT(t, l); n != 0 {
		t.Errorf("outdated held event repaired: %d", n)
	}
	if _, ops2 := k.counts(); ops2 != ops || k.state()["m"] != 3 {
		t.Errorf("outdated held event: %d ops, kernel %v", ops2-ops, k.state())
	}
}
