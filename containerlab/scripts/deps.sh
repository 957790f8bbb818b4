#!/usr/bin/env bash
# Installs what evpnd's demo and tests need on a Debian 12 machine:
# iproute2, ping, FRR (the interop peer) and the Go modules. Idempotent;
# safe to run again. Needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/../.."

need_pkgs=()
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
command -v bridge >/dev/null 2>&1 || need_pkgs+=(iproute2)
command -v ping >/dev/null 2>&1 || need_pkgs+=(iputils-ping)
[ -x /usr/lib/frr/bgpd ] || need_pkgs+=(frr)
command -v ps >/dev/null 2>&1 || need_pkgs+=(procps)
if [ ${#need_pkgs[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps: missing packages (${need_pkgs[*]}); run as root so apt-get can install them" >&2
		exit 1
	fi
	echo "deps: installing ${need_pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
	# The frr package starts its own daemons on the host; evpnd's tests run
	# their own FRR instances in namespaces, so keep the host service off.
	if [ -d /run/systemd/system ] && systemctl is-active --quiet frr 2>/dev/null; then
		systemctl stop frr || true
	fi
fi

if ! command -v go >/dev/null 2>&1; then
	for d in /usr/local/go/bin /usr/lib/go/bin; do
		[ -x "$d/go" ] && export PATH="$d:$PATH" && break
	done
fi
if ! command -v go >/dev/null 2>&1; then
	echo "deps: Go is not installed. evpnd needs Go >= $(sed -n 's/^go //p' go.mod); install it at /usr/local/go and re-run." >&2
	exit 1
fi
go mod download
