package fib

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	mainTable          = unix.RT_TABLE_MAIN
	underlayRetryMin   = 250 * time.Millisecond
	underlayRetryMax   = 5 * time.Second
	underlayResyncTick = time.Minute
)

// UnderlayConfig configures an Underlay reconciler.
type UnderlayConfig struct {
	Logger *slog.Logger
	// OnRepair is called for each write that put back a route someone
	// else changed or deleted while the wanted routes stayed the same,
	// with the drift it repaired: DriftMissing (a route put back),
	// DriftWrong (a route rewritten) or DriftExtra (a marked route someone
	// added, deleted).
	OnRepair func(UnderlayOp, DriftKind)
	// OnLinks is called after every pass (after its writes, also when
	// they failed) with the predicate the pass used: whether an address
	// is on the subnet of a local address whose link is up. The daemon
	// takes BGP sessions to peers that are no longer connected down at
	// once (fast external failover).
	OnLinks func(connected func(netip.Addr) bool)
	// Table and Protocol are the routing table and the rtm_protocol of
	// the routes the reconciler owns: the main table and UnderlayProtocol
	// when zero. A tenant VRF's static routes use its table and
	// StaticProtocol.
	Table    int
	Protocol int
	// IPv6 lets the reconciler own the IPv6 routes of Table and Protocol
	// too (a VRF's static routes); the underlay is IPv4 only.
	IPv6 bool
	// LastResortDefault installs default routes (0.0.0.0/0, ::/0) with
	// LastResortMetric: in a table that also routes the underlay (a
	// default-backend VRF's static routes), next to the operator's
	// default route instead of over it.
	LastResortDefault bool
}

// Underlay reconciles the IPv4 routes of the main table marked with
// UnderlayProtocol to the wanted set given to Set (or, configured with
// Table, Protocol and IPv6, a tenant VRF's static routes, IPv6 too):
//
//  1. Set stores the wanted routes and wakes Run; it never blocks.
//  2. Run lists the marked routes, plans with PlanUnderlay and writes
//     (RTM_NEWROUTE with NLM_F_REPLACE, one nexthop per gateway for ECMP;
//     RTM_DELROUTE). A next hop is used only while it is on the subnet of
//     a local address whose link is up: a dead link's gateway leaves the
//     ECMP set before BGP notices.
//  3. Route, link and address events wake Run: a marked route someone
//     deleted or changed is put back (a repair, logged and counted), and
//     the echo of fib's own writes finds nothing to do. A failed write is
//     retried with backoff; a full pass also runs every minute.
//
// Kernel fact (6.18): when a link goes down or away, the kernel deletes
// every route with a nexthop over it, multipath routes included, even if
// other nexthops are alive; the next pass writes the route back over the
// live ones.
type Underlay struct {
	h   *netlink.Handle
	ns  netns.NsHandle
	cfg UnderlayConfig
	log *slog.Logger

	mu   sync.Mutex
	want []UnderlayRoute
	wake chan struct{}

	repairs atomic.Uint64
	// applied is the filtered wanted set of the last pass that wrote
	// without error (Run's goroutine only).
	applied []UnderlayRoute
}

// NewUnderlay opens a netlink handle in namespace ns (netns.None(): the
// current one).
func NewUnderlay(ns netns.NsHandle, cfg UnderlayConfig) (*Underlay, error) {
	var h *netlink.Handle
	var err error
	if ns.IsOpen() {
		h, err = netlink.NewHandleAt(ns)
	} else {
		h, err = netlink.NewHandle()
	}
	if err != nil {
		return nil, fmt.Errorf("fib: underlay netlink handle: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Table == 0 {
		cfg.Table = mainTable
	}
	if cfg.Protocol == 0 {
		cfg.Protocol = UnderlayProtocol
	}
	return &Underlay{h: h, ns: ns, cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1)}, nil
}

// Close releases the netlink handle; call it after Run has returned.
func (u *Underlay) Close() { u.h.Close() }

// Repairs counts the drift repairs so far.
func (u *Underlay) Repairs() uint64 { return u.repairs.Load() }

