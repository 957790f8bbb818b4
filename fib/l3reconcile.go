package fib

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// L3Kind is a kind of kernel object of a VRF's L3 state.
type L3Kind uint8

const (
	L3KindNeigh L3Kind = iota + 1 // neighbour on an SVI
	L3KindRMAC                    // router MAC FDB entry on the L3VNI's VXLAN device
	L3KindRoute                   // route in the VRF's table
)

// L3Kernel is the kernel side of one VRF's L3 state (L3Netlink on Linux).
type L3Kernel interface {
	// Dump returns fib's marked entries of the VRF found in the kernel, of
	// the kinds given (all when none is). It fails while the L3VNI's SVI
	// or VXLAN device is missing.
	Dump(ctx context.Context, dev L3Devices, kinds ...L3Kind) (L3State, error)
	// Apply writes ops in order, returning one error per op (nil for
	// those that succeeded); deleting what is gone succeeds.
	Apply(ctx context.Context, dev L3Devices, ops []L3Op) []error
}

// L3Change is one change of a VRF's L3 kernel state, as WatchL3 reports
// it: exactly one of Neigh, RMAC and Route is set, unless Resync is.
type L3Change struct {
	// Resync says changes may have been missed (the watch subscribed
	// again) or Link changed (created, deleted, renamed, set up or down;
	// its routes may have gone without a report): read the kernel again.
	Resync bool
	Link   string // for Resync: the link that changed, "" for all
	// Gone says the key holds no entry of fib's any more: deleted, or
	// replaced by an unmarked one.
	Gone  bool
	Neigh *NeighEntry
	RMAC  *RMACEntry
	Dev   string // RMAC's device
	Route *RouteEntry
	Table int // Route's table
	// Foreign says Route is another owner's route written at the key
	// (Gone is then set): it replaced fib's only if its Metric is the one
	// fib's route has, for the kernel keys a route by prefix and metric.
	Foreign bool
	Metric  int
}

// routeMetric is the metric the kernel gives fib's route to p in dev's
// table: LastResortMetric for a remote default route in a table that
// routes the underlay, else the kernel's default (0 for IPv4, 1024 for
// IPv6).
func routeMetric(dev L3Devices, p netip.Prefix) int {
	switch {
	case lastResort(dev, p):
		return LastResortMetric
	case p.Addr().Is6():
		return 1024
	}
	return 0
}

// L3Stats counts an L3Reconciler's work.
type L3Stats struct {
	Passes  int // Sync calls
	Dumps   int // kernel reads, per kind of object
	Applied int // ops written successfully
	Skipped int // dirty entries found already as wanted
	Repairs int // ops that undid someone else's change (drift)
	Errors  int // ops that failed (each is retried with backoff)
	Pending int // entries waiting for a retry
	Refused int // routes refused by WantL3 at the last derivation
}

// L3Reconciler makes one VRF's kernel L3 state match an L3Desired. It
// runs three kinds of object on fib's generic engine (engine.go): the
// router MAC FDB entries of the L3VNI, the neighbours of the VRF's SVIs,
// and the routes of its table, each a table of wanted entries with
// dirty keys. The desired state of all three is WantL3 of the
// L3Desired, derived again when that changes (no kernel work); only the
// keys whose wanted entry changed are written. A kernel change reported
// by WatchL3 marks its one key: fib's own writes, read back, cost a map
// lookup; an entry deleted or changed by someone else is written again
// at once. The kernel is read at start, at Sync and Resync, and when a
// device of the VRF changes. Until MarkSynced, nothing found in the
// kernel is deleted but what this run wrote itself (a restart keeps
// forwarding; a withdraw during the wait is carried out).
type L3Reconciler struct {
	d   *L3Desired
	k   L3Kernel
	log *slog.Logger

	rmacs  *table[evpn.MAC, netip.Addr]
	neighs *table[neighKey, evpn.MAC]
	routes *table[netip.Prefix, []netip.Addr]
	loop   *loop

	mu      sync.Mutex
	derived bool
	gen     uint64
	// cost is how long the last derivation took, at is when it ended:
	// while the tables are busy, the next one waits 4 costs, so that a
	// burst of changes is not derived once per batch.
	cost, at time.Duration
	start    time.Time
	passes   int
	refused  map[string]bool
	devs     map[string]bool         // the VRF's devices: their changes resync
	rmacOf   map[netip.Addr]evpn.MAC // router MAC of each wanted VTEP
	// handover holds the neighbours whose delete is to be a handover to
	// the kernel (L3Desired.HandOverNeigh), with the host MAC.
	handover map[neighKey]evpn.MAC
	cfg      L3Config
	// syncAsked is set by MarkSynced; synced once the tables have it.
	syncAsked, synced bool
}

