//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/evpnd/evpnd/fib/nlfdb"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// fdbEvent is one bridge-family neighbour notification (an FDB entry added,
// changed or deleted), as the kernel multicasts it on RTNLGRP_NEIGH.
type fdbEvent struct {
	Del     bool // RTM_DELNEIGH
	Ifindex int32
	Flags   uint8 // NTF_*
	State   uint16
	MAC     evpn.MAC
	Dst     netip.Addr // NDA_DST: the VXLAN remote (self entries of a VXLAN device)
	// Master: the entry is the bridge's (it carries NDA_MASTER); otherwise
	// it is the device's own (VXLAN FDB, "self").
	Master bool
}

// parseFDBEvents calls fn for every AF_BRIDGE RTM_NEWNEIGH/RTM_DELNEIGH in
// a buffer read from a netlink socket, and skips everything else. It never
// allocates per message: 200k notifications arrive in about a second.
func parseFDBEvents(b []byte, fn func(*fdbEvent)) error {
	var ev fdbEvent
	return nlfdb.Messages(b, func(typ uint16, msg []byte) {
		if typ != unix.RTM_NEWNEIGH && typ != unix.RTM_DELNEIGH {
			return
		}
		n, _ := nlfdb.Parse(msg) // a malformed tail leaves what came before it
		mac, ok := n.MAC()
		if n.Family != unix.AF_BRIDGE || !ok {
			return
		}
		ev = fdbEvent{Del: typ == unix.RTM_DELNEIGH, Ifindex: n.Ifindex, State: n.State, Flags: n.Flags,
			MAC: mac, Dst: n.Dst, Master: n.Master != 0}
		fn(&ev)
	})
}

// errOverflow: the kernel dropped notifications (ENOBUFS); the consumer
// must count from a dump instead.
var errOverflow = errors.New("netlink neighbour subscription overflowed (ENOBUFS)")

// fdbWatch is a netlink socket subscribed to neighbour notifications in
// one namespace.
type fdbWatch struct {
	fd  int
	buf []byte
}

// watchFDB subscribes to RTNLGRP_NEIGH inside ns with a receive buffer of
// rcvbuf bytes (forced past rmem_max; needs CAP_NET_ADMIN).
func watchFDB(ns *netns.NS, rcvbuf int) (*fdbWatch, error) {
	return watchGroups(ns, rcvbuf, unix.RTNLGRP_NEIGH)
}

// watchGroups subscribes to the given rtnetlink multicast groups
// (RTNLGRP_*) inside ns, as watchFDB.
func watchGroups(ns *netns.NS, rcvbuf int, groups ...uint32) (*fdbWatch, error) {
	fd := -1
	err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlink socket in %s: %w", ns.Name, err)
	}
	fail := func(op string, err error) (*fdbWatch, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink socket in %s: %s: %w", ns.Name, op, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		return fail("SO_RCVBUFFORCE", err)
	}
	tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("SO_RCVTIMEO", err)
	}
	var mask uint32
	for _, g := range groups {
		mask |= 1 << (g - 1)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: mask}); err != nil {
		return fail("bind", err)
	}
	return &fdbWatch{fd: fd, buf: make([]byte, 1<<20)}, nil
}

// Run reads notifications until ctx ends, calling fn for each FDB event
// with the time its buffer was read. It returns errOverflow when the kernel
// dropped notifications, nil when ctx ends.
func (w *fdbWatch) Run(ctx context.Context, fn func(ev *fdbEvent, at time.Time)) error {
	return w.RunRaw(ctx, func(b []byte, at time.Time) error {
		return parseFDBEvents(b, func(ev *fdbEvent) { fn(ev, at) })
	})
}

// RunRaw is Run with fn given each buffer read (whole netlink messages)
// and the time it was read; an error from fn ends it.
func (w *fdbWatch) RunRaw(ctx context.Context, fn func(b []byte, at time.Time) error) error {
	for ctx.Err() == nil {
		n, _, err := unix.Recvfrom(w.fd, w.buf, 0)
		at := time.Now()
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOBUFS):
			return errOverflow
		case err != nil:
			return fmt.Errorf("netlink recv: %w", err)
		}
		if err := fn(w.buf[:n], at); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the socket; call it after Run has returned.
func (w *fdbWatch) Close() error { return unix.Close(w.fd) }
