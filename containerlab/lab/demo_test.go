package lab

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/evpnd/evpnd/configs"
)

// demoTopology is the fabric the demo and the end-to-end tests run.
const demoTopology = "../evpn-l2.clab.yml"

// TestDemoTopology checks that the demo parses cleanly and that the
// topology and the evpnd configs it binds agree with each other: a typo in
// either would only show up as a fabric that never converges.
func TestDemoTopology(t *testing.T) {
	topo, err := Load(demoTopology)
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Warnings) > 0 {
		t.Errorf("warnings:\n%s", strings.Join(topo.Warnings, "\n"))
	}
	var names []string
	for _, n := range topo.Nodes {
		names = append(names, n.Name)
	}
	if want := []string{"spine1", "leaf1", "leaf2", "leaf3", "h1", "h2", "h3", "h4"}; !slices.Equal(names, want) {
		t.Fatalf("nodes = %v, want %v", names, want)
	}

	// peer[node][iface] = the node at the other end.
	peer := map[string]map[string]string{}
	for _, l := range topo.Links {
		for _, p := range [][2]Endpoint{{l.A, l.B}, {l.B, l.A}} {
			if peer[p[0].Node] == nil {
				peer[p[0].Node] = map[string]string{}
			}
			peer[p[0].Node][p[0].Interface] = p[1].Node
		}
	}

	loopback := regexp.MustCompile(`^ip addr add (\S+)/32 dev lo$`)
	hostAddr := regexp.MustCompile(`^ip addr add (\S+)/24 dev eth1$`)
	hostMAC := regexp.MustCompile(`^ip link set eth1 address (\S+)$`)
	vniOfHost := map[string]uint32{}
	var spineLoopback netip.Addr
	macs := map[string]bool{}

	// Hosts first: the leafs' checks need their VNIs.
	for _, n := range topo.Nodes {
		if !strings.HasPrefix(n.Name, "h") {
			continue
		}
		var addr, mac string
		for _, c := range n.Exec {
			if m := hostAddr.FindStringSubmatch(c); m != nil {
				addr = m[1]
			}
			if m := hostMAC.FindStringSubmatch(c); m != nil {
				mac = m[1]
			}
		}
		if addr == "" || mac == "" || macs[mac] {
			t.Errorf("host %s: address %q, MAC %q: want a /24 on eth1 and a fixed, unique MAC", n.Name, addr, mac)
			continue
		}
		macs[mac] = true
		vni := map[string]uint32{"192.168.100": 100, "192.168.200": 200}[addr[:strings.LastIndexByte(addr, '.')]]
		if vni == 0 || n.Labels["evpnd.vni"] != fmt.Sprint(vni) {
			t.Errorf("host %s: address %s does not match label evpnd.vni=%s", n.Name, addr, n.Labels["evpnd.vni"])
		}
		vniOfHost[n.Name] = vni
	}
	for _, n := range topo.Nodes {
		if strings.HasPrefix(n.Name, "h") {
			continue
		}
		// evpnd nodes: a bind for the config, used by cmd, and a private
		// run directory for the API socket that EVPND_SOCKET names.
		if len(n.Binds) != 2 || n.Binds[0].Dst != "/etc/evpnd/evpnd.yaml" ||
			n.Binds[1] != (Bind{Src: "__clabNodeDir__/run", Dst: "/run/evpnd", InLabDir: true}) {
			t.Fatalf("node %s: binds %+v, want /etc/evpnd/evpnd.yaml and __clabNodeDir__/run:/run/evpnd", n.Name, n.Binds)
		}
		if sock := n.Env["EVPND_SOCKET"]; sock != "/run/evpnd/evpnd.sock" {
			t.Errorf("node %s: EVPND_SOCKET %q, want /run/evpnd/evpnd.sock (in its run directory)", n.Name, sock)
		}
		src := n.Binds[0].Src
		if want := filepath.Join(topo.Dir, "evpn-l2", n.Name+".yaml"); src != want {
			t.Errorf("node %s: config %s, want %s", n.Name, src, want)
		}
		if got, want := n.HostPath(n.Cmd), "evpnd run --config "+src+" --wait 60s"; got != want {
			t.Errorf("node %s: cmd in netns mode = %q, want %q", n.Name, got, want)
		}
		// Under evpnlab every node's socket is its own.
		rn := topo.ForWorkDir("/run/evpnlab/evpn-l2").Node(n.Name)
		if got, want := rn.HostPath(rn.Env["EVPND_SOCKET"]), "/run/evpnlab/evpn-l2/"+n.Name+"/run/evpnd.sock"; got != want {
			t.Errorf("node %s: API socket on the host %q, want %q", n.Name, got, want)
		}
		cfg := readConfig(t, src)

		var lo netip.Addr
		for _, c := range n.Exec {
			if m := loopback.FindStringSubmatch(c); m != nil {
				lo = netip.MustParseAddr(m[1])
			}
		}
		if !lo.IsValid() || cfg.RouterID != lo {
			t.Errorf("node %s: router-id %v, loopback from exec %v", n.Name, cfg.RouterID, lo)
		}
		if !slices.Equal(cfg.BGP.ListenAddresses, []netip.Addr{lo}) {
			t.Errorf("node %s: bgp listen-addresses %v, want the loopback %v", n.Name, cfg.BGP.ListenAddresses, lo)
		}
		if cfg.ASN != 65000 {
			t.Errorf("node %s: asn %d", n.Name, cfg.ASN)
		}
		if n.Name == "spine1" {
			spineLoopback = lo
			if cfg.Role != configs.RoleRouteReflector || !slices.Contains(n.Exec, "sysctl -w net.ipv4.ip_forward=1") {
				t.Errorf("spine1: role %q, exec %v: want a forwarding route reflector", cfg.Role, n.Exec)
			}
			if len(cfg.DynamicNeighbors) != 1 || cfg.DynamicNeighbors[0].Prefix != netip.MustParsePrefix("10.0.0.0/24") {
				t.Errorf("spine1: dynamic neighbours %+v", cfg.DynamicNeighbors)
			}
			continue
		}
		if cfg.Role != configs.RoleLeaf || cfg.VTEPIP != lo {
			t.Errorf("node %s: role %q vtep-ip %v, want leaf with VTEP %v", n.Name, cfg.Role, cfg.VTEPIP, lo)
		}
		if peer[n.Name]["eth1"] != "spine1" {
			t.Errorf("node %s: eth1 goes to %q, want spine1", n.Name, peer[n.Name]["eth1"])
		}
		for _, v := range cfg.L2VNIs {
			for _, ifc := range v.AccessInterfaces {
				h := peer[n.Name][ifc]
				if vniOfHost[h] != v.VNI {
					t.Errorf("node %s: VNI %d access interface %s leads to %q (VNI %d)", n.Name, v.VNI, ifc, h, vniOfHost[h])
				}
			}
		}
		for ifc, h := range peer[n.Name] {
			if strings.HasPrefix(h, "h") && !slices.ContainsFunc(cfg.L2VNIs, func(v configs.L2VNI) bool {
				return slices.Contains(v.AccessInterfaces, ifc)
			}) {
				t.Errorf("node %s: host %s on %s is in no L2VNI", n.Name, h, ifc)
			}
		}
	}
	for _, leaf := range []string{"leaf1", "leaf2", "leaf3"} {
		cfg := readConfig(t, topo.Node(leaf).Binds[0].Src)
		if len(cfg.Neighbors) != 1 || cfg.Neighbors[0].Address != spineLoopback || cfg.Neighbors[0].ASN != 65000 {
			t.Errorf("%s: neighbours %+v, want spine1's loopback %v", leaf, cfg.Neighbors, spineLoopback)
		}
	}
	// Both VNIs must have hosts on two different leafs, or nothing crosses
	// the fabric.
	for _, vni := range []uint32{100, 200} {
		leafs := map[string]bool{}
		for h, v := range vniOfHost {
			if v == vni {
				leafs[peer[h]["eth1"]] = true
			}
		}
		if len(leafs) < 2 {
			t.Errorf("VNI %d has hosts on %d leaf(s), want 2", vni, len(leafs))
		}
	}
}

// readConfig decodes an evpnd config strictly, as evpnd does: unknown keys
// are errors.
func readConfig(t *testing.T, path string) configs.Config {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c configs.Config
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}