// Set replaces the wanted routes. Invalid routes are logged and left out.
func (u *Underlay) Set(routes []UnderlayRoute) {
	want := make([]UnderlayRoute, 0, len(routes))
	for _, r := range routes {
		if err := checkUnderlay(r, u.cfg.IPv6); err != nil {
			u.log.Warn("underlay route refused", "err", err)
			continue
		}
		want = append(want, r.normal())
	}
	u.mu.Lock()
	u.want = want
	u.mu.Unlock()
	u.poke()
}

func (u *Underlay) poke() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// Sync makes one pass now, outside Run (which must not be running): after
// Set(nil), it removes every route the reconciler owns in its table, as
// when a tenant VRF goes away.
func (u *Underlay) Sync() error { return u.pass() }

// Run reconciles until ctx ends.
func (u *Underlay) Run(ctx context.Context) error {
	events, err := u.subscribe(ctx)
	if err != nil {
		return err
	}
	tick := time.NewTicker(underlayResyncTick)
	defer tick.Stop()
	var retry <-chan time.Time
	backoff := underlayRetryMin
	for {
		if err := u.pass(); err != nil {
			u.log.Warn("underlay routes: pass failed, retrying", "err", err, "in", backoff)
			retry = time.After(backoff)
			backoff = min(2*backoff, underlayRetryMax)
		} else {
			retry, backoff = nil, underlayRetryMin
		}
		select {
		case <-ctx.Done():
			return nil
		case <-u.wake:
		case <-retry:
		case <-tick.C:
		case _, ok := <-events:
			if !ok {
				// A subscription failed (overrun): resubscribe; the pass
				// catches up on whatever was lost.
				if events, err = u.subscribe(ctx); err != nil {
					return err
				}
			}
		}
		// Coalesce a burst of events into one pass.
		for drained := false; !drained; {
			select {
			case _, ok := <-events:
				if !ok {
					drained = true
				}
			default:
				drained = true
			}
		}
	}
}

// subscribe merges route, link and address events of the namespace into
// one channel, closed when any subscription ends.
func (u *Underlay) subscribe(ctx context.Context) (<-chan struct{}, error) {
	sctx, cancel := context.WithCancel(ctx)
	done := sctx.Done()
	out := make(chan struct{}, 1)
	var once sync.Once
	fail := func(err error) {
		if sctx.Err() == nil {
			u.log.Warn("underlay routes: netlink subscription lost, resubscribing", "err", err)
		}
		once.Do(func() { cancel(); close(out) })
	}
	// The library also reports harmless problems through ErrorCallback and
	// goes on; a real failure closes the update channel, which the
	// forwarding goroutine below turns into fail. Closing out from the
	// callback raced with that goroutine's sends.
	logOnly := func(err error) {
		u.log.Debug("underlay routes: netlink subscription reported a problem and goes on", "err", err)
	}
	var ns *netns.NsHandle
	if u.ns.IsOpen() {
		ns = &u.ns
	}
	routes := make(chan netlink.RouteUpdate, 256)
	links := make(chan netlink.LinkUpdate, 64)
	addrs := make(chan netlink.AddrUpdate, 64)
	if err := netlink.RouteSubscribeWithOptions(routes, done, netlink.RouteSubscribeOptions{Namespace: ns, ErrorCallback: logOnly, ReceiveBufferSize: 1 << 20}); err != nil {
		cancel()
		return nil, fmt.Errorf("fib: underlay: subscribe to routes: %w", err)
	}
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{Namespace: ns, ErrorCallback: logOnly}); err != nil {
		cancel()
		return nil, fmt.Errorf("fib: underlay: subscribe to links: %w", err)
	}
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{Namespace: ns, ErrorCallback: logOnly}); err != nil {
		cancel()
		return nil, fmt.Errorf("fib: underlay: subscribe to addresses: %w", err)
	}
	send := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	go func() {
		for {
			select {
			case <-done:
				once.Do(func() { close(out) })
				return
			case r, ok := <-routes:
				if !ok {
					fail(errors.New("route subscription closed"))
					return
				}
				// Only marked routes and main-table deletions concern the
				// underlay; kernel routes of addresses come and go too.
				if int(r.Protocol) == u.cfg.Protocol || (r.Type == unix.RTM_DELROUTE && r.Table == u.cfg.Table) {
					send()
				}
			case _, ok := <-links:
				if !ok {
					fail(errors.New("link subscription closed"))
					return
				}
				send()
			case _, ok := <-addrs:
				if !ok {
					fail(errors.New("address subscription closed"))
					return
				}
				send()
			}
		}
	}()
	return out, nil
}

