#!/usr/bin/env bash
# The main job: build evpnd and evpnctl, bring up the evpn-fabric
# spine-leaf fabric on network namespaces (eBGP spines spine1 and spine2,
# leaf1-4, hosts h1-h8 on VNIs 100 and 200) with evpnd on every node, and
# ping across it: bridged within each subnet (L2VNIs 100 and 200), routed
# between the subnets (tenant VRF tenant1, L3VNI 4001: every leaf is the
# anycast gateway 192.168.100.1 and 192.168.200.1, symmetric IRB), over
# IPv4 and IPv6. Then show the leafs' EVPN tables with evpnctl, layer 2
# and layer 3. The lab is removed at the end unless --keep is given.
# Usage (as root): containerlab/scripts/demo.sh [--keep]
set -euo pipefail
cd "$(dirname "$0")/../.."
keep=false
[ "${1:-}" = "--keep" ] && keep=true
if [ "$(id -u)" != 0 ]; then echo "demo: run as root (it creates network namespaces)" >&2; exit 1; fi
bash containerlab/scripts/deps.sh
. containerlab/scripts/env.sh

topo=containerlab/evpn-fabric.clab.yml
ns=evpn-fabric # the namespaces are $ns-<node>
bin=$PWD/containerlab/bin
echo "== building evpnd, evpnctl and evpnlab into $bin"
go build -o "$bin/" ./cmd/evpnd ./cmd/evpnctl ./cmd/evpnlab
lab() { "$bin/evpnlab" "$@" -t "$topo"; }
# evpnctl inside a node: its PATH has $bin, and EVPND_SOCKET names that
# node's own API socket (/run/evpnlab/evpn-fabric/<node>/run/evpnd.sock).
ctl() { local node=$1; shift; "$bin/evpnlab" exec -t "$topo" "$node" -- evpnctl "$@"; }

