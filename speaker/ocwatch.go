package speaker

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// The OpenConfirm watchdog.
//
// RFC 4271 §8.2.2: in OpenConfirm, HoldTimer expiry sends a NOTIFICATION
// (Hold Timer Expired) and goes back to Idle. GoBGP v4.9.0 arms that
// timer from the neighbour's NegotiatedHoldTime (pkg/server/fsm.go,
// openconfirm), but computes NegotiatedHoldTime only when the session
// becomes Established (fsm.stateChange). On a neighbour's first session
// it is still 0, and GoBGP then arms no hold timer (and sends no
// KEEPALIVE) in OpenConfirm: a peer that never confirms our OPEN keeps
// the session there for ever. Later sessions use the previous session's
// value. The lost KEEPALIVE needs no packet loss: in a connection
// collision GoBGP v4.9.0 can leave its outgoing connection open and never
// read after choosing the incoming one (opensent stops the outgoing
// connection manager only while it is still connecting), so the peer that
// chose that connection waits in OpenConfirm for a KEEPALIVE that never
// comes — and, if it is GoBGP too, waits for ever.
//
// The watchdog learns from GoBGP's peer-state events which neighbours
// are in OpenConfirm, polls only those (and those it set down) with
// ListPeer restricted to the neighbour's address, and resets one that stayed in OpenConfirm, on the same OPEN exchange,
// longer than its configured hold time (at most maxOpenConfirmWait): it
// sets it administratively down, which GoBGP's OpenConfirm handler
// honours (closing the connection, and stopping the outgoing connection
// manager with any connection it left behind), and back up once GoBGP
// has taken the down. ResetPeer is
// not used: GoBGP queues its NOTIFICATION for the Established handler
// only, where it would end the next session.
//
// Listing every neighbour each poll is not an option at scale: GoBGP's
// ListPeer counts each Established neighbour's received routes inside its
// main loop (about 28 ms at 50k routes, once a second, holding up the
// UPDATEs). A neighbour in OpenConfirm has no routes to count.

// openConfirmPoll is how often the watchdog lists the neighbours.
var openConfirmPoll = time.Second

const (
	// defaultHoldTime is GoBGP's hold time when none is configured.
	defaultHoldTime = 90 * time.Second
	// minOpenConfirmWait is the shortest wait before a reset (RFC 4271's
	// smallest non-zero hold time).
	minOpenConfirmWait = 3 * time.Second
	// maxOpenConfirmWait is the longest: a peer confirms our OPEN as soon
	// as it reads it, one round trip. RFC 4271 waits the hold time (90 s
	// by default), but the collision above leaves two GoBGP speakers
	// waiting on each other, and a reset costs only a new attempt.
	maxOpenConfirmWait = 10 * time.Second
	// lostDownPolls is how many polls the watchdog waits for GoBGP to
	// take a down before it takes the request for lost.
	lostDownPolls = 10
)

// ocEntry is a neighbour seen in OpenConfirm: since when, on which OPEN
// exchange (counted by the OPEN messages sent and received).
type ocEntry struct {
	opens uint64
	since time.Time
}

// StuckSessionResets is how many sessions the OpenConfirm watchdog reset.
func (s *Server) StuckSessionResets() uint64 { return s.stuckResets.Load() }

// ocStates holds the neighbours (by GoBGP key) whose last state reported
// by GoBGP's peer-state events is OpenConfirm. The events come on GoBGP's
// watch goroutine, the polls on the watchdog's.
type ocStates struct {
	mu sync.Mutex
	in map[string]bool
}

func (o *ocStates) event(pe *apiutil.WatchEventMessage_PeerEvent) {
	if pe.Type == apiutil.PEER_EVENT_END_OF_INIT {
		return
	}
	addr := pe.Peer.State.NeighborAddress
	if !addr.IsValid() {
		addr = pe.Peer.Conf.NeighborAddress
	}
	if !addr.IsValid() {
		return
	}
	key := addr.String()
	o.mu.Lock()
	if pe.Peer.State.SessionState == bgp.BGP_FSM_OPENCONFIRM {
		o.in[key] = true
	} else {
		delete(o.in, key)
	}
	o.mu.Unlock()
}

func (o *ocStates) keys() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Collect(maps.Keys(o.in))
}

// watchOpenConfirm runs the watchdog until ctx ends.
func (s *Server) watchOpenConfirm(ctx context.Context) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	states := &ocStates{in: map[string]bool{}}
	cb := server.WatchEventMessageCallbacks{
		OnPeerUpdate: func(pe *apiutil.WatchEventMessage_PeerEvent, _ time.Time) { states.event(pe) },
	}
	oc := states
	// GoBGP reports every neighbour's state first, then each change.
	if err := s.bgp.WatchEvent(wctx, cb, server.WatchPeer()); err != nil {
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("OpenConfirm watchdog: watch peer states: listing every neighbour instead", "err", err)
		oc = nil
	}
	t := time.NewTicker(openConfirmPoll)
	defer t.Stop()
	seen := map[string]ocEntry{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var only []string // nil: every neighbour
		if oc != nil {
			only = oc.keys()
			if only == nil {
				only = []string{}
			}
		}
		s.checkOpenConfirm(ctx, time.Now(), seen, only)
		s.ocPolls.Add(1)
	}
}

