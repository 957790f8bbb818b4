package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/cmd/evpnd/internal/metrics"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// reloadBatch is how many L2VNIs a reload stops per pass through the
// loop, so that a reload removing thousands of VNIs never holds the loop
// for long. (VNIs are started vtep.DefaultBatch at a time: see addVNIs.)
const reloadBatch = 64

// Reload implements api.Backend: it re-reads the config file and applies
// its difference from the configuration in force.
//
// Refused, changing nothing: a file that does not load or validate, and
// new or changed L2VNIs whose access interfaces this node lacks (as
// AddVNI refuses them). Otherwise the live keys are applied in this order
// (log level, duplicate detection, metrics address, neighbours, L2VNIs
// removed, then added in batches); a change that fails is reported and
// the others still go ahead, except that the added L2VNIs start all or
// none (if one cannot, those this reload started are removed again). Restart-only keys that differ are named and
// keep their running values: an operator who edits the file expects what
// can apply to apply, and to be told what cannot.
func (d *Daemon) Reload(ctx context.Context) (api.ReloadResult, error) {
	d.vniMu.Lock()
	defer d.vniMu.Unlock()
	start := time.Now()
	res := api.ReloadResult{File: d.opts.ConfigPath}
	refuse := func(err error) (api.ReloadResult, error) {
		d.metrics.Reload(metrics.ReloadRefused)
		err = fmt.Errorf("%w: %w", api.ErrConfigRefused, err)
		d.log.Error("config reload refused", "file", res.File, "err", err)
		return res, err
	}
	if d.opts.Load == nil {
		return refuse(errors.New("this evpnd was started without a config file to re-read"))
	}
	next, err := d.opts.Load()
	if err != nil {
		return refuse(err)
	}
	cur := d.config()
	if next.Role != cur.Role {
		// A role change would leave the other keys meaningless: name it
		// and change nothing.
		res.RestartNeeded = configs.RestartNeeded(cur, next)
		d.file.Store(next)
		d.metrics.Reload(metrics.ReloadApplied)
		d.log.Warn("config reload: the role changed; restart evpnd to apply the file", "file", res.File, "restart_needed", res.RestartNeeded)
		return res, nil
	}
	target := cur.WithLive(next)
	// Tenant VRFs: what the file adds, removes, rebuilds or re-advertises;
	// a change only a new VRF can make refuses the file. Their member
	// L2VNIs start and stop with them: the L2VNI plan covers the others.
	var vch configs.VRFChanges
	if configs.VRFsLive(cur, next) {
		var ps []configs.Problem
		if vch, ps = configs.DiffVRFs(cur, target); len(ps) > 0 {
			return refuse(&configs.ValidationError{Source: res.File, Problems: ps})
		}
	}
	plan := planVNIs(standalone(cur), standalone(target))
	var l *leaf
	if cur.Role == configs.RoleLeaf {
		if l = d.leaf.Load(); l == nil {
			d.log.Warn("config reload: evpnd is starting or stopping; reload again once it runs", "file", res.File)
			return res, api.ErrUnavailable
		}
		// The node checks AddVNI makes, for every VNI to start, before
		// anything changes.
		var ps []configs.Problem
		for i, v := range target.L2VNIs {
			if plan.start[v.VNI] {
				ps = append(ps, nodeProblems(fmt.Sprintf("l2vnis[%d]", i), v)...)
			}
		}
		ps = append(ps, vrfNodeProblems(cur, target, vch)...)
		if len(ps) > 0 {
			return refuse(&configs.ValidationError{Source: res.File, Problems: ps})
		}
	} else {
		vch = configs.VRFChanges{}
		target.VRFs = cur.VRFs
	}
	d.log.Info("config reload", "file", res.File)
	// From here on the reload completes even if the client goes away: a
	// half-applied file would leave the configuration in force unknown.
	// (evpnd stopping still ends it: the loop refuses further calls.)
	ctx = context.WithoutCancel(ctx)
	res.RestartNeeded = configs.RestartNeeded(cur, next)
	if !configs.VRFsLive(cur, next) && !reflect.DeepEqual(cur.VRFs, next.VRFs) {
		res.RestartNeeded = append(res.RestartNeeded, "vrfs: changed, but router-id or asn changed too (the VRFs' automatic RD, RTs and router MAC derive from them): they apply with the restart")
	}
	applied := func(format string, args ...any) {
		res.Applied = append(res.Applied, fmt.Sprintf(format, args...))
	}
	failed := func(format string, args ...any) {
		res.Failed = append(res.Failed, fmt.Sprintf(format, args...))
	}

	// Log level.
	if cur.SlogLevel() != target.SlogLevel() {
		if d.opts.LogLevel != nil {
			d.opts.LogLevel.Set(target.SlogLevel())
			applied("log-level: %s -> %s", levelName(cur.SlogLevel()), levelName(target.SlogLevel()))
		} else {
			failed("log-level: this evpnd's logger has a fixed level; restart to change it")
			target.LogLevel = cur.LogLevel
		}
	}
	// Duplicate detection.
	if cur.MACMobility != target.MACMobility {
		m := target.MACMobility
		if l != nil {
			if err := l.do(ctx, func(time.Time) []evpn.Effect {
				l.table.SetDuplicateDetection(m.DuplicateMoves, m.DuplicateWindow, m.Freeze)
				return nil
			}); err != nil {
				return res, err // the loop stopped: evpnd is going down
			}
		}
		o := cur.MACMobility
		var ch []string
		if o.DuplicateMoves != m.DuplicateMoves {
			ch = append(ch, fmt.Sprintf("duplicate-moves %d -> %d", o.DuplicateMoves, m.DuplicateMoves))
		}
		if o.DuplicateWindow != m.DuplicateWindow {
			ch = append(ch, fmt.Sprintf("duplicate-window %s -> %s", o.DuplicateWindow, m.DuplicateWindow))
		}
		if o.Freeze != m.Freeze {
			ch = append(ch, fmt.Sprintf("freeze %v -> %v", o.Freeze, m.Freeze))
		}
		applied("mac-mobility: %s", strings.Join(ch, ", "))
	}
	// Metrics address.
	if cur.Metrics.Listen != target.Metrics.Listen {
		if err := d.endpoint.move(d, target.Metrics.Listen); err != nil {
			failed("metrics.listen %q: %v", target.Metrics.Listen, err)
			target.Metrics = cur.Metrics
		} else {
			applied("metrics.listen: %q -> %q", cur.Metrics.Listen, target.Metrics.Listen)
		}
	}
	// Neighbours.
	target.Neighbors = d.reloadNeighbors(ctx, cur, target, applied, failed)

	// Tenant VRFs removed (and the old side of those rebuilt), before the
	// L2VNIs: a removed VRF's member may stay as a standalone L2VNI.
	var vrfUndo vrfUndo
	if l != nil {
		vrfUndo = d.reloadRemoveVRFs(ctx, l, cur, vch, applied, failed)
	}

	// L2VNIs: stop the removed and changed ones, then (after the new
	// VRFs) start the new and changed ones in batches.
	if l != nil {
		var stop []uint32
		for _, v := range cur.L2VNIs {
			if plan.stop[v.VNI] {
				stop = append(stop, v.VNI)
			}
		}
		for len(stop) > 0 {
			batch := stop[:min(reloadBatch, len(stop))]
			stop = stop[len(batch):]
			errs := d.deleteVNIs(ctx, l, batch)
			for _, vni := range batch {
				if err := errs[vni]; err != nil {
					if errors.Is(err, errStopped) {
						return res, err
					}
					// The VNI stopped; its devices may be left.
					failed("l2vni %d: %v", vni, err)
				}
				if !plan.start[vni] {
					applied("l2vni %d removed", vni)
				}
			}
		}
		// Tenant VRFs changed in place, then added (and the new side of
		// those rebuilt); if one cannot be built, this reload's VRF
		// additions and removals are undone.
		d.reloadChangeVRFs(ctx, l, target, vch, applied, failed)
		d.reloadAddVRFs(ctx, l, cur, target, vch, vrfUndo, applied, failed)
		running := map[uint32]bool{}
		for _, v := range d.config().L2VNIs {
			running[v.VNI] = true
		}
		var todo []configs.L2VNI
		for _, v := range target.L2VNIs {
			if plan.start[v.VNI] && !running[v.VNI] {
				todo = append(todo, v)
			}
		}
		if len(todo) > 0 {
			// Devices are created off the loop, vtep.DefaultBatch VNIs
			// at a time, each batch handed to the loop in one pass; if
			// a batch fails, the VNIs this reload started are stopped
			// again and their devices removed.
			inTodo := make(map[uint32]bool, len(todo))
			for _, v := range todo {
				inTodo[v.VNI] = true
			}
			err := d.addVNIs(ctx, l, inForceWith(target, d.config(), todo), todo)
			var re *refeedError
			partial := errors.As(err, &re)
			if err != nil && !partial && errors.Is(err, errStopped) {
				return res, err
			}
			for i, v := range todo {
				why := err
				if i > 0 && err != nil && !partial {
					// The reason once, with the first.
					why = fmt.Errorf("not started: the l2vnis this reload adds start all or none (see l2vni %d)", todo[0].VNI)
				}
				switch {
				case err == nil || partial:
					running[v.VNI] = true
					word := "added"
					if plan.stop[v.VNI] {
						word = "changed (removed and added)"
					}
					applied("l2vni %d %s", v.VNI, word)
				case plan.stop[v.VNI]:
					failed("l2vni %d: removed to change it, but its new settings could not start: %v", v.VNI, why)
				default:
					failed("l2vni %d: %v", v.VNI, why)
				}
			}
			if partial {
				failed("%v", err)
			}
		}
		for _, f := range vch.Readvertised {
			if l.tenantNamed(f.Name) == nil {
				continue // it failed to start
			}
			if err := d.readvertise(ctx, l, f); err != nil {
				return res, err
			}
			applied("vrf %s: advertised prefixes now %v", f.Name, configs.VRFAdvertisedPrefixes(f))
		}
		target = finalConfig(target, d.config())
	}

	// The configuration in force is now the target, less what failed.
	if l != nil {
		if err := l.do(ctx, func(time.Time) []evpn.Effect {
			d.cfg = target
			d.live.Store(target)
			return nil
		}); err != nil {
			return res, err
		}
	} else {
		d.cfg = target
		d.live.Store(target)
	}
	d.file.Store(next)
	result := metrics.ReloadApplied
	if len(res.Failed) > 0 {
		result = metrics.ReloadPartial
	}
	d.metrics.Reload(result)
	args := []any{"file", res.File, "result", result, "took", time.Since(start).Round(time.Millisecond),
		"applied", len(res.Applied)}
	if len(res.RestartNeeded) > 0 {
		args = append(args, "restart_needed", strings.Join(res.RestartNeeded, "; "))
	}
	if len(res.Failed) > 0 {
		args = append(args, "failed", strings.Join(res.Failed, "; "))
		d.log.Warn("config reloaded, with failures", args...)
	} else {
		d.log.Info("config reloaded", args...)
	}
	for _, a := range res.Applied {
		d.log.Debug("config reload applied", "change", a)
	}
	return res, nil
}

