package fib

import (
	"container/heap"
	"math/rand/v2"
	"time"
)

// backoff is the delay before attempt n+1 after n consecutive failures:
// MinBackoff doubling per failure up to MaxBackoff, with ±10% jitter so
// that entries failing together do not retry in lockstep forever.
func backoff(c Config, n int) time.Duration {
	d := c.MinBackoff
	for i := 1; i < n && d < c.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.MaxBackoff)
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return d + jitter
}

type retryItem struct {
	key Key
	at  time.Time
}

// retryHeap orders pending retries by time. An entry whose status changed
// since it was pushed (retried early, succeeded) is dropped when popped.
type retryHeap struct{ items []retryItem }

func (h *retryHeap) Len() int           { return len(h.items) }
func (h *retryHeap) Less(i, j int) bool { return h.items[i].at.Before(h.items[j].at) }
func (h *retryHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *retryHeap) Push(x any)         { h.items = append(h.items, x.(retryItem)) }
func (h *retryHeap) Pop() any {
	n := len(h.items) - 1
	it := h.items[n]
	h.items = h.items[:n]
	return it
}

func (h *retryHeap) push(k Key, at time.Time) { heap.Push(h, retryItem{key: k, at: at}) }

// next returns the earliest retry time.
func (h *retryHeap) next() (time.Time, bool) {
	if len(h.items) == 0 {
		return time.Time{}, false
	}
	return h.items[0].at, true
}

// popDue removes and returns the earliest item if it is due at now.
func (h *retryHeap) popDue(now time.Time) (Key, time.Time, bool) {
	if len(h.items) == 0 || h.items[0].at.After(now) {
		return Key{}, time.Time{}, false
	}
	it := heap.Pop(h).(retryItem)
	return it.key, it.at, true
}
