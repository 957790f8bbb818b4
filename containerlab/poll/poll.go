// Package poll is the one poll loop of evpnd's tests and benchmarks: wait
// for a condition by checking it at an interval until it holds, instead of
// sleeping a guessed time. The packages' own waitFor and eventually
// helpers are thin wrappers that keep their call sites' forms.
package poll

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Interval is the pause between two checks that Must and True take.
const Interval = 10 * time.Millisecond

// ErrNotYet is the error Bool's condition returns while it does not hold.
var ErrNotYet = errors.New("condition not met")

// Until checks cond every interval until it returns nil, and returns how
// long that took. When timeout passes or ctx ends first, it returns cond's
// last error, wrapped with how long it waited.
func Until(ctx context.Context, timeout, interval time.Duration, cond func() error) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		err := cond()
		if err == nil {
			return time.Since(start), nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return time.Since(start), fmt.Errorf("not within %v: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

// Bool turns a condition that holds or not into Until's form.
func Bool(cond func() bool) func() error {
	return func() error {
		if cond() {
			return nil
		}
		return ErrNotYet
	}
}

// Must is Until checking every Interval that fails tb, naming what it
// waited for, when cond does not return nil within timeout.
func Must(tb testing.TB, timeout time.Duration, what string, cond func() error) time.Duration {
	tb.Helper()
	d, err := Until(context.Background(), timeout, Interval, cond)
	if err != nil {
		tb.Fatalf("waiting for %s: %v", what, err)
	}
	return d
}

// True is Must for a condition that holds or not.
func True(tb testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	tb.Helper()
	return Must(tb, timeout, what, Bool(cond))
}
