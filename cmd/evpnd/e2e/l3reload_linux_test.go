package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/evpnd/evpnd/containerlab/lab"
	"github.com/evpnd/evpnd/containerlab/netns"
)

// tenant2 is the second tenant VRF TestReloadTenantVRF adds: on leaf1
// L2VNIs 300 (eth5, g1) and 400 (eth6, g3), on leaf2 L2VNI 300 (eth5,
// g2), L3VNI 4002, in namespace NS2. Its subnet 10.1.0.0/24 and gateway
// are tenant t1's too: only the namespaces keep them apart.
const (
	tenant2L2VNIs = "  - vni: 300\n    access-interfaces: [eth5]\n"
	tenant2VRF    = `  - name: t2
    l3vni: 4002
    backend: netns
    namespace: NS2
    gateway-mac: "00:00:5e:00:01:01"
    l2vnis:
      - {vni: 300, gateway-ips: [10.1.0.1/24]}
`
	tenant2Leaf1L2VNI = "  - vni: 400\n    access-interfaces: [eth6]\n"
	tenant2Leaf1VRF   = "      - {vni: 400, gateway-ips: [10.3.0.1/24]}\n"
)

// TestReloadTenantVRF adds a second tenant VRF, t2, to the running l3 lab
// (tenant t1 on the netns backend) by a reload of each leaf, and removes
// it by another, while tenant t1's hosts ping each other bridged (h1 to
// h2) and routed (h1 to h4): t1 must not lose a ping. Once added, t2's
// hosts reach each other bridged (g1 to g2, VNI 300 across the leafs) and
// routed (g2 to g3, symmetric IRB over L3VNI 4002), but not t1's host with
// the same subnet; a prefix added to what leaf1 advertises reaches the
// route reflector, and leaf2, given a second member, changes t2 in place
// (its other member's bridge kept, its bridged ping not interrupted) and
// still routes. Reloads that must fail change nothing: a VRF whose
// access interface is an underlay port and one whose L3VNI is t1's are
// refused; one that fails while evpnd builds it (its namespace has IPv6
// off, so its IPv6 gateway cannot be added) is rolled back, leaving the
// node's links as they were. Once removed, t2 leaves nothing in the
// kernel: no devices, no routes, its access ports back in the underlay
// namespace, its namespace empty but for its loopback.
//
// TestReloadTenantVRF/default runs t2 on the default backend instead (in
// the leafs' main tables), where its removal must take its host routes
// and neighbours out of the main table.
func TestReloadTenantVRF(t *testing.T) {
	t.Run("netns", func(t *testing.T) { reloadTenantVRF(t, "netns") })
	t.Run("default", func(t *testing.T) { reloadTenantVRF(t, "default") })
}

