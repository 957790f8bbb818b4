package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/lab"
	"github.com/evpnd/evpnd/containerlab/netns"
	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// l3File is the lab of the tenant VRF tests.
const l3File = "testdata/l3.clab.yml"

// gatewayMAC is the anycast gateway MAC of the l3 lab.
const gatewayMAC = "00:00:5e:00:01:01"

// deployL3 deploys the l3 lab with the tenant on backend (netns or
// default), and returns the namespace of each leaf where the tenant's
// devices are: on netns, the tenant namespace, named uniquely for the run
// (the configs' TENANT_NS placeholder); on default, the leaf's own. The test
// creates those namespaces before the lab starts and removes them after
// it is destroyed: evpnlab runs evpnd under "ip netns exec", whose mount
// namespace is private, so a namespace evpnd created itself would be
// visible to evpnd alone (under systemd or in a container evpnd creates
// it where everyone sees it). It returns the tenant namespace per leaf.
func deployL3(t *testing.T, backend string) (*fabric, map[string]*netns.NS) {
	t.Helper()
	return deployL3Lab(t, l3File, func(string) string { return backend })
}

// deployL3Lab is deployL3 for the lab in file (with the l3 lab's
// conventions), with the backend of each leaf given by backendOf.
func deployL3Lab(t *testing.T, file string, backendOf func(leaf string) string) (*fabric, map[string]*netns.NS) {
	t.Helper()
	requireKernel(t)
	topo, err := lab.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tenants := map[string]*netns.NS{}
	for _, n := range topo.Nodes {
		if n.Labels["evpnd.role"] != "leaf" {
			continue
		}
		var ns *netns.NS
		backend := backendOf(n.Name)
		if backend == "netns" {
			ns = netns.ForTest(t, "l3t"+n.Name)
			tenants[n.Name] = ns
		}
		for i, b := range n.Binds {
			if b.Dst != "/etc/evpnd/evpnd.yaml" {
				continue
			}
			data, err := os.ReadFile(b.Src)
			if err != nil {
				t.Fatal(err)
			}
			if ns != nil {
				data = bytes.ReplaceAll(data, []byte("TENANT_NS"), []byte(ns.Name))
			} else {
				data = bytes.ReplaceAll(data, []byte("backend: netns\n    namespace: TENANT_NS\n"), []byte("backend: "+backend+"\n"))
			}
			p := filepath.Join(dir, n.Name+".yaml")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			n.Binds[i].Src = p
		}
	}
	f := deployTopology(t, topo)
	for _, n := range topo.Nodes {
		if n.Labels["evpnd.role"] == "leaf" && backendOf(n.Name) != "netns" {
			tenants[n.Name] = f.lab.Node(n.Name)
		}
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for leaf, ns := range tenants {
			for _, argv := range [][]string{{"ip", "-d", "link"}, {"bridge", "fdb", "show"}, {"ip", "neigh"}, {"ip", "route"}, {"ip", "-6", "neigh"}, {"ip", "-6", "route"}, {"sysctl", "net.ipv6.conf.all.forwarding"}} {
				out, _ := ns.Exec(context.Background(), argv...)
				t.Logf("%s tenant namespace: %s:\n%s", leaf, strings.Join(argv, " "), out)
			}
		}
	})
	return f, tenants
}

