package daemon

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sync/errgroup"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/trace"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/evpnd/evpnd/vtep"
)

// event is one input to the leaf loop: a BGP event, a batch of them from
// the watch (bgps, with done closed once the loop has handled it), a local
// MAC event, or a local route that BGP refused and that is to be bid again
// (outbid).
type event struct {
	bgp    *speaker.Event
	bgps   []speaker.Event
	done   chan struct{}
	local  *vtep.MACEvent
	host   *hostEvent
	outbid *speaker.Outbid
	call   *call
}

// leaf is the state of the leaf role. Only the loop goroutine touches table
// and advertised.
type leaf struct {
	d       *Daemon
	srv     *speaker.Server
	table   *evpn.Table
	desired *fib.Desired
	rec     *fib.Reconciler
	q       *queue[event]
	vnis    map[uint32]configs.L2VNI
	// advertised holds the local type-2 routes this leaf wants announced,
	// so that a withdrawal names exactly the path that was announced. What
	// GoBGP has taken is adv's (speaker.Advertiser.Advertised).
	advertised map[evpn.MACKey]*evpn.Route
	// adv hands announcements and withdrawals to GoBGP on its own
	// goroutine: the loop never waits on GoBGP.
	adv *speaker.Advertiser
	// release: the initial table is in; let the held local MAC routes go
	// after this batch's re-bids.
	release bool
	// syncedEv is the batch's EventSynced, handed to markSynced after the
	// batch's effects are applied.
	syncedEv *speaker.Event
	learned  []evpn.MACKey // local learns of the current batch
	// up holds the peers whose session is established.
	up      map[netip.Addr]bool
	learner *vtep.Learner
	mgr     *vtep.Manager
	// tenants are the tenant VRFs (config order, then as reloads add
	// them). The loop changes the list, holding tmu; other goroutines
	// read it holding tmu (tenantList).
	tenants []*tenant
	tmu     sync.Mutex
	hosts   *localHosts // the tenants' local MAC+IP bindings
	// h is the leaf's netlink handle in the underlay; fdbK and apiK fib's
	// FDB kernel sides (the reconciler's and the API's), which tenants
	// join and leave.
	h          *netlink.Handle
	fdbK, apiK *muxKernel
	// foreign reports the learners' foreign VXLAN FDB changes to fib.
	foreign func(vtep.VXLANChange)
	// g runs the leaf's goroutines, gctx is its context: a tenant added
	// by a reload starts its own there (startTenant).
	g    *errgroup.Group
	gctx context.Context
	// l3 is the L3 model (MAC+IP and type-5 routes of the VRFs); l3adv
	// its routes this leaf wants announced; l3eff its effects of the batch.
	l3    *evpn.L3Table
	l3adv map[evpn.Key]*evpn.Route
	l3eff []evpn.L3Effect
	// kern is a second netlink kernel handle for the API's reads, so that
	// they never share a socket with the reconciler.
	kern fib.Kernel
	// extra and withdrawExtra are type-3 routes that calls (runtime VNI
	// changes) announce or withdraw with the batch.
	extra, withdrawExtra []*evpn.Route
	synced               atomic.Bool // End-of-RIB from every peer (or timeout)
	// refeeding holds, per VNI being added, the routes BGP updated or
	// withdrew since the VNI started importing (see AddVNI).
	refeeding map[uint32]map[evpn.Key]struct{}
	// ports holds the access port of each local MAC the bridge holds, as
	// the learner reported it.
	ports map[evpn.MACKey]string
	// martians rate-limits the log of routes naming an unusable VTEP.
	martians logLimit
	// gwWarned: the gateway MAC conflicts already warned about.
	gwWarned map[gwWarnKey]bool
	// stopped is closed when the loop returns, releasing waiting calls.
	stopped chan struct{}
	calls   []*call // calls of the current batch
}

// vtepVNIs returns the L2VNIs whose devices are in the underlay
// namespace: all but the members of tenant VRFs on the netns backend.
func (d *Daemon) vtepVNIs() []vtep.L2VNI {
	out := make([]vtep.L2VNI, 0, len(d.cfg.L2VNIs))
	for _, v := range d.cfg.L2VNIs {
		if f, ok := vrfOf(d.cfg, v.VNI); ok && f.Backend == configs.BackendNetns {
			continue
		}
		out = append(out, d.vtepVNI(d.cfg, v))
	}
	return out
}

