package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/evpnd/evpnd/fib"
)

// driftRepairDelay is how long a change someone else made to a managed
// VXLAN device's FDB stays before the reconciler repairs it: long enough
// for evpnctl check to show the drift (and for an operator's burst of
// edits to finish), short enough that forwarding is back within a second
// or two.
const driftRepairDelay = time.Second

// driftQueue delays kernel-change reports by driftRepairDelay, with one
// goroutine and one slice for any number of them (a withdraw burst of
// evpnd's own deletes reports every one).
type driftQueue struct {
	mu      sync.Mutex
	pending []delayedChange
	deliver func(fib.KernelEvent)
}

type delayedChange struct {
	due time.Time
	ev  fib.KernelEvent
}

func (q *driftQueue) add(ev fib.KernelEvent) {
	q.mu.Lock()
	q.pending = append(q.pending, delayedChange{due: time.Now().Add(driftRepairDelay), ev: ev})
	q.mu.Unlock()
}

// run delivers due reports until ctx ends.
func (q *driftQueue) run(ctx context.Context) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			q.mu.Lock()
			n := 0
			for n < len(q.pending) && !q.pending[n].due.After(now) {
				n++
			}
			due := make([]delayedChange, n)
			copy(due, q.pending[:n])
			q.pending = append(q.pending[:0], q.pending[n:]...)
			q.mu.Unlock()
			for _, c := range due {
				q.deliver(c.ev)
			}
		}
	}
}
