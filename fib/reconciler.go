package fib

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Kernel is fib's IO edge: the one thing that reads and writes the kernel.
// NetlinkKernel (Linux) is the real one; tests use fakes.
type Kernel interface {
	// Dump returns the bridge FDB entries (VXLAN and bridge side) on the
	// VXLAN devices of vnis, and one KernelEntry with Device set for each
	// of those devices that exists. A device that does not exist has no
	// entries. An interrupted dump is retried by the implementation. Dump
	// must be safe to call while Apply runs in another goroutine
	// (Reconciler.Check does).
	Dump(ctx context.Context, vnis []VNIDevices) ([]KernelEntry, error)
	// Apply performs ops in order and returns one error per op, nil for
	// success. Ops are idempotent: setting an entry that is already there
	// and deleting one that is missing both succeed.
	Apply(ctx context.Context, ops []Op) []error
}

// Config tunes a Reconciler. Zero values take the defaults.
type Config struct {
	// BatchSize is the number of dirty keys handed to one Kernel.Apply.
	// Default 4096.
	BatchSize int
	// MinBackoff and MaxBackoff bound the exponential retry delay of a
	// failed entry. Defaults 100ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// ResyncInterval re-reads the kernel and repairs drift (entries removed
	// or changed by someone else) this often; 0 disables periodic resyncs.
	ResyncInterval time.Duration
	// OnApply, when set, is called after each kernel operation with its
	// outcome, on Run's goroutine: it must be cheap and must not block
	// (count, or record a trace span).
	OnApply func(ApplyEvent)
	// OnPass, when set, is called after each reconcile pass that found
	// dirty keys, on Run's goroutine; the same rules apply.
	OnPass func(PassEvent)
}

func (c Config) withDefaults() Config {
	if c.BatchSize <= 0 {
		c.BatchSize = 4096
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(30*time.Second, c.MinBackoff)
	}
	return c
}

// Stats are the reconciler's counters since it was created.
type Stats struct {
	Writes  uint64 // entries written: MAC replaces and flood appends
	Deletes uint64 // entries deleted
	Skipped uint64 // wanted entries found already correct and not rewritten
	Errors  uint64 // failed operations (each is retried)
	Resyncs uint64 // kernel dumps read
	// Repairs counts successful operations that undid a change someone
	// else made to a managed VXLAN device's FDB (reported through
	// KernelChanged, or found by a resync after the first).
	Repairs       uint64
	Installed     int           // entries fib owns in the kernel
	Stale         int           // owned entries from an earlier run waiting for MarkSynced
	Pending       int           // entries waiting for a retry
	LastReconcile time.Duration // duration of the last pass that found work
	LastResync    time.Duration // duration of the last kernel dump and diff
}

// Status is the state of one entry that failed.
type Status struct {
	Op        string    // the operation, as iproute2 commands
	Attempts  int       // consecutive failures
	LastError error     // the last failure
	RetryAt   time.Time // when it is tried again
}

// Reconciler keeps the kernel equal to a Desired table. Create it with
// NewReconciler and run Run in one goroutine; the other methods are safe
// from any goroutine.
type Reconciler struct {
	d   *Desired
	k   Kernel
	log *slog.Logger
	cfg Config

	running    atomic.Bool
	markSynced atomic.Bool
	synced     atomic.Bool
	kick       chan struct{} // MarkSynced, Resync; buffer 1
	queries    chan installedQuery
	resyncReq  atomic.Bool
	idle       atomic.Bool // Run waits for work (tests)

	// Owned by Run's goroutine.
	devs      map[uint32]VNIDevices // the devices as of the last kernel read
	installed map[Key]Installed
	stale     int
	prune     bool
	retries   retryHeap
	batch     []want
	ops       []Op
	opKeys    []Key
	loopStats Stats
	// repairs holds the keys that changed behind fib's back and wait for
	// the pass that repairs them; opRepairs the repairs of the batch
	// being applied.
	repairs   map[Key]struct{}
	opRepairs []opRepair
	// recent and recentQ remember, for echoWindow, the record of each key
	// before fib's latest operation on it; held holds the reports that
	// may be late echoes (kevents.go).
	recent  map[Key]recentOp
	recentQ []keyAt
	held    map[Key]heldFold

	// status is written by Run's goroutine under mu and read by Status.
	mu     sync.Mutex
	stats  Stats
	status map[Key]*Status

	// Kernel changes queued by KernelChanged for Run.
	kevMu sync.Mutex
	kev   map[Key]kstate

	// Checks under way (check.go).
	watchMu   sync.Mutex
	watches   map[*checkWatch]struct{}
	nwatch    atomic.Int32
	resyncing atomic.Bool
}

