package evpn

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

var (
	rmac2    = MAC{0x02, 0xaa, 0, 0, 0, 2}
	rmac3    = MAC{0x02, 0xaa, 0, 0, 0, 3}
	ownRM    = MAC{0x02, 0xaa, 0, 0, 0, 1}
	gwMAC    = MAC{0x00, 0x00, 0x5e, 0x00, 0x01, 0x01}
	mac2     = MAC{2, 0, 0, 0, 0, 2}
	macHost3 = MAC{2, 0, 0, 0, 0, 3}
	hostA    = netip.MustParseAddr("192.168.100.10")
	host6    = netip.MustParseAddr("2001:db8:100::10")
	gw4      = netip.MustParseAddr("192.168.100.254")
)

// l3opts is leaf1 (VTEP 10.0.0.1) with VRF "red": L3VNI 4001, member
// L2VNI 100 whose gateway is 192.168.100.254 and 2001:db8:100::fe; all
// RTs automatic.
func l3opts() L3Options {
	return L3Options{
		LocalVTEP: vtep1, RouterID: vtep1,
		VRFs: []L3VRF{{
			Name: "red", L3VNI: 4001, RD: RDFromIP(vtep1, 1), RouterMAC: ownRM,
			ExportRTs: []RT{rtAuto(4001)}, Import: ImportRule{Auto: true},
			Members: []L3Member{{
				L2VNI: 100, RD: RDFromIP(vtep1, 2), ExportRTs: []RT{rtAuto(100)}, Import: ImportRule{Auto: true},
				GatewayMAC: gwMAC, GatewayIPs: []netip.Addr{gw4, netip.MustParseAddr("2001:db8:100::fe")},
			}},
		}},
	}
}

// macIP is a remote symmetric-IRB MAC+IP route as FRR sends it.
func macIP(vtep netip.Addr, mac MAC, ip netip.Addr, seq uint32, rmac MAC) *Route {
	return &Route{
		Key:     Key{Type: RouteTypeMACIP, RD: RDFromIP(vtep, 2), MAC: mac, IP: ip},
		Labels:  []uint32{100, 4001},
		NextHop: vtep, RTs: []RT{rtAuto(100), rtAuto(4001)}, Encap: TunnelTypeVXLAN,
		Mobility: seq > 0, Seq: seq, RouterMAC: rmac, HasRMAC: true,
	}
}

func type5(vtep netip.Addr, rdn uint16, p string, rmac MAC) *Route {
	return &Route{
		Key:     Key{Type: RouteTypeIPPrefix, RD: RDFromIP(vtep, rdn), Prefix: netip.MustParsePrefix(p)},
		Labels:  []uint32{4001},
		NextHop: vtep, RTs: []RT{rtAuto(4001)}, Encap: TunnelTypeVXLAN,
		RouterMAC: rmac, HasRMAC: true,
	}
}

func fmtL3(e L3Effect) string {
	switch e.Kind {
	case L3SetNeigh, L3DelNeigh, L3ProbeNeigh:
		return fmt.Sprintf("%s %d %s %s", e.Kind, e.Neigh.L2VNI, e.Neigh.IP, e.Neigh.MAC)
	case L3SetHost, L3DelHost:
		return fmt.Sprintf("%s %s/%d %s via %s %s", e.Kind, e.Host.VRF, e.Host.L3VNI, e.Host.IP, e.Host.NextHop.VTEP, e.Host.NextHop.RouterMAC)
	case L3SetPrefix, L3DelPrefix:
		var nh []string
		for _, n := range e.Prefix.NextHops {
			nh = append(nh, n.VTEP.String()+" "+n.RouterMAC.String())
		}
		return fmt.Sprintf("%s %s/%d %s via [%s]", e.Kind, e.Prefix.VRF, e.Prefix.L3VNI, e.Prefix.Prefix, strings.Join(nh, ", "))
	case L3Advertise:
		r := e.Route
		return fmt.Sprintf("advertise %s labels=%v seq=%d sticky=%v", r.Key, r.Labels, r.Seq, r.Sticky)
	case L3Withdraw:
		return fmt.Sprintf("withdraw %s", e.Route.Key)
	case L3Rejected:
		return "rejected: " + e.Reason
	case L3GatewayConflict:
		g := e.Gateway
		return fmt.Sprintf("gateway-conflict %d %s %s (ours %s) from %s defgw=%v", g.L2VNI, g.IP, g.MAC, g.Local, g.VTEP, g.DefaultGW)
	}
	return e.Kind.String()
}

func expectL3(t *testing.T, what string, got []L3Effect, want ...string) {
	t.Helper()
	var g []string
	for _, e := range got {
		g = append(g, fmtL3(e))
	}
	if !slices.Equal(g, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, g, want)
	}
}

