package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestOddRouteKinds: a real evpnd leaf (VNI 100, auto RT 65000:100) gets
// from a raw BGP peer one route of each kind that RFC 8365 and FRR treat
// specially, then a valid marker route. For each, the kernel state and
// the WARN line naming its kind (issue 9.5) are checked:
//
//   - a type-2 with label 0: not installed;
//   - a type-2 with label 5100 (a downstream-assigned VNI): installed with
//     "vni 5100" on the VXLAN entry;
//   - a type-3 whose PMSI tunnel is PIM-SM, and a type-3 without PMSI: no
//     flood entry;
//   - a type-2 with an IPv6 next hop: not installed;
//   - a type-2 with a non-zero ESI (evpnd imports no Ethernet A-D route):
//     installed towards its next hop;
//   - a type-2 with MAC mobility sequence 0xFFFFFFFF: installed, and the
//     MAC flagged duplicate.
//
// The routes are built byte by byte here, without GoBGP.
func TestOddRouteKinds(t *testing.T) {
	ns := oddLeafNS(t, "e2eoddk", false)
	bin := evpndPath(t)
	peer := listenRawPeer(t, ns, oddPeerAddr)
	leaf := startOddLeaf(t, ns, bin)
	s := peer.next(t, leaf, convergeTimeout)

	std := [][]byte{kindEncapVXLAN(), kindRT(65000, 100)}
	var zeroESI [10]byte
	esi := [10]byte{0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99}
	mac := func(m string, esi [10]byte, label uint32) []byte { return kindMACRoute(m, esi, label) }
	type kindCase struct {
		name    string
		msg     []byte
		kind    string   // the kind= of its WARN line
		entries []string // `bridge fdb show dev vxlan100` lines it must add
		absent  []string // substrings no line may contain
	}
	cases := []kindCase{
		{name: "label 0", kind: "label-zero",
			msg:    rawUpdate(mac("02:00:00:00:bb:01", zeroESI, 0), oddVTEP, std, nil),
			absent: []string{"02:00:00:00:bb:01"}},
		{name: "downstream VNI 5100", kind: "downstream-vni",
			msg: rawUpdate(mac("02:00:00:00:bb:02", zeroESI, 5100), oddVTEP, std, nil),
			entries: []string{
				"02:00:00:00:bb:02 dst " + oddVTEP + " vni 5100 self extern_learn",
				"02:00:00:00:bb:02 extern_learn master br100",
			}},
		{name: "type-3 with a PIM-SM PMSI tunnel", kind: "pmsi-not-ingress-replication",
			msg:    rawUpdate(kindIMET("10.0.0.7"), oddVTEP, std, kindPMSI(3, 100, []byte{10, 0, 0, 7, 239, 1, 1, 1})),
			absent: []string{"dst 10.0.0.7"}},
		{name: "type-3 without PMSI", kind: "no-pmsi",
			msg:    rawUpdate(kindIMET("10.0.0.8"), oddVTEP, std, nil),
			absent: []string{"dst 10.0.0.8"}},
		{name: "IPv6 next hop", kind: "ipv6-next-hop",
			msg:    rawUpdate(mac("02:00:00:00:bb:05", zeroESI, 100), "2001:db8::2", std, nil),
			absent: []string{"02:00:00:00:bb:05"}},
		{name: "ESI without A-D route", kind: "esi-without-ad",
			msg:     rawUpdate(mac("02:00:00:00:bb:06", esi, 100), oddVTEP, std, nil),
			entries: []string{"02:00:00:00:bb:06 dst " + oddVTEP + " self extern_learn"}},
		{name: "sequence number at its maximum", kind: "seq-at-maximum",
			msg:     rawUpdate(mac("02:00:00:00:bb:07", zeroESI, 100), oddVTEP, append(slices.Clone(std), kindMobility(0xffffffff)), nil),
			entries: []string{"02:00:00:00:bb:07 dst " + oddVTEP + " self extern_learn"}},
	}
	marker := rawUpdate(mac("02:00:00:00:bb:ff", zeroESI, 100), oddVTEP, std, nil)
	for _, c := range cases {
		if err := s.send(c.msg); err != nil {
			t.Fatalf("send %s: %v", c.name, err)
		}
	}
	if err := s.send(marker); err != nil {
		t.Fatal(err)
	}
	took := waitEntry(t, ns, leaf, oddMACKeys("02:00:00:00:bb:ff")[0], nil)
	t.Logf("%d UPDATEs sent; marker installed after %v", len(cases)+1, took.Round(time.Millisecond))
	// The log lines come from the same batch as, or an earlier one than,
	// the marker's kernel write; wait for them all the same.
	eventually(t, changeTimeout, "a WARN line for every odd route", func() error {
		for _, c := range cases {
			if !hasOddLine(leaf.log.String(), c.kind) {
				return fmt.Errorf("%s: no WARN line with kind=%s", c.name, c.kind)
			}
		}
		return nil
	})
	leaf.check(t)
	out, err := ns.Exec(t.Context(), "bridge", "fdb", "show", "dev", "vxlan100")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	for _, c := range cases {
		for _, want := range c.entries {
			if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), want) }) {
				t.Errorf("%s: bridge fdb show dev vxlan100 lacks %q:\n%s", c.name, want, out)
			}
		}
		for _, bad := range c.absent {
			for _, l := range lines {
				if strings.Contains(l, bad) {
					t.Errorf("%s: installed: %s", c.name, strings.TrimSpace(l))
				}
			}
		}
	}
	if !strings.Contains(leaf.log.String(), "duplicate MAC detected") || !strings.Contains(leaf.log.String(), "02:00:00:00:bb:07") {
		t.Errorf("no duplicate alarm for the MAC at the maximum sequence number")
	}
	for _, l := range strings.Split(leaf.log.String(), "\n") {
		if strings.Contains(l, "odd route") {
			t.Log(strings.TrimSpace(l))
		}
	}
	s.checkUp(t)
}

