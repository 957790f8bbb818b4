package fib

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"
)

// This file is fib's generic reconcile engine: one table per kind of
// kernel object (FDB entry, neighbour, route), each with its desired
// state, what fib knows the kernel holds, and a dirty-key set, run by one
// loop. A kind brings its kernel operations (objectOps); the engine
// brings the rest: batching, idempotent planning per key, retries with
// backoff, the restart rule (nothing found in the kernel is deleted before
// markSynced but what this run wrote) and drift repair from single kernel
// events, so that one change or one drift costs work for one key, not a
// dump.

// change is one kernel write of a kind: an upsert of Key to Value, or its
// delete (Value is then what the kernel held). An upsert carries the
// record it replaces (Old, when HadOld), for kinds whose write depends on
// it (an FDB entry's sticky bridge half is unpinned by a message of its
// own).
type change[K comparable, V any] struct {
	Key    K
	Value  V
	Delete bool
	Old    V
	HadOld bool
}

// objectOps is the kernel side of one kind of object.
type objectOps[K comparable, V any] interface {
	// dump returns the entries of the kind that are fib's (marked) in the
	// kernel.
	dump(ctx context.Context) (map[K]V, error)
	// apply performs changes in order and returns one error per change
	// (nil for success). Changes are idempotent: writing what is there and
	// deleting what is gone succeed.
	apply(ctx context.Context, cs []change[K, V]) []error
	// equal reports whether have, found in the kernel, is what want wants.
	equal(want, have V) bool
}

// sameOps is implemented by a kind whose equal is not an equivalence
// (an FDB record may hold more than fib writes): same then tells whether
// two records, or two wanted values, are the same. Otherwise equal does.
type sameOps[V any] interface {
	same(a, b V) bool
}

// engineConfig tunes a table. Zero values take the defaults.
type engineConfig struct {
	Batch      int           // keys per apply; default 1024
	MinBackoff time.Duration // first retry of a failed key; default 100ms
	MaxBackoff time.Duration // default 5s
	// EchoHold, when set, holds back a kernel event that would put back
	// the kernel state a key had before the table's latest write or
	// delete of it, within EchoWindow of that change: it is most likely
	// the late echo of the change before (a move A to B whose A write is
	// reported after B's). It waits EchoHold for the echo of the latest
	// change, which confirms the record and drops it; otherwise it is
	// taken as drift then and repaired. 0 holds nothing.
	EchoHold   time.Duration
	EchoWindow time.Duration // default 10 * EchoHold
	// OwnFound makes a key found in the kernel and wanted this run's,
	// as if written, even when it needed no write: withdrawn before
	// markSynced, it is deleted (the L2 FDB's rule: what this run wanted
	// is its own). Otherwise only what this run wrote is.
	OwnFound bool
}

func (c engineConfig) withDefaults() engineConfig {
	if c.Batch <= 0 {
		c.Batch = 1024
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(5*time.Second, c.MinBackoff)
	}
	if c.EchoHold > 0 && c.EchoWindow < c.EchoHold {
		c.EchoWindow = 10 * c.EchoHold
	}
	return c
}

// tableStats counts a table's work.
type tableStats struct {
	Dumps   int // kernel dumps read
	Writes  int // upserts written
	Deletes int // deletes done
	Skipped int // dirty keys found already as wanted
	Errors  int // failed changes (each is retried)
	Repairs int // successful changes that undid someone else's change (a kernel event, or a dump after the first)
	Pending int // keys waiting for a retry
}

type failure struct {
	n   int
	at  time.Time
	err error
}

// keyFailure is the state of a key whose last change failed.
type keyFailure struct {
	Attempts int       // consecutive failures
	Err      error     // the last one
	RetryAt  time.Time // when it is tried again
}

// recentChange is a key's kernel record before the table's latest
// successful change of it (for EchoHold).
type recentChange[V any] struct {
	before V
	had    bool
	at     time.Time
}

// heldEvent is a kernel event held back as a possible late echo: what it
// said (v, present) and the record it came on (rec, had).
type heldEvent[V any] struct {
	v       V
	present bool
	rec     V
	had     bool
	at      time.Time
}

