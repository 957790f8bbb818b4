package vtep

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// supervised is the set Supervise keeps in shape, with the indexes its
// event filter needs.
type supervised struct {
	mu      sync.Mutex
	vnis    map[uint32]L2VNI
	names   map[string]uint32 // bridge, VXLAN device and access port names -> VNI
	bridges map[int]uint32    // bridge ifindex -> VNI, as last observed
	devIdx  map[string]int    // bridge and VXLAN device name -> ifindex, as last observed
	warned  map[MTUWarning]bool
	failed  map[uint32]string // VNI -> the last repair error logged
}

func (s *supervised) init() {
	if s.vnis == nil {
		s.vnis, s.names, s.bridges = map[uint32]L2VNI{}, map[string]uint32{}, map[int]uint32{}
		s.devIdx = map[string]int{}
		s.warned, s.failed = map[MTUWarning]bool{}, map[uint32]string{}
	}
}

func (s *supervised) add(vnis []L2VNI) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	for _, v := range vnis {
		v.AccessPorts = slices.Clone(v.AccessPorts)
		s.vnis[v.VNI] = v
	}
	s.reindex()
}

func (s *supervised) remove(vni uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	delete(s.vnis, vni)
	delete(s.failed, vni)
	for w := range s.warned {
		if w.VNI == vni {
			delete(s.warned, w)
		}
	}
	s.reindex()
}

func (s *supervised) reindex() {
	clear(s.names)
	for vni, v := range s.vnis {
		s.names[v.Bridge], s.names[v.VXLAN] = vni, vni
		for _, p := range v.AccessPorts {
			s.names[p] = vni
		}
	}
	for idx, vni := range s.bridges {
		if _, ok := s.vnis[vni]; !ok {
			delete(s.bridges, idx)
		}
	}
	for name := range s.devIdx {
		if _, ok := s.names[name]; !ok {
			delete(s.devIdx, name)
		}
	}
}

// affected returns the supervised VNI a link change concerns: one of its
// devices or access ports by name, its bridge by index, or a port of its
// bridge (for the MTU check).
func (s *supervised) affected(u netlink.LinkUpdate) (uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	a := u.Link.Attrs()
	if vni, ok := s.names[a.Name]; ok {
		return vni, true
	}
	if vni, ok := s.bridges[a.Index]; ok {
		return vni, true
	}
	if vni, ok := s.bridges[a.MasterIndex]; ok {
		return vni, true
	}
	return 0, false
}

// get returns the supervised VNIs among vnis (nil: all), sorted.
func (s *supervised) get(vnis map[uint32]bool) []L2VNI {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	var out []L2VNI
	for vni, v := range s.vnis {
		if vnis == nil || vnis[vni] {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b L2VNI) int { return int(a.VNI) - int(b.VNI) })
	return out
}

