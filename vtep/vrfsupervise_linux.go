package vtep

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// VRFRepair is one re-run of EnsureVRF by SuperviseVRFs after a change to
// the VRF's devices: Err is nil when the devices are as configured again.
type VRFRepair struct {
	VRF string
	Err error
	// FDBLost: the kernel may have lost the FDB evpnd wrote on the VRF's
	// VXLAN devices, and the caller must have it written again
	// (fib.Reconciler.Resync). It is set when the re-run changed
	// anything, when one of the VRF's VXLAN devices or bridges changed
	// (a device deleted and made again by someone else keeps nothing of
	// its FDB, yet needs no repair), and when link events may have been
	// lost (the first run of a subscription). It is not set for changes
	// of access ports only, such as a port's carrier going down or up as
	// a host moves: a resync then could undo the bridge's move of the
	// host's MAC from the VXLAN port to the access port before the local
	// MAC is reported, which blackholes the host's traffic until it
	// sends again.
	FDBLost bool
}

// fdbNames returns the device names a change of which may lose the
// VRF's FDB: the VXLAN devices and bridges.
func (v VRF) fdbNames() map[string]bool {
	out := map[string]bool{}
	for _, l := range v.l2Set() {
		out[l.VXLAN], out[l.Bridge] = true, true
	}
	return out
}

// names returns the device names a change of which may need a repair:
// the VRF device, the L3VNI's and members' VXLAN devices and bridges, and
// the access ports and uplinks.
func (v VRF) names() map[string]bool {
	out := map[string]bool{}
	if v.Backend == BackendVRF {
		out[v.Name] = true
	}
	for _, l := range v.l2Set() {
		out[l.VXLAN], out[l.Bridge] = true, true
		for _, p := range l.AccessPorts {
			out[p] = true
		}
	}
	for _, u := range v.Uplinks {
		out[u.Name] = true
	}
	return out
}

