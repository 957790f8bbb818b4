package daemon

import "sync"

// queue is an unbounded FIFO with a wake channel of buffer one. Producers
// (the FDB learner, API calls, the Advertiser's Outbid reports) never block
// on it; the speaker's watch puts one batch at a time and waits for it to
// be handled, so BGP events never pile up here. The daemon loop drains
// everything queued in one go and handles it as a batch, which coalesces
// bursts without adding any fixed delay.
type queue[T any] struct {
	mu    sync.Mutex
	items []T
	wake  chan struct{}
}

func newQueue[T any]() *queue[T] { return &queue[T]{wake: make(chan struct{}, 1)} }

func (q *queue[T]) push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// drain returns everything queued, reusing buf's storage for the next round.
func (q *queue[T]) drain(buf []T) []T {
	q.mu.Lock()
	out := q.items
	q.items = buf[:0]
	q.mu.Unlock()
	return out
}

func (q *queue[T]) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
