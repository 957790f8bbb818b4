// Package interop holds evpnd's interoperability tests against FRR 8.4,
// the Debian 12 package (DESIGN §6). It has no code of its own: the tests
// build evpnd once per test binary, deploy a topology from testdata/ on
// network namespaces with containerlab/lab, run evpnd as the lab nodes' cmd
// and FRR (zebra and bgpd, as user frr) in the FRR nodes' namespaces, and
// check that the two speak EVPN to each other:
//
//   - frr-leaf.clab.yml: an FRR leaf and an evpnd leaf in VNI 100 behind an
//     evpnd route reflector. Hosts ping across; each leaf's kernel FDB
//     points the other side's host MAC at the other VTEP, with a flood
//     entry; a host removed behind FRR disappears from evpnd's FDB; a MAC
//     that moves between the leafs carries MAC-mobility sequence numbers
//     that both sides honour.
//   - frr-rr.clab.yml: FRR as the route reflector of two evpnd leafs. Hosts
//     ping across, and FRR's "show bgp l2vpn evpn ... json" lists evpnd's
//     type-2 and type-3 routes with the RD, RT, encapsulation, VNI, PMSI
//     and next hop RFC 7432 and RFC 8365 require.
//   - frr-l3.clab.yml: symmetric IRB between an FRR leaf (L3VNI 4001 in
//     FRR's vrf default, advertise ipv4 unicast, advertise-svi-ip off) and
//     an evpnd leaf (tenant VRF on the default backend, L3VNI 4001) behind
//     an evpnd route reflector. Hosts in different subnets ping across
//     (IPv4 and IPv6);
//     each kernel holds the other side's host routes and type-5 prefixes
//     via its VTEP over br4001, its router MAC as that VTEP's neighbour
//     and in vxlan4001's FDB; a withdrawn MAC+IP route takes its host
//     route and suppression neighbour with it but not the router MAC still
//     in use; FRR's "show evpn rmac/next-hops vni 4001" show evpnd's leaf.
//   - frr-mix.clab.yml: a mixed fabric as users build it: an FRR leaf and
//     an evpnd leaf both routing one tenant (L3VNI 4001 in the main table,
//     the same anycast gateways and MAC on VNIs 100 and 200) behind an
//     evpnd spine reflecting their routes. Bridged pings within each
//     subnet and routed pings between them, both ways, IPv4 and IPv6; each
//     kernel's host routes, router MAC and suppression neighbours, zebra's
//     "show evpn rmac/next-hops vni 4001" and "show evpn arp-cache vni V",
//     evpnctl's "show evpn rmac vni 4001"; type-5 both ways (FRR: a
//     connected subnet and a static route; evpnd: an uplink's subnets and
//     advertise-prefixes of its static routes); a VM moving from the FRR
//     leaf to the evpnd leaf and back under routed ping, winning by MAC
//     mobility sequence 1 then 2, with the outage logged and nothing stale
//     left on either side.
//   - ebgp.clab.yml: an RFC 7938 eBGP fabric: FRR spine AS 65000 (plain
//     eBGP, no reflection), evpnd leafs AS 65001 and 65002 (ebgp-multihop
//     between loopbacks), an FRR leaf AS 65003. Next hops stay the
//     originating VTEP, and per-AS automatic RTs import by VNI.
//
// The tests need root, the kernel's veth, bridge and vxlan links, and FRR
// (/usr/lib/frr/{zebra,bgpd}, vtysh, user frr); they skip naming what is
// missing. containerlab/scripts/deps.sh installs FRR.
//
// Each FRR instance gets its own directory (config copies, PID files, the
// zserv socket, the vty sockets and the logs), owned by frr and passed on
// the command line, so the tests never talk to a host-wide FRR service:
// vtysh is always called with --vty_socket. Every process started is
// killed by PID in t.Cleanup, then the lab is destroyed, also when a test
// fails; a failing test first logs FRR's and evpnd's logs, FRR's show
// output and every leaf's FDB.
//
// The names of what a run creates carry the test binary's PID
// (namespaces evt-iop-<pid>-..., directories evt-frr-<pid>-... and
// evt-iop-bin-<pid>-... in the temporary directory). A later run removes
// what a killed run (go test -timeout, SIGKILL) left behind, once its PID
// is gone.
//
// The checks on FRR's JSON are pure code (frrjson_test.go); golden_test.go
// runs them, without root, on FRR output the live tests captured in
// testdata/frr-8.4-*.json, and shows that each check can fail. Refresh
// those files from the installed FRR with
//
//	go test -count=1 ./cmd/evpnd/interop/ -rewrite
//
// Run the interop tests as root:
//
//	go test -count=1 -v ./cmd/evpnd/interop/
package interop