// tenantExec runs argv in a tenant namespace; a failure is fatal.
func tenantExec(t *testing.T, ns *netns.NS, argv ...string) string {
	t.Helper()
	out, err := ns.Exec(t.Context(), argv...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTenantVRF runs two leafs with tenant VRF t1 on the netns backend
// and, as TestTenantVRF/default, on the default backend. On netns, evpnd
// builds the tenant's devices in a namespace of its own (the L2VNIs'
// VXLAN devices moved in, their access ports too). The member L2VNIs
// keep full L2 EVPN in the tenant's namespace: flood lists and remote MACs are installed in
// the tenant namespace, local MACs learned there are advertised, and hosts
// of one subnet on different leafs reach each other. Every leaf presents
// the same anycast gateway (address and MAC), and a host resolves it at
// its own leaf: the ARP exchange does not cross the fabric (the other
// leaf never learns the host's address).
func TestTenantVRF(t *testing.T) {
	t.Run("netns", func(t *testing.T) { tenantVRF(t, "netns") })
	t.Run("default", func(t *testing.T) { tenantVRF(t, "default") })
}

func tenantVRF(t *testing.T, backend string) {
	f, tenants := deployL3(t, backend)
	vteps := map[string]string{"leaf1": "10.0.0.1", "leaf2": "10.0.0.2"}
	other := map[string]string{"leaf1": "leaf2", "leaf2": "leaf1"}

	// The devices: in the tenant namespace, the underlay keeps none.
	tb := eventually(t, convergeTimeout, "tenant devices built", func() error {
		for leaf, ns := range tenants {
			links, err := ns.Exec(t.Context(), "ip", "-br", "link")
			if err != nil {
				return err
			}
			for _, dev := range []string{"vxlan100", "br100", "vxlan200", "br200", "vxlan4001", "br4001", "eth2", "eth3"} {
				if !strings.Contains(links, dev) {
					return fmt.Errorf("%s: %s is not in the tenant namespace:\n%s", leaf, dev, links)
				}
			}
			for br, gw := range map[string]string{"br100": "10.1.0.1/24", "br200": "10.2.0.1/24"} {
				out, err := ns.Exec(t.Context(), "ip", "-br", "addr", "show", "dev", br)
				if err != nil {
					return err
				}
				if !strings.Contains(out, gw) {
					return fmt.Errorf("%s: %s lacks the anycast gateway %s: %s", leaf, br, gw, out)
				}
			}
		}
		return nil
	})
	for leaf, ns := range tenants {
		under := f.exec(leaf, "ip", "-br", "link")
		for _, dev := range []string{"vxlan100", "br100", "eth2"} {
			if backend == "netns" && strings.Contains(under, dev) {
				t.Errorf("%s: %s is still in the underlay namespace:\n%s", leaf, dev, under)
			}
		}
		for _, br := range []string{"br100", "br200"} {
			if mac := tenantExec(t, ns, "cat", "/sys/class/net/"+br+"/address"); strings.TrimSpace(mac) != gatewayMAC {
				t.Errorf("%s: %s has MAC %s, want the gateway MAC %s", leaf, br, strings.TrimSpace(mac), gatewayMAC)
			}
		}
	}
	// evpnd finds the devices where they are (the tenant namespace on
	// netns): none is reported missing.
	for leaf := range tenants {
		if out := f.exec(leaf, "evpnctl", "show", "evpn", "vni"); strings.Contains(out, "MISSING") || !strings.Contains(out, "4001") {
			t.Errorf("%s: evpnctl show evpn vni reports devices missing, or lacks L3VNI 4001:\n%s", leaf, out)
		}
		if out := f.exec(leaf, "evpnctl", "show", "evpn", "vni", "4001"); !strings.Contains(out, "Devices in the kernel: yes") {
			t.Errorf("%s: evpnctl show evpn vni 4001:\n%s", leaf, out)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Flood lists, in the tenant namespace, towards the other leaf.
	t.Logf("tenant devices built in %v", tb.Round(time.Millisecond))
	tf := eventually(t, convergeTimeout, "flood lists in the tenant namespaces", func() error {
		for leaf, ns := range tenants {
			for _, dev := range []string{"vxlan100", "vxlan200"} {
				out, err := ns.Exec(t.Context(), "bridge", "fdb", "show", "dev", dev)
				if err != nil {
					return err
				}
				if !strings.Contains(out, "00:00:00:00:00:00 dst "+vteps[other[leaf]]) {
					return fmt.Errorf("%s %s: no flood entry to %s:\n%s", leaf, dev, vteps[other[leaf]], out)
				}
			}
		}
		return nil
	})

	t.Logf("flood lists in %v", tf.Round(time.Millisecond))

	// The anycast gateway answers at the host's own leaf, before any
	// traffic crosses the fabric.
	for _, c := range []struct{ host, leaf, ip, gw, br string }{
		{"h1", "leaf1", "10.1.0.11", "10.1.0.1", "br100"},
		{"h2", "leaf2", "10.1.0.12", "10.1.0.1", "br100"},
		{"h3", "leaf1", "10.2.0.13", "10.2.0.1", "br200"},
		{"h4", "leaf2", "10.2.0.14", "10.2.0.1", "br200"},
	} {
		f.waitPing(c.host, c.gw)
		if out := f.exec(c.host, "ip", "neigh", "show", c.gw); !strings.Contains(out, "lladdr "+gatewayMAC) {
			t.Errorf("%s resolved its gateway %s as %q, want MAC %s", c.host, c.gw, strings.TrimSpace(out), gatewayMAC)
		}
		if out := tenantExec(t, tenants[c.leaf], "ip", "neigh", "show", c.ip, "dev", c.br); !strings.Contains(out, "lladdr") {
			t.Errorf("%s (its host %s's gateway) has no neighbour entry for %s: %q", c.leaf, c.host, c.ip, out)
		}
		if out := tenantExec(t, tenants[other[c.leaf]], "ip", "neigh", "show", c.ip, "dev", c.br); strings.Contains(out, "lladdr") && !strings.Contains(out, "extern_learn") {
			// (An extern_learn entry is the suppression neighbour of the
			// host's MAC+IP route, not learned from its ARP.)
			t.Errorf("%s learned %s's address %s: the gateway ARP exchange crossed the fabric: %q", other[c.leaf], c.host, c.ip, out)
		}
	}

	// L2 within each member VNI, across the leafs.
	for _, p := range [][2]string{{"h1", "10.1.0.12"}, {"h2", "10.1.0.11"}, {"h3", "10.2.0.14"}, {"h4", "10.2.0.13"}} {
		f.waitPing(p[0], p[1])
		if err := f.ping(t.Context(), p[0], p[1], 3); err != nil {
			t.Errorf("%s -> %s: %v", p[0], p[1], err)
		}
	}
	// ... through remote MACs evpnd learned in one tenant namespace and
	// installed in the other's.
	eventually(t, changeTimeout, "remote MACs in the tenant namespaces", func() error {
		for _, c := range []struct{ leaf, dev, mac, vtep string }{
			{"leaf2", "vxlan100", "02:00:00:00:01:11", "10.0.0.1"},
			{"leaf1", "vxlan100", "02:00:00:00:01:12", "10.0.0.2"},
			{"leaf2", "vxlan200", "02:00:00:00:02:13", "10.0.0.1"},
			{"leaf1", "vxlan200", "02:00:00:00:02:14", "10.0.0.2"},
		} {
			out, err := tenants[c.leaf].Exec(t.Context(), "bridge", "fdb", "show", "dev", c.dev)
			if err != nil {
				return err
			}
			found := false
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, c.mac+" ") && strings.Contains(line, "dst "+c.vtep) && strings.Contains(line, "extern_learn") {
					found = true
				}
			}
			if !found {
				return fmt.Errorf("%s %s: no extern_learn entry for %s to %s:\n%s", c.leaf, c.dev, c.mac, c.vtep, out)
			}
		}
		return nil
	})
	out := f.exec("leaf1", "evpnctl", "show", "evpn", "mac", "vni", "100")
	if !strings.Contains(out, "02:00:00:00:01:11") || !strings.Contains(out, "02:00:00:00:01:12") {
		t.Errorf("leaf1's evpnctl lacks h1 (local) or h2 (remote) in VNI 100:\n%s", out)
	}
	// A fresh kernel read finds both where they are (the tenant
	// namespace's bridge and VXLAN device on netns).
	out = f.exec("leaf1", "evpnctl", "show", "evpn", "mac", "vni", "100", "verify")
	for _, mac := range []string{"02:00:00:00:01:11", "02:00:00:00:01:12"} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			if fs := strings.Fields(line); len(fs) > 1 && fs[1] == mac && slices.Contains(fs, "yes") {
				found = true
			}
		}
		if !found {
			t.Errorf("leaf1's evpnctl show evpn mac vni 100 verify: %s not in the kernel:\n%s", mac, out)
		}
	}

	// Symmetric IRB: hosts in different subnets on different leafs reach
	// each other through the L3VNI, routed at the ingress leaf by the host
	// routes the other leaf's MAC+IP routes give (with its router MAC),
	// and each leaf answers ARP for the other leaf's hosts from the
	// extern_learn neighbours those routes install (suppression).
	for _, p := range [][2]string{{"h1", "10.2.0.14"}, {"h4", "10.1.0.11"}, {"h3", "10.1.0.12"}, {"h2", "10.2.0.13"}} {
		if err := f.pingUntil(t.Context(), p[0], p[1], changeTimeout); err != nil {
			t.Errorf("routed %s -> %s: %v", p[0], p[1], err)
			continue
		}
		if err := f.ping(t.Context(), p[0], p[1], 3); err != nil {
			t.Errorf("routed %s -> %s: %v", p[0], p[1], err)
		}
	}
	rmac := map[string]string{"leaf1": "02:ee:0a:00:00:01", "leaf2": "02:ee:0a:00:00:02"}
	eventually(t, changeTimeout, "host routes, router MACs and suppression neighbours", func() error {
		for _, c := range []struct{ leaf, ip, mac, br string }{
			{"leaf1", "10.1.0.12", "02:00:00:00:01:12", "br100"},
			{"leaf1", "10.2.0.14", "02:00:00:00:02:14", "br200"},
			{"leaf2", "10.1.0.11", "02:00:00:00:01:11", "br100"},
			{"leaf2", "10.2.0.13", "02:00:00:00:02:13", "br200"},
		} {
			ns, o := tenants[c.leaf], other[c.leaf]
			n, err := ns.Exec(t.Context(), "ip", "neigh", "show", c.ip, "dev", c.br)
			if err != nil {
				return err
			}
			if !strings.Contains(n, "lladdr "+c.mac) || !strings.Contains(n, "extern_learn") {
				return fmt.Errorf("%s: no suppression neighbour %s %s on %s: %q", c.leaf, c.ip, c.mac, c.br, n)
			}
			r, err := ns.Exec(t.Context(), "ip", "route", "show", c.ip+"/32")
			if err != nil {
				return err
			}
			if !strings.Contains(r, "via "+vteps[o]+" dev br4001") {
				return fmt.Errorf("%s: no host route %s via %s dev br4001: %q", c.leaf, c.ip, vteps[o], r)
			}
			rn, err := ns.Exec(t.Context(), "ip", "neigh", "show", vteps[o], "dev", "br4001")
			if err != nil {
				return err
			}
			if !strings.Contains(rn, "lladdr "+rmac[o]) {
				return fmt.Errorf("%s: no router MAC %s of %s on br4001: %q", c.leaf, rmac[o], o, rn)
			}
		}
		return nil
	})

	// evpnd's own view of the VRF (the L3 model, read on its loop) holds
	// what was just found in the kernel: the remote hosts' ARP bindings
	// and host routes, and the other leaf's router MAC. Its ARP cache
	// also lists the leaf's own hosts, learned on its SVIs, as local, as
	// vtysh's "show evpn arp-cache vni V" does.
	local := map[string][2]string{ // leaf and VNI: its own host's IP and MAC
		"leaf1 100": {"10.1.0.11", "02:00:00:00:01:11"}, "leaf1 200": {"10.2.0.13", "02:00:00:00:02:13"},
		"leaf2 100": {"10.1.0.12", "02:00:00:00:01:12"}, "leaf2 200": {"10.2.0.14", "02:00:00:00:02:14"},
	}
	for _, c := range []struct{ leaf, vni, ip, mac string }{
		{"leaf1", "100", "10.1.0.12", "02:00:00:00:01:12"},
		{"leaf1", "200", "10.2.0.14", "02:00:00:00:02:14"},
		{"leaf2", "100", "10.1.0.11", "02:00:00:00:01:11"},
		{"leaf2", "200", "10.2.0.13", "02:00:00:00:02:13"},
	} {
		o := other[c.leaf]
		own := local[c.leaf+" "+c.vni]
		// VNI Neighbor Type State MAC Remote-VTEP Seq VRF
		want := map[string][]string{
			c.ip:   {c.vni, c.ip, "remote", "active", c.mac, vteps[o]},
			own[0]: {c.vni, own[0], "local", "active", own[1], "-"},
		}
		var arp string
		eventually(t, changeTimeout, c.leaf+"'s arp-cache of VNI "+c.vni+" with its local and a remote host", func() error {
			arp = f.exec(c.leaf, "evpnctl", "show", "evpn", "arp-cache", "vni", c.vni)
			for ip, w := range want {
				if row := arpCacheRow(arp, ip); !slices.Equal(row, w) {
					return fmt.Errorf("row of %s is %q, want %q:\n%s", ip, row, w, arp)
				}
			}
			return nil
		})
		if !strings.Contains(arp, "1 local, ") {
			t.Errorf("%s: evpnctl show evpn arp-cache vni %s does not count one local host:\n%s", c.leaf, c.vni, arp)
		}
		rt := f.exec(c.leaf, "evpnctl", "show", "ip", "route", "vrf", "t1")
		if !strings.Contains(rt, c.ip+"/32") || !strings.Contains(rt, vteps[o]) {
			t.Errorf("%s: evpnctl show ip route vrf t1 lacks the host route %s/32 via %s:\n%s", c.leaf, c.ip, vteps[o], rt)
		}
		rm := f.exec(c.leaf, "evpnctl", "show", "evpn", "rmac", "vni", "4001")
		if !strings.Contains(rm, rmac[o]) || !strings.Contains(rm, vteps[o]) {
			t.Errorf("%s: evpnctl show evpn rmac vni 4001 lacks %s's router MAC %s:\n%s", c.leaf, o, rmac[o], rm)
		}
	}
	// A watch's initial state holds the same ARP cache: leaf1's host h1
	// local, leaf2's h2 remote through 10.0.0.2.
	watchARP(t, f, "leaf1", map[string]string{"10.1.0.11": "local", "10.1.0.12": "remote 10.0.0.2"})

	// The status lists the VRF with its devices and what evpnd holds for
	// it: each leaf's two hosts (IPv4; IPv6 ones may be there too) local,
	// the other leaf's remote with their host routes, one remote VTEP.
	for leaf := range tenants {
		st := f.exec(leaf, "evpnctl", "status")
		if err := vrfStatusOK(st, "t1", "L3VNI 4001, backend "+backend+", devices in the kernel"); err != nil {
			t.Errorf("%s: evpnctl status: %v:\n%s", leaf, err, st)
		}
	}

	// Device supervision in the tenant namespace: a member's VXLAN device
	// deleted there is built again (created in the underlay, moved in,
	// enslaved) and its flood list and remote MACs written again.
	tenantExec(t, tenants["leaf2"], "ip", "link", "del", "vxlan100")
	took := eventually(t, changeTimeout, "leaf2's vxlan100 rebuilt with its FDB", func() error {
		out, err := tenants["leaf2"].Exec(t.Context(), "bridge", "fdb", "show", "dev", "vxlan100")
		if err != nil {
			return err
		}
		for _, want := range []string{"00:00:00:00:00:00 dst 10.0.0.1", "02:00:00:00:01:11 dst 10.0.0.1"} {
			if !strings.Contains(out, want) {
				return fmt.Errorf("no %q:\n%s", want, out)
			}
		}
		return nil
	})
	t.Logf("vxlan100 rebuilt in leaf2's tenant namespace with its FDB in %v", took.Round(time.Millisecond))
	if err := f.ping(t.Context(), "h2", "10.1.0.11", 3); err != nil {
		t.Errorf("h2 -> h1 after the repair: %v", err)
	}

	// A restart of evpnd (SIGTERM, then start) adopts the tenant's
	// devices as they are: a restart, announced as one, with the FDB kept
	// and same-subnet traffic still flowing.
	if err := f.lab.Stop("leaf2", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if out := tenantExec(t, tenants["leaf2"], "bridge", "fdb", "show", "dev", "vxlan100"); !strings.Contains(out, "02:00:00:00:01:11 dst 10.0.0.1") {
		t.Errorf("leaf2 lost h1's entry when evpnd stopped:\n%s", out)
	}
	if err := f.lab.Start("leaf2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, convergeTimeout, "leaf2 restarted and synced", func() error {
		data, err := os.ReadFile(f.lab.LogPath("leaf2"))
		if err != nil {
			return err
		}
		if !strings.Contains(string(data), "restarting=true") {
			return errors.New("no start with restarting=true logged yet")
		}
		if !strings.Contains(string(data[bytes.LastIndex(data, []byte("evpnd starting")):]), "End-of-RIB received from every established peer") {
			return errors.New("no End-of-RIB from the spine yet")
		}
		return nil
	})
	for _, p := range [][2]string{{"h2", "10.1.0.11"}, {"h4", "10.2.0.13"}} {
		if err := f.ping(t.Context(), p[0], p[1], 3); err != nil {
			t.Errorf("%s -> %s after leaf2's restart: %v", p[0], p[1], err)
		}
	}

	// fib's L3 reconciler runs per VRF (nothing to install until the BGP
	// side feeds it) without failing, and nothing else failed.
	for leaf := range tenants {
		data, err := os.ReadFile(f.lab.LogPath(leaf))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "level=ERROR") || strings.Contains(line, "l3 pass failed") || strings.Contains(line, "not repaired") {
				t.Errorf("%s logged: %s", leaf, line)
			}
		}
	}
}

