#!/usr/bin/env bash
# Runs evpnd's whole test suite: formatting, vet, staticcheck (deps.sh
# installs the pinned version), the generated-code check,
# unit tests, and the privileged namespace/FRR-interop tests (as root).
# Usage (as root): containerlab/scripts/test.sh [extra go test flags]
set -euo pipefail
cd "$(dirname "$0")/../.."
bash containerlab/scripts/deps.sh
. containerlab/scripts/env.sh

echo "== gofmt"
gofmt="$(go env GOROOT)/bin/gofmt"
bad=$("$gofmt" -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "gofmt needed on:"; echo "$bad"; exit 1; fi
echo "== go vet"
go vet ./...
echo "== staticcheck"
"$(go env GOPATH)/bin/staticcheck" ./...
echo "== generated API code (proto/gen.sh --check)"
proto/gen.sh --check
if [ "$(id -u)" != 0 ]; then
	echo "WARNING: not root: privileged tests (namespaces, kernel FDB, FRR interop) will skip" >&2
fi
echo "== go test"
# -p 1: privileged tests start BGP speakers and namespaces; on a 2-core
# machine running packages one at a time keeps their timing honest.
go test -p 1 -count=1 -timeout 40m "$@" ./...
echo "== go test -race (speaker, fib, daemon)"
go test -race -p 1 -count=1 -timeout 30m "$@" ./speaker/... ./fib/... ./cmd/evpnd/internal/daemon/...
echo "== fuzz: UPDATE bodies over a real BGP session (20 s)"
# One worker: each input is a TCP session to an in-process speaker.
go test -run='^$' -fuzz=FuzzSessionUpdate -fuzztime=20s -parallel=1 ./speaker/
