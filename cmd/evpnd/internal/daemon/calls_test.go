package daemon

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// A call its caller abandoned before the loop took it never runs; one the
// loop took completes, and its caller waits for it.
func TestCallAbandonedNeverRuns(t *testing.T) {
	l := &leaf{q: newQueue[event](), stopped: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	ran := false
	errc := make(chan error, 1)
	go func() { errc <- l.do(ctx, func(time.Time) []evpn.Effect { ran = true; return nil }) }()
	// Wait until the call is queued, then give up on it.
	for l.q.len() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("do: %v", err)
	}
	// The loop now drains the queue: the abandoned call is skipped.
	for _, ev := range l.q.drain(nil) {
		l.handle(&ev, nil, time.Now())
	}
	if ran || len(l.calls) != 0 {
		t.Fatalf("abandoned call ran=%v, calls=%d", ran, len(l.calls))
	}
}

func TestCallRunningCompletesDespiteCancel(t *testing.T) {
	l := &leaf{q: newQueue[event](), stopped: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	inside := make(chan struct{})
	release := make(chan struct{})
	result := 0
	errc := make(chan error, 1)
	go func() {
		errc <- l.do(ctx, func(time.Time) []evpn.Effect {
			close(inside)
			<-release
			result = 42
			return nil
		})
	}()
	for l.q.len() == 0 {
		time.Sleep(time.Millisecond)
	}
	loopDone := make(chan struct{})
	go func() { // the loop: run the call, then finish the batch
		for _, ev := range l.q.drain(nil) {
			l.handle(&ev, nil, time.Now())
		}
		for _, c := range l.calls {
			close(c.done)
		}
		close(loopDone)
	}()
	<-inside
	cancel() // the caller gives up while fn runs
	select {
	case err := <-errc:
		t.Fatalf("do returned %v while its call was still running", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatalf("do: %v", err)
	}
	if result != 42 {
		t.Fatal("caller returned before the call finished")
	}
	<-loopDone
}

func TestCallAfterLoopStopped(t *testing.T) {
	l := &leaf{q: newQueue[event](), stopped: make(chan struct{})}
	close(l.stopped)
	if err := l.read(context.Background(), func() {}); !errors.Is(err, errStopped) {
		t.Fatalf("got %v", err)
	}
}
