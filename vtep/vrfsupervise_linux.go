package vtep

import (
	"context"
	"errors"
	"fmt"
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
	for {
		start := time.Now()
		err := m.superviseVRFsOnce(ctx, vrfs, onRepair)
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

func (m *Manager) superviseVRFsOnce(ctx context.Context, vrfs []VRF, onRepair func(VRFRepair)) error {
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
		actions, err := m.ensureVRF(ctx, v)
		if err != nil && ctx.Err() != nil {
			return
		}
		if err != nil {
			m.log.Error("vrf devices not repaired", "vrf", v.Name, "err", err)
		}
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
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-failed:
			return err
		case e := <-ch:
			mark(e)
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
		for i, v := range vrfs {
			if dirty[i] {
				ensure(v, fdbDirty[i])
				dirty[i], fdbDirty[i] = false, false
			}
		}
	}
}