func TestL3InertWithoutVRFs(t *testing.T) {
	tab := NewL3Table(L3Options{LocalVTEP: vtep1})
	for _, r := range []*Route{macIP(vtep2, mac1, hostA, 0, rmac2), type5(vtep2, 1, "172.16.2.0/24", rmac2)} {
		for _, e := range tab.Update(r) {
			if e.Kind != L3Rejected {
				t.Errorf("no VRFs: %s", fmtL3(e))
			}
		}
	}
	if eff := tab.LocalHost(100, mac1, hostA, 0, false); eff != nil {
		t.Errorf("no VRFs: local host gives %v", eff)
	}
	if s := tab.Snapshot(); len(s.Neighs)+len(s.Hosts)+len(s.Prefixes)+len(s.RouterMACs) != 0 {
		t.Errorf("no VRFs: snapshot %+v", s)
	}
	// A MAC-only route is the MAC Table's, never the L3 table's.
	tab = NewL3Table(l3opts())
	if eff := tab.Update(remoteRoute(vtep2, 0, false, rtAuto(100))); eff != nil {
		t.Errorf("MAC-only route: %v", eff)
	}
}

func TestL3RemoteHost(t *testing.T) {
	tab := NewL3Table(l3opts())
	r := macIP(vtep2, mac1, hostA, 0, rmac2)
	expectL3(t, "remote MAC+IP", tab.Update(r),
		"set-neigh 100 192.168.100.10 02:00:00:00:00:01",
		"set-host red/4001 192.168.100.10 via 10.0.0.2 02:aa:00:00:00:02")
	expectL3(t, "same route again", tab.Update(r))
	r6 := macIP(vtep2, mac1, host6, 0, rmac2)
	expectL3(t, "IPv6", tab.Update(r6),
		"set-neigh 100 2001:db8:100::10 02:00:00:00:00:01",
		"set-host red/4001 2001:db8:100::10 via 10.0.0.2 02:aa:00:00:00:02")
	s := tab.Snapshot()
	if len(s.Neighs) != 2 || len(s.Hosts) != 2 || len(s.RouterMACs) != 1 ||
		s.RouterMACs[0] != (RouterMAC{VRF: "red", L3VNI: 4001, VTEP: vtep2, MAC: rmac2, Routes: 2}) {
		t.Errorf("snapshot %+v", s)
	}
	expectL3(t, "withdraw", tab.Withdraw(r.Key),
		"del-neigh 100 192.168.100.10 02:00:00:00:00:01",
		"del-host red/4001 192.168.100.10 via 10.0.0.2 02:aa:00:00:00:02")
	expectL3(t, "withdraw again", tab.Withdraw(r.Key))
	tab.Withdraw(r6.Key)
	if s := tab.Snapshot(); len(s.Neighs)+len(s.Hosts)+len(s.RouterMACs) != 0 {
		t.Errorf("after withdrawing everything: %+v", s)
	}
	if len(tab.neighs)+len(tab.hosts)+len(tab.rmacs)+len(tab.routes) != 0 {
		t.Errorf("state left: %d %d %d %d", len(tab.neighs), len(tab.hosts), len(tab.rmacs), len(tab.routes))
	}
	// Reflected own routes are ignored.
	own := macIP(vtep1, mac1, hostA, 0, ownRM)
	expectL3(t, "own route", tab.Update(own))
}

func TestL3ImportByRT(t *testing.T) {
	tab := NewL3Table(l3opts())
	// The L2VNI's RT alone: ARP suppression, no host route.
	r := macIP(vtep2, mac1, hostA, 0, rmac2)
	r.RTs = []RT{rtAuto(100)}
	expectL3(t, "L2 RT only", tab.Update(r),
		"set-neigh 100 192.168.100.10 02:00:00:00:00:01",
		"rejected: no route target matches a VRF: no host route")
	// The L3VNI's RT alone: a host route, no neighbour.
	r2 := macIP(vtep2, mac2, netip.MustParseAddr("192.168.100.11"), 0, rmac2)
	r2.RTs = []RT{rtAuto(4001)}
	expectL3(t, "L3 RT only", tab.Update(r2),
		"set-host red/4001 192.168.100.11 via 10.0.0.2 02:aa:00:00:00:02")
	// No L3VNI label or no router MAC (asymmetric IRB): suppression only.
	r3 := macIP(vtep2, mac2, netip.MustParseAddr("192.168.100.12"), 0, rmac2)
	r3.Labels, r3.HasRMAC = []uint32{100}, false
	expectL3(t, "no L3VNI", tab.Update(r3),
		"set-neigh 100 192.168.100.12 02:00:00:00:00:02",
		"rejected: no L3VNI label or no unicast Router's MAC (asymmetric IRB or L2 only): no host route")
	// Neither: another tenant's route.
	r4 := macIP(vtep2, mac2, netip.MustParseAddr("192.168.100.13"), 0, rmac2)
	r4.RTs = []RT{rtAuto(200), rtAuto(5001)}
	expectL3(t, "foreign", tab.Update(r4), "rejected: no route target matches a routed L2VNI or a VRF")
	// A route that changes its RTs loses what it no longer imports into.
	r5 := *r
	r5.RTs = []RT{rtAuto(200)}
	expectL3(t, "RT changed", tab.Update(&r5),
		"del-neigh 100 192.168.100.10 02:00:00:00:00:01",
		"rejected: no route target matches a routed L2VNI or a VRF")
}

