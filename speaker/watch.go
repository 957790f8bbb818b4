package speaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/evpnd/evpnd/speaker/fifo"
)

// Watch delivers route, peer and End-of-RIB events to fn until ctx is
// cancelled or the Server stops. It returns once the watch is registered.
//
// The first events are the current state: every neighbour's session state,
// every remote best path, and the End-of-RIBs already received. Call Watch
// before AddNeighbor so that no change is missed.
//
// fn is called from one goroutine, in order, never concurrently with
// itself. It must not block for long: while it runs, GoBGP's events are
// decoded on another goroutine and coalesced per route key (the newest
// event for a key replaces a pending older one), so memory stays bounded
// by the number of distinct routes. Events are idempotent: an add may
// repeat an add (GoBGP reports a withdraw-plus-add, a stale marking or a
// refresh this way), and a withdrawal may name a key never delivered.
// Each peer's events keep their order: a route event never arrives after
// an End-of-RIB the peer sent after it, nor before a peer event of its peer
// that GoBGP reported ahead of it.
//
// Watch also reports, once, when the initial table is in (EventSynced):
// every established peer has sent End-of-RIB, or Config.SyncTimeout has
// passed since the first Established with a peer still established.
//
// Only remote EVPN best paths are delivered: our own paths (and our routes
// coming back, see Config.LocalVTEPs) are filtered out; when one of them
// becomes best in place of a remote path, the remote path is delivered as
// withdrawn.
func (s *Server) Watch(ctx context.Context, fn func(Event)) error {
	if fn == nil {
		return errors.New("speaker: watch: nil callback")
	}
	return s.watch(ctx, eachEvent(fn), true)
}

// WatchBatches is Watch handing over every pending event at once: fn gets
// a batch, in order, and may take its time (even wait for the batch to be
// handled elsewhere): events that come meanwhile are coalesced per route
// key as in Watch, so a slow consumer bounds the memory by routes, not by
// events. fn owns the slice.
func (s *Server) WatchBatches(ctx context.Context, fn func([]Event)) error {
	if fn == nil {
		return errors.New("speaker: watch: nil callback")
	}
	return s.watch(ctx, fn, true)
}

func eachEvent(fn func(Event)) func([]Event) {
	return func(evs []Event) {
		for _, ev := range evs {
			fn(ev)
		}
	}
}

// WatchPeers is Watch for peer events only. A route reflector uses it: it
// installs nothing, and converting every reflected path for a watcher
// would cost about a sixth of GoBGP's CPU per route for nothing.
func (s *Server) WatchPeers(ctx context.Context, fn func(Event)) error {
	if fn == nil {
		return errors.New("speaker: watch: nil callback")
	}
	return s.watch(ctx, eachEvent(fn), false)
}

