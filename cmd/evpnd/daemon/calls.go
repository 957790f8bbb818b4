package daemon

import (
	"context"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// do runs fn in the leaf loop and waits until the batch holding it has been
// applied to the kernel's desired state and announced to BGP.
func (l *leaf) do(ctx context.Context, fn func(now time.Time) []evpn.Effect) error {
	c := &call{fn: fn, done: make(chan struct{})}
	select {
	case <-l.stopped:
		return errStopped
	default:
	}
	l.q.push(event{call: c})
	select {
	case <-c.done:
		return nil
	case <-l.stopped:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// read runs fn in the leaf loop for a read-only look at its state.
func (l *leaf) read(ctx context.Context, fn func()) error {
	return l.do(ctx, func(time.Time) []evpn.Effect { fn(); return nil })
}