// SuperviseVRFs keeps the devices of vrfs (already built by EnsureVRF) as
// configured until ctx ends: a link change in the underlay or a tenant's
// namespace that concerns one of a VRF's devices or access ports runs
// EnsureVRF for it again, which rebuilds what was deleted, re-enslaves,
// sets up and readdresses (an access port that appears late is moved in
// and enslaved). Each such run is reported to onRepair, on
// SuperviseVRFs' goroutine (it must only enqueue or count). EnsureVRF's
// own changes come back as events and find nothing more to do. When a
// subscription fails, SuperviseVRFs subscribes again and re-ensures every
// VRF, so no change is lost.
//
// A failed run is retried with backoff (250 ms doubling to 30 s), not at
// the next event: its rollback's own events would otherwise re-run it in
// a tight loop; a repeated failure is logged once. While IPv6 is off in
// the namespace that routes a VRF (net.ipv6.conf.all.disable_ipv6=1),
// where the kernel refuses IPv6 addresses, the VRF is built without its
// IPv6 addresses, so that IPv4 keeps working, with one warning naming
// the sysctl; they are added once IPv6 is on again (checked every 2 s).
func (m *Manager) SuperviseVRFs(ctx context.Context, vrfs []VRF, onRepair func(VRFRepair)) error {
	if len(vrfs) == 0 {
		<-ctx.Done()
		return nil
	}
	if onRepair == nil {
		onRepair = func(VRFRepair) {}
	}
	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	states := map[string]*vrfRepairState{}
	for {
		start := time.Now()
		err := m.superviseVRFsOnce(ctx, vrfs, onRepair, states)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > 10*time.Second {
			backoff = minBackoff
		}
		m.log.Warn("vrf link event subscription lost; subscribing again and re-checking every VRF's devices", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// vrfEvent is a link change in the namespace ns ("" for the underlay's).
type vrfEvent struct {
	ns   string
	name string
}

func (m *Manager) superviseVRFsOnce(ctx context.Context, vrfs []VRF, onRepair func(VRFRepair), states map[string]*vrfRepairState) error {
	ch := make(chan vrfEvent, 1024)
	failed := make(chan error, 1+len(vrfs))
	done := make(chan struct{})
	defer close(done)
	subscribe := func(ns netns.NsHandle, name string) error {
		raw := make(chan netlink.LinkUpdate, 1024)
		opts := netlink.LinkSubscribeOptions{
			Namespace:              &ns,
			ReceiveBufferSize:      linkEventBuffer,
			ReceiveBufferForceSize: true,
			// Harmless problems (a message from a sender other than the
			// kernel) come here too and the library goes on; a real
			// failure closes raw, reported below.
			ErrorCallback: func(err error) {
				m.log.Debug("vrf link events: netlink subscription reported a problem and goes on", "namespace", name, "err", err)
			},
		}
		err := netlink.LinkSubscribeWithOptions(raw, done, opts)
		if errors.Is(err, unix.EPERM) {
			opts.ReceiveBufferForceSize = false
			err = netlink.LinkSubscribeWithOptions(raw, done, opts)
		}
		if err != nil {
			return fmt.Errorf("subscribe to link events of namespace %q: %w", name, err)
		}
		go func() {
			for u := range raw {
				select {
				case ch <- vrfEvent{ns: name, name: u.Attrs().Name}:
				case <-done:
					// Drain until the subscription sees done and closes raw.
				}
			}
			select {
			case failed <- fmt.Errorf("namespace %q: link event socket closed", name):
			default:
			}
		}()
		return nil
	}
	ensure := func(v VRF, fdbLost bool) {
		st := states[v.Name]
		if st == nil {
			st = &vrfRepairState{}
			states[v.Name] = st
		}
		actions, err := m.ensureVRF(ctx, st.effective(m, v))
		if err != nil && ctx.Err() != nil {
			return
		}
		st.result(m, v, err)
		onRepair(VRFRepair{VRF: v.Name, Err: err, FDBLost: fdbLost || actions > 0})
	}
	under := m.ns
	if !under.IsOpen() {
		under = netns.None()
	}
	if err := subscribe(under, ""); err != nil {
		return err
	}
	for _, v := range vrfs {
		if v.Backend != BackendNetns {
			continue
		}
		// A tenant namespace deleted behind evpnd's back is made again
		// before it can be watched.
		nsh, err := netns.GetFromName(v.Namespace)
		if err != nil {
			ensure(v, true)
			if nsh, err = netns.GetFromName(v.Namespace); err != nil {
				return fmt.Errorf("vrf %s: open namespace %s: %w", v.Name, v.Namespace, err)
			}
		}
		err = subscribe(nsh, v.Namespace)
		nsh.Close()
		if err != nil {
			return err
		}
	}
	// Subscribed first, ensured second: a change racing this is queued.
	// Changes before the subscription are unknown: the FDB may be lost.
	for _, v := range vrfs {
		ensure(v, true)
	}
	names := make([]map[string]bool, len(vrfs))
	fdbNames := make([]map[string]bool, len(vrfs))
	for i, v := range vrfs {
		names[i], fdbNames[i] = v.names(), v.fdbNames()
	}
	dirty, fdbDirty := make([]bool, len(vrfs)), make([]bool, len(vrfs))
	mark := func(e vrfEvent) {
		for i, v := range vrfs {
			if e.ns != "" && (v.Backend != BackendNetns || v.Namespace != e.ns) {
				continue
			}
			if names[i][e.name] {
				dirty[i] = true
			}
			if fdbNames[i][e.name] {
				fdbDirty[i] = true
			}
		}
	}
	// A VRF whose last run failed is run again only once its backoff has
	// passed, whatever events come meanwhile: a failed run's rollback
	// deletes what it had made, and those events would run it again at
	// once, in a tight loop. A VRF running without its IPv6 addresses
	// (IPv6 off in its namespace) is checked every ipv6Poll, so that it
	// gets them once IPv6 is on again, which no link event tells.
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		wake := time.Duration(-1)
		for i, v := range vrfs {
			st := states[v.Name]
			if st == nil {
				continue
			}
			var at time.Time
			switch {
			case dirty[i] && now.Before(st.retryAt):
				at = st.retryAt
			case st.ipv6Off:
				at = st.checked.Add(ipv6Poll)
			default:
				continue
			}
			if d := max(at.Sub(now), 0); wake < 0 || d < wake {
				wake = d
			}
		}
		var tc <-chan time.Time
		if wake >= 0 {
			timer.Reset(wake)
			tc = timer.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-failed:
			return err
		case e := <-ch:
			mark(e)
		case <-tc:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	more:
		for {
			select {
			case e := <-ch:
				mark(e)
			default:
				break more
			}
		}
		now = time.Now()
		for i, v := range vrfs {
			st := states[v.Name]
			if st != nil && st.ipv6Off && !now.Before(st.checked.Add(ipv6Poll)) {
				st.checked = now
				if !m.ipv6Disabled(v) {
					dirty[i] = true
				}
			}
			if dirty[i] && (st == nil || !now.Before(st.retryAt)) {
				ensure(v, fdbDirty[i])
				dirty[i], fdbDirty[i] = false, false
			}
		}
	}
}

// ipv6Poll is how often SuperviseVRFs checks whether IPv6 is on again in
// the namespace of a VRF that runs without its IPv6 addresses.
const ipv6Poll = 2 * time.Second

// Backoff of SuperviseVRFs' runs of a VRF after failed ones.
const minRepairBackoff, maxRepairBackoff = 250 * time.Millisecond, 30 * time.Second

// vrfRepairState is what SuperviseVRFs keeps per VRF across runs.
type vrfRepairState struct {
	failures int
	retryAt  time.Time // no run before, after a failure
	lastErr  string    // logged at Error once; its repeats at Debug
	ipv6Off  bool      // IPv6 is off where the VRF routes: it runs without its IPv6 addresses
	checked  time.Time // when ipv6Off was last checked
}

// effective returns the VRF a run builds: v, or v without its IPv6
// addresses while IPv6 is off in the namespace that routes it (the
// kernel refuses IPv6 addresses there, and each refused run, rolled
// back, would leave IPv4 down too). The change of state is logged once.
func (st *vrfRepairState) effective(m *Manager, v VRF) VRF {
	if !v.hasIPv6() {
		st.ipv6Off = false
		return v
	}
	off := m.ipv6Disabled(v)
	st.checked = time.Now()
	switch {
	case off && !st.ipv6Off:
		where := "the underlay namespace"
		if v.Backend == BackendNetns {
			where = "namespace " + v.Namespace
		}
		m.log.Warn("IPv6 is off where the VRF routes (net.ipv6.conf.all.disable_ipv6=1 in "+where+"): the kernel refuses its IPv6 gateway addresses, so it runs with IPv4 only; to route IPv6, set net.ipv6.conf.all.disable_ipv6=0 and net.ipv6.conf.default.disable_ipv6=0 there (evpnd adds the addresses within seconds), or remove the VRF's IPv6 gateways from the config",
			"vrf", v.Name, "ipv6_addresses", v.ipv6Addrs())
	case !off && st.ipv6Off:
		m.log.Info("IPv6 is on again where the VRF routes; adding its IPv6 gateway addresses", "vrf", v.Name)
	}
	st.ipv6Off = off
	if off {
		return v.withoutIPv6()
	}
	return v
}

// result records a run's outcome: a failure sets the backoff and is
// logged at Error unless it repeats the last one.
func (st *vrfRepairState) result(m *Manager, v VRF, err error) {
	if err == nil {
		if st.failures > 0 {
			m.log.Info("vrf devices repaired after failed attempts", "vrf", v.Name, "failures", st.failures)
		}
		st.failures, st.retryAt, st.lastErr = 0, time.Time{}, ""
		return
	}
	st.failures++
	backoff := min(minRepairBackoff<<min(st.failures-1, 10), maxRepairBackoff)
	st.retryAt = time.Now().Add(backoff)
	if msg := err.Error(); msg != st.lastErr {
		st.lastErr = msg
		m.log.Error("vrf devices not repaired", "vrf", v.Name, "err", err, "retry_in", backoff)
		return
	}
	m.log.Debug("vrf devices still not repaired", "vrf", v.Name, "err", err, "failures", st.failures, "retry_in", backoff)
}

// ipv6Disabled reports whether net.ipv6.conf.all.disable_ipv6 is 1 (or
// IPv6 is missing) in the namespace that routes v.
func (m *Manager) ipv6Disabled(v VRF) bool {
	ns := m.ns
	if v.Backend == BackendNetns {
		nsh, err := netns.GetFromName(v.Namespace)
		if err != nil {
			return false // made by the run
		}
		defer nsh.Close()
		ns = nsh
	}
	off := false
	_ = inNetns(ns, func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/disable_ipv6")
		off = errors.Is(err, os.ErrNotExist) || (err == nil && strings.TrimSpace(string(b)) == "1")
		return nil
	})
	return off
}

// ipv6Addrs returns v's IPv6 gateway and uplink addresses.
func (v VRF) ipv6Addrs() []string {
	var out []string
	for _, m := range v.Members {
		for _, g := range m.GatewayIPs {
			if g.Addr().Is6() && !g.Addr().Is4In6() {
				out = append(out, g.String())
			}
		}
	}
	for _, u := range v.Uplinks {
		for _, a := range u.Addrs {
			if a.Addr().Is6() && !a.Addr().Is4In6() {
				out = append(out, a.String())
			}
		}
	}
	return out
}

// withoutIPv6 returns a copy of v without IPv6 gateway and uplink
// addresses.
func (v VRF) withoutIPv6() VRF {
	v4 := func(ps []netip.Prefix) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range ps {
			if !p.Addr().Is6() || p.Addr().Is4In6() {
				out = append(out, p)
			}
		}
		return out
	}
	v.Members = slices.Clone(v.Members)
	for i := range v.Members {
		v.Members[i].GatewayIPs = v4(v.Members[i].GatewayIPs)
	}
	v.Uplinks = slices.Clone(v.Uplinks)
	for i := range v.Uplinks {
		v.Uplinks[i].Addrs = v4(v.Uplinks[i].Addrs)
	}
	return v
}