// L3Config tunes an L3Reconciler.
type L3Config struct {
	// OnApply, when set, is called after each kernel op with its outcome,
	// on Run's goroutine: it must be cheap and must not block (count, or
	// record a trace event).
	OnApply func(L3ApplyEvent)
}

// L3ApplyEvent is the outcome of one kernel op of a VRF's L3 state.
type L3ApplyEvent struct {
	Time   time.Time
	Dev    L3Devices
	Op     L3Op
	Err    error
	Repair bool // the op undid a change made behind fib's back (drift)
	// RouterMACs are, for a route, the router MACs of its VTEPs.
	RouterMACs []evpn.MAC
}

// Table names the op's kind of entry as Check's drifts and the metrics
// do: "neigh", "rmac" or "route".
func (e L3ApplyEvent) Table() string {
	switch {
	case e.Op.Neigh != nil:
		return "neigh"
	case e.Op.RMAC != nil:
		return "rmac"
	}
	return "route"
}

// DriftKind is what a repair found: "missing" (or wrong) for a write,
// "extra" for a delete.
func (e L3ApplyEvent) DriftKind() string {
	if e.Op.Kind.Removes() {
		return "extra"
	}
	return "missing"
}

// L3TraceKey is a (VNI, MAC) whose history an L3 op belongs to.
type L3TraceKey struct {
	VNI uint32
	MAC evpn.MAC
}

// TraceKeys returns the histories the op belongs to: a suppression
// neighbour's, its host MAC in its member L2VNI (when Dev.MemberVNIs
// names it); a router MAC's neighbour and FDB entry, and a route, the
// router MAC(s) in the L3VNI.
func (e L3ApplyEvent) TraceKeys() []L3TraceKey {
	switch {
	case e.Op.Neigh != nil:
		if e.Op.Neigh.Dev == e.Dev.SVI {
			return []L3TraceKey{{e.Dev.L3VNI, e.Op.Neigh.MAC}}
		}
		if i := slices.Index(e.Dev.MemberSVIs, e.Op.Neigh.Dev); i >= 0 && i < len(e.Dev.MemberVNIs) {
			return []L3TraceKey{{e.Dev.MemberVNIs[i], e.Op.Neigh.MAC}}
		}
	case e.Op.RMAC != nil:
		return []L3TraceKey{{e.Dev.L3VNI, e.Op.RMAC.MAC}}
	case e.Op.Route != nil:
		var out []L3TraceKey
		for _, mac := range e.RouterMACs {
			out = append(out, L3TraceKey{e.Dev.L3VNI, mac})
		}
		return out
	}
	return nil
}

// VTEP returns the op's remote VTEP (a route's first), if any.
func (e L3ApplyEvent) VTEP() netip.Addr {
	switch {
	case e.Op.RMAC != nil:
		return e.Op.RMAC.VTEP
	case e.Op.Route != nil && len(e.Op.Route.VTEPs) > 0:
		return e.Op.Route.VTEPs[0]
	}
	return netip.Addr{}
}

// NewL3Reconciler returns a reconciler of d through k.
func NewL3Reconciler(d *L3Desired, k L3Kernel, log *slog.Logger, cfg ...L3Config) *L3Reconciler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dev := d.Devices()
	r := &L3Reconciler{d: d, k: k, log: log.With("vrf", dev.VRF), refused: map[string]bool{}, start: time.Now(),
		devs: map[string]bool{dev.SVI: true, dev.VXLAN: true}, rmacOf: map[netip.Addr]evpn.MAC{}}
	if len(cfg) > 0 {
		r.cfg = cfg[0]
	}
	for _, m := range dev.MemberSVIs {
		r.devs[m] = true
	}
	ecfg := engineConfig{}
	r.rmacs = newTable[evpn.MAC, netip.Addr]("router MACs", rmacOps{r}, ecfg)
	r.neighs = newTable[neighKey, evpn.MAC]("neighbours", neighOps{r}, ecfg)
	r.routes = newTable[netip.Prefix, []netip.Addr]("routes", routeOps{r}, ecfg)
	// Order: a route's next hop (FDB entry, neighbour) is written
	// before the route and deleted after it.
	r.loop = newLoop(r.rmacs, r.neighs, r.routes)
	r.loop.wake = d.wake
	r.loop.before = r.derive
	for _, t := range []interface{ setWake(func()) }{r.rmacs, r.neighs, r.routes} {
		t.setWake(d.signal)
	}
	r.rmacs.onDone = func(c change[evpn.MAC, netip.Addr], err error, repair bool) {
		r.done(L3Op{Kind: opKind(c.Delete), RMAC: &RMACEntry{MAC: c.Key, VTEP: c.Value}}, err, repair)
	}
	r.neighs.onDone = func(c change[neighKey, evpn.MAC], err error, repair bool) {
		r.done(L3Op{Kind: opKind(c.Delete), Neigh: &NeighEntry{Dev: c.Key.dev, IP: c.Key.ip, MAC: c.Value}}, err, repair)
	}
	r.routes.onDone = func(c change[netip.Prefix, []netip.Addr], err error, repair bool) {
		r.done(L3Op{Kind: opKind(c.Delete), Route: &RouteEntry{Prefix: c.Key, VTEPs: c.Value}}, err, repair)
	}
	return r
}

