package speaker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
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
// once, then each destination is encoded, decoded and handed to fn in
// turn, so fn may take its time without holding BGP up. When ctx ends the
// listing stops and ctx's error is returned.
//
// NOTE: that copy runs in GoBGP's main loop, which handles no UPDATE
// meanwhile: about 0.4-0.6 s for 100k paths on 2 CPUs (GoBGP v3.37 keys
// every destination by its text form). One listing runs at a time; others
// wait their turn, so that concurrent `show` commands do not add up.
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
	// GoBGP's callback cannot fail: stop it by cancelling its context,
	// which it checks between destinations.
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var fnErr error
	now := time.Now()
	req := &api.ListPathRequest{
		TableType: api.TableType_GLOBAL,
		Family:    FamilyL2VPNEVPN.api(),
		// The wire form only: no anypb per attribute, which costs more
		// than the whole decode below.
		EnableOnlyBinary: true,
	}
	err := s.bgp.ListPath(lctx, req, func(d *api.Destination) {
		for _, p := range d.GetPaths() {
			if fnErr != nil {
				return
			}
			out, err := listedPath(p, now)
			if err != nil {
				st.Skipped++
				s.log.Debug("skipping EVPN path in listing", "prefix", d.GetPrefix(), "peer", parseAddr(p.GetNeighborIp()), "err", err)
				continue
			}
			st.Listed++
			if fnErr = fn(out); fnErr != nil {
				cancel()
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

// listedPath decodes one path of ListPath (wire form) once: the route
// through the codec, and the attributes only the listing shows.
func listedPath(p *api.Path, now time.Time) (out Path, err error) {
	defer func() {
		// GoBGP's parsers index some fields without bounds checks.
		if x := recover(); x != nil {
			err = fmt.Errorf("decode path: %v", x)
		}
	}()
	nlri, err := apiutil.GetNativeNlri(p)
	if err != nil {
		return out, fmt.Errorf("decode path NLRI: %w", err)
	}
	attrs, err := listedAttrs(p.GetPattrsBinary())
	if err != nil {
		return out, fmt.Errorf("decode path attributes of %s: %w", nlri, err)
	}
	r, err := FromNative(nlri, attrs)
	if err != nil {
		return out, err
	}
	out = Path{
		Route: r,
		Peer:  parseAddr(p.GetNeighborIp()), // "<nil>" for local paths
		Best:  p.GetBest(),
		Stale: p.GetStale(),
	}
	out.Local = !out.Peer.IsValid()
	if ts := p.GetAge(); ts != nil {
		out.Age = now.Sub(ts.AsTime())
	}
	for _, a := range attrs {
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
				if a, ok := netip.AddrFromSlice(id); ok {
					out.ClusterList = append(out.ClusterList, a.Unmap())
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

// listedAttrs decodes the attributes the listing uses and skips the
// others. MP_REACH_NLRI is read for its next hop only: GoBGP's decoder
// would parse the NLRI in it again, which was a third of the listing's
// cost.
func listedAttrs(bin [][]byte) ([]bgp.PathAttributeInterface, error) {
	attrs := make([]bgp.PathAttributeInterface, 0, len(bin))
	for _, b := range bin {
		if len(b) < 3 {
			return nil, fmt.Errorf("path attribute of %d bytes", len(b))
		}
		switch bgp.BGPAttrType(b[1]) {
		case bgp.BGP_ATTR_TYPE_MP_REACH_NLRI:
			a, err := mpReachNextHop(b)
			if err != nil {
				return nil, err
			}
			attrs = append(attrs, a)
		case bgp.BGP_ATTR_TYPE_ORIGIN, bgp.BGP_ATTR_TYPE_AS_PATH, bgp.BGP_ATTR_TYPE_NEXT_HOP,
			bgp.BGP_ATTR_TYPE_LOCAL_PREF, bgp.BGP_ATTR_TYPE_ORIGINATOR_ID, bgp.BGP_ATTR_TYPE_CLUSTER_LIST,
			bgp.BGP_ATTR_TYPE_EXTENDED_COMMUNITIES, bgp.BGP_ATTR_TYPE_PMSI_TUNNEL:
			a, err := bgp.GetPathAttribute(b)
			if err != nil {
				return nil, err
			}
			if err := a.DecodeFromBytes(b); err != nil {
				return nil, err
			}
			attrs = append(attrs, a)
		}
	}
	return attrs, nil
}

// mpReachNextHop reads the address family and next hop of a serialised
// MP_REACH_NLRI (RFC 4760 §3), leaving its NLRI out.
func mpReachNextHop(b []byte) (*bgp.PathAttributeMpReachNLRI, error) {
	hdr, n := 3, int(b[2])
	if bgp.BGPAttrFlag(b[0])&bgp.BGP_ATTR_FLAG_EXTENDED_LENGTH != 0 {
		if len(b) < 4 {
			return nil, errors.New("MP_REACH_NLRI: short header")
		}
		hdr, n = 4, int(binary.BigEndian.Uint16(b[2:4]))
	}
	if len(b) < hdr+n || n < 4 {
		return nil, fmt.Errorf("MP_REACH_NLRI: length %d in %d bytes", n, len(b))
	}
	v := b[hdr : hdr+n]
	nhLen := int(v[3])
	if len(v) < 4+nhLen {
		return nil, fmt.Errorf("MP_REACH_NLRI: next hop of %d bytes in %d", nhLen, len(v))
	}
	a := &bgp.PathAttributeMpReachNLRI{AFI: binary.BigEndian.Uint16(v[0:2]), SAFI: v[2]}
	switch nh := v[4 : 4+nhLen]; nhLen {
	case 4, 16:
		a.Nexthop = net.IP(nh)
	case 32: // global and link-local (RFC 2545 §3)
		a.Nexthop = net.IP(nh[:16])
	default:
		return nil, fmt.Errorf("MP_REACH_NLRI: next hop of %d bytes", nhLen)
	}
	return a, nil
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
		if v.SubType == bgp.EC_SUBTYPE_ROUTE_TARGET && v.IsTransitive && v.IPv4.To4() != nil {
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
