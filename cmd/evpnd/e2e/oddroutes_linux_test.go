package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/bgptest"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// Addresses of TestOddRoutesFromPeer, all on lo of one namespace.
const (
	oddLeafAddr  = "10.0.0.1"   // evpnd: router ID, VTEP, BGP source (testdata/odd/leaf.yaml)
	oddPeerAddr  = "10.0.0.254" // the raw BGP speaker in the test process
	oddBystander = "10.0.0.253" // a second raw speaker, with one valid route, that must be left alone
	bystanderMAC = "02:00:00:00:ee:01"
	oddVTEP      = "10.0.0.2" // the remote VTEP the raw speaker's routes name
	oddConfig    = "testdata/odd/leaf.yaml"
)

// TestOddRoutesFromPeer: a real evpnd leaf (VNI 100, auto RT 65000:100)
// peers with a raw BGP speaker of the test process, which sends it routes
// no sane leaf would: multicast and zero MACs, next hops evpnd cannot
// tunnel to (loopback, unspecified, multicast, broadcast, IPv6, its own
// VTEP), no or foreign route targets, a non-VXLAN encapsulation, route
// types 1, 4 and 5, a 3-label type-2, a 32-bit MAC. Between them come
// valid routes and, last, a valid marker route.
//
//   - odd_routes: every such UPDATE is well-formed BGP. Once the marker is
//     in the FDB, evpnd must still run under the same PID, the session
//     must still be up (no NOTIFICATION, TCP connection open, no second
//     connection), and vxlan100 must hold exactly the valid MACs and the
//     flood entry of 10.0.0.2.
//   - malformed_updates: UPDATEs GoBGP cannot parse. RFC 4271 §6.3 lets
//     the speaker reset the session for them; evpnd must survive each one
//     (same PID), log it, and either keep the session or re-establish it,
//     after which a new valid route is installed. Cases that crash evpnd
//     fail, and the next case starts a fresh evpnd.
func TestOddRoutesFromPeer(t *testing.T) {
	ns := oddLeafNS(t, "e2eodd", true)
	bin := evpndPath(t)
	peer := listenRawPeer(t, ns, oddPeerAddr)
	by := listenRawPeer(t, ns, oddBystander)
	leaf := startOddLeaf(t, ns, bin)
	// The bystander's session and route must outlive everything the other
	// peer sends (RFC 7606: only the sender's session may be reset).
	bs := by.next(t, leaf, convergeTimeout)
	std := [][]byte{bgptest.Encap(bgptest.TunnelVXLAN), bgptest.RT(65000, 100)}
	if err := bs.send(rawUpdate(rawMACRoute(48, bystanderMAC, nil, 100), oddVTEP, std, nil)); err != nil {
		t.Fatal(err)
	}
	waitEntry(t, ns, leaf, oddMACKeys(bystanderMAC)[0], nil)
	bystander := func(t *testing.T) {
		t.Helper()
		bs.checkUp(t)
		if n := by.count(); n != 1 {
			t.Errorf("evpnd opened %d sessions to the bystander, want 1", n)
		}
		got, err := oddFDB(t.Context(), ns)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range oddMACKeys(bystanderMAC) {
			if !got[k] {
				t.Errorf("the bystander's route is gone: %s", k)
			}
		}
	}

	t.Run("odd_routes", func(t *testing.T) { testOddRoutes(t, ns, peer, leaf); bystander(t) })
	t.Run("malformed_updates", func(t *testing.T) { testMalformedUpdates(t, ns, bin, peer, leaf, bystander) })
}

// oddCase is one route the raw speaker sends and what evpnd must make of
// it: the MAC it would install if it were wrongly accepted, or the one it
// must install when ok.
type oddCase struct {
	name  string
	msg   []byte
	mac   string // "" for routes without a MAC
	ok    bool   // valid: the MAC (or flood entry) must be installed
	reset bool   // malformed beyond delimiting: NOTIFICATION 3/10 and a new session
}

