package poll

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	n := 0
	d, err := Until(context.Background(), 5*time.Second, time.Millisecond, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n != 3 || d > 5*time.Second {
		t.Errorf("Until = %v, %v after %d checks; want nil after 3", d, err, n)
	}

	last := errors.New("the last state")
	if _, err := Until(context.Background(), 20*time.Millisecond, time.Millisecond, func() error { return last }); !errors.Is(err, last) {
		t.Errorf("timed out: %v, want the condition's last error", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if _, err := Until(ctx, time.Hour, time.Hour, Bool(func() bool { return false })); !errors.Is(err, ErrNotYet) || time.Since(start) > time.Minute {
		t.Errorf("cancelled: %v after %v, want ErrNotYet at once", err, time.Since(start))
	}
}

type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = format
}

func TestMustFails(t *testing.T) {
	f := &fatalRecorder{TB: t}
	True(f, 10*time.Millisecond, "never", func() bool { return false })
	if f.msg == "" {
		t.Error("a condition that never holds did not fail the test")
	}
}
