package speaker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// Paths calls fn for every path of the l2vpn-evpn table: local and
// received, best or not, as `show bgp l2vpn evpn` lists them. It stops at
// the first error fn returns and returns it. Paths that do not decode are
// skipped (logged at debug); ListPaths counts them.
func (s *Server) Paths(ctx context.Context, fn func(Path) error) error {
	_, err := s.ListPaths(ctx, fn)
	return err
}

// ListPaths is Paths that also reports how many paths it listed and
// skipped.
//
// Paths come in GoBGP's order: destination by destination (every path of
// one NLRI together, the best first), destinations in no particular order.
// Nothing is collected: GoBGP copies its table's index of destinations
// once, in its main loop, which handles no UPDATE meanwhile; then each
// destination is decoded and handed to fn in turn, so fn may take its time
// without holding BGP up. When ctx ends the listing stops and ctx's error
// is returned. One listing runs at a time; others wait their turn, so that
// concurrent `show` commands do not add up.
func (s *Server) ListPaths(ctx context.Context, fn func(Path) error) (ListStats, error) {
	var st ListStats
	if fn == nil {
		return st, errors.New("speaker: list paths: nil callback")
	}
	if err := s.usable(); err != nil {
		return st, err
	}
	if err := ctx.Err(); err != nil {
		return st, fmt.Errorf("speaker: list l2vpn-evpn paths: %w", err)
	}
	select {
	case s.listing <- struct{}{}:
		defer func() { <-s.listing }()
	case <-ctx.Done():
		return st, fmt.Errorf("speaker: list l2vpn-evpn paths: waiting for another listing: %w", ctx.Err())
	}
	// GoBGP's callback cannot fail and GoBGP v4's listing cannot be
	// cancelled: once fn fails or ctx ends, the remaining destinations are
	// passed over.
	var fnErr error
	now := time.Now()
	req := apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_EVPN}
	err := s.bgp.ListPath(req, func(prefix bgp.NLRI, paths []*apiutil.Path) {
		if fnErr != nil || ctx.Err() != nil {
			return
		}
		for _, p := range paths {
			out, err := listedPath(p, now)
			if err != nil {
				st.Skipped++
				s.log.Debug("skipping EVPN path in listing", "prefix", prefix, "peer", p.PeerAddress, "err", err)
				continue
			}
			st.Listed++
			if fnErr = fn(out); fnErr != nil {
				return
			}
		}
	})
	switch {
	case fnErr != nil:
		return st, fnErr
	case err != nil:
		return st, fmt.Errorf("speaker: list l2vpn-evpn paths: %w", err)
	case ctx.Err() != nil:
		return st, fmt.Errorf("speaker: list l2vpn-evpn paths: %w", ctx.Err())
	}
	if st.Skipped > 0 {
		s.log.Debug("EVPN paths skipped in listing", "listed", st.Listed, "skipped", st.Skipped)
	}
	return st, nil
}

// listedPath decodes one path of ListPath: the route through the codec,
// and the attributes only the listing shows.
func listedPath(p *apiutil.Path, now time.Time) (out Path, err error) {
	r, err := FromPath(p)
	if err != nil {
		return out, err
	}
	out = Path{
		Route: r,
		Best:  p.Best,
		Stale: p.Stale,
	}
	if p.PeerAddress.IsValid() && !p.PeerAddress.IsUnspecified() {
		out.Peer = p.PeerAddress.Unmap()
	}
	out.Local = !out.Peer.IsValid()
	if p.Age != 0 {
		out.Age = now.Sub(time.Unix(p.Age, 0))
	}
	for _, a := range p.Attrs {
		switch v := a.(type) {
		case *bgp.PathAttributeOrigin:
			out.Origin = originText(v.Value)
		case *bgp.PathAttributeAsPath:
			for _, seg := range v.Value {
				out.ASPath = append(out.ASPath, seg.GetAS()...)
			}
		case *bgp.PathAttributeLocalPref:
			out.LocalPref = v.Value
		case *bgp.PathAttributeClusterList:
			for _, id := range v.Value {
				if id.IsValid() {
					out.ClusterList = append(out.ClusterList, id.Unmap())
				}
			}
		case *bgp.PathAttributeExtendedCommunities:
			for _, ec := range v.Value {
				if t, ok := extCommunityText(ec); ok {
					out.ExtCommunities = append(out.ExtCommunities, t)
				}
			}
		}
	}
	return out, nil
}

func originText(o uint8) string {
	switch o {
	case bgp.BGP_ORIGIN_ATTR_TYPE_IGP:
		return "i"
	case bgp.BGP_ORIGIN_ATTR_TYPE_EGP:
		return "e"
	}
	return "?"
}

// extCommunityText writes an extended community as FRR's `show bgp l2vpn
// evpn` does for the EVPN ones. ok is false for a route target the codec
// put in Route.RTs (the same test as fromExtCommunity's).
func extCommunityText(ec bgp.ExtendedCommunityInterface) (string, bool) {
	switch v := ec.(type) {
	case *bgp.TwoOctetAsSpecificExtended:
		if v.SubType == bgp.EC_SUBTYPE_ROUTE_TARGET && v.IsTransitive {
			return "", false
		}
	case *bgp.IPv4AddressSpecificExtended:
		if v.SubType == bgp.EC_SUBTYPE_ROUTE_TARGET && v.IsTransitive && v.IPv4.Unmap().Is4() {
			return "", false
		}
	case *bgp.FourOctetAsSpecificExtended:
		if v.SubType == bgp.EC_SUBTYPE_ROUTE_TARGET {
			return "RT:" + v.String(), true
		}
	case *bgp.EncapExtended:
		return "ET:" + strconv.Itoa(int(v.TunnelType)), true
	case *bgp.MacMobilityExtended:
		t := "MM:" + strconv.FormatUint(uint64(v.Sequence), 10)
		if v.IsSticky {
			t += ", sticky"
		}
		return t, true
	case *bgp.RouterMacExtended:
		return "Rmac:" + v.Mac.String(), true
	case *bgp.DefaultGatewayExtended:
		return "Default Gateway", true
	}
	return ec.String(), true
}
