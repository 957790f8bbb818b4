package fib

import (
	"context"
	"fmt"
	"time"
)

// resync reads the kernel FDB of every managed VXLAN device (and of
// removed VNIs fib still has entries on), replaces the installed view with
// it and queues every key for a diff.
//
// NOTE: the kernel resumes an FDB dump by skipping the entries already
// sent, so a dump costs time quadratic in a device's entries (about 1-2 s
// for 100k MACs here). It happens at start, on Resync and on the resync
// interval; a device change reads only the VNIs that changed.
func (r *Reconciler) resync(ctx context.Context, devs []VNIDevices) error {
	start := time.Now()
	all := devs
	seen := make(map[VNIDevices]bool, len(devs))
	for _, d := range devs {
		seen[VNIDevices{VNI: d.VNI, VXLAN: d.VXLAN}] = true
	}
	for k, in := range r.installed { // removed VNIs whose entries are still ours
		dv := VNIDevices{VNI: k.VNI, VXLAN: in.Dev}
		if !seen[dv] {
			seen[dv] = true
			all = append(all, dv)
		}
	}
	dump, err := r.k.Dump(ctx, all)
	if err != nil {
		return fmt.Errorf("fib: dump kernel fdb: %w", err)
	}
	fresh := InstalledFrom(dump)
	keys := make([]Key, 0, len(fresh)+len(r.installed))
	stale := 0
	// After the first read, a difference from fib's record is a change
	// made behind its back (events lost, or none reported): what the
	// pass then does about it is a repair.
	later := r.loopStats.Resyncs > 0
	for k, in := range fresh {
		old, ok := r.installed[k]
		if ok && !old.Stale {
			in.Stale = false
			fresh[k] = in
		}
		if later && (!ok || !old.sameKernel(in)) {
			r.noteRepair(k)
		}
		if in.Stale {
			stale++
		}
		keys = append(keys, k)
	}
	for k := range r.installed {
		if _, ok := fresh[k]; !ok {
			keys = append(keys, k) // vanished: rewrite if still wanted
			if later {
				r.noteRepair(k)
			}
		}
	}
	r.installed, r.stale = fresh, stale
	r.setDevs(devs)
	r.d.markAllDirty()
	r.d.markDirty(keys...)
	r.loopStats.Resyncs++
	r.loopStats.LastResync = time.Since(start)
	r.log.Info("fib: read kernel FDB", "entries", len(dump), "owned", len(fresh), "stale", stale,
		"vnis", len(all), "took", r.loopStats.LastResync)
	return nil
}

func (r *Reconciler) setDevs(devs []VNIDevices) {
	clear(r.devs)
	for _, d := range devs {
		r.devs[d.VNI] = d
	}
}

// resyncVNIs handles SetVNI/RemoveVNI: it reads the kernel only for VNIs
// that are new or whose devices changed, and queues the keys of those and
// of removed VNIs.
func (r *Reconciler) resyncVNIs(ctx context.Context, devs []VNIDevices) error {
	start := time.Now()
	var added []VNIDevices
	touched := make(map[uint32]bool)
	cur := make(map[uint32]bool, len(devs))
	for _, d := range devs {
		cur[d.VNI] = true
		if old, ok := r.devs[d.VNI]; !ok || old != d {
			added = append(added, d)
			touched[d.VNI] = true
		}
	}
	for v := range r.devs {
		if !cur[v] {
			touched[v] = true // removed
		}
	}
	if len(touched) == 0 {
		return nil
	}
	var dump []KernelEntry
	if len(added) > 0 {
		var err error
		if dump, err = r.k.Dump(ctx, added); err != nil {
			return fmt.Errorf("fib: dump kernel fdb of %d new VNIs: %w", len(added), err)
		}
	}
	var keys []Key
	addedVNI := make(map[uint32]bool, len(added))
	for _, d := range added {
		addedVNI[d.VNI] = true
	}
	for k, in := range r.installed {
		if !touched[k.VNI] {
			continue
		}
		keys = append(keys, k)
		if addedVNI[k.VNI] {
			// Re-read below; entries on a renamed device are forgotten.
			if in.Stale {
				r.stale--
			}
			delete(r.installed, k)
		}
	}
	fresh := InstalledFrom(dump)
	for k, in := range fresh {
		r.installed[k] = in
		r.stale++
		keys = append(keys, k)
	}
	r.setDevs(devs)
	r.d.markVNIsDirty(touched)
	r.d.markDirty(keys...)
	r.log.Info("fib: VNIs changed", "read", len(added), "changed_or_removed", len(touched)-len(added),
		"owned", len(fresh), "took", time.Since(start))
	return nil
}
