package vtep

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/vishvananda/netlink"
)

// testNS creates a namespace after checking the link kinds the tests need,
// and returns it with a netlink handle bound to it.
func testNS(t testing.TB, prefix string) (*netns.NS, *netlink.Handle) {
	t.Helper()
	for _, k := range []string{"bridge", "vxlan", "veth"} {
		netns.RequireLinkKind(t, k)
	}
	ns := netns.ForTest(t, prefix)
	h, err := ns.Handle()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return ns, h
}

func testLog(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func sh(t testing.TB, ns *netns.NS, argv ...string) string {
	t.Helper()
	out, err := ns.Exec(context.Background(), argv...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func linkIndexes(t *testing.T, h *netlink.Handle, names ...string) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, n := range names {
		l, err := h.LinkByName(n)
		if err != nil {
			t.Fatalf("link %s: %v", n, err)
		}
		m[n] = l.Attrs().Index
	}
	return m
}

func mustAbsent(t *testing.T, h *netlink.Handle, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := h.LinkByName(n); err == nil {
			t.Errorf("device %s exists, want it absent", n)
		}
	}
}

func TestEnsureCreatesAndIsIdempotent(t *testing.T) {
	ns, h := testNS(t, "vtc")
	sh(t, ns, "ip", "link", "add", "acc0", "type", "veth", "peer", "name", "host0")
	m := NewManager(h, nsHandle(t, ns), testLog(t))
	vnis := []L2VNI{vniSpec(100, "acc0"), vniSpec(200)}
	ctx := context.Background()
	if err := m.Ensure(ctx, vnis); err != nil {
		t.Fatal(err)
	}

	for _, v := range vnis {
		l, err := h.LinkByName(v.VXLAN)
		if err != nil {
			t.Fatal(err)
		}
		vx, ok := l.(*netlink.Vxlan)
		if !ok {
			t.Fatalf("%s is %s, want vxlan", v.VXLAN, l.Type())
		}
		br, err := h.LinkByName(v.Bridge)
		if err != nil {
			t.Fatal(err)
		}
		if br.Type() != "bridge" {
			t.Errorf("%s is %s, want bridge", v.Bridge, br.Type())
		}
		if vx.VxlanId != int(v.VNI) || vx.Port != 4789 || vx.Learning || !vx.SrcAddr.Equal(addrIP(v.Local)) || vx.Group != nil {
			t.Errorf("%s: id %d port %d learning %v local %v group %v", v.VXLAN, vx.VxlanId, vx.Port, vx.Learning, vx.SrcAddr, vx.Group)
		}
		if vx.MasterIndex != br.Attrs().Index {
			t.Errorf("%s master index %d, want %s (%d)", v.VXLAN, vx.MasterIndex, v.Bridge, br.Attrs().Index)
		}
		if vx.Attrs().Flags&1 == 0 || br.Attrs().Flags&1 == 0 {
			t.Errorf("%s or %s is not up", v.VXLAN, v.Bridge)
		}
		pi, err := h.LinkGetProtinfo(vx)
		if err != nil {
			t.Fatal(err)
		}
		if pi.Learning || !pi.NeighSuppress {
			t.Errorf("%s port flags %s, want learning off, neigh_suppress on", v.VXLAN, pi.String())
		}
		if vx.Alias != OwnerAlias || br.Attrs().Alias != OwnerAlias {
			t.Errorf("alias %q / %q, want %q", vx.Alias, br.Attrs().Alias, OwnerAlias)
		}

		// The same, as iproute2 prints it.
		d := sh(t, ns, "ip", "-d", "link", "show", "dev", v.VXLAN)
		for _, want := range []string{"vxlan id " + itoa(v.VNI) + " local 10.0.0.1 ", "dstport 4789 nolearning", "master " + v.Bridge, "learning off", "neigh_suppress on"} {
			if !strings.Contains(d, want) {
				t.Errorf("ip -d link show %s lacks %q:\n%s", v.VXLAN, want, d)
			}
		}
		checkIPv6Off(t, ns, v.Bridge, v.VXLAN)
	}
	acc, err := h.LinkByName("acc0")
	if err != nil {
		t.Fatal(err)
	}
	if br := linkIndexes(t, h, "br100")["br100"]; acc.Attrs().MasterIndex != br || acc.Attrs().Flags&1 == 0 {
		t.Errorf("acc0 master %d up %v, want master br100 (%d) and up", acc.Attrs().MasterIndex, acc.Attrs().Flags&1 != 0, br)
	}

	// Second run: same devices, nothing to do.
	names := []string{"vxlan100", "br100", "vxlan200", "br200", "acc0"}
	before := linkIndexes(t, h, names...)
	obs, err := m.observe(vnis)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := PlanL2(vnis, obs)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Actions) != 0 {
		t.Errorf("second plan has actions: %v", plan.Actions)
	}
	if err := m.Ensure(ctx, vnis); err != nil {
		t.Fatal(err)
	}
	if after := linkIndexes(t, h, names...); !mapsEqual(before, after) {
		t.Errorf("ifindexes changed: before %v after %v", before, after)
	}
}