// vniPlan says which L2VNIs a reload stops and which it starts; a changed
// VNI is in both.
type vniPlan struct{ stop, start map[uint32]bool }

func planVNIs(cur, target *configs.Config) vniPlan {
	p := vniPlan{stop: map[uint32]bool{}, start: map[uint32]bool{}}
	old := map[uint32]configs.L2VNI{}
	for _, v := range cur.L2VNIs {
		old[v.VNI] = v
	}
	for _, v := range target.L2VNIs {
		o, ok := old[v.VNI]
		switch {
		case !ok:
			p.start[v.VNI] = true
		case !configs.SameL2VNI(o, v):
			p.stop[v.VNI], p.start[v.VNI] = true, true
		}
		delete(old, v.VNI)
	}
	for vni := range old {
		p.stop[vni] = true
	}
	return p
}

// reloadNeighbors removes the static neighbours target lacks or changes,
// then adds the new and changed ones, and returns the neighbours now
// configured, in target's order (a failed removal stays; a failed add is
// left out).
func (d *Daemon) reloadNeighbors(ctx context.Context, cur, target *configs.Config,
	applied, failed func(string, ...any)) []configs.Neighbor {
	old := map[string]configs.Neighbor{}
	for _, n := range cur.Neighbors {
		old[n.Address.String()] = n
	}
	srv := d.srv.Load()
	var out []configs.Neighbor
	var del, add []configs.Neighbor
	for _, n := range target.Neighbors {
		o, ok := old[n.Address.String()]
		switch {
		case !ok:
			add = append(add, n)
		case !configs.SameNeighbor(o, n):
			del = append(del, o)
			add = append(add, n)
		default:
			out = append(out, n)
		}
		delete(old, n.Address.String())
	}
	for _, n := range cur.Neighbors {
		if _, gone := old[n.Address.String()]; gone {
			del = append(del, n)
		}
	}
	if len(del)+len(add) > 0 && srv == nil {
		failed("neighbors: BGP is not running yet; restart or reload again")
		return cur.Neighbors
	}
	changed := map[string]bool{}
	for _, n := range add {
		changed[n.Address.String()] = true
	}
	for _, n := range del {
		if err := srv.DeleteNeighbor(ctx, n.Address); err != nil {
			failed("neighbor %s: remove: %v", n.Address, err)
			out = append(out, n)
			delete(changed, n.Address.String())
			continue
		}
		if !changed[n.Address.String()] {
			applied("neighbor %s removed", n.Address)
		}
	}
	for _, n := range add {
		if !changed[n.Address.String()] {
			continue // its old settings could not be removed
		}
		if err := srv.AddNeighbor(ctx, d.speakerNeighbor(target, n)); err != nil {
			failed("neighbor %s: add: %v", n.Address, err)
			continue
		}
		out = append(out, n)
		word := "added"
		if _, was := findNeighbor(cur.Neighbors, n); was {
			word = "changed (session reset)"
		}
		applied("neighbor %s AS %d %s", n.Address, n.ASN, word)
	}
	slices.SortStableFunc(out, func(a, b configs.Neighbor) int {
		return indexOfNeighbor(target.Neighbors, a) - indexOfNeighbor(target.Neighbors, b)
	})
	return out
}

