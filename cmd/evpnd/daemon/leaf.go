package daemon

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sync/errgroup"

	"github.com/evpnd/evpnd/cmd/evpnd/api"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/evpnd/evpnd/vtep"
)

// event is one input to the leaf loop: a BGP event, a local MAC event, or
// a local route that BGP refused and that is to be bid again.
type event struct {
	bgp   *speaker.Event
	local *vtep.MACEvent
	host  *hostEvent
	retry *evpn.MACKey
	call  *call
}

// maxRetries bounds how often in a row a refused local route is bid again.
const maxRetries = 3

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
	// advertised holds the local type-2 routes this leaf announces, so that
	// a withdrawal names exactly the path that was announced.
	advertised map[evpn.MACKey]*evpn.Route
	retries    map[evpn.MACKey]int
	learned    []evpn.MACKey // local learns of the current batch
	hold       *resyncHold
	sync       syncState
	learner    *vtep.Learner
	mgr        *vtep.Manager
	// tenants are the tenant VRFs (config order); tlearners the learners
	// of the tenant namespaces (netns backend), whose L2VNIs the underlay's
	// learner does not watch.
	tenants   []*tenant
	tlearners []*vtep.Learner
	hosts     *localHosts // the tenants' local MAC+IP bindings
	// l3 is the L3 model (MAC+IP and type-5 routes of the VRFs); l3adv
	// its routes this leaf announces; l3eff its effects of the batch.
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
	for _, n := range d.cfg.Neighbors {
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

	restarting := d.previousRun(h)
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
	defer func() {
		for _, t := range tenants {
			t.close()
		}
	}()

	l := &leaf{
		d:          d,
		srv:        srv,
		q:          newQueue[event](),
		vnis:       map[uint32]configs.L2VNI{},
		advertised: map[evpn.MACKey]*evpn.Route{},
		retries:    map[evpn.MACKey]int{},
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
	for _, v := range d.cfg.L2VNIs {
		l.vnis[v.VNI] = v
		if err := l.desired.SetVNI(fib.VNIDevices{VNI: v.VNI, VXLAN: v.VXLANDevice, Bridge: v.Bridge}); err != nil {
			return err
		}
	}
	l.table = evpn.NewTable(evpn.Options{
		LocalVTEP: d.cfg.VTEPIP,
		RouterID:  d.cfg.RouterID,
		DupMoves:  d.cfg.MACMobility.DuplicateMoves,
		DupWindow: d.cfg.MACMobility.DuplicateWindow,
		Freeze:    d.cfg.MACMobility.Freeze,
	}, d.importRules())

	// fib writes each VNI's FDB in the namespace of its devices: a tenant's
	// on the netns backend, the underlay's for every other VNI.
	kern, closeKern, err := d.fdbKernel(tenants)
	if err != nil {
		return err
	}
	defer closeKern()
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
	learners := []*vtep.Learner{learner}
	for _, t := range tenants {
		if !t.inTenantNS() {
			continue
		}
		tl := vtep.NewLearner(t.ns, d.tenantVNIs(t), d.log.With("vrf", t.cfg.Name))
		tl.OnForeignVXLAN(foreign)
		l.tlearners = append(l.tlearners, tl)
		learners = append(learners, tl)
	}
	apiKern, closeAPIKern, err := d.fdbKernel(tenants)
	if err != nil {
		return err
	}
	defer closeAPIKern()
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
	batch := l.apply(effects, &effBuf{extra: ann})
	if err := l.flush(ctx, batch); err != nil {
		return err
	}
	d.log.Info("local state announced", "l2vnis", len(d.cfg.L2VNIs), "vrfs", len(tenants), "local_macs", len(local), "restarting", restarting)

	if err := d.addPeers(ctx, srv); err != nil {
		return err
	}
	l.sync = newSyncState(d.cfg.GracefulRestart.EORTimeout, now)
	l.hold = newResyncHold(d.resyncWindow())

	d.leaf.Store(l)
	defer d.leaf.Store(nil)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return l.rec.Run(gctx) })
	// The devices are kept as configured: rebuilt, re-enslaved, their
	// flags reset, whoever changes them.
	g.Go(func() error { return mgr.Supervise(gctx, l.onRepair) })
	// So are the tenant VRFs' devices, members included, in whichever
	// namespace they live.
	var vrfs []vtep.VRF
	for _, t := range tenants {
		vrfs = append(vrfs, t.v)
	}
	g.Go(func() error { return mgr.SuperviseVRFs(gctx, vrfs, l.onVRFRepair) })
	for _, ln := range learners {
		g.Go(func() error {
			return ln.Run(gctx, func(ev vtep.MACEvent) { l.q.push(event{local: &ev}) })
		})
	}
	// fib's L3 side of each tenant VRF: a pass at every change of its
	// desired state (fed by the BGP side through leaf.L3VRF) and of the
	// tenant namespace's routes and neighbours.
	for _, t := range tenants {
		g.Go(func() error {
			ch, err := fib.WatchL3(gctx, t.ns)
			if err != nil {
				return fmt.Errorf("vrf %s: watch routes and neighbours: %w", t.cfg.Name, err)
			}
			return t.l3rec.Run(gctx, ch)
		})
		g.Go(func() error { return l.watchHosts(gctx, t) })
	}
	g.Go(func() error {
		return srv.Watch(gctx, func(ev speaker.Event) { l.q.push(event{bgp: &ev}) })
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
	timer := time.NewTimer(l.sync.timeout)
	defer timer.Stop()
	// Duplicate flags are cleared once a MAC has stayed put for a whole
	// detection window; checking a few times per window is enough.
	expire := time.NewTicker(max(time.Second, min(30*time.Second, l.d.cfg.MACMobility.DuplicateWindow/4)))
	defer expire.Stop()
	holdTick := time.NewTicker(time.Second)
	defer holdTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.q.wake:
		case now := <-expire.C:
			if err := l.flush(ctx, l.apply(l.table.Expire(now), &effBuf{})); err != nil {
				return err
			}
			continue
		case now := <-holdTick.C:
			var effects []evpn.Effect
			keys := l.hold.expire(now)
			b := &effBuf{}
			for _, k := range keys {
				effects = append(effects, l.table.Withdraw(k, now)...)
				if l.l3 != nil {
					l.applyL3(l.l3.Withdraw(k), b)
				}
			}
			if len(keys) > 0 {
				l.d.log.Info("re-sync window ended: applying withdrawals not re-announced", "routes", len(keys))
			}
			if err := l.flush(ctx, l.apply(effects, b)); err != nil {
				return err
			}
			continue
		case <-timer.C:
			switch {
			case l.sync.done:
			case !l.sync.everUp:
				// Without any session the fabric's state is unknown: keep
				// forwarding with what the kernel has until a peer syncs.
				l.d.log.Warn("no BGP session came up within the End-of-RIB timeout; keeping kernel entries of the previous run until a peer has synced",
					"eor_timeout", l.sync.timeout)
				timer.Reset(l.sync.timeout)
			default:
				l.d.log.Warn("End-of-RIB not received from every peer in time; removing stale kernel entries now",
					"eor_timeout", l.sync.timeout, "waiting_for", l.sync.pending())
				l.markSynced()
			}
			continue
		}
		evs := l.q.drain(buf)
		now := time.Now()
		b := &effBuf{}
		effects = effects[:0]
		for i := range evs {
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
		b.extra, b.wextra = append(b.extra, l.extra...), append(b.wextra, l.withdrawExtra...)
		l.extra, l.withdrawExtra = nil, nil
		for _, k := range l.learned {
			l.desired.Invalidate(k.VNI, k.MAC)
		}
		l.learned = l.learned[:0]
		if err := l.flush(ctx, b); err != nil {
			return err
		}
		for _, c := range l.calls {
			close(c.done)
		}
		clear(l.calls)
		l.calls = l.calls[:0]
		if !l.sync.done && l.sync.complete() {
			l.d.log.Info("End-of-RIB received from every established peer; removing stale kernel entries")
			l.markSynced()
		}
	}
}

