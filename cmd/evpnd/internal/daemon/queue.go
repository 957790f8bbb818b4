package daemon

import "github.com/evpnd/evpnd/speaker/fifo"

// queue is the daemon loop's event queue: the shared unbounded FIFO
// (speaker/fifo). Producers (the FDB learner, API calls, the Advertiser's
// Outbid reports) never block on it; the speaker's watch puts one batch at a
// time and waits for it to be handled, so BGP events never pile up here. The
// daemon loop drains everything queued in one go and handles it as a batch.
type queue[T any] struct {
	q    *fifo.Queue[T]
	wake <-chan struct{}
}

func newQueue[T any]() *queue[T] {
	q := fifo.New[T]()
	return &queue[T]{q: q, wake: q.Wake()}
}

func (q *queue[T]) push(v T) { q.q.Push(v) }

// drain returns everything queued, reusing buf's storage for the next round.
func (q *queue[T]) drain(buf []T) []T { return q.q.Take(buf) }

func (q *queue[T]) len() int { return q.q.Len() }
