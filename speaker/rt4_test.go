package speaker

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"

	"github.com/evpnd/evpnd/speaker/bgptest"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// TestFourOctetASRouteTarget decodes a route target in 4-octet-AS form
// (RFC 5668: type 0x02, subtype 0x02, 4-octet ASN, 2-octet value) from an
// UPDATE built octet by octet, and round-trips one evpnd originates.
func TestFourOctetASRouteTarget(t *testing.T) {
	vtep := netip.MustParseAddr("10.0.0.2")
	rt4 := []byte{0x02, 0x02, 0xfa, 0x56, 0xea, 0x00, 0x00, 0x64} // 4200000000:100
	msg := bgptest.EVPNUpdate(bgptest.MACRoute(bgptest.RD(vtep, 100), 48, "02:00:00:00:44:01", nil, 100), vtep,
		[][]byte{bgptest.Encap(bgptest.TunnelVXLAN), rt4, bgptest.RT(65000, 100)}, nil)
	ups, err := DecodeUpdate(msg)
	if err != nil || len(ups) != 1 {
		t.Fatalf("DecodeUpdate = %+v, %v", ups, err)
	}
	want := []evpn.RT{{AS4: true, Admin: 4200000000, Value: 100}, {Admin: 65000, Value: 100}}
	if got := ups[0].Route.RTs; !slices.Equal(got, want) {
		t.Fatalf("RTs = %+v, want %+v", got, want)
	}
	// The model imports it by an exact rule.
	imp := evpn.NewImporter([]evpn.ImportRule{{VNI: 300, RTs: []evpn.RT{mustRT(t, "4200000000:100")}}})
	ups[0].Route.RTs = ups[0].Route.RTs[:1]
	if v, ok := imp.VNIFor(ups[0].Route); !ok || v != 300 {
		t.Errorf("VNIFor = %d,%v, want 300", v, ok)
	}

	// Encoded as it was decoded, and back.
	r := evpn.LocalMACRoute(evpn.RDFromIP(vtep, 100), 100, evpn.MAC{2, 0, 0, 0, 0x44, 2}, vtep, want, 0, false)
	out, err := EncodeUpdate(r, false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, rt4) {
		t.Errorf("encoded UPDATE lacks the 4-octet-AS RT % x:\n% x", rt4, out)
	}
	ups, err = DecodeUpdate(out)
	if err != nil || len(ups) != 1 || !slices.Equal(ups[0].Route.RTs, want) {
		t.Fatalf("round trip = %+v, %v", ups, err)
	}
	// A value that does not fit 16 bits is refused, not truncated.
	r.RTs = []evpn.RT{{AS4: true, Admin: 4200000000, Value: 70000}}
	if _, err := EncodeUpdate(r, false); err == nil {
		t.Error("a 4-octet-AS RT with a 17-bit value was encoded")
	}
}

func mustRT(t *testing.T, s string) evpn.RT {
	t.Helper()
	rt, err := evpn.ParseRT(s)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}
