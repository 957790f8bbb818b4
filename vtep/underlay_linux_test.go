package vtep

import (
	"context"
	"net/netip"
	"testing"
)

func TestVXLANMTU(t *testing.T) {
	for _, tc := range []struct {
		underlay int
		local    string
		want     int
	}{
		{9000, "10.0.0.1", 8950},
		{1500, "10.0.0.1", 1450},
		{9000, "2001:db8::1", 8930},
		{1500, "::ffff:10.0.0.1", 1450},
		{100, "10.0.0.1", 0},
	} {
		if got := VXLANMTU(tc.underlay, netip.MustParseAddr(tc.local)); got != tc.want {
			t.Errorf("VXLANMTU(%d, %s) = %d, want %d", tc.underlay, tc.local, got, tc.want)
		}
	}
}

// TestUnderlayMTU: the VTEP address on the uplink itself gives that
// uplink; on lo, the route towards the neighbour gives its interface,
// or the route's own mtu when lower; with no route, an error.
func TestUnderlayMTU(t *testing.T) {
	ns, h := testNS(t, "vtu")
	sh(t, ns, "ip", "link", "set", "lo", "up")
	sh(t, ns, "ip", "link", "add", "eth1", "mtu", "9000", "type", "veth", "peer", "name", "eth1p", "mtu", "9000")
	sh(t, ns, "ip", "link", "add", "eth2", "type", "veth", "peer", "name", "eth2p")
	for _, d := range []string{"eth1", "eth1p", "eth2", "eth2p"} {
		sh(t, ns, "ip", "link", "set", d, "up")
	}
	sh(t, ns, "ip", "addr", "add", "10.1.1.1/31", "dev", "eth1")
	sh(t, ns, "ip", "addr", "add", "10.1.2.1/31", "dev", "eth2")
	sh(t, ns, "ip", "addr", "add", "10.0.0.1/32", "dev", "lo")
	sh(t, ns, "ip", "route", "add", "10.0.0.254/32", "via", "10.1.1.0")
	a := netip.MustParseAddr
	rr := []netip.Addr{a("10.0.0.254")}

	u, err := UnderlayMTU(h, a("10.0.0.1"), rr)
	if err != nil || u.Dev != "eth1" || u.MTU != 9000 {
		t.Errorf("VTEP on lo: %+v, %v; want eth1 9000", u, err)
	}
	u, err = UnderlayMTU(h, a("10.1.2.1"), nil)
	if err != nil || u.Dev != "eth2" || u.MTU != 1500 || u.Via != "address" {
		t.Errorf("VTEP on eth2: %+v, %v; want eth2 1500 by address", u, err)
	}
	sh(t, ns, "ip", "route", "replace", "10.0.0.254/32", "via", "10.1.1.0", "mtu", "lock", "8000")
	if u, err := UnderlayMTU(h, a("10.0.0.1"), rr); err != nil || u.MTU != 8000 {
		t.Errorf("route with mtu 8000: %+v, %v", u, err)
	}
	if u, err := UnderlayMTU(h, a("10.0.0.1"), []netip.Addr{a("192.0.2.1")}); err == nil {
		t.Errorf("no route: %+v, want an error", u)
	}
	if _, err := UnderlayMTU(h, a("10.9.9.9"), rr); err == nil {
		t.Error("VTEP address on no interface: no error")
	}

	// Ensure gives a created VXLAN device the default; the bridge follows.
	m := NewManager(h, nsHandle(t, ns), testLog(t))
	v := vniSpec(100)
	v.DefaultVXLANMTU = VXLANMTU(9000, v.Local)
	if err := m.Ensure(context.Background(), []L2VNI{v}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"vxlan100", "br100"} {
		l, err := h.LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if l.Attrs().MTU != 8950 {
			t.Errorf("%s: mtu %d, want 8950", n, l.Attrs().MTU)
		}
	}
}
