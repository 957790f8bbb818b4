package evpn

import "net/netip"

// LocalMACRoute builds the type-2 MAC-only route evpnd originates for a MAC
// learned on an access port of vni (RFC 7432 §7.2, RFC 8365 §5.1.3): ESI 0,
// Ethernet tag 0, label = VNI in 24 bits, next hop = own VTEP, the export
// RTs, the VXLAN encapsulation community, and a MAC mobility community when
// the sequence is above zero or the MAC is sticky.
func LocalMACRoute(rd RD, vni uint32, mac MAC, vtep netip.Addr, rts []RT, seq uint32, sticky bool) *Route {
	return &Route{
		Key:     Key{Type: RouteTypeMACIP, RD: rd, MAC: mac},
		Labels:  []uint32{vni},
		NextHop: vtep,
		RTs:     rts,
		Encap:   TunnelTypeVXLAN,
		// Always carry the mobility community, seq 0 included: left out,
		// GoBGP picks a sequence of its own from its RIB (DESIGN §4b).
		Mobility: true,
		Seq:      seq,
		Sticky:   sticky,
	}
}

// LocalIMETRoute builds the type-3 route that puts this VTEP on vni's flood
// list: originator = VTEP, PMSI ingress replication with label = VNI and
// endpoint = VTEP (RFC 7432 §11, RFC 8365 §5.1.3).
func LocalIMETRoute(rd RD, vni uint32, vtep netip.Addr, rts []RT) *Route {
	return &Route{
		Key:     Key{Type: RouteTypeIMET, RD: rd, IP: vtep},
		NextHop: vtep,
		RTs:     rts,
		Encap:   TunnelTypeVXLAN,
		PMSI:    &PMSI{Type: PMSIIngressReplication, Label: vni, Endpoint: vtep},
	}
}

// LocalMACIPRoute builds the type-2 MAC+IP route evpnd originates for a
// host (mac, ip) learned on the SVI of l2vni in a VRF with L3VNI l3vni, for
// symmetric IRB (RFC 9135 §5.1, RFC 8365 §5.1.3): label1 = L2VNI, label2 =
// L3VNI, next hop = own VTEP, the RTs of both VNIs (rts: the L2VNI's
// export RTs, then the VRF's), the VXLAN encapsulation, the Router's MAC
// community with the VRF's router MAC, and the MAC mobility community with
// the MAC's own sequence number: RFC 7432 §15 has the MAC+IP route carry
// the sequence of the MAC it binds, so seq and sticky are the MAC-only
// route's. l3vni 0 gives an L2-only MAC+IP route (label1 only, no Router's
// MAC), for an L2VNI outside any VRF.
func LocalMACIPRoute(rd RD, l2vni, l3vni uint32, mac MAC, ip netip.Addr, vtep netip.Addr, rts []RT, rmac MAC, seq uint32, sticky bool) *Route {
	r := LocalMACRoute(rd, l2vni, mac, vtep, rts, seq, sticky)
	r.IP = ip.Unmap()
	if l3vni != 0 {
		r.Labels = append(r.Labels, l3vni)
		r.RouterMAC, r.HasRMAC = rmac, true
	}
	return r
}

// LocalGatewayRoute builds the type-2 MAC+IP route of an anycast gateway
// address (gwMAC, ip) on l2vni. It carries the Default Gateway community
// (RFC 7432 §7.8, 0x03/0x0d) so that no peer treats the gateway as an
// ordinary host that moves between leafs: every leaf has it. It has label1
// only and no mobility community (a gateway never moves, and every leaf's
// copy is equal).
func LocalGatewayRoute(rd RD, l2vni uint32, gwMAC MAC, ip netip.Addr, vtep netip.Addr, rts []RT) *Route {
	return &Route{
		Key:       Key{Type: RouteTypeMACIP, RD: rd, MAC: gwMAC, IP: ip.Unmap()},
		Labels:    []uint32{l2vni},
		NextHop:   vtep,
		RTs:       rts,
		Encap:     TunnelTypeVXLAN,
		DefaultGW: true,
	}
}

// LocalPrefixRoute builds the type-5 IP prefix route a VRF with L3VNI
// l3vni originates for prefix (RFC 9136 §3, interface-less model as FRR
// uses it): ESI 0, Ethernet tag 0, gateway IP 0 (no overlay index), label
// = L3VNI, next hop = own VTEP, the VRF's export RTs, the VXLAN
// encapsulation and the Router's MAC community, which is what makes the
// route usable over VXLAN (RFC 9136 §4.4.1). The prefix is stored masked.
func LocalPrefixRoute(rd RD, l3vni uint32, prefix netip.Prefix, vtep netip.Addr, rts []RT, rmac MAC) *Route {
	p := netip.PrefixFrom(prefix.Addr().Unmap(), prefix.Bits()).Masked()
	return &Route{
		Key:       Key{Type: RouteTypeIPPrefix, RD: rd, Prefix: p},
		Labels:    []uint32{l3vni},
		NextHop:   vtep,
		RTs:       rts,
		Encap:     TunnelTypeVXLAN,
		RouterMAC: rmac,
		HasRMAC:   true,
	}
}

// L3VNI returns the L3VNI a route carries: label2 of a type-2 MAC+IP
// route, the label of a type-5; 0 when it has none.
func (r *Route) L3VNI() uint32 {
	switch {
	case r.Type == RouteTypeMACIP && len(r.Labels) >= 2:
		return r.Labels[1]
	case r.Type == RouteTypeIPPrefix && len(r.Labels) >= 1:
		return r.Labels[0]
	}
	return 0
}
