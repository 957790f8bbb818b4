package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/containerlab/lab"
	"github.com/evpnd/evpnd/containerlab/netns"
)

// tenantsFile is the lab of two tenants with the same addresses and MACs
// on three leafs (see its header).
const tenantsFile = "testdata/tenants.clab.yml"

// labTenant is one tenant of the tenants lab.
type labTenant struct {
	name   string            // "A" or "B"
	vrf    string            // VRF name in the configs
	l3vni  uint32            //
	vnis   []uint32          // its L2VNIs: subnet 1 (10.1.0.0/24) and 2 (10.2.0.0/24)
	rmac   map[string]string // leaf → its router MAC for this tenant
	size   int               // ICMP echo payload size marking this tenant's pings
	probes []string          // unused addresses of its subnets that it ARPs for
	placeh string            // namespace placeholder in the configs
}

func (tn *labTenant) ownsVNI(vni uint32) bool { return slices.Contains(tn.vnis, vni) }

// l3Dev is the L3VNI's SVI and VXLAN device.
func (tn *labTenant) l3Dev() (br, vx string) {
	return fmt.Sprintf("br%d", tn.l3vni), fmt.Sprintf("vxlan%d", tn.l3vni)
}

var (
	tenantA = &labTenant{name: "A", vrf: "ta", l3vni: 4001, vnis: []uint32{100, 200}, size: 1111,
		rmac:   map[string]string{"leaf1": "02:ee:0a:00:00:01", "leaf2": "02:ee:0a:00:00:02", "leaf3": "02:ee:0a:00:00:03"},
		probes: []string{"10.1.0.200", "10.2.0.200"}, placeh: "TENANT_A_NS"}
	tenantB = &labTenant{name: "B", vrf: "tb", l3vni: 4002, vnis: []uint32{300, 400}, size: 1222,
		rmac:   map[string]string{"leaf1": "02:bb:00:00:00:01", "leaf2": "02:bb:00:00:00:02", "leaf3": "02:bb:00:00:00:03"},
		probes: []string{"10.1.0.201", "10.2.0.201"}, placeh: "TENANT_B_NS"}
	labTenants = []*labTenant{tenantA, tenantB}
	tenantVTEP = map[string]string{"leaf1": "10.0.0.1", "leaf2": "10.0.0.2", "leaf3": "10.0.0.3"}
)

// tenantHost is a host of the tenants lab with every address it uses:
// the B-only and A-only extra addresses (.99 and .98) prove that a
// tenant's addresses are unreachable from the other tenant.
type tenantHost struct {
	name   string
	tenant *labTenant
	vni    uint32
	mac    string
	ips    []string // first the IPv4 address of its exec, then IPv6, then extras
	extra  string   // IPv4 address the test adds (a tenant-only address), or ""
	subnet int      // 1 or 2
}

var tenantHosts = []*tenantHost{
	{name: "hm", tenant: tenantA, vni: 100, mac: "02:00:00:00:01:50", ips: []string{"10.1.0.50", "2001:db8:1::50"}, subnet: 1},
	{name: "a2", tenant: tenantA, vni: 100, mac: "02:00:00:00:01:12", ips: []string{"10.1.0.12", "2001:db8:1::12", "10.1.0.98"}, extra: "10.1.0.98", subnet: 1},
	{name: "a3", tenant: tenantA, vni: 200, mac: "02:00:00:00:02:13", ips: []string{"10.2.0.13", "2001:db8:2::13", "10.2.0.98"}, extra: "10.2.0.98", subnet: 2},
	{name: "bm", tenant: tenantB, vni: 300, mac: "02:00:00:00:01:50", ips: []string{"10.1.0.50", "2001:db8:1::50"}, subnet: 1},
	{name: "b2", tenant: tenantB, vni: 300, mac: "02:00:00:00:01:12", ips: []string{"10.1.0.12", "2001:db8:1::12", "10.1.0.99"}, extra: "10.1.0.99", subnet: 1},
	{name: "b3", tenant: tenantB, vni: 400, mac: "02:00:00:00:02:13", ips: []string{"10.2.0.13", "2001:db8:2::13", "10.2.0.99"}, extra: "10.2.0.99", subnet: 2},
}

func (h *tenantHost) gateways() []string {
	return []string{fmt.Sprintf("10.%d.0.1", h.subnet), fmt.Sprintf("2001:db8:%d::1", h.subnet)}
}

// tenantsLab is the deployed lab with its tenant namespaces.
type tenantsLab struct {
	*fabric
	ns       map[*labTenant]map[string]*netns.NS // tenant → leaf → namespace
	counters bool                                // the hosts' frame counters are installed
}

