package fib

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// L3Kernel is the kernel side of one VRF's L3 state (L3Netlink on Linux).
type L3Kernel interface {
	// Dump returns fib's marked entries of the VRF found in the kernel.
	Dump(ctx context.Context, dev L3Devices) (L3State, error)
	// Apply writes ops in order, returning one error per op (nil for
	// those that succeeded); deleting what is gone succeeds.
	Apply(ctx context.Context, dev L3Devices, ops []L3Op) []error
}

// L3Stats counts an L3Reconciler's work.
type L3Stats struct {
	Passes  int // Sync calls that read the kernel
	Applied int // ops written successfully
	Repairs int // ops written after the first pass that wrote something: drift and changes
	Errors  int // ops that failed
	Refused int // routes refused by WantL3 in the last pass
}

// L3Reconciler makes one VRF's kernel L3 state match an L3Desired, in
// passes: read fib's marked entries, plan (PlanL3), write. An entry the
// kernel already has as wanted is not written again, so fib's own writes,
// read back, cost a dump and nothing more; an entry deleted or changed by
// someone else is written again at the next pass (Run makes one at every
// kernel change WatchL3 reports). Until MarkSynced, nothing found in the
// kernel is deleted but what this run wrote itself (a restart keeps
// forwarding; a withdraw during the wait is carried out).
type L3Reconciler struct {
	d   *L3Desired
	k   L3Kernel
	log *slog.Logger

	mu      sync.Mutex
	synced  bool
	stats   L3Stats
	refused map[string]bool
	// written holds the entries this run wrote and has not deleted since:
	// those it may delete before MarkSynced (a withdraw during the wait
	// for End-of-RIB), unlike what an earlier run left.
	written map[L3Key]bool
}

// NewL3Reconciler returns a reconciler of d through k.
func NewL3Reconciler(d *L3Desired, k L3Kernel, log *slog.Logger) *L3Reconciler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &L3Reconciler{d: d, k: k, log: log.With("vrf", d.dev.VRF), refused: map[string]bool{}, written: map[L3Key]bool{}}
}

// MarkSynced allows deleting marked entries that are not wanted; call it
// once BGP has re-synced (End-of-RIB or a timeout).
func (r *L3Reconciler) MarkSynced() {
	r.mu.Lock()
	r.synced = true
	r.mu.Unlock()
	r.d.notify()
}

// Stats returns the counters.
func (r *L3Reconciler) Stats() L3Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Sync makes one pass and returns the number of ops written and the
// joined errors of those that failed.
func (r *L3Reconciler) Sync(ctx context.Context) (int, error) {
	// Whether to prune is read before the desired state: MarkSynced comes
	// after the routes up to End-of-RIB are in d, so a pass that prunes
	// plans with all of them. (Read after, a pass that took its snapshot
	// just before MarkSynced deleted the previous run's entries for the
	// routes of the last batch, and wrote them again a pass later.)
	r.mu.Lock()
	prune := r.synced
	r.mu.Unlock()
	snap := r.d.Snapshot()
	want, refused := WantL3(snap)
	have, err := r.k.Dump(ctx, snap.Dev)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	first := r.stats.Applied == 0
	r.stats.Passes++
	r.stats.Refused = len(refused)
	now := map[string]bool{}
	for _, f := range refused {
		k := f.Prefix.String()
		now[k] = true
		if !r.refused[k] {
			r.log.Warn("remote route not installed", "prefix", k, "reason", f.Reason)
		}
	}
	r.refused = now
	r.mu.Unlock()

	r.mu.Lock()
	ops := PlanL3With(want, have, func(op L3Op) bool { return prune || r.written[op.Key()] })
	r.mu.Unlock()
	if len(ops) == 0 {
		return 0, nil
	}
	errs := r.k.Apply(ctx, snap.Dev, ops)
	n := 0
	var failed []error
	for i, e := range errs {
		if e != nil {
			failed = append(failed, e)
			continue
		}
		n++
		r.log.Debug("l3 entry written", "op", ops[i].String(snap.Dev))
	}
	r.mu.Lock()
	for i, e := range errs {
		switch {
		case e != nil:
		case ops[i].Kind == L3Replace:
			r.written[ops[i].Key()] = true
		default:
			delete(r.written, ops[i].Key())
		}
	}
	r.stats.Applied += n
	if !first {
		r.stats.Repairs += n
	}
	r.stats.Errors += len(failed)
	r.mu.Unlock()
	if len(failed) > 0 {
		return n, fmt.Errorf("fib l3 %s: %d of %d writes failed: %w", snap.Dev.VRF, len(failed), len(ops), errors.Join(failed...))
	}
	return n, nil
}

// Run makes a pass at start, after every change of the desired state and
// after every signal on kernel (WatchL3; nil for none), until ctx ends
// (then it returns nil). A failed pass is retried with backoff from
// 100 ms to 5 s, and logged.
func (r *L3Reconciler) Run(ctx context.Context, kernel <-chan struct{}) error {
	backoff := time.Duration(0)
	for {
		if _, err := r.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
			r.log.Warn("l3 pass failed; retrying", "err", err, "in", backoff)
		} else {
			backoff = 0
		}
		var retry <-chan time.Time
		var t *time.Timer
		if backoff > 0 {
			t = time.NewTimer(backoff)
			retry = t.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.d.Wake():
		case _, ok := <-kernel:
			if !ok {
				kernel = nil
			}
		case <-retry:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// Check compares the kernel with the desired state without changing
// anything and returns the writes a pass would make if pruning were
// allowed: empty when the VRF's L3 state is as wanted.
func (r *L3Reconciler) Check(ctx context.Context) ([]L3Op, error) {
	snap := r.d.Snapshot()
	want, _ := WantL3(snap)
	have, err := r.k.Dump(ctx, snap.Dev)
	if err != nil {
		return nil, err
	}
	return PlanL3(want, have, true), nil
}
