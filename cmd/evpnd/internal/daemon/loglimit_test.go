package daemon

import (
	"testing"
	"time"
)

func TestLogLimit(t *testing.T) {
	var l logLimit
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	if ok, n := l.allow(t0); !ok || n != 0 {
		t.Fatalf("first line: %v %d", ok, n)
	}
	for i := range 5 {
		if ok, _ := l.allow(t0.Add(time.Duration(i) * time.Second)); ok {
			t.Fatalf("line %d within the interval let through", i)
		}
	}
	if ok, n := l.allow(t0.Add(logInterval)); !ok || n != 5 {
		t.Fatalf("after the interval: %v, %d held back; want true, 5", ok, n)
	}
	if ok, _ := l.allow(t0.Add(logInterval + time.Second)); ok {
		t.Fatal("second interval not limited")
	}
}
