package speaker

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// routeDiff lists the fields of got that differ from want, by name.
func routeDiff(want, got *evpn.Route) []string {
	var diffs []string
	var walk func(prefix string, w, g reflect.Value)
	walk = func(prefix string, w, g reflect.Value) {
		for i := 0; i < w.NumField(); i++ {
			f := w.Type().Field(i)
			wv, gv := w.Field(i), g.Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(prefix, wv, gv)
				continue
			}
			wi, gi := wv.Interface(), gv.Interface()
			if wl, ok := wi.([]uint32); ok && len(wl) == 0 {
				wi = []uint32(nil)
			}
			if gl, ok := gi.([]uint32); ok && len(gl) == 0 {
				gi = []uint32(nil)
			}
			if wl, ok := wi.([]evpn.RT); ok && len(wl) == 0 {
				wi = []evpn.RT(nil)
			}
			if gl, ok := gi.([]evpn.RT); ok && len(gl) == 0 {
				gi = []evpn.RT(nil)
			}
			if !reflect.DeepEqual(wi, gi) {
				diffs = append(diffs, fmt.Sprintf("%s%s: want %s, got %s", prefix, f.Name, show(wi), show(gi)))
			}
		}
	}
	walk("", reflect.ValueOf(*want), reflect.ValueOf(*got))
	return diffs
}

func show(v any) string {
	if p, ok := v.(*evpn.PMSI); ok && p != nil {
		return fmt.Sprintf("&%+v", *p)
	}
	return fmt.Sprintf("%v", v)
}

// TestDecodeFRRUpdates decodes every UPDATE FRR 8.4 sent in the lab and
// checks every field against the comment written by an independent script.
func TestDecodeFRRUpdates(t *testing.T) {
	for _, rec := range loadFRR(t) {
		t.Run(fmt.Sprintf("line%d", rec.line), func(t *testing.T) {
			exp, err := parseFRRComment(rec.comment)
			if err != nil {
				t.Fatalf("comment: %v", err)
			}
			want := exp.route
			// The comments do not spell out ORIGINATOR_ID; take it from the
			// raw attribute, found by a walker independent of GoBGP. In this
			// capture only the route reflector (10.1.1.0) adds it, set to
			// the originating leaf's router-id, which is its VTEP.
			if a, ok := findAttr(rawAttrs(t, rec.msg), attrOriginatorID); ok {
				want.Originator = netip.AddrFrom4([4]byte(a.value))
				if exp.from != netip.MustParseAddr("10.1.1.0") || want.Originator != want.NextHop {
					t.Fatalf("ORIGINATOR_ID %s on a message from %s, next hop %s: testdata not as described", want.Originator, exp.from, want.NextHop)
				}
			}

			ups, err := DecodeUpdate(rec.msg)
			if err != nil {
				t.Fatalf("DecodeUpdate: %v", err)
			}
			if len(ups) != 1 {
				t.Fatalf("got %d updates, want 1", len(ups))
			}
			if ups[0].Withdraw != exp.withdraw {
				t.Errorf("withdraw = %v, want %v", ups[0].Withdraw, exp.withdraw)
			}
			for _, d := range routeDiff(&want, ups[0].Route) {
				t.Error(d)
			}
			if t.Failed() {
				t.Logf("comment: %s", rec.comment)
			}
		})
	}
}

