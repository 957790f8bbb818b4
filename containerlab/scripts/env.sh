# Sourced by the scripts here: puts a Go toolchain on PATH. With Go 1.21 or
# newer, GOTOOLCHAIN=auto lets the go command fetch the version go.mod names
# from the Go module proxy.
for d in /usr/local/go/bin /usr/lib/go-1.2[3-9]/bin /usr/lib/go/bin; do
	[ -x "$d/go" ] && PATH="$d:$PATH"
done
export PATH
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