func TestL3GatewayNeverAHost(t *testing.T) {
	tab := NewL3Table(l3opts())
	gw := macIP(vtep2, gwMAC, gw4, 0, rmac2)
	gw.DefaultGW = true
	expectL3(t, "default gateway route", tab.Update(gw), "rejected: IP 192.168.100.254 is an anycast gateway address of VNI 100")
	gw.DefaultGW = false
	expectL3(t, "gateway address", tab.Update(gw), "rejected: IP 192.168.100.254 is an anycast gateway address of VNI 100")
	expectL3(t, "local gateway address", tab.LocalHost(100, gwMAC, gw4, 0, false))
	expectL3(t, "local gateway MAC", tab.LocalHost(100, gwMAC, hostA, 0, false))
	if s := tab.Snapshot(); len(s.Neighs)+len(s.Hosts) != 0 {
		t.Errorf("snapshot %+v", s)
	}
}

// TestL3Mobility: a host that moves keeps one neighbour and one host route,
// replaced in place; the MAC+IP route carries its MAC's sequence.
func TestL3Mobility(t *testing.T) {
	tab := NewL3Table(l3opts())
	tab.Update(macIP(vtep2, mac1, hostA, 0, rmac2))
	expectL3(t, "moved to vtep3 with seq 1", tab.Update(macIP(vtep3, mac1, hostA, 1, rmac3)),
		"set-host red/4001 192.168.100.10 via 10.0.0.3 02:aa:00:00:00:03")
	expectL3(t, "old leaf withdraws late", tab.Withdraw(macIP(vtep2, mac1, hostA, 0, rmac2).Key))
	// Equal sequence numbers: the lower VTEP wins (RFC 7432 §15.1).
	expectL3(t, "vtep2 at seq 1 too", tab.Update(macIP(vtep2, mac1, hostA, 1, rmac2)),
		"set-host red/4001 192.168.100.10 via 10.0.0.2 02:aa:00:00:00:02")
	// The IP moves to another host (new MAC) with a higher sequence.
	expectL3(t, "IP to a new MAC", tab.Update(macIP(vtep3, mac2, hostA, 2, rmac3)),
		"set-neigh 100 192.168.100.10 02:00:00:00:00:02",
		"set-host red/4001 192.168.100.10 via 10.0.0.3 02:aa:00:00:00:03")
	// A sticky route is never moved away from.
	st := macIP(vtep2, mac1, hostA, 0, rmac2)
	st.Sticky = true
	expectL3(t, "sticky", tab.Update(st),
		"set-neigh 100 192.168.100.10 02:00:00:00:00:01",
		"set-host red/4001 192.168.100.10 via 10.0.0.2 02:aa:00:00:00:02")
}