// table is the engine's state of one kind.
type table[K comparable, V any] struct {
	name string
	ops  objectOps[K, V]
	same func(a, b V) bool
	cfg  engineConfig
	wake func()
	// onDone, when set, sees the outcome of each change, on the loop's
	// goroutine: repair says it undid someone else's change (drift). It
	// must be cheap (log, count, record a trace event).
	onDone func(c change[K, V], err error, repair bool)

	mu   sync.Mutex
	want map[K]V
	have map[K]V // fib's entries in the kernel, as fib knows them
	// written holds the keys this run wrote and has not deleted since:
	// those it may delete before markSynced (a withdraw during the wait
	// for End-of-RIB), unlike what an earlier run left.
	written map[K]bool
	dirty   map[K]bool
	// repair marks dirty keys that a kernel event or a later dump found
	// changed by someone else: their write is a repair.
	repair map[K]bool
	// flight holds the keys being applied; a kernel event for one removes
	// it, and the outcome then does not overwrite what the event said.
	flight map[K]bool
	failed map[K]*failure
	// suspect holds the keys invalidated (invalidate): their record
	// matches nothing, so a wanted key is written again, until a change
	// succeeds or the kernel tells its state.
	suspect map[K]bool
	adopted map[K]V // see adopt
	// recent and held serve cfg.EchoHold.
	recent  map[K]recentChange[V]
	recentQ []keyTime[K]
	recentH int // recentQ's first live entry
	held    map[K]heldEvent[V]
	clock   func() time.Time
	// ups and dels are the last batch's slices, reused by the next plan
	// (a batch is applied before the next is planned).
	ups, dels []change[K, V]
	synced    bool
	needDump  bool
	stats     tableStats
}

func newTable[K comparable, V any](name string, ops objectOps[K, V], cfg engineConfig) *table[K, V] {
	same := ops.equal
	if s, ok := ops.(sameOps[V]); ok {
		same = s.same
	}
	return &table[K, V]{name: name, ops: ops, same: same, cfg: cfg.withDefaults(), wake: func() {},
		want: map[K]V{}, have: map[K]V{}, written: map[K]bool{}, dirty: map[K]bool{}, repair: map[K]bool{},
		flight: map[K]bool{}, failed: map[K]*failure{}, suspect: map[K]bool{},
		recent: map[K]recentChange[V]{}, held: map[K]heldEvent[V]{}, clock: time.Now, needDump: true}
}

func (t *table[K, V]) setWake(f func()) { t.wake = f }

// set wants k at v.
func (t *table[K, V]) set(k K, v V) {
	t.mu.Lock()
	if w, ok := t.want[k]; !ok || !t.same(v, w) {
		t.want[k] = v
		t.mark(k)
	}
	t.mu.Unlock()
	t.wake()
}

// del wants k gone.
func (t *table[K, V]) del(k K) {
	t.mu.Lock()
	if _, ok := t.want[k]; ok {
		delete(t.want, k)
		t.mark(k)
	}
	t.mu.Unlock()
	t.wake()
}

// replace makes want the whole desired state, marking the keys that
// changed. It costs a pass over both maps, no kernel work.
func (t *table[K, V]) replace(want map[K]V) {
	t.mu.Lock()
	for k, v := range want {
		if w, ok := t.want[k]; !ok || !t.same(v, w) {
			t.mark(k)
		}
	}
	for k := range t.want {
		if _, ok := want[k]; !ok {
			t.mark(k)
		}
	}
	t.want = maps.Clone(want)
	t.mu.Unlock()
	t.wake()
}

// invalidate distrusts the record of k: something (say, local learning
// moving a bridge entry) may have changed it in the kernel without an
// event. A wanted k is written again even if its record matches, and
// retried as a write if that fails; an unwanted one is deleted as usual.
// It costs one key, no kernel read.
func (t *table[K, V]) invalidate(k K) {
	t.mu.Lock()
	if _, ok := t.have[k]; ok {
		t.suspect[k] = true
	}
	t.mark(k)
	t.mu.Unlock()
	t.wake()
}

// mark makes k dirty; t.mu is held. A key waiting for a retry is retried
// at once: its wanted state changed.
func (t *table[K, V]) mark(k K) {
	t.dirty[k] = true
	delete(t.failed, k)
}

