package daemon

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/evpnd/evpnd/vtep"
)

// MACs implements api.Backend. The rows (with each local MAC's port) are
// copied out of the loop in one call and sorted; InKernel then comes from
// fib's record of the kernel, or, with VerifyKernel, from reading the
// kernel's FDB (seconds at 100k entries); then the rows are streamed.
func (d *Daemon) MACs(ctx context.Context, f api.MACFilter, fn func(api.MAC) error) error {
	l, err := d.leafOrErr()
	if err != nil {
		if errors.Is(err, api.ErrNotLeaf) {
			return nil
		}
		return err
	}
	var rows []api.MAC
	wants := map[fib.Key]fib.FDBEntry{} // what fib installs for each remote row
	var devs []fib.VNIDevices
	vnis := map[string][]vtep.L2VNI{} // by namespace ("" the underlay's)
	local := d.config().VTEPIP
	err = l.read(ctx, func() {
		add := func(mi evpn.MACInfo) {
			if !macMatches(mi, f) {
				return
			}
			r := api.MAC{VNI: mi.VNI, MAC: mi.MAC, Local: mi.Local, VTEP: mi.VTEP, Seq: mi.Seq,
				Sticky: mi.Sticky, Duplicate: mi.Duplicate, Others: mi.Others}
			if mi.Local {
				r.VTEP = local
				r.Port = l.ports[evpn.MACKey{VNI: mi.VNI, MAC: mi.MAC}]
			} else if w, ok := l.desired.WantMAC(mi.VNI, mi.MAC); ok {
				wants[fib.MACKey(mi.VNI, mi.MAC)] = w
			}
			rows = append(rows, r)
		}
		if f.VNI != 0 && f.MAC != nil {
			if mi, ok := l.table.Lookup(f.VNI, *f.MAC); ok {
				add(mi)
			}
		} else {
			l.table.MACs(func(mi evpn.MACInfo) bool { add(mi); return true })
		}
		if !f.VerifyKernel {
			return
		}
		for _, v := range l.desired.VNIs() {
			if f.VNI == 0 || v.VNI == f.VNI {
				devs = append(devs, v)
			}
		}
		c := l.d.cfg
		for _, v := range c.L2VNIs {
			if f.VNI == 0 || v.VNI == f.VNI {
				ns := vniNamespace(c, v.VNI)
				vnis[ns] = append(vnis[ns], l.d.vtepVNI(c, v))
			}
		}
	})
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	slices.SortFunc(rows, func(a, b api.MAC) int {
		if c := cmp.Compare(a.VNI, b.VNI); c != 0 {
			return c
		}
		return bytes.Compare(a.MAC[:], b.MAC[:])
	})
	if f.VerifyKernel {
		d.verifyKernel(ctx, l, rows, wants, devs, vnis, f.Source)
	} else {
		// A remote MAC is in the kernel when fib's record of it holds
		// what fib installs for it; a local one is in the table only
		// while the bridge holds it (the learner follows the bridge's
		// FDB events).
		err := l.rec.Installed(ctx, func(inst map[fib.Key]fib.Installed) {
			markInKernel(rows, wants, inst)
			for i := range rows {
				if rows[i].Local {
					rows[i].InKernel = true
				}
			}
		})
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			return fmt.Errorf("%w (%v)", errStopped, err) // fib not running yet, or any more
		}
	}
	for i := range rows {
		if err := fn(rows[i]); err != nil {
			return err
		}
	}
	return nil
}

// markInKernel sets InKernel on the remote rows: true when the kernel
// entries inst records for the MAC hold what fib installs for it (wants),
// by fib's one definition (fib.Installed.Holds). inst is fib's record, or
// a fresh kernel read folded by fib.InstalledFrom: both answer alike.
func markInKernel(rows []api.MAC, wants map[fib.Key]fib.FDBEntry, inst map[fib.Key]fib.Installed) {
	for i := range rows {
		r := &rows[i]
		if r.Local {
			continue
		}
		k := fib.MACKey(r.VNI, r.MAC)
		w, ok := wants[k]
		in, have := inst[k]
		r.InKernel = ok && have && in.Holds(w)
	}
}

// verifyKernel fills InKernel (and local ports) from a fresh kernel read:
// remote entries on the VXLAN devices, local MACs in the bridges. A failed
// read leaves InKernel false, with a log.
func (d *Daemon) verifyKernel(ctx context.Context, l *leaf, rows []api.MAC, wants map[fib.Key]fib.FDBEntry, devs []fib.VNIDevices, vnis map[string][]vtep.L2VNI, src api.MACSource) {
	var remote map[fib.Key]fib.Installed
	if src != api.MACLocal {
		if entries, err := l.kern.Dump(ctx, devs); err != nil {
			d.log.Warn("read kernel FDB for the MAC list", "err", err)
		} else {
			remote = fib.InstalledFrom(entries)
		}
	}
	markInKernel(rows, wants, remote)
	locals := map[vtep.MACKey]vtep.LocalMAC{}
	if src != api.MACRemote {
		// Each namespace's bridges (a netns tenant's members are in its
		// own).
		for ns, vs := range vnis {
			m, err := vtep.LocalMACs(ctx, ns, vs)
			if err != nil {
				d.log.Warn("read bridge FDB for the MAC list", "namespace", ns, "err", err)
			}
			maps.Copy(locals, m)
		}
	}
	for i := range rows {
		r := &rows[i]
		if r.Local {
			m, ok := locals[vtep.MACKey{VNI: r.VNI, MAC: r.MAC}]
			r.InKernel = ok
			if ok {
				r.Port = m.Port
			}
		}
	}
}

func macMatches(mi evpn.MACInfo, f api.MACFilter) bool {
	if f.VNI != 0 && mi.VNI != f.VNI {
		return false
	}
	if f.MAC != nil && mi.MAC != *f.MAC {
		return false
	}
	if f.DuplicatesOnly && !mi.Duplicate {
		return false
	}
	switch f.Source {
	case api.MACLocal:
		return mi.Local
	case api.MACRemote:
		return !mi.Local && mi.VTEP.IsValid()
	}
	return mi.Local || mi.VTEP.IsValid() || mi.Duplicate
}

// ClearDuplicate implements api.Backend.
func (d *Daemon) ClearDuplicate(ctx context.Context, vni uint32, mac *evpn.MAC) (int, error) {
	l, err := d.leafOrErr()
	if err != nil {
		return 0, err
	}
	if !d.hasVNI(vni) {
		return 0, fmt.Errorf("vni %d is not configured: %w", vni, api.ErrNotFound)
	}
	n := 0
	err = l.do(ctx, func(now time.Time) []evpn.Effect {
		var eff []evpn.Effect
		for _, mi := range l.table.Duplicates() {
			if mi.VNI != vni || (mac != nil && mi.MAC != *mac) {
				continue
			}
			n++
			l.d.log.Info("duplicate flag cleared by the API", "vni", vni, "mac", mi.MAC)
			eff = append(eff, l.table.ClearDuplicate(vni, mi.MAC, now)...)
		}
		return eff
	})
	return n, err
}
