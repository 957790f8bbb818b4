package speaker

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// dropSessions shuts down, in both directions, every TCP socket of this
// process that isBGP recognises as a BGP session. The peer sees the
// connection close without a NOTIFICATION, as when the process dies, and
// keeps our routes if graceful restart was negotiated (RFC 4724 §4.2);
// GoBGP's own writes on the socket fail from then on, so the Cease that
// StopBgp tries to send afterwards never leaves. The descriptors stay
// owned, and are closed, by GoBGP.
//
// NOTE: GoBGP v3 had no API to close a session without a NOTIFICATION;
// this is the in-process equivalent of exiting. GoBGP v4's StopBgp with
// AllowGracefulRestart, which Stop also sets, skips the NOTIFICATION to
// graceful-restart peers; the socket shutdown stays for the others.
func dropSessions(isBGP func(local, remote netip.AddrPort) bool) (int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, fmt.Errorf("list own sockets: %w", err)
	}
	n := 0
	var errs []error
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		link, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || !strings.HasPrefix(link, "socket:") {
			continue
		}
		typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		if err != nil || typ != unix.SOCK_STREAM {
			continue
		}
		rsa, err := unix.Getpeername(fd)
		if err != nil {
			continue // a listener, or not connected
		}
		lsa, err := unix.Getsockname(fd)
		if err != nil {
			continue
		}
		local, lok := addrPort(lsa)
		remote, rok := addrPort(rsa)
		if !lok || !rok || !isBGP(local, remote) {
			continue
		}
		if err := unix.Shutdown(fd, unix.SHUT_RDWR); err != nil && !errors.Is(err, unix.ENOTCONN) {
			errs = append(errs, fmt.Errorf("shutdown session %s-%s: %w", local, remote, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func addrPort(sa unix.Sockaddr) (netip.AddrPort, bool) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), true
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port)), true
	}
	return netip.AddrPort{}, false
}
