package daemon

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/evpnd/evpnd/configs"
)

// The tenant VRF part of a reload (see Reload and configs.DiffVRFs).

// standalone returns a copy of c keeping the L2VNIs routed in no VRF:
// those the reload's L2VNI plan starts and stops (members start and stop
// with their VRF).
func standalone(c *configs.Config) *configs.Config {
	return c.OnlyL2VNIs(func(v configs.L2VNI) bool { _, routed := vrfOf(c, v.VNI); return !routed })
}

// vrfNodeProblems checks the VRFs a reload builds against this node
// before anything changes, as nodeProblems checks an L2VNI: their
// members' access interfaces must exist and carry no address (an
// interface with one routes, maybe the underlay), and their device names
// must not be taken by links of another kind. Access interfaces that a
// running VRF holds (moved into its namespace) are not looked for.
func vrfNodeProblems(cur, target *configs.Config, ch configs.VRFChanges) []configs.Problem {
	held := map[string]bool{}
	for _, f := range cur.VRFs {
		if f.Backend != configs.BackendNetns {
			continue
		}
		for _, v := range memberL2VNIs(cur, f) {
			for _, p := range v.AccessInterfaces {
				held[p] = true
			}
		}
	}
	build := map[string]bool{}
	for _, f := range slices.Concat(ch.Added, ch.Rebuilt, ch.Changed) {
		build[f.Name] = true
	}
	var ps []configs.Problem
	for i, f := range target.VRFs {
		if !build[f.Name] {
			continue
		}
		at := fmt.Sprintf("vrfs[%d]", i)
		ps = append(ps, nodeProblems(at, configs.L2VNI{VXLANDevice: f.VXLANDevice, Bridge: f.Bridge})...)
		for j, v := range target.L2VNIs {
			if g, ok := vrfOf(target, v.VNI); !ok || g.Name != f.Name {
				continue
			}
			at := fmt.Sprintf("l2vnis[%d]", j)
			ps = append(ps, nodeProblems(at, configs.L2VNI{VXLANDevice: v.VXLANDevice, Bridge: v.Bridge})...)
			for k, p := range v.AccessInterfaces {
				if held[p] {
					continue
				}
				for _, pr := range nodeProblems(at, configs.L2VNI{AccessInterfaces: []string{p}}) {
					pr.Path = strings.Replace(pr.Path, ".access-interfaces[0]", fmt.Sprintf(".access-interfaces[%d]", k), 1)
					ps = append(ps, pr)
				}
			}
		}
	}
	return ps
}

// vrfUndo is what the removal step of a reload did, for the addition step
// to undo should it fail: the VRFs removed, as they ran.
type vrfUndo struct {
	removed []configs.VRF
	from    *configs.Config // the config they ran in
}

// reloadRemoveVRFs removes the VRFs ch removes and the running side of
// those it rebuilds, one at a time.
func (d *Daemon) reloadRemoveVRFs(ctx context.Context, l *leaf, cur *configs.Config, ch configs.VRFChanges,
	applied, failed func(string, ...any)) vrfUndo {
	u := vrfUndo{from: cur}
	rebuilt := map[string]bool{}
	for _, f := range ch.Rebuilt {
		rebuilt[f.Name] = true
	}
	for _, f := range cur.VRFs {
		if !rebuilt[f.Name] && !slices.ContainsFunc(ch.Removed, func(x configs.VRF) bool { return x.Name == f.Name }) {
			continue
		}
		t := l.tenantNamed(f.Name)
		if t == nil {
			continue
		}
		err := d.removeTenant(ctx, l, t)
		u.removed = append(u.removed, f)
		switch {
		case err != nil:
			failed("vrf %s: %v", f.Name, err)
		case !rebuilt[f.Name]:
			applied("vrf %s removed", f.Name)
		}
	}
	return u
}

// reloadChangeVRFs changes the VRFs ch changes in place (updateTenant),
// in the file's order. One that cannot change runs as before; the others
// go ahead.
func (d *Daemon) reloadChangeVRFs(ctx context.Context, l *leaf, target *configs.Config, ch configs.VRFChanges,
	applied, failed func(string, ...any)) {
	for _, f := range ch.Changed {
		t := l.tenantNamed(f.Name)
		if t == nil {
			failed("vrf %s: not running, so not changed; reload again", f.Name)
			continue
		}
		if err := d.updateTenant(ctx, l, t, target, f); err != nil {
			failed("vrf %s: %v", f.Name, err)
			continue
		}
		applied("vrf %s changed in place", f.Name)
	}
}