// TestEncodeMatchesFRR encodes, for every route a leaf originated in the
// capture, the same content as evpnd would, and compares the attributes
// byte for byte with FRR's. FRR's message also has AS_PATH and LOCAL_PREF,
// which GoBGP adds per iBGP session, and for type-5 a MED of 0 copied from
// the VRF's route, which evpnd does not set; every attribute evpnd builds
// must be identical in value.
func TestEncodeMatchesFRR(t *testing.T) {
	n := 0
	for _, rec := range loadFRR(t) {
		exp, err := parseFRRComment(rec.comment)
		if err != nil {
			t.Fatalf("line %d: %v", rec.line, err)
		}
		frrAttrs := rawAttrs(t, rec.msg)
		if exp.withdraw || exp.from != netip.MustParseAddr("10.1.1.1") {
			continue // reflected routes carry the RR's additions and order
		}
		n++
		t.Run(fmt.Sprintf("line%d", rec.line), func(t *testing.T) {
			r := exp.route
			got, err := EncodeUpdate(&r, false)
			if err != nil {
				t.Fatal(err)
			}
			ours := rawAttrs(t, got)
			for _, a := range ours {
				fa, ok := findAttr(frrAttrs, a.typ)
				if !ok {
					t.Errorf("attribute %d: FRR has none, evpnd sends % x", a.typ, a.value)
					continue
				}
				if !bytes.Equal(a.value, fa.value) {
					t.Errorf("attribute %d:\n evpnd % x\n   FRR % x", a.typ, a.value, fa.value)
				}
				if a.flags&^0x10 != fa.flags&^0x10 {
					t.Errorf("attribute %d: flags %#x, FRR %#x (extended-length bit aside)", a.typ, a.flags, fa.flags)
				}
			}
			for _, fa := range frrAttrs {
				if _, ok := findAttr(ours, fa.typ); !ok && fa.typ != attrASPath && fa.typ != attrLocalPref && fa.typ != attrMED {
					t.Errorf("FRR sends attribute %d (% x), evpnd does not", fa.typ, fa.value)
				}
			}
			// The NLRI and, for type-2, the label bytes explicitly: VNI 100
			// must be 00 00 64 (RFC 8365), not an MPLS-shifted label.
			mp, _ := findAttr(ours, attrMPReach)
			nhLen := int(mp.value[3])
			nlri := mp.value[4+nhLen+1:]
			fmp, _ := findAttr(frrAttrs, attrMPReach)
			if !bytes.Equal(nlri, fmp.value[4+int(fmp.value[3])+1:]) {
				t.Errorf("NLRI differs from FRR's:\n evpnd % x\n   FRR % x", nlri, fmp.value[4+int(fmp.value[3])+1:])
			}
			if r.Type == evpn.RouteTypeMACIP {
				ipLen := int(nlri[2+8+10+4+1+6]) / 8
				off := 2 + 8 + 10 + 4 + 1 + 6 + 1 + ipLen
				if got := nlri[off : off+3]; !bytes.Equal(got, []byte{0, 0, 0x64}) {
					t.Errorf("L2VNI label bytes % x, want 00 00 64", got)
				}
			}
		})
	}
	if n < 4 {
		t.Fatalf("only %d leaf-originated routes compared", n)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func mustMAC(s string) evpn.MAC {
	m, err := evpn.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// ownRoutes are routes as evpnd builds them.
func ownRoutes() map[string]*evpn.Route {
	rd := evpn.RDFromIP(mustAddr("10.0.0.1"), 2)
	rt := evpn.AutoRT(65000, 100)
	return map[string]*evpn.Route{
		"type2-mac": {
			Key:    evpn.Key{Type: evpn.RouteTypeMACIP, RD: rd, MAC: mustMAC("02:00:00:00:00:01")},
			Labels: []uint32{100}, NextHop: mustAddr("10.0.0.1"),
			RTs: []evpn.RT{rt}, Encap: evpn.TunnelTypeVXLAN,
		},
		"type2-mac-mobility-sticky": {
			Key:    evpn.Key{Type: evpn.RouteTypeMACIP, RD: rd, MAC: mustMAC("02:00:00:00:00:03")},
			Labels: []uint32{16777215}, NextHop: mustAddr("10.0.0.1"),
			RTs: []evpn.RT{rt, {IPv4: true, Admin: 0x0a000001, Value: 7}}, Encap: evpn.TunnelTypeVXLAN,
			Mobility: true, Seq: 5, Sticky: true,
		},
		"type2-mac-ip-irb": {
			Key:    evpn.Key{Type: evpn.RouteTypeMACIP, RD: rd, MAC: mustMAC("02:00:00:00:00:01"), IP: mustAddr("192.168.100.1")},
			Labels: []uint32{100, 4001}, NextHop: mustAddr("10.0.0.1"),
			RTs: []evpn.RT{rt, evpn.AutoRT(65000, 4001)}, Encap: evpn.TunnelTypeVXLAN,
			RouterMAC: mustMAC("32:42:95:bd:fd:8d"), HasRMAC: true,
		},
		"type2-mac-ipv6-gateway": {
			Key:    evpn.Key{Type: evpn.RouteTypeMACIP, RD: evpn.RD{Type: evpn.RDTypeAS4, Admin: 4200000001, Number: 9}, EthTag: 0, MAC: mustMAC("00:00:5e:00:01:01"), IP: mustAddr("2001:db8::1")},
			Labels: []uint32{100}, NextHop: mustAddr("10.0.0.1"),
			RTs: []evpn.RT{rt}, Encap: evpn.TunnelTypeVXLAN, DefaultGW: true, Mobility: true,
		},
		"type3": {
			Key:     evpn.Key{Type: evpn.RouteTypeIMET, RD: rd, IP: mustAddr("10.0.0.1")},
			NextHop: mustAddr("10.0.0.1"), RTs: []evpn.RT{rt}, Encap: evpn.TunnelTypeVXLAN,
			PMSI: &evpn.PMSI{Type: evpn.PMSIIngressReplication, Label: 100, Endpoint: mustAddr("10.0.0.1")},
		},
		"type5": {
			Key:    evpn.Key{Type: evpn.RouteTypeIPPrefix, RD: evpn.RDFromIP(mustAddr("10.0.0.1"), 1), Prefix: netip.MustParsePrefix("172.16.1.0/24")},
			Labels: []uint32{4001}, NextHop: mustAddr("10.0.0.1"),
			RTs: []evpn.RT{evpn.AutoRT(65000, 4001)}, Encap: evpn.TunnelTypeVXLAN,
			RouterMAC: mustMAC("32:42:95:bd:fd:8d"), HasRMAC: true,
		},
		"type5-ipv6-gw": {
			Key:    evpn.Key{Type: evpn.RouteTypeIPPrefix, RD: evpn.RD{Type: evpn.RDTypeAS2, Admin: 65000, Number: 70000}, EthTag: 5, Prefix: netip.MustParsePrefix("2001:db8:1::/48")},
			Labels: []uint32{4001}, NextHop: mustAddr("10.0.0.1"), GatewayIP: mustAddr("2001:db8::fe"),
			RTs: []evpn.RT{evpn.AutoRT(65000, 4001)}, Encap: evpn.TunnelTypeVXLAN,
		},
	}
}

func TestRoundTrip(t *testing.T) {
	for name, r := range ownRoutes() {
		t.Run(name, func(t *testing.T) {
			msg, err := EncodeUpdate(r, false)
			if err != nil {
				t.Fatal(err)
			}
			ups, err := DecodeUpdate(msg)
			if err != nil || len(ups) != 1 || ups[0].Withdraw {
				t.Fatalf("DecodeUpdate = %+v, %v", ups, err)
			}
			for _, d := range routeDiff(r, ups[0].Route) {
				t.Errorf("wire: %s", d)
			}

			p, err := ToPath(r, false)
			if err != nil {
				t.Fatal(err)
			}
			got, err := FromPath(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range routeDiff(r, got) {
				t.Errorf("native path: %s", d)
			}
			// As WatchEvent delivers paths, with the attributes GoBGP adds
			// on the way.
			nlri, attrs, err := ToNative(r)
			if err != nil {
				t.Fatal(err)
			}
			attrs = append(attrs, bgp.NewPathAttributeAsPath(nil), bgp.NewPathAttributeLocalPref(100),
				must(bgp.NewPathAttributeOriginatorId(mustAddr("10.0.0.7"))), must(bgp.NewPathAttributeClusterList([]netip.Addr{mustAddr("10.0.0.254")})))
			ap := &apiutil.Path{Family: bgp.RF_EVPN, Nlri: nlri, Attrs: attrs, Age: time.Now().Unix(), PeerAddress: mustAddr("10.0.0.254")}
			if got, err = FromPath(ap); err != nil {
				t.Fatal(err)
			}
			want := *r
			want.Originator = mustAddr("10.0.0.7")
			for _, d := range routeDiff(&want, got) {
				t.Errorf("api.Path, Any: %s", d)
			}
			// A withdrawal as the watch reports it keeps the attributes.
			ap.Withdrawal = true
			if got, err = FromPath(ap); err != nil {
				t.Fatal(err)
			}
			for _, d := range routeDiff(&want, got) {
				t.Errorf("api.Path withdrawal: %s", d)
			}

			msg, err = EncodeUpdate(r, true)
			if err != nil {
				t.Fatal(err)
			}
			ups, err = DecodeUpdate(msg)
			if err != nil || len(ups) != 1 || !ups[0].Withdraw {
				t.Fatalf("withdraw: DecodeUpdate = %+v, %v", ups, err)
			}
			if ups[0].Route.Key != r.Key {
				t.Errorf("withdraw key %s, want %s", ups[0].Route.Key, r.Key)
			}
		})
	}
}

func TestEncodeDefaultsAndErrors(t *testing.T) {
	r := *ownRoutes()["type2-mac"]
	r.Encap = 0
	ups, err := decodeOne(t, &r)
	if err != nil {
		t.Fatal(err)
	}
	if ups.Encap != evpn.TunnelTypeVXLAN {
		t.Errorf("encap %d, want VXLAN by default", ups.Encap)
	}
	// Seq > 0 alone must put a MAC mobility community on the wire.
	r = *ownRoutes()["type2-mac"]
	r.Seq = 3
	if got, err := decodeOne(t, &r); err != nil || !got.Mobility || got.Seq != 3 {
		t.Errorf("seq 3: got %+v, %v", got, err)
	}

	bad := map[string]func(r *evpn.Route){
		"label over 24 bits": func(r *evpn.Route) { r.Labels = []uint32{1 << 24} },
		"three labels":       func(r *evpn.Route) { r.Labels = []uint32{1, 2, 3} },
		"no label":           func(r *evpn.Route) { r.Labels = nil },
		"no next hop":        func(r *evpn.Route) { r.NextHop = netip.Addr{} },
		"type 1":             func(r *evpn.Route) { r.Type = 1 },
		"RD type 7":          func(r *evpn.Route) { r.RD.Type = 7 },
		"type-1 RD, big num": func(r *evpn.Route) { r.RD.Number = 70000 },
	}
	for name, mod := range bad {
		r := *ownRoutes()["type2-mac"]
		r.Labels = append([]uint32(nil), r.Labels...)
		mod(&r)
		if _, err := EncodeUpdate(&r, false); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	r3 := *ownRoutes()["type3"]
	r3.PMSI = nil
	if _, err := EncodeUpdate(&r3, false); err == nil {
		t.Error("type-3 without PMSI: no error")
	}
	r5 := *ownRoutes()["type5"]
	r5.GatewayIP = mustAddr("2001:db8::1")
	if _, err := EncodeUpdate(&r5, false); err == nil {
		t.Error("type-5 with an IPv6 gateway for an IPv4 prefix: no error")
	}
}

func decodeOne(t *testing.T, r *evpn.Route) (*evpn.Route, error) {
	t.Helper()
	msg, err := EncodeUpdate(r, false)
	if err != nil {
		return nil, err
	}
	ups, err := DecodeUpdate(msg)
	if err != nil {
		return nil, err
	}
	if len(ups) != 1 {
		return nil, fmt.Errorf("%d updates", len(ups))
	}
	return ups[0].Route, nil
}

// unsupportedUpdate builds an UPDATE whose MP_REACH carries the given
// NLRIs, as a peer might send.
func unsupportedUpdate(t testing.TB, nlris ...bgp.NLRI) []byte {
	t.Helper()
	attrs := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0),
		mpReach(t, "10.0.0.9", nlris...),
	}
	b, err := bgp.NewBGPUpdateMessage(nil, attrs, nil).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeUnsupportedAndMalformed(t *testing.T) {
	rd := must(bgp.NewRouteDistinguisherIPAddressAS(mustAddr("10.0.0.9"), 1))
	esi := bgp.EthernetSegmentIdentifier{Type: bgp.ESI_ARBITRARY, Value: make([]byte, 9)}
	ad := bgp.NewEVPNEthernetAutoDiscoveryRoute(rd, esi, 0, 100)
	es := must(bgp.NewEVPNEthernetSegmentRoute(rd, esi, mustAddr("10.0.0.9")))
	mac := must(bgp.NewEVPNMacIPAdvertisementRoute(rd, esi, 0, "02:00:00:00:00:09", netip.Addr{}, []uint32{100}))

	for name, n := range map[string]bgp.NLRI{"type1": ad, "type4": es} {
		ups, err := DecodeUpdate(unsupportedUpdate(t, n))
		if !errors.Is(err, ErrUnsupported) || len(ups) != 0 {
			t.Errorf("%s: got %v, %v; want ErrUnsupported and no update", name, ups, err)
		}
	}
	// A supported route next to an unsupported one is still delivered.
	ups, err := DecodeUpdate(unsupportedUpdate(t, ad, mac))
	if !errors.Is(err, ErrUnsupported) || len(ups) != 1 || ups[0].Route.MAC != mustMAC("02:00:00:00:00:09") {
		t.Errorf("mixed: got %v, %v", ups, err)
	}
	if _, err := FromNative(must(bgp.NewIPAddrPrefix(netip.MustParsePrefix("10.0.0.0/24"))), nil); err == nil {
		t.Error("IPv4 NLRI: no error")
	}

	good := loadFRR(t)[0].msg
	malformed := map[string][]byte{
		"empty":          nil,
		"header only":    good[:19],
		"truncated":      good[:len(good)-5],
		"bad marker":     append([]byte{0}, good[1:]...),
		"keepalive":      {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 19, 4},
		"short evpn rd":  shortEVPN(t, good),
		"huge ip length": withByte(good, len(good)-38, 0xff),
		// Found by fuzzing: a malformed VPLS NLRI (AFI 25 SAFI 65) makes
		// GoBGP v3.37's parser index out of range.
		"gobgp vpls panic": mustHex("ffffffffffffffffffffffffffffffff00800200000030900e0030001941203030303030303030303030303030303030303030303030303030303030303030300000" + strings.Repeat("30", 62)),
	}
	for name, msg := range malformed {
		ups, err := DecodeUpdate(msg)
		if err == nil {
			t.Errorf("%s: no error, got %v", name, ups)
		}
	}
}

// shortEVPN rewrites the first EVPN NLRI's length to 2, which leaves the
// route type data too short for its RD.
func shortEVPN(t *testing.T, msg []byte) []byte {
	out := append([]byte(nil), msg...)
	mp, ok := findAttr(rawAttrs(t, out), attrMPReach)
	if !ok {
		t.Fatal("no MP_REACH")
	}
	off := bytes.Index(out, mp.value) + 4 + int(mp.value[3]) + 1
	out[off+1] = 2
	return out
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func withByte(b []byte, i int, v byte) []byte {
	out := append([]byte(nil), b...)
	out[i] = v
	return out
}

// FuzzDecodeUpdate asserts that DecodeUpdate never panics, and that what it
// accepts re-encodes to the same keys.
func FuzzDecodeUpdate(f *testing.F) {
	for _, rec := range loadFRR(f) {
		f.Add(rec.msg)
	}
	for _, r := range ownRoutes() {
		for _, w := range []bool{false, true} {
			b, err := EncodeUpdate(r, w)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		ups, _ := DecodeUpdate(msg)
		for _, u := range ups {
			_ = u.Route.Key.String()
			if u.Withdraw || !u.Route.NextHop.IsValid() {
				continue
			}
			if u.Route.Type == evpn.RouteTypeIMET && u.Route.PMSI == nil {
				continue
			}
			b, err := EncodeUpdate(u.Route, false)
			if err != nil {
				continue // e.g. a PMSI type evpnd does not send
			}
			again, err := DecodeUpdate(b)
			if err != nil || len(again) != 1 || again[0].Route.Key != u.Route.Key {
				t.Fatalf("re-encoded %s decodes to %v, %v", u.Route.Key, again, err)
			}
		}
	})
}
