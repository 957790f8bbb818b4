package daemon

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/cmd/evpnd/internal/trace"
	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// Bounds of the per-MAC history that evpnctl trace shows.
const (
	traceEventsPerKey = 32
	traceKeys         = 16384
)

func (d *Daemon) publishPeer(p netip.Addr, up bool, st api.PeerState, now time.Time) {
	if !d.hub.active() {
		return
	}
	k := api.ChangeDown
	if up {
		k = api.ChangeUp
	}
	d.hub.publish(api.Change{Time: now, Kind: k, Peer: &api.PeerChange{Address: p, State: st}})
}

// observe turns one table effect into watch changes and trace events. It
// runs in the loop, for every effect, so it must stay cheap.
func (l *leaf) observe(e *evpn.Effect, now time.Time) {
	d := l.d
	watching := d.hub.active()
	switch e.Kind {
	case evpn.Selected:
		ev := trace.Event{Time: now, Kind: trace.Selected, Local: e.Local, VTEP: e.VTEP, Seq: e.Seq}
		if !e.Local && !e.VTEP.IsValid() {
			ev.Detail = "no location left: every route withdrawn"
		}
		d.trace.Record(e.VNI, e.MAC, ev)
		if (e.PrevLocal || e.PrevVTEP.IsValid()) && (e.Local || e.VTEP.IsValid()) {
			d.metrics.MACMove(e.VNI)
		}
		if !watching {
			return
		}
		row := api.MAC{VNI: e.VNI, MAC: e.MAC, Local: e.Local, VTEP: e.VTEP, Seq: e.Seq, Sticky: e.Sticky}
		if e.Local {
			row.VTEP = d.cfg.VTEPIP
			row.Port = l.ports[evpn.MACKey{VNI: e.VNI, MAC: e.MAC}]
		}
		c := api.Change{Time: now, MAC: &api.MACChange{MAC: row, PreviousLocal: e.PrevLocal, PreviousVTEP: e.PrevVTEP}}
		switch {
		case !e.PrevLocal && !e.PrevVTEP.IsValid():
			c.Kind = api.ChangeAdded
		case !e.Local && !e.VTEP.IsValid():
			c.Kind = api.ChangeRemoved
			if e.PrevLocal {
				row.VTEP = d.cfg.VTEPIP
			} else {
				row.VTEP = e.PrevVTEP
			}
			row.Local = e.PrevLocal
			c.MAC.MAC = row
		default:
			c.Kind = api.ChangeMoved
		}
		d.hub.publish(c)
	case evpn.FIBSetMAC:
		// Recorded when the kernel write happens (fib's OnApply).
	case evpn.FIBAddFlood, evpn.FIBDelFlood:
		if watching {
			k := api.ChangeAdded
			if e.Kind == evpn.FIBDelFlood {
				k = api.ChangeRemoved
			}
			d.hub.publish(api.Change{Time: now, Kind: k, VTEP: &api.VTEPChange{VNI: e.VNI, VTEP: e.VTEP}})
		}
	case evpn.Advertise:
		d.trace.Record(e.VNI, e.MAC, trace.Event{Time: now, Kind: trace.Advertised, Local: true, VTEP: d.cfg.VTEPIP, Seq: e.Seq})
	case evpn.WithdrawLocal:
		d.trace.Record(e.VNI, e.MAC, trace.Event{Time: now, Kind: trace.Withdrawn, Local: true, VTEP: d.cfg.VTEPIP})
	case evpn.DuplicateDetected:
		d.trace.Record(e.VNI, e.MAC, trace.Event{Time: now, Kind: trace.Duplicate, Detail: dupDetail(e, d.cfg.MACMobility.DuplicateWindow, d.cfg.MACMobility.Freeze)})
		d.metrics.DuplicateDetected(e.VNI)
		if watching {
			row := api.MAC{VNI: e.VNI, MAC: e.MAC, Duplicate: true}
			if mi, ok := l.table.Lookup(e.VNI, e.MAC); ok {
				row = l.macRow(mi)
			}
			d.hub.publish(api.Change{Time: now, Kind: api.ChangeDuplicate, MAC: &api.MACChange{MAC: row}})
		}
	case evpn.Rejected:
		if !e.MAC.IsZero() {
			d.trace.Record(e.VNI, e.MAC, trace.Event{Time: now, Kind: trace.Rejected, VTEP: e.VTEP, Seq: e.Seq, Detail: e.Reason})
		}
	}
}