func (l *leaf) markSynced() {
	l.sync.done = true
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
			var seq uint32
			var sticky bool
			if mi, ok := l.table.Lookup(k.VNI, h.ev.MAC); ok && mi.Local {
				seq, sticky = mi.Seq, mi.Sticky
			}
			l.l3eff = append(l.l3eff, l.l3.LocalHost(k.VNI, h.ev.MAC, k.IP, seq, sticky)...)
		}
		return effects
	}
	if k := ev.retry; k != nil {
		return append(effects, l.table.Readvertise(k.VNI, k.MAC, now)...)
	}
	if m := ev.local; m != nil {
		if _, ok := l.vnis[m.VNI]; !ok {
			return effects
		}
		if m.Removed {
			l.d.log.Debug("local MAC removed", "vni", m.VNI, "mac", m.MAC, "port", m.Port)
			l.d.trace.Record(m.VNI, m.MAC, api.TraceEvent{Time: now, Kind: api.TraceLocalRemoved, Local: true, Detail: portDetail(m.Port)})
			delete(l.ports, evpn.MACKey{VNI: m.VNI, MAC: m.MAC})
			return append(effects, l.table.LocalDel(m.VNI, m.MAC, now)...)
		}
		l.d.log.Debug("local MAC learned", "vni", m.VNI, "mac", m.MAC, "port", m.Port)
		l.d.trace.Record(m.VNI, m.MAC, api.TraceEvent{Time: now, Kind: api.TraceLocalLearned, Local: true, Detail: portDetail(m.Port)})
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
			if l.hold.withdraw(b.Route.Key, b.Peer) {
				return effects
			}
			if l.l3 != nil {
				l.l3eff = append(l.l3eff, l.l3.Withdraw(b.Route.Key)...)
			}
			return append(effects, l.table.Withdraw(b.Route.Key, now)...)
		}
		l.hold.announced(b.Route.Key)
		if l.l3 != nil {
			l.l3eff = append(l.l3eff, l.l3.Update(b.Route)...)
		}
		return append(effects, l.table.Update(b.Route, now)...)
	case speaker.EventPeer:
		l.d.log.Info("peer state", "peer", b.Peer, "state", b.State)
		up := b.State == speaker.PeerStateEstablished
		if was := l.sync.established[b.Peer]; was != up {
			l.d.publishPeer(b.Peer, up, apiPeerState(b.State), now)
		}
		l.sync.peer(b.Peer, up)
		if up {
			l.hold.established(b.Peer, now)
			if _, ok := l.hold.until[b.Peer]; ok {
				l.d.log.Info("peer re-established: holding its withdrawals while it re-sends its table",
					"peer", b.Peer, "window", l.hold.window)
			}
		}
	case speaker.EventEndOfRIB:
		l.d.log.Debug("End-of-RIB received", "peer", b.Peer)
		l.sync.eor(b.Peer)
		l.hold.endOfRIB(b.Peer, now)
	}
	return effects
}

