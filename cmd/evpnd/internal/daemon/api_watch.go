package daemon

import (
	"bytes"
	"cmp"
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// Watch implements api.Backend. Streams are bounded (see maxWatchers,
// watchBuffer, maxSnapshots): one too many gets api.ErrTooManyWatchers.
func (d *Daemon) Watch(ctx context.Context, initial bool, fn func(api.Change) error) error {
	release, err := d.hub.admit()
	if err != nil {
		return err
	}
	defer release()
	snapshotDone := func() {}
	if initial {
		done, err := d.hub.snapshotTurn(ctx)
		if err != nil {
			return err
		}
		var once sync.Once
		snapshotDone = func() { once.Do(done) }
		defer snapshotDone()
	}
	l := d.leaf.Load()
	if l == nil {
		if d.config().Role != configs.RoleRouteReflector {
			return errStopped
		}
		// A route reflector reports peer changes only.
		w := d.hub.subscribe()
		defer d.hub.unsubscribe(w)
		var init []api.Change
		if initial {
			init = d.peerChanges(ctx)
		}
		return w.serve(ctx, init, initial, fn, snapshotDone)
	}
	var w *watcher
	var init []api.Change
	// Subscribing in the loop makes the snapshot and the stream seamless:
	// every change after the snapshot is in the watcher's buffer.
	err = l.read(ctx, func() {
		w = d.hub.subscribe()
		if initial {
			init = l.snapshotChanges()
		}
	})
	if err != nil {
		if w != nil {
			d.hub.unsubscribe(w)
		}
		return err
	}
	defer d.hub.unsubscribe(w)
	return w.serve(ctx, init, initial, fn, snapshotDone)
}

func (d *Daemon) peerChanges(ctx context.Context) []api.Change {
	var out []api.Change
	peers, err := d.peers(ctx, false)
	if err != nil {
		return nil
	}
	now := time.Now()
	for _, p := range peers {
		if p.State == api.PeerEstablished { // as a leaf's initial state: sessions up
			out = append(out, api.Change{Time: now, Kind: api.ChangeUp, Initial: true, Peer: &api.PeerChange{Address: p.Address, State: p.State}})
		}
	}
	return out
}

// snapshotChanges is the current state as Added/Up changes, in the loop.
func (l *leaf) snapshotChanges() []api.Change {
	now := time.Now()
	var out []api.Change
	peers := make([]netip.Addr, 0, len(l.up))
	for p := range l.up {
		peers = append(peers, p)
	}
	slices.SortFunc(peers, netip.Addr.Compare)
	for _, p := range peers {
		out = append(out, api.Change{Time: now, Kind: api.ChangeUp, Initial: true,
			Peer: &api.PeerChange{Address: p, State: api.PeerEstablished}})
	}
	floods := l.table.FloodLists()
	for _, v := range l.d.cfg.L2VNIs {
		flood := floods[v.VNI]
		slices.SortFunc(flood, netip.Addr.Compare)
		for _, t := range flood {
			out = append(out, api.Change{Time: now, Kind: api.ChangeAdded, Initial: true, VTEP: &api.VTEPChange{VNI: v.VNI, VTEP: t}})
		}
	}
	var macs []api.Change
	l.table.MACs(func(mi evpn.MACInfo) bool {
		if !mi.Local && !mi.VTEP.IsValid() {
			return true
		}
		macs = append(macs, api.Change{Time: now, Kind: api.ChangeAdded, Initial: true, MAC: &api.MACChange{MAC: l.macRow(mi)}})
		return true
	})
	slices.SortFunc(macs, func(a, b api.Change) int {
		if c := cmp.Compare(a.MAC.MAC.VNI, b.MAC.MAC.VNI); c != 0 {
			return c
		}
		return bytes.Compare(a.MAC.MAC.MAC[:], b.MAC.MAC.MAC[:])
	})
	return append(append(append(out, macs...), l.vrfRouteSnapshot(now)...), l.arpSnapshot(now)...)
}

func (l *leaf) macRow(mi evpn.MACInfo) api.MAC {
	r := api.MAC{VNI: mi.VNI, MAC: mi.MAC, Local: mi.Local, VTEP: mi.VTEP, Seq: mi.Seq, Sticky: mi.Sticky, Duplicate: mi.Duplicate}
	if mi.Local {
		r.VTEP = l.d.cfg.VTEPIP
		r.Port = l.ports[evpn.MACKey{VNI: mi.VNI, MAC: mi.MAC}]
	}
	return r
}
