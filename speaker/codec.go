package speaker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// ErrUnsupported marks an EVPN route evpnd does not handle (route types 1
// and 4, unknown RD types). The route is well-formed; the caller logs it and
// skips it.
var ErrUnsupported = errors.New("unsupported EVPN route")

// ErrMalformed marks an EVPN route that GoBGP decoded but that breaks RFC
// 7432 in a way GoBGP lets through (a MAC length other than 48 bits, a
// type-2 with more than 2 labels). FRR rejects such routes; so does evpnd.
var ErrMalformed = errors.New("malformed EVPN route")

// Update is one route of a decoded BGP UPDATE message.
type Update struct {
	Route    *evpn.Route
	Withdraw bool // carried in MP_UNREACH_NLRI: only the key is meaningful
}

const maxLabel = 1<<24 - 1

// ToNative encodes r as GoBGP's native NLRI and path attributes for an
// advertisement: ORIGIN igp, MP_REACH_NLRI with r.NextHop, the extended
// communities, and for type-3 the PMSI tunnel attribute (required).
// Attributes are in type order, the order GoBGP sends them in. Every route
// carries the encapsulation community (RFC 8365 §5.1.3): VXLAN when r.Encap
// is 0.
func ToNative(r *evpn.Route) (bgp.NLRI, []bgp.PathAttributeInterface, error) {
	nlri, err := toNLRI(r)
	if err != nil {
		return nil, nil, err
	}
	if !r.NextHop.IsValid() {
		return nil, nil, fmt.Errorf("encode %s: no next hop: set the route's NextHop to the local VTEP address", r.Key)
	}
	mp, err := bgp.NewPathAttributeMpReachNLRI(bgp.RF_EVPN, []bgp.PathNLRI{{NLRI: nlri}}, r.NextHop.Unmap())
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s: MP_REACH_NLRI: %w", r.Key, err)
	}
	ecs, err := extCommunities(r)
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s: %w", r.Key, err)
	}
	attrs := make([]bgp.PathAttributeInterface, 0, 4)
	attrs = append(attrs, bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP), mp)
	attrs = append(attrs, bgp.NewPathAttributeExtendedCommunities(ecs))
	if r.Type == evpn.RouteTypeIMET {
		if r.PMSI == nil {
			return nil, nil, fmt.Errorf("encode %s: an inclusive multicast route needs a PMSI tunnel attribute (label = L2VNI)", r.Key)
		}
		pmsi, err := toPMSI(r)
		if err != nil {
			return nil, nil, err
		}
		attrs = append(attrs, pmsi)
	}
	return nlri, attrs, nil
}

// ToPath encodes r as a GoBGP native path for AddPath, or for DeletePath
// when withdraw is set (a withdrawal carries the NLRI only).
func ToPath(r *evpn.Route, withdraw bool) (*apiutil.Path, error) {
	var nlri bgp.NLRI
	var attrs []bgp.PathAttributeInterface
	var err error
	if withdraw {
		nlri, err = toNLRI(r)
	} else {
		nlri, attrs, err = ToNative(r)
	}
	if err != nil {
		return nil, err
	}
	return &apiutil.Path{
		Family:     bgp.RF_EVPN,
		Nlri:       nlri,
		Attrs:      attrs,
		Withdrawal: withdraw,
		Age:        time.Now().Unix(),
	}, nil
}

// EncodeUpdate serialises r as a whole BGP UPDATE message (marker and
// header included): MP_REACH_NLRI with r's attributes, or MP_UNREACH_NLRI
// when withdraw is set. It is what ToNative produces on the wire, without
// the AS_PATH and LOCAL_PREF attributes that GoBGP adds per session.
func EncodeUpdate(r *evpn.Route, withdraw bool) ([]byte, error) {
	var attrs []bgp.PathAttributeInterface
	if withdraw {
		nlri, err := toNLRI(r)
		if err != nil {
			return nil, err
		}
		mp, err := bgp.NewPathAttributeMpUnreachNLRI(bgp.RF_EVPN, []bgp.PathNLRI{{NLRI: nlri}})
		if err != nil {
			return nil, fmt.Errorf("encode %s: MP_UNREACH_NLRI: %w", r.Key, err)
		}
		attrs = []bgp.PathAttributeInterface{mp}
	} else {
		var err error
		if _, attrs, err = ToNative(r); err != nil {
			return nil, err
		}
	}
	b, err := bgp.NewBGPUpdateMessage(nil, attrs, nil).Serialize()
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", r.Key, err)
	}
	return b, nil
}