func testOddRoutes(t *testing.T, ns *netns.NS, peer *rawPeer, leaf *oddLeaf) {
	s := peer.next(t, leaf, convergeTimeout)
	rt100, rt999, et8 := bgptest.RT(65000, 100), bgptest.RT(65000, 999), bgptest.Encap(bgptest.TunnelVXLAN)
	std := [][]byte{et8, rt100}
	mac := func(m string, ls ...uint32) []byte { return rawMACRoute(48, m, nil, ls...) }
	imet := func(orig, endpoint string, ecs ...[]byte) []byte {
		return rawUpdate(rawIMET(orig), oddVTEP, ecs, rawPMSI(endpoint))
	}
	esi := bgptest.ArbitraryESI([9]byte{0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88})
	vtep := netip.MustParseAddr(oddVTEP)
	threeLabels := mac("02:00:00:00:aa:18", 100, 100, 100)
	mac32 := rawMACRoute(32, "02:00:00:00:aa:17", nil, 100)
	cases := []oddCase{
		{name: "valid type-2", mac: "02:00:00:00:aa:01", ok: true, msg: rawUpdate(mac("02:00:00:00:aa:01", 100), oddVTEP, std, nil)},
		{name: "valid type-3 for 10.0.0.2", ok: true, msg: imet(oddVTEP, oddVTEP, std...)},
		{name: "valid type-2 with RT 65001:100 (auto RT matches the VNI)", mac: "02:00:00:00:aa:03", ok: true,
			msg: rawUpdate(mac("02:00:00:00:aa:03", 100), oddVTEP, [][]byte{et8, bgptest.RT(65001, 100)}, nil)},
		{name: "multicast MAC", mac: "01:00:5e:00:00:01", msg: rawUpdate(mac("01:00:5e:00:00:01", 100), oddVTEP, std, nil)},
		{name: "broadcast MAC", mac: "ff:ff:ff:ff:ff:ff", msg: rawUpdate(mac("ff:ff:ff:ff:ff:ff", 100), oddVTEP, std, nil)},
		{name: "zero MAC", mac: zeroMAC, msg: rawUpdate(mac(zeroMAC, 100), oddVTEP, std, nil)},
		{name: "next hop 127.0.0.1", mac: "02:00:00:00:aa:10", msg: rawUpdate(mac("02:00:00:00:aa:10", 100), "127.0.0.1", std, nil)},
		{name: "next hop 0.0.0.0", mac: "02:00:00:00:aa:11", msg: rawUpdate(mac("02:00:00:00:aa:11", 100), "0.0.0.0", std, nil)},
		{name: "next hop 224.0.0.5", mac: "02:00:00:00:aa:12", msg: rawUpdate(mac("02:00:00:00:aa:12", 100), "224.0.0.5", std, nil)},
		{name: "next hop 255.255.255.255", mac: "02:00:00:00:aa:13", msg: rawUpdate(mac("02:00:00:00:aa:13", 100), "255.255.255.255", std, nil)},
		{name: "IPv6 next hop 2001:db8::2", mac: "02:00:00:00:aa:19", msg: rawUpdate(mac("02:00:00:00:aa:19", 100), "2001:db8::2", std, nil)},
		{name: "next hop = own VTEP 10.0.0.1", mac: "02:00:00:00:aa:1a", msg: rawUpdate(mac("02:00:00:00:aa:1a", 100), oddLeafAddr, std, nil)},
		{name: "no route target", mac: "02:00:00:00:aa:14", msg: rawUpdate(mac("02:00:00:00:aa:14", 100), oddVTEP, [][]byte{et8}, nil)},
		{name: "no extended community at all", mac: "02:00:00:00:aa:1b", msg: rawUpdate(mac("02:00:00:00:aa:1b", 100), oddVTEP, nil, nil)},
		{name: "RT of unknown VNI 65000:999", mac: "02:00:00:00:aa:15", msg: rawUpdate(mac("02:00:00:00:aa:15", 100), oddVTEP, [][]byte{et8, rt999}, nil)},
		{name: "encapsulation tunnel type 10 (MPLS)", mac: "02:00:00:00:aa:16",
			msg: rawUpdate(mac("02:00:00:00:aa:16", 100), oddVTEP, [][]byte{bgptest.Encap(10), rt100}, nil)},
		// GoBGP v4 accepts these two; evpnd rejects them as FRR does and
		// treats them as a withdrawal (RFC 7606 §2) of the valid route
		// for the same key sent just before, which must go.
		{name: "valid type-2 replaced by a MAC length of 32 bits", mac: "02:00:00:00:aa:17", msg: rawUpdate(mac("02:00:00:00:aa:17", 100), oddVTEP, std, nil)},
		{name: "MAC length 32 bits", mac: "02:00:00:00:aa:17", msg: rawUpdate(mac32, oddVTEP, std, nil)},
		{name: "valid type-2 replaced by one with 3 labels", mac: "02:00:00:00:aa:18", msg: rawUpdate(mac("02:00:00:00:aa:18", 100), oddVTEP, std, nil)},
		{name: "type-2 with 3 labels", mac: "02:00:00:00:aa:18", msg: rawUpdate(threeLabels, oddVTEP, std, nil)},
		{name: "type-1 Ethernet A-D", msg: rawUpdate(bgptest.ADRoute(vtep, 100, esi, 100), oddVTEP, std, nil)},
		{name: "type-4 Ethernet segment", msg: rawUpdate(bgptest.ESRoute(vtep, 100, esi, vtep), oddVTEP, std, nil)},
		{name: "type-5 IP prefix", msg: rawUpdate(bgptest.PrefixRoute(vtep, 100, netip.MustParsePrefix("192.168.50.0/24"), 100),
			oddVTEP, [][]byte{et8, rt100, bgptest.RT(65000, 5000)}, nil)},
		{name: "type-3 for 127.0.0.1", msg: imet("127.0.0.1", "127.0.0.1", std...)},
		{name: "type-3 for 10.0.0.5 with PMSI endpoint 224.0.0.5", msg: imet("10.0.0.5", "224.0.0.5", std...)},
		{name: "type-3 for 10.0.0.3 with RT 65000:999", msg: imet("10.0.0.3", "10.0.0.3", et8, rt999)},
		{name: "type-3 for 10.0.0.4 with MPLS encapsulation", msg: imet("10.0.0.4", "10.0.0.4", bgptest.Encap(10), rt100)},
		{name: "type-3 for own VTEP 10.0.0.1", msg: imet(oddLeafAddr, oddLeafAddr, std...)},
		{name: "valid MAC+IP with two labels", mac: "02:00:00:00:aa:02", ok: true,
			msg: rawUpdate(rawMACRoute(48, "02:00:00:00:aa:02", netip.MustParseAddr("192.168.100.2").AsSlice(), 100, 5000), oddVTEP,
				[][]byte{et8, rt100, bgptest.RT(65000, 5000), bgptest.RouterMAC("02:00:00:00:ee:02")}, nil)},
		{name: "marker", mac: "02:00:00:00:aa:ff", ok: true, msg: rawUpdate(mac("02:00:00:00:aa:ff", 100), oddVTEP, std, nil)},
	}
	start := time.Now()
	for _, c := range cases {
		if err := s.send(c.msg); err != nil {
			t.Fatalf("send %s: %v", c.name, err)
		}
	}
	took := waitEntry(t, ns, leaf, oddMACKeys(cases[len(cases)-1].mac)[0], nil)
	t.Logf("%d UPDATEs sent; marker installed after %v", len(cases), took.Round(time.Millisecond))

	leaf.check(t)
	want := map[string]bool{"vxlan100 " + zeroMAC + " dst " + oddVTEP + " self": true}
	for _, k := range oddMACKeys(bystanderMAC) {
		want[k] = true
	}
	byMAC := map[string]string{}
	for _, c := range cases {
		if c.mac != "" {
			byMAC[c.mac] = c.name
		}
		if c.ok && c.mac != "" {
			for _, k := range oddMACKeys(c.mac) {
				want[k] = true
			}
		}
	}
	got, err := oddFDB(t.Context(), ns)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if !got[k] {
			t.Errorf("valid route not installed: %s", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if !want[k] {
			f := strings.Fields(k)
			t.Errorf("installed from an odd route (%q): %s", byMAC[f[1]], k)
		}
	}
	checkAdvertises(t, ns, leaf, s, "02:00:00:00:dd:01")
	s.checkUp(t)
	if n := peer.count(); n != 1 {
		t.Errorf("evpnd opened %d BGP sessions, want 1: the session was reset", n)
	}
	// What evpnd said about the routes it did not use, for the record.
	for _, l := range strings.Split(leaf.log.String(), "\n") {
		if strings.Contains(l, "route not used") || strings.Contains(l, "skipping EVPN path") {
			t.Log(strings.TrimSpace(l))
		}
	}
	t.Logf("odd routes checked in %v", time.Since(start).Round(time.Millisecond))
}

// testMalformedUpdates sends each UPDATE GoBGP cannot parse, followed by a
// valid marker, and checks that evpnd survives and installs the marker,
// on the same session or on the one it re-establishes.
func testMalformedUpdates(t *testing.T, ns *netns.NS, bin string, peer *rawPeer, leaf *oddLeaf, bystander func(*testing.T)) {
	std := [][]byte{bgptest.Encap(bgptest.TunnelVXLAN), bgptest.RT(65000, 100)}
	good := rawMACRoute(48, "02:00:00:00:cc:01", nil, 100)
	type2 := func(n []byte) []byte { return rawUpdate(n, oddVTEP, std, nil) }
	truncate := bgptest.Truncate // keep l octets of the route, fix its length
	imet := rawIMET("10.0.0.6")
	// An RFC 9251 Selective Multicast Ethernet Tag route (type 6): valid
	// EVPN, but a route type GoBGP v3 does not know. RD, tag 0, no source,
	// group 239.1.1.1, originator 10.0.0.2, flags 0.
	smet := append([]byte{6, 24}, rawRD()...)
	smet = append(smet, 0, 0, 0, 0, 0, 32, 239, 1, 1, 1, 32, 10, 0, 0, 2, 0)
	nh := netip.MustParseAddr(oddVTEP).AsSlice()
	vtep := netip.MustParseAddr(oddVTEP)
	esi := bgptest.ArbitraryESI([9]byte{0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88})
	ad := bgptest.ADRoute(vtep, 100, esi, 100)
	es := bgptest.ESRoute(vtep, 100, esi, vtep)

	cases := []oddCase{
		{name: "type-2 IP length 24", mac: "02:00:00:00:cc:02", msg: type2(rawMACRoute(48, "02:00:00:00:cc:02", []byte{192, 168, 100}, 100))},
		{name: "EVPN NLRI length beyond the attribute", msg: type2(append([]byte{2, 60}, good[2:]...))},
		{name: "unknown EVPN route type 6 (RFC 9251 SMET)", msg: type2(smet)},
		{name: "extended communities of 7 octets", mac: "02:00:00:00:cc:03", msg: bgptest.IBGPUpdate(rawMACRoute(48, "02:00:00:00:cc:03", nil, 100), nh, bgptest.Attr(0xc0, 16, make([]byte, 7)))},
		{name: "MP_REACH next hop of 5 octets", mac: "02:00:00:00:cc:04", msg: bgptest.IBGPUpdate(rawMACRoute(48, "02:00:00:00:cc:04", nil, 100), []byte{10, 0, 0, 2, 9}, bgptest.ExtCommunities(std))},
		{name: "PMSI tunnel attribute of 3 octets", msg: rawUpdate(imet, "10.0.0.6", std, bgptest.Attr(0xc0, 22, []byte{0, 6, 0}))},
		// Truncated NLRIs, which GoBGP v3.37 indexed out of range (no
		// recover in its FSM goroutine): the NLRI cannot be delimited, so
		// the session is reset with NOTIFICATION 3/10 (RFC 7606 §5.3).
		{name: "type-3 NLRI of 12 octets (RD and tag only)", reset: true, msg: rawUpdate(truncate(imet, 12), oddVTEP, std, rawPMSI("10.0.0.6"))},
		{name: "type-2 NLRI of 24 octets (cut after the MAC length)", reset: true, msg: type2(truncate(good, 24))},
		{name: "type-2 NLRI of 5 octets (RD cut)", reset: true, msg: type2(truncate(good, 5))},
		{name: "type-3 NLRI of 6 octets (RD cut)", reset: true, msg: rawUpdate(truncate(imet, 6), oddVTEP, std, rawPMSI("10.0.0.6"))},
		{name: "type-1 NLRI of 20 octets", reset: true, msg: type2(truncate(ad, 20))},
		{name: "type-1 NLRI of 4 octets (RD cut)", reset: true, msg: type2(truncate(ad, 4))},
		{name: "type-4 NLRI of 12 octets", reset: true, msg: type2(truncate(es, 12))},
		{name: "type-4 NLRI of 7 octets (RD cut)", reset: true, msg: type2(truncate(es, 7))},
	}
	for i, c := range cases {
		t.Run(strings.NewReplacer(" ", "_", "(", "", ")", "").Replace(c.name), func(t *testing.T) {
			if leaf.exited() {
				// A previous case crashed it (its cleanup logs its
				// output); this one runs on its own evpnd, stopped
				// at the end of the case.
				t.Logf("evpnd pid %d had exited; starting a fresh one", leaf.pid)
				leaf = startOddLeaf(t, ns, bin)
			}
			s := peer.current(t, leaf, convergeTimeout)
			logFrom := len(leaf.log.String())
			marker := fmt.Sprintf("02:00:00:00:bb:%02x", i)
			mk := oddMACKeys(marker)[0]
			markerMsg := rawUpdate(rawMACRoute(48, marker, nil, 100), oddVTEP, std, nil)
			if err := s.send(c.msg); err != nil {
				t.Fatalf("send: %v", err)
			}
			_ = s.send(markerMsg) // fails when the reset was quick: then sent again below
			waitEntry(t, ns, leaf, mk, s.isClosed)
			if c.reset {
				eventually(t, changeTimeout, "the session reset", func() error {
					if !s.isClosed() {
						return errors.New("still up")
					}
					return nil
				})
				if code, sub, ok := s.notification(); !ok || code != 3 || sub != 10 {
					t.Errorf("session ended with %s, want NOTIFICATION 3/10 (UPDATE message error, invalid network field)", s.outcome())
				}
			}
			if s.isClosed() {
				logged := leaf.log.String()[logFrom:]
				t.Logf("session reset by evpnd: %s", s.outcome())
				if !strings.Contains(logged, "malformed") {
					t.Errorf("evpnd reset the session without logging \"malformed\"; its log since the case started:\n%s", tail(logged, 30))
				}
				s = peer.next(t, leaf, convergeTimeout)
				if err := s.send(markerMsg); err != nil {
					t.Fatalf("send marker on the new session: %v", err)
				}
				waitEntry(t, ns, leaf, mk, nil)
				t.Logf("session re-established and marker installed")
			} else {
				t.Logf("no session reset: the UPDATE was dropped and the marker after it installed")
				s.checkUp(t)
				// Dropped, but not silently: GoBGP warns as it reads it.
				eventually(t, changeTimeout, "a warning about the UPDATE in evpnd's log", func() error {
					for _, l := range strings.Split(leaf.log.String()[logFrom:], "\n") {
						if strings.Contains(l, "level=WARN") && strings.Contains(l, oddPeerAddr) {
							t.Logf("logged: %s", l)
							return nil
						}
					}
					return errors.New("none")
				})
			}
			checkAdvertises(t, ns, leaf, s, fmt.Sprintf("02:00:00:00:dd:%02x", 0x10+i))
			leaf.check(t)
			bystander(t)
			got, err := oddFDB(t.Context(), ns)
			if err != nil {
				t.Fatal(err)
			}
			for k := range got {
				if f := strings.Fields(k); c.mac != "" && f[1] == c.mac {
					t.Errorf("installed from the malformed UPDATE: %s", k)
				}
				if strings.Contains(k, " dst ") && !strings.Contains(k, " dst "+oddVTEP+" ") {
					t.Errorf("entry towards an unexpected VTEP: %s", k)
				}
			}
		})
	}
}

// waitEntry waits until the FDB holds key, or until stop (if not nil)
// returns true, failing the test as soon as evpnd has exited.
func waitEntry(t *testing.T, ns *netns.NS, leaf *oddLeaf, key string, stop func() bool) time.Duration {
	t.Helper()
	return eventually(t, changeTimeout, key+" in the FDB", func() error {
		leaf.check(t)
		if stop != nil && stop() {
			return nil
		}
		got, err := oddFDB(t.Context(), ns)
		if err != nil {
			return err
		}
		if !got[key] {
			return errors.New("not installed")
		}
		return nil
	})
}

// checkAdvertises makes evpnd learn mac on its access port (a static
// bridge entry) and waits until it advertises the MAC on session s with
// its own VTEP as next hop: the session still works both ways.
func checkAdvertises(t *testing.T, ns *netns.NS, leaf *oddLeaf, s *rawSession, mac string) {
	t.Helper()
	if _, err := ns.Exec(t.Context(), "bridge", "fdb", "add", mac, "dev", "eth1", "master", "static"); err != nil {
		t.Fatal(err)
	}
	eventually(t, changeTimeout, "evpnd advertises local "+mac+" to the peer", func() error {
		leaf.check(t)
		if s.isClosed() {
			t.Fatalf("session ended while waiting for %s: %s", mac, s.outcome())
		}
		if nh := s.advertised(mac); nh != oddLeafAddr {
			return fmt.Errorf("next hop %q", nh)
		}
		return nil
	})
}

// oddMACKeys are the two FDB entries evpnd installs for a remote MAC
// behind 10.0.0.2, keyed like fdbEntry.key.
func oddMACKeys(mac string) []string {
	return []string{
		"vxlan100 " + mac + " dst " + oddVTEP + " self extern_learn",
		"vxlan100 " + mac + " master br100 extern_learn",
	}
}

// oddFDB returns the FDB entries evpnd could own (as in observed): every
// extern_learn entry, and every entry on vxlan100 but its own permanent
// address in br100.
func oddFDB(ctx context.Context, ns *netns.NS) (map[string]bool, error) {
	out, err := ns.Exec(ctx, "bridge", "-j", "fdb", "show")
	if err != nil {
		return nil, err
	}
	es, err := parseFDB([]byte(out))
	if err != nil {
		return nil, err
	}
	got := map[string]bool{}
	for _, e := range es {
		own := e.Ifname == "vxlan100" && (e.Dst != "" || e.Master == "" || e.State != "permanent")
		if e.has("extern_learn") || own {
			got[e.key()] = true
		}
	}
	return got, nil
}

// BGP wire encoding, just what the raw speaker needs (RFC 4271 §4, RFC
// 4760 MP_REACH_NLRI, RFC 4360 extended communities, RFC 6514 PMSI).

// rawUpdate is bgptest.EVPNUpdate for a next hop written as text.
func rawUpdate(nlri []byte, nextHop string, ecs [][]byte, extra []byte) []byte {
	return bgptest.EVPNUpdate(nlri, netip.MustParseAddr(nextHop), ecs, extra)
}

// rawPMSI is a PMSI tunnel attribute: ingress replication, label VNI 100,
// endpoint ep.
func rawPMSI(ep string) []byte { return bgptest.PMSI(netip.MustParseAddr(ep), 100) }

// rawRD is the RD of the raw speaker's routes, 10.0.0.2:100.
func rawRD() []byte { return bgptest.RD(netip.MustParseAddr(oddVTEP), 100) }

// rawMACRoute is a type-2 NLRI with RD 10.0.0.2:100 (bgptest.MACRoute).
func rawMACRoute(macBits byte, mac string, ip []byte, labels ...uint32) []byte {
	return bgptest.MACRoute(rawRD(), macBits, mac, ip, labels...)
}

// rawIMET is a type-3 NLRI with RD 10.0.0.2:100 for originator orig.
func rawIMET(orig string) []byte { return bgptest.IMETRoute(rawRD(), netip.MustParseAddr(orig)) }

// oddLeaf is the evpnd process under test.
type oddLeaf struct {
	pid  int
	log  *lockedBuffer
	done chan struct{} // closed once the process has exited
	err  error         // its exit status, valid after done
}

// startOddLeaf runs evpnd in ns; t.Cleanup stops it by PID (SIGTERM,
// then SIGKILL) and, if the test failed, logs its output.
func startOddLeaf(t *testing.T, ns *netns.NS, bin string) *oddLeaf {
	t.Helper()
	// "ip netns exec" execs evpnd in place, so the PID is evpnd's.
	cmd := ns.Command(context.Background(), bin, "run", "--config", oddConfig, "--log-format", "text", "--api-socket", filepath.Join(t.TempDir(), "evpnd.sock"))
	l := &oddLeaf{log: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = l.log, l.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l.pid = cmd.Process.Pid
	go func() {
		l.err = cmd.Wait()
		close(l.done)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("evpnd (pid %d) output:\n%s", l.pid, l.log.String())
		}
		if l.exited() {
			return
		}
		_ = syscall.Kill(l.pid, syscall.SIGTERM)
		select {
		case <-l.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(l.pid, syscall.SIGKILL)
			<-l.done
		}
	})
	return l
}

