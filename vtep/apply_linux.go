package vtep

import (
	"context"
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// undo reverts one applied step.
type undo struct {
	what string
	fn   func() error
}

// applier applies a plan's actions in order, keeping the undo steps of
// everything it changed.
type applier struct {
	m     *Manager
	index map[string]int // device name -> ifindex, observed or created
	undos []undo
}

// apply runs plan. On the first failure (or cancellation) it undoes, in
// reverse order, what it did, so no half-built state is left behind:
// devices it created are deleted, ports it enslaved are released, flags,
// MTUs and up states it changed on pre-existing devices are restored.
func (m *Manager) apply(ctx context.Context, plan Plan, obs Observed) error {
	a := &applier{m: m, index: make(map[string]int, len(obs.Links))}
	for _, l := range obs.Links {
		a.index[l.Name] = l.Index
	}
	fail := func(act Action, err error) error {
		err = fmt.Errorf("l2vni %d: %s: %w", act.VNI, act, err)
		if rbErr := a.rollback(); rbErr != nil {
			return errors.Join(err, fmt.Errorf("rollback incomplete, devices may be half-built: %w", rbErr))
		}
		return fmt.Errorf("%w (undid the %d changes this call had made)", err, len(a.undos))
	}
	// The devices the plan creates are created, configured and brought
	// up in batches (createBatched); the rest goes one action at a
	// time, then the new bridges come up, batched too.
	done, bridgesUp, act, err := a.createBatched(ctx, plan.Actions)
	if err != nil {
		return fail(act, err)
	}
	for i, act := range plan.Actions {
		if done[i] {
			continue
		}
		err := ctx.Err()
		if err == nil {
			err = a.do(act)
		}
		if err != nil {
			return fail(act, err)
		}
		m.log.Debug("applied", "vni", act.VNI, "dev", act.Dev, "action", act.String())
	}
	if act, err := a.bridgesUp(ctx, plan.Actions, bridgesUp); err != nil {
		return fail(act, err)
	}
	return nil
}

func (a *applier) rollback() error {
	var errs []error
	for i := len(a.undos) - 1; i >= 0; i-- {
		u := a.undos[i]
		if err := u.fn(); err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("rollback: %s: %w", u.what, err))
			continue
		}
		a.m.log.Info("rolled back", "step", u.what)
	}
	return errors.Join(errs...)
}

func (a *applier) push(what string, fn func() error) {
	a.undos = append(a.undos, undo{what: what, fn: fn})
}

func (a *applier) ref(name string) (netlink.Link, error) {
	idx, ok := a.index[name]
	if !ok {
		return nil, fmt.Errorf("device %s vanished", name)
	}
	return linkRef(idx, name), nil
}

func (a *applier) do(act Action) error {
	h := a.m.h
	dev, err := a.ref(act.Dev)
	if err != nil {
		return err
	}
	switch act.Op {
	case OpSetMTU:
		if err := h.LinkSetMTU(dev, act.MTU); err != nil {
			return err
		}
		if !act.Created {
			prev := act.PrevMTU
			a.push(fmt.Sprintf("ip link set %s mtu %d", act.Dev, prev), func() error { return h.LinkSetMTU(dev, prev) })
		}
	case OpSetMaster:
		master, err := a.ref(act.Master)
		if err != nil {
			return err
		}
		if err := h.LinkSetMasterByIndex(dev, master.Attrs().Index); err != nil {
			return err
		}
		if !act.Created {
			a.push("ip link set "+act.Dev+" nomaster", func() error { return h.LinkSetNoMaster(dev) })
		}
	case OpSetPortFlags:
		if err := h.LinkSetLearning(dev, false); err != nil {
			return fmt.Errorf("turn bridge port learning off: %w", err)
		}
		if prev := act.PrevPort; act.NoSuppress && prev != nil && prev.NeighSuppress {
			a.m.log.Warn("neigh_suppress found on the VXLAN port of an L2VNI without an SVI (in no VRF): turning it off, as it only kept gratuitous ARPs and ARP probes from crossing the fabric",
				"vni", act.VNI, "dev", act.Dev)
		}
		if err := h.LinkSetBrNeighSuppress(dev, !act.NoSuppress); err != nil {
			// ARP/ND suppression is an optimisation; forwarding works without it.
			a.m.log.Warn("kernel refused to set neigh_suppress on the VXLAN bridge port",
				"vni", act.VNI, "dev", act.Dev, "on", !act.NoSuppress, "err", err)
		}
		if prev := act.PrevPort; prev != nil && !act.Created {
			a.push("bridge link set dev "+act.Dev+" (restore learning, neigh_suppress)", func() error {
				return errors.Join(h.LinkSetLearning(dev, prev.Learning), h.LinkSetBrNeighSuppress(dev, prev.NeighSuppress))
			})
		}
	case OpSetUp:
		if err := h.LinkSetUp(dev); err != nil {
			return err
		}
		if !act.Created {
			a.push("ip link set "+act.Dev+" down", func() error { return h.LinkSetDown(dev) })
		}
	default:
		return fmt.Errorf("unknown action %d", act.Op)
	}
	return nil
}

