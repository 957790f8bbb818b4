#!/usr/bin/env bash
# The main job: build evpnd and evpnctl, bring up the evpn-l2 spine-leaf
# fabric on network namespaces (eBGP spine1, leaf1-3, hosts h1-h4
# on VNIs 100 and 200) with evpnd on every node, ping across it, and show
# the leafs' EVPN tables with evpnctl. The lab is removed at the end unless
# --keep is given.
# Usage (as root): containerlab/scripts/demo.sh [--keep]
set -euo pipefail
cd "$(dirname "$0")/../.."
keep=false
[ "${1:-}" = "--keep" ] && keep=true
if [ "$(id -u)" != 0 ]; then echo "demo: run as root (it creates network namespaces)" >&2; exit 1; fi
bash containerlab/scripts/deps.sh
. containerlab/scripts/env.sh

topo=containerlab/evpn-l2.clab.yml
bin=$PWD/containerlab/bin
echo "== building evpnd, evpnctl and evpnlab into $bin"
go build -o "$bin/" ./cmd/evpnd ./cmd/evpnctl ./cmd/evpnlab
lab() { "$bin/evpnlab" "$@" -t "$topo"; }
# evpnctl inside a node: its PATH has $bin, and EVPND_SOCKET names that
# node's own API socket (/run/evpnlab/evpn-l2/<node>/run/evpnd.sock).
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
flood() { ip netns exec "evpn-l2-$1" bridge fdb show dev "$2" | grep -q "00:00:00:00:00:00 dst $3"; }
wait_for "leaf1 flood list for VNI 100" 30 flood leaf1 vxlan100 10.0.0.2
wait_for "leaf1 flood list for VNI 200" 30 flood leaf1 vxlan200 10.0.0.3
wait_for "leaf2 flood list for VNI 100" 30 flood leaf2 vxlan100 10.0.0.1
wait_for "leaf3 flood list for VNI 200" 30 flood leaf3 vxlan200 10.0.0.1

fail=0
ping_host() { # from-node to-ip what
	echo "-- $3: $1 -> $2"
	if ! ip netns exec "evpn-l2-$1" ping -c 3 -i 0.2 -W 1 "$2" | sed -n 's/^/   /;/packets transmitted/p'; then fail=1; fi
}
echo "== pinging across the fabric"
ping_host h1 192.168.100.12 "VNI 100, leaf1 -> leaf2"
ping_host h2 192.168.100.11 "VNI 100, leaf2 -> leaf1"
ping_host h4 192.168.200.13 "VNI 200, leaf1 -> leaf3"
ping_host h3 192.168.200.14 "VNI 200, leaf3 -> leaf1"

echo "== the EVPN tables of each leaf, as evpnctl shows them"
ctlfail=""
show() { # node, evpnctl arguments...
	echo "-- $1# evpnctl ${*:2}"
	if ! ctl "$@" 2>&1 | sed 's/^./   &/'; then ctlfail="$ctlfail $1:'${*:2}'"; fi
}
for n in leaf1 leaf2 leaf3; do
	echo
	echo "######## $n"
	show "$n" show evpn vni
	show "$n" show evpn mac
	show "$n" show bgp summary
done
echo
echo "== leaf1: does the kernel hold what evpnd wants? (evpnctl check)"
show leaf1 check
echo
echo "== evpnd logs of each node: /run/evpnlab/evpn-l2/<node>.log; API sockets: /run/evpnlab/evpn-l2/<node>/run/evpnd.sock"
if $keep; then
	echo "lab kept; look around with: $bin/evpnlab exec -t $topo leaf1 -- evpnctl show evpn mac"
	echo "remove it with: $bin/evpnlab destroy -t $topo"
fi
if [ -n "$ctlfail" ]; then echo "demo: evpnctl FAILED on:$ctlfail" >&2; fi
if [ $fail != 0 ]; then echo "demo: some pings FAILED" >&2; exit 1; fi
if [ -n "$ctlfail" ]; then exit 1; fi
echo "demo: all pings succeeded"