// NewReconciler returns a reconciler of d into k. log may be nil.
func NewReconciler(d *Desired, k Kernel, log *slog.Logger, cfg Config) *Reconciler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{
		d:         d,
		k:         k,
		log:       log,
		cfg:       cfg.withDefaults(),
		kick:      make(chan struct{}, 1),
		queries:   make(chan installedQuery),
		installed: make(map[Key]Installed),
		devs:      make(map[uint32]VNIDevices),
		status:    make(map[Key]*Status),
	}
}

func (r *Reconciler) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// MarkSynced tells the reconciler that the desired table is complete (BGP
// End-of-RIB from every peer, or the caller's timeout). From then on it
// deletes the entries of an earlier run that are not wanted. Calling it
// again is a no-op.
func (r *Reconciler) MarkSynced() {
	if r.markSynced.CompareAndSwap(false, true) {
		r.poke()
	}
}

// Synced reports whether MarkSynced was called and the prune pass that
// follows it has run: every stale entry has been deleted or, if its delete
// failed, is in Stats.Pending for a retry.
func (r *Reconciler) Synced() bool { return r.synced.Load() }

// Resync asks for the kernel to be read again and every difference to be
// repaired, for example after an event socket overflowed (ENOBUFS) or a
// device was recreated.
func (r *Reconciler) Resync() {
	r.resyncReq.Store(true)
	r.poke()
}

// Stats returns a copy of the counters.
func (r *Reconciler) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Status returns the failure state of key k, if its last operation failed.
func (r *Reconciler) Status(k Key) (Status, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.status[k]
	if !ok {
		return Status{}, false
	}
	return *s, true
}

// Run reconciles until ctx is cancelled, then returns nil. It first reads
// the kernel (retrying until that works) and writes nothing before. Only
// one Run may be active.
func (r *Reconciler) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("fib: reconciler is already running")
	}
	defer r.running.Store(false)

	var tick <-chan time.Time
	if r.cfg.ResyncInterval > 0 {
		t := time.NewTicker(r.cfg.ResyncInterval)
		defer t.Stop()
		tick = t.C
	}
	retryTimer := time.NewTimer(time.Hour)
	retryTimer.Stop()
	defer retryTimer.Stop()

	needResync, resyncFailures := true, 0
	for ctx.Err() == nil {
		changed, devs := r.d.takeDevicesChanged()
		if r.resyncReq.Swap(false) {
			needResync = true
		}
		if needResync || changed {
			var err error
			r.startResync()
			if needResync {
				r.takeKernelEvents() // the dump below supersedes them
				clear(r.held)
				err = r.resync(ctx, devs)
			} else {
				err = r.resyncVNIs(ctx, devs)
			}
			r.resyncing.Store(false)
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				resyncFailures++
				d := backoff(r.cfg, resyncFailures)
				r.log.Error("fib: reading kernel FDB failed; nothing is written until it works",
					"err", err, "attempt", resyncFailures, "retry_in", d)
				needResync = true
				if !sleepCtx(ctx, d) {
					break
				}
				continue
			}
			needResync, resyncFailures = false, 0
		}
		if r.markSynced.Load() && !r.prune {
			r.startPrune()
		}
		r.drain(ctx)
		if r.prune && !r.synced.Load() && r.d.Dirty() == 0 {
			r.synced.Store(true)
			r.log.Info("fib: synced; entries of an earlier run that are not wanted were removed",
				"installed", len(r.installed), "pending", len(r.status))
		}
		r.publish()

		if r.d.devicesPending() || r.resyncReq.Load() {
			continue // drain stopped early: read the kernel first
		}
		at, ok := r.retries.next()
		if h := r.expireHeld(time.Now()); !h.IsZero() && (!ok || h.Before(at)) {
			at, ok = h, true
		}
		if ok {
			retryTimer.Reset(time.Until(at))
		}
		r.idle.Store(true)
		select {
		case <-ctx.Done():
		case <-r.d.wakeC():
		case <-r.kick:
		case q := <-r.queries:
			// Changes reported meanwhile are folded first, so that an
			// entry deleted behind fib's back is not shown as installed
			// (the pass after the query repairs it).
			if len(r.devs) > 0 {
				r.foldKernelEvents(time.Now())
			}
			q.fn(r.installed)
			close(q.done)
		case <-tick:
			needResync = true
		case <-retryTimer.C:
		}
		r.idle.Store(false)
		retryTimer.Stop()
		r.requeueDue(time.Now())
	}
	return nil
}

// startPrune switches to deleting stale entries and queues them.
func (r *Reconciler) startPrune() {
	r.prune = true
	var keys []Key
	for k, in := range r.installed {
		if in.Stale {
			keys = append(keys, k)
		}
	}
	r.log.Info("fib: MarkSynced; removing entries of an earlier run that are not wanted", "candidates", len(keys))
	r.d.markDirty(keys...)
}