lab destroy >/dev/null 2>&1 || true
cleanup() { $keep || lab destroy >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "== deploying $topo"
lab deploy --detach --path "$bin"

# Wait for every leaf to have its BGP session and flood lists (no fixed sleep).
wait_for() { # desc, timeout-seconds, command...
	local desc=$1 t=$2; shift 2
	for ((i = 0; i < t * 10; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	echo "demo: timed out waiting for $desc" >&2
	return 1
}
flood() { ip netns exec "$ns-$1" bridge fdb show dev "$2" | grep -q "00:00:00:00:00:00 dst $3"; }
wait_for "leaf1 flood list for VNI 100" 60 flood leaf1 vxlan100 10.0.0.4
wait_for "leaf1 flood list for VNI 200" 60 flood leaf1 vxlan200 10.0.0.4
wait_for "leaf4 flood list for VNI 100" 60 flood leaf4 vxlan100 10.0.0.1
wait_for "leaf4 flood list for VNI 200" 60 flood leaf4 vxlan200 10.0.0.1
in_ns() { local node=$1; shift; ip netns exec "$ns-$node" "$@"; }

fail=0
ping_host() { # from-node to-ip what
	echo "-- $3: $1 -> $2"
	if ! in_ns "$1" ping -c 3 -i 0.2 -W 1 "$2" | sed -n 's/^/   /;/packets transmitted/p'; then fail=1; fi
}
echo "== every host resolves its gateway at its own leaf (the anycast gateway: same address and MAC 00:00:5e:00:01:01 on every leaf)"
for h in 1 2 3 4 5 6 7 8; do
	net=$(( h % 2 ? 100 : 200 ))
	if in_ns "h$h" ping -c 1 -W 2 "192.168.$net.1" >/dev/null && in_ns "h$h" ping -c 1 -W 2 "2001:db8:$net::1" >/dev/null; then
		echo "   h$h: $(in_ns "h$h" ip neigh show 192.168.$net.1 | sed 's/ dev eth1//')"
	else
		echo "   h$h: its gateway 192.168.$net.1 / 2001:db8:$net::1 does not answer"; fail=1
	fi
done
echo "== bridged pings: the same subnet across the fabric (L2VNIs 100 and 200)"
ping_host h1 192.168.100.13 "VNI 100, leaf1 -> leaf2"
ping_host h7 192.168.100.11 "VNI 100, leaf4 -> leaf1"
ping_host h2 192.168.200.16 "VNI 200, leaf1 -> leaf3"
ping_host h1 2001:db8:100::17 "VNI 100 over IPv6, leaf1 -> leaf4"
# A leaf routes to a remote host once that host's leaf advertised it as a
# type-2 MAC+IP route, which the gateway pings above started: wait for it.
hostroute() { # leaf, host address
	local fam=-4
	case $2 in *:*) fam=-6 ;; esac
	in_ns "$1" ip "$fam" route show "$2" | grep -q "dev br4001"
}
wait_for "leaf1's host route to h4" 30 hostroute leaf1 192.168.200.14
wait_for "leaf1's host route to h8" 30 hostroute leaf1 2001:db8:200::18
wait_for "leaf2's host route to h1" 30 hostroute leaf2 192.168.100.11
wait_for "leaf4's host route to h1" 30 hostroute leaf4 2001:db8:100::11
echo "== routed pings: between the subnets, symmetric IRB over L3VNI 4001 (tenant VRF tenant1)"
ping_host h1 192.168.200.14 "192.168.100.0/24 -> 192.168.200.0/24, leaf1 -> leaf2"
ping_host h4 192.168.100.11 "192.168.200.0/24 -> 192.168.100.0/24, leaf2 -> leaf1"
ping_host h1 2001:db8:200::18 "2001:db8:100::/64 -> 2001:db8:200::/64, leaf1 -> leaf4"
ping_host h8 2001:db8:100::11 "2001:db8:200::/64 -> 2001:db8:100::/64, leaf4 -> leaf1"
ping_host h1 192.168.200.12 "routed on leaf1 itself: h1 -> h2"

echo
echo "== the EVPN tables, as evpnctl shows them"
ctlfail=""
show() { # node, evpnctl arguments...
	echo "-- $1# evpnctl ${*:2}"
	if ! ctl "$@" 2>&1 | sed 's/^./   &/'; then ctlfail="$ctlfail $1:'${*:2}'"; fi
}
echo
echo "######## leaf1: layer 2"
show leaf1 show evpn vni
show leaf1 show evpn mac
show leaf1 show bgp summary
echo
echo "######## leaf1: layer 3 (tenant VRF tenant1, L3VNI 4001)"
show leaf1 show evpn vni 4001
show leaf1 show evpn rmac vni 4001
show leaf1 show evpn next-hops vni 4001
show leaf1 show evpn arp-cache vni 200
show leaf1 show ip route vrf tenant1
show leaf1 show evpn route type 5
echo "-- leaf1# ip route show dev br4001; ip neigh show dev br4001   (the kernel: host routes via the VTEPs, router MACs)"
in_ns leaf1 ip route show dev br4001 | sed 's/^/   /'
in_ns leaf1 ip -6 route show dev br4001 | sed 's/^/   /'
in_ns leaf1 ip neigh show dev br4001 | sed 's/^/   /'
for n in leaf2 leaf3 leaf4; do
	echo
	echo "######## $n"
	show "$n" show evpn mac
	show "$n" show evpn rmac vni 4001
done
echo
echo "== leaf1: does the kernel hold what evpnd wants? (evpnctl check)"
show leaf1 check
echo
echo "== evpnd logs of each node: /run/evpnlab/$ns/<node>.log; API sockets: /run/evpnlab/$ns/<node>/run/evpnd.sock"
if $keep; then
	echo "lab kept; look around with: $bin/evpnlab exec -t $topo leaf1 -- evpnctl show ip route vrf tenant1"
	echo "remove it with: $bin/evpnlab destroy -t $topo"
fi
if [ -n "$ctlfail" ]; then echo "demo: evpnctl FAILED on:$ctlfail" >&2; fi
if [ $fail != 0 ]; then echo "demo: some pings FAILED" >&2; exit 1; fi
if [ -n "$ctlfail" ]; then exit 1; fi
echo "demo: all pings succeeded, bridged and routed"
