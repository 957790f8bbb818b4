// Package bgptest builds and reads raw BGP messages for tests and
// benchmarks that play a BGP peer by hand: the OPEN/KEEPALIVE exchange,
// the framing, and l2vpn-evpn UPDATEs built octet by octet, including ones
// no sane speaker would send (truncated NLRIs, odd MAC lengths, extra
// labels). It is the one place outside speaker/ proper that knows BGP's
// wire format; it never imports evpnd's daemon.
package bgptest

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// Message types and sizes (RFC 4271 §4).
const (
	HeaderLen       = 19
	MaxMessage      = 4096
	MsgOpen         = 1
	MsgUpdate       = 2
	MsgNotification = 3
	MsgKeepalive    = 4
)

// Path attribute types and flags used here.
const (
	AttrOrigin      = 1
	AttrASPath      = 2
	AttrNextHop     = 3
	AttrLocalPref   = 5
	AttrOriginator  = 9
	AttrClusterList = 10
	AttrMPReach     = 14
	AttrMPUnreach   = 15
	AttrExtComm     = 16
	AttrPMSI        = 22

	FlagOptional   = 0x80
	FlagTransitive = 0x40
	FlagExtLen     = 0x10

	AFIL2VPN = 25
	SAFIEVPN = 70
)

// Message frames a BGP message body.
func Message(typ byte, body []byte) []byte {
	m := make([]byte, HeaderLen, HeaderLen+len(body))
	for i := range 16 {
		m[i] = 0xff
	}
	binary.BigEndian.PutUint16(m[16:], uint16(HeaderLen+len(body)))
	m[18] = typ
	return append(m, body...)
}

// Keepalive is a KEEPALIVE message.
func Keepalive() []byte { return Message(MsgKeepalive, nil) }

// Open is an OPEN for asn (AS_TRANS in the 2-octet field when it does not
// fit) with the capabilities multiprotocol l2vpn-evpn and 4-octet AS.
func Open(asn uint32, id netip.Addr, hold uint16) []byte {
	as2 := uint16(23456)
	if asn < 1<<16 {
		as2 = uint16(asn)
	}
	caps := []byte{
		1, 4, 0, AFIL2VPN, 0, SAFIEVPN, // multiprotocol (RFC 4760)
		65, 4, byte(asn >> 24), byte(asn >> 16), byte(asn >> 8), byte(asn), // 4-octet AS (RFC 6793)
	}
	b := []byte{4, byte(as2 >> 8), byte(as2), byte(hold >> 8), byte(hold)}
	a := id.As4()
	b = append(b, a[:]...)
	b = append(b, byte(2+len(caps)), 2, byte(len(caps))) // one capabilities parameter
	return Message(MsgOpen, append(b, caps...))
}

// Read reads one message: its type and body.
func Read(r io.Reader) (byte, []byte, error) {
	hdr := make([]byte, HeaderLen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return 0, nil, err
	}
	l := int(binary.BigEndian.Uint16(hdr[16:]))
	if l < HeaderLen || l > 65535 {
		return 0, nil, fmt.Errorf("bad BGP message length %d", l)
	}
	body := make([]byte, l-HeaderLen)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return hdr[18], body, nil
}

// Handshake sends open on c and completes the OPEN exchange: it answers
// the peer's OPEN with a KEEPALIVE and returns once the peer's KEEPALIVE
// confirmed ours, with a reader for what follows and the time that
// happened. A NOTIFICATION fails it. The whole exchange must end within
// timeout; c's deadline is cleared on success.
func Handshake(c net.Conn, open []byte, timeout time.Duration) (*bufio.Reader, time.Time, error) {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(open); err != nil {
		return nil, time.Time{}, err
	}
	r := bufio.NewReaderSize(c, 1<<16)
	gotOpen := false
	for {
		typ, body, err := Read(r)
		if err != nil {
			return nil, time.Time{}, err
		}
		switch typ {
		case MsgOpen:
			gotOpen = true
			if _, err := c.Write(Keepalive()); err != nil {
				return nil, time.Time{}, err
			}
		case MsgKeepalive:
			if gotOpen {
				_ = c.SetDeadline(time.Time{})
				return r, time.Now(), nil
			}
		case MsgNotification:
			return nil, time.Time{}, fmt.Errorf("NOTIFICATION % x", body)
		}
	}
}

