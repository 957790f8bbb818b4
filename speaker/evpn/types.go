package evpn

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// MAC is an Ethernet address. It is a comparable array so that it can key
// maps directly.
type MAC [6]byte

// ParseMAC parses the colon-separated form "02:00:00:00:00:01".
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return MAC{}, fmt.Errorf("invalid MAC address %q: want six colon-separated hex octets such as 02:00:00:00:00:01", s)
	}
	var m MAC
	copy(m[:], hw)
	return m, nil
}

// MACFrom converts a net.HardwareAddr; ok is false unless it has 6 octets.
func MACFrom(hw net.HardwareAddr) (MAC, bool) {
	var m MAC
	if len(hw) != 6 {
		return m, false
	}
	copy(m[:], hw)
	return m, true
}

func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// HardwareAddr returns a fresh net.HardwareAddr holding m.
func (m MAC) HardwareAddr() net.HardwareAddr { return append(net.HardwareAddr(nil), m[:]...) }

// IsZero reports whether m is 00:00:00:00:00:00, the flood-list MAC.
func (m MAC) IsZero() bool { return m == MAC{} }

// IsUnicast reports whether m is a unicast address (I/G bit clear) and not zero.
func (m MAC) IsUnicast() bool { return m[0]&1 == 0 && !m.IsZero() }

// RDType is the route distinguisher's type field (RFC 4364 §4.2).
type RDType uint16

const (
	RDTypeAS2  RDType = 0 // 2-octet ASN : 4-octet number
	RDTypeIPv4 RDType = 1 // IPv4 address : 2-octet number
	RDTypeAS4  RDType = 2 // 4-octet ASN : 2-octet number
)

// RD is a route distinguisher. Admin holds the ASN or the IPv4 address as a
// big-endian uint32; Number the assigned number.
type RD struct {
	Type   RDType
	Admin  uint32
	Number uint32
}

// RDFromIP builds a type-1 RD "ip:n", the form evpnd and FRR auto-derive.
func RDFromIP(ip netip.Addr, n uint16) RD {
	a := ip.As4()
	return RD{Type: RDTypeIPv4, Admin: binary.BigEndian.Uint32(a[:]), Number: uint32(n)}
}

func (rd RD) String() string {
	switch rd.Type {
	case RDTypeIPv4:
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], rd.Admin)
		return fmt.Sprintf("%s:%d", netip.AddrFrom4(a), rd.Number)
	default:
		return fmt.Sprintf("%d:%d", rd.Admin, rd.Number)
	}
}