// hasOddLine reports whether log has a WARN line about an odd route of kind.
func hasOddLine(log, kind string) bool {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "odd route") && strings.Contains(l, "kind="+kind+" ") {
			return true
		}
	}
	return false
}

// kindRD is RD 10.0.0.2:100 (type 1).
func kindRD() []byte { return []byte{0, 1, 10, 0, 0, 2, 0, 100} }

// kindMACRoute is a type-2 NLRI (RFC 7432 §7.2): RD 10.0.0.2:100, the ESI,
// tag 0, a 48-bit MAC, no IP, one label written raw (RFC 8365: the VNI in
// all 24 bits).
func kindMACRoute(mac string, esi [10]byte, label uint32) []byte {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		panic("kindMACRoute: bad MAC " + mac)
	}
	b := slices.Concat(kindRD(), esi[:], []byte{0, 0, 0, 0, 48}, hw, []byte{0, byte(label >> 16), byte(label >> 8), byte(label)})
	return append([]byte{2, byte(len(b))}, b...)
}

// kindIMET is a type-3 NLRI (RFC 7432 §7.3): RD 10.0.0.2:100, tag 0, the
// IPv4 originator.
func kindIMET(orig string) []byte {
	b := slices.Concat(kindRD(), []byte{0, 0, 0, 0, 32}, netip.MustParseAddr(orig).AsSlice())
	return append([]byte{3, byte(len(b))}, b...)
}

// kindPMSI is a PMSI tunnel attribute (RFC 6514 §5) of tunnel type typ:
// optional transitive, type 22.
func kindPMSI(typ byte, label uint32, id []byte) []byte {
	val := slices.Concat([]byte{0, typ, byte(label >> 16), byte(label >> 8), byte(label)}, id)
	return append([]byte{0xc0, 22, byte(len(val))}, val...)
}

// kindRT is a route target in 2-octet-AS form (RFC 4360).
func kindRT(asn uint16, v uint32) []byte {
	b := []byte{0x00, 0x02, byte(asn >> 8), byte(asn), 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[4:], v)
	return b
}

// kindEncapVXLAN is the encapsulation extended community, tunnel type 8.
func kindEncapVXLAN() []byte { return []byte{0x03, 0x0c, 0, 0, 0, 0, 0, 8} }

// kindMobility is the MAC mobility extended community (RFC 7432 §7.7).
func kindMobility(seq uint32) []byte {
	b := []byte{0x06, 0x00, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[4:], seq)
	return b
}