func TestL3LocalHost(t *testing.T) {
	tab := NewL3Table(l3opts())
	expectL3(t, "learned", tab.LocalHost(100, mac1, hostA, 0, false),
		"advertise [2]:[0]:[02:00:00:00:00:01]:[192.168.100.10] rd 10.0.0.1:2 labels=[100 4001] seq=0 sticky=false")
	// The route is what LocalMACIPRoute builds: RTs of both, router MAC.
	eff := tab.LocalMACSeq(100, mac1, 3, false)
	expectL3(t, "MAC's seq now 3", eff,
		"advertise [2]:[0]:[02:00:00:00:00:01]:[192.168.100.10] rd 10.0.0.1:2 labels=[100 4001] seq=3 sticky=false")
	r := eff[0].Route
	if !slices.Equal(r.RTs, []RT{rtAuto(100), rtAuto(4001)}) || !r.HasRMAC || r.RouterMAC != ownRM || r.NextHop != vtep1 || !r.Mobility {
		t.Errorf("advertised %+v", r)
	}
	expectL3(t, "same seq again", tab.LocalMACSeq(100, mac1, 3, false))
	// A remote route that does not outbid the local host installs nothing.
	expectL3(t, "remote at seq 3", tab.Update(macIP(vtep2, mac1, hostA, 3, rmac2)))
	// One that does takes the IP: the local route is withdrawn.
	expectL3(t, "remote at seq 4", tab.Update(macIP(vtep3, mac1, hostA, 4, rmac3)),
		"withdraw [2]:[0]:[02:00:00:00:00:01]:[192.168.100.10] rd 10.0.0.1:2",
		"set-neigh 100 192.168.100.10 02:00:00:00:00:01",
		"set-host red/4001 192.168.100.10 via 10.0.0.3 02:aa:00:00:00:03")
	// The host comes back here; the MAC Table bids seq 5 for its MAC.
	expectL3(t, "back with seq 5", tab.LocalMACSeq(100, mac1, 5, false),
		"advertise [2]:[0]:[02:00:00:00:00:01]:[192.168.100.10] rd 10.0.0.1:2 labels=[100 4001] seq=5 sticky=false",
		"probe-neigh 100 192.168.100.10 02:00:00:00:00:01",
		"del-host red/4001 192.168.100.10 via 10.0.0.3 02:aa:00:00:00:03")
	// The local neighbour fails: withdrawn, and the remote routes return.
	expectL3(t, "gone", tab.LocalHostGone(100, hostA),
		"withdraw [2]:[0]:[02:00:00:00:00:01]:[192.168.100.10] rd 10.0.0.1:2",
		"set-neigh 100 192.168.100.10 02:00:00:00:00:01",
		"set-host red/4001 192.168.100.10 via 10.0.0.3 02:aa:00:00:00:03")
	expectL3(t, "gone again", tab.LocalHostGone(100, hostA))
	// A local IP that changes MAC withdraws the old binding's route.
	ip := netip.MustParseAddr("192.168.100.20")
	tab.LocalHost(100, mac1, ip, 0, false)
	expectL3(t, "new MAC", tab.LocalHost(100, mac2, ip, 0, false),
		"withdraw [2]:[0]:[02:00:00:00:00:01]:[192.168.100.20] rd 10.0.0.1:2",
		"advertise [2]:[0]:[02:00:00:00:00:02]:[192.168.100.20] rd 10.0.0.1:2 labels=[100 4001] seq=0 sticky=false")
	// An L2VNI outside every VRF is not routed here.
	expectL3(t, "unrouted VNI", tab.LocalHost(200, mac1, hostA, 0, false))

	// The MAC Table withdraws its local route for mac2 (the host moved
	// away, only its MAC-only route has arrived so far): the MAC+IP route
	// goes too, and comes back at the MAC's next local advertisement.
	expectL3(t, "MAC away", tab.LocalMACAway(100, mac2),
		"withdraw [2]:[0]:[02:00:00:00:00:02]:[192.168.100.20] rd 10.0.0.1:2")
	expectL3(t, "ARP refresh while away", tab.LocalHost(100, mac2, ip, 0, false))
	expectL3(t, "MAC back", tab.LocalMACSeq(100, mac2, 2, false),
		"advertise [2]:[0]:[02:00:00:00:00:02]:[192.168.100.20] rd 10.0.0.1:2 labels=[100 4001] seq=2 sticky=false")
	expectL3(t, "other VNI's MAC", tab.LocalMACAway(200, mac2))

	// A neighbour whose MAC is not local here (the MAC Table has not
	// learned it yet, or it left while the kernel keeps the neighbour):
	// nothing advertised, remote routes for the IP kept, until the MAC's
	// sequence comes.
	expectL3(t, "away host refreshed", tab.LocalHostAway(100, mac2, ip),
		"withdraw [2]:[0]:[02:00:00:00:00:02]:[192.168.100.20] rd 10.0.0.1:2")
	expectL3(t, "away again", tab.LocalHostAway(100, mac2, ip))
	ipB := netip.MustParseAddr("192.168.100.30")
	expectL3(t, "remote host", tab.Update(macIP(vtep2, macHost3, ipB, 4, rmac2)),
		"set-neigh 100 192.168.100.30 02:00:00:00:00:03",
		"set-host red/4001 192.168.100.30 via 10.0.0.2 02:aa:00:00:00:02")
	expectL3(t, "it arrives: ARP before the MAC", tab.LocalHostAway(100, macHost3, ipB))
	expectL3(t, "its MAC learned, bid 5", tab.LocalMACSeq(100, macHost3, 5, false),
		"advertise [2]:[0]:[02:00:00:00:00:03]:[192.168.100.30] rd 10.0.0.1:2 labels=[100 4001] seq=5 sticky=false",
		// The remote suppression neighbour is handed over to the kernel
		// and probed (it keeps forwarding to the host meanwhile).
		"probe-neigh 100 192.168.100.30 02:00:00:00:00:03",
		"del-host red/4001 192.168.100.30 via 10.0.0.2 02:aa:00:00:00:02")
	expectL3(t, "the gateway is never a host", tab.LocalHostAway(100, macHost3, netip.MustParseAddr("192.168.100.1")))
}