// createBatched does the plan's creations, many requests per write
// (nlBatch): every new bridge, then every new VXLAN device, enslaved to
// its bridge in its creation request; then it turns IPv6 off on them
// (disableIPv6) while they are down; then, one request each, it sets a
// new VXLAN device's port flags, alias and admin state up. It returns the
// indexes in acts of the actions it did, the new bridges (for bridgesUp,
// after the other actions) and, on failure, the action that failed; the
// devices it created have their undo steps pushed, failure or not.
func (a *applier) createBatched(ctx context.Context, acts []Action) (done map[int]bool, bridges []newBridge, failed Action, err error) {
	done = map[int]bool{}
	var brs []int
	var vxs []*vx
	byDev := map[string]*vx{}
	brUp := map[string]int{}
	for i, act := range acts {
		switch act.Op {
		case OpCreateBridge:
			brs = append(brs, i)
		case OpCreateVXLAN:
			v := &vx{create: i, master: -1, flags: -1, up: -1}
			vxs = append(vxs, v)
			byDev[act.Dev] = v
		}
	}
	if len(brs) == 0 && len(vxs) == 0 {
		return done, nil, Action{}, nil
	}
	for i, act := range acts {
		if !act.Created {
			continue
		}
		if v := byDev[act.Dev]; v != nil {
			switch act.Op {
			case OpSetMaster:
				v.master = i
			case OpSetPortFlags:
				v.flags = i
			case OpSetUp:
				v.up = i
			}
		} else if act.Op == OpSetUp {
			brUp[act.Dev] = i
		}
	}
	b, err := openBatch(a.m.ns)
	if err != nil {
		return done, nil, acts[firstCreate(brs, vxs)], err
	}
	defer b.Close()

	// created runs the creation requests of acts[idx...] and notes what
	// was created, for undo, even after a failure.
	var names []string
	created := func(idx []int, reqs []request) (Action, error) {
		res, err := b.exchange(reqs)
		if err != nil {
			// Answers lost: find what exists by name to undo it.
			for _, i := range idx {
				if l, lerr := a.m.h.LinkByName(acts[i].Dev); lerr == nil {
					a.noteCreated(acts[i].Dev, l.Attrs().Index)
				}
			}
			return acts[idx[0]], err
		}
		var firstErr error
		var firstAct Action
		for k, r := range res {
			act := acts[idx[k]]
			if r.err != nil {
				if firstErr == nil {
					firstAct, firstErr = act, createError(act.Dev, r.err)
				}
				continue
			}
			index := r.index
			if index == 0 { // a kernel that does not echo (before 6.1)
				l, err := a.m.h.LinkByName(act.Dev)
				if err != nil {
					if firstErr == nil {
						firstAct, firstErr = act, fmt.Errorf("look up created %s: %w", act.Dev, err)
					}
					continue
				}
				index = l.Attrs().Index
			}
			a.noteCreated(act.Dev, index)
			names = append(names, act.Dev)
			done[idx[k]] = true
		}
		return firstAct, firstErr
	}

	if len(brs) > 0 {
		reqs := make([]request, len(brs))
		for k, i := range brs {
			reqs[k] = createBridgeReq(acts[i].Dev, acts[i].MTU)
		}
		if act, err := created(brs, reqs); err != nil {
			return done, nil, act, err
		}
	}
	if err := ctx.Err(); err != nil {
		return done, nil, acts[firstCreate(brs, vxs)], err
	}
	if len(vxs) > 0 {
		idx := make([]int, len(vxs))
		reqs := make([]request, len(vxs))
		for k, v := range vxs {
			act := acts[v.create]
			master := 0
			if v.master >= 0 {
				master = a.index[acts[v.master].Master] // 0 when unknown: enslaved later, in order
			}
			if master == 0 {
				v.master, v.flags, v.up = -1, -1, -1
			}
			idx[k], reqs[k] = v.create, createVXLANReq(act.Dev, act.MTU, act.Spec, master)
		}
		if act, err := created(idx, reqs); err != nil {
			return done, nil, act, err
		}
	}
	if err := ctx.Err(); err != nil {
		return done, nil, acts[firstCreate(brs, vxs)], err
	}
	skipped, err := disableIPv6(a.m.ns, names)
	if err != nil {
		return done, nil, acts[firstCreate(brs, vxs)], err
	}
	if len(skipped) > 0 {
		a.m.log.Debug("no IPv6 on these devices (MTU below 1280 or IPv6 disabled): nothing to turn off", "devs", skipped)
	}

	// The new VXLAN devices: port flags, alias and up in one request.
	if len(vxs) > 0 {
		reqs := make([]request, len(vxs))
		for k, v := range vxs {
			act := acts[v.create]
			suppress := v.flags >= 0 && !acts[v.flags].NoSuppress
			reqs[k] = setLinkReq(a.index[act.Dev], OwnerAlias, v.master >= 0 && v.flags >= 0, suppress, v.master >= 0 && v.up >= 0)
		}
		res, err := b.exchange(reqs)
		if err != nil {
			return done, nil, acts[vxs[0].create], err
		}
		for k, v := range vxs {
			if res[k].err != nil {
				// Say neigh_suppress refused: one setting at a time,
				// as do does, which tolerates that.
				if act, err := a.setOneByOne(acts, v.create, v.flags, v.up, v.master >= 0); err != nil {
					return done, nil, act, err
				}
			}
			for _, i := range []int{v.master, v.flags, v.up} {
				if i >= 0 {
					done[i] = true
				}
			}
		}
	}
	for _, i := range brs {
		nb := newBridge{create: i, up: -1}
		if u, ok := brUp[acts[i].Dev]; ok {
			nb.up = u
			done[u] = true
		}
		bridges = append(bridges, nb)
	}
	for i := range done {
		a.m.log.Debug("applied", "vni", acts[i].VNI, "dev", acts[i].Dev, "action", acts[i].String())
	}
	return done, bridges, Action{}, nil
}