// defaultVXLANMTU is the MTU of the VXLAN devices evpnd creates for VNIs
// without an mtu of their own: the underlay's MTU (vtep.UnderlayMTU: the
// interface holding the VTEP address, or, for a VTEP on a loopback, the
// one routing towards the BGP neighbours) less the VXLAN overhead (50
// for IPv4, 70 for IPv6). 0, the kernel's 1500, when no underlay is
// found. It is read once at start; a later change of the underlay's MTU
// changes nothing.
func (d *Daemon) defaultVXLANMTU(h *netlink.Handle) int {
	var towards []netip.Addr
	ns, _ := d.neighbors() // those found; --wait waited for the others
	for _, n := range ns {
		towards = append(towards, n.Address)
	}
	u, err := vtep.UnderlayMTU(h, d.cfg.VTEPIP, towards)
	if err != nil {
		d.log.Warn("cannot tell the underlay's MTU: VXLAN devices evpnd creates get the kernel's default (1500) unless l2vnis[].mtu is set",
			"vtep", d.cfg.VTEPIP, "err", err)
		return 0
	}
	mtu := vtep.VXLANMTU(u.MTU, d.cfg.VTEPIP)
	d.log.Info("VXLAN MTU derived from the underlay (for VNIs without mtu)", "underlay", u.Dev, "underlay_mtu", u.MTU,
		"found_by", u.Via, "vxlan_mtu", mtu)
	return mtu
}

