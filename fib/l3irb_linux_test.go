package fib

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/evpnd/evpnd/vtep"
	vnetns "github.com/vishvananda/netns"
)

// irbLeaf is one leaf of TestSymmetricIRB: its underlay namespace, its
// tenant namespace (netns backend, built by vtep), and fib's L3 side there.
type irbLeaf struct {
	under, tenant *netns.NS
	rmac          evpn.MAC
	vtep          netip.Addr
	d             *L3Desired
	r             *L3Reconciler
}

// newIRBLeaf builds leaf n (VTEP 10.0.0.n) with tenant VRF "a" (L3VNI
// 4001) routing the member VNI vni with gateway gw, and a host at host
// behind its access port.
func newIRBLeaf(t *testing.T, n int, vni uint32, gw, host string) (*irbLeaf, *netns.NS) {
	u := netns.ForTest(t, fmt.Sprintf("irb%d", n))
	h, err := u.Handle()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	uh, err := vnetns.GetFromName(u.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uh.Close() })
	l := &irbLeaf{under: u, rmac: evpn.MAC{2, 0xee, 10, 0, 0, byte(n)}, vtep: netip.AddrFrom4([4]byte{10, 0, 0, byte(n)})}
	run(t, u, "ip", "addr", "add", l.vtep.String()+"/32", "dev", "lo")

	hostNS := netns.ForTest(t, fmt.Sprintf("irbh%d", n))
	run(t, u, "ip", "link", "add", "acc0", "type", "veth", "peer", "name", "eth0", "netns", hostNS.Name)
	run(t, hostNS, "ip", "addr", "add", host, "dev", "eth0")
	run(t, hostNS, "ip", "link", "set", "eth0", "up")
	run(t, hostNS, "ip", "route", "add", "default", "via", strings.Split(gw, "/")[0])

	tname := fmt.Sprintf("evt-irbt%d-%d", n, os.Getpid())
	_ = vnetns.DeleteNamed(tname)
	t.Cleanup(func() { _ = netns.Delete(tname) })
	l2 := func(v uint32, ports ...string) vtep.L2VNI {
		return vtep.L2VNI{VNI: v, VXLAN: fmt.Sprintf("vxlan%d", v), Bridge: fmt.Sprintf("br%d", v), AccessPorts: ports, Local: l.vtep}
	}
	v := vtep.VRF{Name: "a", Backend: vtep.BackendNetns, Namespace: tname, L3: l2(4001), RouterMAC: l.rmac,
		Members: []vtep.SVI{{L2: l2(vni, "acc0"), GatewayMAC: evpn.MAC{0, 0, 0x5e, 0, 1, 1}, GatewayIPs: []netip.Prefix{netip.MustParsePrefix(gw)}}}}
	if err := vtep.NewManager(h, uh, testLogger(t)).EnsureVRF(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	l.tenant = &netns.NS{Name: tname}
	th, err := l.tenant.Handle()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(th.Close)
	tnh, err := vnetns.GetFromName(tname)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tnh.Close() })
	k, err := NewL3Netlink(th, tnh)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	l.d = NewL3Desired(L3Devices{VRF: "a", L3VNI: 4001, Table: MainTable, SVI: "br4001", VXLAN: "vxlan4001", MemberSVIs: []string{fmt.Sprintf("br%d", vni)}})
	l.r = NewL3Reconciler(l.d, k, testLogger(t))
	return l, hostNS
}

func run(t *testing.T, ns *netns.NS, argv ...string) string {
	t.Helper()
	out, err := ns.Exec(context.Background(), argv...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSymmetricIRB routes between two subnets of one tenant across two
// leafs, each on the netns backend, through the L3VNI only (RFC 9135
// symmetric IRB): vtep builds the devices, fib installs what the remote
// MAC+IP and type-5 routes would give (the BGP speaker is not involved),
// and a host on leaf1 pings a host on leaf2 and an address behind leaf2's
// type-5 prefix.
func TestSymmetricIRB(t *testing.T) {
	netns.RequireLinkKind(t, "vxlan")
	l1, h1 := newIRBLeaf(t, 1, 100, "10.1.0.1/24", "10.1.0.10/24")
	l2, h2 := newIRBLeaf(t, 2, 200, "10.2.0.1/24", "10.2.0.10/24")
	// The underlay: a veth between the leafs, static routes to the VTEPs.
	run(t, l1.under, "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up0", "netns", l2.under.Name)
	for i, l := range []*irbLeaf{l1, l2} {
		run(t, l.under, "ip", "addr", "add", fmt.Sprintf("192.168.0.%d/30", i+1), "dev", "up0")
		run(t, l.under, "ip", "link", "set", "up0", "up")
		run(t, l.under, "ip", "route", "add", fmt.Sprintf("10.0.0.%d/32", 2-i), "via", fmt.Sprintf("192.168.0.%d", 2-i))
	}
	// What the remote routes give each leaf: the other's host (MAC+IP,
	// label2 = L3VNI, router MAC) and, from leaf2, a type-5 prefix.
	must(t, l1.d.SetHost(netip.MustParseAddr("10.2.0.10"), NextHop{l2.vtep, l2.rmac}))
	must(t, l1.d.AddPath(netip.MustParsePrefix("10.77.0.0/16"), NextHop{l2.vtep, l2.rmac}))
	must(t, l2.d.SetHost(netip.MustParseAddr("10.1.0.10"), NextHop{l1.vtep, l1.rmac}))
	// leaf2 has 10.77.0.1 behind it (on its tenant's loopback).
	run(t, l2.tenant, "ip", "addr", "add", "10.77.0.1/32", "dev", "lo")
	for _, l := range []*irbLeaf{l1, l2} {
		if _, err := l.r.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ping := func(from *netns.NS, to string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, err := from.Exec(context.Background(), "ping", "-c1", "-W1", to)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s cannot reach %s: %v\n%s\nleaf1 tenant:\n%s\n%s", from.Name, to, err, out,
					run(t, l1.tenant, "ip", "route"), run(t, l1.tenant, "ip", "neigh"))
			}
		}
	}
	ping(h1, "10.2.0.10")
	ping(h2, "10.1.0.10")
	ping(h1, "10.77.0.1")
	// Routed through the L3VNI: leaf2's host was never learned on leaf1's
	// bridges, and no ARP for it crossed (leaf1 has no L2VNI 200).
	if out := run(t, l1.tenant, "ip", "neigh", "show", "10.2.0.10"); out != "" {
		t.Errorf("leaf1 resolved the remote host itself: %s", out)
	}
}