// drain processes dirty keys in batches until none are left, ctx ends or
// the devices change (which needs a resync first).
func (r *Reconciler) drain(ctx context.Context) {
	start, did := time.Now(), false
	var ops, errs int
	for ctx.Err() == nil && !r.d.devicesPending() && !r.resyncReq.Load() {
		now := time.Now()
		r.foldKernelEvents(now)
		r.expireHeld(now)
		r.batch = r.d.takeDirty(r.cfg.BatchSize, r.batch[:0])
		if len(r.batch) == 0 {
			break
		}
		did = true
		o, e := r.process(ctx, r.batch)
		ops, errs = ops+o, errs+e
		r.publish()
	}
	if did {
		r.loopStats.LastReconcile = time.Since(start)
		if r.cfg.OnPass != nil {
			r.cfg.OnPass(PassEvent{Duration: r.loopStats.LastReconcile, Ops: ops, Errors: errs})
		}
	}
}

// process plans and applies one batch and returns the number of
// operations and of failed ones.
func (r *Reconciler) process(ctx context.Context, batch []want) (int, int) {
	r.ops, r.opKeys, r.opRepairs = r.ops[:0], r.opKeys[:0], r.opRepairs[:0]
	for _, w := range batch {
		have, ok := r.installed[w.Key]
		_, repair := r.repairs[w.Key]
		if repair {
			delete(r.repairs, w.Key)
		}
		if w.OK && ok && have.Stale {
			have.Stale = false // wanted in this run: ours again
			r.installed[w.Key] = have
			r.stale--
		}
		if w.Recheck && ok && !have.suspect {
			// Invalidated: distrust the record until a write or delete
			// succeeds, so that a failed rewrite is retried as a write.
			have.suspect = true
			r.installed[w.Key] = have
		}
		op, do := planKey(w, have, ok, r.prune)
		if !do {
			if w.OK {
				r.loopStats.Skipped++
			}
			r.clearStatus(w.Key)
			continue
		}
		if repair {
			dev := have.Dev
			if w.OK {
				dev = w.Entry.Dev
			}
			r.opRepairs = append(r.opRepairs, opRepair{i: len(r.ops), d: repairDrift(w, have, ok, op, dev)})
		}
		r.ops = append(r.ops, op)
		r.opKeys = append(r.opKeys, w.Key)
	}
	if len(r.ops) == 0 {
		return 0, 0
	}
	errs := r.k.Apply(ctx, r.ops)
	now := time.Now()
	r.noteApplied(r.opKeys)
	logged := 0
	var failed, repaired int
	var firstErr error
	reps := r.opRepairs
	for i, op := range r.ops {
		k := r.opKeys[i]
		var err error
		if i < len(errs) {
			err = errs[i]
		} else {
			err = errors.New("fib: kernel returned no result")
		}
		var rep Drift
		if len(reps) > 0 && reps[0].i == i {
			rep, reps = reps[0].d, reps[1:]
		}
		if r.cfg.OnApply != nil {
			r.cfg.OnApply(ApplyEvent{Key: k, VTEP: op.Entry.VTEP, Delete: op.Kind == OpDelete, Err: err, Time: now, Repair: rep})
		}
		if err == nil {
			r.applied(k, op, now)
			if rep.Kind != 0 {
				r.loopStats.Repairs++
				if repaired++; repaired <= maxRepairLogs {
					r.log.Info("fib: repaired the kernel: an entry was changed behind evpnd's back", repairAttrs(rep)...)
				}
			}
			continue
		}
		failed++
		if firstErr == nil {
			firstErr = err
		}
		st := r.fail(k, op, err, now)
		// Log the first failures of a batch and then at powers of two
		// attempts, so that a missing device does not flood the log.
		if logged < 8 && st.Attempts&(st.Attempts-1) == 0 {
			logged++
			r.log.Warn("fib: kernel write failed; will retry", append(opAttrs(op),
				"attempts", st.Attempts, "retry_in", st.RetryAt.Sub(now).Round(time.Millisecond), "err", err)...)
		}
	}
	if repaired > maxRepairLogs {
		r.log.Info("fib: repaired more kernel entries changed behind evpnd's back", "repaired", repaired, "logged", maxRepairLogs)
	}
	if failed > logged {
		r.log.Warn("fib: kernel writes failed in batch; will retry", "failed", failed, "ops", len(r.ops), "first_err", firstErr)
	}
	return len(r.ops), failed
}

