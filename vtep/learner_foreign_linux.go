package vtep

import (
	"golang.org/x/sys/unix"
)

// OnForeignVXLAN sets fn to receive the changes of the managed VXLAN
// devices' FDB (see VXLANChange), so that the daemon can have fib repair
// those it did not make at once (fib.Reconciler.KernelChanged) rather
// than at its next resync. Call it before Run; fn runs on Run's goroutine
// and must only enqueue.
//
// Reported: on the VXLAN device of a configured VNI, every added, changed
// or deleted entry, VXLAN (self) or bridge (master, on the VXLAN port),
// unicast or flood-list. Notifications carry no sender, so evpnd's own
// writes are reported too, with ExternLearn set (as is another program's
// extern_learn entry, which is why they are not dropped), and its deletes
// are: the consumer must find them harmless (fib does: they match its
// record). Not reported: local (permanent) bridge entries and multicast
// MACs. When the event socket overruns (ENOBUFS) or fails, changes may be
// lost: once subscribed again, Run reports a VXLANChange with only Lost
// set, and the consumer should read the kernel again; Run's own resync
// covers only local MACs.
//
// Without fn the VXLAN devices' own entries are dropped in the kernel by
// the learner's socket filter, as before; with it, they reach user space:
// a remote MAC evpnd writes costs two notifications there instead of one.
func (l *Learner) OnForeignVXLAN(fn func(VXLANChange)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.foreign = fn
}

// foreignFilter is neighFilter for a learner that reports VXLAN changes:
// it keeps every bridge-family notification, the VXLAN devices' own
// (NTF_SELF) ones included. ARP/ND neighbours are still dropped.
func foreignFilter() []unix.SockFilter {
	const (
		family = nlmsgHdrLen + 0 // ndm_family
		ldb    = unix.BPF_LD | unix.BPF_B | unix.BPF_ABS
		jeq    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret    = unix.BPF_RET | unix.BPF_K
	)
	return []unix.SockFilter{
		/* 0 */ {Code: ldb, K: family},
		/* 1 */ {Code: jeq, K: afBridge, Jt: 0, Jf: 1}, // not AF_BRIDGE: drop
		/* 2 */ {Code: ret, K: 0xffffffff},
		/* 3 */ {Code: ret, K: 0},
	}
}