func toNLRI(r *evpn.Route) (*bgp.EVPNNLRI, error) {
	if r == nil {
		return nil, errors.New("encode: nil route")
	}
	rd, err := toRD(r.RD)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", r.Key, err)
	}
	for _, l := range r.Labels {
		if l > maxLabel {
			return nil, fmt.Errorf("encode %s: label %d does not fit 24 bits (VNIs are 1-16777215)", r.Key, l)
		}
	}
	esi := toESI(r.ESI)
	switch r.Type {
	case evpn.RouteTypeMACIP:
		if n := len(r.Labels); n < 1 || n > 2 {
			return nil, fmt.Errorf("encode %s: a MAC/IP route carries 1 or 2 labels (L2VNI[, L3VNI]), got %d", r.Key, n)
		}
		var ip netip.Addr
		if r.IP.IsValid() {
			ip = r.IP.Unmap()
		}
		// Labels are written raw: the VNI in all 24 bits (RFC 8365 §5.1.3).
		labels := append([]uint32(nil), r.Labels...)
		n, err := bgp.NewEVPNMacIPAdvertisementRoute(rd, esi, r.EthTag, r.MAC.String(), ip, labels)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", r.Key, err)
		}
		return n, nil
	case evpn.RouteTypeIMET:
		if !r.IP.IsValid() {
			return nil, fmt.Errorf("encode %s: an inclusive multicast route needs the originating router's IP", r.Key)
		}
		n, err := bgp.NewEVPNMulticastEthernetTagRoute(rd, r.EthTag, r.IP.Unmap())
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", r.Key, err)
		}
		return n, nil
	case evpn.RouteTypeIPPrefix:
		p := r.Prefix
		if !p.IsValid() {
			return nil, fmt.Errorf("encode %s: an IP prefix route needs a prefix", r.Key)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked()
		gw := r.GatewayIP
		if !gw.IsValid() {
			if p.Addr().Is4() {
				gw = netip.IPv4Unspecified()
			} else {
				gw = netip.IPv6Unspecified()
			}
		}
		if gw.Unmap().Is4() != p.Addr().Is4() {
			return nil, fmt.Errorf("encode %s: gateway %s and prefix are of different address families", r.Key, gw)
		}
		// RFC 9136 §4.4.1 with RFC 8365: over VXLAN the label is the
		// L3VNI, and there is no VNI 0.
		if len(r.Labels) != 1 || r.Labels[0] == 0 {
			return nil, fmt.Errorf("encode %s: an IP prefix route carries one label, the L3VNI (1-16777215), got %v", r.Key, r.Labels)
		}
		label := r.Labels[0]
		n, err := bgp.NewEVPNIPPrefixRoute(rd, esi, r.EthTag, uint8(p.Bits()), p.Addr(), gw.Unmap(), label)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", r.Key, err)
		}
		return n, nil
	}
	return nil, fmt.Errorf("encode %s: %w: route type %d", r.Key, ErrUnsupported, r.Type)
}

func toRD(rd evpn.RD) (bgp.RouteDistinguisherInterface, error) {
	switch rd.Type {
	case evpn.RDTypeAS2:
		if rd.Admin > 0xffff {
			return nil, fmt.Errorf("RD %s: a type-0 RD has a 2-octet ASN", rd)
		}
		return bgp.NewRouteDistinguisherTwoOctetAS(uint16(rd.Admin), rd.Number), nil
	case evpn.RDTypeIPv4:
		if rd.Number > 0xffff {
			return nil, fmt.Errorf("RD %s: a type-1 RD has a 2-octet number", rd)
		}
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], rd.Admin)
		return bgp.NewRouteDistinguisherIPAddressAS(netip.AddrFrom4(a), uint16(rd.Number))
	case evpn.RDTypeAS4:
		if rd.Number > 0xffff {
			return nil, fmt.Errorf("RD %s: a type-2 RD has a 2-octet number", rd)
		}
		return bgp.NewRouteDistinguisherFourOctetAS(rd.Admin, uint16(rd.Number)), nil
	}
	return nil, fmt.Errorf("%w: RD type %d", ErrUnsupported, rd.Type)
}