// derive sets the tables' desired state to WantL3 of the L3Desired, if
// it changed since the last time: pure work in memory, proportional to
// the VRF's size, which marks dirty only the entries whose wanted state
// changed.
func (r *L3Reconciler) derive() {
	r.mu.Lock()
	defer r.mu.Unlock()
	// MarkSynced is read before the snapshot, so that the tables prune
	// with a desired state taken after it.
	markSynced := r.syncAsked && !r.synced
	defer func() {
		if markSynced {
			r.rmacs.markSynced()
			r.neighs.markSynced()
			r.routes.markSynced()
			r.synced = true
		}
	}()
	if !markSynced && r.derived && r.at+4*r.cost > time.Since(r.start) && r.loop.busy() {
		// A burst: let the tables drain a little first; the loop comes
		// back.
		r.loop.signal()
		return
	}
	if r.derived && r.d.generation() == r.gen {
		return
	}
	t0 := time.Now()
	snap, gen := r.d.snapshotGen()
	want, refused := WantL3(snap)
	neighs := make(map[neighKey]evpn.MAC, len(want.Neighs))
	for _, n := range want.Neighs {
		neighs[neighKey{n.Dev, n.IP}] = n.MAC
	}
	rmacs := make(map[evpn.MAC]netip.Addr, len(want.RMACs))
	clear(r.rmacOf)
	for _, e := range want.RMACs {
		rmacs[e.MAC] = e.VTEP
		r.rmacOf[e.VTEP] = e.MAC
	}
	routes := make(map[netip.Prefix][]netip.Addr, len(want.Routes))
	for _, e := range want.Routes {
		routes[e.Prefix] = e.VTEPs
	}
	r.rmacs.replace(rmacs)
	r.neighs.replace(neighs)
	r.routes.replace(routes)
	for k := range r.handover {
		if _, ok := neighs[k]; ok {
			delete(r.handover, k) // wanted again
		}
	}
	for k, mac := range r.d.takeHandovers() {
		if _, ok := neighs[k]; ok {
			continue
		}
		if r.handover == nil {
			r.handover = map[neighKey]evpn.MAC{}
		}
		r.handover[k] = mac
		r.neighs.adopt(k, mac)
	}
	now := map[string]bool{}
	for _, f := range refused {
		k := f.Prefix.String()
		now[k] = true
		if !r.refused[k] {
			r.log.Warn("remote route not installed", "prefix", k, "reason", f.Reason)
		}
	}
	r.refused = now
	r.derived, r.gen = true, gen
	r.at = time.Since(r.start)
	r.cost = time.Since(t0)
}

// KernelChanged records one kernel change (WatchL3's): it marks the one
// key it concerns, or makes the next pass read the kernel again. Changes
// of other VRFs' devices and tables are ignored. Safe from any goroutine.
func (r *L3Reconciler) KernelChanged(c L3Change) {
	dev := r.d.Devices()
	switch {
	case c.Resync:
		if c.Link == "" {
			r.log.Info("l3 kernel watch may have missed changes: reading the kernel again")
			r.Resync()
		} else if r.devs[c.Link] {
			r.log.Debug("l3 device changed: reading the kernel again", "dev", c.Link)
			r.Resync()
		}
	case c.Neigh != nil:
		if r.devs[c.Neigh.Dev] && c.Neigh.Dev != dev.VXLAN {
			r.neighs.observed(neighKey{c.Neigh.Dev, c.Neigh.IP}, c.Neigh.MAC, !c.Gone)
		}
	case c.RMAC != nil:
		if c.Dev == dev.VXLAN {
			r.rmacs.observed(c.RMAC.MAC, c.RMAC.VTEP, !c.Gone)
		}
	case c.Route != nil:
		if c.Table == dev.Table && (!c.Foreign || c.Metric == routeMetric(dev, c.Route.Prefix)) {
			r.routes.observed(c.Route.Prefix, c.Route.VTEPs, !c.Gone)
		}
	}
}

