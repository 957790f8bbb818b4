package daemon

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// States of a call: the loop runs a pending call (pending → running); a
// caller that gives up first abandons it (pending → abandoned) and the
// loop skips it. Once running, a call completes and its caller waits for
// it, so fn never touches the caller's variables after the caller returned
// and a change never happens behind an error.
const (
	callPending int32 = iota
	callRunning
	callAbandoned
)

// call runs fn in the loop (the only goroutine that touches the table) for
// the API. ran is closed when fn has returned; done once the batch holding
// it has been applied and flushed, so a caller that changed state sees it
// announced.
type call struct {
	fn    func(now time.Time) []evpn.Effect
	state atomic.Int32
	ran   chan struct{}
	done  chan struct{}
}

// start claims a pending call for the loop; false if it was abandoned.
func (c *call) start() bool { return c.state.CompareAndSwap(callPending, callRunning) }

// do runs fn in the leaf loop and waits until the batch holding it has been
// applied to the kernel's desired state and announced to BGP. If ctx ends
// before the loop took the call, fn never runs and ctx's error is returned;
// once fn runs, do waits for it whatever ctx does.
func (l *leaf) do(ctx context.Context, fn func(now time.Time) []evpn.Effect) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-l.stopped:
		return errStopped
	default:
	}
	c := &call{fn: fn, ran: make(chan struct{}), done: make(chan struct{})}
	l.q.push(event{call: c})
	select {
	case <-c.done:
		return nil
	case <-l.stopped:
		if c.state.CompareAndSwap(callPending, callAbandoned) {
			return errStopped
		}
	case <-ctx.Done():
		if c.state.CompareAndSwap(callPending, callAbandoned) {
			return ctx.Err()
		}
	}
	// fn is running or ran: wait for it, then for its batch if the loop
	// still runs.
	<-c.ran
	select {
	case <-c.done:
	case <-l.stopped:
	}
	return nil
}

// read runs fn in the leaf loop for a read-only look at its state.
func (l *leaf) read(ctx context.Context, fn func()) error {
	return l.do(ctx, func(time.Time) []evpn.Effect { fn(); return nil })
}