func toESI(e evpn.ESI) bgp.EthernetSegmentIdentifier {
	return bgp.EthernetSegmentIdentifier{Type: bgp.ESIType(e[0]), Value: append([]byte(nil), e[1:]...)}
}

// extCommunities orders the communities as FRR does when it originates a
// route: encapsulation, RTs, MAC mobility, router's MAC, default gateway.
func extCommunities(r *evpn.Route) ([]bgp.ExtendedCommunityInterface, error) {
	ecs := make([]bgp.ExtendedCommunityInterface, 0, 2+len(r.RTs)+3)
	encap := r.Encap
	if encap == 0 {
		encap = evpn.TunnelTypeVXLAN
	}
	ecs = append(ecs, bgp.NewEncapExtended(bgp.TunnelType(encap)))
	for _, rt := range r.RTs {
		if rt.IPv4 {
			var a [4]byte
			binary.BigEndian.PutUint32(a[:], rt.Admin)
			ec, err := bgp.NewIPv4AddressSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, netip.AddrFrom4(a), uint16(rt.Value), true)
			if err != nil {
				return nil, fmt.Errorf("route target %v: %w", rt, err)
			}
			ecs = append(ecs, ec)
		} else if rt.AS4 {
			// RFC 5668: a 4-octet ASN with a 16-bit value.
			if rt.Value > 0xffff {
				return nil, fmt.Errorf("route target %v: the value of a 4-octet-AS route target has 16 bits", rt)
			}
			ecs = append(ecs, bgp.NewFourOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, rt.Admin, uint16(rt.Value), true))
		} else {
			ecs = append(ecs, bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, uint16(rt.Admin), rt.Value, true))
		}
	}
	// Always explicit when evpnd has a sequence: left out, GoBGP would
	// assign its own (0 where RFC 7432 §15 expects 1).
	if r.Type == evpn.RouteTypeMACIP && (r.Mobility || r.Seq > 0 || r.Sticky) {
		ecs = append(ecs, bgp.NewMacMobilityExtended(r.Seq, r.Sticky))
	}
	if r.HasRMAC {
		// RFC 9135 §8.1: the router's MAC is the inner destination MAC of
		// routed traffic; a group or zero address would be dropped.
		if !r.RouterMAC.IsUnicast() {
			return nil, fmt.Errorf("router's MAC %s is not a unicast MAC: set the VRF's router MAC", r.RouterMAC)
		}
		ecs = append(ecs, bgp.NewRoutersMacExtended(r.RouterMAC.String()))
	}
	if r.DefaultGW {
		// RFC 7432 §7.8: the community marks a MAC/IP route of a gateway.
		if r.Type != evpn.RouteTypeMACIP || !r.IP.IsValid() {
			return nil, errors.New("the Default Gateway community belongs on a MAC/IP route with an IP address only")
		}
		ecs = append(ecs, bgp.NewDefaultGatewayExtended())
	}
	return ecs, nil
}

func toPMSI(r *evpn.Route) (*bgp.PathAttributePmsiTunnel, error) {
	p := r.PMSI
	if p.Label > maxLabel {
		return nil, fmt.Errorf("encode %s: PMSI label %d does not fit 24 bits", r.Key, p.Label)
	}
	typ := p.Type
	if typ == 0 {
		typ = evpn.PMSIIngressReplication
	}
	if typ != evpn.PMSIIngressReplication {
		return nil, fmt.Errorf("encode %s: %w: PMSI tunnel type %d (only ingress replication, 6)", r.Key, ErrUnsupported, typ)
	}
	ep := p.Endpoint
	if !ep.IsValid() {
		ep = r.IP
	}
	if !ep.IsValid() {
		return nil, fmt.Errorf("encode %s: PMSI tunnel without an endpoint", r.Key)
	}
	id, err := bgp.NewIngressReplTunnelID(ep.Unmap())
	if err != nil {
		return nil, fmt.Errorf("encode %s: PMSI endpoint: %w", r.Key, err)
	}
	return bgp.NewPathAttributePmsiTunnel(bgp.PMSI_TUNNEL_TYPE_INGRESS_REPL, p.Flags&0x01 != 0, p.Label, id), nil
}