func (s *Server) watch(ctx context.Context, fn func([]Event), routes bool) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return errStopped
	}
	if !s.started {
		s.mu.Unlock()
		return errors.New("speaker: watch: not started: call Start first")
	}
	s.watches.Add(2)
	s.mu.Unlock()

	wctx, cancel := context.WithCancel(ctx)
	unlink := context.AfterFunc(s.life, cancel)
	raw := fifo.New[watchItem]()
	// The callbacks run on GoBGP's watch goroutine: they only queue. The
	// paths are GoBGP's clones, read-only here.
	cb := server.WatchEventMessageCallbacks{
		OnPeerUpdate: func(pe *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
			raw.Push(watchItem{peer: pe})
		},
	}
	opts := []server.WatchOption{server.WatchPeer()}
	if routes {
		cb.OnBestPath = func(ps []*apiutil.Path, _ time.Time) {
			if len(ps) > 0 {
				raw.Push(watchItem{paths: ps})
			}
		}
		cb.OnPathEor = func(p *apiutil.Path, _ time.Time) {
			raw.Push(watchItem{paths: []*apiutil.Path{p}})
		}
		opts = append(opts, server.WatchBestPath(true), server.WatchEor(true))
	}
	if err := s.bgp.WatchEvent(wctx, cb, opts...); err != nil {
		unlink()
		cancel()
		s.watches.Add(-2)
		return fmt.Errorf("speaker: watch: %w", err)
	}
	events := newEventQueue()
	d := &decoder{
		log:      s.log,
		routerID: s.cfg.RouterID,
		vteps:    s.cfg.LocalVTEPs,
		remote:   make(map[evpn.Key]remotePath),
		bad:      &s.malformed,
	}
	go func() {
		defer s.watches.Done()
		for {
			select {
			case <-wctx.Done():
				return
			case <-raw.Wake():
			}
			// Hand events over in chunks, so that delivery of a burst starts
			// before the whole burst is decoded.
			var out []Event
			for _, it := range raw.Take(nil) {
				out = d.item(it, out, events.push)
			}
			events.push(out)
		}
	}()
	var sync *syncTracker
	var hold *resyncHold
	if routes {
		sync = newSyncTracker(s.cfg.SyncTimeout)
		if s.cfg.ResyncWindow > 0 {
			hold = newResyncHold(s.cfg.ResyncWindow)
		}
	}
	go func() {
		defer s.watches.Done()
		defer unlink()
		defer cancel()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-events.wake:
			case <-timer.C:
			}
			evs := events.take()
			if hold != nil {
				now := time.Now()
				evs = hold.filter(evs, now, s.log)
				if at := hold.next(); !at.IsZero() && !now.Before(at) {
					if late := hold.expire(now); len(late) > 0 {
						s.log.Info("re-sync window ended: delivering withdrawals not re-announced", "routes", len(late))
						evs = append(evs, late...)
					}
				}
			}
			if len(evs) > 0 {
				if wctx.Err() != nil {
					return
				}
				if sync != nil {
					now := time.Now()
					for i := range evs {
						sync.observe(&evs[i], now)
					}
				}
				fn(evs)
			}
			if sync == nil {
				continue
			}
			now := time.Now()
			if ev, ok := sync.check(now); ok && wctx.Err() == nil {
				fn([]Event{ev})
			}
			timer.Stop()
			at := sync.wake()
			if hold != nil {
				if h := hold.next(); !h.IsZero() && (at.IsZero() || h.Before(at)) {
					at = h
				}
			}
			if !at.IsZero() {
				timer.Reset(max(at.Sub(now), 0))
			}
		}
	}()
	return nil
}

// watchItem is one callback of GoBGP's watch: paths (best paths, or an
// End-of-RIB as a path without NLRI) or a peer event.
type watchItem struct {
	paths []*apiutil.Path
	peer  *apiutil.WatchEventMessage_PeerEvent
}

type remotePath struct {
	peer netip.Addr
	asn  uint32
}

// decoder turns GoBGP watch events into Events. It runs on one goroutine
// and remembers which keys it reported as remote routes, so that it can
// report them withdrawn when our own path replaces them as best.
type decoder struct {
	log      *slog.Logger
	routerID netip.Addr
	vteps    []netip.Addr
	remote   map[evpn.Key]remotePath
	bad      *malformedLog
}

// item decodes one callback's worth of GoBGP's watch into out, handing
// full chunks to flush (nil: never) so that delivery of a burst starts
// before the whole burst is decoded. The initial table comes as one slice
// of every path.
func (d *decoder) item(it watchItem, out []Event, flush func([]Event)) []Event {
	if it.peer != nil {
		return d.peer(it.peer, out)
	}
	for _, p := range it.paths {
		if out = d.path(p, out); len(out) >= 256 && flush != nil {
			flush(out)
			out = nil
		}
	}
	return out
}

func (d *decoder) peer(pe *apiutil.WatchEventMessage_PeerEvent, out []Event) []Event {
	if pe.Type == apiutil.PEER_EVENT_END_OF_INIT {
		return out
	}
	st := pe.Peer.State
	addr := st.NeighborAddress
	if !addr.IsValid() {
		addr = pe.Peer.Conf.NeighborAddress
	}
	asn := st.PeerASN
	if asn == 0 {
		asn = pe.Peer.Conf.PeerASN
	}
	return append(out, Event{
		Type:    EventPeer,
		Peer:    addr.Unmap(),
		PeerASN: asn,
		State:   peerState(st.SessionState),
	})
}

// peerState maps GoBGP's FSM state (Idle = 0) to PeerState (Idle = 1).
func peerState(s bgp.FSMState) PeerState {
	if s > bgp.BGP_FSM_ESTABLISHED {
		return PeerStateUnknown
	}
	return PeerState(s) + PeerStateIdle
}

