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