func dupDetail(e *evpn.Effect, window time.Duration, freeze bool) string {
	if e.Reason != "" {
		return fmt.Sprintf("%s: flagged duplicate; %s", e.Reason, dupAction(freeze))
	}
	return fmt.Sprintf("moved %d times within %s: flagged duplicate; %s", e.Moves, window, dupAction(freeze))
}

// dupAction says what happens to a MAC flagged duplicate.
func dupAction(freeze bool) string {
	if freeze {
		return "frozen at its location until the flag is cleared (freeze: true)"
	}
	return "still installed and advertised from wherever it is now (freeze: false)"
}

func portDetail(port string) string {
	if port == "" {
		return ""
	}
	return "port " + port
}

// traceRoute records a received or withdrawn type-2 route, before the
// table sees it.
func (l *leaf) traceRoute(b *speaker.Event, now time.Time) {
	r := b.Route
	if r == nil || r.Type != evpn.RouteTypeMACIP {
		return
	}
	ev := trace.Event{Time: now, Kind: trace.RouteReceived, Peer: b.Peer, VTEP: r.VTEP(), Seq: r.Seq, RD: r.RD, HasRD: true}
	vni, ok := l.table.ImportVNI(r)
	if b.Withdraw {
		ev.Kind, ev.VTEP, ev.Seq = trace.RouteWithdrawn, netip.Addr{}, 0
		vni, ok = l.table.RouteVNI(r.Key)
	}
	if b.Stale {
		ev.Detail = "stale (peer restarting)"
	}
	if !ok {
		vni = 0 // not imported: kept under VNI 0, shown by a trace without vni
	}
	l.d.trace.Record(vni, r.MAC, ev)
}

// onApply records fib's kernel writes of MAC entries in the trace, and
// counts its repairs of drift (fib logs them). It runs in the reconciler's
// goroutine.
func (d *Daemon) onApply(e fib.ApplyEvent) {
	if e.IsRepair() && e.Err == nil {
		d.metrics.DriftRepaired(e.Repair.Table, e.Repair.Kind.String())
	}
	if e.Key.IsFlood() {
		return
	}
	ev := trace.Event{Time: e.Time, Kind: trace.KernelWritten, VTEP: e.VTEP}
	switch {
	case e.Err != nil:
		ev.Kind, ev.Detail = trace.KernelError, e.Err.Error()
	case e.Delete:
		ev.Kind = trace.KernelRemoved
	}
	if e.IsRepair() {
		ev.Detail = repairDetail(e.Repair, ev.Detail)
	}
	d.trace.Record(e.Key.VNI, e.Key.MAC, ev)
}

// onL3Apply records fib's kernel writes of a VRF's neighbours, router
// MACs and routes in the trace (under the MACs fib names), and counts
// its repairs of drift (fib logs them). It runs in the VRF reconciler's
// goroutine.
func (d *Daemon) onL3Apply(e fib.L3ApplyEvent) {
	if e.Repair && e.Err == nil {
		d.metrics.DriftRepaired(e.Table(), e.DriftKind())
	}
	ev := trace.Event{Time: e.Time, Kind: trace.KernelWritten, VTEP: e.VTEP(), Detail: e.Op.String(e.Dev)}
	switch {
	case e.Err != nil:
		ev.Kind, ev.Detail = trace.KernelError, e.Err.Error()
	case e.Op.Kind.Removes():
		ev.Kind = trace.KernelRemoved
	}
	if e.Repair {
		ev.Detail = "repair of a change made behind evpnd's back: " + ev.Detail
	}
	for _, k := range e.TraceKeys() {
		d.trace.Record(k.VNI, k.MAC, ev)
	}
}

// repairDetail is the trace detail of a kernel operation that repairs
// drift made behind evpnd's back: what was found, and the fix.
func repairDetail(r fib.Drift, errText string) string {
	s := fmt.Sprintf("repair of a change made behind evpnd's back: %s; %s", r, r.Detail)
	if errText != "" {
		s += ": " + errText
	}
	return s
}

// publishVNIsRemoved tells watchers that every MAC of the VNIs being deleted
// is gone (the table drops them without Selected effects).
func (l *leaf) publishVNIsRemoved(vnis map[uint32]bool, now time.Time) {
	if !l.d.hub.active() {
		return
	}
	l.table.MACs(func(mi evpn.MACInfo) bool {
		if vnis[mi.VNI] && (mi.Local || mi.VTEP.IsValid()) {
			l.d.hub.publish(api.Change{Time: now, Kind: api.ChangeRemoved, MAC: &api.MACChange{MAC: l.macRow(mi)}})
		}
		return true
	})
}
