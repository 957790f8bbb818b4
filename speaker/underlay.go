package speaker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// The BGP underlay (RFC 7938): every node originates its loopback /32 in
// ipv4-unicast on eBGP sessions over the fabric links, and installs what it
// learns with ECMP over the equally good paths. GoBGP's own multipath
// (Global.UseMultiplePaths) is left off: it changes the shape of the
// best-path events the EVPN watch relies on. evpnd computes the ECMP sets
// itself from GoBGP's ipv4-unicast table instead (UnderlayECMP), which is
// small: one prefix per node of the fabric.

// UnderlayRoute is one learned underlay prefix and the next hops (peer link
// addresses) to spread it over.
type UnderlayRoute struct {
	Prefix   netip.Prefix
	NextHops []netip.Addr // sorted, at least one
}

// UnderlayPath is one ipv4-unicast path as UnderlayECMP sees it.
type UnderlayPath struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
	Peer    netip.Addr // invalid for a locally originated path
	ASPath  int        // AS-path length (an AS_SET counts 1, RFC 4271 §9.1.2.2)
	Stale   bool       // kept by graceful restart for a peer that is down
}

// UnderlayECMP is the pure multipath selection: per prefix, the paths
// learned from peers that are not stale, with the shortest AS path; their
// next hops form the ECMP set. A prefix this node originates itself is not
// installed. Stale paths (graceful restart of a peer that went down) are
// left out, so that traffic leaves a dead spine at once; a prefix whose
// only paths are stale is installed over them rather than dropped.
func UnderlayECMP(paths []UnderlayPath) []UnderlayRoute {
	type sel struct {
		local           bool
		best, bestStale int
		hops, staleHops []netip.Addr
	}
	by := map[netip.Prefix]*sel{}
	var order []netip.Prefix
	add := func(hops []netip.Addr, best *int, p UnderlayPath) []netip.Addr {
		switch {
		case len(hops) == 0 || p.ASPath < *best:
			*best = p.ASPath
			return []netip.Addr{p.NextHop}
		case p.ASPath == *best && !slices.Contains(hops, p.NextHop):
			return append(hops, p.NextHop)
		}
		return hops
	}
	for _, p := range paths {
		s := by[p.Prefix]
		if s == nil {
			s = &sel{}
			by[p.Prefix] = s
			order = append(order, p.Prefix)
		}
		switch {
		case !p.Peer.IsValid():
			s.local = true
		case !p.NextHop.Is4() || p.NextHop.IsUnspecified():
		case p.Stale:
			s.staleHops = add(s.staleHops, &s.bestStale, p)
		default:
			s.hops = add(s.hops, &s.best, p)
		}
	}
	var out []UnderlayRoute
	for _, pf := range order {
		s := by[pf]
		hops := s.hops
		if len(hops) == 0 {
			hops = s.staleHops
		}
		if s.local || len(hops) == 0 {
			continue
		}
		slices.SortFunc(hops, func(a, b netip.Addr) int { return a.Compare(b) })
		out = append(out, UnderlayRoute{Prefix: pf, NextHops: hops})
	}
	slices.SortFunc(out, func(a, b UnderlayRoute) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	return out
}

func underlayPath(p *apiutil.Path) (UnderlayPath, bool) {
	if p.Withdrawal || p.Nlri == nil || p.IsNexthopInvalid || p.Filtered {
		return UnderlayPath{}, false
	}
	n, ok := p.Nlri.(*bgp.IPAddrPrefix)
	if !ok {
		return UnderlayPath{}, false
	}
	out := UnderlayPath{Prefix: n.Prefix.Masked(), Stale: p.Stale}
	if p.PeerAddress.IsValid() && !p.PeerAddress.IsUnspecified() {
		out.Peer = p.PeerAddress.Unmap()
	}
	for _, a := range p.Attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeNextHop:
			out.NextHop = a.Value.Unmap()
		case *bgp.PathAttributeAsPath:
			for _, seg := range a.Value {
				if seg.GetType() == bgp.BGP_ASPATH_ATTR_TYPE_SET || seg.GetType() == bgp.BGP_ASPATH_ATTR_TYPE_CONFED_SET {
					out.ASPath++
				} else {
					out.ASPath += len(seg.GetAS())
				}
			}
		}
	}
	return out, true
}

// AdvertiseUnderlay originates prefixes in ipv4-unicast, with next hop
// self: GoBGP puts the session's local address on each eBGP session.
// Advertising a prefix again changes nothing.
func (s *Server) AdvertiseUnderlay(ctx context.Context, prefixes []netip.Prefix) error {
	if err := s.usable(); err != nil {
		return err
	}
	var paths []*apiutil.Path
	for _, pf := range prefixes {
		if !pf.Addr().Is4() {
			return fmt.Errorf("speaker: advertise underlay prefix %v: want IPv4", pf)
		}
		nlri, err := bgp.NewIPAddrPrefix(pf.Masked())
		if err != nil {
			return fmt.Errorf("speaker: advertise underlay prefix %v: %w", pf, err)
		}
		nh, err := bgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return err
		}
		paths = append(paths, &apiutil.Path{
			Family: bgp.RF_IPv4_UC,
			Nlri:   nlri,
			Attrs:  []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP), nh},
			Age:    time.Now().Unix(),
		})
	}
	if len(paths) == 0 {
		return nil
	}
	if _, err := s.bgp.AddPath(apiutil.AddPathRequest{Paths: paths}); err != nil {
		return fmt.Errorf("speaker: advertise underlay prefixes %v: %w", prefixes, err)
	}
	return nil
}

