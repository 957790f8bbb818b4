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
[ -x /usr/bin/time ] || need_pkgs+=(time) # evpnbench: peak RSS of commands
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

. containerlab/scripts/env.sh
go_ok() { command -v go >/dev/null 2>&1 && go version >/dev/null 2>&1; }
if ! go_ok; then
	# No usable Go: take Go 1.23 from Debian's bookworm-backports; with
	# GOTOOLCHAIN=auto it fetches the version go.mod names.
	if [ "$(id -u)" != 0 ]; then
		echo "deps: Go is not installed; run as root to install it, or install Go >= $(sed -n 's/^go //p' go.mod)" >&2
		exit 1
	fi
	echo "deps: installing Go 1.23 from bookworm-backports"
	src=/etc/apt/sources.list.d/evpnd-bookworm-backports.sources
	if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
		# The same mirror as the machine's bookworm sources.
		mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
		[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
		if [ -z "$mirror" ]; then
			echo "deps: cannot find the machine's Debian mirror to add bookworm-backports; install Go >= $(sed -n 's/^go //p' go.mod) by hand" >&2
			exit 1
		fi
		printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" >"$src"
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends -t bookworm-backports golang-1.23-go ca-certificates >/dev/null
	. containerlab/scripts/env.sh
fi
if ! go_ok; then
	echo "deps: no working Go toolchain; install Go >= $(sed -n 's/^go //p' go.mod) at /usr/local/go and re-run" >&2
	exit 1
fi
go mod download
# staticcheck, pinned, for test.sh: built once into GOPATH/bin and reused.
staticcheck_version=v0.8.2 # staticcheck 2026.2.2
staticcheck="$(go env GOPATH)/bin/staticcheck"
if ! "$staticcheck" -version 2>/dev/null | grep -q "(${staticcheck_version#v})"; then
	echo "deps: installing staticcheck $staticcheck_version"
	go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
fi
