package labcheck

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/containerlab/lab"
)

// topologies returns every topology file under containerlab/.
func topologies(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../*.clab.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found %d topologies (%v), want evpn-l2, evpn-l2-frr and evpn-fabric at least", len(files), files)
	}
	return files
}

// TestTopologies parses every topology under containerlab/ with evpnlab's
// parser, which must have nothing to warn about, and checks that each
// follows the conventions labcheck reads and agrees with the evpnd configs
// it binds: a typo in either would only show up as a fabric that never
// converges.
func TestTopologies(t *testing.T) {
	for _, file := range topologies(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			topo, err := lab.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			if len(topo.Warnings) > 0 {
				t.Errorf("warnings:\n%s", strings.Join(topo.Warnings, "\n"))
			}
			if want := strings.TrimSuffix(filepath.Base(file), ".clab.yml"); topo.Name != want {
				t.Errorf("lab name %q, want %q (the file's name)", topo.Name, want)
			}
			p, err := PlanOf(topo)
			if err != nil {
				t.Fatal(err)
			}
			checkTopology(t, topo, p)
		})
	}
}

var loopbackRE = regexp.MustCompile(`^ip addr add (\S+)/32 dev lo$`)

func loopbackOf(n *lab.Node) netip.Addr {
	for _, c := range n.Exec {
		if m := loopbackRE.FindStringSubmatch(c); m != nil {
			if a, err := netip.ParseAddr(m[1]); err == nil {
				return a
			}
		}
	}
	return netip.Addr{}
}

func checkTopology(t *testing.T, topo *lab.Topology, p *Plan) {
	// Hosts: unique MACs and addresses, one subnet per VNI, no MAC or MTU
	// set by exec (the link sets both, before the interface comes up).
	macs, addrs := map[string]string{}, map[netip.Addr]string{}
	subnet := map[uint32]netip.Prefix{}
	for _, h := range p.Hosts {
		if other, dup := macs[h.MAC.String()]; dup {
			t.Errorf("hosts %s and %s share MAC %s", other, h.Name, h.MAC)
		}
		macs[h.MAC.String()] = h.Name
		if other, dup := addrs[h.Addr()]; dup {
			t.Errorf("hosts %s and %s share address %s", other, h.Name, h.Addr())
		}
		addrs[h.Addr()] = h.Name
		if s, ok := subnet[h.VNI]; ok && s != h.Prefix.Masked() {
			t.Errorf("host %s: %s is outside VNI %d's subnet %s", h.Name, h.Prefix, h.VNI, s)
		}
		subnet[h.VNI] = h.Prefix.Masked()
		if TemporaryMAC(h.MAC.String()) || h.MAC[0]&1 != 0 {
			t.Errorf("host %s: MAC %s is containerlab's or multicast", h.Name, h.MAC)
		}
		for _, c := range topo.Node(h.Name).Exec {
			if strings.Contains(c, " address ") || strings.Contains(c, " mtu ") {
				t.Errorf("host %s: exec %q: set the MAC and MTU on the link (mac:, mtu:), not after it is up", h.Name, c)
			}
		}
	}
	// MTUs: a host's largest frame plus VXLAN's 50 bytes must fit every
	// fabric link.
	hostMTU, fabricMTU := 0, 1<<30
	for _, l := range topo.Links {
		mtu := l.MTU
		if mtu == 0 {
			mtu = lab.DefaultLinkMTU
		}
		if p.Host(l.A.Node) != nil || p.Host(l.B.Node) != nil {
			hostMTU = max(hostMTU, mtu)
		} else {
			fabricMTU = min(fabricMTU, mtu)
		}
	}
	if hostMTU+50 > fabricMTU {
		t.Errorf("host links MTU %d + 50 bytes of VXLAN exceeds the fabric links' MTU %d", hostMTU, fabricMTU)
	}
	if len(p.Spines) == 0 {
		t.Fatal("no spines")
	}
	var spineLoopbacks []netip.Addr
	for _, s := range p.Spines {
		lo := loopbackOf(topo.Node(s))
		if !lo.IsValid() {
			t.Errorf("spine %s: no loopback in exec", s)
		}
		spineLoopbacks = append(spineLoopbacks, lo)
		if cfg, ok := evpndConfig(t, topo.Node(s)); ok {
			switch {
			case cfg.Underlay.Enabled:
				// eBGP per link (RFC 7938): one neighbour per leaf link, at
				// the leaf's end of it.
				if cfg.Role != configs.RoleRouteReflector || cfg.RouterID != lo {
					t.Errorf("spine %s: role %q router-id %v: want role route-reflector (no VTEP) and its loopback %v", s, cfg.Role, cfg.RouterID, lo)
				}
				checkLinkPeers(t, topo, s, &cfg)
			case cfg.Role != configs.RoleRouteReflector || cfg.RouterID != lo || !slices.Equal(cfg.BGP.ListenAddresses, []netip.Addr{lo}):
				t.Errorf("spine %s: role %q router-id %v listen %v: want a route reflector on its loopback %v", s, cfg.Role, cfg.RouterID, cfg.BGP.ListenAddresses, lo)
			}
		}
		if !slices.Contains(topo.Node(s).Exec, "sysctl -w net.ipv4.ip_forward=1") {
			t.Errorf("spine %s does not forward (sysctl -w net.ipv4.ip_forward=1)", s)
		}
	}
	slices.SortFunc(spineLoopbacks, netip.Addr.Compare)
	for _, lf := range p.Leafs {
		n := topo.Node(lf.Name)
		cfg, ok := evpndConfig(t, n)
		if !ok {
			t.Errorf("leaf %s: no evpnd config bound to /etc/evpnd/evpnd.yaml", lf.Name)
			continue
		}
		if cfg.Underlay.Enabled {
			if cfg.Role != configs.RoleLeaf || cfg.VTEPIP != lf.VTEP || cfg.RouterID != lf.VTEP {
				t.Errorf("leaf %s: role %q vtep-ip %v router-id %v: want all on the loopback %v",
					lf.Name, cfg.Role, cfg.VTEPIP, cfg.RouterID, lf.VTEP)
			}
			checkLinkPeers(t, topo, lf.Name, &cfg)
		} else {
			if cfg.Role != configs.RoleLeaf || cfg.VTEPIP != lf.VTEP || cfg.RouterID != lf.VTEP ||
				!slices.Equal(cfg.BGP.ListenAddresses, []netip.Addr{lf.VTEP}) {
				t.Errorf("leaf %s: role %q vtep-ip %v router-id %v listen %v: want all on the loopback %v",
					lf.Name, cfg.Role, cfg.VTEPIP, cfg.RouterID, cfg.BGP.ListenAddresses, lf.VTEP)
			}
			var peers []netip.Addr
			for _, nb := range cfg.Neighbors {
				peers = append(peers, nb.Address)
			}
			slices.SortFunc(peers, netip.Addr.Compare)
			if !slices.Equal(peers, spineLoopbacks) {
				t.Errorf("leaf %s: neighbours %v, want the spines' loopbacks %v", lf.Name, peers, spineLoopbacks)
			}
		}
		// The config's VNIs and access ports are exactly the hosts'.
		var vnis []uint32
		for _, v := range cfg.L2VNIs {
			vnis = append(vnis, v.VNI)
			for _, port := range v.AccessInterfaces {
				i := slices.IndexFunc(p.Hosts, func(h Host) bool { return h.Leaf == lf.Name && h.Port == port })
				if i < 0 || p.Hosts[i].VNI != v.VNI {
					t.Errorf("leaf %s: VNI %d access port %s has no host of that VNI", lf.Name, v.VNI, port)
				}
			}
		}
		slices.Sort(vnis)
		if !slices.Equal(vnis, lf.VNIs) {
			t.Errorf("leaf %s: config VNIs %v, hosts' VNIs %v", lf.Name, vnis, lf.VNIs)
		}
		// A routed host's gateway is its leaf's anycast gateway for its
		// VNI, and its addresses are in the gateway's subnets.
		for _, h := range p.Hosts {
			if h.Leaf != lf.Name || len(h.Routes) == 0 {
				continue
			}
			var gws []netip.Prefix
			for _, v := range cfg.VRFs {
				for _, m := range v.L2VNIs {
					if m.VNI == h.VNI {
						gws = append(gws, m.GatewayIPs...)
					}
				}
			}
			for _, r := range h.Routes {
				if !slices.ContainsFunc(gws, func(g netip.Prefix) bool { return g.Addr() == r.Via }) {
					t.Errorf("host %s: route %s via %s: no anycast gateway of VNI %d on %s has that address (%v)", h.Name, r.Dst, r.Via, h.VNI, lf.Name, gws)
				}
			}
			for _, a := range []netip.Prefix{h.Prefix, h.Prefix6} {
				if a.IsValid() && !slices.ContainsFunc(gws, func(g netip.Prefix) bool { return g.Masked() == a.Masked() }) {
					t.Errorf("host %s: %s is in no gateway subnet of VNI %d on %s (%v)", h.Name, a, h.VNI, lf.Name, gws)
				}
			}
		}
	}
	// Every VNI has hosts on two leafs at least, or nothing crosses the
	// fabric.
	leafsOf := map[uint32]map[string]bool{}
	for _, h := range p.Hosts {
		if leafsOf[h.VNI] == nil {
			leafsOf[h.VNI] = map[string]bool{}
		}
		leafsOf[h.VNI][h.Leaf] = true
	}
	for vni, leafs := range leafsOf {
		if len(leafs) < 2 {
			t.Errorf("VNI %d has hosts on %d leaf(s), want 2 or more", vni, len(leafs))
		}
	}
	// evpnd nodes keep their API socket in their own run directory.
	for _, n := range topo.Nodes {
		if _, ok := evpndConfig(t, n); !ok {
			continue
		}
		if !slices.Contains(n.Binds, lab.Bind{Src: "__clabNodeDir__/run", Dst: "/run/evpnd", InLabDir: true}) ||
			n.Env["EVPND_SOCKET"] != "/run/evpnd/evpnd.sock" {
			t.Errorf("node %s: want the bind __clabNodeDir__/run:/run/evpnd and EVPND_SOCKET=/run/evpnd/evpnd.sock", n.Name)
		}
		if !strings.HasPrefix(n.Cmd, "evpnd run --config /etc/evpnd/evpnd.yaml") {
			t.Errorf("node %s: cmd %q does not run evpnd with its bound config", n.Name, n.Cmd)
		}
	}
}

// evpndConfig decodes the evpnd config a node binds, strictly as evpnd
// does: unknown keys are errors.
func evpndConfig(t *testing.T, n *lab.Node) (configs.Config, bool) {
	t.Helper()
	var c configs.Config
	for _, b := range n.Binds {
		if b.Dst != "/etc/evpnd/evpnd.yaml" {
			continue
		}
		data, err := os.ReadFile(b.Src)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("%s: %v", b.Src, err)
		}
		// evpnd's own strict loader must take it too.
		if _, err := configs.Load(b.Src); err != nil {
			t.Errorf("%s: %v", b.Src, err)
		}
		return c, true
	}
	return c, false
}

var linkAddrRE = regexp.MustCompile(`^ip addr add (\S+)/(\d+) dev (\S+)$`)

// linkAddr is the address exec puts on a node's interface.
func linkAddr(n *lab.Node, iface string) (netip.Prefix, bool) {
	for _, c := range n.Exec {
		if m := linkAddrRE.FindStringSubmatch(c); m != nil && m[3] == iface {
			if p, err := netip.ParsePrefix(m[1] + "/" + m[2]); err == nil {
				return p, true
			}
		}
	}
	return netip.Prefix{}, false
}

// checkLinkPeers checks a BGP-underlay node (RFC 7938: eBGP per link): it
// routes with evpnd alone (no "ip route" in exec), and its neighbours are
// exactly the far ends of its links to other evpnd or FRR nodes, each on
// the same subnet as the near end, in an AS other than its own.
func checkLinkPeers(t *testing.T, topo *lab.Topology, node string, cfg *configs.Config) {
	t.Helper()
	n := topo.Node(node)
	for _, c := range n.Exec {
		if strings.HasPrefix(c, "ip route ") {
			t.Errorf("%s: exec %q: the BGP underlay routes the fabric; remove the static route", node, c)
		}
	}
	var want []netip.Addr
	for _, l := range topo.Links {
		for _, e := range [][2]lab.Endpoint{{l.A, l.B}, {l.B, l.A}} {
			if e[0].Node != node || topo.Node(e[1].Node).Labels["evpnd.vni"] != "" {
				continue
			}
			near, ok1 := linkAddr(n, e[0].Interface)
			far, ok2 := linkAddr(topo.Node(e[1].Node), e[1].Interface)
			if !ok1 || !ok2 || near.Masked() != far.Masked() {
				t.Errorf("%s: link %s-%s: addresses %v and %v are not on one subnet", node, e[0], e[1], near, far)
				continue
			}
			want = append(want, far.Addr())
		}
	}
	var got []netip.Addr
	for _, nb := range cfg.Neighbors {
		got = append(got, nb.Address)
		if nb.ASN == cfg.ASN {
			t.Errorf("%s: neighbour %s is in the node's own AS %d: the underlay is eBGP per link", node, nb.Address, nb.ASN)
		}
	}
	slices.SortFunc(got, netip.Addr.Compare)
	slices.SortFunc(want, netip.Addr.Compare)
	if !slices.Equal(got, want) {
		t.Errorf("%s: neighbours %v, want the far ends of its fabric links %v", node, got, want)
	}
}