// Attr encodes a path attribute, with a 2-octet length when flags ask for
// it (FlagExtLen) or the value needs it.
func Attr(flags, typ byte, val []byte) []byte {
	if len(val) > 255 || flags&FlagExtLen != 0 {
		b := []byte{flags | FlagExtLen, typ, 0, 0}
		binary.BigEndian.PutUint16(b[2:], uint16(len(val)))
		return append(b, val...)
	}
	return append([]byte{flags, typ, byte(len(val))}, val...)
}

// Update is an UPDATE without withdrawn routes or IPv4 NLRI, carrying the
// given whole attributes.
func Update(attrs ...[]byte) []byte {
	body := []byte{0, 0, 0, 0}
	for _, a := range attrs {
		body = append(body, a...)
	}
	binary.BigEndian.PutUint16(body[2:], uint16(len(body)-4))
	return Message(MsgUpdate, body)
}

// IBGPUpdate is an UPDATE with ORIGIN IGP, an empty AS_PATH and LOCAL_PREF
// 100 (iBGP), the given attributes, and last an MP_REACH_NLRI for
// l2vpn-evpn with next hop nh and the NLRI bytes as given.
func IBGPUpdate(nlri, nh []byte, attrs ...[]byte) []byte {
	all := [][]byte{
		Attr(FlagTransitive, AttrOrigin, []byte{0}),
		Attr(FlagTransitive, AttrASPath, nil),
		Attr(FlagTransitive, AttrLocalPref, []byte{0, 0, 0, 100}),
	}
	all = append(all, attrs...)
	return Update(append(all, MPReach(nh, nlri))...)
}

// MPReach is an MP_REACH_NLRI attribute for l2vpn-evpn with next hop nh
// and the NLRI bytes as given.
func MPReach(nh, nlri []byte) []byte {
	mp := append([]byte{0, AFIL2VPN, SAFIEVPN, byte(len(nh))}, nh...)
	mp = append(mp, 0)
	return Attr(FlagOptional|FlagExtLen, AttrMPReach, append(mp, nlri...))
}

// MPUnreach is an MP_UNREACH_NLRI attribute for l2vpn-evpn.
func MPUnreach(nlri []byte) []byte {
	return Attr(FlagOptional|FlagExtLen, AttrMPUnreach, append([]byte{0, AFIL2VPN, SAFIEVPN}, nlri...))
}

// EVPNUpdate is IBGPUpdate for a next hop address, the extended
// communities ecs and one more whole attribute (nil: none).
func EVPNUpdate(nlri []byte, nextHop netip.Addr, ecs [][]byte, extra []byte) []byte {
	return IBGPUpdate(nlri, nextHop.AsSlice(), ExtCommunities(ecs), extra)
}

// ExtCommunities is an EXTENDED_COMMUNITIES attribute; nil for none.
func ExtCommunities(ecs [][]byte) []byte {
	if len(ecs) == 0 {
		return nil
	}
	return Attr(FlagOptional|FlagTransitive, AttrExtComm, slices.Concat(ecs...))
}

// RT is a 2-octet-AS route target extended community.
func RT(asn uint16, v uint32) []byte {
	b := []byte{0x00, 0x02, byte(asn >> 8), byte(asn), 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[4:], v)
	return b
}

// Encap is the encapsulation extended community (RFC 9012 §4.1); 8 is
// VXLAN.
func Encap(tunnelType uint16) []byte {
	return []byte{0x03, 0x0c, 0, 0, 0, 0, byte(tunnelType >> 8), byte(tunnelType)}
}

// TunnelVXLAN is the VXLAN encapsulation's tunnel type.
const TunnelVXLAN = 8

// RouterMAC is the EVPN router's MAC extended community.
func RouterMAC(mac string) []byte {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		panic("bgptest: bad MAC " + mac)
	}
	return append([]byte{0x06, 0x03}, hw...)
}

// PMSI is a PMSI tunnel attribute: ingress replication, label in all 24
// bits (RFC 8365), endpoint ep.
func PMSI(ep netip.Addr, label uint32) []byte {
	return Attr(FlagOptional|FlagTransitive, AttrPMSI, append([]byte{0, 6, byte(label >> 16), byte(label >> 8), byte(label)}, ep.AsSlice()...))
}