func (d *Daemon) runLeaf(ctx context.Context) error {
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	d.vxlanMTU = d.defaultVXLANMTU(h)
	vnis := d.vtepVNIs()

	restarting := d.previousRun(ctx, h)
	d.restarted.Store(restarting)
	// 1. The BGP speaker starts (listening, no neighbours yet) before the
	// kernel is touched, so that a listener that cannot bind stops evpnd
	// with nothing created.
	srv, err := speaker.New(d.speakerConfig(restarting))
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer d.stopSpeaker(srv)
	d.srv.Store(srv)

	// 2. Devices: a config the kernel refuses stops evpnd here, before any
	// BGP session exists, and what this start created is removed again:
	// the standalone L2VNIs, then the tenant VRFs with their members.
	mgr := vtep.NewManager(h, vnetns.None(), d.log)
	if err := d.ensureDevices(ctx, h, mgr); err != nil {
		return err
	}
	tenants, err := d.openTenants(h)
	if err != nil {
		return err
	}

	l := &leaf{
		h:          h,
		d:          d,
		srv:        srv,
		q:          newQueue[event](),
		vnis:       map[uint32]configs.L2VNI{},
		advertised: map[evpn.MACKey]*evpn.Route{},
		desired:    fib.NewDesired(),
		mgr:        mgr,
		tenants:    tenants,
		hosts:      newLocalHosts(d.cfg),
		l3:         evpn.NewL3Table(d.l3Options()),
		l3adv:      map[evpn.Key]*evpn.Route{},
		stopped:    make(chan struct{}),
		refeeding:  map[uint32]map[evpn.Key]struct{}{},
		ports:      map[evpn.MACKey]string{},
	}
	// The tenants at the end (a reload may have added or removed some).
	defer func() {
		for _, t := range l.tenantList() {
			t.close()
		}
	}()
	for _, v := range d.cfg.L2VNIs {
		l.vnis[v.VNI] = v
		if err := l.desired.SetVNI(fib.VNIDevices{VNI: v.VNI, VXLAN: v.VXLANDevice, Bridge: v.Bridge}); err != nil {
			return err
		}
	}
	// A restarted leaf learns its local MACs (at sequence 0) before it
	// knows the fabric's routes for them; at EventSynced it bids again
	// above any remote sequence number (RebidLocal). Its MAC routes are
	// not held back until then (AdvertiserConfig.HoldMACs): GoBGP sends
	// our End-of-RIB as soon as the last peer's End-of-RIB is in, before
	// the watch delivers it, so held routes would miss it and every peer
	// would flush the leaf's MACs and add them again a moment later (the
	// e2e TestRestart saw exactly that). Held or not, nothing goes out
	// before GoBGP's End-of-RIB while restarting (its selection deferral).
	l.adv = srv.NewAdvertiser(speaker.AdvertiserConfig{
		Retry:    time.Second,
		OnOutbid: func(o speaker.Outbid) { l.q.push(event{outbid: &o}) },
	})
	l.table = evpn.NewTable(evpn.Options{
		LocalVTEP: d.cfg.VTEPIP,
		RouterID:  d.cfg.RouterID,
		DupMoves:  d.cfg.MACMobility.DuplicateMoves,
		DupWindow: d.cfg.MACMobility.DuplicateWindow,
		Freeze:    d.cfg.MACMobility.Freeze,
	}, d.importRules())

	// fib writes each VNI's FDB in the namespace of its devices: a tenant's
	// on the netns backend, the underlay's for every other VNI.
	kern, err := d.fdbKernel(tenants, false)
	if err != nil {
		return err
	}
	defer kern.Close()
	l.fdbK = kern
	l.rec = fib.NewReconciler(l.desired, kern, d.log, fib.Config{
		ResyncInterval: 5 * time.Minute,
		OnApply:        d.onApply,
		OnPass: func(e fib.PassEvent) {
			d.metrics.ReconcilePass(e.Duration, e.Ops, e.Errors)
		},
	})

	// 3. Local MACs already in the bridges (after a restart: all of them)
	// are in the table and announced before any peer comes up, so the first
	// UPDATEs and End-of-RIB a peer gets from us are complete.
	learner := vtep.NewLearner(vnetns.None(), vnis, d.log)
	l.learner = learner
	// Changes someone else makes to the VXLAN devices' FDB are drift: the
	// reconciler repairs them at once, and logs, counts and traces each
	// repair (onApply). evpnd's own writes come back here too and cost a
	// map lookup each.
	foreign := func(c vtep.VXLANChange) {
		if c.Lost {
			l.rec.Resync()
			return
		}
		l.rec.KernelChanged(fib.KernelEvent{VNI: c.VNI, MAC: c.MAC, VTEP: c.VTEP, Bridge: c.Bridge, Deleted: c.Deleted, ExternLearn: c.ExternLearn})
	}
	learner.OnForeignVXLAN(foreign)
	l.foreign = foreign
	learners := []*vtep.Learner{learner}
	for _, t := range tenants {
		if t.learner != nil {
			t.learner.OnForeignVXLAN(foreign)
			learners = append(learners, t.learner)
		}
	}
	apiKern, err := d.fdbKernel(tenants, true)
	if err != nil {
		return err
	}
	defer apiKern.Close()
	l.apiK = apiKern
	l.kern = apiKern
	local := map[vtep.MACKey]vtep.LocalMAC{}
	for _, ln := range learners {
		m, err := ln.Dump(ctx)
		if err != nil {
			return fmt.Errorf("read local MACs: %w", err)
		}
		maps.Copy(local, m)
	}

	now := time.Now()
	var ann []*evpn.Route
	for _, v := range d.cfg.L2VNIs {
		ann = append(ann, evpn.LocalIMETRoute(d.cfg.L2VNIRD(v), v.VNI, d.cfg.VTEPIP, d.cfg.ExportRTs(v)))
	}
	ann = append(ann, l.localPrefixRoutes()...)
	var effects []evpn.Effect
	for k, m := range local {
		l.ports[evpn.MACKey{VNI: k.VNI, MAC: k.MAC}] = m.Port
		effects = append(effects, l.table.LocalAdd(k.VNI, k.MAC, m.Static, now)...)
	}
	l.flush(l.apply(effects, &effBuf{extra: ann}))
	// Before the first peer: its first UPDATEs and End-of-RIB are complete.
	if !l.adv.Flush(ctx) {
		d.log.Warn("BGP did not take every local route at start; retrying", "pending", l.adv.Pending())
	}
	d.log.Info("local state announced", "l2vnis", len(d.cfg.L2VNIs), "vrfs", len(tenants), "local_macs", len(local), "restarting", restarting)

	// The underlay's goroutines start before the neighbours, so that the
	// first UPDATEs carry our loopback; cancel ends them if adding the
	// neighbours fails.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	l.g, l.gctx = g, gctx
	if err := d.startUnderlay(gctx, g, srv); err != nil {
		return err
	}
	if err := d.addPeers(ctx, srv); err != nil {
		return err
	}
	l.up = map[netip.Addr]bool{}

	d.leaf.Store(l)
	defer d.leaf.Store(nil)
	g.Go(func() error { return l.rec.Run(gctx) })
	// The devices are kept as configured: rebuilt, re-enslaved, their
	// flags reset, whoever changes them.
	g.Go(func() error { return mgr.Supervise(gctx, l.onRepair) })
	g.Go(func() error {
		return learner.Run(gctx, func(ev vtep.MACEvent) { l.q.push(event{local: &ev}) })
	})
	// Each tenant VRF's goroutines: its devices kept as configured, its
	// learner (netns backend), fib's L3 side and the watch of its hosts.
	for _, t := range tenants {
		l.startTenant(t)
	}
	g.Go(func() error {
		l.adv.Run(gctx)
		return nil
	})
	// The watch hands over one batch at a time and waits until the loop
	// has handled it: meanwhile the speaker coalesces newer events per
	// route key, so memory is bounded by routes, not by events.
	g.Go(func() error {
		return srv.WatchBatches(gctx, func(evs []speaker.Event) {
			done := make(chan struct{})
			l.q.push(event{bgps: evs, done: done})
			select {
			case <-done:
			case <-gctx.Done():
			}
		})
	})
	g.Go(func() error { return l.loop(gctx) })
	err = g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// effBuf collects the BGP side of a batch of effects: for each local MAC
// only the last decision of the batch counts (announce this route, or
// withdraw: nil), so an announce and a withdrawal of one MAC in one batch
// can never be sent in the wrong order.
type effBuf struct {
	extra  []*evpn.Route // announced as they are (type-3 at start)
	wextra []*evpn.Route // withdrawn as they are (type-3 of a removed VNI)
	final  map[evpn.MACKey]*evpn.Route
	order  []evpn.MACKey
	// l3final and l3order are the same for the L3 model's routes (MAC+IP
	// and type-5), by route key.
	l3final map[evpn.Key]*evpn.Route
	l3order []evpn.Key
}

func (b *effBuf) setL3(k evpn.Key, r *evpn.Route) {
	if b.l3final == nil {
		b.l3final = map[evpn.Key]*evpn.Route{}
	}
	if _, ok := b.l3final[k]; !ok {
		b.l3order = append(b.l3order, k)
	}
	b.l3final[k] = r
}

func (b *effBuf) set(k evpn.MACKey, r *evpn.Route) {
	if b.final == nil {
		b.final = map[evpn.MACKey]*evpn.Route{}
	}
	if _, ok := b.final[k]; !ok {
		b.order = append(b.order, k)
	}
	b.final[k] = r
}

// loop is the only goroutine that touches the selection table.
func (l *leaf) loop(ctx context.Context) error {
	defer close(l.stopped)
	var buf []event
	var effects []evpn.Effect
	// Duplicate flags are cleared once a MAC has stayed put for a whole
	// detection window; checking a few times per window is enough.
	expire := time.NewTicker(max(time.Second, min(30*time.Second, l.d.cfg.MACMobility.DuplicateWindow/4)))
	defer expire.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.q.wake:
		case now := <-expire.C:
			l.flush(l.apply(l.table.Expire(now), &effBuf{}))
			continue
		}
		evs := l.q.drain(buf)
		now := time.Now()
		b := &effBuf{}
		effects = effects[:0]
		var dones []chan struct{}
		for i := range evs {
			if evs[i].bgps != nil {
				for j := range evs[i].bgps {
					effects = l.handle(&event{bgp: &evs[i].bgps[j]}, effects, now)
				}
				dones = append(dones, evs[i].done)
				evs[i] = event{}
				continue
			}
			if evs[i].call != nil && len(effects) > 0 {
				// A call (a Watch snapshot, say) must see the state with
				// every earlier event of the batch observed.
				l.apply(effects, b)
				effects = effects[:0]
			}
			effects = l.handle(&evs[i], effects, now)
			evs[i] = event{}
		}
		buf = evs
		l.apply(effects, b)
		l.applyL3(l.l3eff, b)
		clear(l.l3eff)
		l.l3eff = l.l3eff[:0]
		// fib may prune only once the batch's routes are in its desired
		// state: End-of-RIB often comes in the batch of the last routes,
		// and a pass between MarkSynced and their apply deleted the
		// entries of the previous run for them (and wrote them again a
		// moment later).
		if ev := l.syncedEv; ev != nil {
			l.syncedEv = nil
			l.markSynced(ev)
		}
		b.extra, b.wextra = append(b.extra, l.extra...), append(b.wextra, l.withdrawExtra...)
		l.extra, l.withdrawExtra = nil, nil
		for _, k := range l.learned {
			l.desired.Invalidate(k.VNI, k.MAC)
		}
		l.learned = l.learned[:0]
		l.flush(b)
		if l.release {
			l.release = false
			l.adv.Release()
		}
		for _, d := range dones {
			close(d)
		}
		for _, c := range l.calls {
			close(c.done)
		}
		clear(l.calls)
		l.calls = l.calls[:0]
	}
}

