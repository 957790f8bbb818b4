package api

import (
	"errors"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peerCredOf reads the credentials of the process at the other end of c:
// SO_PEERCRED for its PID, UID and GID, SO_PEERGROUPS (Linux 4.13) for its
// supplementary groups, both as of its connect(2).
func peerCredOf(c *net.UnixConn) (PeerCred, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return PeerCred{}, err
	}
	var cred PeerCred
	var opErr error
	err = rc.Control(func(fd uintptr) {
		u, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			opErr = err
			return
		}
		cred = PeerCred{PID: int(u.Pid), UID: int(u.Uid), GID: int(u.Gid)}
		cred.Groups, opErr = peerGroups(int(fd))
	})
	return cred, errors.Join(err, opErr)
}

// peerGroups reads SO_PEERGROUPS, growing the buffer when the kernel says
// it is too small (ERANGE, with the size it needs).
func peerGroups(fd int) ([]int, error) {
	buf := make([]uint32, 64)
	for {
		n := uint32(len(buf) * 4)
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch e {
		case 0:
			out := make([]int, n/4)
			for i := range out {
				out[i] = int(buf[i])
			}
			return out, nil
		case unix.ERANGE:
			if int(n/4) <= len(buf) {
				return nil, e
			}
			buf = make([]uint32, n/4)
		default:
			return nil, e
		}
	}
}