// FromPath decodes a GoBGP native path (as WatchEvent and ListPath deliver
// it, or as ToPath builds it). Only the attributes evpnd uses are decoded. A
// withdrawal GoBGP reports carries the attributes of the path withdrawn, so
// its next hop (the VTEP that withdrew) is known too. A panic in GoBGP's
// types becomes an error: a peer's odd route must not take the daemon down.
func FromPath(p *apiutil.Path) (r *evpn.Route, err error) {
	if p == nil {
		return nil, errors.New("decode: nil path")
	}
	defer func() {
		if x := recover(); x != nil {
			r, err = nil, fmt.Errorf("decode path: %v", x)
		}
	}()
	return FromNative(p.Nlri, p.Attrs)
}

// FromNative decodes an EVPN NLRI and its path attributes (attrs may be
// nil, as for a withdrawal). Attributes evpnd does not use are ignored; so
// are route targets it cannot represent (4-octet-AS form).
func FromNative(nlri bgp.NLRI, attrs []bgp.PathAttributeInterface) (*evpn.Route, error) {
	n, ok := nlri.(*bgp.EVPNNLRI)
	if !ok || n == nil {
		return nil, fmt.Errorf("decode: %T is not an EVPN NLRI", nlri)
	}
	r := &evpn.Route{}
	if err := fromNLRI(r, n); err != nil {
		return nil, err
	}
	for _, a := range attrs {
		if err := fromAttr(r, a); err != nil {
			return nil, fmt.Errorf("decode %s: %w", r.Key, err)
		}
	}
	return r, nil
}

func fromNLRI(r *evpn.Route, n *bgp.EVPNNLRI) error {
	var err error
	switch d := n.RouteTypeData.(type) {
	case *bgp.EVPNMacIPAdvertisementRoute:
		r.Type = evpn.RouteTypeMACIP
		if r.RD, err = fromRD(d.RD); err != nil {
			return err
		}
		r.ESI = fromESI(d.ESI)
		r.EthTag = d.ETag
		mac, ok := evpn.MACFrom(d.MacAddress)
		if !ok || d.MacAddressLength != 48 {
			return fmt.Errorf("decode type-2 rd %s: %w: MAC length %d bits, want 48", r.RD, ErrMalformed, d.MacAddressLength)
		}
		r.MAC = mac
		if d.IPAddress.IsValid() {
			r.IP = d.IPAddress.Unmap()
		}
		if n := len(d.Labels); n < 1 || n > 2 {
			return fmt.Errorf("decode type-2 %s: %w: %d labels, want 1 or 2", r.Key, ErrMalformed, n)
		}
		// GoBGP v4 reads one or two labels and ignores whatever follows
		// them in the NLRI (a third label, for one): the NLRI's own length
		// must be what the fields decoded add up to (RFC 7432 §7.2).
		if n.Length != 0 {
			if want := 30 + int(d.IPAddressLength)/8 + 3*len(d.Labels); int(n.Length) != want {
				return fmt.Errorf("decode type-2 %s: %w: NLRI of %d octets, want %d for %d label(s); more than 2 labels?", r.Key, ErrMalformed, n.Length, want, len(d.Labels))
			}
		}
		r.Labels = append([]uint32(nil), d.Labels...)
	case *bgp.EVPNMulticastEthernetTagRoute:
		r.Type = evpn.RouteTypeIMET
		if r.RD, err = fromRD(d.RD); err != nil {
			return err
		}
		r.EthTag = d.ETag
		if !d.IPAddress.IsValid() {
			return fmt.Errorf("decode type-3 rd %s: %w: no originating router's IP", r.RD, ErrMalformed)
		}
		r.IP = d.IPAddress.Unmap()
	case *bgp.EVPNIPPrefixRoute:
		r.Type = evpn.RouteTypeIPPrefix
		if r.RD, err = fromRD(d.RD); err != nil {
			return err
		}
		r.ESI = fromESI(d.ESI)
		r.EthTag = d.ETag
		if !d.IPPrefix.IsValid() {
			return fmt.Errorf("decode type-5 rd %s: %w: no prefix", r.RD, ErrMalformed)
		}
		ip := d.IPPrefix.Unmap()
		if int(d.IPPrefixLength) > ip.BitLen() {
			return fmt.Errorf("decode type-5 rd %s: prefix length %d exceeds %d", r.RD, d.IPPrefixLength, ip.BitLen())
		}
		r.Prefix = netip.PrefixFrom(ip, int(d.IPPrefixLength))
		// A zero gateway means "no overlay index" (RFC 9136 §3.1): keep it
		// unset so that it round-trips with routes evpnd builds.
		if gw := d.GWIPAddress.Unmap(); gw.IsValid() && !gw.IsUnspecified() {
			r.GatewayIP = gw
		}
		r.Labels = []uint32{d.Label}
	case nil:
		return fmt.Errorf("decode: %w: EVPN route type %d", ErrUnsupported, n.RouteType)
	default:
		return fmt.Errorf("decode: %w: EVPN route type %d (%T)", ErrUnsupported, n.RouteType, d)
	}
	return nil
}