func findNeighbor(ns []configs.Neighbor, n configs.Neighbor) (configs.Neighbor, bool) {
	i := indexOfNeighbor(ns, n)
	if i == len(ns) {
		return configs.Neighbor{}, false
	}
	return ns[i], true
}

// indexOfNeighbor is n's index in ns by address; len(ns) if absent.
func indexOfNeighbor(ns []configs.Neighbor, n configs.Neighbor) int {
	for i, x := range ns {
		if x.Address == n.Address {
			return i
		}
	}
	return len(ns)
}

func levelName(l slog.Level) string { return strings.ToLower(l.String()) }

// speakerNeighbor is the speaker's view of a configured neighbour.
func (d *Daemon) speakerNeighbor(c *configs.Config, n configs.Neighbor) speaker.Neighbor {
	// With exactly one listen address, sessions are also sourced from it:
	// peers (and dynamic-neighbour ranges) know us by that address.
	var local netip.Addr
	if len(c.BGP.ListenAddresses) == 1 {
		local = c.BGP.ListenAddresses[0]
	}
	return speaker.Neighbor{
		Address: n.Address, ASN: n.ASN, Port: uint16(n.Port), LocalAddress: local,
		EBGPMultihop: uint8(n.EBGPMultihop),
		RRClient:     c.Role == configs.RoleRouteReflector && n.IsRouteReflectorClient(),
		Description:  n.Description,
		Families:     families(n),
	}
}