// listPeers lists the neighbours for the watchdog: every one if only is
// nil, else those of only and those it set down (without counting their
// routes unless they are Established, which a neighbour in OpenConfirm
// is not). A neighbour GoBGP no longer has is simply not listed.
func (s *Server) listPeers(ctx context.Context, only []string, reenable map[string]int, fn func(*api.Peer)) error {
	if only == nil {
		s.ocQueries.Add(1)
		return s.bgp.ListPeer(ctx, &api.ListPeerRequest{}, fn)
	}
	keys := slices.AppendSeq(only, maps.Keys(reenable))
	slices.Sort(keys)
	for _, key := range slices.Compact(keys) {
		s.ocQueries.Add(1)
		if err := s.bgp.ListPeer(ctx, &api.ListPeerRequest{Address: key}, fn); err != nil {
			return err
		}
	}
	return nil
}

// checkOpenConfirm is one poll over the neighbours of only (nil: every
// neighbour), which must hold every neighbour in OpenConfirm.
func (s *Server) checkOpenConfirm(ctx context.Context, now time.Time, seen map[string]ocEntry, only []string) {
	type stuck struct {
		key  string
		dur  time.Duration
		hold time.Duration
	}
	var reset []stuck
	var up, lost []string
	present := make(map[string]bool, len(seen))
	s.reenableMu.Lock()
	reenable := maps.Clone(s.reenable)
	s.reenableMu.Unlock()
	err := s.listPeers(ctx, only, reenable, func(p *api.Peer) {
		st := p.GetState()
		key := st.GetNeighborAddress()
		if key == "" {
			key = p.GetConf().GetNeighborAddress()
		}
		present[key] = true
		if _, ok := reenable[key]; ok {
			// Up only once GoBGP took the down: it drops an admin
			// request while another is pending. A down it never took
			// (dropped so) is forgotten after a while.
			switch {
			case st.GetAdminState() == api.PeerState_ADMIN_STATE_DOWN && st.GetSessionState() != api.PeerState_SESSION_STATE_OPENCONFIRM:
				up = append(up, key)
			case st.GetAdminState() == api.PeerState_ADMIN_STATE_UP:
				lost = append(lost, key)
			}
			return
		}
		if st.GetSessionState() != api.PeerState_SESSION_STATE_OPENCONFIRM {
			delete(seen, key)
			return
		}
		opens := st.GetMessages().GetReceived().GetOpen() + st.GetMessages().GetSent().GetOpen()
		e, ok := seen[key]
		if !ok || e.opens != opens {
			seen[key] = ocEntry{opens: opens, since: now}
			return
		}
		hold := time.Duration(p.GetTimers().GetConfig().GetHoldTime()) * time.Second
		if hold == 0 {
			hold = defaultHoldTime
		}
		hold = min(max(hold, minOpenConfirmWait), maxOpenConfirmWait)
		if d := now.Sub(e.since); d > hold {
			reset = append(reset, stuck{key, d, hold})
		}
	})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("OpenConfirm watchdog: list peers", "err", err)
		}
		return
	}
	for key := range seen {
		if !present[key] { // deleted, or out of OpenConfirm by its events
			delete(seen, key)
		}
	}
	s.reenableMu.Lock()
	for key := range reenable {
		if !present[key] {
			delete(s.reenable, key) // a dynamic neighbour GoBGP deleted
		}
	}
	for _, key := range lost {
		if n, ok := s.reenable[key]; ok {
			if n >= lostDownPolls {
				delete(s.reenable, key)
			} else {
				s.reenable[key] = n + 1
			}
		}
	}
	for _, key := range up {
		if _, ok := s.reenable[key]; !ok {
			continue // SetNeighborEnabled decided meanwhile
		}
		if err := s.bgp.EnablePeer(ctx, &api.EnablePeerRequest{Address: key}); err != nil {
			s.log.Warn("OpenConfirm watchdog: enable peer again", "peer", key, "err", err)
			continue
		}
		delete(s.reenable, key)
	}
	s.reenableMu.Unlock()
	for _, r := range reset {
		delete(seen, r.key)
		s.stuckResets.Add(1)
		s.log.Warn("BGP session stuck in OPENCONFIRM past the hold time: resetting it",
			"peer", r.key, "in_openconfirm", r.dur.Round(100*time.Millisecond), "limit", r.hold)
		s.reenableMu.Lock() // so that SetNeighborEnabled comes before or after both
		err := s.bgp.DisablePeer(ctx, &api.DisablePeerRequest{Address: r.key, Communication: "evpnd: hold timer expired in OpenConfirm"})
		if err == nil {
			s.reenable[r.key] = 0
		}
		s.reenableMu.Unlock()
		if err != nil {
			s.log.Warn("OpenConfirm watchdog: disable peer", "peer", r.key, "err", err)
		}
	}
}