// watchARP watches leaf with its initial state and checks that the ARP
// rows of VRF t1 in it hold each IP of want as want says: "local", or
// "remote VTEP".
func watchARP(t *testing.T, f *fabric, leaf string, want map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), changeTimeout)
	defer cancel()
	w, err := f.client(leaf).Watch(ctx, &evpndv1.WatchRequest{InitialState: true})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for {
		ev, err := w.Recv()
		if err != nil {
			t.Fatalf("%s: watch ended before its initial state did: %v", leaf, err)
		}
		if ev.GetKind() == evpndv1.ChangeKind_CHANGE_KIND_SYNCED {
			break
		}
		if e := ev.GetArp().GetEntry(); e != nil && ev.GetInitial() && e.GetVrf() == "t1" {
			where := "local"
			if !e.GetLocal() {
				where = "remote " + e.GetVtep()
			}
			got[e.GetIp()] = where
		}
	}
	for ip, where := range want {
		if got[ip] != where {
			t.Errorf("%s: the watch's initial ARP rows hold %s as %q, want %q (all: %v)", leaf, ip, got[ip], where, got)
		}
	}
}

// vrfStatusOK checks the lines of VRF name in evpnctl status's output
// out: the first is first, the second counts at least two local and two
// remote hosts and two host routes, through one remote VTEP.
func vrfStatusOK(out, name, first string) error {
	lines := strings.Split(out, "\n")
	for i, line := range lines {
		if !strings.HasPrefix(strings.TrimSpace(line), "VRF "+name+":") {
			continue
		}
		if !strings.HasSuffix(line, " "+first) || i+1 == len(lines) {
			return fmt.Errorf("VRF %s's line is %q, want it to end with %q", name, line, first)
		}
		var local, remote, hosts int
		n, _ := fmt.Sscanf(strings.TrimSpace(lines[i+1]), "%d local and %d remote hosts, %d host routes", &local, &remote, &hosts)
		if n != 3 || local < 2 || remote < 2 || hosts < 2 || !strings.HasSuffix(lines[i+1], ", 1 remote VTEP") {
			return fmt.Errorf("VRF %s's counts %q: want at least 2 local and 2 remote hosts, 2 host routes, and 1 remote VTEP", name, lines[i+1])
		}
		return nil
	}
	return fmt.Errorf("no line of VRF %s", name)
}

