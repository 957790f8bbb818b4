package vtep

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/evpnd/evpnd/fib/nlfdb"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// hostsRcvBuf is the receive buffer of WatchHosts' neighbour socket. fib
// writes an ARP/ND suppression (extern_learn) neighbour on the SVI per
// remote MAC+IP route, tens of thousands in a burst, each a notification
// of about 1 KB of buffer (skb truesize) that the watch must read only to
// skip it.
const hostsRcvBuf = 16 << 20

// WatchHosts reports the local MAC+IP bindings (HostTable's rules) of the
// SVIs svis (bridge name → L2VNI) in namespace ns (netns.None() for the
// caller's): first those the kernel holds, then every change, to out,
// until ctx ends (nil) or the watch fails (an error: the caller starts it
// again, which reports the current bindings afresh). The SVIs' indexes
// are read at start: a re-created SVI needs a restart of the watch.
// gateways are the SVIs' own addresses, never reported.
//
// The neighbour socket is filtered in the kernel to the SVIs' ARP and ND
// entries (bridge FDB and other links' notifications never reach it).
// When it overruns anyway (ENOBUFS: a burst of fib's extern_learn
// entries), the watch subscribes again and dumps the SVIs' neighbours,
// reporting how they differ from what it had reported, so no local host
// that appeared or vanished meanwhile is missed; that is not a failure.
func WatchHosts(ctx context.Context, ns netns.NsHandle, svis map[string]uint32, gateways map[uint32][]netip.Addr, out func(HostEvent)) error {
	return watchHosts(ctx, ns, svis, gateways, out, hostsRcvBuf)
}

func watchHosts(ctx context.Context, ns netns.NsHandle, svis map[string]uint32, gateways map[uint32][]netip.Addr, out func(HostEvent), rcvbuf int) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("watch hosts: %w", err)
	}
	vniOf := map[int32]uint32{}
	for name, vni := range svis {
		l, err := h.LinkByName(name)
		if err != nil {
			h.Close()
			return fmt.Errorf("watch hosts: SVI %s: %w", name, err)
		}
		vniOf[int32(l.Attrs().Index)] = vni
	}
	h.Close()
	w := &hostWatch{ns: ns, vniOf: vniOf, tab: NewHostTable(gateways), out: out, rcvbuf: rcvbuf}
	overruns := 0
	for {
		err := w.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		// A truncated datagram lost state as an overrun does: resync too.
		if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, errMalformed) {
			return fmt.Errorf("watch hosts: %w", err)
		}
		// Expected in bursts, and handled: say so once, quietly after.
		overruns++
		lvl := slog.LevelDebug
		if overruns == 1 {
			lvl = slog.LevelInfo
		}
		slog.Log(ctx, lvl, "watch hosts: neighbour events overran the socket; resyncing the local hosts from a dump", "overruns", overruns)
	}
}

// hostWatch is WatchHosts' state; only its goroutine touches it.
type hostWatch struct {
	ns     netns.NsHandle
	vniOf  map[int32]uint32 // SVI ifindex → L2VNI
	tab    *HostTable
	out    func(HostEvent)
	rcvbuf int
}

// session subscribes, resyncs from a dump and then follows the events
// until the socket fails (unix.ENOBUFS after an overrun) or ctx ends.
func (w *hostWatch) session(ctx context.Context) error {
	idx := make([]int32, 0, len(w.vniOf))
	for i := range w.vniOf {
		idx = append(idx, i)
	}
	sub, err := openEventsFiltered(w.ns, w.rcvbuf, hostFilter(idx))
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, sub.interrupt)
	defer func() {
		stop()
		sub.Close()
	}()
	// Subscribed first, dumped second: a change racing the dump is queued
	// after it, so applying the queue converges on the kernel's state.
	dump, err := retryDump(func() ([]NeighUpdate, error) { return w.dump(idx) })
	if err != nil {
		return fmt.Errorf("dump the SVIs' neighbours: %w", err)
	}
	for _, ev := range w.tab.Resync(dump) {
		w.out(ev)
	}
	for {
		err := sub.read(w.message)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && !errors.Is(err, errInterrupted) {
			return err
		}
	}
}