// checkIPv6Off checks that devs have IPv6 turned off: disable_ipv6=1, no
// IPv6 address (no link-local) and no multicast route in the local table.
func checkIPv6Off(t *testing.T, ns *netns.NS, devs ...string) {
	t.Helper()
	for _, dev := range devs {
		if got := strings.TrimSpace(sh(t, ns, "cat", "/proc/sys/net/ipv6/conf/"+dev+"/disable_ipv6")); got != "1" {
			t.Errorf("%s: disable_ipv6 is %s, want 1", dev, got)
		}
		if a := sh(t, ns, "ip", "-6", "addr", "show", "dev", dev); strings.TrimSpace(a) != "" {
			t.Errorf("%s has IPv6 addresses:\n%s", dev, a)
		}
		if r := sh(t, ns, "ip", "-6", "route", "show", "table", "local", "dev", dev); strings.TrimSpace(r) != "" {
			t.Errorf("%s has IPv6 routes:\n%s", dev, r)
		}
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestEnsureConflictLeavesNothing(t *testing.T) {
	ns, h := testNS(t, "vtx")
	sh(t, ns, "ip", "link", "add", "vxlan200", "type", "vxlan", "id", "999", "local", "10.0.0.1", "dstport", "4789", "nolearning")
	m := NewManager(h, nsHandle(t, ns), testLog(t))
	err := m.Ensure(context.Background(), []L2VNI{vniSpec(100), vniSpec(200)})
	if err == nil {
		t.Fatal("Ensure succeeded over a vxlan200 with VNI 999")
	}
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Device != "vxlan200" || ce.Param != "vni" || ce.Expected != "200" || ce.Found != "999" {
		t.Fatalf("error %v, want a vni conflict on vxlan200 (expected 200, found 999)", err)
	}
	t.Log(err)
	for _, want := range []string{"vxlan200", "vni", "999", "200", "ip link del vxlan200"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	mustAbsent(t, h, "vxlan100", "br100", "br200")
}

// TestEnsureMissingAccessPort: a configured access port that does not
// exist is no conflict: the devices are set up without it (Supervise
// enslaves it when it appears; see TestSupervise).
func TestEnsureMissingAccessPort(t *testing.T) {
	ns, h := testNS(t, "vtm")
	m := NewManager(h, nsHandle(t, ns), testLog(t))
	if err := m.Ensure(context.Background(), []L2VNI{vniSpec(100), vniSpec(200, "eth7")}); err != nil {
		t.Fatalf("Ensure with a missing access port: %v", err)
	}
	linkIndexes(t, h, "vxlan100", "br100", "vxlan200", "br200")
}

// TestEnsureRollsBack makes the kernel refuse the second VNI's bridge (an
// MTU below the Ethernet minimum, which only the kernel checks) and checks
// that everything the call did is undone.
func TestEnsureRollsBack(t *testing.T) {
	ns, h := testNS(t, "vtr")
	sh(t, ns, "ip", "link", "add", "acc0", "type", "veth", "peer", "name", "host0")
	m := NewManager(h, nsHandle(t, ns), testLog(t))
	bad := vniSpec(200)
	bad.MTU = 50
	err := m.Ensure(context.Background(), []L2VNI{vniSpec(100, "acc0"), bad})
	if err == nil {
		t.Fatal("Ensure succeeded with a bridge MTU of 50")
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "br200") {
		t.Errorf("error %q does not name br200", err)
	}
	mustAbsent(t, h, "vxlan100", "br100", "vxlan200", "br200")
	acc, err := h.LinkByName("acc0")
	if err != nil {
		t.Fatal(err)
	}
	if acc.Attrs().MasterIndex != 0 || acc.Attrs().Flags&1 != 0 {
		t.Errorf("acc0 master %d up %v after rollback, want released and down as before", acc.Attrs().MasterIndex, acc.Attrs().Flags&1 != 0)
	}
}

// TestAdoptAndRemove adopts devices an operator made (fixing only the
// bridge-port flags), then checks Remove leaves them in place while
// deleting what evpnd created.
func TestAdoptAndRemove(t *testing.T) {
	ns, h := testNS(t, "vta")
	sh(t, ns, "ip", "link", "add", "br100", "type", "bridge")
	sh(t, ns, "ip", "link", "add", "vxlan100", "type", "vxlan", "id", "100", "local", "10.0.0.1", "dstport", "4789", "nolearning")
	sh(t, ns, "ip", "link", "set", "vxlan100", "master", "br100")
	sh(t, ns, "ip", "link", "set", "vxlan100", "up")
	sh(t, ns, "ip", "link", "set", "br100", "up")
	sh(t, ns, "ip", "link", "add", "acc0", "type", "veth", "peer", "name", "host0")
	sh(t, ns, "ip", "link", "add", "acc1", "type", "veth", "peer", "name", "host1")
	before := linkIndexes(t, h, "br100", "vxlan100")

	m := NewManager(h, nsHandle(t, ns), testLog(t))
	vnis := []L2VNI{vniSpec(100, "acc0"), vniSpec(200, "acc1")}
	if err := m.Ensure(context.Background(), vnis); err != nil {
		t.Fatal(err)
	}
	if after := linkIndexes(t, h, "br100", "vxlan100"); !mapsEqual(before, after) {
		t.Errorf("adopted devices re-created: before %v after %v", before, after)
	}
	if d := sh(t, ns, "bridge", "-d", "link", "show", "dev", "vxlan100"); !strings.Contains(d, "learning off") || !strings.Contains(d, "neigh_suppress on") {
		t.Errorf("adopted vxlan100 port flags not fixed:\n%s", d)
	}

	for _, v := range vnis {
		if err := m.Remove(context.Background(), v); err != nil {
			t.Fatal(err)
		}
	}
	mustAbsent(t, h, "vxlan200", "br200")
	idx := linkIndexes(t, h, "br100", "vxlan100", "acc0", "acc1")
	for _, p := range []string{"acc0", "acc1"} {
		l, _ := h.LinkByName(p)
		if l.Attrs().MasterIndex != 0 {
			t.Errorf("%s still enslaved (master %d) after Remove", p, l.Attrs().MasterIndex)
		}
	}
	if idx["br100"] != before["br100"] {
		t.Error("adopted br100 was replaced")
	}
	// Removing again is a no-op.
	if err := m.Remove(context.Background(), vnis[1]); err != nil {
		t.Fatal(err)
	}
}

// TestEnsureSmallMTU: a bridge and VXLAN device with an MTU below IPv6's
// minimum (1280) have no IPv6 state, so the kernel refuses addrgenmode
// with EAFNOSUPPORT. Ensure takes that as nothing to turn off: the
// devices are created and come up with the MTU asked for.
func TestEnsureSmallMTU(t *testing.T) {
	ns, h := testNS(t, "vtm")
	m := NewManager(h, nsHandle(t, ns), testLog(t))
	v := vniSpec(100)
	v.MTU = 1000
	if err := m.Ensure(context.Background(), []L2VNI{v}); err != nil {
		t.Fatalf("Ensure with mtu 1000: %v", err)
	}
	for _, n := range []string{"br100", "vxlan100"} {
		l, err := h.LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if a := l.Attrs(); a.MTU != 1000 || a.Flags&net.FlagUp == 0 {
			t.Errorf("%s: mtu %d, flags %v; want mtu 1000 and up", n, a.MTU, a.Flags)
		}
	}
}

// TestIPv6OffBridgeForwards: a bridge and VXLAN device created with IPv6
// off still forward between two hosts on access ports, IPv4 and IPv6
// alike (IPv6 is off on the devices, not for the frames they carry), and
// ports enslaved by Ensure keep their own IPv6 setting.
func TestIPv6OffBridgeForwards(t *testing.T) {
	ns, h := testNS(t, "vt6")
	hosts := []*netns.NS{netns.ForTest(t, "vt6a"), netns.ForTest(t, "vt6b")}
	for i, host := range hosts {
		acc, hp := "acc"+itoa(uint32(i)), "host"+itoa(uint32(i))
		sh(t, ns, "ip", "link", "add", acc, "type", "veth", "peer", "name", hp)
		sh(t, ns, "ip", "link", "set", hp, "netns", host.Name)
		sh(t, host, "ip", "addr", "add", "192.168.100."+itoa(uint32(i+1))+"/24", "dev", hp)
		sh(t, host, "ip", "-6", "addr", "add", "fd00::"+itoa(uint32(i+1))+"/64", "dev", hp, "nodad")
		sh(t, host, "ip", "link", "set", hp, "up")
	}
	m := NewManager(h, nsHandle(t, ns), testLog(t))
	if err := m.Ensure(context.Background(), []L2VNI{vniSpec(100, "acc0", "acc1")}); err != nil {
		t.Fatal(err)
	}
	checkIPv6Off(t, ns, "br100", "vxlan100")
	for _, p := range []string{"acc0", "acc1"} {
		if got := strings.TrimSpace(sh(t, ns, "cat", "/proc/sys/net/ipv6/conf/"+p+"/disable_ipv6")); got != "0" {
			t.Errorf("access port %s: disable_ipv6 %s, want its own 0 untouched", p, got)
		}
		waitForwarding(t, ns, p)
	}
	sh(t, hosts[0], "ping", "-c", "3", "-i", "0.2", "-W", "2", "192.168.100.2")
	sh(t, hosts[0], "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "fd00::2")
}

// TestSVIOnL2BridgeTurnsIPv6On: an L2VNI's bridge is created with IPv6
// off; made an SVI with an IPv6 gateway later, it gets IPv6 back (its
// link-local and the gateway address), while the VXLAN device keeps it
// off.
func TestSVIOnL2BridgeTurnsIPv6On(t *testing.T) {
	u, h := testNS(t, "l3i")
	sh(t, u, "ip", "addr", "add", "10.0.0.1/32", "dev", "lo")
	hostOn(t, u, "acc0", "10.1.0.10/24")
	m := NewManager(h, nsHandle(t, u), testLog(t))
	if err := m.Ensure(context.Background(), []L2VNI{l3Spec(100, "acc0")}); err != nil {
		t.Fatal(err)
	}
	checkIPv6Off(t, u, "br100", "vxlan100")
	v := VRF{Name: "d", Backend: BackendDefault, L3: l3Spec(4001), RouterMAC: rmac,
		Members: []SVI{member(100, "acc0", "10.1.0.1/24", "2001:db8:1::1/64")}}
	if err := m.EnsureVRF(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(sh(t, u, "cat", "/proc/sys/net/ipv6/conf/br100/disable_ipv6")); got != "0" {
		t.Errorf("SVI br100: disable_ipv6 %s, want 0", got)
	}
	waitFor(t, func() bool {
		a := sh(t, u, "ip", "-6", "addr", "show", "br100")
		return strings.Contains(a, "fe80::") && strings.Contains(a, "2001:db8:1::1/64")
	})
	checkIPv6Off(t, u, "vxlan100")
}

// TestEnsureNoNeighSuppress: an L2VNI without an SVI gets its VXLAN port
// with neigh_suppress off, in the batched creation path, and a port found
// with it on (turned on by hand) is turned off by the next Ensure, while
// a routed VNI's port keeps it on.
func TestEnsureNoNeighSuppress(t *testing.T) {
	ns, h := testNS(t, "vtn")
	m := NewManager(h, nsHandle(t, ns), testLog(t))
	bridged := vniSpec(200)
	bridged.NoNeighSuppress = true
	vnis := []L2VNI{vniSpec(100), bridged}
	ctx := context.Background()
	check := func(when string) {
		t.Helper()
		for _, v := range vnis {
			l, err := h.LinkByName(v.VXLAN)
			if err != nil {
				t.Fatal(err)
			}
			pi, err := h.LinkGetProtinfo(l)
			if err != nil {
				t.Fatal(err)
			}
			if pi.Learning || pi.NeighSuppress == v.NoNeighSuppress {
				t.Errorf("%s: %s port flags %s, want learning off, neigh_suppress %v", when, v.VXLAN, pi.String(), !v.NoNeighSuppress)
			}
		}
	}
	if err := m.Ensure(ctx, vnis); err != nil {
		t.Fatal(err)
	}
	check("created")
	sh(t, ns, "bridge", "link", "set", "dev", "vxlan200", "neigh_suppress", "on")
	if err := m.Ensure(ctx, vnis); err != nil {
		t.Fatal(err)
	}
	check("after neigh_suppress was turned on by hand")
}
