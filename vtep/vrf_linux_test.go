package vtep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/evpnd/evpnd/containerlab/poll"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
)

// tenantNS names a tenant namespace EnsureVRF will create, removed when
// the test ends however it ends.
func tenantNS(t *testing.T, tag string) string {
	name := fmt.Sprintf("evt-%s-%d", tag, os.Getpid())
	_ = vnetns.DeleteNamed(name)
	t.Cleanup(func() {
		if err := netns.Delete(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return name
}

// hostOn adds a host namespace with a veth to the underlay namespace u:
// the host end has addr, the other end is named port (left in u for
// EnsureVRF to move or enslave).
func hostOn(t *testing.T, u *netns.NS, port, addr string) (*netns.NS, string) {
	h := netns.ForTest(t, "l3h")
	sh(t, u, "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.Name)
	sh(t, h, "ip", "addr", "add", addr, "dev", "eth0")
	sh(t, h, "ip", "link", "set", "eth0", "up")
	return h, strings.TrimSpace(sh(t, h, "cat", "/sys/class/net/eth0/address"))
}

func l3Spec(vni uint32, ports ...string) L2VNI {
	s := vniSpec(vni, ports...)
	s.Local = netip.MustParseAddr("10.0.0.1")
	return s
}

func member(vni uint32, port string, gw ...string) SVI {
	s := SVI{L2: l3Spec(vni, port), GatewayMAC: gwmac}
	for _, g := range gw {
		s.GatewayIPs = append(s.GatewayIPs, netip.MustParsePrefix(g))
	}
	return s
}

// pingGateway pings the gateway from host h and checks that the host
// resolved it to the anycast gateway MAC.
func pingGateway(t *testing.T, h *netns.NS, gw string) {
	t.Helper()
	// Links just brought up pass traffic once the kernel's link watch has
	// turned their carrier on (up to a second): poll with a deadline.
	var out string
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if out, err = h.Exec(context.Background(), "ping", "-c1", "-W1", gw); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host %s cannot reach its gateway %s: %v\n%s", h.Name, gw, err, out)
		}
	}
	if n := sh(t, h, "ip", "neigh", "show", gw); !strings.Contains(n, gwmac.String()) {
		t.Errorf("host %s resolved gateway %s to %q, want %s", h.Name, gw, n, gwmac)
	}
}

// Two tenants on the netns backend with the same subnet, gateway and host
// address: both are programmed, each host reaches its own gateway, and
// each tenant's neighbour table knows only its own host.
func TestEnsureVRFNetnsTwoTenants(t *testing.T) {
	u, h := testNS(t, "l3u")
	sh(t, u, "ip", "addr", "add", "10.0.0.1/32", "dev", "lo")
	hostA, macA := hostOn(t, u, "accA", "10.1.0.10/24")
	hostB, macB := hostOn(t, u, "accB", "10.1.0.10/24")
	m := NewManager(h, nsHandle(t, u), testLog(t))
	a := VRF{Name: "a", Backend: BackendNetns, Namespace: tenantNS(t, "l3ta"), L3: l3Spec(4001), RouterMAC: rmac,
		Members: []SVI{member(100, "accA", "10.1.0.1/24", "2001:db8:1::1/64")}}
	b := VRF{Name: "b", Backend: BackendNetns, Namespace: tenantNS(t, "l3tb"), L3: l3Spec(4002), RouterMAC: rmac,
		Members: []SVI{member(300, "accB", "10.1.0.1/24")}}
	b.L3.VXLAN, b.L3.Bridge = "vxlan4002", "br4002"
	ctx := context.Background()
	for _, v := range []VRF{a, b} {
		if err := m.EnsureVRF(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if out := sh(t, u, "ip", "-o", "link", "show", "type", "vxlan"); out != "" {
		t.Errorf("VXLAN devices left in the underlay: %s", out)
	}
	tnA, tnB := &netns.NS{Name: a.Namespace}, &netns.NS{Name: b.Namespace}
	if out := sh(t, tnA, "ip", "-d", "link", "show", "vxlan100"); !strings.Contains(out, "master br100") || !strings.Contains(out, "neigh_suppress on") || !strings.Contains(out, "learning off") {
		t.Errorf("tenant a's vxlan100: %s", out)
	}
	if out := sh(t, tnA, "ip", "link", "show", "br4001"); !strings.Contains(out, rmac.String()) {
		t.Errorf("L3VNI SVI without the router MAC: %s", out)
	}
	if out := sh(t, tnA, "ip", "addr", "show", "br100"); !strings.Contains(out, "10.1.0.1/24") || !strings.Contains(out, "2001:db8:1::1/64") || !strings.Contains(out, gwmac.String()) {
		t.Errorf("tenant a's SVI: %s", out)
	}
	pingGateway(t, hostA, "10.1.0.1")
	pingGateway(t, hostB, "10.1.0.1")
	na, nb := sh(t, tnA, "ip", "neigh", "show", "10.1.0.10"), sh(t, tnB, "ip", "neigh", "show", "10.1.0.10")
	if !strings.Contains(na, macA) || strings.Contains(na, macB) || !strings.Contains(nb, macB) || strings.Contains(nb, macA) {
		t.Errorf("tenants not isolated: a knows %q, b knows %q (host a %s, host b %s)", na, nb, macA, macB)
	}

	// Again: nothing to do, nothing re-created.
	// Same devices under the same indexes (states may still settle).
	before := linkIDs(t, tnA)
	for _, v := range []VRF{a, b} {
		if err := m.EnsureVRF(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	th, err := netlink.NewHandleAt(mustNS(t, a.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close()
	under, _ := ObserveNS(h, nsHandle(t, u))
	ten, err := ObserveNS(th, mustNS(t, a.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := PlanVRF(a, under, ten); err != nil || len(p.Actions) != 0 {
		t.Errorf("plan after ensure: %v %v", p.Actions, err)
	}
	if after := linkIDs(t, tnA); after != before {
		t.Errorf("second ensure changed links:\n%s\n%s", before, after)
	}
}

func mustNS(t *testing.T, name string) vnetns.NsHandle {
	t.Helper()
	n, err := vnetns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestEnsureVRFDefault(t *testing.T) {
	u, h := testNS(t, "l3d")
	sh(t, u, "ip", "addr", "add", "10.0.0.1/32", "dev", "lo")
	host, _ := hostOn(t, u, "acc0", "10.1.0.10/24")
	m := NewManager(h, nsHandle(t, u), testLog(t))
	v := VRF{Name: "d", Backend: BackendDefault, L3: l3Spec(4001), RouterMAC: rmac,
		Members: []SVI{member(100, "acc0", "10.1.0.1/24", "2001:db8:1::1/64")}}
	if err := m.EnsureVRF(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	if out := sh(t, u, "ip", "-d", "link", "show", "vxlan100"); !strings.Contains(out, "neigh_suppress on") {
		t.Errorf("vxlan100: %s", out)
	}
	pingGateway(t, host, "10.1.0.1")
	// The SVIs have IPv6 link-local addresses; an L2-only bridge does not.
	waitFor(t, func() bool { return strings.Contains(sh(t, u, "ip", "-6", "addr", "show", "br100"), "fe80::") })
	if err := m.Ensure(context.Background(), []L2VNI{l3Spec(200)}); err != nil {
		t.Fatal(err)
	}
	if out := sh(t, u, "ip", "-6", "addr", "show", "br200"); strings.Contains(out, "fe80::") {
		t.Errorf("L2-only bridge has IPv6: %s", out)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	poll.True(t, 5*time.Second, "the condition", cond)
}

// A plan that fails late (an IPv6 gateway on an SVI whose MTU leaves it
// no IPv6) is undone: the tenant namespace and every device created are
// gone, and the access port is back in the underlay, unenslaved.
func TestEnsureVRFRollback(t *testing.T) {
	for _, backend := range []Backend{BackendDefault, BackendNetns} {
		t.Run(string(backend), func(t *testing.T) {
			u, h := testNS(t, "l3r")
			sh(t, u, "ip", "addr", "add", "10.0.0.1/32", "dev", "lo")
			hostOn(t, u, "acc0", "10.1.0.10/24")
			m := NewManager(h, nsHandle(t, u), testLog(t))
			bad := member(100, "acc0", "10.1.0.1/24", "2001:db8:1::1/64")
			bad.L2.MTU = 1200 // below IPv6's minimum: the kernel refuses the IPv6 address
			v := VRF{Name: "r", Backend: backend, L3: l3Spec(4001), RouterMAC: rmac, Members: []SVI{bad}}
			if backend == BackendNetns {
				v.Namespace = tenantNS(t, "l3tr")
			}
			before := linkNames(t, u)
			err := m.EnsureVRF(context.Background(), v)
			if err == nil || !strings.Contains(err.Error(), "2001:db8:1::1/64") || !strings.Contains(err.Error(), "undid") {
				t.Fatalf("want a failure at the IPv6 address, undone; got %v", err)
			}
			if after := linkNames(t, u); after != before {
				t.Errorf("links after rollback:\n%s\nbefore:\n%s", after, before)
			}
			if out := sh(t, u, "ip", "-o", "link", "show", "acc0"); strings.Contains(out, "master") {
				t.Errorf("acc0 still enslaved: %s", out)
			}
			if backend == BackendNetns && netns.Exists(v.Namespace) {
				t.Errorf("tenant namespace %s left behind", v.Namespace)
			}
		})
	}
}

// linkIDs lists ns's links as "index: name" lines, read through netlink
// (iproute2 may print a transient error about a veth peer's namespace
// while another namespace goes away, which is no change of ns's links).
func linkIDs(t *testing.T, ns *netns.NS) string {
	t.Helper()
	var b strings.Builder
	for _, l := range nsLinks(t, ns) {
		fmt.Fprintf(&b, "%d: %s\n", l.Attrs().Index, l.Attrs().Name)
	}
	return b.String()
}

// linkNames lists ns's link names, sorted, one per line.
func linkNames(t *testing.T, ns *netns.NS) string {
	t.Helper()
	var names []string
	for _, l := range nsLinks(t, ns) {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return strings.Join(names, "\n") + "\n"
}

func nsLinks(t *testing.T, ns *netns.NS) []netlink.Link {
	t.Helper()
	nh, err := vnetns.GetFromPath(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	h, err := netlink.NewHandleAt(nh)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	return links
}

// The vrf backend: probed first; its namespace test runs only where the
// kernel has VRF devices.
func TestEnsureVRFDevice(t *testing.T) {
	netns.RequireRoot(t)
	err := ProbeBackend(BackendVRF)
	if errors.Is(err, ErrBackendUnsupported) {
		if !strings.Contains(err.Error(), "CONFIG_NET_VRF") || !strings.Contains(err.Error(), "backend netns") {
			t.Errorf("the probe's error does not say what is missing and what to do: %v", err)
		}
		t.Skipf("kernel lacks VRF devices (CONFIG_NET_VRF): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	u, h := testNS(t, "l3v")
	sh(t, u, "ip", "addr", "add", "10.0.0.1/32", "dev", "lo")
	host, _ := hostOn(t, u, "acc0", "10.1.0.10/24")
	m := NewManager(h, nsHandle(t, u), testLog(t))
	v := VRF{Name: "tv", Backend: BackendVRF, Table: 4001, L3: l3Spec(4001), RouterMAC: rmac,
		Members: []SVI{member(100, "acc0", "10.1.0.1/24")}}
	if err := m.EnsureVRF(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	if out := sh(t, u, "ip", "-o", "link", "show", "br100"); !strings.Contains(out, "master tv") {
		t.Errorf("br100 not in the VRF: %s", out)
	}
	if out := sh(t, u, "ip", "route", "show", "table", "4001"); !strings.Contains(out, "10.1.0.0/24") {
		t.Errorf("VRF table lacks the gateway subnet: %s", out)
	}
	pingGateway(t, host, "10.1.0.1")
}

func TestProbeBackends(t *testing.T) {
	netns.RequireRoot(t)
	for _, b := range []Backend{BackendDefault, BackendNetns} {
		if err := ProbeBackend(b); err != nil {
			t.Errorf("%s: %v", b, err)
		}
	}
	if err := ProbeBackend("vlan"); err == nil {
		t.Error("unknown backend accepted")
	}
	// No probe namespace is left behind.
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), fmt.Sprintf("evpnd-probe-%d-", os.Getpid())) {
			t.Errorf("probe namespace %s left behind", e.Name())
		}
	}
}

// RemoveVRF takes a tenant down: its devices and (netns) its namespace go,
// the access port is back in the underlay and released; an adopted device
// stays.
func TestRemoveVRF(t *testing.T) {
	for _, backend := range []Backend{BackendDefault, BackendNetns} {
		t.Run(string(backend), func(t *testing.T) {
			u, h := testNS(t, "l3x")
			sh(t, u, "ip", "addr", "add", "10.0.0.1/32", "dev", "lo")
			hostOn(t, u, "acc0", "10.1.0.10/24")
			m := NewManager(h, nsHandle(t, u), testLog(t))
			v := VRF{Name: "x", Backend: backend, L3: l3Spec(4001), RouterMAC: rmac, Members: []SVI{member(100, "acc0", "10.1.0.1/24")}}
			if backend == BackendNetns {
				v.Namespace = tenantNS(t, "l3tx")
			} else {
				sh(t, u, "ip", "link", "add", "br100", "type", "bridge") // adopted: must stay
			}
			before := linkNames(t, u)
			ctx := context.Background()
			if err := m.EnsureVRF(ctx, v); err != nil {
				t.Fatal(err)
			}
			if err := m.RemoveVRF(ctx, v); err != nil {
				t.Fatal(err)
			}
			if after := linkNames(t, u); after != before {
				t.Errorf("links after RemoveVRF:\n%s\nbefore EnsureVRF:\n%s", after, before)
			}
			if out := sh(t, u, "ip", "-o", "link", "show", "acc0"); strings.Contains(out, "master") {
				t.Errorf("acc0 still enslaved: %s", out)
			}
			if backend == BackendNetns && netns.Exists(v.Namespace) {
				t.Errorf("namespace %s left behind", v.Namespace)
			}
			if err := m.RemoveVRF(ctx, v); err != nil {
				t.Errorf("second RemoveVRF: %v", err)
			}
		})
	}
}

// A host that talks to its gateway becomes a local MAC+IP binding; a
// STALE neighbour stays, a deleted one is withdrawn, and fib's remote
// (extern_learn) entries are never reported.
func TestWatchHosts(t *testing.T) {
	u, h := testNS(t, "l3w")
	sh(t, u, "ip", "addr", "add", "10.0.0.1/32", "dev", "lo")
	host, hostMAC := hostOn(t, u, "acc0", "10.1.0.10/24")
	m := NewManager(h, nsHandle(t, u), testLog(t))
	v := VRF{Name: "w", Backend: BackendDefault, L3: l3Spec(4001), RouterMAC: rmac, Members: []SVI{member(100, "acc0", "10.1.0.1/24")}}
	if err := m.EnsureVRF(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	events := make(chan HostEvent, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- WatchHosts(ctx, nsHandle(t, u), map[string]uint32{"br100": 100},
			map[uint32][]netip.Addr{100: {netip.MustParseAddr("10.1.0.1")}}, func(e HostEvent) { events <- e })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("WatchHosts: %v", err)
		}
	})
	next := func() HostEvent {
		t.Helper()
		select {
		case e := <-events:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no host event within 10s")
		}
		return HostEvent{}
	}
	pingGateway(t, host, "10.1.0.1")
	sh(t, u, "ip", "neigh", "replace", "10.1.0.99", "lladdr", "02:00:00:00:00:99", "dev", "br100", "nud", "noarp", "extern_learn")
	if e := next(); e.Removed || e.Key.IP != netip.MustParseAddr("10.1.0.10") || e.MAC.String() != hostMAC {
		t.Fatalf("first event %+v, want 10.1.0.10 at %s", e, hostMAC)
	}
	sh(t, u, "ip", "neigh", "change", "10.1.0.10", "lladdr", hostMAC, "dev", "br100", "nud", "stale")
	// A marker: the next event must be this host, not one for the STALE.
	sh(t, u, "ip", "neigh", "replace", "10.1.0.11", "lladdr", "02:00:00:00:00:11", "dev", "br100", "nud", "reachable")
	if e := next(); e.Removed || e.Key.IP != netip.MustParseAddr("10.1.0.11") {
		t.Fatalf("after STALE: %+v, want only the marker 10.1.0.11 learned", e)
	}
	sh(t, u, "ip", "neigh", "del", "10.1.0.10", "dev", "br100")
	if e := next(); !e.Removed || e.Key.IP != netip.MustParseAddr("10.1.0.10") {
		t.Fatalf("after STALE and delete: %+v, want 10.1.0.10 withdrawn (and nothing for STALE or the extern_learn entry)", e)
	}
}

// EnsureVRF warns, once per change, when the namespace that routes the
// VRF has forwarding off (IPv6 only when the VRF has an IPv6 gateway):
// a new namespace starts with IPv6 forwarding off, and the kernel then
// drops routed traffic without any other sign.
func TestEnsureVRFWarnsForwardingOff(t *testing.T) {
	u, h := testNS(t, "l3f")
	sh(t, u, "ip", "addr", "add", "10.0.0.1/32", "dev", "lo")
	sh(t, u, "sysctl", "-qw", "net.ipv4.ip_forward=0")
	var logs strings.Builder
	m := NewManager(h, nsHandle(t, u), slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	v := VRF{Name: "d", Backend: BackendDefault, L3: l3Spec(4001), RouterMAC: rmac,
		Members: []SVI{member(100, "", "10.1.0.1/24", "2001:db8:1::1/64")}}
	v.Members[0].L2.AccessPorts = nil
	warnings := func() []string {
		var ws []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "forwarding is off") {
				ws = append(ws, l)
			}
		}
		return ws
	}
	for range 2 {
		if err := m.EnsureVRF(context.Background(), v); err != nil {
			t.Fatal(err)
		}
	}
	ws := warnings()
	if len(ws) != 1 || !strings.Contains(ws[0], "net.ipv4.ip_forward") || !strings.Contains(ws[0], "net.ipv6.conf.all.forwarding") {
		t.Fatalf("want one warning naming both sysctls, have %q", ws)
	}
	// Forwarding on: no new warning, however often EnsureVRF runs.
	sh(t, u, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	for range 2 {
		if err := m.EnsureVRF(context.Background(), v); err != nil {
			t.Fatal(err)
		}
	}
	if ws := warnings(); len(ws) != 1 {
		t.Errorf("warned again with forwarding on: %q", ws)
	}
	// IPv6 forwarding off matters only to a VRF with an IPv6 gateway.
	sh(t, u, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=0")
	v4 := v
	v4.Name = "v4"
	v4.Members = []SVI{member(100, "", "10.1.0.1/24")}
	v4.Members[0].L2.AccessPorts = nil
	if err := m.EnsureVRF(context.Background(), v4); err != nil {
		t.Fatal(err)
	}
	if ws := warnings(); len(ws) != 1 {
		t.Errorf("warned for an IPv4-only VRF about IPv6 forwarding: %q", ws)
	}
}

// A border leaf's uplink on the netns backend: moved into the tenant's
// namespace with its addresses, so the external router answers from the
// tenant's side; RemoveVRF gives it back to the underlay.
func TestEnsureVRFUplinkNetns(t *testing.T) {
	u, h := testNS(t, "l3up")
	sh(t, u, "ip", "addr", "add", "10.0.0.1/32", "dev", "lo")
	ext, _ := hostOn(t, u, "up0", "192.0.2.2/30")
	sh(t, ext, "ip", "addr", "add", "2001:db8:ff::2/126", "dev", "eth0", "nodad")
	m := NewManager(h, nsHandle(t, u), testLog(t))
	v := VRF{Name: "a", Backend: BackendNetns, Namespace: tenantNS(t, "l3upa"), L3: l3Spec(4001), RouterMAC: rmac,
		Uplinks: []Uplink{{Name: "up0", Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/30"), netip.MustParsePrefix("2001:db8:ff::1/126")}}}}
	ctx := context.Background()
	if err := m.EnsureVRF(ctx, v); err != nil {
		t.Fatal(err)
	}
	tn := &netns.NS{Name: v.Namespace}
	if out := sh(t, u, "ip", "-o", "link"); strings.Contains(out, "up0") {
		t.Errorf("uplink left in the underlay: %s", out)
	}
	if out := sh(t, tn, "ip", "addr", "show", "up0"); !strings.Contains(out, "192.0.2.1/30") || !strings.Contains(out, "2001:db8:ff::1/126") || !strings.Contains(out, "UP") {
		t.Errorf("uplink in the tenant namespace: %s", out)
	}
	// IPv6 forwarding is on in the tenant's namespace: it has an IPv6
	// uplink, though no IPv6 gateway.
	if out := strings.TrimSpace(sh(t, tn, "sysctl", "-n", "net.ipv6.conf.all.forwarding")); out != "1" {
		t.Errorf("IPv6 forwarding in the tenant namespace: %s", out)
	}
	for _, dst := range []string{"192.0.2.2", "2001:db8:ff::2"} {
		if _, err := poll.Until(ctx, 5*time.Second, 50*time.Millisecond, func() error {
			_, err := tn.Exec(ctx, "ping", "-c", "1", "-W", "1", dst)
			return err
		}); err != nil {
			t.Errorf("the external router %s from the tenant namespace: %v", dst, err)
		}
	}
	// Ensured again (the uplink already in): no error.
	if err := m.EnsureVRF(ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := m.RemoveVRF(ctx, v); err != nil {
		t.Fatal(err)
	}
	if out := sh(t, u, "ip", "-o", "link", "show", "up0"); !strings.Contains(out, "up0") {
		t.Errorf("uplink not back in the underlay: %s", out)
	}
}

// An uplink that appears after the VRF was built (a late cable, a VM's
// tap) is taken by SuperviseVRFs: moved into the tenant namespace and
// addressed.
func TestSuperviseVRFUplinkLate(t *testing.T) {
	u, h := testNS(t, "l3upl")
	sh(t, u, "ip", "addr", "add", "10.0.0.1/32", "dev", "lo")
	m := NewManager(h, nsHandle(t, u), testLog(t))
	v := VRF{Name: "a", Backend: BackendNetns, Namespace: tenantNS(t, "l3upla"), L3: l3Spec(4001), RouterMAC: rmac,
		Uplinks: []Uplink{{Name: "up0", Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/30")}}}}
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.EnsureVRF(ctx, v); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.SuperviseVRFs(ctx, []VRF{v}, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("SuperviseVRFs: %v", err)
		}
	})
	hostOn(t, u, "up0", "192.0.2.2/30")
	tn := &netns.NS{Name: v.Namespace}
	waitFor(t, func() bool {
		out, err := tn.Exec(ctx, "ip", "addr", "show", "up0")
		return err == nil && strings.Contains(out, "192.0.2.1/30") && strings.Contains(out, ",UP")
	})
}
