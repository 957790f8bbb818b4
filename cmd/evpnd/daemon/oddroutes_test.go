package daemon

import (
	"testing"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

func TestOddLimiter(t *testing.T) {
	var o oddLimiter
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < oddLogBurst; i++ {
		if ok, n := o.allow(evpn.OddLabelZero, t0); !ok || n != 0 {
			t.Fatalf("line %d: allow = %v,%d, want true,0", i, ok, n)
		}
	}
	for i := 0; i < 3; i++ {
		if ok, _ := o.allow(evpn.OddLabelZero, t0.Add(time.Second)); ok {
			t.Fatalf("line %d past the burst allowed", oddLogBurst+i)
		}
	}
	// Another kind has its own budget.
	if ok, _ := o.allow(evpn.OddNoPMSI, t0.Add(time.Second)); !ok {
		t.Fatal("another kind suppressed")
	}
	// The next period logs again, with the count suppressed.
	if ok, n := o.allow(evpn.OddLabelZero, t0.Add(oddLogPeriod)); !ok || n != 3 {
		t.Fatalf("next period: allow = %v,%d, want true,3", ok, n)
	}
}
