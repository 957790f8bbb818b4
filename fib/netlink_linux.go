package fib

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	// chunkMsgs bounds the messages per sendmsg. Each one is answered by an
	// ack that sits in the receive buffer until read, so the receive buffer
	// must hold a chunk's acks (about 1 KiB of skb each).
	chunkMsgs  = 256
	chunkBytes = 64 << 10
	rcvBuf     = 8 << 20
	sndBuf     = 1 << 20
	// ioTimeout bounds one send or receive; a chunk without answers then
	// fails and is retried.
	ioTimeout    = 10 * time.Second
	dumpAttempts = 10
)

// NetlinkKernel reads and writes bridge FDB entries in one network
// namespace through rtnetlink. It sends up to 256 RTM_NEWNEIGH/RTM_DELNEIGH
// per sendmsg on its own socket, each with NLM_F_ACK, and maps every ack
// back to its Op by sequence number. A netlink.Handle in the same namespace
// resolves device names.
//
// Dump reads through a second socket of its own, so that a Dump (such as
// Reconciler.Check's, from another goroutine) never waits for an Apply
// and an Apply never waits for a dump, which takes seconds for 100k MACs.
// Dumps wait for each other; Applies wait for each other. All methods are
// safe for concurrent use.
//
// NOTE: acking only the last message of a sendmsg (the kernel answers
// failures regardless) measured no clear gain here, within the noise of a
// shared machine, so every message is acked.
type NetlinkKernel struct {
	h *netlink.Handle // safe for concurrent use: one lock per request

	mu     sync.Mutex // Apply
	w      nlSock
	buf    []byte // outgoing chunk
	refs   []int  // message index → op index
	links  map[string]linkInfo
	maxMsg int
	// relink is set by Dump: devices may have been recreated or
	// enslaved since they were looked up, so Apply drops its cache.
	relink atomic.Bool

	dmu sync.Mutex // Dump
	r   nlSock
}

// nlSock is one rtnetlink socket with its sequence numbers and receive
// buffer; its owner serialises the use.
type nlSock struct {
	fd   int
	seq  uint32
	rbuf []byte
	msgs []nlMsg
	// kernel is the destination of sends. Each socket has its own:
	// unix.Sendto writes into the address it is given.
	kernel unix.SockaddrNetlink
}

type linkInfo struct {
	index     int32
	hasMaster bool
}

// NewNetlinkKernel opens netlink sockets in namespace ns; a closed handle
// (netns.None()) means the caller's current namespace.
func NewNetlinkKernel(ns netns.NsHandle) (*NetlinkKernel, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("fib: netlink handle: %w", err)
	}
	fd, err := socketAt(ns)
	if err != nil {
		h.Close()
		return nil, err
	}
	dfd, err := socketAt(ns)
	if err != nil {
		unix.Close(fd)
		h.Close()
		return nil, err
	}
	k := &NetlinkKernel{
		h:     h,
		w:     nlSock{fd: fd, rbuf: make([]byte, 64<<10)},
		r:     nlSock{fd: dfd, rbuf: make([]byte, 64<<10)},
		links: make(map[string]linkInfo),
	}
	k.maxMsg = chunkMsgs
	if sz, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
		// Without CAP_NET_ADMIN the buffer may be small: keep the acks of
		// one chunk within half of it.
		k.maxMsg = max(2, min(chunkMsgs, sz/2/1024))
	}
	return k, nil
}

// Close releases the sockets.
func (k *NetlinkKernel) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dmu.Lock()
	defer k.dmu.Unlock()
	if k.w.fd < 0 {
		return nil
	}
	k.h.Close()
	err := errors.Join(unix.Close(k.w.fd), unix.Close(k.r.fd))
	k.w.fd, k.r.fd = -1, -1
	return err
}

// socketAt opens the batch socket inside ns from a goroutine locked to its
// thread. If the thread cannot return to its namespace it stays locked and
// dies with the goroutine.
func socketAt(ns netns.NsHandle) (int, error) {
	if !ns.IsOpen() {
		return openSocket()
	}
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, fmt.Errorf("fib: current netns: %w", err)}
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, fmt.Errorf("fib: enter netns: %w", err)}
			return
		}
		fd, err := openSocket()
		if rerr := netns.Set(orig); rerr != nil {
			if fd >= 0 {
				unix.Close(fd)
			}
			ch <- result{-1, errors.Join(err, fmt.Errorf("fib: restore netns: %w", rerr))}
			return // the thread stays locked and exits
		}
		runtime.UnlockOSThread()
		ch <- result{fd, err}
	}()
	r := <-ch
	return r.fd, r.err
}

func openSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return -1, fmt.Errorf("fib: netlink socket: %w", err)
	}
	fail := func(op string, err error) (int, error) {
		unix.Close(fd)
		return -1, fmt.Errorf("fib: netlink socket %s: %w", op, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fail("bind", err)
	}
	// Large buffers need CAP_NET_ADMIN (FORCE); fall back to what rmem_max
	// allows.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sndBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sndBuf)
	}
	// Acks without the echoed request, with the kernel's error text.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	// Strict checking lets an FDB dump be filtered by port (NDA_IFINDEX).
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1)
	tv := unix.NsecToTimeval(ioTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("SO_RCVTIMEO", err)
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return fail("SO_SNDTIMEO", err)
	}
	return fd, nil
}

var errClosed = errors.New("fib: netlink kernel is closed")

func (s *nlSock) send(b []byte) error {
	if s.fd < 0 {
		return errClosed
	}
	for {
		s.kernel.Family = unix.AF_NETLINK
		err := unix.Sendto(s.fd, b, 0, &s.kernel)
		if err != unix.EINTR {
			return err
		}
	}
}

// recv reads one datagram from the kernel and splits it into messages.
func (s *nlSock) recv() ([]nlMsg, error) {
	for {
		n, from, err := unix.Recvfrom(s.fd, s.rbuf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue // not from the kernel
		}
		s.msgs, err = parseMsgs(s.rbuf[:n], s.msgs[:0])
		return s.msgs, err
	}
}

func (s *nlSock) nextSeq() uint32 {
	s.seq++ // wraps; chunk indices are computed modulo 2^32
	return s.seq
}

// lookup asks the kernel for a device.
func (k *NetlinkKernel) lookup(name string) (linkInfo, error) {
	l, err := k.h.LinkByName(name)
	if err != nil {
		return linkInfo{}, fmt.Errorf("device %s: %w", name, err)
	}
	return linkInfo{index: int32(l.Attrs().Index), hasMaster: l.Attrs().MasterIndex != 0}, nil
}

// resolve returns a device's ifindex, from Apply's cache or the kernel.
func (k *NetlinkKernel) resolve(name string) (linkInfo, error) {
	if li, ok := k.links[name]; ok {
		return li, nil
	}
	li, err := k.lookup(name)
	if err != nil {
		return li, err
	}
	k.links[name] = li
	return li, nil
}

// Apply implements Kernel.
func (k *NetlinkKernel) Apply(ctx context.Context, ops []Op) []error {
	errs := make([]error, len(ops))
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.relink.Swap(false) {
		clear(k.links)
	}
	var one [2]neighMsg
	next := 0
	for next < len(ops) {
		if err := ctx.Err(); err != nil {
			for i := next; i < len(ops); i++ {
				errs[i] = err
			}
			break
		}
		// Fill one chunk.
		k.buf, k.refs = k.buf[:0], k.refs[:0]
		base := k.w.seq + 1
		for ; next < len(ops); next++ {
			op := ops[next]
			li, err := k.resolve(op.Entry.Dev)
			if err != nil {
				var nf netlink.LinkNotFoundError
				if op.Kind == OpDelete && errors.As(err, &nf) {
					continue // no device, no entry
				}
				errs[next] = fmt.Errorf("fib: %s: %w", op, err)
				continue
			}
			msgs := one[:0]
			switch op.Kind {
			case OpSet:
				if !op.Entry.IsFlood() && !li.hasMaster {
					delete(k.links, op.Entry.Dev) // look again at the retry
					errs[next] = fmt.Errorf("fib: %s: %s is not a bridge port; enslave it to the VNI's bridge", op, op.Entry.Dev)
					continue
				}
				msgs = setMsgs(op, li.index, msgs)
			case OpDelete:
				msgs = append(msgs, deleteMsgs(op, li.index)...)
			}
			if len(k.refs)+len(msgs) > k.maxMsg || len(k.buf)+len(msgs)*64 > chunkBytes {
				break
			}
			for _, m := range msgs {
				m.flags |= unix.NLM_F_ACK
				k.buf = appendNeighMsg(k.buf, m, k.w.nextSeq())
				k.refs = append(k.refs, next)
			}
		}
		if len(k.refs) == 0 {
			continue
		}
		k.exchange(ops, errs, base)
	}
	return errs
}