// markSynced: the initial table is in (speaker.EventSynced). fib may now
// remove the kernel entries of the previous run that it did not confirm.
func (l *leaf) markSynced(ev *speaker.Event) {
	if ev.TimedOut {
		l.d.log.Warn("End-of-RIB not received from every peer in time; removing stale kernel entries now",
			"eor_timeout", l.d.cfg.GracefulRestart.EORTimeout, "waiting_for", ev.Pending)
	} else {
		l.d.log.Info("End-of-RIB received from every established peer; removing stale kernel entries")
	}
	l.synced.Store(true)
	l.rec.MarkSynced()
	for _, t := range l.tenants {
		t.l3rec.MarkSynced()
	}
}

func (l *leaf) handle(ev *event, effects []evpn.Effect, now time.Time) []evpn.Effect {
	if c := ev.call; c != nil {
		if !c.start() {
			return effects // its caller gave up before it ran
		}
		l.calls = append(l.calls, c)
		effects = append(effects, c.fn(now)...)
		close(c.ran)
		return effects
	}
	if h := ev.host; h != nil {
		if _, routed := l.hosts.gw[h.ev.Key.VNI]; !routed && !h.reset {
			return effects // a report of a VRF a reload just removed
		}
		if l.hosts.apply(*h) && !h.reset {
			l.d.log.Debug("local host", "vrf", h.vrf, "vni", h.ev.Key.VNI, "ip", h.ev.Key.IP, "mac", h.ev.MAC, "removed", h.ev.Removed)
		}
		switch k := h.ev.Key; {
		case h.reset:
		case h.ev.Removed:
			l.l3eff = append(l.l3eff, l.l3.LocalHostGone(k.VNI, k.IP)...)
		case l.hosts.gw[k.VNI] == h.ev.MAC:
			// The anycast gateway MAC is never advertised as a host.
		default:
			if mi, ok := l.table.Lookup(k.VNI, h.ev.MAC); ok && mi.Local {
				l.l3eff = append(l.l3eff, l.l3.LocalHost(k.VNI, h.ev.MAC, k.IP, mi.Seq, mi.Sticky)...)
				break
			}
			// The MAC is not local here (not learned yet, or gone to
			// another leaf while the kernel keeps its neighbour): no
			// MAC+IP route until the MAC Table advertises the MAC, with
			// its sequence number (LocalMACSeq). Advertised now, it would
			// carry sequence 0, which BGP refuses against the MAC's
			// routes, or re-advertise a host that left.
			l.l3eff = append(l.l3eff, l.l3.LocalHostAway(k.VNI, h.ev.MAC, k.IP)...)
		}
		return effects
	}
	if o := ev.outbid; o != nil {
		k := evpn.MACKey{VNI: o.Route.L2VNI(), MAC: o.Route.MAC}
		if o.Route.IP.IsValid() {
			// A MAC+IP route: it carries its MAC's sequence number (the
			// L3 table re-advertises it with the MAC's, LocalMACSeq), so
			// the MAC bids above the path BGP holds. Unless the MAC moved
			// on meanwhile: a newer decision replaced the refused route.
			if mi, ok := l.table.Lookup(k.VNI, k.MAC); !ok || !mi.Local || mi.Seq != o.Route.Seq {
				return effects
			}
			l.d.log.Info("local MAC+IP route refused by BGP: a path for the MAC has a sequence number at least ours; bidding above it",
				"vni", k.VNI, "mac", k.MAC, "ip", o.Route.IP, "seq", o.Route.Seq, "bgp_seq", o.Seq)
			return append(effects, l.table.Outbid(k.VNI, k.MAC, o.Seq, now)...)
		}
		if l.advertised[k] != o.Route {
			return effects // a newer decision replaced the refused route
		}
		l.d.log.Info("local MAC route refused by BGP: a path for the MAC has a sequence number at least ours; bidding above it",
			"vni", k.VNI, "mac", k.MAC, "seq", o.Route.Seq, "bgp_seq", o.Seq)
		return append(effects, l.table.Outbid(k.VNI, k.MAC, o.Seq, now)...)
	}
	if m := ev.local; m != nil {
		if _, ok := l.vnis[m.VNI]; !ok {
			return effects
		}
		if m.Removed {
			l.d.log.Debug("local MAC removed", "vni", m.VNI, "mac", m.MAC, "port", m.Port)
			l.d.trace.Record(m.VNI, m.MAC, trace.Event{Time: now, Kind: trace.LocalRemoved, Local: true, Detail: portDetail(m.Port)})
			delete(l.ports, evpn.MACKey{VNI: m.VNI, MAC: m.MAC})
			return append(effects, l.table.LocalDel(m.VNI, m.MAC, now)...)
		}
		if gw, ok := l.hosts.gateway(m.VNI); ok && gw == m.MAC {
			l.gatewayMACLearned(m.VNI, m.MAC, m.Port)
			return effects
		}
		l.d.log.Debug("local MAC learned", "vni", m.VNI, "mac", m.MAC, "port", m.Port)
		l.d.trace.Record(m.VNI, m.MAC, trace.Event{Time: now, Kind: trace.LocalLearned, Local: true, Detail: portDetail(m.Port)})
		if l.ports != nil {
			l.ports[evpn.MACKey{VNI: m.VNI, MAC: m.MAC}] = m.Port
		}
		// The bridge may just have moved one of fib's remote entries to the
		// access port: fib must re-check it once this batch's effects are in.
		l.learned = append(l.learned, evpn.MACKey{VNI: m.VNI, MAC: m.MAC})
		return append(effects, l.table.LocalAdd(m.VNI, m.MAC, m.Static, now)...)
	}
	b := ev.bgp
	switch b.Type {
	case speaker.EventRoute:
		l.traceRoute(b, now)
		for _, touched := range l.refeeding {
			touched[b.Route.Key] = struct{}{}
		}
		if b.Withdraw {
			if l.l3 != nil {
				l.l3eff = append(l.l3eff, l.l3.Withdraw(b.Route.Key)...)
			}
			return append(effects, l.table.Withdraw(b.Route.Key, now)...)
		}
		if l.l3 != nil {
			l.l3eff = append(l.l3eff, l.l3.Update(b.Route)...)
		}
		if vni, ok := l.ownGatewayMAC(b.Route); ok {
			l.d.log.Debug("remote route for this leaf's anycast gateway MAC: not installed", "vni", vni, "mac", b.Route.MAC, "vtep", b.Route.VTEP())
			return append(effects, l.table.Withdraw(b.Route.Key, now)...)
		}
		return append(effects, l.table.Update(b.Route, now)...)
	case speaker.EventPeer:
		l.d.log.Info("peer state", "peer", b.Peer, "state", b.State)
		up := b.State == speaker.PeerStateEstablished
		if was := l.up[b.Peer]; was != up {
			l.d.publishPeer(b.Peer, up, apiPeerState(b.State), now)
		}
		if up {
			l.up[b.Peer] = true
		} else {
			delete(l.up, b.Peer)
		}
	case speaker.EventEndOfRIB:
		l.d.log.Debug("End-of-RIB received", "peer", b.Peer)
	case speaker.EventSynced:
		ev := *b // marked once the batch is applied (loop)
		l.syncedEv = &ev
		if l.d.restarted.Load() {
			effects = append(effects, l.table.RebidLocal(now)...)
		}
		l.release = true
	}
	return effects
}

