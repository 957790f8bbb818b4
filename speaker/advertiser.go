package speaker

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// Outbid reports that GoBGP refused one of our MAC routes because its RIB
// holds a path for the MAC (same MAC, Ethernet tag and a route target in
// common, any RD) with a mobility sequence number at least Route.Seq: Seq
// is the highest such. That path may be one evpnd's selection never sees
// (its import rejects it, for example for MPLS encapsulation). Bid again
// above Seq. Until a new route replaces it, the refused one is retried on
// the Advertiser's timer (and not reported again).
type Outbid struct {
	Route *evpn.Route
	Seq   uint32
}

// AdvertiserConfig configures NewAdvertiser.
type AdvertiserConfig struct {
	// Retry is how long a route GoBGP failed to take waits before it is
	// tried again (default 1 s).
	Retry time.Duration
	// HoldMACs holds type-2 routes back (they stay pending) until Release;
	// other routes go at once. A restarted leaf sets it so that it bids for
	// its local MACs only once it knows the fabric's sequence numbers.
	HoldMACs bool
	// OnOutbid, if set, is called (from the Advertiser's goroutine) for
	// each MAC route GoBGP refused for its sequence number. It must not
	// block.
	OnOutbid func(Outbid)
}

// Advertiser hands our routes to GoBGP from a goroutine of its own, so
// that a busy GoBGP never stalls the caller. It keeps, per route key, the
// route wanted (or that it be withdrawn), and a key stays pending until
// GoBGP has taken what is wanted for it: a route GoBGP refuses or fails on
// is retried on a timer, never taken for done. Memory is bounded by the
// number of keys, whatever the rate of changes: a newer want replaces an
// older pending one.
type Advertiser struct {
	s   *Server
	cfg AdvertiserConfig

	mu      sync.Mutex
	want    map[evpn.Key]*evpn.Route // nil: withdraw
	pending map[evpn.Key]struct{}
	failed  map[evpn.Key]struct{} // retried at the next retry tick
	hold    bool
	wake    chan struct{}
	fails   atomic.Uint64

	// Only the goroutine running a pass touches have and reported (under
	// passMu).
	passMu sync.Mutex
	have   map[evpn.Key]*evpn.Route // what GoBGP has taken
	// reported holds the refused route last reported per key: a retry of
	// the same route is not reported again (each report lists the RIB).
	reported map[evpn.Key]*evpn.Route
}

// NewAdvertiser returns an Advertiser for s. Nothing reaches GoBGP until
// Run (or Flush).
func (s *Server) NewAdvertiser(cfg AdvertiserConfig) *Advertiser {
	if cfg.Retry <= 0 {
		cfg.Retry = time.Second
	}
	return &Advertiser{s: s, cfg: cfg, want: map[evpn.Key]*evpn.Route{}, pending: map[evpn.Key]struct{}{},
		failed: map[evpn.Key]struct{}{}, hold: cfg.HoldMACs, wake: make(chan struct{}, 1),
		have: map[evpn.Key]*evpn.Route{}, reported: map[evpn.Key]*evpn.Route{}}
}

// Announce wants routes advertised (replacing what is advertised with the
// same key). It never blocks on GoBGP.
func (a *Advertiser) Announce(routes ...*evpn.Route) {
	a.set(routes, false)
}

// Withdraw wants the routes with the keys of routes withdrawn.
func (a *Advertiser) Withdraw(routes ...*evpn.Route) {
	a.set(routes, true)
}

func (a *Advertiser) set(routes []*evpn.Route, withdraw bool) {
	if len(routes) == 0 {
		return
	}
	a.mu.Lock()
	for _, r := range routes {
		if r == nil {
			continue
		}
		if withdraw {
			a.want[r.Key] = nil
		} else {
			a.want[r.Key] = r
		}
		a.pending[r.Key] = struct{}{}
		delete(a.failed, r.Key)
	}
	a.mu.Unlock()
	a.kick()
}

func (a *Advertiser) kick() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Release ends HoldMACs: the held type-2 routes go to GoBGP.
func (a *Advertiser) Release() {
	a.mu.Lock()
	a.hold = false
	a.mu.Unlock()
	a.kick()
}

// Pending is how many keys wait for GoBGP (held, failed or not yet sent).
func (a *Advertiser) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending)
}

// Failures is how many times GoBGP did not take a route or withdrawal
// handed to it (each is retried).
func (a *Advertiser) Failures() uint64 { return a.fails.Load() }

// Advertised returns the route GoBGP has taken for k, if any.
func (a *Advertiser) Advertised(k evpn.Key) (*evpn.Route, bool) {
	a.passMu.Lock()
	defer a.passMu.Unlock()
	r, ok := a.have[k]
	return r, ok
}

// Run hands pending routes to GoBGP until ctx ends, retrying failures
// every cfg.Retry. It returns ctx's error; it checks ctx between GoBGP
// calls of at most addPathBatch paths.
func (a *Advertiser) Run(ctx context.Context) error {
	retry := time.NewTicker(a.cfg.Retry)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.wake:
		case <-retry.C:
			a.mu.Lock()
			n := len(a.failed)
			for k := range a.failed {
				a.pending[k] = struct{}{}
			}
			clear(a.failed)
			a.mu.Unlock()
			if n == 0 {
				continue
			}
		}
		a.Flush(ctx)
	}
}

