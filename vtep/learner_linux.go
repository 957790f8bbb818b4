package vtep

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// defaultRcvBuf is the event socket's receive buffer. A notification
// takes about 1 KB of it (the skb's truesize), so 16 MB holds a backlog of
// some 16k notifications; beyond that the socket overruns and Run resyncs.
const defaultRcvBuf = 16 << 20

// Learner watches the bridge FDB of the managed bridges in one network
// namespace and reports the MACs learned on their access ports.
type Learner struct {
	ns  netns.NsHandle
	log *slog.Logger

	mu       sync.Mutex
	cfg      map[uint32]L2VNI
	changed  chan struct{} // buffer 1: SetVNIs wakes Run
	events   *eventSocket  // Run's current event socket, for SetVNIs to interrupt
	baseline macState      // what the consumer was last told: see Run
	foreign  func(VXLANChange)

	rcvbuf       int
	warnedRcvBuf bool         // Run's goroutine only
	resyncs      atomic.Int64 // full resyncs after a lost subscription
	skipped      atomic.Int64 // notifications dropped without decoding
	decoded      atomic.Int64 // notifications decoded and classified
	foreignSeen  atomic.Int64 // foreign VXLAN changes reported
}

// NewLearner returns a Learner for the namespace ns (netns.None() for the
// caller's own). The Learner opens its own netlink sockets there: it needs
// an event subscription and a dump socket with strict checking, which a
// shared handle must not be switched to. The caller keeps ownership of ns
// and must keep it open while Run and Dump run.
func NewLearner(ns netns.NsHandle, vnis []L2VNI, log *slog.Logger) *Learner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Learner{ns: ns, log: log, changed: make(chan struct{}, 1), rcvbuf: defaultRcvBuf}
	l.cfg = configMap(vnis)
	return l
}

func configMap(vnis []L2VNI) map[uint32]L2VNI {
	m := make(map[uint32]L2VNI, len(vnis))
	for _, v := range vnis {
		v.AccessPorts = append([]string(nil), v.AccessPorts...)
		m[v.VNI] = v
	}
	return m
}

// SetVNIs replaces the watched VNIs. A running Run dumps the added or
// changed VNIs and reports the MACs of removed ones as Removed.
func (l *Learner) SetVNIs(vnis []L2VNI) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = configMap(vnis)
	select {
	case l.changed <- struct{}{}:
	default:
	}
	if l.events != nil {
		l.events.interrupt() // Run may be waiting for an event
	}
}

func (l *Learner) setEvents(s *eventSocket) {
	l.mu.Lock()
	l.events = s
	l.mu.Unlock()
}