// TestL3InheritOnMove: a VM that had moved to another leaf comes back with
// its MAC and IP. When the MAC Table bids for its MAC here (LocalMACSeq),
// the remote MAC+IP binding of that MAC is inherited: the MAC+IP route is
// advertised at once with the MAC's sequence, the suppression neighbour is
// handed to the kernel to probe (not deleted) and the host route goes; the
// kernel's confirmation changes nothing, its failure withdraws the route.
func TestL3InheritOnMove(t *testing.T) {
	tab := NewL3Table(l3opts())
	ip2 := netip.MustParseAddr("192.168.100.11")
	tab.Update(macIP(vtep3, mac1, hostA, 1, rmac3))
	tab.Update(macIP(vtep3, mac1, host6, 1, rmac3))
	tab.Update(macIP(vtep3, mac2, ip2, 1, rmac3)) // another host
	expectL3(t, "MAC local at seq 2", tab.LocalMACSeq(100, mac1, 2, false),
		"advertise [2]:[0]:[02:00:00:00:00:01]:[192.168.100.10] rd 10.0.0.1:2 labels=[100 4001] seq=2 sticky=false",
		"probe-neigh 100 192.168.100.10 02:00:00:00:00:01",
		"del-host red/4001 192.168.100.10 via 10.0.0.3 02:aa:00:00:00:03",
		"advertise [2]:[0]:[02:00:00:00:00:01]:[2001:db8:100::10] rd 10.0.0.1:2 labels=[100 4001] seq=2 sticky=false",
		"probe-neigh 100 2001:db8:100::10 02:00:00:00:00:01",
		"del-host red/4001 2001:db8:100::10 via 10.0.0.3 02:aa:00:00:00:03")
	expectL3(t, "the probe answered", tab.LocalHost(100, mac1, hostA, 2, false))
	expectL3(t, "the old leaf withdraws", tab.Withdraw(macIP(vtep3, mac1, hostA, 1, rmac3).Key))
	// The IPv6 address does not answer: withdrawn, the remote one back.
	expectL3(t, "the probe failed", tab.LocalHostGone(100, host6),
		"withdraw [2]:[0]:[02:00:00:00:00:01]:[2001:db8:100::10] rd 10.0.0.1:2",
		"set-neigh 100 2001:db8:100::10 02:00:00:00:00:01",
		"set-host red/4001 2001:db8:100::10 via 10.0.0.3 02:aa:00:00:00:03")
	// A local bid that a remote route outbids inherits nothing.
	st := macIP(vtep2, mac2, ip2, 0, rmac2)
	st.Sticky = true
	tab.Update(st)
	expectL3(t, "outbid by a sticky remote", tab.LocalMACSeq(100, mac2, 9, false))
	if _, ok := tab.local[hostKey{100, ip2}]; ok {
		t.Errorf("outbid local MAC inherited %s", ip2)
	}
}