// wrong reports whether key k's kernel state differs from what the next
// pass may leave; t.mu is held.
func (t *table[K, V]) wrong(k K) bool {
	w, wok := t.want[k]
	h, hok := t.have[k]
	switch {
	case wok:
		return !hok || t.suspect[k] || !t.ops.equal(w, h)
	case hok:
		return t.synced || t.written[k]
	}
	return false
}

// observed records a kernel event: k now holds v (present) or holds no
// entry of fib's. It is the whole cost of fib's own writes read back: a
// map lookup. A key left wrong by it is repaired at the next pass.
func (t *table[K, V]) observed(k K, v V, present bool) {
	t.mu.Lock()
	wake := t.observedLocked(k, v, present)
	t.mu.Unlock()
	if wake {
		t.wake()
	}
}

// observedFold is observed for an event that tells part of a key's
// state (one of an FDB entry's two halves): fold returns the record it
// leaves, from the current one (h, ok). fold runs under the table's lock
// and must be cheap.
func (t *table[K, V]) observedFold(k K, fold func(h V, ok bool) (V, bool)) {
	t.mu.Lock()
	h, hok := t.have[k]
	v, present := fold(h, hok)
	wake := t.observedLocked(k, v, present)
	t.mu.Unlock()
	if wake {
		t.wake()
	}
}

// observedLocked is observed with t.mu held; it reports whether the loop
// must wake up.
func (t *table[K, V]) observedLocked(k K, v V, present bool) bool {
	h, hok := t.have[k]
	if !t.flight[k] && (present && hok && t.same(h, v) || !present && !hok) {
		delete(t.held, k) // confirms the record (say, fib's own change)
		return false
	}
	if t.cfg.EchoHold > 0 && !t.flight[k] {
		now := t.clock()
		if ro, ok := t.recent[k]; ok && now.Sub(ro.at) < t.cfg.EchoWindow && ro.had == present &&
			(!present || t.same(ro.before, v)) {
			t.held[k] = heldEvent[V]{v: v, present: present, rec: h, had: hok, at: now}
			return true // the loop's next wait covers the hold
		}
		delete(t.held, k)
	}
	t.setObserved(k, v, present)
	return t.wrong(k)
}

// setObserved makes an event's state the record of k and marks k for
// repair if that leaves it wrong; t.mu is held.
func (t *table[K, V]) setObserved(k K, v V, present bool) {
	if present {
		t.have[k] = v
	} else {
		delete(t.have, k)
	}
	delete(t.suspect, k)
	delete(t.flight, k)
	if t.wrong(k) && !t.dirty[k] {
		t.dirty[k] = true
		t.repair[k] = true
	}
}

// expireHeld takes the held events older than cfg.EchoHold as drift,
// unless the table has changed their key since, and returns when the
// next one is due (zero if none is held) and whether it made a key dirty;
// t.mu is held.
func (t *table[K, V]) expireHeld() (time.Time, bool) {
	if len(t.held) == 0 {
		return time.Time{}, false
	}
	marked := false
	now := t.clock()
	var next time.Time
	for k, e := range t.held {
		if due := e.at.Add(t.cfg.EchoHold); now.Before(due) {
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		delete(t.held, k)
		h, hok := t.have[k]
		if hok != e.had || hok && !t.same(h, e.rec) || t.flight[k] {
			continue // changed since: outdated
		}
		t.setObserved(k, e.v, e.present)
		marked = marked || t.dirty[k]
	}
	return next, marked
}

// adopt makes the next pass delete k, when it is not wanted then,
// whether or not fib knows of an entry (before markSynced too), as if
// fib held v there: the neighbours' handover (the delete is turned into
// one).
func (t *table[K, V]) adopt(k K, v V) {
	t.mu.Lock()
	if t.adopted == nil {
		t.adopted = map[K]V{}
	}
	t.adopted[k] = v
	t.mark(k)
	t.mu.Unlock()
	t.wake()
}

// resync makes the next pass read the kernel again.
func (t *table[K, V]) resync() {
	t.mu.Lock()
	t.needDump = true
	t.mu.Unlock()
	t.wake()
}

// markSynced allows deleting fib's entries that nothing wants.
func (t *table[K, V]) markSynced() {
	t.mu.Lock()
	t.synced = true
	for k := range t.have {
		if _, ok := t.want[k]; !ok {
			t.dirty[k] = true
		}
	}
	t.mu.Unlock()
	t.wake()
}

// load reads the kernel if asked to (at start, after resync).
func (t *table[K, V]) load(ctx context.Context) error {
	t.mu.Lock()
	need := t.needDump
	t.needDump = false
	t.mu.Unlock()
	if !need {
		return nil
	}
	have, err := t.ops.dump(ctx)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.needDump = true
		return fmt.Errorf("%s: %w", t.name, err)
	}
	first := t.stats.Dumps == 0
	t.stats.Dumps++
	t.have = have
	clear(t.flight)
	clear(t.suspect)
	clear(t.held)
	for k := range t.want {
		t.dirty[k] = true
	}
	for k := range t.have {
		t.dirty[k] = true
	}
	if !first {
		for k := range t.dirty {
			if t.wrong(k) {
				t.repair[k] = true
			}
		}
	}
	return nil
}

