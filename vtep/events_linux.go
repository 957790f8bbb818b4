package vtep

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// eventBatch bounds the datagrams read in one go, so that a learner busy
// with a burst still sees its context end and VNI changes.
const eventBatch = 256

// eventPace is the least time between two reads of the event socket that
// find data; see eventSocket.read.
const eventPace = time.Millisecond

var (
	// errMalformed reports a datagram that is not a sequence of whole
	// netlink messages (say, one truncated by a too small buffer). The
	// state it carried is lost, so the learner treats it as an overrun.
	errMalformed = errors.New("malformed or truncated netlink datagram")
	// errInterrupted is read's answer to interrupt.
	errInterrupted = errors.New("interrupted")
)

// eventSocket is a route netlink socket subscribed to the neighbour group
// (RTNLGRP_NEIGH), with an eventfd that interrupts a read waiting on it.
//
// It is read with poll(2) on its own rather than through the Go runtime's
// netpoller: a socket registered there wakes the runtime's epoll_wait for
// every datagram the kernel queues, even while nobody reads it, and those
// wake-ups (a context switch each, dear in a VM) cost more than the
// reading itself in a burst. The poll here waits only when the learner is
// ready to read, so a burst costs one wake-up per eventPace.
type eventSocket struct {
	fd  int // netlink socket, non-blocking
	efd int // eventfd, non-blocking: readable when interrupted

	mu     sync.Mutex // orders interrupt against Close, so efd is never reused under it
	closed bool

	// limited: SO_RCVBUFFORCE was refused, so the receive buffer is
	// capped by net.core.rmem_max.
	limited bool

	// Only the reading goroutine uses these.
	buf      []byte
	lastData time.Time // when the last read that found data ended
}

// openEvents opens the neighbour event socket in ns with a receive buffer
// of rcvbuf bytes: SO_RCVBUFFORCE when the caller may exceed rmem_max
// (CAP_NET_ADMIN), SO_RCVBUF (capped by rmem_max) otherwise.
//
// The socket is connected to the kernel (port ID 0): the kernel then
// refuses unicasts to it from other sockets (netlink_getsockbyportid), so
// a local process cannot inject fake FDB notifications, and the datagrams
// can be read without their source address.
func openEvents(ns netns.NsHandle, rcvbuf int) (*eventSocket, error) {
	return openEventsFiltered(ns, rcvbuf, neighFilter())
}

// openEventsFiltered is openEvents with the socket filter prog, attached
// before the socket joins the group.
func openEventsFiltered(ns netns.NsHandle, rcvbuf int, prog []unix.SockFilter) (*eventSocket, error) {
	fd := -1
	err := inNetns(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open neighbour event socket: %w", err)
	}
	fail := func(op string, err error) (*eventSocket, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("neighbour event socket: %s: %w", op, err)
	}
	limited := false
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
			return fail("set receive buffer", err)
		}
		limited = true
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}); err != nil {
		return fail("attach socket filter", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.RTNLGRP_NEIGH - 1)}); err != nil {
		return fail("join RTNLGRP_NEIGH", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fail("connect to the kernel", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return fail("eventfd", err)
	}
	return &eventSocket{fd: fd, efd: efd, limited: limited, buf: make([]byte, 32<<10)}, nil
}

// Close closes the socket. Only the reading goroutine may call it.
func (s *eventSocket) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return errors.Join(unix.Close(s.fd), unix.Close(s.efd))
}

// interrupt makes a waiting or the next read return errInterrupted. It is
// safe to call from any goroutine, also after Close.
func (s *eventSocket) interrupt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		_, _ = unix.Write(s.efd, one[:])
	}
}

// read waits for datagrams and hands each neighbour message in them to fn
// (its type and its payload, which fn must not keep). It returns nil once
// it has read the socket empty or read eventBatch datagrams,
// errInterrupted after interrupt, or the socket's error: unix.ENOBUFS
// after an overrun.
//
// Reads that find data are paced eventPace apart: read first sleeps out
// what is left of eventPace since the previous one. An event after a
// quiet spell is read at once, but in a burst the learner wakes up once
// per eventPace for a batch rather than once per notification. The kernel
// queues the notifications meanwhile (1 ms of 200k notifications/s is
// some 200 KB of the receive buffer).
func (s *eventSocket) read(fn func(typ uint16, msg []byte)) error {
	if wait := time.Until(s.lastData.Add(eventPace)); wait > 0 {
		if err := s.wait(false, wait); err != nil {
			return err
		}
	}
	for {
		got, err := s.drain(fn)
		if got > 0 {
			s.lastData = time.Now()
		}
		if err != nil || got > 0 {
			return err
		}
		if err := s.wait(true, -1); err != nil {
			return err
		}
	}
}

