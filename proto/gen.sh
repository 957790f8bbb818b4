#!/bin/sh
# Regenerates the Go code of proto/ from the .proto files, with pinned tool
# versions, and lints them.
#
#   proto/gen.sh           regenerate (writes proto/evpnd/v1/*.pb.go)
#   proto/gen.sh --check   fail if regenerating would change anything
#
# The tools are built with `go install` into a cache directory the first
# time (buf takes a minute or two to compile), then reused.
set -eu

BUF_VERSION=v1.75.0
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

here=$(cd "$(dirname "$0")" && pwd)
tools=${EVPND_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/evpnd-tools}/buf-$BUF_VERSION-go-$PROTOC_GEN_GO_VERSION-grpc-$PROTOC_GEN_GO_GRPC_VERSION
mkdir -p "$tools"
install() { # binary module@version
	if [ ! -x "$tools/$1" ]; then
		echo "gen.sh: installing $2" >&2
		GOBIN="$tools" GOFLAGS=-mod=mod go install "$2"
	fi
}
install buf github.com/bufbuild/buf/cmd/buf@$BUF_VERSION
install protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION
install protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION
PATH="$tools:$PATH"
export PATH

check=false
[ "${1:-}" = --check ] && check=true

cd "$here"
buf lint
if $check; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	cp -r . "$tmp/proto"
	(cd "$tmp/proto" && find . -name '*.pb.go' -delete && buf generate)
	if ! diff -r -x '*.proto' -x '*.yaml' -x '*.sh' -x '*.md' . "$tmp/proto" >"$tmp/diff"; then
		cat "$tmp/diff" >&2
		echo "gen.sh: the generated code in proto/ is out of date; run proto/gen.sh and commit the result" >&2
		exit 1
	fi
	echo "gen.sh: generated code is up to date"
	exit 0
fi
find . -name '*.pb.go' -delete
buf generate
echo "gen.sh: generated $(find . -name '*.pb.go' | wc -l) files"
