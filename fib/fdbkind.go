package fib

import (
	"context"
	"errors"
	"slices"
)

// fdbOps is the L2 FDB as a kind of the generic engine (issue 10 item 8):
// a key is a remote MAC of a VNI (its VXLAN self entry and bridge master
// entry, written by one message) or a flood-list VTEP (an appended
// zero-MAC self entry); its value is the record of what the kernel holds,
// or, wanted, what fib writes (Installed with Self, Master for a MAC,
// Sticky). It reads and writes through Kernel, whose NetlinkKernel sends a
// whole batch of messages per sendmsg.
//
// Not yet run by Reconciler, which keeps its own loop. Left before it can
// be: the table's wanted state comes from Desired (today the table keeps
// its own copy, which a burst would pay twice), a device change reads
// only the VNIs it touches (resyncVNIs; the engine reads the whole kind),
// and the Reconciler's outputs over the table: Stats (Installed, Stale,
// LastReconcile), Status's Op, OnApply's Drift of a repair, OnPass,
// Installed, Check's in-flight watches, and the record of a MAC whose
// write failed after the kernel kept its bridge half.
type fdbOps struct {
	k Kernel
	// devs returns the VNIs and their devices to read.
	devs func() []VNIDevices
	ops  *[]Op // reused by apply, on the loop's goroutine
}

// fdbWant is the engine value that wants e.
func fdbWant(e FDBEntry) Installed {
	return Installed{Dev: e.Dev, VTEP: e.VTEP, SendVNI: e.SendVNI, Self: true, Master: !e.IsFlood(), Sticky: e.Sticky}
}

// fdbEntry is the entry of key k that a wanted value w writes.
func fdbEntry(k Key, w Installed) FDBEntry {
	return FDBEntry{VNI: k.VNI, Dev: w.Dev, MAC: k.MAC, VTEP: w.VTEP, SendVNI: w.SendVNI, Sticky: w.Sticky}
}

func (o fdbOps) dump(ctx context.Context) (map[Key]Installed, error) {
	devs := o.devs()
	dump, err := o.k.Dump(ctx, devs)
	if err != nil {
		return nil, err
	}
	m := make(map[uint32]VNIDevices, len(devs))
	for _, d := range devs {
		m[d.VNI] = d
	}
	have, _, _ := foldKernel(dump, m)
	for k, in := range have {
		in.Stale = false // the engine keeps ownership in its own set
		have[k] = in
	}
	return have, nil
}

// equal reports whether have holds what want writes: Installed.Holds,
// the one definition of "installed" that the Reconciler uses too.
func (fdbOps) equal(want, have Installed) bool {
	return have.holds(want.Dev, want.VTEP, want.SendVNI, !want.Master, want.Sticky)
}

// same compares records, or wanted values, by what the kernel holds
// (not fib's own marks).
func (fdbOps) same(a, b Installed) bool { return a.sameKernel(b) && a.SendVNI == b.SendVNI }

// fdbEvent turns a KernelEvent into the key it is about and a fold of it
// over the record of that key (for table.observedFold), as
// Reconciler.KernelChanged and foldEvent read it; ok is false for an
// event to ignore. dev is the VNI's VXLAN device.
func fdbEvent(ev KernelEvent, dev string) (Key, func(Installed, bool) (Installed, bool), bool) {
	var k Key
	switch {
	case ev.MAC.IsZero():
		if ev.Bridge || !ev.VTEP.IsValid() {
			return Key{}, nil, false
		}
		k = FloodKey(ev.VNI, ev.VTEP.Unmap())
	case ev.MAC.IsUnicast():
		k = MACKey(ev.VNI, ev.MAC)
	default:
		return Key{}, nil, false
	}
	var st kstate
	s := int8(1)
	if ev.Deleted {
		s = -1
	}
	if ev.Bridge {
		st.master = s
		if s == 1 && ev.ExternLearn {
			st.master = 2
		}
	} else {
		st.self, st.vtep = s, ev.VTEP.Unmap()
	}
	return k, func(h Installed, had bool) (Installed, bool) {
		in := foldEvent(k, st, h, had, dev)
		in.Stale = false
		return in, in.Self || in.Master
	}, true
}

func (o fdbOps) apply(ctx context.Context, cs []change[Key, Installed]) []error {
	var ops []Op
	if o.ops != nil {
		ops = slices.Grow((*o.ops)[:0], len(cs))[:len(cs)]
		defer func() { *o.ops = ops[:0] }()
	} else {
		ops = make([]Op, len(cs))
	}
	for i, c := range cs {
		if c.Delete {
			h := c.Value
			ops[i] = Op{Kind: OpDelete, Entry: FDBEntry{VNI: c.Key.VNI, Dev: h.Dev, MAC: c.Key.MAC, VTEP: h.VTEP, SendVNI: h.SendVNI},
				Self: h.Self, Master: h.Master}
			continue
		}
		e := fdbEntry(c.Key, c.Value)
		ops[i] = Op{Kind: OpSet, Entry: e, Self: true, Master: !e.IsFlood(), Unpin: c.HadOld && c.Old.Sticky && !e.Sticky}
	}
	errs := o.k.Apply(ctx, ops)
	for len(errs) < len(ops) {
		errs = append(errs, errors.New("fib: kernel returned no result"))
	}
	return errs
}
