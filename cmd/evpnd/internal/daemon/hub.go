package daemon

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
)

// Bounds of the Watch streams, so that clients cannot make evpnd hold
// unbounded memory:
//   - watchBuffer is how many changes a watcher may fall behind before it
//     is cut off (it then gets api.ErrSlowConsumer and must watch again):
//     about 64 bytes each in the channel plus the change (a MAC change
//     ~100 bytes), so at most ~2.7 MB per stream;
//   - maxWatchers streams at once; one more gets api.ErrTooManyWatchers;
//   - maxSnapshots initial states (one row per MAC, ~170 bytes each: 17 MB
//     at 100k MACs) held at once; other streams wanting one wait their
//     turn, holding nothing meanwhile.
const (
	watchBuffer  = 16384
	maxWatchers  = 32
	maxSnapshots = 2
)

// hub fans table changes out to API watchers. publish never blocks: the
// daemon loop must not wait for a slow client.
type hub struct {
	mu   sync.Mutex
	subs map[*watcher]struct{}
	n    atomic.Int32 // len(subs), read without the lock by active
	// slots counts the streams admitted (maxWatchers); snapshots the
	// initial states being built or sent (maxSnapshots).
	slots     chan struct{}
	snapshots chan struct{}
}

type watcher struct {
	ch       chan api.Change
	overflow chan struct{} // closed when a change was dropped
	dropped  bool          // under hub.mu: nothing more is queued
}

func newHub() *hub {
	return &hub{subs: map[*watcher]struct{}{}, slots: make(chan struct{}, maxWatchers),
		snapshots: make(chan struct{}, maxSnapshots)}
}

// admit reserves a stream's slot, or fails with api.ErrTooManyWatchers;
// the caller calls release when the stream ends.
func (h *hub) admit() (release func(), err error) {
	select {
	case h.slots <- struct{}{}:
		return func() { <-h.slots }, nil
	default:
		return nil, api.ErrTooManyWatchers
	}
}

// snapshotTurn waits until fewer than maxSnapshots initial states are
// held, and reserves one; done releases it.
func (h *hub) snapshotTurn(ctx context.Context) (done func(), err error) {
	select {
	case h.snapshots <- struct{}{}:
		return func() { <-h.snapshots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

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
// every change, until ctx ends, fn fails or the watcher overflows. sent, if
// not nil, is called once initial has been sent (or failed), and initial
// is no longer referenced.
func (w *watcher) serve(ctx context.Context, initial []api.Change, sendSynced bool, fn func(api.Change) error, sent ...func()) error {
	for i, c := range initial {
		if err := fn(c); err != nil {
			for _, f := range sent {
				f()
			}
			return err
		}
		initial[i] = api.Change{} // let the sent rows go
	}
	initial = nil
	for _, f := range sent {
		f()
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
