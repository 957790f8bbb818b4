package daemon

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/api"
)

// watchBuffer is how many changes a watcher may fall behind before it is
// cut off (it then gets api.ErrSlowConsumer and must watch again).
const watchBuffer = 16384

// hub fans table changes out to API watchers. publish never blocks: the
// daemon loop must not wait for a slow client.
type hub struct {
	mu   sync.Mutex
	subs map[*watcher]struct{}
	n    atomic.Int32 // len(subs), read without the lock by active
}

type watcher struct {
	ch       chan api.Change
	overflow chan struct{} // closed when a change was dropped
	dropped  bool          // under hub.mu: nothing more is queued
}

func newHub() *hub { return &hub{subs: map[*watcher]struct{}{}} }

// active reports whether anyone watches; the loop skips building changes
// otherwise. Only the loop goroutine calls subscribe (through a call), so a
// stale read here can only miss changes made before the subscription.
func (h *hub) active() bool { return h.n.Load() > 0 }

func (h *hub) subscribe() *watcher {
	w := &watcher{ch: make(chan api.Change, watchBuffer), overflow: make(chan struct{})}
	h.mu.Lock()
	h.subs[w] = struct{}{}
	h.n.Store(int32(len(h.subs)))
	h.mu.Unlock()
	return w
}

func (h *hub) unsubscribe(w *watcher) {
	h.mu.Lock()
	delete(h.subs, w)
	h.n.Store(int32(len(h.subs)))
	h.mu.Unlock()
}

func (h *hub) publish(c api.Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.subs {
		if w.dropped {
			continue
		}
		select {
		case w.ch <- c:
		default:
			// The client missed a change: stop queueing, so that it gets
			// everything up to the gap and then the error.
			w.dropped = true
			close(w.overflow)
		}
	}
}

// serve sends initial (if any), a Synced marker when initial is wanted, then
// every change, until ctx ends, fn fails or the watcher overflows.
func (w *watcher) serve(ctx context.Context, initial []api.Change, sendSynced bool, fn func(api.Change) error) error {
	for _, c := range initial {
		if err := fn(c); err != nil {
			return err
		}
	}
	if sendSynced {
		if err := fn(api.Change{Time: time.Now(), Kind: api.ChangeSynced}); err != nil {
			return err
		}
	}
	for {
		// Drain what is buffered before reporting an overflow, so the
		// client sees every change up to the gap.
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case c := <-w.ch:
			if err := fn(c); err != nil {
				return err
			}
			continue
		default:
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.overflow:
			return api.ErrSlowConsumer
		case c := <-w.ch:
			if err := fn(c); err != nil {
				return err
			}
		}
	}
}

// errStopped is returned by calls made while the leaf loop is not running
// (evpnd is starting, maybe waiting for interfaces, or stopping).
var errStopped = api.ErrUnavailable
