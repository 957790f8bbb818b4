package evpn

import (
	"net/netip"
	"testing"
)

func TestRDRTDerivation(t *testing.T) {
	rid := netip.MustParseAddr("10.0.0.1")
	if got := RDFromIP(rid, 2).String(); got != "10.0.0.1:2" {
		t.Errorf("RDFromIP = %s", got)
	}
	if got := AutoRT(65000, 100).String(); got != "65000:100" {
		t.Errorf("AutoRT = %s", got)
	}
	// A 4-octet ASN keeps its low 16 bits in the 2-octet-AS form, as FRR does.
	if got := AutoRT(4200000001, 100); got.Admin != 4200000001&0xffff || got.Value != 100 {
		t.Errorf("AutoRT 4-octet = %+v", got)
	}
	for _, tc := range []struct {
		in, want string
		typ      RDType
	}{
		{"10.0.0.1:100", "10.0.0.1:100", RDTypeIPv4},
		{"65000:100", "65000:100", RDTypeAS2},
		{"4200000001:7", "4200000001:7", RDTypeAS4},
	} {
		rd, err := ParseRD(tc.in)
		if err != nil || rd.String() != tc.want || rd.Type != tc.typ {
			t.Errorf("ParseRD(%q) = %v %v, want %s type %d", tc.in, rd, err, tc.want, tc.typ)
		}
	}
	for _, bad := range []string{"", "10.0.0.1", "10.0.0.1:70000", "x:1", "::1:5", "4200000001:70000"} {
		if _, err := ParseRD(bad); err == nil {
			t.Errorf("ParseRD(%q) accepted", bad)
		}
	}
	for _, tc := range []struct{ in, want string }{{"65000:100", "65000:100"}, {"10.0.0.1:5", "10.0.0.1:5"}} {
		rt, err := ParseRT(tc.in)
		if err != nil || rt.String() != tc.want {
			t.Errorf("ParseRT(%q) = %v %v", tc.in, rt, err)
		}
	}
	for _, bad := range []string{"70000:70000", "4294967296:1", "a:b", "100", "10.0.0.1:70000", "1.65536:1", "2001:db8::1:1"} {
		if _, err := ParseRT(bad); err == nil {
			t.Errorf("ParseRT(%q) accepted", bad)
		}
	}
	// 4-octet-AS route targets (RFC 5668 type 0x02): an ASN above 65535
	// selects the form; the value then has 16 bits.
	for _, tc := range []struct {
		in, want string
		rt       RT
	}{
		{"70000:1", "70000:1", RT{AS4: true, Admin: 70000, Value: 1}},
		{"4200000000:65535", "4200000000:65535", RT{AS4: true, Admin: 4200000000, Value: 65535}},
		{"1.10:100", "65546:100", RT{AS4: true, Admin: 65546, Value: 100}}, // asdot
		{"65535:4294967295", "65535:4294967295", RT{Admin: 65535, Value: 4294967295}},
	} {
		rt, err := ParseRT(tc.in)
		if err != nil || rt != tc.rt || rt.String() != tc.want {
			t.Errorf("ParseRT(%q) = %+v %v, want %+v printed %s", tc.in, rt, err, tc.rt, tc.want)
		}
		if back, err := ParseRT(rt.String()); err != nil || back != rt {
			t.Errorf("ParseRT(%q.String()) = %+v %v, want %+v", tc.in, back, err, rt)
		}
	}
	// A 4-octet-AS RT imports only by an exact rule, never by an auto one.
	imp := NewImporter([]ImportRule{{VNI: 100, Auto: true}, {VNI: 200, RTs: []RT{{AS4: true, Admin: 4200000000, Value: 200}}}})
	if _, ok := imp.VNIFor(&Route{Key: Key{Type: RouteTypeMACIP}, Labels: []uint32{100}, RTs: []RT{{AS4: true, Admin: 70000, Value: 100}}}); ok {
		t.Error("a 4-octet-AS RT matched an auto rule")
	}
	if v, ok := imp.VNIFor(&Route{Key: Key{Type: RouteTypeMACIP}, Labels: []uint32{200}, RTs: []RT{{AS4: true, Admin: 4200000000, Value: 200}}}); !ok || v != 200 {
		t.Errorf("4-octet-AS RT: VNIFor = %d,%v, want 200", v, ok)
	}
	if _, ok := imp.VNIFor(&Route{Key: Key{Type: RouteTypeMACIP}, Labels: []uint32{200}, RTs: []RT{{Admin: 4200000000 & 0xffff, Value: 200}}}); ok {
		t.Error("a 2-octet-AS RT matched a 4-octet-AS rule")
	}
	r := LocalMACRoute(RDFromIP(rid, 100), 100, MAC{2, 0, 0, 0, 0, 1}, rid, []RT{AutoRT(65000, 100)}, 0, false)
	if !r.Mobility || r.Seq != 0 || r.L2VNI() != 100 || r.VTEP() != rid {
		t.Errorf("LocalMACRoute seq 0: %+v", r)
	}
	if r := LocalMACRoute(RDFromIP(rid, 100), 100, MAC{2}, rid, nil, 3, false); !r.Mobility || r.Seq != 3 {
		t.Errorf("LocalMACRoute seq 3 lacks mobility: %+v", r)
	}
	im := LocalIMETRoute(RDFromIP(rid, 100), 100, rid, nil)
	if im.VTEP() != rid || im.L2VNI() != 100 || im.PMSI.Type != PMSIIngressReplication {
		t.Errorf("LocalIMETRoute: %+v", im)
	}
}
