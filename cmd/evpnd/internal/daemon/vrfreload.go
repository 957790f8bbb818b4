package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/evpnd/evpnd/vtep"
)

// Tenant VRFs at run time: a reload adds, removes, rebuilds (remove, then
// add) and re-advertises them (configs.DiffVRFs says which), one at a
// time, without touching the other tenants.

// tenantList returns the tenants; any goroutine may call it.
func (l *leaf) tenantList() []*tenant {
	l.tmu.Lock()
	defer l.tmu.Unlock()
	return slices.Clone(l.tenants)
}

// startTenant starts t's goroutines in the leaf's group, under a context
// of t's own (t.stop ends them): its devices kept as configured
// (SuperviseVRFs), its learner (netns backend), fib's L3 side (a pass at
// every change of its desired state and of its namespace's routes and
// neighbours) and the watch of its local hosts. Once t is stopped, they
// return nil: only a failure while t runs stops evpnd, as at start.
func (l *leaf) startTenant(t *tenant) {
	ctx, cancel := context.WithCancel(l.gctx)
	t.stop = cancel
	run := func(f func(context.Context) error) {
		t.wg.Add(1)
		l.g.Go(func() error {
			defer t.wg.Done()
			err := f(ctx)
			if ctx.Err() != nil {
				return nil
			}
			return err
		})
	}
	run(func(ctx context.Context) error {
		return l.mgr.SuperviseVRFs(ctx, []vtep.VRF{t.v}, func(r vtep.VRFRepair) { l.onVRFRepair(t, r) })
	})
	if t.learner != nil {
		run(func(ctx context.Context) error {
			return t.learner.Run(ctx, func(ev vtep.MACEvent) { l.q.push(event{local: &ev}) })
		})
	}
	run(func(ctx context.Context) error {
		ch, err := fib.WatchL3(ctx, t.ns)
		if err != nil {
			return fmt.Errorf("vrf %s: watch routes and neighbours: %w", t.cfg.Name, err)
		}
		return t.l3rec.Run(ctx, ch)
	})
	run(func(ctx context.Context) error { return l.watchHosts(ctx, t) })
	if t.statics != nil {
		run(t.statics.Run)
	}
}

// stopTenant ends t's goroutines and waits for them.
func (t *tenant) stopAndWait() {
	if t.stop != nil {
		t.stop()
	}
	t.wg.Wait()
}

// memberL2VNIs returns the L2VNIs of c routed in f.
func memberL2VNIs(c *configs.Config, f configs.VRF) []configs.L2VNI {
	var out []configs.L2VNI
	for _, m := range f.L2VNIs {
		for _, v := range c.L2VNIs {
			if v.VNI == m.VNI {
				out = append(out, v)
			}
		}
	}
	return out
}

// withVRF returns a copy of c with VRF f added, and those of f's member
// L2VNIs (from src) that c lacks.
func withVRF(c, src *configs.Config, f configs.VRF) *configs.Config {
	cc := *c
	cc.VRFs = append(slices.Clone(c.VRFs), f)
	cc.L2VNIs = slices.Clone(c.L2VNIs)
	for _, v := range memberL2VNIs(src, f) {
		if !slices.ContainsFunc(cc.L2VNIs, func(x configs.L2VNI) bool { return x.VNI == v.VNI }) {
			cc.L2VNIs = append(cc.L2VNIs, v)
		}
	}
	return &cc
}

// withoutVRF returns a copy of c without VRF f and its member L2VNIs.
func withoutVRF(c *configs.Config, f configs.VRF) *configs.Config {
	member := map[uint32]bool{}
	for _, m := range f.L2VNIs {
		member[m.VNI] = true
	}
	cc := c.OnlyL2VNIs(func(v configs.L2VNI) bool { return !member[v.VNI] })
	cc.VRFs = slices.DeleteFunc(slices.Clone(c.VRFs), func(x configs.VRF) bool { return x.Name == f.Name })
	return cc
}

