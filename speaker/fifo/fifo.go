// Package fifo is an unbounded first-in first-out queue with a wake-up
// channel of buffer one. Push never blocks, so producers (a GoBGP callback,
// the FDB learner, API calls) are safe to call it from anywhere; the single
// consumer waits on Wake and then takes everything queued in one go, which
// coalesces bursts without adding any fixed delay.
package fifo

import "sync"

// Queue is the FIFO. Make one with New.
type Queue[T any] struct {
	mu    sync.Mutex
	items []T
	wake  chan struct{}
}

// New returns an empty queue.
func New[T any]() *Queue[T] { return &Queue[T]{wake: make(chan struct{}, 1)} }

// Wake is signalled (at most one pending signal) after every Push.
func (q *Queue[T]) Wake() <-chan struct{} { return q.wake }

// Push appends v and wakes the consumer. It never blocks.
func (q *Queue[T]) Push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Take returns everything queued, oldest first, and empties the queue,
// reusing buf's storage (which may be nil) for the next round.
func (q *Queue[T]) Take(buf []T) []T {
	q.mu.Lock()
	out := q.items
	q.items = buf[:0]
	q.mu.Unlock()
	return out
}

// Len is how many items are queued.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
