package daemon

import (
	"net/netip"
	"testing"

	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/evpnd/evpnd/vtep"
)

// localHosts keeps the tenants' local MAC+IP bindings: never one with the
// anycast gateway MAC, a removal only of what is there, a reset of one
// VRF's L2VNIs only.
func TestLocalHosts(t *testing.T) {
	gw := evpn.MAC{0, 0, 0x5e, 0, 1, 1}
	cfg := &configs.Config{VRFs: []configs.VRF{
		{Name: "a", GatewayMAC: gw.String(), L2VNIs: []configs.VRFMember{{VNI: 100}, {VNI: 200}}},
		{Name: "b", GatewayMAC: gw.String(), L2VNIs: []configs.VRFMember{{VNI: 300}}},
	}}
	h := newLocalHosts(cfg)
	host := evpn.MAC{2, 0, 0, 0, 1, 11}
	ev := func(vni uint32, ip string, mac evpn.MAC, removed bool) hostEvent {
		return hostEvent{ev: vtep.HostEvent{Key: vtep.HostKey{VNI: vni, IP: netip.MustParseAddr(ip)}, MAC: mac, Removed: removed}}
	}
	steps := []struct {
		e       hostEvent
		changed bool
		n       int
	}{
		{ev(100, "10.1.0.11", host, false), true, 1},
		{ev(100, "10.1.0.11", host, false), false, 1},                       // reported again
		{ev(100, "10.1.0.99", gw, false), false, 1},                         // the gateway MAC: never a host
		{ev(300, "10.1.0.11", host, false), true, 2},                        // the same host in tenant b
		{ev(100, "10.1.0.12", host, true), false, 2},                        // removal of nothing
		{ev(100, "10.1.0.11", evpn.MAC{2, 0, 0, 0, 1, 12}, false), true, 2}, // a new MAC
		{hostEvent{vrf: "a", vnis: []uint32{100, 200}, reset: true}, true, 1},
		{ev(300, "10.1.0.11", host, true), true, 0},
	}
	for i, s := range steps {
		if got := h.apply(s.e); got != s.changed || len(h.hosts) != s.n {
			t.Fatalf("step %d: changed %v, %d hosts; want %v, %d (%v)", i, got, len(h.hosts), s.changed, s.n, h.hosts)
		}
	}
}

// An L2VNI routed in no VRF has no SVI: vtep leaves neigh_suppress off on
// its VXLAN port; a VRF's member keeps it on.
func TestVtepVNINeighSuppress(t *testing.T) {
	c := &configs.Config{
		L2VNIs: []configs.L2VNI{{VNI: 100}, {VNI: 200}},
		VRFs:   []configs.VRF{{Name: "a", L2VNIs: []configs.VRFMember{{VNI: 100}}}},
	}
	d := &Daemon{cfg: c}
	if v := d.vtepVNI(c, c.L2VNIs[0]); v.NoNeighSuppress {
		t.Error("VRF member 100: neigh_suppress left off")
	}
	if v := d.vtepVNI(c, c.L2VNIs[1]); !v.NoNeighSuppress {
		t.Error("bridged-only 200: neigh_suppress turned on")
	}
	for _, v := range d.standaloneVNIs() {
		if !v.NoNeighSuppress {
			t.Errorf("standalone %d: neigh_suppress turned on", v.VNI)
		}
	}
}

// A border leaf's uplinks reach vtep, its static routes fib; a remote
// type-5 for a subnet of its SVIs or uplinks, or for a prefix it routes
// statically, is not installed (local wins).
func TestBorderVRFWiring(t *testing.T) {
	pf, a := netip.MustParsePrefix, netip.MustParseAddr
	f := configs.VRF{Name: "t1", L3VNI: 4001, Backend: configs.BackendNetns, Namespace: "t1", VXLANDevice: "vxlan4001", Bridge: "br4001",
		L2VNIs:  []configs.VRFMember{{VNI: 100, GatewayIPs: []netip.Prefix{pf("10.1.0.1/24")}}},
		Uplinks: []configs.Uplink{{Interface: "eth5", Addresses: []netip.Prefix{pf("192.0.2.1/30"), pf("2001:db8:ff::1/126")}}},
		Routes:  []configs.StaticRoute{{Prefix: pf("0.0.0.0/0"), Via: a("192.0.2.2")}, {Prefix: pf("::/0"), Via: a("2001:db8:ff::2")}},
	}
	cfg := &configs.Config{Role: configs.RoleLeaf, RouterID: a("10.0.0.1"), VTEPIP: a("10.0.0.1"), L2VNIs: []configs.L2VNI{{VNI: 100, VXLANDevice: "vxlan100", Bridge: "br100"}}, VRFs: []configs.VRF{f}}
	d := &Daemon{cfg: cfg}
	v := d.vtepVRF(f)
	if len(v.Uplinks) != 1 || v.Uplinks[0].Name != "eth5" || len(v.Uplinks[0].Addrs) != 2 {
		t.Errorf("vtep uplinks %+v", v.Uplinks)
	}
	rs := staticRoutes(f)
	if len(rs) != 2 || rs[1].Prefix != pf("::/0") || len(rs[1].NextHops) != 1 || rs[1].NextHops[0] != a("2001:db8:ff::2") {
		t.Errorf("static routes %+v", rs)
	}
	tn := &tenant{cfg: f, v: v}
	for p, want := range map[string]bool{
		"10.1.0.0/24": true, "192.0.2.0/30": true, "2001:db8:ff::/126": true, "0.0.0.0/0": true, "::/0": true,
		"10.2.0.0/24": false, "192.0.2.4/30": false, "198.51.100.0/24": false,
	} {
		if got := local(tn, pf(p)); got != want {
			t.Errorf("local(%s) = %v, want %v", p, got, want)
		}
	}
}