// UnderlayRoutes lists the ECMP sets of GoBGP's ipv4-unicast table now.
func (s *Server) UnderlayRoutes(ctx context.Context) ([]UnderlayRoute, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	var ps []UnderlayPath
	req := apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv4_UC}
	err := s.bgp.ListPath(req, func(_ bgp.NLRI, paths []*apiutil.Path) {
		for _, p := range paths {
			if up, ok := underlayPath(p); ok {
				ps = append(ps, up)
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("speaker: list ipv4-unicast paths: %w", err)
	}
	return UnderlayECMP(ps), nil
}

// WatchUnderlay calls fn with the complete set of learned underlay routes
// (UnderlayRoutes) now and whenever it changes, until ctx is cancelled or
// the Server stops. It returns once the watch is registered. fn runs on
// one goroutine; it must not block for long.
//
// Any ipv4-unicast update or withdrawal from a peer, any best-path change
// and any session change wakes a relisting of the (small) ipv4-unicast
// table; wake-ups coalesce. GoBGP converts every received path for this
// watch, EVPN ones included (its watch has no family filter): that costs
// CPU per EVPN update on nodes that run the underlay.
func (s *Server) WatchUnderlay(ctx context.Context, fn func([]UnderlayRoute)) error {
	if fn == nil {
		return errors.New("speaker: watch underlay: nil callback")
	}
	s.mu.Lock()
	if s.stopped || !s.started {
		s.mu.Unlock()
		return errors.New("speaker: watch underlay: not running")
	}
	s.watches.Add(1)
	s.mu.Unlock()
	wctx, cancel := context.WithCancel(ctx)
	unlink := context.AfterFunc(s.life, cancel)
	wake := make(chan struct{}, 1)
	poke := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	v4 := func(ps []*apiutil.Path) {
		for _, p := range ps {
			if p.Family == bgp.RF_IPv4_UC {
				poke()
				return
			}
		}
	}
	cb := server.WatchEventMessageCallbacks{
		OnPathUpdate: func(ps []*apiutil.Path, _ time.Time) { v4(ps) },
		OnBestPath:   func(ps []*apiutil.Path, _ time.Time) { v4(ps) },
		OnPeerUpdate: func(*apiutil.WatchEventMessage_PeerEvent, time.Time) { poke() },
	}
	opts := []server.WatchOption{server.WatchPeer(), server.WatchBestPath(false),
		server.WatchPostUpdate(false, "", ""), server.WatchAdjInWithdraw()}
	if err := s.bgp.WatchEvent(wctx, cb, opts...); err != nil {
		unlink()
		cancel()
		s.watches.Done()
		return fmt.Errorf("speaker: watch underlay: %w", err)
	}
	poke()
	go func() {
		defer s.watches.Done()
		defer unlink()
		defer cancel()
		var last []UnderlayRoute
		first := true
		for {
			select {
			case <-wctx.Done():
				return
			case <-wake:
			}
			rs, err := s.UnderlayRoutes(wctx)
			if err != nil {
				if wctx.Err() == nil {
					s.log.Warn("underlay: list ipv4-unicast routes", "err", err)
				}
				continue
			}
			if !first && slices.EqualFunc(rs, last, func(a, b UnderlayRoute) bool {
				return a.Prefix == b.Prefix && slices.Equal(a.NextHops, b.NextHops)
			}) {
				continue
			}
			first, last = false, rs
			fn(rs)
		}
	}()
	return nil
}

// SetNeighborEnabled takes a neighbour's session administratively down
// (enabled false: GoBGP closes it, and its paths go or turn stale under
// graceful restart) or lets it come up again. Used for fast external
// failover: the link to a directly connected peer went down.
func (s *Server) SetNeighborEnabled(ctx context.Context, addr netip.Addr, enabled bool) error {
	if err := s.usable(); err != nil {
		return err
	}
	a := addr.Unmap().String()
	var err error
	if enabled {
		err = s.bgp.EnablePeer(ctx, &api.EnablePeerRequest{Address: a})
	} else {
		err = s.bgp.DisablePeer(ctx, &api.DisablePeerRequest{Address: a, Communication: "link to the peer is down"})
	}
	if err != nil {
		return fmt.Errorf("speaker: set neighbor %s enabled=%v: %w", addr, enabled, err)
	}
	return nil
}
