//go:build !linux

package api

import (
	"errors"
	"net"
)

// peerCredOf is Linux only (SO_PEERCRED): elsewhere every call on the Unix
// socket is refused.
func peerCredOf(*net.UnixConn) (PeerCred, error) {
	return PeerCred{}, errors.New("peer credentials are only read on Linux")
}
