//go:build !linux

package speaker

import (
	"errors"
	"net/netip"
)

// dropSessions is only implemented on Linux; elsewhere a graceful Stop
// falls back to GoBGP's StopBgp, which sends Cease.
func dropSessions(func(local, remote netip.AddrPort) bool) (int, error) {
	return 0, errors.ErrUnsupported
}