// deployTenants deploys the tenants lab. As deployL3 does, it creates
// each leaf's tenant namespaces (named for the run, in place of the
// configs' placeholders) before the lab starts; they are removed after
// the lab is destroyed.
func deployTenants(t *testing.T) *tenantsLab {
	t.Helper()
	requireKernel(t)
	topo, err := lab.Load(tenantsFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tl := &tenantsLab{ns: map[*labTenant]map[string]*netns.NS{}}
	for _, tn := range labTenants {
		tl.ns[tn] = map[string]*netns.NS{}
	}
	for _, n := range topo.Nodes {
		if n.Labels["evpnd.role"] != "leaf" {
			continue
		}
		for i, b := range n.Binds {
			if b.Dst != "/etc/evpnd/evpnd.yaml" {
				continue
			}
			data, err := os.ReadFile(b.Src)
			if err != nil {
				t.Fatal(err)
			}
			for _, tn := range labTenants {
				ns := netns.ForTest(t, "tn"+tn.name+n.Name)
				tl.ns[tn][n.Name] = ns
				if !bytes.Contains(data, []byte(tn.placeh)) {
					t.Fatalf("%s: no placeholder %s", b.Src, tn.placeh)
				}
				data = bytes.ReplaceAll(data, []byte(tn.placeh), []byte(ns.Name))
			}
			p := filepath.Join(dir, n.Name+".yaml")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			n.Binds[i].Src = p
		}
	}
	tl.fabric = deployTopology(t, topo)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, tn := range labTenants {
			for _, leaf := range slices.Sorted(maps.Keys(tl.ns[tn])) {
				for _, argv := range [][]string{{"ip", "-br", "link"}, {"bridge", "fdb", "show"}, {"ip", "neigh"}, {"ip", "route"}, {"ip", "-6", "neigh"}, {"ip", "-6", "route"}} {
					out, _ := tl.ns[tn][leaf].Exec(context.Background(), argv...)
					t.Logf("%s tenant %s namespace: %s:\n%s", leaf, tn.name, strings.Join(argv, " "), out)
				}
			}
		}
	})
	return tl
}

// markedPing sends count echo requests of tenant tn's marked size from a
// node to ip and returns an error unless every one is answered.
func (tl *tenantsLab) markedPing(ctx context.Context, tn *labTenant, from, ip string, count int, extra ...string) error {
	argv := append([]string{"ping", "-n", "-c", fmt.Sprint(count), "-i", "0.2", "-W", "1", "-s", fmt.Sprint(tn.size)}, extra...)
	out, err := tl.lab.Exec(ctx, from, append(argv, ip)...)
	if err != nil {
		return err
	}
	r, err := parsePing(out)
	if err != nil {
		return err
	}
	if r.Received < count {
		return fmt.Errorf("ping %s -> %s: %d of %d answered", from, ip, r.Received, count)
	}
	return nil
}