func repairAttrs(d Drift) []any {
	a := []any{"vni", d.VNI, "dev", d.Device, "table", d.Table, "drift", d.Kind.String()}
	if d.Table != TableFlood {
		a = append(a, "mac", d.MAC.String())
	}
	if d.Want.IsValid() {
		a = append(a, "vtep", d.Want.String())
	}
	if d.Have.IsValid() {
		a = append(a, "kernel_vtep", d.Have.String())
	}
	return append(a, "fix", d.Detail)
}

func opAttrs(op Op) []any {
	a := []any{"vni", op.Entry.VNI, "dev", op.Entry.Dev}
	if !op.Entry.IsFlood() {
		a = append(a, "mac", op.Entry.MAC.String())
	}
	if op.Entry.VTEP.IsValid() {
		a = append(a, "vtep", op.Entry.VTEP.String())
	}
	kind := "set"
	if op.Kind == OpDelete {
		kind = "delete"
	}
	return append(a, "op", kind)
}

func (r *Reconciler) applied(k Key, op Op, now time.Time) {
	old, had := r.installed[k]
	r.noteOp(k, old, had, now)
	switch op.Kind {
	case OpSet:
		r.installed[k] = Installed{Dev: op.Entry.Dev, VTEP: op.Entry.VTEP, Self: true, Master: !op.Entry.IsFlood(), Sticky: op.Entry.Sticky, SendVNI: op.Entry.SendVNI}
		r.loopStats.Writes++
	case OpDelete:
		delete(r.installed, k)
		r.loopStats.Deletes++
	}
	if had && old.Stale {
		r.stale--
	}
	if st, ok := r.status[k]; ok {
		r.log.Info("fib: kernel write succeeded after retries", append(opAttrs(op), "attempts", st.Attempts)...)
		r.clearStatus(k)
	}
	if r.log.Enabled(context.Background(), slog.LevelDebug) {
		r.log.Debug("fib: applied", opAttrs(op)...)
	}
}

func (r *Reconciler) fail(k Key, op Op, err error, now time.Time) *Status {
	r.loopStats.Errors++
	if op.Kind == OpSet && !op.Entry.IsFlood() {
		// The kernel applies the bridge half of the message first and may
		// have kept it when the VXLAN half failed (EINVAL, EAFNOSUPPORT):
		// remember it so that a later delete removes it. The record is
		// then a guess: suspect, it holds nothing, so that the retry
		// writes again and `show evpn mac` does not count the entry in
		// the kernel.
		in := r.installed[k]
		if in.Dev == "" || in.Dev == op.Entry.Dev {
			in.Dev, in.Master, in.suspect = op.Entry.Dev, true, true
			r.installed[k] = in
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.status[k]
	if !ok {
		st = &Status{}
		r.status[k] = st
	}
	st.Op, st.LastError = op.String(), err
	st.Attempts++
	st.RetryAt = now.Add(backoff(r.cfg, st.Attempts))
	r.retries.push(k, st.RetryAt)
	return st
}

func (r *Reconciler) clearStatus(k Key) {
	if _, ok := r.status[k]; !ok {
		return
	}
	r.mu.Lock()
	delete(r.status, k)
	r.mu.Unlock()
}

// requeueDue marks the keys whose retry time has come dirty again.
func (r *Reconciler) requeueDue(now time.Time) {
	var due []Key
	for {
		k, at, ok := r.retries.popDue(now)
		if !ok {
			break
		}
		if st, ok := r.status[k]; ok && st.RetryAt.Equal(at) {
			due = append(due, k)
		}
	}
	r.d.markDirty(due...)
}

// publish copies the loop's counters for Stats.
func (r *Reconciler) publish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.loopStats
	s.Installed, s.Stale, s.Pending = len(r.installed), r.stale, len(r.status)
	r.stats = s
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// opRepair is an operation of the current batch (its index in r.ops)
// that repairs drift.
type opRepair struct {
	i int
	d Drift
}

// maxRepairLogs bounds the repairs logged one by one per batch; the rest
// are counted in one line, so that a flush of 100k entries by hand does
// not flood the log.
const maxRepairLogs = 16

type installedQuery struct {
	fn   func(map[Key]Installed)
	done chan struct{}
}

// Installed calls fn, in Run's goroutine, with the reconciler's record of
// the entries it holds in the kernel: what it wrote and the kernel
// acknowledged, corrected by kernel change reports and resyncs. It reads no
// kernel state, so it is cheap at any size; fn must not keep the map. It
// waits until Run is between two passes, and fails if Run is not running.
func (r *Reconciler) Installed(ctx context.Context, fn func(map[Key]Installed)) error {
	q := installedQuery{fn: fn, done: make(chan struct{})}
	for {
		if !r.running.Load() {
			return errors.New("fib: reconciler is not running")
		}
		select {
		case r.queries <- q:
			<-q.done
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
			// Run may have stopped meanwhile: check again.
		}
	}
}
