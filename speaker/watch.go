package speaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/evpnd/evpnd/speaker/evpn"
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
// Route events never arrive after an End-of-RIB the peer sent after them,
// but may arrive before peer events that GoBGP reported ahead of them.
//
// Only remote EVPN best paths are delivered: our own paths (and our routes
// coming back, see Config.LocalVTEPs) are filtered out; when one of them
// becomes best in place of a remote path, the remote path is delivered as
// withdrawn.
func (s *Server) Watch(ctx context.Context, fn func(Event)) error {
	return s.watch(ctx, fn, true)
}

// WatchPeers is Watch for peer events only. A route reflector uses it: it
// installs nothing, and converting every reflected path for a watcher
// would cost about a sixth of GoBGP's CPU per route for nothing.
func (s *Server) WatchPeers(ctx context.Context, fn func(Event)) error {
	return s.watch(ctx, fn, false)
}

func (s *Server) watch(ctx context.Context, fn func(Event), routes bool) error {
	if fn == nil {
		return errors.New("speaker: watch: nil callback")
	}
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
	raw := newFIFO[*api.WatchEventResponse]()
	req := &api.WatchEventRequest{
		Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_BEST, Init: true},
			{Type: api.WatchEventRequest_Table_Filter_EOR, Init: true},
		}},
		// The initial table comes in chunks the decoder can start on,
		// rather than as one slice of every path.
		BatchSize: 512,
	}
	if !routes {
		req.Table = nil
	}
	// The callback runs on GoBGP's watch goroutine: it only queues.
	if err := s.bgp.WatchEvent(wctx, req, raw.push); err != nil {
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
	}
	go func() {
		defer s.watches.Done()
		for {
			select {
			case <-wctx.Done():
				return
			case <-raw.wake:
			}
			// Hand events over in chunks, so that delivery of a burst starts
			// before the whole burst is decoded.
			var out []Event
			for _, r := range raw.take() {
				if out = d.response(r, out); len(out) >= 256 {
					events.push(out)
					out = nil
				}
			}
			events.push(out)
		}
	}()
	go func() {
		defer s.watches.Done()
		defer unlink()
		defer cancel()
		for {
			select {
			case <-wctx.Done():
				return
			case <-events.wake:
			}
			for i, ev := range events.take() {
				if i%1024 == 0 && wctx.Err() != nil {
					return
				}
				fn(ev)
			}
		}
	}()
	return nil
}

type remotePath struct {
	peer netip.Addr
	asn  uint32
}

// decoder turns GoBGP watch responses into Events. It runs on one
// goroutine and remembers which keys it reported as remote routes, so that
// it can report them withdrawn when our own path replaces them as best.
type decoder struct {
	log      *slog.Logger
	routerID netip.Addr
	vteps    []netip.Addr
	remote   map[evpn.Key]remotePath
}

func (d *decoder) response(r *api.WatchEventResponse, out []Event) []Event {
	switch ev := r.GetEvent().(type) {
	case *api.WatchEventResponse_Table:
		for _, p := range ev.Table.GetPaths() {
			out = d.path(p, out)
		}
	case *api.WatchEventResponse_Peer:
		pe := ev.Peer
		if pe.GetType() == api.WatchEventResponse_PeerEvent_END_OF_INIT {
			break
		}
		st := pe.GetPeer().GetState()
		out = append(out, Event{
			Type:    EventPeer,
			Peer:    parseAddr(st.GetNeighborAddress()),
			PeerASN: st.GetPeerAsn(),
			State:   PeerState(st.GetSessionState()),
		})
	}
	return out
}

func (d *decoder) path(p *api.Path, out []Event) []Event {
	f := p.GetFamily()
	if f.GetAfi() != api.Family_AFI_L2VPN || f.GetSafi() != api.Family_SAFI_EVPN {
		return out
	}
	peer := parseAddr(p.GetNeighborIp()) // unset ("<nil>") for our own paths
	if p.GetNlri() == nil && len(p.GetNlriBinary()) == 0 {
		// GoBGP reports a received End-of-RIB as a path without NLRI.
		return append(out, Event{Type: EventEndOfRIB, Peer: peer, PeerASN: p.GetSourceAsn(), Family: FamilyL2VPNEVPN})
	}
	r, err := decodePath(p)
	if err != nil {
		level := slog.LevelWarn
		if errors.Is(err, ErrUnsupported) {
			level = slog.LevelDebug
		}
		d.log.Log(context.Background(), level, "skipping EVPN path", "peer", peer, "withdraw", p.GetIsWithdraw(), "err", err)
		return out
	}
	prev, known := d.remote[r.Key]
	if !peer.IsValid() || d.own(r) {
		if p.GetIsWithdraw() || !known {
			return out
		}
		delete(d.remote, r.Key)
		// r is our own route: report only the key of the remote one.
		return append(out, Event{Type: EventRoute, Route: &evpn.Route{Key: r.Key}, Withdraw: true, Peer: prev.peer, PeerASN: prev.asn})
	}
	if p.GetIsWithdraw() {
		if !known {
			return out
		}
		delete(d.remote, r.Key)
		return append(out, Event{Type: EventRoute, Route: r, Withdraw: true, Peer: peer, PeerASN: p.GetSourceAsn()})
	}
	d.remote[r.Key] = remotePath{peer: peer, asn: p.GetSourceAsn()}
	return append(out, Event{Type: EventRoute, Route: r, Stale: p.GetStale(), Peer: peer, PeerASN: p.GetSourceAsn()})
}

// own reports a route of ours that came back through a peer.
func (d *decoder) own(r *evpn.Route) bool {
	if r.Originator.IsValid() && r.Originator == d.routerID {
		return true
	}
	v := r.VTEP()
	return v.IsValid() && slices.Contains(d.vteps, v)
}

// decodePath is FromPath that turns a panic in GoBGP's conversion code into
// an error: a peer's odd route must not take the daemon down.
func decodePath(p *api.Path) (r *evpn.Route, err error) {
	defer func() {
		if x := recover(); x != nil {
			r, err = nil, fmt.Errorf("decode path: %v", x)
		}
	}()
	return FromPath(p)
}
