#!/usr/bin/env bash
# Deploys the topologies under containerlab/ with real Docker and
# containerlab, as a user would, and checks them; the same checks as
# TestContainerlab (containerlab/labcheck), which this script runs:
#   1. builds evpnd and evpnctl into containerlab/bin (CGO_ENABLED=0) and
#      the image: docker build --network host -t evpnd:latest containerlab/
#   2. per topology, one after another: containerlab validate and deploy
#      (lab directory in a temporary directory, CLAB_LABDIR_BASE); the
#      connectivity matrix via docker exec (hosts in a VNI reach each
#      other, hosts in different VNIs do not at layer 2, and where they
#      route to each other through their gateways, as in evpn-fabric, they
#      reach each other routed, over IPv4 and IPv6); every
#      leaf's "evpnctl show evpn mac" against the hosts' MACs (no
#      containerlab temporary aa:c1:ab MACs); in evpn-fabric, docker kill
#      of spine1 during pings, with the loss reported; containerlab destroy
#      --cleanup, and a check that no container, host link or lab directory
#      is left.
# Without a working Docker or containerlab it says so and skips.
# Usage (as root): containerlab/scripts/clab-deploy.sh [TOPOLOGY...]
#   TOPOLOGY: evpn-l2, evpn-l2-frr, evpn-fabric (default: all)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then echo "clab-deploy: run as root (docker and containerlab need it)" >&2; exit 1; fi
if ! out=$(docker info 2>&1); then
	echo "clab-deploy: SKIPPED: Docker does not work here (docker info: $(echo "$out" | tail -1))"
	exit 0
fi
if ! out=$(containerlab version 2>&1); then
	echo "clab-deploy: SKIPPED: containerlab does not work here (containerlab version: $(echo "$out" | tail -1))"
	exit 0
fi
. containerlab/scripts/env.sh
run=TestContainerlab
if [ $# -gt 0 ]; then
	pat=""
	for t in "$@"; do
		t=${t%.clab.yml}
		[ -f "containerlab/$t.clab.yml" ] || { echo "clab-deploy: no topology containerlab/$t.clab.yml" >&2; exit 1; }
		pat="$pat|^${t//./\\.}\\.clab\\.yml\$"
	done
	run="TestContainerlab/(${pat#|})"
fi
export CLAB_VERSION_CHECK=disable
exec go test -count=1 -timeout 20m -run "$run" -v ./containerlab/labcheck