// RD is a type-1 route distinguisher admin:n (8 octets).
func RD(admin netip.Addr, n uint16) []byte {
	a := admin.As4()
	return []byte{0, 1, a[0], a[1], a[2], a[3], byte(n >> 8), byte(n)}
}

// MACRoute is a type-2 NLRI: RD rd, ESI 0, tag 0, the MAC length field
// set to macBits (six MAC octets follow regardless), an optional IP and
// the labels as given, its length octet matching.
func MACRoute(rd []byte, macBits byte, mac string, ip []byte, labels ...uint32) []byte {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		panic("bgptest: bad MAC " + mac)
	}
	b := append(slices.Clone(rd), make([]byte, 10+4)...) // ESI, tag
	b = append(b, macBits)
	b = append(b, hw...)
	b = append(b, byte(len(ip)*8))
	b = append(b, ip...)
	for _, l := range labels {
		b = append(b, byte(l>>16), byte(l>>8), byte(l))
	}
	return append([]byte{2, byte(len(b))}, b...)
}

// IMETRoute is a type-3 NLRI: RD rd, tag 0, originator orig.
func IMETRoute(rd []byte, orig netip.Addr) []byte {
	b := append(slices.Clone(rd), 0, 0, 0, 0, byte(orig.BitLen()))
	b = append(b, orig.AsSlice()...)
	return append([]byte{3, byte(len(b))}, b...)
}

// Truncate keeps l octets of an EVPN NLRI's route data and sets its
// length octet to l.
func Truncate(nlri []byte, l int) []byte {
	return append([]byte{nlri[0], byte(l)}, nlri[2:2+l]...)
}

// Serialize is n's wire form; it panics if GoBGP cannot encode it (tests
// build n from constants).
func Serialize(n bgp.NLRI) []byte {
	b, err := n.Serialize()
	if err != nil {
		panic("bgptest: " + err.Error())
	}
	return b
}

// ADRoute is a type-1 (Ethernet auto-discovery) NLRI, which evpnd does
// not use.
func ADRoute(rdAdmin netip.Addr, rdNum uint16, esi bgp.EthernetSegmentIdentifier, label uint32) []byte {
	return Serialize(bgp.NewEVPNEthernetAutoDiscoveryRoute(mustRD(rdAdmin, rdNum), esi, 0, label))
}

// ESRoute is a type-4 (Ethernet segment) NLRI, which evpnd does not use.
func ESRoute(rdAdmin netip.Addr, rdNum uint16, esi bgp.EthernetSegmentIdentifier, orig netip.Addr) []byte {
	n, err := bgp.NewEVPNEthernetSegmentRoute(mustRD(rdAdmin, rdNum), esi, orig)
	if err != nil {
		panic("bgptest: " + err.Error())
	}
	return Serialize(n)
}

// PrefixRoute is a type-5 (IP prefix) NLRI with gateway 0 and ESI 0.
func PrefixRoute(rdAdmin netip.Addr, rdNum uint16, p netip.Prefix, label uint32) []byte {
	gw := netip.IPv4Unspecified()
	if p.Addr().Is6() {
		gw = netip.IPv6Unspecified()
	}
	n, err := bgp.NewEVPNIPPrefixRoute(mustRD(rdAdmin, rdNum), bgp.EthernetSegmentIdentifier{}, 0, uint8(p.Bits()), p.Addr(), gw, label)
	if err != nil {
		panic("bgptest: " + err.Error())
	}
	return Serialize(n)
}

func mustRD(admin netip.Addr, n uint16) bgp.RouteDistinguisherInterface {
	rd, err := bgp.NewRouteDistinguisherIPAddressAS(admin, n)
	if err != nil {
		panic("bgptest: " + err.Error())
	}
	return rd
}

// ArbitraryESI is an ESI of type 0 (arbitrary) with value v (9 octets).
func ArbitraryESI(v [9]byte) bgp.EthernetSegmentIdentifier {
	return bgp.EthernetSegmentIdentifier{Type: bgp.ESI_ARBITRARY, Value: v[:]}
}