func (l *oddLeaf) exited() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// check fails the test unless evpnd still runs under its PID.
func (l *oddLeaf) check(t *testing.T) {
	t.Helper()
	if l.exited() {
		t.Fatalf("evpnd (pid %d) exited: %v; its output ends with:\n%s", l.pid, l.err, tail(l.log.String(), 60))
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", l.pid))
	if err != nil || strings.TrimSpace(string(comm)) != "evpnd" {
		t.Fatalf("pid %d is no longer evpnd (%q, %v)", l.pid, comm, err)
	}
}

// rawPeer is the test's BGP speaker: it listens on 10.0.0.254:179 in the
// namespace and completes the OPEN exchange with every connection evpnd
// opens.
type rawPeer struct {
	ln       net.Listener
	id       netip.Addr       // its address, and its BGP identifier
	sessions chan *rawSession // established, in order

	mu       sync.Mutex
	accepted int
	all      []*rawSession
	last     *rawSession
}

func listenRawPeer(t *testing.T, ns *netns.NS, addr string) *rawPeer {
	t.Helper()
	var ln net.Listener
	err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(addr, "179"))
		return err
	})
	if err != nil {
		t.Fatalf("raw BGP speaker: %v", err)
	}
	p := &rawPeer{ln: ln, id: netip.MustParseAddr(addr), sessions: make(chan *rawSession, 64)}
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, s := range p.all {
			s.c.Close()
		}
	})
	return p
}