// pass lists, plans and writes once.
func (u *Underlay) pass() error {
	u.mu.Lock()
	want := u.want
	u.mu.Unlock()
	connected, err := u.connected()
	if err != nil {
		return err
	}
	// OnLinks comes after the writes: a route over a dead link is
	// rewritten over the live ones at once, not after the daemon has taken
	// BGP sessions down (a call into the BGP server that may wait).
	if u.cfg.OnLinks != nil {
		defer u.cfg.OnLinks(connected)
	}
	found, err := u.List()
	if err != nil {
		return err
	}
	ops := PlanUnderlay(want, found, connected)
	filtered := filterUsable(want, connected)
	repair := u.applied != nil && sameRoutes(filtered, u.applied)
	var errs []error
	for _, op := range ops {
		if err := u.write(op); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", op, err))
			continue
		}
		if repair {
			kind := underlayDrift(op, found)
			u.repairs.Add(1)
			u.log.Warn("underlay route drift repaired: someone changed or deleted an evpnd route", "op", op.String(), "drift", kind.String())
			if u.cfg.OnRepair != nil {
				u.cfg.OnRepair(op, kind)
			}
		} else {
			u.log.Debug("underlay route", "op", op.String())
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	u.applied = filtered
	return nil
}

// UnderlayDrift is a difference between the wanted routes and the kernel
// that a pass would repair.
type UnderlayDrift struct {
	Op   UnderlayOp
	Kind DriftKind
}

// Check compares the wanted routes with the kernel, as a pass would, and
// returns the writes it would make; it writes nothing. A change Run has
// not written yet shows too.
func (u *Underlay) Check() (wanted int, drifts []UnderlayDrift, err error) {
	u.mu.Lock()
	want := u.want
	u.mu.Unlock()
	connected, err := u.connected()
	if err != nil {
		return 0, nil, err
	}
	found, err := u.List()
	if err != nil {
		return 0, nil, err
	}
	for _, op := range PlanUnderlay(want, found, connected) {
		drifts = append(drifts, UnderlayDrift{Op: op, Kind: underlayDrift(op, found)})
	}
	return len(filterUsable(want, connected)), drifts, nil
}

func filterUsable(want []UnderlayRoute, usable func(netip.Addr) bool) []UnderlayRoute {
	out := make([]UnderlayRoute, 0, len(want))
	for _, r := range want {
		r.NextHops = slices.DeleteFunc(slices.Clone(r.NextHops), func(a netip.Addr) bool { return !usable(a) })
		if len(r.NextHops) > 0 {
			out = append(out, r)
		}
	}
	return out
}

func sameRoutes(a, b []UnderlayRoute) bool {
	return slices.EqualFunc(a, b, func(x, y UnderlayRoute) bool { return x.equal(y) })
}

// connected returns whether an address is on the subnet of a local IPv4
// address (other than itself) whose link is administratively and
// operationally up.
func (u *Underlay) connected() (func(netip.Addr) bool, error) {
	links, err := retryDump(func() ([]netlink.Link, error) { return u.h.LinkList() })
	if err != nil {
		return nil, fmt.Errorf("fib: underlay: list links: %w", err)
	}
	up := map[int]bool{}
	for _, l := range links {
		a := l.Attrs()
		up[a.Index] = a.Flags&net.FlagUp != 0 && (a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown)
	}
	fam := netlink.FAMILY_V4
	if u.cfg.IPv6 {
		fam = netlink.FAMILY_ALL
	}
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return u.h.AddrList(nil, fam) })
	if err != nil {
		return nil, fmt.Errorf("fib: underlay: list addresses: %w", err)
	}
	var nets []netip.Prefix
	for _, a := range addrs {
		if !up[a.LinkIndex] || a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		bits, _ := a.Mask.Size()
		if bits == ip.BitLen() || ip.IsLinkLocalUnicast() {
			continue // a loopback /32 (/128) connects nothing
		}
		nets = append(nets, netip.PrefixFrom(ip, bits))
	}
	return func(h netip.Addr) bool {
		for _, p := range nets {
			if p.Contains(h) && p.Addr() != h {
				return true
			}
		}
		return false
	}, nil
}