// l3VRF is the L3 model's description of VRF f of config c.
func l3VRF(c *configs.Config, f configs.VRF) evpn.L3VRF {
	imp, auto := c.VRFImportRTs(f)
	v := evpn.L3VRF{Name: f.Name, L3VNI: f.L3VNI, RD: c.VRFRD(f), RouterMAC: c.VRFRouterMAC(f),
		ExportRTs: c.VRFExportRTs(f), Import: evpn.ImportRule{VNI: f.L3VNI, Auto: auto, RTs: imp}}
	for _, m := range f.L2VNIs {
		for _, lv := range c.L2VNIs {
			if lv.VNI != m.VNI {
				continue
			}
			rts, auto := c.ImportRTs(lv)
			var gws []netip.Addr
			for _, g := range m.GatewayIPs {
				gws = append(gws, g.Addr())
			}
			v.Members = append(v.Members, evpn.L3Member{L2VNI: m.VNI, RD: c.L2VNIRD(lv), ExportRTs: c.ExportRTs(lv),
				Import: evpn.ImportRule{VNI: m.VNI, Auto: auto, RTs: rts}, GatewayMAC: configs.MemberGatewayMAC(f, m), GatewayIPs: gws})
		}
	}
	return v
}

// addTenant builds VRF f of config src (which holds its member L2VNIs)
// and starts it, as a start does, while the leaf runs: its devices
// (vtep's planner, through EnsureVRF), then its namespace, fib's L3 and
// FDB sides and learner are opened; in one pass of the loop its member
// L2VNIs start (import rules, type-3 announcements, learning), the L3
// model takes the VRF and its type-5 routes are announced; its goroutines
// start; the routes BGP already holds for it are fed; fib learns the
// members' devices last. If building fails, what this call built is
// removed again and the error says so: nothing of f runs. The caller
// holds vniMu.
func (d *Daemon) addTenant(ctx context.Context, l *leaf, src *configs.Config, f configs.VRF) error {
	ctx = context.WithoutCancel(ctx) // once started, the addition completes
	v := d.vtepVRFOf(src, f)
	if err := l.mgr.EnsureVRF(ctx, v); err != nil {
		return fmt.Errorf("not added, nothing of it was kept (fix the file and reload): %w", err)
	}
	t, err := d.openTenant(l.h, src, f)
	if err != nil {
		if rerr := l.mgr.RemoveVRF(ctx, v); rerr != nil {
			return errors.Join(fmt.Errorf("start vrf %s: %w", f.Name, err), fmt.Errorf("its devices were not all removed again: %w", rerr))
		}
		return fmt.Errorf("start vrf %s: %w (its devices were removed again)", f.Name, err)
	}
	if t.learner != nil {
		t.learner.OnForeignVXLAN(l.foreign)
	}
	members := memberL2VNIs(src, f)
	l.fdbK.add(t)
	l.apiK.add(t)
	lv := l3VRF(src, f)
	var l3err error
	err = l.do(ctx, func(now time.Time) []evpn.Effect {
		if l3err = l.l3.AddVRF(lv); l3err != nil {
			return nil // the file was validated: a bug if it happens
		}
		next := withVRF(d.cfg, src, f)
		for _, m := range members {
			l.vnis[m.VNI] = m
			l.extra = append(l.extra, evpn.LocalIMETRoute(next.L2VNIRD(m), m.VNI, next.VTEPIP, next.ExportRTs(m)))
			l.refeeding[m.VNI] = map[evpn.Key]struct{}{}
		}
		l.refeeding[f.L3VNI] = map[evpn.Key]struct{}{}
		for _, m := range f.L2VNIs {
			l.hosts.gw[m.VNI] = configs.MemberGatewayMAC(f, m)
		}
		l.extra = append(l.extra, l.l3.LocalPrefixRoutes(f.L3VNI, t.advertise)...)
		d.cfg = next
		d.live.Store(next)
		l.table.SetImportRules(d.importRules())
		l.learner.SetVNIs(d.vtepVNIs())
		l.tmu.Lock()
		l.tenants = append(l.tenants, t)
		l.tmu.Unlock()
		if l.synced.Load() {
			t.l3rec.MarkSynced()
		}
		return nil
	})
	if err != nil {
		// The loop stopped: evpnd is going down; runLeaf closes the
		// tenants it has, and the devices stay like every VRF's.
		if !slices.Contains(l.tenantList(), t) {
			t.close()
		}
		return err
	}
	if l3err != nil {
		l.fdbK.drop(t)
		l.apiK.drop(t)
		t.close()
		if rerr := l.mgr.RemoveVRF(ctx, v); rerr != nil {
			l3err = errors.Join(l3err, fmt.Errorf("its devices were not all removed again: %w", rerr))
		}
		return fmt.Errorf("start vrf %s: %w", f.Name, l3err)
	}
	l.startTenant(t)
	// Routes BGP already holds for the VRF and its members were rejected
	// before: feed the best ones again.
	var ferr error
	for attempt := 1; attempt <= 3; attempt++ {
		if ferr = l.refeedVRF(ctx, src, f, nil); ferr == nil {
			break
		}
		d.log.Warn("re-read BGP routes for a new vrf", "vrf", f.Name, "attempt", attempt, "err", ferr)
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
	_ = l.do(ctx, func(time.Time) []evpn.Effect {
		delete(l.refeeding, f.L3VNI)
		for _, m := range members {
			delete(l.refeeding, m.VNI)
			if err := l.desired.SetVNI(fib.VNIDevices{VNI: m.VNI, VXLAN: m.VXLANDevice, Bridge: m.Bridge}); err != nil {
				d.log.Error("add l2vni to fib", "vni", m.VNI, "vrf", f.Name, "err", err)
			}
		}
		return nil
	})
	if ferr != nil {
		return fmt.Errorf("vrf %s runs, but the routes BGP already held for it could not be read (%v): "+
			"its remote hosts and prefixes arrive only with their next update; remove and add the VRF again to retry", f.Name, ferr)
	}
	return nil
}

// refeedVRF feeds the MAC table (for f's members, those in l2 if not nil)
// and the L3 model the
// best remote paths BGP holds that f's import rules may take. They are
// read and picked outside the loop; in the loop, a route BGP updated or
// withdrew since f started is skipped (the newer event counted).
func (l *leaf) refeedVRF(ctx context.Context, c *configs.Config, f configs.VRF, l2 map[uint32]bool) error {
	feed := map[uint32]bool{} // members whose routes the MAC table takes
	var rules []evpn.ImportRule
	for _, m := range memberL2VNIs(c, f) {
		if l2 == nil || l2[m.VNI] {
			feed[m.VNI] = true
		}
		rts, auto := c.ImportRTs(m)
		rules = append(rules, evpn.ImportRule{VNI: m.VNI, Auto: auto, RTs: rts})
	}
	imp, auto := c.VRFImportRTs(f)
	l2pick := evpn.NewImporter(rules)
	l3pick := evpn.NewImporter([]evpn.ImportRule{{VNI: f.L3VNI, Auto: auto, RTs: imp}})
	var routes []*evpn.Route
	err := l.srv.Paths(ctx, func(p speaker.Path) error {
		if !p.Best || p.Local || p.Route == nil {
			return nil
		}
		r := p.Route
		if _, ok := l2pick.VNIFor(r); ok {
			routes = append(routes, r)
			return nil
		}
		// As the L3 model maps a route to a VRF: by the L3VNI label.
		probe := &evpn.Route{Key: evpn.Key{Type: evpn.RouteTypeIPPrefix}, Labels: []uint32{r.L3VNI()}, RTs: r.RTs}
		if _, ok := l3pick.VNIFor(probe); ok {
			routes = append(routes, r)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return l.do(ctx, func(now time.Time) []evpn.Effect {
		var eff []evpn.Effect
		for _, r := range routes {
			if _, newer := l.refeeding[f.L3VNI][r.Key]; newer {
				continue // BGP sent a newer update or a withdrawal since
			}
			if v, ok := l.table.ImportVNI(r); ok && feed[v] {
				if _, newer := l.refeeding[v][r.Key]; !newer {
					eff = append(eff, l.table.Update(r, now)...)
				}
			}
			l.l3eff = append(l.l3eff, l.l3.Update(r)...)
		}
		return eff
	})
}

// removeTenant stops VRF t and removes it: in one pass of the loop, the
// L3 model drops the VRF (its suppression neighbours, host and prefix
// routes leave fib's desired state, its local MAC+IP routes are
// withdrawn), its type-5 and its members' routes are withdrawn and its
// members stop (MAC table, learning, fib); its goroutines end; fib's L3
// side makes a last pass that removes what it wrote in the kernel (which
// matters on the default backend, whose main table stays); its devices
// go (vtep.Manager.RemoveVRF: the access ports are released and, on the
// netns backend, moved back to the underlay namespace; a namespace left
// with only its loopback is deleted). An error says what was left behind:
// the VRF stopped all the same. The caller holds vniMu.
func (d *Daemon) removeTenant(ctx context.Context, l *leaf, t *tenant) error {
	ctx = context.WithoutCancel(ctx) // once started, the removal completes
	f := t.cfg
	drop := map[uint32]bool{}
	for _, m := range t.v.Members {
		drop[m.L2.VNI] = true
	}
	cur := d.config()
	members := memberL2VNIs(cur, f)
	err := l.do(ctx, func(now time.Time) []evpn.Effect {
		l.withdrawExtra = append(l.withdrawExtra, l.l3.LocalPrefixRoutes(f.L3VNI, t.advertise)...)
		l.l3eff = append(l.l3eff, l.l3.RemoveVRF(f.L3VNI)...)
		l.publishVNIsRemoved(drop, now)
		eff := l.table.RemoveVNIs(drop)
		for _, m := range members {
			delete(l.vnis, m.VNI)
			l.withdrawExtra = append(l.withdrawExtra, evpn.LocalIMETRoute(cur.L2VNIRD(m), m.VNI, cur.VTEPIP, cur.ExportRTs(m)))
		}
		for k := range l.ports {
			if drop[k.VNI] {
				delete(l.ports, k)
			}
		}
		next := withoutVRF(d.cfg, f)
		d.cfg = next
		d.live.Store(next)
		l.table.SetImportRules(d.importRules())
		l.learner.SetVNIs(d.vtepVNIs())
		return eff
	})
	if err != nil {
		return err
	}
	// The batch above emptied t's L3 desired state; the tenant leaves the
	// loop's list now, its goroutines end.
	if err := l.do(ctx, func(time.Time) []evpn.Effect {
		l.tmu.Lock()
		l.tenants = slices.DeleteFunc(l.tenants, func(x *tenant) bool { return x == t })
		l.tmu.Unlock()
		for vni := range drop {
			delete(l.hosts.gw, vni)
			for k := range l.hosts.hosts {
				if k.VNI == vni {
					delete(l.hosts.hosts, k)
				}
			}
		}
		return nil
	}); err != nil {
		return err
	}
	t.stopAndWait()
	var errs []error
	// A last pass removes what fib wrote for the VRF (all of it is
	// unwanted now, so it may prune).
	t.l3rec.MarkSynced()
	if _, err := t.l3rec.Sync(ctx); err != nil {
		errs = append(errs, fmt.Errorf("remove its routes and neighbours: %w", err))
	}
	if t.statics != nil {
		t.statics.Set(nil)
		if err := t.statics.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("remove its static routes: %w", err))
		}
	}
	for _, m := range members {
		l.desired.RemoveVNI(m.VNI)
	}
	l.fdbK.drop(t)
	l.apiK.drop(t)
	t.close()
	if err := l.mgr.RemoveVRF(ctx, t.v); err != nil {
		errs = append(errs, err)
	}
	for _, m := range members {
		d.trace.RemoveVNI(m.VNI)
		d.metrics.RemoveVNI(m.VNI)
	}
	if len(errs) > 0 {
		return fmt.Errorf("vrf %s stopped, but not everything of it was removed from the kernel: %w", f.Name, errors.Join(errs...))
	}
	return nil
}

// readvertise changes what running VRF f advertises as type-5 routes:
// those no longer wanted are withdrawn, the new ones announced.
func (d *Daemon) readvertise(ctx context.Context, l *leaf, f configs.VRF) error {
	want := configs.VRFAdvertisedPrefixes(f)
	return l.do(context.WithoutCancel(ctx), func(time.Time) []evpn.Effect {
		var t *tenant
		for _, x := range l.tenants {
			if x.cfg.Name == f.Name {
				t = x
			}
		}
		if t == nil {
			return nil
		}
		var gone, added []netip.Prefix
		for _, p := range t.advertise {
			if !slices.Contains(want, p) {
				gone = append(gone, p)
			}
		}
		for _, p := range want {
			if !slices.Contains(t.advertise, p) {
				added = append(added, p)
			}
		}
		l.withdrawExtra = append(l.withdrawExtra, l.l3.LocalPrefixRoutes(f.L3VNI, gone)...)
		l.extra = append(l.extra, l.l3.LocalPrefixRoutes(f.L3VNI, added)...)
		t.advertise = want
		cc := *d.cfg
		cc.VRFs = slices.Clone(d.cfg.VRFs)
		for i := range cc.VRFs {
			if cc.VRFs[i].Name == f.Name {
				cc.VRFs[i].AdvertiseDefaultRoute, cc.VRFs[i].AdvertisePrefixes = f.AdvertiseDefaultRoute, f.AdvertisePrefixes
			}
		}
		d.cfg = &cc
		d.live.Store(&cc)
		return nil
	})
}

// tenantNamed returns the running tenant VRF named name.
func (l *leaf) tenantNamed(name string) *tenant {
	for _, t := range l.tenantList() {
		if t.cfg.Name == name {
			return t
		}
	}
	return nil
}

// updateTenant changes running VRF old to f (of config src, which holds
// its member L2VNIs) in place, for the changes configs.DiffVRFs lists as
// Changed: members added or removed, gateways, RD, RTs, router MAC. The
// kernel keeps forwarding meanwhile: old's goroutines stop (nothing
// repairs or prunes during the change), vtep removes what f lacks
// (ShrinkVRF: removed members' devices, lost gateway addresses) and adds
// what it has new (EnsureVRF); then, in one pass of the loop, the L3
// model takes the new VRF (its local hosts replayed, so their MAC+IP
// routes stay advertised), removed members stop and added ones start, and
// a new tenant replaces old; the routes BGP holds for the VRF are fed
// again; last, the new tenant's goroutines start, and fib's L3 side,
// now complete, removes what is no longer wanted. Kept members keep their
// devices, MACs and neighbours. If vtep fails, old's devices are made as
// they were and old starts again. The caller holds vniMu.
func (d *Daemon) updateTenant(ctx context.Context, l *leaf, old *tenant, src *configs.Config, f configs.VRF) error {
	ctx = context.WithoutCancel(ctx)
	cur := d.config()
	nv := d.vtepVRFOf(src, f)
	// The members that stop (gone, or with new L2VNI settings) and start.
	oldL2 := map[uint32]configs.L2VNI{}
	for _, m := range memberL2VNIs(cur, old.cfg) {
		oldL2[m.VNI] = m
	}
	newL2 := map[uint32]configs.L2VNI{}
	for _, m := range memberL2VNIs(src, f) {
		newL2[m.VNI] = m
	}
	stop, start := map[uint32]bool{}, map[uint32]bool{}
	for vni, o := range oldL2 {
		if n, ok := newL2[vni]; !ok || !configs.SameL2VNI(o, n) {
			stop[vni] = true
		}
	}
	for vni, n := range newL2 {
		if o, ok := oldL2[vni]; !ok || !configs.SameL2VNI(o, n) {
			start[vni] = true
		}
	}

	old.stopAndWait()
	restart := func(why error) error {
		// vtep failed: the old devices back, the old tenant running again.
		errs := []error{why}
		if err := l.mgr.ShrinkVRF(ctx, nv, old.v); err != nil {
			errs = append(errs, fmt.Errorf("and what it had added could not all be removed: %w", err))
		}
		if err := l.mgr.EnsureVRF(ctx, old.v); err != nil {
			errs = append(errs, fmt.Errorf("and its devices could not be made as they were: %w", err))
		}
		l.startTenant(old)
		return errors.Join(errs...)
	}
	if err := l.mgr.ShrinkVRF(ctx, old.v, nv); err != nil {
		return restart(fmt.Errorf("not changed (it runs as before): %w", err))
	}
	if err := l.mgr.EnsureVRF(ctx, nv); err != nil {
		return restart(fmt.Errorf("not changed (it runs as before): %w", err))
	}
	t, err := d.openTenant(l.h, src, f)
	if err != nil {
		return restart(fmt.Errorf("not changed (it runs as before): %w", err))
	}
	if t.learner != nil {
		t.learner.OnForeignVXLAN(l.foreign)
	}
	l.fdbK.drop(old)
	l.apiK.drop(old)
	l.fdbK.add(t)
	l.apiK.add(t)
	lv := l3VRF(src, f)
	err = l.do(ctx, func(now time.Time) []evpn.Effect {
		// BGP: the VRF's type-5 routes that change are withdrawn, the new
		// ones announced (an unchanged one is announced again, as it is).
		oldP := l.l3.LocalPrefixRoutes(old.cfg.L3VNI, old.advertise)
		// The L3 model: the old VRF out, the new in, its local hosts
		// replayed in the same batch (their routes' last word is then an
		// announcement, not a withdrawal).
		l.l3eff = append(l.l3eff, l.l3.RemoveVRF(old.cfg.L3VNI)...)
		if err := l.l3.AddVRF(lv); err != nil {
			d.log.Error("vrf not taken by the l3 model", "vrf", f.Name, "err", err)
		}
		newP := l.l3.LocalPrefixRoutes(f.L3VNI, t.advertise)
		for _, r := range oldP {
			if !slices.ContainsFunc(newP, func(n *evpn.Route) bool { return n.Key == r.Key }) {
				l.withdrawExtra = append(l.withdrawExtra, r)
			}
		}
		l.extra = append(l.extra, newP...)
		// Members stopped.
		l.publishVNIsRemoved(stop, now)
		eff := l.table.RemoveVNIs(stop)
		for vni := range stop {
			o := oldL2[vni]
			delete(l.vnis, vni)
			l.withdrawExtra = append(l.withdrawExtra, evpn.LocalIMETRoute(cur.L2VNIRD(o), vni, cur.VTEPIP, cur.ExportRTs(o)))
			delete(l.hosts.gw, vni)
			for k := range l.hosts.hosts {
				if k.VNI == vni {
					delete(l.hosts.hosts, k)
				}
			}
		}
		for k := range l.ports {
			if stop[k.VNI] {
				delete(l.ports, k)
			}
		}
		// Members started.
		for vni := range start {
			n := newL2[vni]
			l.vnis[vni] = n
			l.extra = append(l.extra, evpn.LocalIMETRoute(src.L2VNIRD(n), vni, src.VTEPIP, src.ExportRTs(n)))
			l.refeeding[vni] = map[evpn.Key]struct{}{}
		}
		l.refeeding[f.L3VNI] = map[evpn.Key]struct{}{}
		for _, m := range f.L2VNIs {
			l.hosts.gw[m.VNI] = configs.MemberGatewayMAC(f, m)
		}
		// Local hosts of the kept members, replayed.
		for k, mac := range l.hosts.hosts {
			if _, ok := newL2[k.VNI]; !ok || start[k.VNI] || mac == l.hosts.gw[k.VNI] {
				continue
			}
			var seq uint32
			var sticky bool
			if mi, ok := l.table.Lookup(k.VNI, mac); ok && mi.Local {
				seq, sticky = mi.Seq, mi.Sticky
			}
			l.l3eff = append(l.l3eff, l.l3.LocalHost(k.VNI, mac, k.IP, seq, sticky)...)
		}
		next := withVRF(withoutVRF(d.cfg, old.cfg), src, f)
		d.cfg = next
		d.live.Store(next)
		l.table.SetImportRules(d.importRules())
		l.learner.SetVNIs(d.vtepVNIs())
		l.tmu.Lock()
		for i, x := range l.tenants {
			if x == old {
				l.tenants[i] = t
			}
		}
		l.tmu.Unlock()
		return eff
	})
	if err != nil {
		t.close()
		return err
	}
	for vni := range stop {
		if !start[vni] {
			l.desired.RemoveVNI(vni)
		}
		d.trace.RemoveVNI(vni)
		d.metrics.RemoveVNI(vni)
	}
	old.close()
	// Remote routes: the model forgot the VRF's with the old VRF.
	var ferr error
	for attempt := 1; attempt <= 3; attempt++ {
		if ferr = l.refeedVRF(ctx, src, f, start); ferr == nil {
			break
		}
		d.log.Warn("re-read BGP routes for a changed vrf", "vrf", f.Name, "attempt", attempt, "err", ferr)
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
	_ = l.do(ctx, func(time.Time) []evpn.Effect {
		delete(l.refeeding, f.L3VNI)
		for vni := range start {
			delete(l.refeeding, vni)
			n := newL2[vni]
			if err := l.desired.SetVNI(fib.VNIDevices{VNI: vni, VXLAN: n.VXLANDevice, Bridge: n.Bridge}); err != nil {
				d.log.Error("add l2vni to fib", "vni", vni, "vrf", f.Name, "err", err)
			}
		}
		return nil
	})
	// Its desired state complete, fib's L3 side may prune again.
	l.startTenant(t)
	if l.synced.Load() {
		t.l3rec.MarkSynced()
	}
	if ferr != nil {
		return fmt.Errorf("vrf %s changed, but the routes BGP already held for it could not be read (%v): "+
			"its remote hosts and prefixes arrive only with their next update; remove and add the VRF again to retry", f.Name, ferr)
	}
	return nil
}
