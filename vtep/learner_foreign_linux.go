package vtep

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// OnForeignVXLAN sets fn to receive the changes of the managed VXLAN
// devices' FDB that evpnd does not make (see VXLANChange), so that the
// daemon can have fib repair them at once (fib.Reconciler.KernelChanged)
// rather than at its next resync. Call it before Run; fn runs on Run's
// goroutine and must only enqueue.
//
// Reported: on the VXLAN device of a configured VNI, every added or
// changed entry without extern_learn, VXLAN (self) or bridge (master, on
// the VXLAN port), unicast or flood-list; and every deleted one.
// evpnd writes with extern_learn, so its writes are not reported (most
// never reach user space); its deletes are, since the kernel reports a
// delete with the deleted entry's flags, and the consumer must find them
// harmless (fib does: it has forgotten those entries already). Not
// reported: local (permanent) bridge entries, multicast MACs, changes
// made with extern_learn by another program (a resync finds those). When
// the event socket overruns (ENOBUFS) or fails, changes may be lost: once
// subscribed again, Run reports a VXLANChange with only Lost set, and the
// consumer should read the kernel again; Run's own resync covers only
// local MACs.
//
// Without fn the VXLAN devices' own entries are dropped in the kernel by
// the learner's socket filter, as before; with it, only the added or
// changed ones carrying extern_learn are.
func (l *Learner) OnForeignVXLAN(fn func(VXLANChange)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.foreign = fn
}

// foreignFilter is neighFilter for a learner that reports foreign VXLAN
// changes: it also keeps the VXLAN devices' own (NTF_SELF) notifications,
// except RTM_NEWNEIGH with NTF_EXT_LEARNED, the VXLAN half of every remote
// MAC and flood entry evpnd writes. ARP/ND neighbours are still dropped.
func foreignFilter() []unix.SockFilter {
	const (
		family = nlmsgHdrLen + 0  // ndm_family
		flags  = nlmsgHdrLen + 10 // ndm_flags
		ldb    = unix.BPF_LD | unix.BPF_B | unix.BPF_ABS
		jeq    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jset   = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret    = unix.BPF_RET | unix.BPF_K
	)
	// nlmsg_type is a host-order u16 at offset 4; the neighbour types are
	// below 256, so its low byte says it all.
	typ := uint32(4)
	if binary.NativeEndian.Uint16([]byte{0, 1}) == 1 {
		typ = 5 // big endian
	}
	return []unix.SockFilter{
		/* 0 */ {Code: ldb, K: family},
		/* 1 */ {Code: jeq, K: afBridge, Jt: 0, Jf: 6}, // not AF_BRIDGE: drop
		/* 2 */ {Code: ldb, K: flags},
		/* 3 */ {Code: jset, K: ntfSelf, Jt: 0, Jf: 3}, // bridge entry: keep
		/* 4 */ {Code: jset, K: ntfExtLearned, Jt: 0, Jf: 2}, // VXLAN entry without extern_learn: keep
		/* 5 */ {Code: ldb, K: typ},
		/* 6 */ {Code: jeq, K: rtmDelNeigh, Jt: 0, Jf: 1}, // extern_learn: keep deletes, drop the rest
		/* 7 */ {Code: ret, K: 0xffffffff},
		/* 8 */ {Code: ret, K: 0},
	}
}