// drain reads up to eventBatch datagrams, until the socket is empty.
func (s *eventSocket) drain(fn func(typ uint16, msg []byte)) (int, error) {
	got := 0
	for got < eventBatch {
		n, err := unix.Read(s.fd, s.buf)
		switch {
		case err == unix.EAGAIN:
			return got, nil
		case err == unix.EINTR:
			continue
		case err != nil:
			return got, err
		}
		got++
		if err := eachMessage(s.buf[:n], fn); err != nil {
			return got, err
		}
	}
	return got, nil
}

// wait blocks until the eventfd (and, with sock, the socket) is readable
// or timeout passes (negative: no timeout). A readable eventfd is
// consumed and reported as errInterrupted.
func (s *eventSocket) wait(sock bool, timeout time.Duration) error {
	fds := []unix.PollFd{{Fd: int32(s.efd), Events: unix.POLLIN}, {Fd: int32(s.fd), Events: unix.POLLIN}}
	if !sock {
		fds = fds[:1]
	}
	ms := -1
	if timeout >= 0 {
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	for {
		_, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll: %w", err)
		}
		break
	}
	if fds[0].Revents != 0 {
		var b [8]byte
		_, _ = unix.Read(s.efd, b[:]) // resets the counter
		return errInterrupted
	}
	return nil
}

// neighFilter is a classic BPF socket filter that keeps only the
// neighbour notifications classify could accept: AF_BRIDGE entries without
// NTF_SELF. The kernel runs it when it broadcasts a notification
// (do_one_broadcast), so the dropped ones are never queued, never wake the
// learner and never count against the receive buffer. That drops, before
// user space sees them, the VXLAN half of every remote MAC evpnd writes
// (NTF_SELF) and every ARP/ND neighbour change (AF_INET, AF_INET6), such
// as evpnd's ARP suppression entries. A kernel notification is one
// message per datagram, the message (nlmsghdr, then ndmsg) at offset 0.
func neighFilter() []unix.SockFilter {
	const (
		family = nlmsgHdrLen + 0  // ndm_family
		flags  = nlmsgHdrLen + 10 // ndm_flags
		ldb    = unix.BPF_LD | unix.BPF_B | unix.BPF_ABS
		jeq    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jset   = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret    = unix.BPF_RET | unix.BPF_K
	)
	return []unix.SockFilter{
		{Code: ldb, K: family},
		{Code: jeq, K: afBridge, Jt: 0, Jf: 3}, // not AF_BRIDGE: drop
		{Code: ldb, K: flags},
		{Code: jset, K: ntfSelf, Jt: 1, Jf: 0}, // NTF_SELF: drop
		{Code: ret, K: 0xffffffff},             // keep all of it
		{Code: ret, K: 0},                      // drop (also what a too short message gets)
	}
}

// eachMessage splits a datagram into netlink messages and passes the
// neighbour ones to fn. An NLMSG_ERROR is returned as its errno.
func eachMessage(b []byte, fn func(typ uint16, msg []byte)) error {
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return errMalformed
		}
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		if l < nlmsgHdrLen || l > len(b) {
			return errMalformed
		}
		typ := binary.NativeEndian.Uint16(b[4:6])
		body := b[nlmsgHdrLen:l]
		switch typ {
		case rtmNewNeigh, rtmDelNeigh:
			fn(typ, body)
		case nlmsgError:
			if len(body) >= 4 {
				if e := int32(binary.NativeEndian.Uint32(body[0:4])); e != 0 {
					return unix.Errno(-e)
				}
			}
		}
		b = b[min(rtaAlign(l), len(b)):] // NLMSG_ALIGN is 4 bytes too
	}
	return nil
}