// ParseRD parses "A.B.C.D:N" (type 1), "ASN:N" with ASN < 65536 (type 0) or
// "ASN:N" with a 4-octet ASN (type 2).
func ParseRD(s string) (RD, error) {
	admin, num, ok := strings.Cut(s, ":")
	if !ok {
		return RD{}, fmt.Errorf("invalid RD %q: want ASN:N or A.B.C.D:N", s)
	}
	if ip, err := netip.ParseAddr(admin); err == nil {
		if !ip.Is4() {
			return RD{}, fmt.Errorf("invalid RD %q: the address part must be IPv4", s)
		}
		n, err := strconv.ParseUint(num, 10, 16)
		if err != nil {
			return RD{}, fmt.Errorf("invalid RD %q: the number after an IPv4 address must be 0-65535", s)
		}
		return RDFromIP(ip, uint16(n)), nil
	}
	as, err := strconv.ParseUint(admin, 10, 32)
	if err != nil {
		return RD{}, fmt.Errorf("invalid RD %q: want ASN:N or A.B.C.D:N", s)
	}
	if as < 1<<16 {
		n, err := strconv.ParseUint(num, 10, 32)
		if err != nil {
			return RD{}, fmt.Errorf("invalid RD %q: the number after a 2-octet ASN must be 0-4294967295", s)
		}
		return RD{Type: RDTypeAS2, Admin: uint32(as), Number: uint32(n)}, nil
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil {
		return RD{}, fmt.Errorf("invalid RD %q: the number after a 4-octet ASN must be 0-65535", s)
	}
	return RD{Type: RDTypeAS4, Admin: uint32(as), Number: uint32(n)}, nil
}

// RT is a route target extended community in its 2-octet-AS form
// (type 0x00 subtype 0x02, RFC 4360), IPv4 form (type 0x01 subtype 0x02)
// or 4-octet-AS form (type 0x02 subtype 0x02, RFC 5668). At most one of
// IPv4 and AS4 is set.
type RT struct {
	IPv4  bool   // admin is an IPv4 address (value then 16 bits)
	Admin uint32 // ASN, or IPv4 address big-endian
	Value uint32
	AS4   bool // admin is a 4-octet ASN (value then 16 bits)
}

// AutoRT is the RT FRR and evpnd derive for a VNI: ASN:VNI in 2-octet-AS form.
// A 4-octet ASN is truncated to its low 16 bits, as FRR does.
func AutoRT(asn uint32, vni uint32) RT { return RT{Admin: asn & 0xffff, Value: vni} }

// String formats rt as "A.B.C.D:N" or "ASN:N". A 4-octet-AS RT whose ASN
// is below 65536 has no plain form that parses back to it: it is written
// "ASN:N" like the 2-octet form, as FRR shows it.
func (rt RT) String() string {
	if rt.IPv4 {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], rt.Admin)
		return fmt.Sprintf("%s:%d", netip.AddrFrom4(a), rt.Value)
	}
	return fmt.Sprintf("%d:%d", rt.Admin, rt.Value)
}

// ParseRT parses "ASN:N" with an ASN of 0-65535 (2-octet-AS form, N
// 32-bit), "ASN:N" with a 4-octet ASN of 65536-4294967295, in plain or
// asdot ("X.Y", RFC 5396) notation (4-octet-AS form, N 16-bit), or
// "A.B.C.D:N" (IPv4 form, N 16-bit).
func ParseRT(s string) (RT, error) {
	admin, num, ok := strings.Cut(s, ":")
	if !ok {
		return RT{}, fmt.Errorf("invalid route target %q: want ASN:N or A.B.C.D:N", s)
	}
	if ip, err := netip.ParseAddr(admin); err == nil {
		if !ip.Is4() {
			return RT{}, fmt.Errorf("invalid route target %q: the address part must be IPv4", s)
		}
		n, err := strconv.ParseUint(num, 10, 16)
		if err != nil {
			return RT{}, fmt.Errorf("invalid route target %q: the number after an IPv4 address must be 0-65535", s)
		}
		a := ip.As4()
		return RT{IPv4: true, Admin: binary.BigEndian.Uint32(a[:]), Value: uint32(n)}, nil
	}
	as, err := parseASN(admin)
	if err != nil {
		return RT{}, fmt.Errorf("invalid route target %q: want ASN:N with an ASN of 0-4294967295 (or X.Y), or A.B.C.D:N", s)
	}
	if as < 1<<16 {
		n, err := strconv.ParseUint(num, 10, 32)
		if err != nil {
			return RT{}, fmt.Errorf("invalid route target %q: the number after a 2-octet ASN must be 0-4294967295", s)
		}
		return RT{Admin: as, Value: uint32(n)}, nil
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil {
		return RT{}, fmt.Errorf("invalid route target %q: the number after a 4-octet ASN must be 0-65535", s)
	}
	return RT{AS4: true, Admin: as, Value: uint32(n)}, nil
}

// parseASN parses an AS number in asplain ("4200000000") or asdot
// ("64086.59904") notation (RFC 5396).
func parseASN(s string) (uint32, error) {
	if hi, lo, ok := strings.Cut(s, "."); ok {
		h, err := strconv.ParseUint(hi, 10, 16)
		if err != nil {
			return 0, err
		}
		l, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return 0, err
		}
		return uint32(h)<<16 | uint32(l), nil
	}
	as, err := strconv.ParseUint(s, 10, 32)
	return uint32(as), err
}