// arpCacheRow is the first six columns of the row of ip in evpnctl's
// "show evpn arp-cache" table out (VNI, Neighbor, Type, State, MAC, Remote
// VTEP), or nil.
func arpCacheRow(out, ip string) []string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 6 && f[1] == ip {
			return f[:6]
		}
	}
	return nil
}

// TestTenantVRFRefused: a VRF that fails while evpnd programs it stops
// the start, and everything that start created, for the VRFs before it
// and the L2VNIs, is removed again: the node's links and the tenant
// namespace are as they were. Here the second VRF's tenant namespace has
// IPv6 disabled, so adding its IPv6 anycast gateway fails after its
// devices, the first VRF's (default backend) and a standalone L2VNI's
// were created. A backend the kernel lacks (vrf without CONFIG_NET_VRF) is
// refused before anything is touched.
func TestTenantVRFRefused(t *testing.T) {
	netns.RequireLinkKind(t, "vxlan")
	netns.RequireLinkKind(t, "bridge")
	bin := evpndPath(t)
	leaf := netns.ForTest(t, "l3bad")
	tenant := netns.ForTest(t, "l3badt")
	for _, argv := range [][]string{
		{"ip", "addr", "add", "10.0.0.9/32", "dev", "lo"},
		{"ip", "link", "set", "lo", "up"},
		{"ip", "link", "add", "acc1", "type", "veth", "peer", "name", "acc1p"},
		{"ip", "link", "add", "acc2", "type", "veth", "peer", "name", "acc2p"},
		{"ip", "link", "add", "acc3", "type", "veth", "peer", "name", "acc3p"},
	} {
		if _, err := leaf.Exec(t.Context(), argv...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tenant.Exec(t.Context(), "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
		t.Fatal(err)
	}
	const base = `router-id: 10.0.0.9
asn: 65000
bgp:
  listen-addresses: [10.0.0.9]
neighbors:
  - address: 10.0.0.254
    asn: 65000
l2vnis:
  - {vni: 100, access-interfaces: [acc1]}
  - {vni: 200, access-interfaces: [acc2]}
  - {vni: 300, access-interfaces: [acc3]}
vrfs:
  - name: t1
    l3vni: 4001
    backend: default
    gateway-mac: "00:00:5e:00:01:01"
    l2vnis: [{vni: 200, gateway-ips: [10.2.0.1/24]}]
`
	lateFail := base + `  - name: t2
    l3vni: 4002
    backend: netns
    namespace: ` + tenant.Name + `
    gateway-mac: "00:00:5e:00:01:01"
    l2vnis: [{vni: 300, gateway-ips: [10.3.0.1/24, "2001:db8:3::1/64"]}]
`
	vrfBackend := base + `  - name: t2
    l3vni: 4002
    backend: vrf
    gateway-mac: "00:00:5e:00:01:01"
    l2vnis: [{vni: 300, gateway-ips: [10.3.0.1/24]}]
`
	cases := []struct {
		name, config string
		want         []string
		skip         func() string
	}{
		{"late failure in the second VRF", lateFail,
			[]string{"set up tenant VRF t2", "undid the", "this start had created were removed again"}, nil},
		{"vrf backend without CONFIG_NET_VRF", vrfBackend, []string{"CONFIG_NET_VRF"}, func() string {
			probe := netns.ForTest(t, "l3vrfprobe")
			if _, err := probe.Exec(t.Context(), "ip", "link", "add", "v", "type", "vrf", "table", "10"); err == nil {
				return "this kernel has VRF devices (CONFIG_NET_VRF): the refusal of a missing backend cannot be shown here"
			}
			return ""
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.skip != nil {
				if why := c.skip(); why != "" {
					t.Skip(why)
				}
			}
			before, tenantBefore := linkSnapshot(t, leaf), linkSnapshot(t, tenant)
			dir := t.TempDir()
			cfg := filepath.Join(dir, "evpnd.yaml")
			if err := os.WriteFile(cfg, []byte(c.config), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := leaf.Command(ctx, bin, "run", "--config", cfg, "--api-socket", filepath.Join(dir, "evpnd.sock"))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			var exit *exec.ExitError
			switch {
			case ctx.Err() != nil:
				t.Fatalf("evpnd run did not exit within 30s (killed); output:\n%.5000s", out.String())
			case err == nil:
				t.Fatalf("evpnd run exited 0, want a failure; output:\n%.5000s", out.String())
			case !errors.As(err, &exit):
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output does not contain %q:\n%.5000s", w, out.String())
				}
			}
			if after := linkSnapshot(t, leaf); after != before {
				t.Errorf("node links changed by a refused start:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if after := linkSnapshot(t, tenant); after != tenantBefore {
				t.Errorf("tenant namespace changed by a refused start:\nbefore:\n%s\nafter:\n%s", tenantBefore, after)
			}
		})
	}
}