func (l *Learner) config() map[uint32]L2VNI {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// Dump returns the local MACs the kernel holds now, read with a fresh dump.
// The result is also recorded as the state the next Run starts from: the
// caller is taken to have announced it.
func (l *Learner) Dump(ctx context.Context) (map[MACKey]LocalMAC, error) {
	h, err := l.openHandle()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	cfg := l.config()
	res, err := newLinkResolver(h.Handle, cfg)
	if err != nil {
		return nil, err
	}
	snap, err := res.dump(ctx, h, nil)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.baseline = snap
	l.mu.Unlock()
	return snap.public(), nil
}

// Run reports the local MACs through out until ctx is done: first how the
// kernel's state differs from what the caller was last told, then every
// change. What the caller was last told is the result of the last Dump,
// or, when a previous Run returned after that Dump, the state that Run
// had reported; without either, nothing. So after Dump, Run reports the
// MACs that vanished since as Removed, new or changed ones as adds, and
// nothing for MACs that are unchanged. Only one Run may run at a time; a
// Dump during a Run does not change what that Run reports.
//
// out is called from Run's goroutine and must not block for long. When
// the event socket overflows (ENOBUFS) or fails, Run subscribes again and
// resyncs from a full dump, reporting the difference from what it had
// reported, so no change is lost. Run returns nil once ctx is done, or an
// error if it cannot open a netlink socket in the namespace at all.
func (l *Learner) Run(ctx context.Context, out func(MACEvent)) error {
	h, err := l.openHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	l.mu.Lock()
	r := &runner{l: l, h: h, out: out, state: maps.Clone(l.baseline), foreign: l.foreign}
	l.mu.Unlock()
	r.onMessage = r.message
	if r.state == nil {
		r.state = macState{}
	}
	defer func() {
		l.mu.Lock()
		l.baseline = r.state
		l.mu.Unlock()
	}()
	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		start := time.Now()
		err := r.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		l.resyncs.Add(1)
		r.lost = true // foreign VXLAN changes may have been missed
		if time.Since(start) > 10*time.Second {
			backoff = minBackoff
		}
		if errors.Is(err, unix.ENOBUFS) {
			// An overrun is expected in bursts: resync at once.
			l.log.Warn("bridge FDB events overran the netlink socket; resubscribing and resyncing", "err", err)
			continue
		}
		l.log.Error("bridge FDB watch failed; resubscribing and resyncing", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// runner is Run's state; only Run's goroutine touches it.
type runner struct {
	l       *Learner
	h       *conn
	out     func(MACEvent)
	foreign func(VXLANChange) // nil: not reported
	lost    bool              // an earlier session failed: report Lost once subscribed again
	state   macState
	cfg     map[uint32]L2VNI
	res     *linkResolver

	onMessage func(typ uint16, b []byte) // r.message, bound once
}

// session subscribes, resyncs and then follows events until the
// subscription fails or ctx is done.
func (r *runner) session(ctx context.Context) error {
	l := r.l
	filter := neighFilter()
	if r.foreign != nil {
		filter = foreignFilter()
	}
	sub, err := openEventsFiltered(l.ns, l.rcvbuf, filter)
	if err != nil {
		return err
	}
	if sub.limited && !l.warnedRcvBuf {
		l.warnedRcvBuf = true
		l.log.Warn("cannot force the neighbour event socket's receive buffer (no CAP_NET_ADMIN); it is capped by net.core.rmem_max, so bursts may overrun it and cost full resyncs",
			"want_bytes", l.rcvbuf)
	}
	l.setEvents(sub)
	if r.lost && r.foreign != nil {
		r.foreign(VXLANChange{Lost: true})
	}
	r.lost = false
	stop := context.AfterFunc(ctx, sub.interrupt)
	defer func() {
		stop()
		l.setEvents(nil)
		sub.Close()
	}()

	// Subscribed first, dumped second: a change racing the dump is in the
	// queue after it, so applying the queue converges on the kernel state.
	if err := r.resync(ctx, l.config(), true); err != nil {
		return err
	}
	for {
		// An interrupt (ctx or SetVNIs) is consumed before ctx and
		// l.changed are looked at, so one racing these checks is not lost.
		err := sub.read(r.onMessage)
		if err != nil && !errors.Is(err, errInterrupted) && ctx.Err() == nil {
			return fmt.Errorf("neighbour event socket: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case <-l.changed:
			if err := r.resync(ctx, l.config(), false); err != nil {
				return err
			}
		default:
		}
	}
}

// message handles one neighbour notification. Most are dropped by
// worthDecoding on their header alone; see there.
func (r *runner) message(typ uint16, b []byte) {
	if r.foreign != nil {
		if c, ok := foreignChange(typ, b, r.res); ok {
			r.l.foreignSeen.Add(1)
			r.foreign(c)
			// A bridge entry on the VXLAN port may also take over a
			// local MAC: go on.
		}
	}
	if !r.state.worthDecoding(typ, b, r.res) {
		r.l.skipped.Add(1)
		return
	}
	r.l.decoded.Add(1)
	u, ok := parseNeigh(typ, b)
	if !ok {
		return
	}
	o, ok := classify(u, r.res)
	if !ok {
		return
	}
	if ev, ok := r.state.apply(o); ok {
		r.out(ev)
	}
}

// resync rebuilds the ifindex maps and dumps the FDB of the access ports.
// With full, every VNI is dumped; otherwise only the VNIs whose
// configuration differs from the last one (added, changed or removed).
func (r *runner) resync(ctx context.Context, cfg map[uint32]L2VNI, full bool) error {
	var scope func(uint32) bool
	if !full && r.cfg != nil {
		prev := r.cfg
		scope = func(vni uint32) bool {
			a, inA := prev[vni]
			b, inB := cfg[vni]
			return inA != inB || !sameDevices(a, b)
		}
	}
	res, err := newLinkResolver(r.h.Handle, cfg)
	if err != nil {
		return err
	}
	snap, err := res.dump(ctx, r.h, scope)
	if err != nil {
		return err
	}
	r.cfg, r.res = cfg, res
	for _, ev := range r.state.resync(snap, scope) {
		r.out(ev)
	}
	return nil
}

func sameDevices(a, b L2VNI) bool {
	return a.Bridge == b.Bridge && a.VXLAN == b.VXLAN
}

// linkResolver maps ifindexes to managed bridges, their VXLAN devices and
// the links that can be access ports. It is built from one link dump;
// ifindexes first seen later (a port or bridge created after the dump)
// are looked up once and cached. The kernel does not reuse ifindexes
// soon, so the cache stays valid until the next resync; a renamed device
// is picked up then.
//
// Any link that is neither a bridge nor a VXLAN device can be an access
// port: which bridge, and so which VNI, it serves is not the resolver's
// to say but each FDB entry's (NDA_MASTER), so a port enslaved after
// start, or moved between bridges, needs no bookkeeping here.
type linkResolver struct {
	h       *netlink.Handle
	bridges map[string]uint32 // configured bridge name -> VNI
	vxlans  map[string]uint32 // configured VXLAN device name -> VNI
	brByIdx map[int]uint32
	ports   map[int]string // links that can be access ports: ifindex -> name
	vxByIdx map[int]uint32 // managed VXLAN devices (also in other)
	other   map[int]bool   // VXLAN devices, unmanaged bridges, vanished links
	masters map[int]int    // port ifindex -> master ifindex, at dump time
}

func newLinkResolver(h *netlink.Handle, cfg map[uint32]L2VNI) (*linkResolver, error) {
	r := &linkResolver{
		h: h, bridges: map[string]uint32{}, vxlans: map[string]uint32{},
		brByIdx: map[int]uint32{}, ports: map[int]string{}, vxByIdx: map[int]uint32{},
		other: map[int]bool{}, masters: map[int]int{},
	}
	for vni, v := range cfg {
		r.bridges[v.Bridge] = vni
		r.vxlans[v.VXLAN] = vni
	}
	links, err := retryDump(h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		a := l.Attrs()
		r.learn(a.Index, a.Name, l.Type())
		if _, ok := r.ports[a.Index]; ok && a.MasterIndex != 0 {
			r.masters[a.Index] = a.MasterIndex
		}
	}
	return r, nil
}

// learn records what ifindex is.
func (r *linkResolver) learn(idx int, name, kind string) {
	switch kind {
	case "bridge":
		if vni, ok := r.bridges[name]; ok {
			r.brByIdx[idx] = vni
			return
		}
	case "vxlan":
		// A VXLAN port's MACs are remote, whatever put them there (zebra
		// does the same: a MAC on a VXLAN interface is never local).
		if vni, ok := r.vxlans[name]; ok {
			r.vxByIdx[idx] = vni
		}
	default:
		r.ports[idx] = name
		return
	}
	r.other[idx] = true
}

func (r *linkResolver) known(idx int) bool {
	_, p := r.ports[idx]
	_, b := r.brByIdx[idx]
	return p || b || r.other[idx]
}

func (r *linkResolver) lookup(idx int) {
	if r.known(idx) {
		return
	}
	l, err := r.h.LinkByIndex(idx)
	if err != nil {
		r.other[idx] = true
		return
	}
	r.learn(idx, l.Attrs().Name, l.Type())
}

func (r *linkResolver) kind(idx int) (linkKind, uint32) {
	if _, ok := r.ports[idx]; ok {
		return linkAccess, 0
	}
	if vni, ok := r.brByIdx[idx]; ok {
		return linkBridge, vni
	}
	if r.other[idx] {
		return linkOther, 0
	}
	return linkUnknown, 0
}

func (r *linkResolver) bridgeVNI(idx int) (uint32, bool) {
	r.lookup(idx)
	vni, ok := r.brByIdx[idx]
	return vni, ok
}

func (r *linkResolver) vxlanVNI(idx int) (uint32, bool) {
	r.lookup(idx)
	vni, ok := r.vxByIdx[idx]
	return vni, ok
}

func (r *linkResolver) port(idx int) (string, bool) {
	r.lookup(idx)
	name, ok := r.ports[idx]
	return name, ok
}

// dump reads the bridge FDB entries of every access port in scope (nil:
// all) that is a port of its VNI's bridge. Each dump is filtered by the
// kernel to one port (strict checking), so the remote MACs on the VXLAN
// ports are not read.
func (r *linkResolver) dump(ctx context.Context, h *conn, scope func(uint32) bool) (macState, error) {
	snap := macState{}
	for _, idx := range slices.Sorted(maps.Keys(r.masters)) {
		vni, ok := r.brByIdx[r.masters[idx]]
		if !ok || (scope != nil && !scope(vni)) {
			continue // not a port of a managed bridge: nothing learned there
		}
		name := r.ports[idx]
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		entries, err := retryDump(func() ([]netlink.Neigh, error) { return h.portFDB(idx) })
		if isGone(err) {
			continue // deleted since the link dump: its entries went with it
		}
		if err != nil {
			return nil, fmt.Errorf("dump bridge FDB of %s: %w", name, err)
		}
		for _, n := range entries {
			o, ok := classify(fdbUpdate{
				Family: n.Family, LinkIndex: n.LinkIndex, MasterIndex: n.MasterIndex, MAC: n.HardwareAddr,
				State: n.State, Flags: n.Flags, FlagsExt: n.FlagsExt,
			}, r)
			if ok && o.Local != nil {
				snap[o.Key] = *o.Local
			}
		}
	}
	return snap, nil
}

// conn is the learner's pair of route netlink sockets in its namespace: a
// handle for link lookups, and a socket with strict checking for FDB dumps.
type conn struct {
	*netlink.Handle
	fdb *nl.SocketHandle
}

func (c *conn) Close() {
	c.Handle.Close()
	c.fdb.Close()
}

// openHandle opens the learner's sockets in its namespace. The dump socket
// has strict checking on, which makes the kernel honour the per-port filter
// of FDB dumps (so the remote MACs on the VXLAN ports are never read).
func (l *Learner) openHandle() (*conn, error) {
	c := &conn{}
	err := inNetns(l.ns, func() error {
		var err error
		if c.Handle, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
			return err
		}
		s, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_ROUTE)
		if err != nil {
			c.Handle.Close()
			return err
		}
		c.fdb = &nl.SocketHandle{Socket: s}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	if err := unix.SetsockoptInt(c.fdb.Socket.GetFd(), unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1); err != nil {
		c.Close()
		return nil, fmt.Errorf("enable netlink strict checking: %w", err)
	}
	return c, nil
}

// ndmsgFilter is an RTM_GETNEIGH dump request header for one bridge port.
// It is serialised by hand: netlink.Ndmsg is sent from Go memory whose
// padding bytes are not guaranteed zero, and under strict checking the
// kernel refuses a request with non-zero padding (EINVAL).
type ndmsgFilter struct{ ifindex int }

func (m ndmsgFilter) Len() int { return unix.SizeofNdMsg }

func (m ndmsgFilter) Serialize() []byte {
	b := make([]byte, unix.SizeofNdMsg)
	b[0] = unix.AF_BRIDGE
	binary.NativeEndian.PutUint32(b[4:8], uint32(m.ifindex))
	return b
}

// portFDB dumps the bridge FDB entries of one port.
func (c *conn) portFDB(ifindex int) ([]netlink.Neigh, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETNEIGH, unix.NLM_F_DUMP)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: c.fdb}
	req.AddData(ndmsgFilter{ifindex: ifindex})
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWNEIGH)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, err
	}
	out := make([]netlink.Neigh, 0, len(msgs))
	for _, m := range msgs {
		n, derr := netlink.NeighDeserialize(m)
		if derr != nil {
			continue
		}
		out = append(out, *n)
	}
	// An interrupted dump is returned with its error so retryDump retries.
	return out, err
}

// inNetns runs fn on an OS thread switched into ns; sockets fn creates
// belong to ns. With a closed handle (netns.None()) it runs fn in place.
// If the thread cannot be switched back it stays locked, so it exits with
// the goroutine instead of serving others from the wrong namespace.
func inNetns(ns netns.NsHandle, fn func() error) error {
	if !ns.IsOpen() {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("restore netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