// batch is the changes one pass makes in a table.
type batch[K comparable, V any] struct {
	t         *table[K, V]
	ups, dels []change[K, V]
}

// plan takes up to cfg.Batch dirty keys, and the failed keys due at now,
// and returns what they need.
func (t *table[K, V]) plan(now time.Time) batch[K, V] {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, f := range t.failed {
		if !f.at.After(now) {
			t.dirty[k] = true
		}
	}
	t.expireHeld()
	b := batch[K, V]{t: t, ups: t.ups[:0], dels: t.dels[:0]}
	defer func() { t.ups, t.dels = b.ups, b.dels }()
	n := 0
	for k := range t.dirty {
		if n == t.cfg.Batch {
			break
		}
		n++
		delete(t.dirty, k)
		w, wok := t.want[k]
		h, hok := t.have[k]
		av, adopted := t.adopted[k]
		delete(t.adopted, k)
		if adopted && !hok && !wok {
			h, hok = av, true
		}
		if wok && hok && t.cfg.OwnFound {
			t.written[k] = true
		}
		switch {
		case wok && (!hok || t.suspect[k] || !t.ops.equal(w, h)):
			b.ups = append(b.ups, change[K, V]{Key: k, Value: w, Old: h, HadOld: hok})
		case !wok && hok && (t.synced || t.written[k] || adopted):
			b.dels = append(b.dels, change[K, V]{Key: k, Value: h, Delete: true})
		default:
			if wok {
				t.stats.Skipped++
			}
			delete(t.repair, k)
			delete(t.failed, k)
			if !wok {
				delete(t.suspect, k)
			}
			continue
		}
		t.flight[k] = true
	}
	return b
}

// pending reports whether dirty keys are waiting.
func (t *table[K, V]) pending() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.dirty) > 0
}

// nextRetry returns the earliest retry of a failed key, or end of an
// echo hold.
func (t *table[K, V]) nextRetry() (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, marked := t.expireHeld()
	if marked {
		t.wake() // an expired hold left a key to repair
	}
	for _, f := range t.failed {
		if at.IsZero() || f.at.Before(at) {
			at = f.at
		}
	}
	return at, !at.IsZero()
}

// applyUpserts and applyDeletes write the batch's halves.
func (b batch[K, V]) applyUpserts(ctx context.Context) (int, error) {
	return b.t.apply(ctx, b.ups)
}

func (b batch[K, V]) applyDeletes(ctx context.Context) (int, error) {
	return b.t.apply(ctx, b.dels)
}