// Supervise keeps the devices of the VNIs that Ensure set up (and Remove
// has not removed) as their plan wants them, until ctx is done. It
// subscribes to link events (RTNLGRP_LINK, on a netlink socket of its own
// in the Manager's namespace) and, when a VNI's bridge, VXLAN device or
// access port changes, or a port of its bridge does, re-applies the VNI's
// plan (PlanRepair) with the same conflict rules as Ensure:
//
//   - a deleted bridge or VXLAN device is created again, and re-created
//     ones (say by ifreload) are adopted and repaired;
//   - a port released from its bridge (ip link set swp1 nomaster) is
//     enslaved again; a configured access port that appears is enslaved;
//   - the VXLAN port's learning turned on (bridge link set dev vxlan100
//     learning on) is turned off again, neigh_suppress set again as
//     wanted (on, off for an L2VNI with NoNeighSuppress);
//   - the VXLAN device and bridge are set up again, and their MTU when
//     one is configured;
//   - a port of the bridge with a larger MTU than the VXLAN device's is
//     warned about once (until it changes).
//
// A device with a conflicting identity (say vxlan100 re-created with
// another VNI) is left alone: the conflict is logged once, and each
// change is reported to onRepair with Err set. Every repair is logged
// and reported to onRepair, which runs on Supervise's goroutine and must
// only enqueue or count. A repair with FDBLost needs the VNI's FDB
// written again.
//
// When the event socket overruns or fails, Supervise subscribes again and
// re-plans every VNI, so no change is lost. Changes evpnd makes itself
// come back as events and find nothing to do.
func (m *Manager) Supervise(ctx context.Context, onRepair func(Repair)) error {
	if onRepair == nil {
		onRepair = func(Repair) {}
	}
	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		start := time.Now()
		err := m.superviseOnce(ctx, onRepair)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > 10*time.Second {
			backoff = minBackoff
		}
		m.log.Warn("link event subscription lost; subscribing again and re-checking every l2vni's devices", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// linkEventBuffer is the receive buffer of the link event socket. A link
// notification takes 1-2 KB of it: a burst of some thousands of link
// changes fits; beyond that the socket overruns and Supervise re-plans.
const linkEventBuffer = 4 << 20

// superviseOnce subscribes, re-plans every VNI, then follows events until
// the subscription fails (it returns why) or ctx is done.
func (m *Manager) superviseOnce(ctx context.Context, onRepair func(Repair)) error {
	ch := make(chan netlink.LinkUpdate, 1024)
	done := make(chan struct{})
	var subErr error
	var errMu sync.Mutex
	opts := netlink.LinkSubscribeOptions{
		ReceiveBufferSize:      linkEventBuffer,
		ReceiveBufferForceSize: true,
		ErrorCallback: func(err error) {
			errMu.Lock()
			subErr = err
			errMu.Unlock()
		},
	}
	if m.ns.IsOpen() {
		ns := m.ns
		opts.Namespace = &ns
	} else {
		ns := netns.None()
		opts.Namespace = &ns
	}
	if err := netlink.LinkSubscribeWithOptions(ch, done, opts); err != nil {
		if errors.Is(err, unix.EPERM) {
			// Without CAP_NET_ADMIN the buffer cannot be forced.
			opts.ReceiveBufferForceSize = false
			err = netlink.LinkSubscribeWithOptions(ch, done, opts)
		}
		if err != nil {
			return fmt.Errorf("subscribe to link events: %w", err)
		}
	}
	defer func() {
		close(done)
		// The subscription's goroutine sends until it sees the socket
		// closed: drain it so it can end.
		go func() {
			for range ch {
			}
		}()
	}()

	// Subscribed first, planned second: a change racing the plan is in
	// the queue after it.
	m.repair(ctx, nil, onRepair)
	dirty := map[uint32]bool{}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case u, ok := <-ch:
			if !ok {
				errMu.Lock()
				defer errMu.Unlock()
				if subErr == nil {
					subErr = errors.New("link event socket closed")
				}
				return subErr
			}
			m.mark(u, dirty)
		}
		// Take what else is queued now, so that a burst (a bridge deleted
		// releases all its ports) is planned once.
	more:
		for {
			select {
			case u, ok := <-ch:
				if !ok {
					break more
				}
				m.mark(u, dirty)
			default:
				break more
			}
		}
		if len(dirty) > 0 {
			m.repair(ctx, dirty, onRepair)
			clear(dirty)
		}
	}
}

func (m *Manager) mark(u netlink.LinkUpdate, dirty map[uint32]bool) {
	if vni, ok := m.sup.affected(u); ok {
		dirty[vni] = true
	}
}