// Resync makes the next pass read the VRF's kernel state again.
func (r *L3Reconciler) Resync() {
	r.rmacs.resync()
	r.neighs.resync()
	r.routes.resync()
}

// MarkSynced allows deleting marked entries that are not wanted; call it
// once BGP has re-synced (End-of-RIB or a timeout), after the routes up to
// then are in the L3Desired. It takes effect at the start of the next
// pass, after that pass has derived the tables from the L3Desired as it
// is now: a pass that took its snapshot before MarkSynced must not prune
// with it (the routes of the last batch would be missing from it, and the
// previous run's entries for them deleted and written again).
func (r *L3Reconciler) MarkSynced() {
	r.mu.Lock()
	r.syncAsked = true
	r.mu.Unlock()
	r.d.signal()
}

// Stats returns the counters.
func (r *L3Reconciler) Stats() L3Stats {
	r.mu.Lock()
	s := L3Stats{Passes: r.passes, Refused: len(r.refused)}
	r.mu.Unlock()
	for _, t := range []tableStats{r.rmacs.snapshotStats(), r.neighs.snapshotStats(), r.routes.snapshotStats()} {
		s.Dumps += t.Dumps
		s.Applied += t.Writes + t.Deletes
		s.Skipped += t.Skipped
		s.Repairs += t.Repairs
		s.Errors += t.Errors
		s.Pending += t.Pending
	}
	return s
}

// Sync reads the kernel and makes passes until every entry is as wanted
// or has failed; it returns the number of ops written and the joined
// errors of those that failed (they wait for their retry). It is for
// callers that do not Run: never call it while Run runs.
func (r *L3Reconciler) Sync(ctx context.Context) (int, error) {
	r.mu.Lock()
	r.passes++
	r.mu.Unlock()
	r.Resync()
	return r.loop.drain(ctx)
}