func (p *rawPeer) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed at the end of the test
		}
		p.mu.Lock()
		p.accepted++
		p.mu.Unlock()
		go func() {
			s, err := rawHandshake(c, p.id)
			if err != nil {
				c.Close()
				return
			}
			p.mu.Lock()
			p.all = append(p.all, s)
			p.mu.Unlock()
			p.sessions <- s
		}()
	}
}

// count is how many connections evpnd opened.
func (p *rawPeer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// next waits for the next established session.
func (p *rawPeer) next(t *testing.T, leaf *oddLeaf, timeout time.Duration) *rawSession {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case s := <-p.sessions:
			p.mu.Lock()
			p.last = s
			p.mu.Unlock()
			return s
		case <-deadline:
			t.Fatalf("no BGP session from evpnd within %v", timeout)
		case <-time.After(pollInterval):
			leaf.check(t)
		}
	}
}

// current is the last session if it is still up, else the next one.
func (p *rawPeer) current(t *testing.T, leaf *oddLeaf, timeout time.Duration) *rawSession {
	t.Helper()
	p.mu.Lock()
	s := p.last
	p.mu.Unlock()
	if s != nil && !s.isClosed() {
		return s
	}
	return p.next(t, leaf, timeout)
}

// rawSession is one established session. A reader records what evpnd
// sends until the connection ends; a KEEPALIVE goes out every 10 s.
type rawSession struct {
	c      net.Conn
	wmu    sync.Mutex
	closed chan struct{}

	mu    sync.Mutex
	macs  map[string]string // MACs evpnd advertises -> their next hop
	notif []byte            // the NOTIFICATION's body, if one came
	err   error             // why reading ended
}

