package daemon

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/evpnd/evpnd/cmd/evpnd/api"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// The API rows built from the L3 model's state keep to the requested VRF
// and L2VNI, sort as documented and count routes per next hop.
func TestL3Rows(t *testing.T) {
	mac := func(s string) evpn.MAC {
		m, err := evpn.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a := netip.MustParseAddr
	red := configs.VRF{Name: "red", L3VNI: 4001, L2VNIs: []configs.VRFMember{{VNI: 200}, {VNI: 100}}}
	r2, r3, rb := mac("3e:00:00:00:00:02"), mac("3e:00:00:00:00:03"), mac("3e:00:00:00:00:99")
	nh2, nh3 := evpn.NextHop{VTEP: a("10.0.0.2"), RouterMAC: r2}, evpn.NextHop{VTEP: a("10.0.0.3"), RouterMAC: r3}
	s := evpn.L3Snapshot{
		Neighs: []evpn.Neigh{
			{L2VNI: 100, IP: a("192.168.100.2"), MAC: mac("02:00:00:00:00:02")},
			{L2VNI: 200, IP: a("192.168.200.3"), MAC: mac("02:00:00:00:00:03")},
			{L2VNI: 300, IP: a("192.168.30.9"), MAC: mac("02:00:00:00:00:09")}, // blue's member
		},
		Hosts: []evpn.HostRoute{
			{VRF: "red", L3VNI: 4001, IP: a("192.168.100.2"), NextHop: nh2},
			{VRF: "blue", L3VNI: 4002, IP: a("192.168.30.9"), NextHop: evpn.NextHop{VTEP: a("10.0.0.9"), RouterMAC: rb}},
		},
		Prefixes: []evpn.PrefixRoute{
			{VRF: "red", L3VNI: 4001, Prefix: netip.MustParsePrefix("0.0.0.0/0"), NextHops: []evpn.NextHop{nh2, nh3}},
			{VRF: "blue", L3VNI: 4002, Prefix: netip.MustParsePrefix("10.9.0.0/16"), NextHops: []evpn.NextHop{nh2}},
		},
		RouterMACs: []evpn.RouterMAC{
			{VRF: "red", L3VNI: 4001, VTEP: a("10.0.0.3"), MAC: r3, Routes: 1},
			{VRF: "red", L3VNI: 4001, VTEP: a("10.0.0.2"), MAC: r2, Routes: 2},
			{VRF: "blue", L3VNI: 4002, VTEP: a("10.0.0.9"), MAC: rb, Routes: 1},
		},
	}

	arp := arpRows(red, s, 0)
	wantARP := []api.ARPEntry{
		{VNI: 100, IP: a("192.168.100.2"), MAC: mac("02:00:00:00:00:02"), VTEP: a("10.0.0.2"), VRF: "red"},
		{VNI: 200, IP: a("192.168.200.3"), MAC: mac("02:00:00:00:00:03"), VRF: "red"},
	}
	if !reflect.DeepEqual(arp, wantARP) {
		t.Errorf("arpRows:\ngot  %+v\nwant %+v", arp, wantARP)
	}
	if got := arpRows(red, s, 200); !reflect.DeepEqual(got, wantARP[1:]) {
		t.Errorf("arpRows vni 200: %+v", got)
	}

	wantRM := []api.RouterMACEntry{
		{L3VNI: 4001, VRF: "red", VTEP: a("10.0.0.2"), RouterMAC: r2, Routes: 2},
		{L3VNI: 4001, VRF: "red", VTEP: a("10.0.0.3"), RouterMAC: r3, Routes: 1},
	}
	if got := rmacRows(red, s); !reflect.DeepEqual(got, wantRM) {
		t.Errorf("rmacRows:\ngot  %+v\nwant %+v", got, wantRM)
	}

	wantNH := []api.L3NextHop{
		{L3VNI: 4001, VRF: "red", VTEP: a("10.0.0.2"), RouterMAC: r2, Routes: 2},
		{L3VNI: 4001, VRF: "red", VTEP: a("10.0.0.3"), RouterMAC: r3, Routes: 1},
	}
	if got := nextHopRows(red, s); !reflect.DeepEqual(got, wantNH) {
		t.Errorf("nextHopRows:\ngot  %+v\nwant %+v", got, wantNH)
	}

	wantRoutes := []api.VRFRoute{
		{VRF: "red", L3VNI: 4001, Prefix: netip.MustParsePrefix("0.0.0.0/0"),
			NextHops: []api.VRFNextHop{{VTEP: a("10.0.0.2"), RouterMAC: r2}, {VTEP: a("10.0.0.3"), RouterMAC: r3}}},
		{VRF: "red", L3VNI: 4001, Prefix: netip.MustParsePrefix("192.168.100.2/32"), Host: true,
			NextHops: []api.VRFNextHop{{VTEP: a("10.0.0.2"), RouterMAC: r2}}},
	}
	if got := vrfRouteRows(red, s); !reflect.DeepEqual(got, wantRoutes) {
		t.Errorf("vrfRouteRows:\ngot  %+v\nwant %+v", got, wantRoutes)
	}

	c := &configs.Config{VRFs: []configs.VRF{{Name: "blue", L3VNI: 4002}, red}}
	if v, ok := vrfOfL2VNI(c, 200); !ok || v.Name != "red" {
		t.Errorf("vrfOfL2VNI(200) = %v %v", v.Name, ok)
	}
	if _, ok := vrfOfL2VNI(c, 999); ok {
		t.Error("vrfOfL2VNI(999) found a VRF")
	}
	if vs := sortedVRFs(c); vs[0].L3VNI != 4001 || vs[1].L3VNI != 4002 {
		t.Errorf("sortedVRFs: %v", vs)
	}
}