// RouteType is the EVPN NLRI route type.
type RouteType uint8

const (
	RouteTypeMACIP         RouteType = 2 // MAC/IP advertisement
	RouteTypeIMET          RouteType = 3 // inclusive multicast Ethernet tag
	RouteTypeIPPrefix      RouteType = 5 // IP prefix (RFC 9136)
	TunnelTypeVXLAN        uint16    = 8 // encapsulation community value (RFC 8365 §5.1.3)
	PMSIIngressReplication uint8     = 6
)

// ESI is an Ethernet segment identifier; evpnd is single-homed, so it is
// always zero in what it sends, but it is decoded and kept.
type ESI [10]byte

// IsZero reports whether e is the zero ESI of a single-homed site.
func (e ESI) IsZero() bool { return e == ESI{} }

// String formats e as ten colon-separated hex octets, as FRR shows it.
func (e ESI) String() string {
	var b strings.Builder
	for i, o := range e {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02x", o)
	}
	return b.String()
}

// Key is the identity of an EVPN route: the fields of the NLRI that the
// RFCs make part of the route key. Labels are not part of it.
type Key struct {
	Type   RouteType
	RD     RD
	EthTag uint32
	MAC    MAC          // type-2
	IP     netip.Addr   // type-2 (optional), type-3 originator
	Prefix netip.Prefix // type-5
}

func (k Key) String() string {
	switch k.Type {
	case RouteTypeMACIP:
		ip := ""
		if k.IP.IsValid() {
			ip = k.IP.String()
		}
		return fmt.Sprintf("[2]:[%d]:[%s]:[%s] rd %s", k.EthTag, k.MAC, ip, k.RD)
	case RouteTypeIMET:
		return fmt.Sprintf("[3]:[%d]:[%s] rd %s", k.EthTag, k.IP, k.RD)
	case RouteTypeIPPrefix:
		return fmt.Sprintf("[5]:[%d]:[%s] rd %s", k.EthTag, k.Prefix, k.RD)
	}
	return fmt.Sprintf("[%d] rd %s", k.Type, k.RD)
}

// PMSI is the P-Multicast Service Interface tunnel attribute (RFC 6514 §5)
// as used by type-3 routes for ingress replication.
type PMSI struct {
	Type     uint8
	Flags    uint8
	Label    uint32 // the VNI, 24 bits (RFC 8365 §5.1.3)
	Endpoint netip.Addr
}

// Route is one EVPN route with the attributes evpnd uses.
type Route struct {
	Key
	ESI       ESI
	Labels    []uint32 // type-2: [L2VNI] or [L2VNI, L3VNI]; type-5: [L3VNI]
	GatewayIP netip.Addr
	NextHop   netip.Addr

	RTs        []RT
	Encap      uint16 // tunnel type from the encapsulation community; 0 if absent
	Mobility   bool   // a MAC mobility community is present
	Seq        uint32
	Sticky     bool
	RouterMAC  MAC
	HasRMAC    bool
	DefaultGW  bool
	PMSI       *PMSI
	Originator netip.Addr // BGP ORIGINATOR_ID when reflected
}

// VTEP returns the tunnel endpoint this route points at: the PMSI endpoint
// or originating router for type-3, the next hop otherwise (DESIGN §3.3).
func (r *Route) VTEP() netip.Addr {
	if r.Type == RouteTypeIMET {
		if r.PMSI != nil && r.PMSI.Endpoint.IsValid() && !r.PMSI.Endpoint.IsUnspecified() {
			return r.PMSI.Endpoint
		}
		return r.IP
	}
	return r.NextHop
}

// L2VNI returns the first label: the L2VNI for type-2, the PMSI label for
// type-3, the L3VNI for type-5.
func (r *Route) L2VNI() uint32 {
	if r.Type == RouteTypeIMET && r.PMSI != nil {
		return r.PMSI.Label
	}
	if len(r.Labels) > 0 {
		return r.Labels[0]
	}
	return 0
}