func TestL3Type5ECMP(t *testing.T) {
	tab := NewL3Table(l3opts())
	expectL3(t, "vtep3", tab.Update(type5(vtep3, 1, "0.0.0.0/0", rmac3)),
		"set-prefix red/4001 0.0.0.0/0 via [10.0.0.3 02:aa:00:00:00:03]")
	expectL3(t, "vtep2", tab.Update(type5(vtep2, 1, "0.0.0.0/0", rmac2)),
		"set-prefix red/4001 0.0.0.0/0 via [10.0.0.2 02:aa:00:00:00:02, 10.0.0.3 02:aa:00:00:00:03]")
	// The same VTEP under a second RD is the same next hop.
	expectL3(t, "vtep2 again, other RD", tab.Update(type5(vtep2, 7, "0.0.0.0/0", rmac2)))
	expectL3(t, "IPv6", tab.Update(type5(vtep2, 1, "::/0", rmac2)),
		"set-prefix red/4001 ::/0 via [10.0.0.2 02:aa:00:00:00:02]")
	expectL3(t, "vtep3 withdraws", tab.Withdraw(type5(vtep3, 1, "0.0.0.0/0", rmac3).Key),
		"set-prefix red/4001 0.0.0.0/0 via [10.0.0.2 02:aa:00:00:00:02]")
	expectL3(t, "vtep2 withdraws one RD", tab.Withdraw(type5(vtep2, 1, "0.0.0.0/0", rmac2).Key))
	expectL3(t, "vtep2 withdraws the other", tab.Withdraw(type5(vtep2, 7, "0.0.0.0/0", rmac2).Key),
		"del-prefix red/4001 0.0.0.0/0 via [10.0.0.2 02:aa:00:00:00:02]")

	bad := map[string]func(r *Route){
		"rejected: no route target matches a VRF":                                                func(r *Route) { r.RTs = []RT{rtAuto(5001)} },
		"rejected: type-5 without a unicast Router's MAC: unusable over VXLAN (RFC 9136 §4.4.1)": func(r *Route) { r.HasRMAC = false },
		"rejected: type-5 with label 0: no L3VNI":                                                func(r *Route) { r.Labels = []uint32{0} },
		"rejected: type-5 with gateway IP 10.9.9.9 as overlay index: not supported":              func(r *Route) { r.GatewayIP = netip.MustParseAddr("10.9.9.9") },
		"rejected: " + ReasonUnusableVTEP:                                                        func(r *Route) { r.NextHop = netip.MustParseAddr("127.0.0.1") },
	}
	for want, mod := range bad {
		r := type5(vtep2, 1, "10.9.0.0/16", rmac2)
		mod(r)
		expectL3(t, want, tab.Update(r), want)
	}
}

// TestL3RouterMACChange: a VTEP's new router MAC for the L3VNI re-points
// every host and prefix route through it; the router MAC goes with the
// last route.
func TestL3RouterMACChange(t *testing.T) {
	tab := NewL3Table(l3opts())
	tab.Update(macIP(vtep2, mac1, hostA, 0, rmac2))
	tab.Update(type5(vtep2, 1, "172.16.2.0/24", rmac2))
	newRM := MAC{0x02, 0xbb, 0, 0, 0, 2}
	expectL3(t, "new router MAC", tab.Update(type5(vtep2, 1, "172.16.2.0/24", newRM)),
		"set-prefix red/4001 172.16.2.0/24 via [10.0.0.2 02:bb:00:00:00:02]",
		"set-host red/4001 192.168.100.10 via 10.0.0.2 02:bb:00:00:00:02")
	s := tab.Snapshot()
	if len(s.RouterMACs) != 1 || s.RouterMACs[0].MAC != newRM || s.RouterMACs[0].Routes != 2 {
		t.Errorf("router MACs %+v", s.RouterMACs)
	}
	tab.Withdraw(macIP(vtep2, mac1, hostA, 0, rmac2).Key)
	tab.Withdraw(type5(vtep2, 1, "172.16.2.0/24", newRM).Key)
	if s := tab.Snapshot(); len(s.RouterMACs) != 0 || len(s.Prefixes) != 0 {
		t.Errorf("after the last route: %+v", s)
	}
}

// TestL3WithMACTable: a MAC-only and a MAC+IP route for one host coexist,
// as FRR sends them. The MAC Table selects the MAC over both; the L3
// table takes the MAC+IP route only. Withdrawing the MAC-only route
// leaves the MAC installed through the MAC+IP route.
func TestL3WithMACTable(t *testing.T) {
	mt := NewTable(Options{LocalVTEP: vtep1, RouterID: vtep1}, []ImportRule{{VNI: 100, Auto: true}})
	l3 := NewL3Table(l3opts())
	macOnly := remoteRoute(vtep2, 0, false, rtAuto(100))
	mip := macIP(vtep2, mac1, hostA, 0, rmac2)
	if macOnly.Key == mip.Key {
		t.Fatal("MAC-only and MAC+IP routes share a key")
	}
	var sets int
	for _, r := range []*Route{macOnly, mip} {
		for _, e := range mt.Update(r, t0) {
			if e.Kind == FIBSetMAC {
				sets++
			}
		}
		l3.Update(r)
	}
	if sets != 1 {
		t.Errorf("MAC installed %d times, want once", sets)
	}
	if info, ok := mt.Lookup(100, mac1); !ok || info.Routes != 2 {
		t.Errorf("MAC table holds %+v, want 2 routes", info)
	}
	for _, e := range mt.Withdraw(macOnly.Key, t0) {
		if e.Kind == FIBDelMAC {
			t.Errorf("MAC removed while its MAC+IP route remains")
		}
	}
	if s := l3.Snapshot(); len(s.Neighs) != 1 || len(s.Hosts) != 1 {
		t.Errorf("L3 snapshot %+v", s)
	}
	// The local side: the MAC Table's bid for a MAC learned here becomes
	// the sequence of its MAC+IP routes.
	mt2 := NewTable(Options{LocalVTEP: vtep1, RouterID: vtep1}, []ImportRule{{VNI: 100, Auto: true}})
	l3b := NewL3Table(l3opts())
	mt2.Update(remoteRoute(vtep2, 4, false, rtAuto(100)), t0)
	l3b.Update(macIP(vtep2, mac1, hostA, 4, rmac2))
	var seq uint32
	for _, e := range mt2.LocalAdd(100, mac1, false, t0) {
		if e.Kind == Advertise {
			seq = e.Seq
		}
	}
	expectL3(t, "local with the MAC's bid", l3b.LocalHost(100, mac1, hostA, seq, false),
		"advertise [2]:[0]:[02:00:00:00:00:01]:[192.168.100.10] rd 10.0.0.1:2 labels=[100 4001] seq=5 sticky=false",
		"probe-neigh 100 192.168.100.10 02:00:00:00:00:01",
		"del-host red/4001 192.168.100.10 via 10.0.0.2 02:aa:00:00:00:02")
}