func retryDump[T any](f func() ([]T, error)) ([]T, error) {
	var out []T
	var err error
	for range dumpAttempts {
		out, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) && !errors.Is(err, unix.EINTR) {
			return out, err
		}
	}
	return out, err
}

// List returns the IPv4 routes (and with IPv6 the IPv6 routes) of the
// reconciler's table marked with its protocol (by default: the main
// table's marked UnderlayProtocol).
func (u *Underlay) List() ([]UnderlayRoute, error) {
	filter := &netlink.Route{Table: u.cfg.Table, Protocol: netlink.RouteProtocol(u.cfg.Protocol)}
	fams := []int{netlink.FAMILY_V4}
	if u.cfg.IPv6 {
		fams = append(fams, netlink.FAMILY_V6)
	}
	var out []UnderlayRoute
	for _, fam := range fams {
		rs, err := retryDump(func() ([]netlink.Route, error) {
			return u.h.RouteListFiltered(fam, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
		})
		if err != nil {
			return nil, fmt.Errorf("fib: underlay: list routes: %w", err)
		}
		for _, r := range rs {
			if r.Dst == nil {
				continue
			}
			ip, _ := netip.AddrFromSlice(r.Dst.IP)
			bits, _ := r.Dst.Mask.Size()
			ur := UnderlayRoute{Prefix: netip.PrefixFrom(ip.Unmap(), bits)}
			if src, ok := netip.AddrFromSlice(r.Src); ok {
				ur.Src = src.Unmap()
			}
			if gw, ok := netip.AddrFromSlice(r.Gw); ok {
				ur.NextHops = append(ur.NextHops, gw.Unmap())
			}
			for _, nh := range r.MultiPath {
				if gw, ok := netip.AddrFromSlice(nh.Gw); ok {
					ur.NextHops = append(ur.NextHops, gw.Unmap())
				}
			}
			out = append(out, ur.normal())
		}
	}
	return out, nil
}

// nlRoute maps an underlay route to netlink's, in table with protocol: a
// single gateway, or one nexthop per gateway (equal weights) for ECMP.
func nlRoute(r UnderlayRoute, table, protocol int) *netlink.Route {
	fam := netlink.FAMILY_V4
	if r.Prefix.Addr().Is6() {
		fam = netlink.FAMILY_V6
	}
	nr := &netlink.Route{
		Dst:      &net.IPNet{IP: r.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(r.Prefix.Bits(), r.Prefix.Addr().BitLen())},
		Table:    table,
		Protocol: netlink.RouteProtocol(protocol),
		Scope:    netlink.SCOPE_UNIVERSE,
		Family:   fam,
	}
	if r.Src.IsValid() {
		nr.Src = r.Src.AsSlice()
	}
	if len(r.NextHops) == 1 {
		nr.Gw = r.NextHops[0].AsSlice()
		return nr
	}
	for _, h := range r.NextHops {
		nr.MultiPath = append(nr.MultiPath, &netlink.NexthopInfo{Gw: h.AsSlice()})
	}
	return nr
}

func (u *Underlay) write(op UnderlayOp) error {
	nr := nlRoute(op.Route, u.cfg.Table, u.cfg.Protocol)
	if u.cfg.LastResortDefault && op.Route.Prefix.Bits() == 0 {
		nr.Priority = LastResortMetric
	}
	if !op.Delete {
		return u.h.RouteReplace(nr)
	}
	nr.Gw, nr.MultiPath = nil, nil
	err := u.h.RouteDel(nr)
	if errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}
