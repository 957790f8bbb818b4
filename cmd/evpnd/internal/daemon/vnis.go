package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/evpnd/evpnd/vtep"
)

// AddVNI implements api.Backend. Order, so that a refusal changes nothing:
// validate (as the config file would be), check the access interfaces
// exist, create the devices (vtep rolls back what it created if that
// fails), then start the VNI in the loop: import rules, fib devices, type-3
// announce, learner; last, routes already in BGP's table for it are fed.
func (d *Daemon) AddVNI(ctx context.Context, v configs.L2VNI) (api.VNI, error) {
	d.vniMu.Lock()
	defer d.vniMu.Unlock()
	l, err := d.leafOrErr()
	if err != nil {
		return api.VNI{}, err
	}
	cur := d.config()
	at := fmt.Sprintf("l2vnis[%d]", len(cur.L2VNIs))
	if d.hasVNI(v.VNI) {
		return api.VNI{}, &configs.ValidationError{Problems: []configs.Problem{{Path: at + ".vni", Value: fmt.Sprint(v.VNI),
			Reason: fmt.Sprintf("already configured: to change it, remove it first (evpnctl vni del %d)", v.VNI)}}}
	}
	next, err := cur.WithL2VNI(v)
	if err != nil {
		return api.VNI{}, err
	}
	nv := next.L2VNIs[len(next.L2VNIs)-1]
	if ps := nodeProblems(at, nv); len(ps) > 0 {
		return api.VNI{}, &configs.ValidationError{Problems: ps}
	}
	if err := d.addVNIs(ctx, l, next, []configs.L2VNI{nv}); err != nil {
		return api.VNI{}, err
	}
	d.log.Info("l2vni added at run time (add it to the config file to keep it after a restart)",
		"vni", nv.VNI, "vxlan", nv.VXLANDevice, "bridge", nv.Bridge, "access", nv.AccessInterfaces)
	ctx = context.WithoutCancel(ctx)
	var row api.VNI
	err = l.read(ctx, func() {
		if rows := l.vniRows(nv.VNI); len(rows) == 1 {
			row = rows[0]
		}
	})
	row.DevicesPresent = presence{}.has(vniNamespace(d.config(), row.VNI), row.VXLAN, row.Bridge)
	return row, err
}

// addVNIs starts the L2VNIs vs: next is the configuration in force once
// they run (it holds them and every running VNI). Their devices are
// created (or adopted) off the loop, vtep.DefaultBatch VNIs at a time
// (Manager.EnsureInBatches), and each batch whose devices are up is
// handed to the loop in one pass (handOver) before the next is created,
// so that adding thousands of VNIs never holds the loop, nor the kernel's
// link lock, for long. Order within a batch, so that a failure changes
// nothing: create the devices, vtep rolling back what it created if that
// fails; then, in the loop, import rules, type-3 announcements and
// learning; then the routes BGP already holds for them are fed; fib
// learns the devices last.
//
// If a batch cannot be set up, the VNIs of vs started by the batches
// before it are stopped again and the devices created for them removed:
// either all of vs start or none does. If the loop stops meanwhile (evpnd
// is shutting down) the devices stay like every other VNI's. Once a
// batch's devices exist its hand-over completes even if ctx ends: a
// half-added VNI would black-hole its traffic. A *refeedError means vs
// all run, but the routes BGP already held for some were not read. The
// caller holds vniMu.
func (d *Daemon) addVNIs(ctx context.Context, l *leaf, next *configs.Config, vs []configs.L2VNI) error {
	vv := make([]vtep.L2VNI, len(vs))
	byVNI := make(map[uint32]configs.L2VNI, len(vs))
	pending := make(map[uint32]bool, len(vs)) // not handed over yet
	for i, v := range vs {
		vv[i] = d.vtepVNI(next, v)
		byVNI[v.VNI] = v
		pending[v.VNI] = true
	}
	var started []uint32
	var refeedFailed *refeedError
	var stopped error
	err := l.mgr.EnsureInBatches(ctx, vv, 0, func(part []vtep.L2VNI) error {
		batch := make([]configs.L2VNI, len(part))
		for i, p := range part {
			batch[i] = byVNI[p.VNI]
			delete(pending, p.VNI)
		}
		cfg := next.OnlyL2VNIs(func(v configs.L2VNI) bool { return !pending[v.VNI] })
		err := d.handOver(ctx, l, cfg, batch)
		var re *refeedError
		switch {
		case errors.As(err, &re):
			if refeedFailed == nil {
				refeedFailed = &refeedError{err: re.err}
			}
			refeedFailed.vnis = append(refeedFailed.vnis, re.vnis...)
		case err != nil:
			stopped = err
			return err
		}
		for _, v := range batch {
			started = append(started, v.VNI)
		}
		return nil
	})
	if stopped != nil {
		// The loop stopped: evpnd is shutting down; the devices stay
		// like every other VNI's.
		return stopped
	}
	if err != nil {
		if len(started) > 0 {
			// Undo the batches already handed over.
			for vni, err := range d.deleteVNIs(context.WithoutCancel(ctx), l, started) {
				d.log.Error("undo the start of an l2vni after a later batch failed", "vni", vni, "err", err)
			}
		}
		if len(vs) == 1 {
			return fmt.Errorf("create the devices of l2vni %d: %w", vs[0].VNI, err)
		}
		return fmt.Errorf("create the devices of %d l2vnis (none was kept): %w", len(vs), err)
	}
	if refeedFailed != nil {
		return refeedFailed
	}
	return nil
}