func TestL3LocalPrefixRoutes(t *testing.T) {
	tab := NewL3Table(l3opts())
	rs := tab.LocalPrefixRoutes(4001, []netip.Prefix{netip.MustParsePrefix("192.168.100.7/24"), netip.MustParsePrefix("::/0")})
	if len(rs) != 2 || rs[0].Prefix != netip.MustParsePrefix("192.168.100.0/24") || rs[0].L3VNI() != 4001 ||
		rs[0].RD != RDFromIP(vtep1, 1) || !rs[0].HasRMAC || rs[0].RouterMAC != ownRM || rs[1].Prefix.Bits() != 0 {
		t.Errorf("local prefixes %+v", rs)
	}
	if tab.LocalPrefixRoutes(9999, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}) != nil {
		t.Error("unknown VRF gave routes")
	}
}

// Bindings per VRF: the same IP and MAC in another VRF's L2VNI is another
// binding; a local host outbid by a remote route is listed as the remote
// one, back with its MAC's new sequence, and inactive while its MAC is
// away (no remote route for its IP) or as the remote one (with one).
func TestL3BindingsTwoVRFs(t *testing.T) {
	opts := l3opts()
	blue := opts.VRFs[0]
	blue.Name, blue.L3VNI, blue.RD = "blue", 4002, RDFromIP(vtep1, 3)
	blue.ExportRTs = []RT{rtAuto(4002)}
	blue.Members = []L3Member{blue.Members[0]}
	blue.Members[0].L2VNI, blue.Members[0].RD, blue.Members[0].ExportRTs = 300, RDFromIP(vtep1, 4), []RT{rtAuto(300)}
	opts.VRFs = append(opts.VRFs, blue)
	tab := NewL3Table(opts)
	const (
		redA  = "100 192.168.100.10 02:00:00:00:00:01 "
		red6  = "100 2001:db8:100::10 02:00:00:00:00:01 "
		blueA = "300 192.168.100.10 02:00:00:00:00:01 local active seq=0 sticky=false"
	)
	check := func(what string, red []string, blue ...string) {
		t.Helper()
		expectBindings(t, what+" (red)", tab.Bindings(4001, 0), red...)
		expectBindings(t, what+" (blue)", tab.Bindings(4002, 0), blue...)
	}
	check("empty", nil)
	tab.LocalHost(300, mac1, hostA, 0, false)
	tab.LocalHost(100, mac1, hostA, 0, false)
	tab.LocalHost(100, mac1, host6, 0, false)
	check("learned", []string{redA + "local active seq=0 sticky=false", red6 + "local active seq=0 sticky=false"}, blueA)
	tab.Update(macIP(vtep3, mac1, hostA, 4, rmac3))
	check("outbid in VNI 100", []string{redA + "remote 10.0.0.3 active seq=4 sticky=false", red6 + "local active seq=0 sticky=false"}, blueA)
	tab.LocalMACSeq(100, mac1, 5, false)
	check("back with seq 5", []string{redA + "local active seq=5 sticky=false", red6 + "local active seq=5 sticky=false"}, blueA)
	tab.LocalMACAway(100, mac1)
	check("away in VNI 100", []string{redA + "remote 10.0.0.3 active seq=4 sticky=false", red6 + "local inactive seq=5 sticky=false"}, blueA)
	tab.LocalHostGone(300, hostA)
	check("gone in VNI 300", []string{redA + "remote 10.0.0.3 active seq=4 sticky=false", red6 + "local inactive seq=5 sticky=false"})
}