// apply turns table effects into fib mutations (cheap, in memory) and
// collects the BGP announcements and withdrawals of the batch.
func (l *leaf) apply(effects []evpn.Effect, b *effBuf) *effBuf {
	log := l.d.log
	now := time.Now()
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

func (l *leaf) flush(ctx context.Context, b *effBuf) error {
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
	ann = append(ann, b.extra...)
	wdr = append(wdr, b.wextra...)
	if len(wdr) > 0 {
		if err := l.srv.Withdraw(ctx, wdr); err != nil && ctx.Err() == nil {
			l.d.log.Error("BGP withdraw failed", "routes", len(wdr), "err", err)
		}
	}
	if len(ann) == 0 {
		return ctx.Err()
	}
	err := l.srv.Announce(ctx, ann)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	failed := map[evpn.MACKey]bool{}
	for _, r := range speaker.FailedRoutes(err) {
		if r.Type != evpn.RouteTypeMACIP {
			l.d.log.Error("BGP refused a local route", "route", r.Key.String(), "err", err)
			continue
		}
		k := evpn.MACKey{VNI: r.L2VNI(), MAC: r.MAC}
		failed[k] = true
		if l.advertised[k] == r {
			delete(l.advertised, k)
		}
		l.retries[k]++
		if l.retries[k] > maxRetries {
			l.d.log.Error("BGP keeps refusing a local MAC; giving up until it is learned again",
				"vni", k.VNI, "mac", k.MAC, "seq", r.Seq, "attempts", l.retries[k])
			delete(l.retries, k)
			continue
		}
		// GoBGP refuses a local path when its RIB holds a remote one for
		// the MAC with a sequence number at least ours, not yet seen by the
		// table. Bid again after the events already queued.
		l.d.log.Info("local MAC route refused by BGP; bidding again with a higher sequence",
			"vni", k.VNI, "mac", k.MAC, "seq", r.Seq)
		l.q.push(event{retry: &k})
	}
	if len(l.retries) > 0 {
		for _, r := range ann {
			if r.Type == evpn.RouteTypeMACIP {
				if k := (evpn.MACKey{VNI: r.L2VNI(), MAC: r.MAC}); !failed[k] {
					delete(l.retries, k)
				}
			}
		}
	}
	if err != nil && len(failed) == 0 {
		// Not a per-route refusal (for example the server is stopping).
		l.d.log.Error("BGP announce failed", "routes", len(ann), "err", err)
	}
	return nil
}

// syncState tracks End-of-RIB from established peers after start.
type syncState struct {
	timeout     time.Duration
	done        bool
	everUp      bool
	established map[netip.Addr]bool
	eors        map[netip.Addr]bool
}

func newSyncState(timeout time.Duration, _ time.Time) syncState {
	return syncState{timeout: timeout, established: map[netip.Addr]bool{}, eors: map[netip.Addr]bool{}}
}

func (s *syncState) peer(p netip.Addr, up bool) {
	if up {
		s.everUp = true
		s.established[p] = true
	} else {
		delete(s.established, p)
		delete(s.eors, p)
	}
}

func (s *syncState) eor(p netip.Addr) { s.eors[p] = true }

// complete: at least one peer is established and every established peer
// has sent End-of-RIB.
func (s *syncState) complete() bool {
	if len(s.established) == 0 {
		return false
	}
	for p := range s.established {
		if !s.eors[p] {
			return false
		}
	}
	return true
}

func (s *syncState) pending() []netip.Addr {
	var out []netip.Addr
	for p := range s.established {
		if !s.eors[p] {
			out = append(out, p)
		}
	}
	return out
}

// previousRun reports whether an earlier evpnd ran here: a configured VXLAN
// device (an L2VNI's or a tenant VRF's L3VNI's) already carries evpnd's
// owner mark. Its kernel entries are then
// still forwarding, and BGP graceful restart announces the restart.
func (d *Daemon) previousRun(h *netlink.Handle) bool {
	for _, v := range d.cfg.L2VNIs {
		if l, err := h.LinkByName(v.VXLANDevice); err == nil && l.Attrs().Alias == vtep.OwnerAlias {
			return true
		}
	}
	// A tenant VRF's L3VNI device, in the tenant's namespace on netns.
	for _, f := range d.cfg.VRFs {
		if f.Backend != configs.BackendNetns {
			if l, err := h.LinkByName(f.VXLANDevice); err == nil && l.Attrs().Alias == vtep.OwnerAlias {
				return true
			}
			continue
		}
		ns, err := vnetns.GetFromName(f.Namespace)
		if err != nil {
			continue
		}
		th, err := netlink.NewHandleAt(ns)
		ns.Close()
		if err != nil {
			continue
		}
		l, err := th.LinkByName(f.VXLANDevice)
		th.Close()
		if err == nil && l.Attrs().Alias == vtep.OwnerAlias {
			return true
		}
	}
	return false
}

// resyncWindow is how long withdrawals from a re-established peer are
// held (see resyncHold): long enough for every leaf to reconnect to a
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

// onVRFRepair follows a re-run of EnsureVRF after a change to a VRF's
// devices (counting a failure) and has fib read the kernel again: a re-created VXLAN device
// lost the FDB evpnd wrote there (fib's L3 side follows route and
// neighbour changes by itself).
func (l *leaf) onVRFRepair(r vtep.VRFRepair) {
	var l3vni uint32
	for _, t := range l.tenants {
		if t.cfg.Name == r.VRF {
			l3vni = t.cfg.L3VNI
		}
	}
	if r.Err != nil {
		l.d.metrics.DeviceRepairFailed(l3vni)
		return
	}
	l.rec.Resync()
	for _, t := range l.tenants {
		if t.cfg.Name == r.VRF {
			select {
			case t.rewatch <- struct{}{}:
			default:
			}
		}
	}
}