func fromRD(rd bgp.RouteDistinguisherInterface) (evpn.RD, error) {
	switch v := rd.(type) {
	case *bgp.RouteDistinguisherTwoOctetAS:
		return evpn.RD{Type: evpn.RDTypeAS2, Admin: uint32(v.Admin), Number: v.Assigned}, nil
	case *bgp.RouteDistinguisherIPAddressAS:
		a := v.Admin.Unmap()
		if !a.Is4() {
			return evpn.RD{}, fmt.Errorf("decode: %w: type-1 RD %v", ErrMalformed, v.Admin)
		}
		ip4 := a.As4()
		return evpn.RD{Type: evpn.RDTypeIPv4, Admin: binary.BigEndian.Uint32(ip4[:]), Number: uint32(v.Assigned)}, nil
	case *bgp.RouteDistinguisherFourOctetAS:
		return evpn.RD{Type: evpn.RDTypeAS4, Admin: v.Admin, Number: uint32(v.Assigned)}, nil
	case nil:
		return evpn.RD{}, errors.New("decode: route without an RD")
	}
	return evpn.RD{}, fmt.Errorf("decode: %w: RD %v", ErrUnsupported, rd)
}

func fromESI(e bgp.EthernetSegmentIdentifier) evpn.ESI {
	var out evpn.ESI
	out[0] = byte(e.Type)
	copy(out[1:], e.Value)
	return out
}

func addrFrom(a netip.Addr) (netip.Addr, error) {
	if !a.IsValid() {
		return netip.Addr{}, errors.New("no IP address")
	}
	return a.Unmap(), nil
}

func fromAttr(r *evpn.Route, a bgp.PathAttributeInterface) error {
	var err error
	switch v := a.(type) {
	case *bgp.PathAttributeMpReachNLRI:
		if v.AFI == bgp.AFI_L2VPN && v.SAFI == bgp.SAFI_EVPN && v.Nexthop.IsValid() {
			if r.NextHop, err = addrFrom(v.Nexthop); err != nil {
				return fmt.Errorf("next hop: %w", err)
			}
		}
	case *bgp.PathAttributeNextHop:
		if !r.NextHop.IsValid() && v.Value.IsValid() {
			if r.NextHop, err = addrFrom(v.Value); err != nil {
				return fmt.Errorf("next hop: %w", err)
			}
		}
	case *bgp.PathAttributeOriginatorId:
		if r.Originator, err = addrFrom(v.Value); err != nil {
			return fmt.Errorf("originator id: %w", err)
		}
	case *bgp.PathAttributeExtendedCommunities:
		for _, ec := range v.Value {
			if err := fromExtCommunity(r, ec); err != nil {
				return err
			}
		}
	case *bgp.PathAttributePmsiTunnel:
		p := &evpn.PMSI{Type: uint8(v.TunnelType), Label: v.Label}
		if v.IsLeafInfoRequired {
			p.Flags |= 0x01
		}
		if id, ok := v.TunnelID.(*bgp.IngressReplTunnelID); ok && id.Value.IsValid() {
			if p.Endpoint, err = addrFrom(id.Value); err != nil {
				return fmt.Errorf("PMSI endpoint: %w", err)
			}
		}
		r.PMSI = p
	}
	return nil
}