// exchange sends the chunk in k.buf and reads one answer per message.
// Messages without an answer (lost acks, timeout) fail their op; all ops
// are idempotent, so the reconciler's retry is safe.
func (k *NetlinkKernel) exchange(ops []Op, errs []error, base uint32) {
	fail := func(err error) {
		for _, oi := range k.refs {
			if errs[oi] == nil {
				errs[oi] = fmt.Errorf("fib: %s: %w", ops[oi], err)
			}
		}
	}
	if err := k.w.send(k.buf); err != nil {
		fail(fmt.Errorf("sendmsg: %w", err))
		return
	}
	pending := len(k.refs)
	answered := make([]bool, pending)
	for pending > 0 {
		msgs, err := k.w.recv()
		if err != nil {
			// ENOBUFS: acks were dropped; EAGAIN: timeout.
			for j, oi := range k.refs {
				if !answered[j] && errs[oi] == nil {
					errs[oi] = fmt.Errorf("fib: %s: reading ack: %w", ops[oi], err)
				}
			}
			return
		}
		for _, m := range msgs {
			if m.typ != unix.NLMSG_ERROR {
				continue
			}
			seq, aerr := ackResult(m)
			j := int(seq - base)
			if seq-base >= uint32(len(k.refs)) || answered[j] {
				continue // a late answer to an earlier chunk
			}
			answered[j] = true
			pending--
			if aerr == nil {
				continue
			}
			oi := k.refs[j]
			if ops[oi].Kind == OpDelete && ignorableDeleteErr(aerr) {
				continue
			}
			if errors.Is(aerr, unix.ENODEV) {
				delete(k.links, ops[oi].Entry.Dev) // device recreated: look it up again
			}
			errs[oi] = errors.Join(errs[oi], fmt.Errorf("fib: %s: %w", ops[oi], aerr))
		}
	}
}

// ignorableDeleteErr reports errors that mean "already gone". ENOENT also
// answers a bridge delete whose MAC now sits on another port (learned
// locally): that entry is not ours and stays.
func ignorableDeleteErr(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENODEV)
}

