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