func reloadTenantVRF(t *testing.T, backend string) {
	requireKernel(t)
	topo, err := lab.Load(l3File)
	if err != nil {
		t.Fatal(err)
	}
	// Tenant t2's hosts.
	for _, h := range []struct{ name, leaf, port, mac, ip, gw string }{
		{"g1", "leaf1", "eth5", "02:00:00:00:03:21", "10.1.0.21/24", "10.1.0.1"},
		{"g2", "leaf2", "eth5", "02:00:00:00:03:22", "10.1.0.22/24", "10.1.0.1"},
		{"g3", "leaf1", "eth6", "02:00:00:00:04:23", "10.3.0.23/24", "10.3.0.1"},
	} {
		topo.Nodes = append(topo.Nodes, &lab.Node{Name: h.name, Kind: "linux", Exec: []string{
			"ip link set eth1 address " + h.mac, "ip link set eth1 mtu 1450",
			"ip addr add " + h.ip + " dev eth1", "ip route add default via " + h.gw,
		}})
		topo.Links = append(topo.Links, lab.Link{A: lab.Endpoint{Node: h.leaf, Interface: h.port}, B: lab.Endpoint{Node: h.name, Interface: "eth1"}})
	}
	dir := t.TempDir()
	conf := map[string]string{}    // leaf: its config file, which the test edits
	base := map[string]string{}    // leaf: the file at deploy
	t1ns := map[string]*netns.NS{} // leaf: t1's namespace
	t2ns := map[string]*netns.NS{} // leaf: t2's namespace
	for _, n := range topo.Nodes {
		if n.Labels["evpnd.role"] != "leaf" {
			continue
		}
		// The test makes the tenant namespaces (see deployL3).
		t1ns[n.Name] = netns.ForTest(t, "l3r"+n.Name)
		t2ns[n.Name] = netns.ForTest(t, "l3s"+n.Name)
		for i, b := range n.Binds {
			if b.Dst != "/etc/evpnd/evpnd.yaml" {
				continue
			}
			data, err := os.ReadFile(b.Src)
			if err != nil {
				t.Fatal(err)
			}
			data = bytes.ReplaceAll(data, []byte("TENANT_NS"), []byte(t1ns[n.Name].Name))
			p := filepath.Join(dir, n.Name+".yaml")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			n.Binds[i].Src = p
			conf[n.Name], base[n.Name] = p, string(data)
		}
	}
	f := deployTopology(t, topo)
	leafs := []string{"leaf1", "leaf2"}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, leaf := range leafs {
			for where, ns := range map[string]*netns.NS{"underlay": f.lab.Node(leaf), "t1": t1ns[leaf], "t2": t2ns[leaf]} {
				for _, argv := range [][]string{{"ip", "-br", "addr"}, {"ip", "route"}, {"ip", "neigh"}} {
					out, _ := ns.Exec(context.Background(), argv...)
					t.Logf("%s %s: %s:\n%s", leaf, where, strings.Join(argv, " "), out)
				}
			}
		}
	})
	write := func(leaf, text string) {
		t.Helper()
		if err := os.WriteFile(conf[leaf], []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	withT2 := func(leaf string) string {
		s := strings.Replace(base[leaf], "    access-interfaces: [eth3]\n", "    access-interfaces: [eth3]\n"+tenant2L2VNIs, 1)
		vrf := strings.ReplaceAll(tenant2VRF, "NS2", t2ns[leaf].Name)
		if backend != "netns" {
			vrf = strings.Replace(vrf, "    backend: netns\n    namespace: "+t2ns[leaf].Name+"\n", "    backend: "+backend+"\n", 1)
		}
		if leaf == "leaf1" {
			s = strings.Replace(s, tenant2L2VNIs, tenant2L2VNIs+tenant2Leaf1L2VNI, 1)
			vrf += tenant2Leaf1VRF
		}
		return s + vrf
	}
	reload := func(leaf string, want int, says ...string) string {
		t.Helper()
		out, code := f.evpnctlIn(leaf, "reload")
		if code != want {
			t.Errorf("%s: evpnctl reload: exit %d, want %d:\n%s", leaf, code, want, out)
		}
		for _, s := range says {
			if !strings.Contains(out, s) {
				t.Errorf("%s: evpnctl reload does not say %q:\n%s", leaf, s, out)
			}
		}
		return out
	}
	t2devs := []string{"vxlan300", "br300", "vxlan400", "br400", "vxlan4002", "br4002", "brt2"}

	// Tenant t1 runs; its pings run through both reloads. Each host
	// speaks first (its gateway), so that its leaf advertises it.
	for _, p := range [][2]string{{"h1", "10.1.0.1"}, {"h2", "10.1.0.1"}, {"h3", "10.2.0.1"}, {"h4", "10.2.0.1"},
		{"h1", "10.1.0.12"}, {"h4", "10.2.0.13"}, {"h1", "10.2.0.14"}} {
		f.waitPing(p[0], p[1])
	}
	pings := map[string]*background{
		"t1 h1 -> h2 (bridged)": f.start("h1", "ping", "-n", "-D", "-i", "0.05", "10.1.0.12"),
		"t1 h1 -> h4 (routed)":  f.start("h1", "ping", "-n", "-D", "-i", "0.05", "10.2.0.14"),
	}
	pingsAnswered(t, pings)
	linksBefore := map[string][]string{}
	for _, leaf := range leafs {
		linksBefore[leaf] = linkNames(f.links(leaf))
	}

	// 1. t2 added.
	for _, leaf := range leafs {
		write(leaf, withT2(leaf))
		reload(leaf, 0, "vrf t2 added")
	}
	for _, p := range [][2]string{{"g1", "10.1.0.1"}, {"g2", "10.1.0.1"}, {"g3", "10.3.0.1"}} {
		f.waitPing(p[0], p[1])
	}
	f.waitPing("g1", "10.1.0.22") // bridged, VNI 300
	f.waitPing("g2", "10.3.0.23") // routed, leaf2 -> leaf1 over L3VNI 4002
	f.waitPing("g3", "10.1.0.22") // and back
	if err := f.ping(t.Context(), "g1", "10.1.0.12", 2); err == nil {
		t.Errorf("g1 (t2) reaches 10.1.0.12, t1's h2: the tenants are not isolated")
	}
	for _, leaf := range leafs {
		under := linkNames(f.links(leaf))
		for _, dev := range append(slices.Clone(t2devs), "eth5") {
			if backend == "netns" && slices.Contains(under, dev) {
				t.Errorf("%s: %s is in the underlay namespace, want it in t2's", leaf, dev)
			}
		}
		if backend != "netns" && !slices.Contains(under, "vxlan4002") {
			t.Errorf("%s: t2 on backend %s: no vxlan4002 in the underlay namespace", leaf, backend)
		}
	}
	if backend == "default" {
		// t2's host route to g3 at leaf2 is in the main table.
		eventually(t, changeTimeout, "leaf2's host route to g3 in its main table", func() error {
			if out := f.exec("leaf2", "ip", "route", "show", "10.3.0.23"); !strings.Contains(out, "10.3.0.23") {
				return fmt.Errorf("ip route show 10.3.0.23: %q", out)
			}
			return nil
		})
	}
	if out := f.exec("leaf2", "evpnctl", "show", "ip", "route", "vrf", "t2"); !strings.Contains(out, "10.3.0.23") {
		t.Errorf("leaf2: evpnctl show ip route vrf t2 lacks g3's host route:\n%s", out)
	}
	if out := f.exec("leaf2", "evpnctl", "show", "ip", "route", "vrf", "t1"); strings.Contains(out, "10.3.0.") {
		t.Errorf("leaf2: t2's routes show in t1:\n%s", out)
	}

	spineRoutes := func() string { return f.exec("spine1", "evpnctl", "show", "evpn", "route") }
	eventually(t, changeTimeout, "t2's routes at the route reflector", func() error {
		if out := spineRoutes(); !strings.Contains(out, "10.3.0.23") || !strings.Contains(out, "10.3.0.0") {
			return fmt.Errorf("no MAC+IP route of g3 or type-5 of 10.3.0.0/24:\n%s", out)
		}
		return nil
	})

	// 1b. leaf1 advertises one more prefix in t2: only its type-5 changes.
	withT2Leaf1 := withT2("leaf1") + "    advertise-prefixes: [10.77.0.0/16]\n"
	write("leaf1", withT2Leaf1)
	reload("leaf1", 0, "vrf t2: advertised prefixes now")
	eventually(t, changeTimeout, "t2's new type-5 at the route reflector", func() error {
		if out := spineRoutes(); !strings.Contains(out, "10.77.0.0") {
			return fmt.Errorf("no type-5 of 10.77.0.0/16:\n%s", out)
		}
		return nil
	})
	// 1c. leaf2 routes L2VNI 400 in t2 too: t2 changes in place there
	// (br300 is not made again) and still routes, and t2's own bridged
	// ping through leaf2 loses nothing.
	br300 := func() string {
		if backend == "netns" {
			return strings.TrimSpace(tenantExec(t, t2ns["leaf2"], "cat", "/sys/class/net/br300/ifindex"))
		}
		return strings.TrimSpace(f.exec("leaf2", "cat", "/sys/class/net/br300/ifindex"))
	}
	br300Before := br300()
	t2pings := map[string]*background{"t2 g1 -> g2 (bridged, a kept member)": f.start("g1", "ping", "-n", "-D", "-i", "0.05", "10.1.0.22")}
	pingsAnswered(t, t2pings)
	withT2Leaf2 := strings.Replace(withT2("leaf2"), tenant2L2VNIs, tenant2L2VNIs+"  - vni: 400\n", 1) + tenant2Leaf1VRF
	write("leaf2", withT2Leaf2)
	reload("leaf2", 0, "vrf t2 changed in place")
	f.waitPing("g2", "10.3.0.23")
	f.waitPing("g3", "10.1.0.22")
	pingsLoseNothing(t, t2pings, 10, "across t2's change in place")
	if got := br300(); got != br300Before {
		t.Errorf("leaf2: br300 made again by a change in place (ifindex %s, was %s)", got, br300Before)
	}

	// 2. Reloads that fail change nothing.
	running := linkNames(f.links("leaf1"))
	t3 := func(l3vni, access, gateways string) string {
		return strings.Replace(withT2Leaf1, "  - vni: 400\n", "  - vni: 500\n    access-interfaces: ["+access+"]\n  - vni: 400\n", 1) +
			fmt.Sprintf("  - name: t3\n    l3vni: %s\n    backend: netns\n    namespace: NS3\n    gateway-mac: \"00:00:5e:00:01:01\"\n    l2vnis:\n      - {vni: 500, gateway-ips: [%s]}\n", l3vni, gateways)
	}
	t3ns := netns.ForTest(t, "l3x")
	if _, err := t3ns.Exec(t.Context(), "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		name, text string
		exit       int
		says       []string
	}{
		{"underlay port", t3("4003", "eth1", "10.5.0.1/24"), 2, []string{"reload refused, nothing changed", "eth1", "has address"}},
		{"l3vni clash", t3("4001", "", "10.5.0.1/24"), 2, []string{"reload refused, nothing changed", "4001"}},
		{"fails while built", t3("4003", "", `10.5.0.1/24, "2001:db8:5::1/64"`), 1, []string{"vrf t3: not added, nothing of it was kept", "2001:db8:5::1/64"}},
	} {
		write("leaf1", strings.ReplaceAll(bad.text, "NS3", t3ns.Name))
		out := reload("leaf1", bad.exit, bad.says...)
		t.Logf("%s: %s", bad.name, out)
		if got := linkNames(f.links("leaf1")); !slices.Equal(got, running) {
			t.Errorf("%s: leaf1's links changed:\n%q\nwere\n%q", bad.name, got, running)
		}
		if got := linkNames(tenantExec(t, t3ns, "ip", "-o", "link", "show")); !slices.Equal(got, []string{"lo"}) {
			t.Errorf("%s: t3's namespace holds %q", bad.name, got)
		}
	}
	f.waitPing("g2", "10.3.0.23") // t2 still routes

	// 2b. (netns) A change in place that fails half-way is undone: with
	// IPv6 off in leaf1's t2 namespace, a new member's IPv6 gateway cannot
	// be added after its devices were; t2 runs on as before.
	if backend == "netns" {
		ns := t2ns["leaf1"]
		sysctl := func(v string) {
			t.Helper()
			if _, err := ns.Exec(t.Context(), "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6="+v, "net.ipv6.conf.default.disable_ipv6="+v); err != nil {
				t.Fatal(err)
			}
		}
		before := linkNames(tenantExec(t, ns, "ip", "-o", "link", "show"))
		sysctl("1")
		bad := strings.Replace(withT2Leaf1, "  - vni: 400\n", "  - vni: 500\n  - vni: 400\n", 1)
		write("leaf1", strings.Replace(bad, tenant2Leaf1VRF, tenant2Leaf1VRF+"      - {vni: 500, gateway-ips: [10.5.0.1/24, \"2001:db8:5::1/64\"]}\n", 1))
		reload("leaf1", 1, "vrf t2: not changed (it runs as before)", "2001:db8:5::1/64")
		sysctl("0")
		if got := linkNames(tenantExec(t, ns, "ip", "-o", "link", "show")); !slices.Equal(got, before) {
			t.Errorf("t2's namespace on leaf1 after a failed change:\n%q\nwas\n%q", got, before)
		}
		f.waitPing("g2", "10.3.0.23")
		f.waitPing("g1", "10.1.0.22")

		// 2c. (netns) The L3VNI's bridge renamed on leaf2: t2 is rebuilt
		// there (g2's port moves out and in again, so g2 speaks again at
		// once) and routes again.
		rebuilt := strings.Replace(withT2Leaf2, "    l3vni: 4002\n", "    l3vni: 4002\n    bridge: brt2\n", 1)
		write("leaf2", rebuilt)
		reload("leaf2", 0, "vrf t2 changed (rebuilt")
		f.waitPing("g2", "10.3.0.23")
		// (The namespace, left empty, was deleted and made again: under
		// evpnlab, where evpnd's mount namespace is private, only evpnd
		// sees the new one; the test's name for it is now stale.)
		if !nsGone(t2ns["leaf2"].Name) {
			t.Errorf("leaf2: t2's namespace %s was not made again by the rebuild", t2ns["leaf2"].Name)
		}
	}

	// 3. t2 removed.
	for _, leaf := range leafs {
		write(leaf, base[leaf])
		reload(leaf, 0, "vrf t2 removed")
	}
	for _, leaf := range leafs {
		eventually(t, changeTimeout, leaf+": t2 gone from the kernel", func() error {
			under := linkNames(f.links(leaf))
			for _, dev := range t2devs {
				if slices.Contains(under, dev) {
					return fmt.Errorf("%s is still in the underlay", dev)
				}
			}
			if !slices.Equal(under, linksBefore[leaf]) {
				return fmt.Errorf("links %q, were %q before t2", under, linksBefore[leaf])
			}
			if !nsGone(t2ns[leaf].Name) {
				if got := linkNames(tenantExec(t, t2ns[leaf], "ip", "-o", "link", "show")); !slices.Equal(got, []string{"lo"}) {
					return fmt.Errorf("t2's namespace holds %q", got)
				}
				for _, argv := range [][]string{{"ip", "route"}, {"ip", "neigh"}} {
					if out := strings.TrimSpace(tenantExec(t, t2ns[leaf], argv...)); out != "" {
						return fmt.Errorf("t2's namespace: %s: %s", strings.Join(argv, " "), out)
					}
				}
			}
			for _, argv := range [][]string{{"ip", "route"}, {"ip", "neigh"}} {
				for where, out := range map[string]string{"underlay": f.exec(leaf, argv...), "t1": tenantExec(t, t1ns[leaf], argv...)} {
					if strings.Contains(out, "10.3.0.") || strings.Contains(out, "10.1.0.2") {
						return fmt.Errorf("%s: %s holds t2's: %s", where, strings.Join(argv, " "), out)
					}
				}
			}
			return nil
		})
		if out, code := f.evpnctlIn(leaf, "show", "ip", "route", "vrf", "t2"); code == 0 {
			t.Errorf("%s: evpnctl show ip route vrf t2 after its removal:\n%s", leaf, out)
		}
	}
	if err := f.ping(t.Context(), "g1", "10.1.0.22", 2); err == nil {
		t.Errorf("g1 still reaches g2 with t2 removed")
	}
	eventually(t, changeTimeout, "t2's routes withdrawn", func() error {
		if out := spineRoutes(); strings.Contains(out, "10.3.0.") || strings.Contains(out, "10.77.0.0") || strings.Contains(out, "10.1.0.2") {
			return fmt.Errorf("the route reflector still holds routes of t2:\n%s", out)
		}
		return nil
	})

	// Tenant t1 lost nothing.
	pingsLoseNothing(t, pings, 10, "across the reloads of tenant t2")
	for _, leaf := range leafs {
		t.Logf("%s's reloads:\n%s", leaf, grepLines(f.lastRunLog(leaf), "reload"))
	}
}

// linkNames returns the names of the links in "ip -o link show" output,
// sorted ("eth1@if5" is eth1).
func linkNames(out string) []string {
	var names []string
	for _, l := range strings.Split(out, "\n") {
		fs := strings.Fields(l)
		// "3: eth1@if5: ..."; iproute2 may mix in a line such as "Error:
		// Peer netns reference is invalid." (a veth's peer namespace going
		// away meanwhile), which names no link.
		if len(fs) < 2 || !strings.HasSuffix(fs[0], ":") || strings.Trim(fs[0], "0123456789:") != "" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(fs[1], ":"), "@")
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// nsGone reports whether the named network namespace is gone for this
// process: no /run/netns entry, or one that no longer holds a namespace
// here (evpnd, in a private mount namespace under evpnlab, deleted it; its
// file may be back, bound to a namespace only evpnd sees).
func nsGone(name string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs("/run/netns/"+name, &st); err != nil {
		return true
	}
	return st.Type != unix.NSFS_MAGIC
}