// Flush makes one pass: every pending key (except held ones) goes to
// GoBGP. Keys GoBGP did not take stay pending, for the next retry.
// It returns whether every key handed over was taken.
func (a *Advertiser) Flush(ctx context.Context) bool {
	a.passMu.Lock()
	defer a.passMu.Unlock()
	type item struct {
		k evpn.Key
		r *evpn.Route
	}
	var ann, wdr []item
	a.mu.Lock()
	for k := range a.pending {
		if _, ok := a.failed[k]; ok {
			continue
		}
		r := a.want[k]
		if r != nil && a.hold && r.Type == evpn.RouteTypeMACIP {
			continue
		}
		if r != nil {
			ann = append(ann, item{k, r})
		} else if old := a.have[k]; old != nil {
			wdr = append(wdr, item{k, old})
		} else {
			delete(a.pending, k) // nothing to withdraw
			delete(a.want, k)
			delete(a.reported, k)
		}
	}
	a.mu.Unlock()
	if len(ann) == 0 && len(wdr) == 0 {
		return true
	}
	ok := true
	// announced and withdrawn record GoBGP's answer for a key: it is done
	// unless a newer want came meanwhile; one that failed waits for the
	// retry.
	announced := func(it item, took bool) {
		a.mu.Lock()
		defer a.mu.Unlock()
		cur := a.want[it.k]
		switch {
		case took:
			a.have[it.k] = it.r
			if cur == it.r {
				delete(a.pending, it.k)
			}
		case cur == it.r:
			ok = false
			a.fails.Add(1)
			a.failed[it.k] = struct{}{}
		}
	}
	withdrawn := func(it item, took bool) {
		a.mu.Lock()
		defer a.mu.Unlock()
		cur, wanted := a.want[it.k]
		if took {
			delete(a.have, it.k)
		}
		switch {
		case !wanted || cur != nil:
		case took:
			delete(a.pending, it.k)
			delete(a.want, it.k)
		default:
			ok = false
			a.fails.Add(1)
			a.failed[it.k] = struct{}{}
		}
	}
	if len(wdr) > 0 {
		rs := make([]*evpn.Route, len(wdr))
		for i, it := range wdr {
			rs[i] = it.r
		}
		err := a.s.Withdraw(ctx, rs)
		bad := routeSet(err)
		for _, it := range wdr {
			withdrawn(it, err == nil || (bad != nil && !bad[it.r]))
		}
		if err != nil && ctx.Err() == nil {
			a.s.log.Warn("BGP withdraw failed; retrying", "routes", len(wdr), "failed", max(len(bad), 1), "err", err)
		}
	}
	if len(ann) == 0 {
		return ok
	}
	rs := make([]*evpn.Route, len(ann))
	for i, it := range ann {
		rs[i] = it.r
	}
	err := a.s.Announce(ctx, rs)
	bad := routeSet(err)
	var refused []*evpn.Route
	for _, it := range ann {
		took := err == nil || (bad != nil && !bad[it.r])
		announced(it, took)
		switch {
		case took:
			delete(a.reported, it.k)
		case bad != nil && it.r.Type == evpn.RouteTypeMACIP && a.reported[it.k] != it.r:
			a.reported[it.k] = it.r
			refused = append(refused, it.r)
		}
	}
	if err != nil && ctx.Err() == nil {
		a.s.log.Warn("BGP announce failed; retrying", "routes", len(ann), "failed", max(len(bad), 1), "err", err)
	}
	if len(refused) > 0 && a.cfg.OnOutbid != nil {
		for _, o := range a.s.outbids(ctx, refused) {
			a.cfg.OnOutbid(o)
		}
	}
	return ok
}

// routeSet is the set of routes named by RouteErrors in err; nil when err
// holds none (then nothing is known per route).
func routeSet(err error) map[*evpn.Route]bool {
	rs := FailedRoutes(err)
	if len(rs) == 0 {
		return nil
	}
	m := make(map[*evpn.Route]bool, len(rs))
	for _, r := range rs {
		m[r] = true
	}
	// An error besides the per-route ones (the server stopping, ctx):
	// nothing is known of the others either.
	var other bool
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *RouteError:
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				walk(x)
			}
		default:
			other = true
		}
	}
	walk(err)
	if other {
		return nil
	}
	return m
}

// outbids finds, for each refused MAC route, the highest mobility sequence
// number among the RIB's other paths for its MAC (same MAC and Ethernet
// tag, a route target in common, any RD), as GoBGP's check does. A route
// with no such path (it went meanwhile) gets none: its retry will do.
func (s *Server) outbids(ctx context.Context, refused []*evpn.Route) []Outbid {
	type macTag struct {
		mac evpn.MAC
		tag uint32
	}
	want := map[macTag][]*evpn.Route{}
	for _, r := range refused {
		mt := macTag{r.MAC, r.EthTag}
		want[mt] = append(want[mt], r)
	}
	top := map[*evpn.Route]uint32{}
	_, err := s.ListPaths(ctx, func(p Path) error {
		pr := p.Route
		if p.Local || pr.Type != evpn.RouteTypeMACIP {
			return nil
		}
		for _, r := range want[macTag{pr.MAC, pr.EthTag}] {
			if !slices.ContainsFunc(pr.RTs, func(rt evpn.RT) bool { return slices.Contains(r.RTs, rt) }) {
				continue
			}
			if s, ok := top[r]; !ok || pr.Seq > s {
				top[r] = pr.Seq
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("cannot read the RIB for a refused MAC route's sequence number; retrying as it is", "err", err)
	}
	var out []Outbid
	for _, r := range refused {
		if seq, ok := top[r]; ok {
			out = append(out, Outbid{Route: r, Seq: seq})
		}
	}
	return out
}