// apply turns table effects into fib mutations (cheap, in memory) and
// collects the BGP announcements and withdrawals of the batch.
func (l *leaf) apply(effects []evpn.Effect, b *effBuf) *effBuf {
	log := l.d.log
	now := time.Now()
	// The L3 table's effects of the events handled so far come first:
	// the effects below call it again (LocalMACSeq, LocalMACAway), and
	// its effects must be applied in the order it gave them (a host's
	// route advertised by a neighbour event, then withdrawn as its MAC
	// left, must end withdrawn).
	l.applyL3(l.l3eff, b)
	clear(l.l3eff)
	l.l3eff = l.l3eff[:0]
	for i := range effects {
		e := &effects[i]
		l.observe(e, now)
		switch e.Kind {
		case evpn.FIBSetMAC:
			if err := l.desired.SetRemoteMAC(e.VNI, e.MAC, e.VTEP, e.Sticky, e.SendVNI); err != nil {
				log.Warn("remote MAC not installed", "vni", e.VNI, "mac", e.MAC, "vtep", e.VTEP, "err", err)
			}
		case evpn.FIBDelMAC:
			l.desired.DeleteMAC(e.VNI, e.MAC)
		case evpn.FIBAddFlood:
			log.Info("remote VTEP added to flood list", "vni", e.VNI, "vtep", e.VTEP)
			if err := l.desired.AddFlood(e.VNI, e.VTEP); err != nil {
				log.Warn("flood entry not installed", "vni", e.VNI, "vtep", e.VTEP, "err", err)
			}
		case evpn.FIBDelFlood:
			log.Info("remote VTEP removed from flood list", "vni", e.VNI, "vtep", e.VTEP)
			l.desired.DeleteFlood(e.VNI, e.VTEP)
		case evpn.Advertise:
			v := l.vnis[e.VNI]
			r := evpn.LocalMACRoute(l.d.cfg.L2VNIRD(v), e.VNI, e.MAC, l.d.cfg.VTEPIP, l.d.cfg.ExportRTs(v), e.Seq, e.Sticky)
			b.set(evpn.MACKey{VNI: e.VNI, MAC: e.MAC}, r)
			if l.l3 != nil {
				l.applyL3(l.l3.LocalMACSeq(e.VNI, e.MAC, e.Seq, e.Sticky), b)
			}
		case evpn.WithdrawLocal:
			b.set(evpn.MACKey{VNI: e.VNI, MAC: e.MAC}, nil)
			if l.l3 != nil {
				l.applyL3(l.l3.LocalMACAway(e.VNI, e.MAC), b)
			}
		case evpn.DuplicateDetected:
			why := "it moved too often"
			if e.Reason != "" {
				why = e.Reason
			}
			log.Warn("duplicate MAC detected: "+why+"; "+dupAction(l.d.cfg.MACMobility.Freeze),
				"vni", e.VNI, "mac", e.MAC, "moves", e.Moves,
				"window", l.d.cfg.MACMobility.DuplicateWindow, "freeze", l.d.cfg.MACMobility.Freeze)
		case evpn.Rejected:
			if e.Odd != "" {
				l.d.oddRoute(e, "odd route not used")
				break
			}
			if e.Reason != evpn.ReasonUnusableVTEP {
				log.Debug("route not used", "mac", e.MAC, "vtep", e.VTEP, "reason", e.Reason)
				break
			}
			// A peer may send many such routes: log one line per
			// interval, with how many were not logged.
			if ok, n := l.martians.allow(now); ok {
				a := []any{"vtep", e.VTEP, "reason", e.Reason, "not_logged_before", n}
				if !e.MAC.IsZero() {
					a = append(a, "mac", e.MAC)
				}
				log.Warn("route not used: it names a VTEP no tunnel can reach; nothing installed towards it", a...)
			}
		case evpn.OddRoute:
			l.d.oddRoute(e, "odd route used")
		}
	}
	return b
}