// rawHandshake opens the session as AS 65000, identifier id, hold time
// 90 s, capabilities multiprotocol l2vpn-evpn and 4-octet AS.
func rawHandshake(c net.Conn, id netip.Addr) (*rawSession, error) {
	r, _, err := bgptest.Handshake(c, bgptest.Open(65000, id, 90), 10*time.Second)
	if err != nil {
		return nil, err
	}
	s := &rawSession{c: c, closed: make(chan struct{}), macs: map[string]string{}}
	go s.read(r)
	go s.keepalive()
	return s, nil
}

func (s *rawSession) read(r *bufio.Reader) {
	defer close(s.closed)
	for {
		typ, body, err := bgptest.Read(r)
		s.mu.Lock()
		switch {
		case err != nil:
			s.err = err
		case typ == bgptest.MsgNotification:
			s.notif = body
		case typ == bgptest.MsgUpdate:
			ups, _ := speaker.DecodeUpdate(bgptest.Message(typ, body))
			for _, u := range ups {
				if r := u.Route; r.Type == evpn.RouteTypeMACIP {
					if u.Withdraw {
						delete(s.macs, r.MAC.String())
					} else {
						s.macs[r.MAC.String()] = r.NextHop.String()
					}
				}
			}
		}
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (s *rawSession) keepalive() {
	tk := time.NewTicker(10 * time.Second)
	defer tk.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-tk.C:
			if s.send(bgptest.Keepalive()) != nil {
				return
			}
		}
	}
}