// Run reconciles until ctx ends (then it returns nil): it reads the
// kernel at start, writes the entries whose wanted state changes, and
// hands every change on kernel (WatchL3; nil for none) to KernelChanged.
// A failed kernel read is retried with backoff from 100 ms to 5 s, a
// failed write per entry with backoff from 100 ms to 5 s; both are
// logged.
func (r *L3Reconciler) Run(ctx context.Context, kernel <-chan L3Change) error {
	return runLoop(ctx, r.loop, kernel, r.KernelChanged, func(err error, in time.Duration) {
		r.log.Warn("l3 pass failed; retrying", "err", err, "in", in)
	})
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

// The three kinds' kernel operations, through the L3Kernel.

type rmacOps struct{ r *L3Reconciler }

func (o rmacOps) dump(ctx context.Context) (map[evpn.MAC]netip.Addr, error) {
	s, err := o.r.k.Dump(ctx, o.r.d.Devices(), L3KindRMAC)
	if err != nil {
		return nil, err
	}
	m := make(map[evpn.MAC]netip.Addr, len(s.RMACs))
	for _, e := range s.RMACs {
		m[e.MAC] = e.VTEP
	}
	return m, nil
}

func (o rmacOps) apply(ctx context.Context, cs []change[evpn.MAC, netip.Addr]) []error {
	ops := make([]L3Op, len(cs))
	for i, c := range cs {
		ops[i] = L3Op{Kind: opKind(c.Delete), RMAC: &RMACEntry{MAC: c.Key, VTEP: c.Value}}
	}
	return o.r.applyOps(ctx, ops)
}

func (rmacOps) equal(a, b netip.Addr) bool { return a == b }

type neighOps struct{ r *L3Reconciler }

func (o neighOps) dump(ctx context.Context) (map[neighKey]evpn.MAC, error) {
	s, err := o.r.k.Dump(ctx, o.r.d.Devices(), L3KindNeigh)
	if err != nil {
		return nil, err
	}
	m := make(map[neighKey]evpn.MAC, len(s.Neighs))
	for _, e := range s.Neighs {
		m[neighKey{e.Dev, e.IP}] = e.MAC
	}
	return m, nil
}

func (o neighOps) apply(ctx context.Context, cs []change[neighKey, evpn.MAC]) []error {
	ops := make([]L3Op, len(cs))
	o.r.mu.Lock()
	for i, c := range cs {
		ops[i] = L3Op{Kind: opKind(c.Delete), Neigh: &NeighEntry{Dev: c.Key.dev, IP: c.Key.ip, MAC: c.Value}}
		if mac, ok := o.r.handover[c.Key]; ok && c.Delete {
			ops[i].Kind, ops[i].Neigh.MAC = L3Handover, mac
		}
	}
	o.r.mu.Unlock()
	errs := o.r.applyOps(ctx, ops)
	o.r.mu.Lock()
	for i, op := range ops {
		if op.Kind == L3Handover && (i >= len(errs) || errs[i] == nil) {
			delete(o.r.handover, cs[i].Key)
		}
	}
	o.r.mu.Unlock()
	return errs
}

func (neighOps) equal(a, b evpn.MAC) bool { return a == b }

type routeOps struct{ r *L3Reconciler }

func (o routeOps) dump(ctx context.Context) (map[netip.Prefix][]netip.Addr, error) {
	s, err := o.r.k.Dump(ctx, o.r.d.Devices(), L3KindRoute)
	if err != nil {
		return nil, err
	}
	m := make(map[netip.Prefix][]netip.Addr, len(s.Routes))
	for _, e := range s.Routes {
		m[e.Prefix] = e.VTEPs
	}
	return m, nil
}

func (o routeOps) apply(ctx context.Context, cs []change[netip.Prefix, []netip.Addr]) []error {
	ops := make([]L3Op, len(cs))
	for i, c := range cs {
		ops[i] = L3Op{Kind: opKind(c.Delete), Route: &RouteEntry{Prefix: c.Key, VTEPs: c.Value}}
	}
	return o.r.applyOps(ctx, ops)
}

func (routeOps) equal(a, b []netip.Addr) bool { return slices.Equal(a, b) }

func opKind(del bool) L3OpKind {
	if del {
		return L3Delete
	}
	return L3Replace
}

// done logs the outcome of one op and hands it to Config.OnApply.
func (r *L3Reconciler) done(op L3Op, err error, repair bool) {
	dev := r.d.Devices()
	if repair && err == nil {
		r.log.Info("l3 drift repaired", "op", op.String(dev))
	}
	if r.cfg.OnApply == nil {
		return
	}
	e := L3ApplyEvent{Time: time.Now(), Dev: dev, Op: op, Err: err, Repair: repair}
	if op.Route != nil {
		r.mu.Lock()
		for _, v := range op.Route.VTEPs {
			if mac, ok := r.rmacOf[v]; ok {
				e.RouterMACs = append(e.RouterMACs, mac)
			}
		}
		r.mu.Unlock()
	}
	r.cfg.OnApply(e)
}

// applyOps writes ops through the kernel and logs each.
func (r *L3Reconciler) applyOps(ctx context.Context, ops []L3Op) []error {
	dev := r.d.Devices()
	errs := r.k.Apply(ctx, dev, ops)
	if r.log.Enabled(ctx, slog.LevelDebug) {
		for i, op := range ops {
			if i < len(errs) && errs[i] == nil {
				r.log.Debug("l3 entry written", "op", op.String(dev))
			}
		}
	}
	return errs
}

// L3KindState is the state of one kind of an L3Reconciler's objects.
type L3KindState struct {
	Kind      string // "rmac" (router MAC FDB entries), "neigh" (neighbours), "route"
	Installed int    // fib's entries in the kernel, as fib knows them
	Wanted    int    // entries the desired state wants
	Pending   int    // entries waiting for a retry after an error
	Errors    int    // ops that failed since start
	Repairs   int    // ops that undid someone else's change since start
}

// L3KernelState is an L3Reconciler's kernel state, for status views.
type L3KernelState struct {
	// InSync: the desired state is derived, the kernel was read, BGP has
	// synced (MarkSynced has taken effect, so stale entries are gone),
	// and no entry is waiting for a pass or a retry.
	InSync bool
	Kinds  []L3KindState // rmac, neigh, route
}

// KernelState returns the reconciler's kernel state.
func (r *L3Reconciler) KernelState() L3KernelState {
	gen := r.d.generation()
	r.mu.Lock()
	s := L3KernelState{InSync: r.derived && r.synced && gen == r.gen}
	r.mu.Unlock()
	for _, k := range []struct {
		name string
		st   kindState
	}{{"rmac", r.rmacs.state()}, {"neigh", r.neighs.state()}, {"route", r.routes.state()}} {
		s.InSync = s.InSync && k.st.Settled
		s.Kinds = append(s.Kinds, L3KindState{Kind: k.name, Installed: k.st.Installed, Wanted: k.st.Wanted,
			Pending: k.st.Pending, Errors: k.st.Errors, Repairs: k.st.Repairs})
	}
	return s
}