func (d *decoder) path(p *apiutil.Path, out []Event) []Event {
	if p == nil || p.Family != bgp.RF_EVPN {
		return out
	}
	var peer netip.Addr // unset for our own paths
	if p.PeerAddress.IsValid() && !p.PeerAddress.IsUnspecified() {
		peer = p.PeerAddress.Unmap()
	}
	if p.Nlri == nil {
		// GoBGP reports a received End-of-RIB as a path without NLRI.
		return append(out, Event{Type: EventEndOfRIB, Peer: peer, PeerASN: p.PeerASN, Family: FamilyL2VPNEVPN})
	}
	r, err := FromPath(p)
	if err != nil {
		switch {
		case errors.Is(err, ErrUnsupported):
			d.log.Debug("skipping EVPN path", "peer", peer, "withdraw", p.Withdrawal, "err", err)
		case errors.Is(err, ErrMalformed) && !p.Withdrawal:
			// Treat as withdraw (RFC 7606 §2): GoBGP accepted it, so a
			// previous route of ours for its key may still stand; it is
			// withdrawn below if it can be named.
			d.bad.report(d.log, peer, err)
			if k, ok := malformedKey(p); ok {
				if prev, known := d.remote[k]; known {
					delete(d.remote, k)
					return append(out, Event{Type: EventRoute, Route: &evpn.Route{Key: k}, Withdraw: true, Peer: prev.peer, PeerASN: prev.asn})
				}
			}
		case errors.Is(err, ErrMalformed):
			// The withdrawal of a route rejected (and logged) when it came.
			d.log.Debug("skipping EVPN path", "peer", peer, "withdraw", p.Withdrawal, "err", err)
		default:
			d.log.Warn("skipping EVPN path", "peer", peer, "withdraw", p.Withdrawal, "err", err)
		}
		return out
	}
	prev, known := d.remote[r.Key]
	if !peer.IsValid() || d.own(r) {
		if p.Withdrawal || !known {
			return out
		}
		delete(d.remote, r.Key)
		// r is our own route: report only the key of the remote one.
		return append(out, Event{Type: EventRoute, Route: &evpn.Route{Key: r.Key}, Withdraw: true, Peer: prev.peer, PeerASN: prev.asn})
	}
	if p.Withdrawal {
		if !known {
			return out
		}
		delete(d.remote, r.Key)
		return append(out, Event{Type: EventRoute, Route: r, Withdraw: true, Peer: peer, PeerASN: p.PeerASN})
	}
	d.remote[r.Key] = remotePath{peer: peer, asn: p.PeerASN}
	return append(out, Event{Type: EventRoute, Route: r, Stale: p.Stale, Peer: peer, PeerASN: p.PeerASN})
}

// own reports a route of ours that came back through a peer.
func (d *decoder) own(r *evpn.Route) bool {
	if r.Originator.IsValid() && r.Originator == d.routerID {
		return true
	}
	v := r.VTEP()
	return v.IsValid() && slices.Contains(d.vteps, v)
}

// malformedKey names the key of a route the codec rejected as malformed,
// when the NLRI still says which route it is: a type-2's MAC (whatever its
// length) as it would be with a well-formed one.
func malformedKey(p *apiutil.Path) (evpn.Key, bool) {
	n, ok := p.Nlri.(*bgp.EVPNNLRI)
	if !ok {
		return evpn.Key{}, false
	}
	d, ok := n.RouteTypeData.(*bgp.EVPNMacIPAdvertisementRoute)
	if !ok {
		return evpn.Key{}, false
	}
	rd, err := fromRD(d.RD)
	if err != nil {
		return evpn.Key{}, false
	}
	mac, ok := evpn.MACFrom(d.MacAddress)
	if !ok {
		return evpn.Key{}, false
	}
	k := evpn.Key{Type: evpn.RouteTypeMACIP, RD: rd, EthTag: d.ETag, MAC: mac}
	if d.IPAddress.IsValid() {
		k.IP = d.IPAddress.Unmap()
	}
	return k, true
}

// malformedLog counts the routes the codec rejected as malformed
// (ErrMalformed) and logs them at most once per malformedLogEvery.
type malformedLog struct {
	n     atomic.Uint64
	mu    sync.Mutex
	last  time.Time
	quiet uint64 // not logged since last
}

const malformedLogEvery = 10 * time.Second

func (m *malformedLog) report(log *slog.Logger, peer netip.Addr, err error) {
	m.n.Add(1)
	m.mu.Lock()
	now := time.Now()
	if !m.last.IsZero() && now.Sub(m.last) < malformedLogEvery {
		m.quiet++
		m.mu.Unlock()
		return
	}
	quiet := m.quiet
	m.last, m.quiet = now, 0
	m.mu.Unlock()
	log.Warn("rejecting malformed EVPN route (treat as withdraw, RFC 7606)", "peer", peer, "err", err,
		"not_logged_since_last", quiet, "total", m.n.Load())
}