func (s *rawSession) send(msg []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := s.c.Write(msg)
	return err
}

func (s *rawSession) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// outcome describes how the session ended, or that it has not.
func (s *rawSession) outcome() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	if len(s.notif) >= 2 {
		fmt.Fprintf(&b, "NOTIFICATION code %d subcode %d data % x; ", s.notif[0], s.notif[1], s.notif[2:])
	} else if s.notif != nil {
		fmt.Fprintf(&b, "NOTIFICATION % x; ", s.notif)
	}
	if s.isClosed() {
		fmt.Fprintf(&b, "connection ended: %v", s.err)
	} else {
		b.WriteString("connection open")
	}
	return b.String()
}

// notification returns the code and subcode of the NOTIFICATION evpnd
// sent, ok false if none came.
func (s *rawSession) notification() (code, subcode byte, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.notif) < 2 {
		return 0, 0, false
	}
	return s.notif[0], s.notif[1], true
}

// advertised returns the next hop evpnd advertised mac with, "" if none.
func (s *rawSession) advertised(mac string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.macs[mac]
}

// checkUp fails the test unless the session is still established and
// evpnd sent no NOTIFICATION on it.
func (s *rawSession) checkUp(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	notif := s.notif
	s.mu.Unlock()
	if notif != nil || s.isClosed() {
		t.Errorf("BGP session reset by evpnd: %s", s.outcome())
	}
}
