// Package e2e holds evpnd's end-to-end fabric tests. It has no code of its
// own: the tests build ./cmd/evpnd, deploy testdata/fabric.clab.yml with
// containerlab/lab on network namespaces (a route reflector, three leafs
// and six hosts on VNIs 100 and 200, one of them wired to two leafs so it
// can move), run the real evpnd binary on every node, and check the fabric
// the way an operator would: pings between hosts, `bridge -j fdb show` on
// every leaf compared entry by entry with what the topology implies, hosts
// removed and moved, evpnd restarted (SIGTERM and SIGKILL) under
// continuous ping, the route reflector installing nothing, and the
// daemon's refusal of broken or conflicting configurations.
//
// The tenant VRF tests (issue 10) deploy testdata/l3.clab.yml (two
// leafs, one tenant) and testdata/tenants.clab.yml (three leafs, two
// tenants with the same subnets, host addresses and MACs on the netns
// backend), creating each leaf's tenant namespaces under names unique to
// the run. TestTwoTenants counts frames on its hosts with nft (nftables);
// without nft it says so and checks the rest.
//
// Run them as root:
//
//	go test -count=1 -v ./cmd/evpnd/e2e/
//
// They build ./cmd/evpnd first; set EVPND_E2E_BIN=/path/to/evpnd to test
// another binary instead.
//
// Without root, or on a kernel without veth, bridge or vxlan links, the
// privileged tests skip and say why; the topology model test still runs.
//
// Each test deploys its own lab with the namespace prefix
// "e2e<pid%1000><n>" ("e2e4171-leaf1") and destroys it in t.Cleanup, also
// after a failure. A killed test run can leave namespaces behind: list them
// with `ip netns list | grep ^e2e` and remove them with `ip netns del`.
// When a test fails it first logs every node's evpnd output and every
// leaf's `bridge fdb show`.
//
// Where a test must see what crosses the fabric (ARP/ND suppression), it
// reads a leaf's underlay link with an AF_PACKET socket and decodes the
// VXLAN frames itself: no tcpdump is needed.
//
// Traffic only goes to addresses inside the lab's namespaces. Waits poll a
// condition against a deadline; nothing sleeps for a fixed time.
package e2e