// reloadAddVRFs builds the VRFs ch adds and the new side of those it
// rebuilds, in the file's order. If one cannot be built (vtep rolled its
// devices back), the VRFs this reload built are removed again and those
// it removed are built again as they ran: the tenant VRFs stay as they
// were, and the failure names the VRF and the cause.
func (d *Daemon) reloadAddVRFs(ctx context.Context, l *leaf, cur, target *configs.Config, ch configs.VRFChanges, u vrfUndo,
	applied, failed func(string, ...any)) {
	build := map[string]bool{}
	for _, f := range append(slices.Clone(ch.Added), ch.Rebuilt...) {
		build[f.Name] = true
	}
	rebuilt := map[string]bool{}
	for _, f := range ch.Rebuilt {
		rebuilt[f.Name] = true
	}
	var done []string
	var msgs []string
	for _, f := range target.VRFs {
		if !build[f.Name] {
			continue
		}
		if err := d.addTenant(ctx, l, target, f); err != nil {
			failed("vrf %s: %v", f.Name, err)
			d.undoVRFs(ctx, l, done, u, failed)
			return
		}
		done = append(done, f.Name)
		if rebuilt[f.Name] {
			msgs = append(msgs, fmt.Sprintf("vrf %s changed (rebuilt: removed and added again)", f.Name))
		} else {
			msgs = append(msgs, fmt.Sprintf("vrf %s added", f.Name))
		}
	}
	for _, m := range msgs {
		applied("%s", m)
	}
}

// undoVRFs removes the VRFs named in built and builds those u removed
// again, as they ran.
func (d *Daemon) undoVRFs(ctx context.Context, l *leaf, built []string, u vrfUndo, failed func(string, ...any)) {
	for i := len(built) - 1; i >= 0; i-- {
		if t := l.tenantNamed(built[i]); t != nil {
			if err := d.removeTenant(ctx, l, t); err != nil {
				failed("vrf %s: undo its addition: %v", built[i], err)
			}
		}
	}
	for _, f := range u.removed {
		if err := d.addTenant(ctx, l, u.from, f); err != nil {
			failed("vrf %s: could not be restored as it ran: %v; fix the file and reload, or restart evpnd", f.Name, err)
			continue
		}
	}
	if len(built)+len(u.removed) > 0 {
		failed("vrfs: the VRF changes of this reload were undone; the VRFs run as before")
	}
}

// inForceWith is the configuration in force (run: its VRFs and L2VNIs)
// with target's other keys, plus the L2VNIs adds, in target's order: what
// addVNIs starts them into.
func inForceWith(target, run *configs.Config, adds []configs.L2VNI) *configs.Config {
	have := map[uint32]bool{}
	for _, v := range run.L2VNIs {
		have[v.VNI] = true
	}
	for _, v := range adds {
		have[v.VNI] = true
	}
	c := target.OnlyL2VNIs(func(v configs.L2VNI) bool { return have[v.VNI] })
	for _, v := range run.L2VNIs {
		if !slices.ContainsFunc(c.L2VNIs, func(x configs.L2VNI) bool { return x.VNI == v.VNI }) {
			c.L2VNIs = append(c.L2VNIs, v)
		}
	}
	c.VRFs = slices.Clone(run.VRFs)
	return c
}

// finalConfig is the configuration in force after a reload: target's
// keys, with the L2VNIs and VRFs that run (run holds them), in target's
// order where target has them (a VRF restored after a failed reload runs
// as it was, not as target has it).
func finalConfig(target, run *configs.Config) *configs.Config {
	runL2 := map[uint32]configs.L2VNI{}
	for _, v := range run.L2VNIs {
		runL2[v.VNI] = v
	}
	c := target.OnlyL2VNIs(func(v configs.L2VNI) bool { r, ok := runL2[v.VNI]; return ok && configs.SameL2VNI(r, v) })
	for _, v := range run.L2VNIs {
		if !slices.ContainsFunc(c.L2VNIs, func(x configs.L2VNI) bool { return x.VNI == v.VNI }) {
			c.L2VNIs = append(c.L2VNIs, v)
		}
	}
	c.VRFs = nil
	for _, f := range target.VRFs {
		if i := slices.IndexFunc(run.VRFs, func(x configs.VRF) bool { return x.Name == f.Name }); i >= 0 {
			c.VRFs = append(c.VRFs, run.VRFs[i])
		}
	}
	for _, f := range run.VRFs {
		if !slices.ContainsFunc(c.VRFs, func(x configs.VRF) bool { return x.Name == f.Name }) {
			c.VRFs = append(c.VRFs, f)
		}
	}
	return c
}