// message handles one notification. fib's extern_learn entries, most of
// them in a burst, cost a parse in place and a map lookup: HostTable
// drops them unless they replace a reported host.
func (w *hostWatch) message(typ uint16, b []byte) {
	if u, ok := w.decode(typ, b); ok {
		if ev, ok := w.tab.Update(u); ok {
			w.out(ev)
		}
	}
}

func (w *hostWatch) decode(typ uint16, b []byte) (NeighUpdate, bool) {
	n, ok := nlfdb.Parse(b)
	if !ok || (n.Family != unix.AF_INET && n.Family != unix.AF_INET6) {
		return NeighUpdate{}, false
	}
	vni, ok := w.vniOf[n.Ifindex]
	if !ok || !n.Dst.IsValid() {
		return NeighUpdate{}, false
	}
	mac, _ := n.MAC()
	return NeighUpdate{Deleted: typ == rtmDelNeigh, VNI: vni, IP: n.Dst, MAC: mac, State: int(n.State), Flags: int(n.Flags)}, true
}

// dump lists the ARP and ND neighbours of the SVIs idx in w.ns, each
// filtered by the kernel (NDA_IFINDEX); an error wraps
// netlink.ErrDumpInterrupted when a change interrupted one.
func (w *hostWatch) dump(idx []int32) ([]NeighUpdate, error) {
	var out []NeighUpdate
	err := inNetns(w.ns, func() error {
		for _, i := range idx {
			req := nl.NewNetlinkRequest(unix.RTM_GETNEIGH, unix.NLM_F_DUMP)
			req.AddData(&netlink.Ndmsg{Family: unix.AF_UNSPEC})
			req.AddData(nl.NewRtAttr(unix.NDA_IFINDEX, nl.Uint32Attr(uint32(i))))
			err := req.ExecuteIter(unix.NETLINK_ROUTE, unix.RTM_NEWNEIGH, func(m []byte) bool {
				if u, ok := w.decode(rtmNewNeigh, m); ok {
					out = append(out, u)
				}
				return true
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// hostFilter is a classic BPF socket filter that keeps only the ARP and
// ND (AF_INET, AF_INET6) neighbour notifications of the links idx (all of
// them when there are too many to list in one program): the bridge FDB's
// and the other links' never count against the receive buffer.
func hostFilter(idx []int32) []unix.SockFilter {
	const (
		family  = nlmsgHdrLen + 0 // ndm_family
		ifindex = nlmsgHdrLen + 4 // ndm_ifindex
		ldb     = unix.BPF_LD | unix.BPF_B | unix.BPF_ABS
		ldw     = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq     = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret     = unix.BPF_RET | unix.BPF_K
		maxIdx  = 200 // jump offsets are 8 bits
	)
	if len(idx) > maxIdx {
		idx = nil
	}
	n := uint8(len(idx))
	prog := []unix.SockFilter{
		/* 0 */ {Code: ldb, K: family},
		/* 1 */ {Code: jeq, K: unix.AF_INET, Jt: 1},
		/* 2 */ {Code: jeq, K: unix.AF_INET6, Jf: n + 1}, // neither: drop
	}
	if n > 0 {
		prog = append(prog, unix.SockFilter{Code: ldw, K: ifindex})
		for j, i := range idx {
			// BPF_ABS words load in network order; ndm_ifindex is native.
			var b [4]byte
			binary.NativeEndian.PutUint32(b[:], uint32(i))
			prog = append(prog, unix.SockFilter{Code: jeq, K: binary.BigEndian.Uint32(b[:]), Jt: n - uint8(j)})
		}
	} else {
		prog[1].Jt, prog[2].Jt, prog[2].Jf = 2, 1, 0
	}
	prog = append(prog,
		unix.SockFilter{Code: ret, K: 0},          // drop
		unix.SockFilter{Code: ret, K: 0xffffffff}, // keep all of it
	)
	return prog
}
