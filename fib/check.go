package fib

import (
	"context"
	"fmt"
	"net/netip"
)

// CheckResult is the outcome of Reconciler.Check.
type CheckResult struct {
	// Drifts are the differences the reconciler is not repairing at the
	// moment, sorted as Diff sorts them.
	Drifts []Drift
	// CheckedMACs and CheckedFloods count the wanted MACs and flood
	// entries of the managed VNIs checked (those of a VNI whose VXLAN
	// device is missing included: the device drift stands for them).
	CheckedMACs, CheckedFloods int
	// InFlight counts the differences left out of Drifts because the
	// reconciler is repairing them: after the kernel was read, the key
	// waited in the desired table's dirty set, for a retry after a
	// failure, or with a reported kernel change (KernelChanged); or the
	// reconciler applied an operation to it while the check ran. When the
	// reconciler read the kernel (a resync) while the check ran, or one is
	// requested, every difference is in flight. A missing device never is.
	InFlight int
	// Synced is Reconciler.Synced. Before it, entries found in the kernel
	// that nobody wants are kept on purpose (BGP has not re-synced yet)
	// and are reported as Extra drift.
	Synced bool
}

// checkWatch collects, while a Check runs, the keys the reconciler
// applied operations to, and whether it read the kernel.
type checkWatch struct {
	keys   map[Key]bool
	resync bool
}

// Check compares the kernel with the desired state, for one VNI or, with
// vni 0, every managed VNI, and reports the drift the reconciler is not
// already repairing (see Diff for what counts, CheckResult.InFlight for
// what is left out).
//
// It reads a snapshot of the desired table and then the kernel through
// Kernel.Dump, which must be safe to call while Run applies operations
// (NetlinkKernel dumps on a socket of its own). It does not write, and it
// may be called from any goroutine, while Run runs or not. A dump of a
// device with 100k MACs takes a few seconds.
func (r *Reconciler) Check(ctx context.Context, vni uint32) (CheckResult, error) {
	w := r.watch()
	defer r.unwatch(w)

	s := r.d.Snapshot()
	if vni != 0 {
		dev, ok := s.VNIs[vni]
		if !ok {
			return CheckResult{}, fmt.Errorf("fib: check vni %d: not a managed L2VNI (configure it first)", vni)
		}
		s = s.only(dev)
	}
	devs := make([]VNIDevices, 0, len(s.VNIs))
	for _, d := range s.VNIs {
		devs = append(devs, d)
	}
	dump, err := r.k.Dump(ctx, devs)
	if err != nil {
		return CheckResult{}, fmt.Errorf("fib: check: read kernel FDB: %w", err)
	}
	res := CheckResult{Synced: r.Synced()}
	for k := range s.MACs {
		if _, ok := s.VNIs[k.VNI]; ok {
			res.CheckedMACs++
		}
	}
	for k := range s.Floods {
		if _, ok := s.VNIs[k.VNI]; ok {
			res.CheckedFloods++
		}
	}
	drifts := Diff(s, dump)
	if len(drifts) == 0 {
		return res, nil
	}

	// What is being repaired, looked at after the dump.
	busy := make(map[Key]bool)
	keys := make([]Key, 0, len(drifts))
	for _, d := range drifts {
		if d.Table != TableDevice {
			keys = append(keys, d.key())
		}
	}
	r.d.dirtyAmong(keys, busy)
	r.kernelEventsPending(busy)
	r.mu.Lock()
	for _, k := range keys {
		if _, ok := r.status[k]; ok {
			busy[k] = true
		}
	}
	r.mu.Unlock()
	r.watchMu.Lock()
	all := w.resync || r.resyncReq.Load()
	for k := range w.keys {
		busy[k] = true
	}
	r.watchMu.Unlock()

	for _, d := range drifts {
		if d.Table != TableDevice && (all || busy[d.key()]) {
			res.InFlight++
			continue
		}
		res.Drifts = append(res.Drifts, d)
	}
	return res, nil
}

// only returns the part of s that concerns dev's VNI.
func (s Snapshot) only(dev VNIDevices) Snapshot {
	out := Snapshot{
		VNIs:   map[uint32]VNIDevices{dev.VNI: dev},
		MACs:   make(map[Key]netip.Addr),
		Floods: make(map[Key]struct{}),
	}
	for k, v := range s.MACs {
		if k.VNI == dev.VNI {
			out.MACs[k] = v
		}
	}
	for k := range s.Floods {
		if k.VNI == dev.VNI {
			out.Floods[k] = struct{}{}
		}
	}
	return out
}

// watch registers a check; until unwatch, Run records what it does.
func (r *Reconciler) watch() *checkWatch {
	w := &checkWatch{keys: make(map[Key]bool)}
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	if r.watches == nil {
		r.watches = make(map[*checkWatch]struct{})
	}
	r.watches[w] = struct{}{}
	r.nwatch.Add(1)
	w.resync = r.resyncing.Load()
	return w
}

func (r *Reconciler) unwatch(w *checkWatch) {
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	delete(r.watches, w)
	r.nwatch.Add(-1)
}

// noteApplied records, for the checks under way, the keys of a batch that
// was just applied.
func (r *Reconciler) noteApplied(keys []Key) {
	if r.nwatch.Load() == 0 {
		return
	}
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	for w := range r.watches {
		for _, k := range keys {
			w.keys[k] = true
		}
	}
}

// startResync marks a kernel read by Run, for the checks under way: every
// key is looked at again after it.
func (r *Reconciler) startResync() {
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	r.resyncing.Store(true)
	for w := range r.watches {
		w.resync = true
	}
}