// Dump implements Kernel. For a few devices it dumps each one's FDB
// (filtered by the kernel to that port); for more it reads the whole bridge
// FDB once and keeps the entries of the given devices. An interrupted dump
// is read again. It uses its own socket: see NetlinkKernel.
func (k *NetlinkKernel) Dump(ctx context.Context, vnis []VNIDevices) ([]KernelEntry, error) {
	k.dmu.Lock()
	defer k.dmu.Unlock()
	k.relink.Store(true)
	byIndex := make(map[int32]VNIDevices, len(vnis))
	// The VNIs' bridges: a MAC's bridge entry on one of their access
	// ports is reported as Access.
	byBridge := make(map[int32]VNIDevices, len(vnis))
	bridgeOf := make(map[int32]int32, len(vnis)) // VXLAN device → its bridge
	var out []KernelEntry
	for _, v := range vnis {
		li, err := k.lookup(v.VXLAN)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) {
				continue // no device, no entries
			}
			return nil, fmt.Errorf("fib: dump: %w", err)
		}
		byIndex[li.index] = v
		out = append(out, KernelEntry{VNI: v.VNI, Dev: v.VXLAN, Device: true})
		if v.Bridge == "" {
			continue
		}
		if bi, err := k.lookup(v.Bridge); err == nil {
			byBridge[bi.index] = v
			bridgeOf[li.index] = bi.index
		}
	}
	if len(byIndex) == 0 {
		return out, nil
	}
	f := dumpFilter{byIndex: byIndex, byBridge: byBridge}
	if len(byIndex) > perDeviceDumps {
		return k.dumpRetry(ctx, f, out)
	}
	for idx := range byIndex {
		// One bridge's FDB (all its ports, the VXLAN device's own
		// entries included), or the VXLAN port's alone when its bridge
		// is unknown.
		g := f
		if br, ok := bridgeOf[idx]; ok {
			g.master = br
		} else {
			g.port = idx
		}
		var err error
		if out, err = k.dumpRetry(ctx, g, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// dumpFilter is what one FDB dump reads (the whole table when port and
// master are 0) and keeps.
type dumpFilter struct {
	byIndex  map[int32]VNIDevices // managed VXLAN devices
	byBridge map[int32]VNIDevices // their bridges
	port     int32                // NDA_IFINDEX: one port's entries
	master   int32                // NDA_MASTER: one bridge's entries
}

// perDeviceDumps is the number of devices up to which Dump reads each
// device's FDB separately rather than the whole table.
const perDeviceDumps = 8

func (k *NetlinkKernel) dumpRetry(ctx context.Context, f dumpFilter, out []KernelEntry) ([]KernelEntry, error) {
	var err error
	n := len(out)
	for attempt := 1; attempt <= dumpAttempts; attempt++ {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		out, err = k.dumpOnce(f, out[:n])
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) && !errors.Is(err, unix.EINTR) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("fib: dump interrupted %d times: %w", dumpAttempts, err)
}

// dumpOnce reads the bridge FDB as f says.
func (k *NetlinkKernel) dumpOnce(f dumpFilter, out []KernelEntry) ([]KernelEntry, error) {
	seq := k.r.nextSeq()
	req := make([]byte, unix.SizeofNlMsghdr+sizeofNdmsg, unix.SizeofNlMsghdr+sizeofNdmsg+8)
	switch {
	case f.master != 0:
		req = appendAttr(req, unix.NDA_MASTER, native.AppendUint32(nil, uint32(f.master)))
	case f.port != 0:
		req = appendAttr(req, unix.NDA_IFINDEX, native.AppendUint32(nil, uint32(f.port)))
	}
	native.PutUint32(req[0:], uint32(len(req)))
	native.PutUint16(req[4:], unix.RTM_GETNEIGH)
	native.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	native.PutUint32(req[8:], seq)
	req[unix.SizeofNlMsghdr] = unix.AF_BRIDGE
	if err := k.r.send(req); err != nil {
		return nil, fmt.Errorf("fib: dump request: %w", err)
	}
	intr := false
	for {
		msgs, err := k.r.recv()
		if err != nil {
			// The rest of this dump may still arrive; later reads skip it
			// by sequence number.
			return nil, fmt.Errorf("fib: dump read: %w", err)
		}
		for _, m := range msgs {
			if m.seq != seq {
				continue
			}
			if m.flags&unix.NLM_F_DUMP_INTR != 0 {
				intr = true
			}
			switch m.typ {
			case unix.NLMSG_DONE:
				if intr {
					return nil, netlink.ErrDumpInterrupted
				}
				return out, nil
			case unix.NLMSG_ERROR:
				_, aerr := ackResult(m)
				if aerr == nil {
					aerr = errors.New("unexpected ack")
				}
				return nil, fmt.Errorf("fib: dump: %w", aerr)
			case unix.RTM_NEWNEIGH:
				e, ok := parseFDB(m.data)
				// The bridge reports its entries with NDA_MASTER and
				// without NTF_MASTER; VXLAN entries carry NTF_SELF.
				if !ok || (e.ntf&unix.NTF_SELF == 0 && e.master == 0) {
					continue
				}
				self := e.ntf&unix.NTF_SELF != 0
				dev, ok := f.byIndex[e.ifindex]
				if !ok {
					// A MAC learned on an access port of a VNI's bridge
					// (not the bridge's own entries, not fib's).
					if dev, ok = f.byBridge[e.master]; ok && !self && e.ifindex != e.master &&
						e.ntf&unix.NTF_EXT_LEARNED == 0 && e.state&unix.NUD_PERMANENT == 0 && e.mac.IsUnicast() {
						out = append(out, KernelEntry{VNI: dev.VNI, Dev: dev.VXLAN, MAC: e.mac, Access: true})
					}
					continue
				}
				out = append(out, KernelEntry{
					VNI:         dev.VNI,
					Dev:         dev.VXLAN,
					MAC:         e.mac,
					VTEP:        e.dst,
					SendVNI:     vniOverride(e.vni, dev.VNI),
					Self:        self,
					ExternLearn: e.ntf&unix.NTF_EXT_LEARNED != 0,
					Sticky:      !self && e.ntf&ntfSticky != 0,
					Local:       !self && e.state&unix.NUD_PERMANENT != 0,
				})
			}
		}
	}
}

var _ Kernel = (*NetlinkKernel)(nil)