// flush hands the batch's BGP decisions to the Advertiser, which sends
// them to GoBGP on its own goroutine and retries what GoBGP does not take.
func (l *leaf) flush(b *effBuf) {
	var ann, wdr []*evpn.Route
	for _, k := range b.order {
		if r := b.final[k]; r != nil {
			l.advertised[k] = r
			ann = append(ann, r)
		} else if old, ok := l.advertised[k]; ok {
			delete(l.advertised, k)
			wdr = append(wdr, old)
		}
	}
	for _, k := range b.l3order {
		if r := b.l3final[k]; r != nil {
			l.l3adv[k] = r
			ann = append(ann, r)
		} else if old, ok := l.l3adv[k]; ok {
			delete(l.l3adv, k)
			wdr = append(wdr, old)
		}
	}
	ann = append(ann, b.extra...)
	wdr = append(wdr, b.wextra...)
	l.adv.Withdraw(wdr...)
	l.adv.Announce(ann...)
}

// previousRun reports whether an earlier evpnd ran here and left its
// forwarding state in the kernel: then BGP graceful restart announces the
// restart (forwarding state preserved) and the kernel entries stay until
// the peers have re-sent their tables.
func (d *Daemon) previousRun(ctx context.Context, h *netlink.Handle) bool {
	k, err := fib.NewNetlinkKernel(vnetns.None())
	if err != nil {
		d.log.Warn("cannot read the kernel FDB to tell a restart; relying on the devices' owner mark only", "err", err)
		k = nil
	} else {
		defer k.Close()
	}
	n := vtep.NodeOf(h)
	ok, why := restartMark(ctx, n, k, d.cfg.L2VNIs)
	if !ok {
		ok, why = d.vrfMark(n)
	}
	if ok {
		d.log.Info("restart detected: an earlier evpnd's forwarding state is in the kernel", "mark", why)
	}
	return ok
}