// TestL3GatewayConflict: another leaf's gateway with another MAC (an
// ordinary MAC+IP route for one of our gateway addresses, or a Default
// Gateway route) is reported and never installed; our own gateway MAC
// from another leaf, for any IP, is never installed either.
func TestL3GatewayConflict(t *testing.T) {
	tab := NewL3Table(l3opts())
	other := MAC{0x00, 0x00, 0x5e, 0x00, 0x01, 0x02}
	r := macIP(vtep2, other, gw4, 0, rmac2)
	expectL3(t, "gateway address, other MAC", tab.Update(r),
		"gateway-conflict 100 192.168.100.254 00:00:5e:00:01:02 (ours 00:00:5e:00:01:01) from 10.0.0.2 defgw=false",
		"rejected: IP 192.168.100.254 is an anycast gateway address of VNI 100")
	d := macIP(vtep2, other, netip.MustParseAddr("192.168.100.1"), 0, rmac2)
	d.Key.RD = RDFromIP(vtep2, 3)
	d.DefaultGW = true
	expectL3(t, "default gateway route, other IP and MAC", tab.Update(d),
		"gateway-conflict 100 192.168.100.1 00:00:5e:00:01:02 (ours 00:00:5e:00:01:01) from 10.0.0.2 defgw=true",
		"rejected: default gateway route: the anycast gateway is local on every leaf")
	same := macIP(vtep2, gwMAC, netip.MustParseAddr("192.168.100.1"), 0, rmac2)
	same.Key.RD = RDFromIP(vtep2, 4)
	same.DefaultGW = true
	expectL3(t, "default gateway route, our MAC", tab.Update(same),
		"rejected: MAC 00:00:5e:00:01:01 is the anycast gateway MAC of VNI 100")
	h := macIP(vtep2, gwMAC, hostA, 0, rmac2)
	expectL3(t, "host route with our gateway MAC", tab.Update(h),
		"rejected: MAC 00:00:5e:00:01:01 is the anycast gateway MAC of VNI 100")
	if s := tab.Snapshot(); len(s.Neighs)+len(s.Hosts) != 0 {
		t.Errorf("snapshot %+v, want nothing installed", s)
	}
	// An ordinary host is not a conflict.
	expectL3(t, "host", tab.Update(macIP(vtep2, mac2, hostA, 0, rmac2)),
		"set-neigh 100 192.168.100.10 02:00:00:00:00:02",
		"set-host red/4001 192.168.100.10 via 10.0.0.2 02:aa:00:00:00:02")
}

// Bindings' remote rows, the remote half of "show evpn arp-cache": the
// routes installed as suppression neighbours, each with the VTEP and MAC
// mobility sequence of the route it follows, following a host that moves
// away and back.
func TestL3RemoteBindings(t *testing.T) {
	tab := NewL3Table(l3opts())
	ip := netip.MustParseAddr("192.168.100.20")
	tab.LocalHost(100, mac1, hostA, 0, false)
	tab.Update(macIP(vtep2, mac2, ip, 0, rmac2))
	want := func(what string, bs ...Binding) {
		t.Helper()
		var got []Binding
		for _, b := range tab.Bindings(4001, 0) {
			if !b.Local {
				got = append(got, b)
			}
		}
		if !slices.Equal(got, bs) {
			t.Errorf("%s:\n got  %+v\n want %+v", what, got, bs)
		}
	}
	want("one remote", Binding{L2VNI: 100, IP: ip, MAC: mac2, VTEP: vtep2, Active: true})
	if bs := tab.Bindings(4002, 0); len(bs) != 0 {
		t.Errorf("another VRF's bindings: %+v", bs)
	}
	// hostA moves to vtep3 (seq 1): remote there.
	tab.Update(macIP(vtep3, mac1, hostA, 1, rmac3))
	want("moved away",
		Binding{L2VNI: 100, IP: hostA, MAC: mac1, VTEP: vtep3, Seq: 1, Active: true},
		Binding{L2VNI: 100, IP: ip, MAC: mac2, VTEP: vtep2, Active: true})
	// And back with seq 2: local again, not remote.
	tab.LocalMACSeq(100, mac1, 2, false)
	want("back", Binding{L2VNI: 100, IP: ip, MAC: mac2, VTEP: vtep2, Active: true})
	// Its MAC is taken away: vtep3's route, still there, is installed
	// again.
	tab.LocalMACAway(100, mac1)
	want("MAC away",
		Binding{L2VNI: 100, IP: hostA, MAC: mac1, VTEP: vtep3, Seq: 1, Active: true},
		Binding{L2VNI: 100, IP: ip, MAC: mac2, VTEP: vtep2, Active: true})
}