// repair re-plans the supervised VNIs in scope (nil: all) one by one, so
// that one VNI's conflict does not hold back another's repair, applies
// what each plan asks and reports it.
func (m *Manager) repair(ctx context.Context, scope map[uint32]bool, onRepair func(Repair)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	vnis := m.sup.get(scope) // under m.mu: Remove cannot race this
	if len(vnis) == 0 {
		return
	}
	m.log.Debug("re-checking l2vni devices", "vnis", len(vnis), "all", scope == nil)
	obs, err := m.observeFor(vnis)
	if err != nil {
		m.log.Error("read links to check the l2vni devices", "err", err)
		return
	}
	recreated := m.noteDevices(vnis, obs)
	changed := false
	w := obs.view() // once: planning each VNI on its own must not index every link again
	for _, v := range vnis {
		if ctx.Err() != nil {
			return
		}
		plan, err := planView([]L2VNI{v}, w, true)
		if err == nil && len(plan.Actions) == 0 && len(recreated[v.VNI]) == 0 {
			m.sup.clearFailed(v.VNI)
			continue
		}
		r := Repair{VNI: v.VNI, VXLAN: v.VXLAN, Recreated: recreated[v.VNI]}
		for _, dev := range r.Recreated {
			m.log.Warn("l2vni device re-created by someone else: adopted; its FDB is written again", "vni", v.VNI, "dev", dev)
		}
		if err == nil && len(plan.Actions) > 0 {
			changed = true
			if err = m.apply(ctx, plan, obs); err == nil {
				r.Actions = plan.Actions
				m.sup.clearFailed(v.VNI)
				for _, a := range plan.Actions {
					m.log.Warn("l2vni device repaired", "vni", v.VNI, "dev", a.Dev, "action", a.String())
				}
			}
		}
		if err != nil {
			r.Err = err
			if m.sup.noteFailed(v.VNI, err) {
				m.log.Error("l2vni devices cannot be repaired; evpnd tries again at their next change", "vni", v.VNI, "err", err)
			}
		}
		onRepair(r)
	}
	if changed {
		if obs, err = m.observeAfter(vnis); err != nil {
			return
		}
		m.noteDevices(vnis, obs)
	}
	m.warnMTUObserved(vnis, obs)
}

// noteDevices records the ifindexes of the VNIs' bridges (for the event
// filter) and VXLAN devices, and returns, per VNI, the devices whose
// ifindex changed since they were last noted: someone deleted and
// re-created them (ifreload does) before a repair could run, so their
// FDB is gone even when they match the plan.
func (m *Manager) noteDevices(vnis []L2VNI, obs Observed) map[uint32][]string {
	w := obs.view()
	s := &m.sup
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	in := make(map[uint32]bool, len(vnis))
	for _, v := range vnis {
		in[v.VNI] = true
	}
	for idx, vni := range s.bridges {
		if in[vni] {
			delete(s.bridges, idx)
		}
	}
	var recreated map[uint32][]string
	for _, v := range vnis {
		if br := w.byName[v.Bridge]; br != nil && br.Kind == "bridge" {
			s.bridges[br.Index] = v.VNI
		}
		for _, name := range []string{v.Bridge, v.VXLAN} {
			l := w.byName[name]
			if l == nil {
				delete(s.devIdx, name)
				continue
			}
			if prev, ok := s.devIdx[name]; ok && prev != l.Index {
				if recreated == nil {
					recreated = map[uint32][]string{}
				}
				recreated[v.VNI] = append(recreated[v.VNI], name)
			}
			s.devIdx[name] = l.Index
		}
	}
	return recreated
}

// noteFailed records err as the VNI's last repair failure and reports
// whether it differs from the one before (and so is worth a log line).
func (s *supervised) noteFailed(vni uint32, err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	msg := err.Error()
	if s.failed[vni] == msg {
		return false
	}
	s.failed[vni] = msg
	return true
}

func (s *supervised) clearFailed(vni uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	delete(s.failed, vni)
}

// warnMTUObserved logs each MTUWarning of vnis once, and forgets the
// ones of vnis that are gone, so a port that is fixed and broken again
// is warned about again.
func (m *Manager) warnMTUObserved(vnis []L2VNI, obs Observed) {
	now := MTUWarnings(vnis, obs)
	s := &m.sup
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	in := map[uint32]bool{}
	for _, v := range vnis {
		in[v.VNI] = true
	}
	cur := map[MTUWarning]bool{}
	for _, w := range now {
		cur[w] = true
		if !s.warned[w] {
			m.log.Warn("bridge port MTU is larger than its VXLAN device's: larger frames from it are dropped on their way to other leafs; lower the port's MTU (or raise the underlay's)",
				"vni", w.VNI, "port", w.Port, "port_mtu", w.PortMTU, "vxlan", w.VXLAN, "vxlan_mtu", w.VXLANMTU)
		}
	}
	for _, w := range slices.Collect(maps.Keys(s.warned)) {
		if in[w.VNI] && !cur[w] {
			delete(s.warned, w)
		}
	}
	for w := range cur {
		s.warned[w] = true
	}
}