// newBridge is a bridge createBatched created: the indexes in the plan
// of its creation and of its Created OpSetUp (-1 when none).
type newBridge struct{ create, up int }

func (a *applier) noteCreated(name string, index int) {
	a.index[name] = index
	ref := linkRef(index, name)
	h := a.m.h
	a.push("ip link del "+name, func() error { return h.LinkDel(ref) })
}

func createError(name string, err error) error {
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("create %s: it appeared meanwhile, or the kernel refused a duplicate (VNI and port already in use?): %w", name, err)
	}
	return fmt.Errorf("create %s: %w", name, err)
}

// setOneByOne is createBatched's fallback for a new VXLAN device whose
// combined request failed: its alias, then (when it was enslaved at
// creation) its port flags and admin state, one request each.
func (a *applier) setOneByOne(acts []Action, create, flags, up int, enslaved bool) (Action, error) {
	act := acts[create]
	ref := linkRef(a.index[act.Dev], act.Dev)
	if err := a.m.h.LinkSetAlias(ref, OwnerAlias); err != nil {
		return act, fmt.Errorf("mark %s as evpnd's (alias %s): %w", act.Dev, OwnerAlias, err)
	}
	if !enslaved {
		return Action{}, nil
	}
	for _, i := range []int{flags, up} {
		if i < 0 {
			continue
		}
		if err := a.do(acts[i]); err != nil {
			return acts[i], err
		}
	}
	return Action{}, nil
}

// bridgesUp gives the bridges createBatched created their alias and,
// when the plan says so, brings them up: last, so that they come up with
// their ports in place. One request each, many per write.
func (a *applier) bridgesUp(ctx context.Context, acts []Action, bridges []newBridge) (Action, error) {
	if len(bridges) == 0 {
		return Action{}, nil
	}
	if err := ctx.Err(); err != nil {
		return acts[bridges[0].create], err
	}
	b, err := openBatch(a.m.ns)
	if err != nil {
		return acts[bridges[0].create], err
	}
	defer b.Close()
	reqs := make([]request, len(bridges))
	for k, nb := range bridges {
		reqs[k] = setLinkReq(a.index[acts[nb.create].Dev], OwnerAlias, false, false, nb.up >= 0)
	}
	res, err := b.exchange(reqs)
	if err != nil {
		return acts[bridges[0].create], err
	}
	for k, r := range res {
		if r.err != nil {
			act := acts[bridges[k].create]
			if bridges[k].up >= 0 {
				act = acts[bridges[k].up]
			}
			return act, fmt.Errorf("alias %s and set it up: %w", act.Dev, r.err)
		}
	}
	return Action{}, nil
}

// vx is a VXLAN device createBatched creates: the indexes in the plan of
// its creation and of its Created OpSetMaster, OpSetPortFlags and
// OpSetUp (-1 when absent).
type vx struct{ create, master, flags, up int }

// firstCreate is the index of the plan's first creation.
func firstCreate(brs []int, vxs []*vx) int {
	if len(brs) > 0 {
		return brs[0]
	}
	return vxs[0].create
}

// in6AddrGenModeNone is IN6_ADDR_GEN_MODE_NONE from linux/if_link.h.
const in6AddrGenModeNone = 1