// markedPingUntil is pingUntil with tenant tn's marked size.
func (tl *tenantsLab) markedPingUntil(ctx context.Context, tn *labTenant, from, ip string, timeout time.Duration, extra ...string) error {
	deadline := time.Now().Add(timeout)
	for {
		err := tl.markedPing(ctx, tn, from, ip, 1, extra...)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %v: %w", timeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// unreachable fails the test if a marked ping from a node to ip gets any
// answer. It may run in its own goroutine.
func (tl *tenantsLab) unreachable(t *testing.T, tn *labTenant, from, ip string) {
	t.Helper()
	out, _ := tl.lab.Exec(t.Context(), from, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "-s", fmt.Sprint(tn.size), ip)
	r, err := parsePing(out)
	if err != nil {
		// ping prints no statistics when it cannot send at all
		// ("Network is unreachable"): nothing was answered either.
		if !strings.Contains(out, "unreachable") {
			t.Errorf("%s -> %s: %v", from, ip, err)
		}
		return
	}
	if r.Received > 0 {
		t.Errorf("tenant %s's %s reached %s, an address of the other tenant only: %d of %d answered", tn.name, from, ip, r.Received, r.Transmitted)
	}
}

// Frame counters. Every host counts, on the ingress of its links, the
// frames marked as each tenant's: echo requests and replies of the
// tenant's ping size (IPv4 and IPv6), and ARP requests for the tenant's
// probe addresses. A host must never count the other tenant's.
func (tl *tenantsLab) installCounters(t *testing.T) {
	t.Helper()
	for _, h := range tenantHosts {
		var b strings.Builder
		b.WriteString("add table netdev tenants\n")
		for _, tn := range labTenants {
			fmt.Fprintf(&b, "add counter netdev tenants ping%s\nadd counter netdev tenants arp%s\n", tn.name, tn.name)
		}
		ifaces := []string{"eth1"}
		if h.name == "hm" {
			ifaces = append(ifaces, "eth2")
		}
		for _, ifc := range ifaces {
			fmt.Fprintf(&b, "add chain netdev tenants in_%s { type filter hook ingress device %s priority 0; }\n", ifc, ifc)
			for _, tn := range labTenants {
				fmt.Fprintf(&b, "add rule netdev tenants in_%s ip length %d counter name ping%s\n", ifc, 20+8+tn.size, tn.name)
				fmt.Fprintf(&b, "add rule netdev tenants in_%s ip6 length %d counter name ping%s\n", ifc, 8+tn.size, tn.name)
				fmt.Fprintf(&b, "add rule netdev tenants in_%s arp daddr ip { %s } counter name arp%s\n", ifc, strings.Join(tn.probes, ", "), tn.name)
			}
		}
		f := filepath.Join(t.TempDir(), h.name+".nft")
		if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		tl.exec(h.name, "nft", "-f", f)
	}
}

// counter reads a named counter of a host's frame counters.
func (tl *tenantsLab) counter(t *testing.T, host, name string) int {
	t.Helper()
	out := tl.exec(host, "nft", "-j", "list", "counter", "netdev", "tenants", name)
	var v struct {
		Nftables []struct {
			Counter *struct {
				Packets int `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%s: nft counter %s: %v: %s", host, name, err, out)
	}
	for _, e := range v.Nftables {
		if e.Counter != nil {
			return e.Counter.Packets
		}
	}
	t.Fatalf("%s: no counter %s in %s", host, name, out)
	return 0
}

// use makes the lab's helpers report to t (a subtest) until the
// returned function restores the parent.
func (tl *tenantsLab) use(t *testing.T) func() {
	parent := tl.fabric.t
	tl.fabric.t = t
	return func() { tl.fabric.t = parent }
}

// hostPort is the leaf port a host's link to leaf is plugged into.
func hostPort(m *model, host, leaf string) string {
	for _, l := range m.host(host).Links {
		if l.At.Leaf == leaf {
			return l.At.Port
		}
	}
	return ""
}

// tenantPlace is where each host is: host name → leaf.
type tenantPlace map[string]string

// checkTenantState compares the kernel state of tenant tn's namespace on
// leaf with what the hosts' placement implies, exactly for what evpnd
// owns:
//   - the FDB: remote MACs of the tenant's L2VNIs (VXLAN and bridge
//     entries, extern_learn) and flood entries, as the fabric model wants,
//     local MACs on their access ports, and on the L3VNI's VXLAN device
//     the router MAC of each leaf where a host of the tenant is, nothing
//     else;
//   - the host routes (/32, /128) on the L3VNI's SVI, via the VTEP of the
//     host's leaf, for every remote host address, nothing else;
//   - the suppression neighbours (extern_learn) on the member SVIs, one
//     per remote host address;
//   - the router MAC neighbours on the L3VNI's SVI, one per remote leaf
//     with a host of the tenant, with that leaf's router MAC for this
//     tenant;
//   - the L3VNI's SVI has this leaf's router MAC for the tenant.
func (tl *tenantsLab) checkTenantState(ctx context.Context, tn *labTenant, leaf string, at tenantPlace) error {
	ns := tl.ns[tn][leaf]
	br, vx := tn.l3Dev()
	var errs []error

	// FDB.
	out, err := ns.Exec(ctx, "bridge", "-j", "fdb", "show")
	if err != nil {
		return err
	}
	es, err := parseFDB([]byte(out))
	if err != nil {
		return err
	}
	lf := tl.m.leaf(leaf)
	mine := &leafNode{Name: lf.Name, VTEP: lf.VTEP, VNIs: map[uint32]configs.L2VNI{}}
	for vni, v := range lf.VNIs {
		if tn.ownsVNI(vni) {
			mine.VNIs[vni] = v
		}
	}
	pl := placement{}
	for _, h := range tenantHosts {
		if h.tenant != tn {
			continue
		}
		for _, l := range tl.m.host(h.name).Links {
			if l.At.Leaf == at[h.name] {
				pl[h.name] = l.At
			}
		}
	}
	want := tl.m.want(leaf, pl)
	for k := range want.Owned {
		dev, _, _ := strings.Cut(k, " ")
		if !mine.vxlanDevices()[dev] {
			delete(want.Owned, k)
		}
	}
	for k := range want.Local {
		if !strings.Contains(k, " master ") || !func() bool {
			for _, v := range mine.VNIs {
				if strings.HasSuffix(k, " master "+v.Bridge) {
					return true
				}
			}
			return false
		}() {
			delete(want.Local, k)
		}
	}
	remoteLeafs := map[string]bool{}
	for _, h := range tenantHosts {
		if h.tenant == tn && at[h.name] != leaf {
			remoteLeafs[at[h.name]] = true
		}
	}
	for o := range remoteLeafs {
		want.Owned[fdbEntry{MAC: tn.rmac[o], Ifname: vx, Dst: tenantVTEP[o], Flags: []string{"self", "extern_learn"}}.key()] = true
		want.Owned[fdbEntry{MAC: tn.rmac[o], Ifname: vx, Master: br, Flags: []string{"extern_learn"}}.key()] = true
	}
	mine.VNIs[tn.l3vni] = configs.L2VNI{VXLANDevice: vx, Bridge: br}
	if d := diff(observed(es, mine), want); d != "" {
		errs = append(errs, fmt.Errorf("%s tenant %s FDB:%s", leaf, tn.name, d))
	}

	// Host routes via the L3VNI's SVI.
	wantRoutes := map[string]bool{}
	wantNeigh := map[string]bool{}
	for _, h := range tenantHosts {
		if h.tenant != tn || at[h.name] == leaf {
			continue
		}
		for _, ip := range h.ips {
			a := netip.MustParseAddr(ip)
			wantRoutes[fmt.Sprintf("%s/%d via %s", ip, a.BitLen(), tenantVTEP[at[h.name]])] = true
			wantNeigh[fmt.Sprintf("br%d %s %s", h.vni, ip, h.mac)] = true
		}
	}
	for o := range remoteLeafs {
		wantNeigh[fmt.Sprintf("%s %s %s", br, tenantVTEP[o], tn.rmac[o])] = true
	}
	gotRoutes := map[string]bool{}
	for _, fam := range []string{"-4", "-6"} {
		out, err := ns.Exec(ctx, "ip", "-j", fam, "route", "show", "dev", br)
		if err != nil {
			return err
		}
		var rs []struct {
			Dst     string `json:"dst"`
			Gateway string `json:"gateway"`
		}
		if err := json.Unmarshal([]byte(out), &rs); err != nil {
			return fmt.Errorf("ip -j route: %w: %s", err, out)
		}
		for _, r := range rs {
			if r.Gateway == "" {
				continue // the SVI's own link-local and connected routes
			}
			dst := r.Dst
			if !strings.Contains(dst, "/") {
				dst += map[string]string{"-4": "/32", "-6": "/128"}[fam]
			}
			gw := r.Gateway
			if a, err := netip.ParseAddr(gw); err == nil {
				gw = a.Unmap().String()
			}
			gotRoutes[dst+" via "+gw] = true
		}
	}
	if d := setDiff(gotRoutes, wantRoutes); d != "" {
		errs = append(errs, fmt.Errorf("%s tenant %s routes via %s:%s", leaf, tn.name, br, d))
	}

	// Neighbours marked extern_learn, on the member SVIs and the L3VNI's.
	gotNeigh := map[string]bool{}
	for _, dev := range append([]string{br}, func() (bs []string) {
		for _, v := range tn.vnis {
			bs = append(bs, fmt.Sprintf("br%d", v))
		}
		return
	}()...) {
		out, err := ns.Exec(ctx, "ip", "-j", "neigh", "show", "dev", dev)
		if err != nil {
			return err
		}
		// iproute2 prints the flag as a key: "extern_learn":null.
		var ns []map[string]any
		if err := json.Unmarshal([]byte(out), &ns); err != nil {
			return fmt.Errorf("ip -j neigh: %w: %s", err, out)
		}
		for _, n := range ns {
			if _, ok := n["extern_learn"]; ok {
				dst, _ := n["dst"].(string)
				if a, err := netip.ParseAddr(dst); err == nil {
					dst = a.Unmap().String()
				}
				gotNeigh[fmt.Sprintf("%s %s %v", dev, dst, n["lladdr"])] = true
			}
		}
	}
	if d := setDiff(gotNeigh, wantNeigh); d != "" {
		errs = append(errs, fmt.Errorf("%s tenant %s extern_learn neighbours:%s", leaf, tn.name, d))
	}

	// The L3VNI's SVI carries this leaf's router MAC of the tenant.
	if mac, err := ns.Exec(ctx, "cat", "/sys/class/net/"+br+"/address"); err != nil {
		return err
	} else if strings.TrimSpace(mac) != tn.rmac[leaf] {
		errs = append(errs, fmt.Errorf("%s tenant %s: %s has MAC %s, want the router MAC %s", leaf, tn.name, br, strings.TrimSpace(mac), tn.rmac[leaf]))
	}
	return errors.Join(errs...)
}

// setDiff explains how got differs from want; "" when equal.
func setDiff(got, want map[string]bool) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if !got[k] {
			fmt.Fprintf(&b, "\n  missing:    %s", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if !want[k] {
			fmt.Fprintf(&b, "\n  unexpected: %s", k)
		}
	}
	return b.String()
}

// waitTenantState waits until checkTenantState holds on every leaf for
// both tenants and returns how long that took.
func (tl *tenantsLab) waitTenantState(t *testing.T, what string, at tenantPlace) time.Duration {
	t.Helper()
	return eventually(t, changeTimeout, what, func() error {
		var errs []error
		for _, tn := range labTenants {
			for _, leaf := range []string{"leaf1", "leaf2", "leaf3"} {
				errs = append(errs, tl.checkTenantState(t.Context(), tn, leaf, at))
			}
		}
		return errors.Join(errs...)
	})
}

// ctlRows runs an evpnctl show command on a node and returns the fields
// of its table rows whose first field is want0.
func (tl *tenantsLab) ctlRows(node, want0 string, argv ...string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(tl.exec(node, append([]string{"evpnctl"}, argv...)...), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == want0 {
			rows = append(rows, f)
		}
	}
	return rows
}

// checkTenantViews compares evpnd's own views on each leaf (evpnctl show
// evpn mac vni V, show evpn arp-cache vni V, show ip route vrf NAME, show
// evpn rmac vni L) with
// the placement: the same MAC and IP in two tenants' VNIs are distinct
// entries, each where its own host is.
func (tl *tenantsLab) checkTenantViews(ctx context.Context, at tenantPlace) error {
	var errs []error
	for _, leaf := range []string{"leaf1", "leaf2", "leaf3"} {
		for _, tn := range labTenants {
			for _, vni := range tn.vnis {
				v := fmt.Sprint(vni)
				got := map[string]bool{}
				for _, r := range tl.ctlRows(leaf, v, "show", "evpn", "mac", "vni", v) {
					if len(r) >= 4 && r[1] != gatewayMAC {
						got[strings.Join(r[1:4], " ")] = true
					}
				}
				want := map[string]bool{}
				for _, h := range tenantHosts {
					if h.vni != vni {
						continue
					}
					if at[h.name] == leaf {
						want[h.mac+" local "+hostPort(tl.m, h.name, leaf)] = true
					} else {
						want[h.mac+" remote "+tenantVTEP[at[h.name]]] = true
					}
				}
				if d := setDiff(got, want); d != "" {
					errs = append(errs, fmt.Errorf("%s: evpnctl show evpn mac vni %s:%s", leaf, v, d))
				}
				// Columns: VNI Neighbor Type State MAC Remote-VTEP; every
				// row active (no host's MAC is away once the views
				// converged).
				got = map[string]bool{}
				for _, r := range tl.ctlRows(leaf, v, "show", "evpn", "arp-cache", "vni", v) {
					if len(r) >= 6 {
						got[r[1]+" "+r[2]+" "+r[4]+" "+r[5]+" "+r[3]] = true
					}
				}
				want = map[string]bool{}
				for _, h := range tenantHosts {
					if h.vni != vni {
						continue
					}
					for _, ip := range h.ips {
						if at[h.name] == leaf {
							want[ip+" local "+h.mac+" - active"] = true
						} else {
							want[ip+" remote "+h.mac+" "+tenantVTEP[at[h.name]]+" active"] = true
						}
					}
				}
				if d := setDiff(got, want); d != "" {
					errs = append(errs, fmt.Errorf("%s: evpnctl show evpn arp-cache vni %s:%s", leaf, v, d))
				}
			}
			// show ip route vrf: the remote hosts' routes, and no type-5
			// route (every subnet is connected on every leaf).
			got := map[string]bool{}
			for _, line := range strings.Split(tl.exec(leaf, "evpnctl", "show", "ip", "route", "vrf", tn.vrf), "\n") {
				if f := strings.Fields(line); len(f) >= 3 && (f[0] == "H" || f[0] == "P") && f[2] == "via" {
					got[f[0]+" "+f[1]+" via "+strings.TrimSuffix(f[3], ",")] = true
				}
			}
			want := map[string]bool{}
			for _, h := range tenantHosts {
				if h.tenant == tn && at[h.name] != leaf {
					for _, ip := range h.ips {
						want[fmt.Sprintf("H %s/%d via %s", ip, netip.MustParseAddr(ip).BitLen(), tenantVTEP[at[h.name]])] = true
					}
				}
			}
			if d := setDiff(got, want); d != "" {
				errs = append(errs, fmt.Errorf("%s: evpnctl show ip route vrf %s:%s", leaf, tn.vrf, d))
			}
			l := fmt.Sprint(tn.l3vni)
			got = map[string]bool{}
			for _, r := range tl.ctlRows(leaf, l, "show", "evpn", "rmac", "vni", l) {
				if len(r) >= 4 {
					got[strings.Join(r[1:4], " ")] = true
				}
			}
			want = map[string]bool{}
			for _, h := range tenantHosts {
				if h.tenant == tn && at[h.name] != leaf {
					want[tn.vrf+" "+tn.rmac[at[h.name]]+" "+tenantVTEP[at[h.name]]] = true
				}
			}
			if d := setDiff(got, want); d != "" {
				errs = append(errs, fmt.Errorf("%s: evpnctl show evpn rmac vni %s:%s", leaf, l, d))
			}
		}
	}
	return errors.Join(errs...)
}

// TestTwoTenants runs two tenants, A (VRF ta, L3VNI 4001, L2VNIs 100 and
// 200) and B (VRF tb, L3VNI 4002, L2VNIs 300 and 400), on the same three
// leafs on the netns backend, with the same subnets, gateways, host
// addresses and host MACs (testdata/tenants.clab.yml). One deployment
// serves both subtests:
//   - isolation: every host reaches its gateway, its own tenant's hosts in
//     the same subnet (bridged, across leafs) and in the other subnet
//     (routed by symmetric IRB), over IPv4 and IPv6; no host reaches an
//     address only the other tenant has; frame counters on every host
//     show that no frame of the other tenant (its marked pings, its ARP
//     floods) ever arrived; each leaf's tenant namespaces hold exactly
//     that tenant's remote MACs, host routes, neighbours and router MACs;
//     and evpnd's views keep the twins' identical MACs and addresses
//     apart per VNI;
//   - migration: hm, a VM of tenant A, moves from leaf1 to leaf3 with its
//     MAC and addresses while its twin bm of tenant B stays at leaf1. Its
//     gateway answers at once, routed traffic to it from a3 (leaf2, other
//     subnet) resumes (the outage is logged), B's traffic to bm loses
//     nothing, and every leaf's state is exact again: nothing stale of hm
//     at leaf1 on any leaf (host route, neighbour, router MAC, remote
//     MAC), nothing of tenant A's move in tenant B. Then hm moves back to
//     leaf1, checked the same way.
func TestTwoTenants(t *testing.T) {
	netns.RequireRoot(t)
	start := time.Now()
	tl := deployTenants(t)
	at := tenantPlace{"hm": "leaf1", "a2": "leaf3", "a3": "leaf2", "bm": "leaf1", "b2": "leaf3", "b3": "leaf2"}

	// Each tenant's devices in its namespace only.
	took := eventually(t, convergeTimeout, "tenant devices built", func() error {
		for _, tn := range labTenants {
			for leaf, ns := range tl.ns[tn] {
				links, err := ns.Exec(t.Context(), "ip", "-br", "link")
				if err != nil {
					return err
				}
				for _, o := range labTenants {
					devs := []string{fmt.Sprintf("br%d", o.l3vni), fmt.Sprintf("vxlan%d", o.l3vni)}
					for _, v := range o.vnis {
						devs = append(devs, fmt.Sprintf("br%d", v), fmt.Sprintf("vxlan%d", v))
					}
					for _, dev := range devs {
						if has := slices.ContainsFunc(strings.Split(links, "\n"), func(l string) bool {
							f := strings.Fields(l)
							return len(f) > 0 && strings.Split(f[0], "@")[0] == dev
						}); has != (o == tn) {
							return fmt.Errorf("%s tenant %s namespace: %s present=%v:\n%s", leaf, tn.name, dev, has, links)
						}
					}
				}
			}
		}
		return nil
	})
	t.Logf("both tenants' devices built on the three leafs in %v", took.Round(time.Millisecond))
	if _, err := exec.LookPath("nft"); err != nil {
		t.Logf("no nft (nftables) on PATH: the hosts' frame counters are not checked, the rest is: %v", err)
	} else {
		tl.installCounters(t)
		tl.counters = true
	}

	// Every host speaks first to its gateway, from each of its addresses,
	// as hosts do, and resolves it at its own leaf to the gateway MAC.
	for _, h := range tenantHosts {
		if h.extra != "" {
			tl.exec(h.name, "ip", "addr", "add", h.extra+"/24", "dev", "eth1")
		}
	}
	for _, h := range tenantHosts {
		for _, gw := range h.gateways() {
			tl.waitPing(h.name, gw)
			if out := tl.exec(h.name, "ip", "neigh", "show", gw); !strings.Contains(out, "lladdr "+gatewayMAC) {
				t.Errorf("%s resolved its gateway %s as %q, want MAC %s", h.name, gw, strings.TrimSpace(out), gatewayMAC)
			}
		}
		if h.extra != "" {
			if err := tl.markedPingUntil(t.Context(), h.tenant, h.name, h.gateways()[0], changeTimeout, "-I", h.extra); err != nil {
				t.Fatalf("%s -> its gateway from %s: %v", h.name, h.extra, err)
			}
		}
	}
	took = tl.waitTenantState(t, "both tenants' state on every leaf", at)
	t.Logf("both tenants' kernel state exact on every leaf %v after the gateway pings (%v after the start)", took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	t.Run("isolation", func(t *testing.T) { tenantsIsolation(t, tl, at) })
	t.Run("migration", func(t *testing.T) { tenantsMigration(t, tl, at) })
}

func tenantsIsolation(t *testing.T, tl *tenantsLab, at tenantPlace) {
	defer tl.use(t)()
	start := time.Now()
	// Reachability within each tenant: bridged (same subnet, leaf1 and
	// leaf3), routed (leaf1 and leaf3 to leaf2 and back), IPv4 and IPv6,
	// and its tenant-only addresses.
	for _, tn := range labTenants {
		m, s2, s3 := "hm", "a2", "a3"
		if tn == tenantB {
			m, s2, s3 = "bm", "b2", "b3"
		}
		for _, p := range []struct{ from, to, how string }{
			{m, "10.1.0.12", "bridged"}, {s2, "10.1.0.50", "bridged"}, {m, "2001:db8:1::12", "bridged"},
			{m, "10.2.0.13", "routed"}, {s3, "10.1.0.50", "routed"}, {s2, "10.2.0.13", "routed"}, {s3, "10.1.0.12", "routed"},
			{m, "2001:db8:2::13", "routed"}, {s3, "2001:db8:1::12", "routed"},
		} {
			if err := tl.markedPingUntil(t.Context(), tn, p.from, p.to, changeTimeout); err != nil {
				t.Errorf("tenant %s %s %s -> %s: %v", tn.name, p.how, p.from, p.to, err)
				continue
			}
			if err := tl.markedPing(t.Context(), tn, p.from, p.to, 3); err != nil {
				t.Errorf("tenant %s %s %s -> %s: %v", tn.name, p.how, p.from, p.to, err)
			}
		}
		for _, h := range tenantHosts {
			if h.tenant == tn && h.extra != "" {
				for _, from := range []string{m, s3} {
					if err := tl.markedPing(t.Context(), tn, from, h.extra, 2); err != nil {
						t.Errorf("tenant %s %s -> its own %s (%s): %v", tn.name, from, h.extra, h.name, err)
					}
				}
			}
		}
	}
	// No host reaches the other tenant's own addresses, bridged or routed
	// (these pings wait for answers that do not come: run together).
	var wg sync.WaitGroup
	for _, h := range tenantHosts {
		if h.extra == "" {
			continue
		}
		for _, from := range tenantHosts {
			if from.tenant != h.tenant && (from.name == "hm" || from.name == "bm" || from.subnet != h.subnet) {
				wg.Go(func() { tl.unreachable(t, from.tenant, from.name, h.extra) })
			}
		}
	}
	// ARP floods: a host asking for an unused address (bridged) and a
	// leaf asking for one on behalf of a routed packet flood the
	// tenant's VNI to every leaf.
	for _, tn := range labTenants {
		m, s3 := "hm", "a3"
		if tn == tenantB {
			m, s3 = "bm", "b3"
		}
		for _, p := range [][2]string{{m, tn.probes[0]}, {s3, tn.probes[0]}, {m, tn.probes[1]}} {
			wg.Go(func() { _, _ = tl.lab.Exec(t.Context(), p[0], "ping", "-n", "-c", "1", "-W", "1", p[1]) })
		}
	}
	wg.Wait()
	// The counters: every host saw its own tenant's pings, the VNI 100/300
	// hosts their tenant's ARP floods, and none anything of the other
	// tenant.
	if tl.counters {
		tl.checkCounters(t)
	}
	// The kernels after all that traffic, and evpnd's views.
	tl.waitTenantState(t, "both tenants' state after the traffic", at)
	eventually(t, changeTimeout, "evpnctl views per VNI", func() error { return tl.checkTenantViews(t.Context(), at) })
	t.Logf("isolation checked in %v", time.Since(start).Round(time.Millisecond))
}

// checkCounters checks the hosts' frame counters (see installCounters):
// each host counted its own tenant's pings (and, in subnet 1, ARP
// floods), none of the other tenant's.
func (tl *tenantsLab) checkCounters(t *testing.T) {
	t.Helper()
	eventually(t, changeTimeout, "frame counters", func() error {
		var errs []error
		for _, h := range tenantHosts {
			for _, tn := range labTenants {
				p, a := tl.counter(t, h.name, "ping"+tn.name), tl.counter(t, h.name, "arp"+tn.name)
				switch {
				case tn != h.tenant && (p > 0 || a > 0):
					errs = append(errs, fmt.Errorf("%s (tenant %s) received %d pings and %d ARP requests of tenant %s", h.name, h.tenant.name, p, a, tn.name))
				case tn == h.tenant && p == 0:
					errs = append(errs, fmt.Errorf("%s counted none of its tenant's pings: the counters do not work", h.name))
				case tn == h.tenant && h.subnet == 1 && a == 0:
					errs = append(errs, fmt.Errorf("%s counted none of its tenant's ARP floods", h.name))
				}
			}
		}
		return errors.Join(errs...)
	})
	for _, h := range tenantHosts {
		t.Logf("%s (tenant %s): %d own pings, %d own ARP floods, none of the other tenant", h.name, h.tenant.name, tl.counter(t, h.name, "ping"+h.tenant.name), tl.counter(t, h.name, "arp"+h.tenant.name))
	}
}

func tenantsMigration(t *testing.T, tl *tenantsLab, at tenantPlace) {
	defer tl.use(t)()
	tl.waitTenantState(t, "hm at leaf1", at)
	// hm's link eth1 goes to leaf1, eth2 to leaf3.
	at = tl.moveHM(t, at, "eth1", "eth2", "leaf3")
	// And back, as a VM migrated twice: its MAC's sequence number rises
	// again and leaf1 takes it back from leaf3.
	tl.moveHM(t, at, "eth2", "eth1", "leaf1")
	for _, leaf := range []string{"leaf1", "leaf2", "leaf3"} {
		data, err := os.ReadFile(tl.lab.LogPath(leaf))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "level=ERROR") || strings.Contains(line, "not installed") || strings.Contains(line, "not repaired") {
				t.Errorf("%s logged: %s", leaf, line)
			}
		}
	}
}

// moveHM migrates hm from its link from to its link to (wired to leaf
// dst) with its MAC and addresses, as TestTwoTenants/migration describes,
// and returns the new placement.
func (tl *tenantsLab) moveHM(t *testing.T, at tenantPlace, from, to, dst string) tenantPlace {
	t.Helper()
	hm := tenantHosts[0]
	src := at["hm"]
	// Routed traffic to hm from leaf2's a3 (tenant A) and to its twin bm
	// from b3 (tenant B), in the background across the move.
	ping := func(from, ip string, size int) *background {
		return tl.start(from, "ping", "-D", "-n", "-i", "0.05", "-s", fmt.Sprint(size), ip)
	}
	pa, pb := ping("a3", "10.1.0.50", tenantA.size), ping("b3", "10.1.0.50", tenantB.size)
	pingsAnswered(t, map[string]*background{"a3 -> hm": pa, "b3 -> bm": pb})

	out := tl.exec("hm", "sh", "-ec", "ip link set "+from+" down\n"+
		"date +%s.%N\n"+
		"ip addr flush dev "+from+"\n"+
		"ip link set "+from+" address 02:00:00:00:01:51\n"+
		"ip link set "+to+" address "+hm.mac+"\n"+
		"ip addr add 10.1.0.50/24 dev "+to+"\n"+
		"ip addr add 2001:db8:1::50/64 dev "+to+" nodad\n"+
		"ip link set "+to+" up\n"+
		"ip route replace default via 10.1.0.1 dev "+to+"\n"+
		"ip -6 route replace default via 2001:db8:1::1 dev "+to+"\n")
	moved, err := parseUnixTime(out)
	if err != nil {
		t.Fatalf("move script: %v", err)
	}
	// The new port forwards once the kernel's link watch has seen its
	// carrier, which it may defer by up to a second after any other
	// link's change on the machine: the VM's new port being ready is not
	// evpnd's part, so the gateway is tried from then on.
	port := hostPort(tl.m, "hm", dst)
	ready := eventually(t, changeTimeout, dst+"'s port "+port+" forwarding", func() error {
		st, err := tl.ns[tenantA][dst].Exec(t.Context(), "cat", "/sys/class/net/"+port+"/brport/state")
		if err != nil {
			return err
		}
		if strings.TrimSpace(st) != "3" { // BR_STATE_FORWARDING
			return fmt.Errorf("state %s", strings.TrimSpace(st))
		}
		return nil
	})
	// The gateway answers at once at the new leaf: same address, same MAC.
	// The first echo request, sent within milliseconds of the port
	// forwarding, sometimes gets no reply: the new leaf's kernel may still
	// route to hm through the old leaf until evpnd has seen hm's MAC
	// there (tens of milliseconds). That is logged; a second one a second
	// later must be answered.
	if err := tl.markedPing(t.Context(), tenantA, "hm", "10.1.0.1", 1); err != nil {
		t.Logf("%s -> %s: the first echo request to hm's gateway once the port forwards got no reply: %v", src, dst, err)
		if err := tl.markedPing(t.Context(), tenantA, "hm", "10.1.0.1", 1); err != nil {
			t.Fatalf("%s -> %s: hm -> its gateway, the second echo request after the move: %v", src, dst, err)
		}
	}
	t.Logf("%s -> %s: %s's port forwarding %v after the move, hm's gateway answered there %v after the move",
		src, dst, dst, ready.Round(time.Millisecond), time.Since(moved).Round(time.Millisecond))
	if o := tl.exec("hm", "ip", "neigh", "show", "10.1.0.1"); !strings.Contains(o, "lladdr "+gatewayMAC) {
		t.Errorf("hm resolved its gateway as %q after the move, want %s", strings.TrimSpace(o), gatewayMAC)
	}
	if err := tl.markedPingUntil(t.Context(), tenantA, "hm", "2001:db8:1::1", 2*time.Second); err != nil {
		t.Errorf("hm -> its IPv6 gateway after the move: %v", err)
	}

	// Routed traffic to hm resumes.
	eventually(t, changeTimeout, "a3's routed pings to hm answered again", func() error {
		if _, ok := (pingRun{Replies: parseReplies(pa.output())}).firstReplyAfter(moved); !ok {
			return errors.New("no reply since the move")
		}
		return nil
	})
	at = maps.Clone(at)
	at["hm"] = dst
	tl.waitTenantState(t, "hm at "+dst+", nothing of it left at "+src+", tenant B unchanged", at)
	t.Logf("%s -> %s: every leaf's kernel state exact %v after the move", src, dst, time.Since(moved).Round(time.Millisecond))
	eventually(t, changeTimeout, "evpnctl views after the move", func() error { return tl.checkTenantViews(t.Context(), at) })
	if err := tl.markedPingUntil(t.Context(), tenantA, "a3", "2001:db8:1::50", changeTimeout); err != nil {
		t.Errorf("routed a3 -> hm over IPv6 after the move: %v", err)
	}

	pa.stop(t)
	r, err := parsePing(pa.output())
	if err != nil {
		t.Fatal(err)
	}
	// The outage: the longest time without replies around the move.
	times := slices.SortedFunc(maps.Values(r.Replies), func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	var gapEnd time.Time
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d > gap {
			gap, gapEnd = d, times[i]
		}
	}
	t.Logf("%s -> %s: routed a3 -> hm (every 50 ms) across the move: longest time without a reply %v, ending %v after the move; %d of %d echo requests lost",
		src, dst, gap.Round(time.Millisecond), gapEnd.Sub(moved).Round(time.Millisecond), len(r.lost()), r.Transmitted)
	// Tenant B's twin never moved: its traffic lost nothing.
	pingsLoseNothing(t, map[string]*background{"b3 -> bm": pb}, 5, "across tenant A's move")
	for _, src := range []string{"a2", "a3"} {
		if err := tl.markedPing(t.Context(), tenantA, src, "10.1.0.50", 3); err != nil {
			t.Errorf("%s -> hm after the move: %v", src, err)
		}
	}
	if err := tl.markedPing(t.Context(), tenantB, "b2", "10.1.0.50", 3); err != nil {
		t.Errorf("b2 -> bm after the move: %v", err)
	}
	return at
}