// vrfMark looks for evpnd's owner alias on a tenant VRF's L3VNI device
// (in the tenant's namespace on the netns backend): a start after an
// earlier evpnd programmed the VRF is a restart too.
func (d *Daemon) vrfMark(under *vtep.Node) (bool, string) {
	for _, f := range d.cfg.VRFs {
		if f.Backend != configs.BackendNetns {
			if l, err := under.Link(f.VXLANDevice); err == nil && l.Alias == vtep.OwnerAlias {
				return true, "owner alias on " + f.VXLANDevice
			}
			continue
		}
		n, err := vtep.OpenNode(f.Namespace)
		if err != nil {
			continue
		}
		l, err := n.Link(f.VXLANDevice)
		n.Close()
		if err == nil && l.Alias == vtep.OwnerAlias {
			return true, "owner alias on " + f.VXLANDevice + " in namespace " + f.Namespace
		}
	}
	return false, ""
}

// fdbDumper is the part of fib.NetlinkKernel restartMark reads with.
type fdbDumper interface {
	Dump(ctx context.Context, vnis []fib.VNIDevices) ([]fib.KernelEntry, error)
}

// restartMark looks for what an earlier evpnd leaves in the kernel,
// whoever created the devices (evpnd, ifupdown2, netplan):
//   - a remote MAC or flood entry on a configured VXLAN device carrying
//     extern_learn (NTF_EXT_LEARNED with a remote VTEP): only evpnd's fib
//     (or zebra) writes those; the bridge's own learning never sets it;
//   - a configured VXLAN device with evpnd's owner alias (evpnd created it).
//
// The FDB mark is what matters: it says the forwarding state is really
// preserved (kept by a SIGTERM or a kill -9, gone after a reboot or a
// device rebuild), which is exactly what graceful restart announces. A
// state file would survive the loss of the entries and say so wrongly.
// It returns which mark it found.
func restartMark(ctx context.Context, n *vtep.Node, k fdbDumper, vnis []configs.L2VNI) (bool, string) {
	if k != nil {
		devs := make([]fib.VNIDevices, 0, len(vnis))
		for _, v := range vnis {
			devs = append(devs, fib.VNIDevices{VNI: v.VNI, VXLAN: v.VXLANDevice, Bridge: v.Bridge})
		}
		if es, err := k.Dump(ctx, devs); err == nil {
			for _, e := range es {
				if e.Self && e.ExternLearn && e.VTEP.IsValid() {
					return true, fmt.Sprintf("extern_learn FDB entry on %s (vni %d, vtep %s)", e.Dev, e.VNI, e.VTEP)
				}
			}
		}
	}
	for _, v := range vnis {
		if l, err := n.Link(v.VXLANDevice); err == nil && l.Alias == vtep.OwnerAlias {
			return true, "owner alias on " + v.VXLANDevice
		}
	}
	return false, ""
}