func (t *table[K, V]) apply(ctx context.Context, cs []change[K, V]) (int, error) {
	if len(cs) == 0 {
		return 0, nil
	}
	errs := t.ops.apply(ctx, cs)
	now := time.Now()
	t.mu.Lock()
	n := 0
	var failed []error
	repaired := make([]bool, len(cs))
	for i, c := range cs {
		var err error
		if i < len(errs) {
			err = errs[i]
		}
		repaired[i] = t.repair[c.Key]
		if err != nil {
			f := t.failed[c.Key]
			if f == nil {
				f = &failure{}
				t.failed[c.Key] = f
			}
			f.n++
			f.err = err
			f.at = now.Add(backoff(Config{MinBackoff: t.cfg.MinBackoff, MaxBackoff: t.cfg.MaxBackoff}, f.n))
			t.stats.Errors++
			failed = append(failed, err)
			delete(t.flight, c.Key)
			continue
		}
		n++
		delete(t.failed, c.Key)
		delete(t.suspect, c.Key)
		if t.cfg.EchoHold > 0 {
			t.noteRecent(c.Key, t.clock())
		}
		if t.repair[c.Key] {
			t.stats.Repairs++
			delete(t.repair, c.Key)
		}
		if c.Delete {
			t.stats.Deletes++
			delete(t.written, c.Key)
		} else {
			t.stats.Writes++
			t.written[c.Key] = true
		}
		if !t.flight[c.Key] {
			continue // a kernel event told since: it holds
		}
		delete(t.flight, c.Key)
		if c.Delete {
			delete(t.have, c.Key)
		} else {
			t.have[c.Key] = c.Value
		}
	}
	t.stats.Pending = len(t.failed)
	t.mu.Unlock()
	if t.onDone != nil {
		for i, c := range cs {
			var err error
			if i < len(errs) {
				err = errs[i]
			}
			t.onDone(c, err, repaired[i])
		}
	}
	if len(failed) > 0 {
		return n, fmt.Errorf("%s: %d of %d writes failed: %w", t.name, len(failed), len(cs), errors.Join(failed...))
	}
	return n, nil
}

// noteRecent remembers the record of k before a change applied at now,
// for cfg.EchoHold; t.mu is held.
func (t *table[K, V]) noteRecent(k K, now time.Time) {
	h, hok := t.have[k]
	t.recent[k] = recentChange[V]{before: h, had: hok, at: now}
	t.recentQ = append(t.recentQ, keyTime[K]{k: k, at: now})
	// Forget what is past the window (the queue is in time order),
	// compacting the queue when half of it is gone: O(1) amortised.
	i := t.recentH
	for ; i < len(t.recentQ) && now.Sub(t.recentQ[i].at) >= t.cfg.EchoWindow; i++ {
		e := t.recentQ[i]
		if ro, ok := t.recent[e.k]; ok && ro.at.Equal(e.at) {
			delete(t.recent, e.k)
		}
	}
	t.recentH = i
	if t.recentH > len(t.recentQ)/2 {
		t.recentQ = append(t.recentQ[:0], t.recentQ[t.recentH:]...)
		t.recentH = 0
	}
}

type keyTime[K comparable] struct {
	k  K
	at time.Time
}

// status returns the failure state of key k, if its last change failed.
func (t *table[K, V]) status(k K) (keyFailure, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.failed[k]
	if !ok {
		return keyFailure{}, false
	}
	return keyFailure{Attempts: f.n, Err: f.err, RetryAt: f.at}, true
}

// snapshotStats returns the counters.
func (t *table[K, V]) snapshotStats() tableStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stats
	s.Pending = len(t.failed)
	return s
}

// failures returns the error of each key waiting for a retry.
func (t *table[K, V]) failures() map[K]error {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[K]error, len(t.failed))
	for k, f := range t.failed {
		out[k] = f.err
	}
	return out
}

// kind is a table seen by the loop, whatever its key and value types.
type kind interface {
	load(ctx context.Context) error
	planAny(now time.Time) phase
	pending() bool
	nextRetry() (time.Time, bool)
	resync()
	markSynced()
}

type phase interface {
	applyUpserts(ctx context.Context) (int, error)
	applyDeletes(ctx context.Context) (int, error)
}

func (t *table[K, V]) planAny(now time.Time) phase { return t.plan(now) }

// loop runs kinds in one goroutine. In each pass it reads the kernel of
// the kinds that need it, takes a batch of dirty keys from each, and
// applies the upserts in the kinds' order, then the deletes in reverse
// order: a route's next hop (router MAC neighbour and FDB entry) is
// written before the route and deleted after it.
type loop struct {
	kinds []kind
	wake  chan struct{}
	// before runs at the start of each pass (e.g. to derive the kinds'
	// desired state from a changed source).
	before func()
	// between runs after each pass of a drain.
	between func()
}

