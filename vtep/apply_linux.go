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
	for _, act := range plan.Actions {
		err := ctx.Err()
		if err == nil {
			err = a.do(act)
		}
		if err != nil {
			err = fmt.Errorf("l2vni %d: %s: %w", act.VNI, act, err)
			if rbErr := a.rollback(); rbErr != nil {
				return errors.Join(err, fmt.Errorf("rollback incomplete, devices may be half-built: %w", rbErr))
			}
			return fmt.Errorf("%w (undid the %d changes this call had made)", err, len(a.undos))
		}
		m.log.Debug("applied", "vni", act.VNI, "dev", act.Dev, "action", act.String())
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
	switch act.Op {
	case OpCreateBridge:
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU = act.Dev, act.MTU
		return a.create(&netlink.Bridge{LinkAttrs: attrs})
	case OpCreateVXLAN:
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU = act.Dev, act.MTU
		return a.create(&netlink.Vxlan{
			LinkAttrs: attrs,
			VxlanId:   int(act.Spec.VNI),
			SrcAddr:   addrIP(act.Spec.Local),
			Port:      act.Spec.port(),
			Learning:  false, // nolearning: remote MACs come from EVPN only
		})
	}
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
		if err := h.LinkSetBrNeighSuppress(dev, true); err != nil {
			// ARP/ND suppression is an optimisation; forwarding works without it.
			a.m.log.Warn("kernel refused neigh_suppress on the VXLAN bridge port; ARP/ND will be flooded",
				"vni", act.VNI, "dev", act.Dev, "err", err)
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

// create adds link (down), records its deletion as the undo step, and
// turns IPv6 address generation off before the link is ever up: L2-only
// devices need no link-local address, and generating one per device
// dominates the cost of creating thousands (DESIGN §4).
func (a *applier) create(link netlink.Link) error {
	h := a.m.h
	name := link.Attrs().Name
	if err := h.LinkAdd(link); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create %s: it appeared meanwhile, or the kernel refused a duplicate (VNI and port already in use?): %w", name, err)
		}
		return fmt.Errorf("create %s: %w", name, err)
	}
	idx := link.Attrs().Index
	if idx == 0 {
		// The handle looks the index up after creating; if that failed,
		// delete by name so the undo still works.
		l, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("look up created %s: %w", name, err)
		}
		idx = l.Attrs().Index
	}
	a.index[name] = idx
	ref := linkRef(idx, name)
	a.push("ip link del "+name, func() error { return h.LinkDel(ref) })
	if err := h.LinkSetIP6AddrGenMode(ref, in6AddrGenModeNone); err != nil {
		if !errors.Is(err, unix.EAFNOSUPPORT) {
			return fmt.Errorf("set addrgenmode none on %s: %w", name, err)
		}
		// The device has no IPv6 state at all: its MTU is below IPv6's
		// minimum of 1280 (addrconf_notify does not create one), or the
		// host booted with ipv6.disable=1. Then there is no link-local
		// address to turn off.
		a.m.log.Debug("no IPv6 on the device (MTU below 1280 or IPv6 disabled): no address generation to turn off", "dev", name)
	}
	// The kernel ignores IFLA_IFALIAS in RTM_NEWLINK; set it afterwards.
	if err := h.LinkSetAlias(ref, OwnerAlias); err != nil {
		return fmt.Errorf("mark %s as evpnd's (alias %s): %w", name, OwnerAlias, err)
	}
	return nil
}

// in6AddrGenModeNone is IN6_ADDR_GEN_MODE_NONE from linux/if_link.h.
const in6AddrGenModeNone = 1