// refeedError says the VNIs vnis were added, but the routes BGP already
// held for them could not be read.
type refeedError struct {
	vnis []uint32
	err  error
}

func (e *refeedError) Error() string {
	return fmt.Sprintf("l2vnis %v added, but the routes BGP already held for them could not be read (%v): "+
		"remote MACs and VTEPs arrive only with their next update; delete and add the VNI again to retry", slices.Sorted(slices.Values(e.vnis)), e.err)
}

func (e *refeedError) Unwrap() error { return e.err }

// handOver starts the L2VNIs vs, whose devices are up, in one pass
// through the loop; next is the configuration in force once they run.
// It returns the loop's error if the loop stopped, and a *refeedError if
// they run but the routes BGP already holds for them could not be read.
func (d *Daemon) handOver(ctx context.Context, l *leaf, next *configs.Config, vs []configs.L2VNI) error {
	which := make(map[uint32]bool, len(vs))
	for _, v := range vs {
		which[v.VNI] = true
	}
	ctx = context.WithoutCancel(ctx)
	err := l.do(ctx, func(now time.Time) []evpn.Effect {
		for _, v := range vs {
			l.vnis[v.VNI] = v
			l.extra = append(l.extra, evpn.LocalIMETRoute(next.L2VNIRD(v), v.VNI, next.VTEPIP, next.ExportRTs(v)))
			// BGP events from now on import into the VNI; the re-feed
			// below must not replay an older copy of a route they touched.
			l.refeeding[v.VNI] = map[evpn.Key]struct{}{}
		}
		d.cfg = next
		d.live.Store(next)
		l.table.SetImportRules(d.importRules())
		l.learner.SetVNIs(d.vtepVNIs())
		return nil
	})
	if err != nil {
		return err
	}
	// Routes for these VNIs that BGP already holds were rejected before:
	// feed the best ones again.
	var ferr error
	for attempt := 1; attempt <= 3; attempt++ {
		if ferr = l.refeed(ctx, next, which); ferr == nil {
			break
		}
		d.log.Warn("re-read BGP routes for new l2vnis", "vnis", len(vs), "attempt", attempt, "err", ferr)
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
	// fib learns the devices last, with the VNIs' remote state complete:
	// on devices it adopts, it then never removes an entry the re-feed
	// is about to want.
	_ = l.do(ctx, func(time.Time) []evpn.Effect {
		for _, v := range vs {
			delete(l.refeeding, v.VNI)
			if err := l.desired.SetVNI(fib.VNIDevices{VNI: v.VNI, VXLAN: v.VXLANDevice, Bridge: v.Bridge}); err != nil {
				d.log.Error("add l2vni to fib", "vni", v.VNI, "err", err)
			}
		}
		return nil
	})
	if ferr != nil {
		return &refeedError{vnis: slices.Sorted(maps.Keys(which)), err: ferr}
	}
	return nil
}

// refeed feeds the table the best remote paths BGP holds for the VNIs in
// which. BGP's table is read, and the paths that may import into those
// VNIs picked (with an importer of their rules alone, from c), outside the
// loop; the loop only takes the picked ones, so a re-feed costs it
// O(routes of these VNIs), not O(BGP's table).
func (l *leaf) refeed(ctx context.Context, c *configs.Config, which map[uint32]bool) error {
	var rules []evpn.ImportRule
	for _, v := range c.L2VNIs {
		if which[v.VNI] {
			rts, auto := c.ImportRTs(v)
			rules = append(rules, evpn.ImportRule{VNI: v.VNI, Auto: auto, RTs: rts})
		}
	}
	pick := evpn.NewImporter(rules)
	var routes []*evpn.Route
	err := l.srv.Paths(ctx, func(p speaker.Path) error {
		if p.Best && !p.Local && p.Route != nil {
			if _, ok := pick.VNIFor(p.Route); ok {
				routes = append(routes, p.Route)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return l.do(ctx, func(now time.Time) []evpn.Effect {
		var eff []evpn.Effect
		for _, r := range routes {
			v, ok := l.table.ImportVNI(r)
			if !ok || !which[v] {
				continue
			}
			if _, newer := l.refeeding[v][r.Key]; newer {
				continue // BGP sent a newer update or a withdrawal since
			}
			eff = append(eff, l.table.Update(r, now)...)
		}
		return eff
	})
}

// DeleteVNI implements api.Backend.
func (d *Daemon) DeleteVNI(ctx context.Context, vni uint32) error {
	d.vniMu.Lock()
	defer d.vniMu.Unlock()
	l, err := d.leafOrErr()
	if err != nil {
		return err
	}
	if f, routed := vrfOf(d.config(), vni); routed {
		return fmt.Errorf("l2vni %d is routed in vrf %s: a VRF member starts and stops with its VRF: remove it from the VRF in the config file and reload (evpnctl reload)", vni, f.Name)
	}
	if err := d.deleteVNI(ctx, l, vni); err != nil {
		return err
	}
	d.log.Info("l2vni removed at run time (remove it from the config file too)", "vni", vni)
	return nil
}

// deleteVNI withdraws the VNI's routes, removes its remote entries and
// stops learning on it, then deletes the devices evpnd created (deleting
// the VXLAN device also drops its FDB entries). ErrNotFound if it does
// not run. The caller holds vniMu.
func (d *Daemon) deleteVNI(ctx context.Context, l *leaf, vni uint32) error {
	if !d.hasVNI(vni) {
		return fmt.Errorf("l2vni %d is not configured: %w", vni, api.ErrNotFound)
	}
	return d.deleteVNIs(ctx, l, []uint32{vni})[vni]
}

// deleteVNIs stops the running VNIs of vnis as deleteVNI does, in one
// pass through the loop, and returns the error of each VNI whose devices
// could not all be removed (it stopped all the same). The caller holds
// vniMu.
func (d *Daemon) deleteVNIs(ctx context.Context, l *leaf, vnis []uint32) map[uint32]error {
	cur := d.config()
	drop := map[uint32]bool{}
	for _, v := range vnis {
		drop[v] = true
	}
	var olds []configs.L2VNI
	for _, v := range cur.L2VNIs {
		if drop[v.VNI] {
			olds = append(olds, v)
		}
	}
	if len(olds) == 0 {
		return nil
	}
	next := cur.OnlyL2VNIs(func(v configs.L2VNI) bool { return !drop[v.VNI] })
	ctx = context.WithoutCancel(ctx) // once started, the removal completes
	err := l.do(ctx, func(now time.Time) []evpn.Effect {
		// One pass over the table for the whole batch.
		l.publishVNIsRemoved(drop, now)
		eff := l.table.RemoveVNIs(drop)
		for _, old := range olds {
			vni := old.VNI
			delete(l.vnis, vni)
			l.withdrawExtra = append(l.withdrawExtra, evpn.LocalIMETRoute(cur.L2VNIRD(old), vni, cur.VTEPIP, cur.ExportRTs(old)))
		}
		for k := range l.ports {
			if drop[k.VNI] {
				delete(l.ports, k)
			}
		}
		d.cfg = next
		d.live.Store(next)
		l.table.SetImportRules(d.importRules())
		l.learner.SetVNIs(d.vtepVNIs())
		return eff
	})
	if err != nil {
		out := map[uint32]error{}
		for _, old := range olds {
			out[old.VNI] = err
		}
		return out
	}
	// The fib deletions of the VNIs' entries were queued by the batch;
	// dropping the VNIs from fib now makes the reconciler forget them
	// (the devices and their entries go away with them).
	vv := make([]vtep.L2VNI, len(olds))
	for i, old := range olds {
		l.desired.RemoveVNI(old.VNI)
		vv[i] = d.vtepVNI(cur, old)
	}
	var out map[uint32]error
	for i, err := range l.mgr.RemoveAll(ctx, vv) {
		old := olds[i]
		if err != nil {
			if out == nil {
				out = map[uint32]error{}
			}
			out[old.VNI] = fmt.Errorf("l2vni %d stopped, but its devices were not all removed (delete %s and %s by hand if evpnd created them): %w",
				old.VNI, old.VXLANDevice, old.Bridge, err)
		}
		// The VNI's history and counters go last: the batch above still
		// recorded its withdrawals.
		d.trace.RemoveVNI(old.VNI)
		d.metrics.RemoveVNI(old.VNI)
	}
	return out
}

func (d *Daemon) vtepVNI(c *configs.Config, v configs.L2VNI) vtep.L2VNI {
	_, routed := vrfOf(c, v.VNI)
	return vtep.L2VNI{
		VNI: v.VNI, VXLAN: v.VXLANDevice, Bridge: v.Bridge, AccessPorts: v.AccessInterfaces,
		Local: c.VTEPIP, UDPPort: v.UDPPort, MTU: v.MTU, DefaultVXLANMTU: d.vxlanMTU,
		// Without an SVI no neighbour entry answers ARP/ND: suppression
		// would only keep gratuitous ARPs from crossing the fabric.
		NoNeighSuppress: !routed,
	}
}

// nodeProblems checks a new L2VNI against this node's links (the
// underlay namespace's, through vtep.Node) before anything is touched:
// its access interfaces must exist and carry no address (an interface
// with one routes, maybe the underlay: bridging it into a VNI would leak
// the underlay into the overlay), and its device names must not belong to
// links of another kind.
func nodeProblems(at string, v configs.L2VNI) []configs.Problem {
	n, err := vtep.OpenNode("")
	if err != nil {
		return []configs.Problem{{Path: at, Value: u32s(v.VNI), Reason: "cannot read this node's links: " + err.Error()}}
	}
	defer n.Close()
	return nodeProblemsIn(n, at, v)
}

// nodeProblemsIn is nodeProblems reading through n.
func nodeProblemsIn(n *vtep.Node, at string, v configs.L2VNI) []configs.Problem {
	var ps []configs.Problem
	for i, p := range v.AccessInterfaces {
		path := fmt.Sprintf("%s.access-interfaces[%d]", at, i)
		addrs, err := n.Addrs(p)
		if err != nil {
			ps = append(ps, configs.Problem{Path: path, Value: p, Reason: "no such interface on this node: create it first, or leave it out"})
			continue
		}
		if a := routedAddr(addrs); a != "" {
			ps = append(ps, configs.Problem{Path: path, Value: p,
				Reason: "has address " + a + ", so it routes (the underlay?): an access port carries no address; pick the host-facing port"})
		}
	}
	for _, c := range []struct{ key, name, kind string }{{"vxlan-device", v.VXLANDevice, "vxlan"}, {"bridge", v.Bridge, "bridge"}} {
		if l, err := n.Link(c.name); err == nil && l.Kind != c.kind {
			ps = append(ps, configs.Problem{Path: at + "." + c.key, Value: c.name,
				Reason: fmt.Sprintf("the name is taken by a %s device on this node: choose another %s name", l.Kind, c.key)})
		}
	}
	return ps
}

func u32s(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// routedAddr returns one of addrs other than IPv6 link-local, or "".
func routedAddr(addrs []netip.Prefix) string {
	for _, a := range addrs {
		if !a.Addr().IsLinkLocalUnicast() {
			return a.String()
		}
	}
	return ""
}