// resyncWindow is how long withdrawals from a re-established peer are
// held (speaker.Config.ResyncWindow): long enough for every leaf to reconnect to a
// restarted reflector (twice the connect retry, at least 10 s), at most the
// End-of-RIB timeout; 0 without graceful restart.
func (d *Daemon) resyncWindow() time.Duration {
	if !d.cfg.GracefulRestart.IsEnabled() {
		return 0
	}
	return min(max(2*d.cfg.BGP.ConnectRetry, 10*time.Second), d.cfg.GracefulRestart.EORTimeout)
}

// onRepair counts a repair of a VNI's devices (vtep.Manager.Supervise)
// and, when the kernel lost the FDB evpnd wrote there (a device rebuilt
// or put back in its bridge), has fib read the kernel again: it then
// rewrites the VNI's remote MACs and flood list on the new device, and
// stops retrying writes against the vanished one.
func (l *leaf) onRepair(r vtep.Repair) {
	if r.Err != nil {
		l.d.metrics.DeviceRepairFailed(r.VNI)
		return
	}
	for _, a := range r.Actions {
		l.d.metrics.DeviceRepair(r.VNI, a.Op.Name())
	}
	for range r.Recreated {
		l.d.metrics.DeviceRepair(r.VNI, "adopt_recreated")
	}
	if r.FDBLost() {
		l.d.log.Info("l2vni devices rebuilt: re-reading the kernel FDB to restore the VNI's remote MACs and flood list", "vni", r.VNI)
		l.rec.Resync()
	}
}

// onVRFRepair follows a re-run of EnsureVRF for tenant t after a change
// to its devices (counting a failure) and, when the kernel may have lost
// the FDB evpnd wrote there (a VXLAN device or bridge re-created or
// changed), has fib read the kernel again and the VRF's local hosts
// watched again (fib's L3 side follows route and neighbour changes by
// itself). A change of access ports only (a host's port going down or up
// as it moves) does neither: a resync racing the bridge's move of the
// host's MAC to its new port would put the MAC back on the VXLAN port. It
// runs on t's supervisor goroutine.
func (l *leaf) onVRFRepair(t *tenant, r vtep.VRFRepair) {
	if r.Err != nil {
		l.d.metrics.DeviceRepairFailed(t.cfg.L3VNI)
		return
	}
	if !r.FDBLost {
		return
	}
	l.rec.Resync()
	select {
	case t.rewatch <- struct{}{}:
	default:
	}
}
