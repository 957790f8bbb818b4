//go:build linux

package main

import (
	"fmt"
	"net/netip"
	"strings"
)

// Addresses of the benchmark fabrics: iBGP AS 65000; every node's router
// ID, VTEP and BGP session source is its lo address; point-to-point /31s
// with static routes between loopbacks, as in containerlab/evpn-l2.clab.yml.
const benchASN = 65000

var (
	rrAddr       = netip.MustParseAddr("10.0.0.254")
	burstSrcAddr = netip.MustParseAddr("10.0.0.253") // latency --burst: the raw source, in rr's namespace
	firstRemote  = netip.MustParseAddr("10.0.0.10")  // the burst's remote VTEPs
	burstVNI     = uint32(100)
	leafLoopback = func(n int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, byte(n)}) }
)

// topoNode is a node of a generated topology.
type topoNode struct {
	name string
	exec []string
}

// topology renders a containerlab file for lab.Parse. Commands must not
// contain double quotes.
func topology(name string, nodes []topoNode, links [][2]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\ntopology:\n  nodes:\n", name)
	for _, n := range nodes {
		fmt.Fprintf(&b, "    %s:\n      kind: linux\n", n.name)
		if len(n.exec) > 0 {
			b.WriteString("      exec:\n")
			for _, c := range n.exec {
				fmt.Fprintf(&b, "        - %q\n", c)
			}
		}
	}
	b.WriteString("  links:\n")
	for _, l := range links {
		fmt.Fprintf(&b, "    - endpoints: [%q, %q]\n", l[0], l[1])
	}
	return b.String()
}

// burstTopology: the reflector (burst source) rr and one leaf, linked
// rr:eth1 -- leaf:eth1 (10.1.0.0/31). The leaf routes 10.0.0.0/24, which
// holds the burst's remote VTEPs, to rr, so that FRR's next-hop tracking
// finds them reachable.
func burstTopology(name string, leafExtra []string) string {
	leaf := leafLoopback(1)
	return topology(name, []topoNode{
		{name: "rr", exec: []string{
			"ip addr add " + rrAddr.String() + "/32 dev lo",
			"ip addr add 10.1.0.0/31 dev eth1",
			"ip route add " + leaf.String() + "/32 via 10.1.0.1 src " + rrAddr.String(),
		}},
		{name: "leaf", exec: append([]string{
			"ip addr add " + leaf.String() + "/32 dev lo",
			"ip addr add 10.1.0.1/31 dev eth1",
			"ip route add 10.0.0.0/24 via 10.1.0.0 src " + leaf.String(),
		}, leafExtra...)},
	}, [][2]string{{"rr:eth1", "leaf:eth1"}})
}

// latencyTopology: reflector rr, leaf1 and leaf2 (rr:ethN -- leafN:eth1,
// 10.1.N.0/31), host h1 on leaf1:eth2. rr forwards between the leafs.
// leafExtra[n] are commands added to leaf n+1.
func latencyTopology(name string, leafExtra [2][]string) string {
	nodes := []topoNode{{name: "rr", exec: []string{
		"sysctl -qw net.ipv4.ip_forward=1",
		"ip addr add " + rrAddr.String() + "/32 dev lo",
		"ip addr add " + burstSrcAddr.String() + "/32 dev lo",
	}}}
	var links [][2]string
	for n := 1; n <= 2; n++ {
		lo := leafLoopback(n)
		nodes[0].exec = append(nodes[0].exec,
			fmt.Sprintf("ip addr add 10.1.%d.0/31 dev eth%d", n, n),
			fmt.Sprintf("ip route add %s/32 via 10.1.%d.1 src %s", lo, n, rrAddr))
		nodes = append(nodes, topoNode{name: fmt.Sprintf("leaf%d", n), exec: append([]string{
			"ip addr add " + lo.String() + "/32 dev lo",
			fmt.Sprintf("ip addr add 10.1.%d.1/31 dev eth1", n),
			fmt.Sprintf("ip route add 10.0.0.0/24 via 10.1.%d.0 src %s", n, lo),
		}, leafExtra[n-1]...)})
		links = append(links, [2]string{fmt.Sprintf("rr:eth%d", n), fmt.Sprintf("leaf%d:eth1", n)})
	}
	nodes = append(nodes, topoNode{name: "h1", exec: []string{"ip link set eth1 mtu 1450"}})
	links = append(links, [2]string{"leaf1:eth2", "h1:eth1"})
	return topology(name, nodes, links)
}

// evpndLeafConfig is an evpnd leaf config for VNI 100 with one static
// peer, the reflector, and any extra peers (latency --burst: the raw
// source).
func evpndLeafConfig(id netip.Addr, access []string, extraPeers ...netip.Addr) string {
	acc := "[]"
	if len(access) > 0 {
		acc = "[" + strings.Join(access, ", ") + "]"
	}
	peers := ""
	for _, p := range extraPeers {
		peers += fmt.Sprintf("  - address: %s\n    asn: %d\n", p, benchASN)
	}
	return fmt.Sprintf(`router-id: %[1]s
asn: %[2]d
vtep-ip: %[1]s
role: leaf
log-level: warn
bgp:
  listen-addresses: [%[1]s]
neighbors:
  - address: %[3]s
    asn: %[2]d
%[6]sl2vnis:
  - vni: %[4]d
    access-interfaces: %[5]s
`, id, benchASN, rrAddr, burstVNI, acc, peers)
}

// evpndReflectorConfig is an evpnd route-reflector config accepting every
// leaf loopback of 10.0.0.0/24.
func evpndReflectorConfig() string {
	return fmt.Sprintf(`router-id: %[1]s
asn: %[2]d
role: route-reflector
log-level: warn
bgp:
  listen-addresses: [%[1]s]
dynamic-neighbors:
  - prefix: 10.0.0.0/24
    asn: %[2]d
`, rrAddr, benchASN)
}