func newLoop(kinds ...kind) *loop {
	return &loop{kinds: kinds, wake: make(chan struct{}, 1)}
}

func (l *loop) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// pass makes one pass and returns the changes made and the joined errors.
// A kind whose kernel read fails is left out of the pass.
func (l *loop) pass(ctx context.Context) (int, error) {
	if l.before != nil {
		l.before()
	}
	var errs []error
	phases := make([]phase, len(l.kinds))
	now := time.Now()
	for i, k := range l.kinds {
		if err := k.load(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		phases[i] = k.planAny(now)
	}
	n := 0
	for _, p := range phases {
		if p != nil {
			m, err := p.applyUpserts(ctx)
			n += m
			errs = append(errs, err)
		}
	}
	for i := len(phases) - 1; i >= 0; i-- {
		if p := phases[i]; p != nil {
			m, err := p.applyDeletes(ctx)
			n += m
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// busy reports whether a kind has dirty keys.
func (l *loop) busy() bool {
	for _, k := range l.kinds {
		if k.pending() {
			return true
		}
	}
	return false
}

// drain makes passes until no dirty key is left (failed keys wait for
// their retry) and returns the changes made and the errors. Between
// passes it calls between (when set): run hands the kernel events queued
// meanwhile to their kinds there, so that a long burst neither delays a
// drift repair nor lets the event socket overflow.
func (l *loop) drain(ctx context.Context) (int, error) {
	total := 0
	var errs []error
	for {
		n, err := l.pass(ctx)
		total += n
		if err != nil {
			errs = append(errs, err)
		}
		if l.between != nil {
			l.between()
		}
		if !l.busy() || ctx.Err() != nil || n == 0 && err != nil {
			return total, errors.Join(errs...)
		}
	}
}

// run makes passes until ctx ends (then it returns nil): at once while
// keys are dirty, else at a wake-up, an event (handed to on) or the next
// retry. A pass whose kernel read failed is retried with backoff, from
// 100 ms to 5 s; onErr sees each failed pass.
func runLoop[E any](ctx context.Context, l *loop, events <-chan E, on func(E), onErr func(error, time.Duration)) error {
	// queued hands on every event already queued, without waiting.
	queued := func() {
		for events != nil {
			select {
			case e, ok := <-events:
				if !ok {
					events = nil
					return
				}
				on(e)
			default:
				return
			}
		}
	}
	l.between = queued
	defer func() { l.between = nil }()
	retryDump := time.Duration(0)
	for {
		_, err := l.drain(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var wait time.Duration
		loadFailed := false
		for _, k := range l.kinds {
			if t, ok := k.(interface{ dumpDue() bool }); ok && t.dumpDue() {
				loadFailed = true
			}
		}
		if loadFailed {
			retryDump = min(max(2*retryDump, 100*time.Millisecond), 5*time.Second)
			wait = retryDump
		} else {
			retryDump = 0
		}
		for _, k := range l.kinds {
			if at, ok := k.nextRetry(); ok {
				if d := max(time.Until(at), time.Millisecond); wait == 0 || d < wait {
					wait = d
				}
			}
		}
		if err != nil && onErr != nil {
			onErr(err, wait)
		}
		var timer <-chan time.Time
		var t *time.Timer
		if wait > 0 {
			t = time.NewTimer(wait)
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case <-l.wake:
		case e, ok := <-events:
			if !ok {
				events = nil
			} else {
				on(e)
				queued() // take what else is queued before the pass
			}
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// dumpDue reports whether the table still has to read the kernel.
func (t *table[K, V]) dumpDue() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.needDump
}

// kindState is a table's state for a status view: its sizes as well as
// its counters.
type kindState struct {
	tableStats
	Installed int  // fib's entries in the kernel, as fib knows them
	Wanted    int  // entries wanted
	Dirty     int  // keys waiting for a pass
	Settled   bool // read, nothing dirty or failed: the kernel holds what is wanted
}

func (t *table[K, V]) state() kindState {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := kindState{tableStats: t.stats, Installed: len(t.have), Wanted: len(t.want), Dirty: len(t.dirty)}
	s.Pending = len(t.failed)
	s.Settled = !t.needDump && len(t.dirty) == 0 && len(t.failed) == 0 && len(t.flight) == 0
	return s
}