func fromExtCommunity(r *evpn.Route, ec bgp.ExtendedCommunityInterface) error {
	switch v := ec.(type) {
	case *bgp.TwoOctetAsSpecificExtended:
		if v.SubType == bgp.EC_SUBTYPE_ROUTE_TARGET && v.IsTransitive {
			r.RTs = append(r.RTs, evpn.RT{Admin: uint32(v.AS), Value: v.LocalAdmin})
		}
	case *bgp.FourOctetAsSpecificExtended:
		if v.SubType == bgp.EC_SUBTYPE_ROUTE_TARGET && v.IsTransitive {
			r.RTs = append(r.RTs, evpn.RT{AS4: true, Admin: v.AS, Value: uint32(v.LocalAdmin)})
		}
	case *bgp.IPv4AddressSpecificExtended:
		if v.SubType == bgp.EC_SUBTYPE_ROUTE_TARGET && v.IsTransitive {
			a := v.IPv4.Unmap()
			if !a.Is4() {
				return fmt.Errorf("malformed IPv4 route target %v", v.IPv4)
			}
			ip4 := a.As4()
			r.RTs = append(r.RTs, evpn.RT{IPv4: true, Admin: binary.BigEndian.Uint32(ip4[:]), Value: uint32(v.LocalAdmin)})
		}
	case *bgp.EncapExtended:
		r.Encap = uint16(v.TunnelType)
	case *bgp.MacMobilityExtended:
		r.Mobility, r.Seq, r.Sticky = true, v.Sequence, v.IsSticky
	case *bgp.RouterMacExtended:
		mac, ok := evpn.MACFrom(v.Mac)
		if !ok {
			return fmt.Errorf("malformed router's MAC %v", v.Mac)
		}
		r.RouterMAC, r.HasRMAC = mac, true
	case *bgp.DefaultGatewayExtended:
		r.DefaultGW = true
	}
	return nil
}

// DecodeUpdate decodes a whole BGP UPDATE message (marker included) into the
// EVPN routes of its MP_REACH_NLRI and MP_UNREACH_NLRI attributes (AFI 25,
// SAFI 70). Other address families are ignored; an End-of-RIB yields no
// updates. Routes that fail to decode are left out and reported in the
// joined error, so the returned updates are usable even when err != nil.
// Malformed input never panics.
func DecodeUpdate(msg []byte) (ups []Update, err error) {
	defer func() {
		// GoBGP's parser indexes some fields without bounds checks.
		if p := recover(); p != nil {
			ups, err = nil, fmt.Errorf("decode UPDATE: malformed message: %v", p)
		}
	}()
	if len(msg) < bgp.BGP_HEADER_LENGTH {
		return nil, fmt.Errorf("decode UPDATE: %d bytes is shorter than a BGP header", len(msg))
	}
	for _, b := range msg[:16] {
		if b != 0xff {
			return nil, errors.New("decode UPDATE: marker is not all ones (RFC 4271 §4.1)")
		}
	}
	m, err := bgp.ParseBGPMessage(msg)
	if err != nil {
		return nil, fmt.Errorf("decode UPDATE: %w", err)
	}
	u, ok := m.Body.(*bgp.BGPUpdate)
	if !ok {
		return nil, fmt.Errorf("decode UPDATE: message type %d is not an UPDATE", m.Header.Type)
	}
	var errs []error
	for _, a := range u.PathAttributes {
		switch v := a.(type) {
		case *bgp.PathAttributeMpReachNLRI:
			if v.AFI != bgp.AFI_L2VPN || v.SAFI != bgp.SAFI_EVPN {
				continue
			}
			for _, n := range v.Value {
				r, err := FromNative(n.NLRI, u.PathAttributes)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				ups = append(ups, Update{Route: r})
			}
		case *bgp.PathAttributeMpUnreachNLRI:
			if v.AFI != bgp.AFI_L2VPN || v.SAFI != bgp.SAFI_EVPN {
				continue
			}
			for _, n := range v.Value {
				r, err := FromNative(n.NLRI, nil)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				ups = append(ups, Update{Route: r, Withdraw: true})
			}
		}
	}
	return ups, errors.Join(errs...)
}
