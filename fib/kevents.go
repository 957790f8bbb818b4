package fib

import (
	"net/netip"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// KernelEvent is a change of the FDB of a managed VXLAN device that fib
// did not make, or may not have made, as vtep's Learner reports it
// (Learner.OnForeignVXLAN): someone ran `bridge fdb add/del/replace` on
// the device, or the kernel flushed entries.
type KernelEvent struct {
	VNI uint32
	MAC evpn.MAC // zero: a flood-list entry
	// VTEP is the VXLAN entry's remote (NDA_DST); unset for a bridge
	// entry. A flood event without it is ignored.
	VTEP netip.Addr
	// Bridge says the event is about the bridge's (master) entry for the
	// MAC on the VXLAN port, not the VXLAN device's own (self) entry.
	// A bridge entry reported present is taken to lack extern_learn:
	// the learner reports only changes fib does not make itself.
	Bridge  bool
	Deleted bool // RTM_DELNEIGH
	// ExternLearn says a present entry carries extern_learn
	// (NTF_EXT_LEARNED), fib's marker. Such an event may be fib's own
	// write coming back (notifications carry no sender): it then matches
	// fib's record and costs nothing. Another program's extern_learn
	// entry does not match, and is repaired like any other change.
	ExternLearn bool
}

// maxKernelEvents bounds the keys waiting to be folded. Beyond it the
// events are dropped and the reconciler reads the kernel again (Resync),
// as after an event socket overrun.
const maxKernelEvents = 1 << 18

// kstate is what the events about one key say, the last one winning per
// entry: each event states an entry's whole new state (unicast VXLAN
// entries have one remote; a replace emits no delete), so folding only
// the last one per entry gives the same result as folding all in order.
type kstate struct {
	self   int8 // 0 no news, 1 present (with vtep), -1 deleted (vtep: the remote deleted)
	master int8 // 0 no news, 1 present without extern_learn, 2 present with it, -1 deleted
	vtep   netip.Addr
}

// KernelChanged feeds a change of a managed VXLAN device's FDB to the
// reconciler, which then repairs it within one pass, rather than at the
// next resync:
//
//   - a wanted entry that was deleted or changed is written again;
//   - an entry that is not wanted (the MAC, or the flood VTEP) is
//     deleted, once MarkSynced allows deleting entries fib did not write
//     in this run (before that it is kept, like every entry found in
//     the kernel);
//   - a change that leaves what fib knows of the kernel as it was does
//     nothing. fib's own writes come back as such events (marked
//     ExternLearn, they match the record), and its own deletes remove
//     entries fib has already forgotten: so repairs cannot feed each
//     other in a loop. A report that arrives after fib has already
//     changed what it reports (say, the second half of a MAC deleted
//     with two commands, or fib's own write of a VTEP it has replaced
//     since) costs one more idempotent write or delete of that key, no
//     more, counted as a repair.
//
// The operation that follows a report is a repair: it is logged (at most
// maxRepairLogs lines a batch, then a count), counted in Stats.Repairs
// and passed to Config.OnApply in ApplyEvent.Repair.
//
// It is as cheap as Desired.SetMAC, never blocks and does no IO: call it
// from the learner's callback. Events about a VNI without devices, a
// multicast MAC, or a flood entry without a VTEP are ignored. A key that
// gets many events before the reconciler looks is handled once.
func (r *Reconciler) KernelChanged(ev KernelEvent) {
	var k Key
	switch {
	case ev.MAC.IsZero():
		if ev.Bridge || !ev.VTEP.IsValid() {
			return
		}
		k = FloodKey(ev.VNI, ev.VTEP.Unmap())
	case ev.MAC.IsUnicast():
		k = MACKey(ev.VNI, ev.MAC)
	default:
		return
	}
	st := int8(1)
	if ev.Deleted {
		st = -1
	}
	r.kevMu.Lock()
	if r.kev == nil {
		r.kev = make(map[Key]kstate)
	}
	if len(r.kev) >= maxKernelEvents {
		clear(r.kev)
		r.kevMu.Unlock()
		r.log.Warn("fib: too many kernel FDB changes queued; reading the kernel again instead", "limit", maxKernelEvents)
		r.Resync()
		return
	}
	cur := r.kev[k]
	if ev.Bridge {
		cur.master = st
		if st == 1 && ev.ExternLearn {
			cur.master = 2
		}
	} else {
		cur.self, cur.vtep = st, ev.VTEP.Unmap()
	}
	r.kev[k] = cur
	r.kevMu.Unlock()
	r.poke()
}

// takeKernelEvents returns the queued events and empties the queue.
func (r *Reconciler) takeKernelEvents() map[Key]kstate {
	r.kevMu.Lock()
	defer r.kevMu.Unlock()
	if len(r.kev) == 0 {
		return nil
	}
	m := r.kev
	r.kev = nil
	return m
}

// kernelEventsPending reports which of keys have queued events.
func (r *Reconciler) kernelEventsPending(keys map[Key]bool) {
	r.kevMu.Lock()
	defer r.kevMu.Unlock()
	for k := range r.kev {
		keys[k] = true
	}
}

// echoWindow is how long after one of fib's own operations on a key a
// report may still be the echo of an earlier one: the learner delivers
// notifications within milliseconds, a loaded machine within tens.
const echoWindow = 250 * time.Millisecond

// echoHold is how long a report that would undo fib's latest operation on
// a key, and so may be the late echo of the operation before, waits for
// the echo of the latest one to arrive and confirm fib's record; if none
// does, it is taken as drift and repaired. It bounds the extra delay of a
// real change that happens to restore, within echoWindow, exactly what
// fib had just replaced.
const echoHold = 25 * time.Millisecond

// recentOp is fib's record of a key before its latest operation on it.
type recentOp struct {
	before Installed
	had    bool
	at     time.Time
}

type keyAt struct {
	k  Key
	at time.Time
}

// heldFold is a folded report held back as a possible late echo: the
// record it would give (in, have) and the record it was folded on.
type heldFold struct {
	in, rec   Installed
	have, had bool
	at        time.Time
}

// noteOp remembers the record of k before an operation applied at now,
// for echoWindow.
func (r *Reconciler) noteOp(k Key, before Installed, had bool, now time.Time) {
	if r.recent == nil {
		r.recent = make(map[Key]recentOp)
	}
	r.recent[k] = recentOp{before: before, had: had, at: now}
	r.recentQ = append(r.recentQ, keyAt{k: k, at: now})
}

// pruneRecent forgets the operations older than echoWindow.
func (r *Reconciler) pruneRecent(now time.Time) {
	i := 0
	for ; i < len(r.recentQ) && now.Sub(r.recentQ[i].at) >= echoWindow; i++ {
		ka := r.recentQ[i]
		if ro, ok := r.recent[ka.k]; ok && ro.at.Equal(ka.at) {
			delete(r.recent, ka.k)
		}
	}
	switch {
	case i == len(r.recentQ):
		r.recentQ = r.recentQ[:0]
	case i > 0:
		r.recentQ = append(r.recentQ[:0], r.recentQ[i:]...)
	}
}

// foldKernelEvents applies the queued events to the record of what the
// kernel holds and queues the keys whose record changed. It runs on Run's
// goroutine, after the first kernel read.
//
// A report that would put back the record fib had before its latest
// operation on the key, within echoWindow of it, is most likely the late
// echo of fib's previous operation (a move A→B whose A write is reported
// after B was applied; a delete and re-add). It is held for echoHold: the
// echo of the latest operation, arriving meanwhile, confirms the record
// and drops it; otherwise it is applied then (expireHeld) and repaired.
func (r *Reconciler) foldKernelEvents(now time.Time) {
	r.pruneRecent(now)
	evs := r.takeKernelEvents()
	if evs == nil {
		return
	}
	var keys []Key
	for k, st := range evs {
		dev, ok := r.devs[k.VNI]
		if !ok {
			continue
		}
		before, had := r.installed[k]
		in := foldEvent(k, st, before, had, dev.VXLAN)
		have := in.Self || in.Master
		if !had && !have || had && have && before == in {
			delete(r.held, k) // confirmed: nothing fib knows of changed (say, its own delete)
			continue
		}
		if ro, ok := r.recent[k]; ok && ro.had == have && (!have || in.sameKernel(ro.before)) {
			if r.held == nil {
				r.held = make(map[Key]heldFold)
			}
			r.held[k] = heldFold{in: in, rec: before, have: have, had: had, at: now}
			continue
		}
		delete(r.held, k)
		r.setFolded(k, before, had, in, have)
		keys = append(keys, k)
	}
	if len(keys) > 0 {
		r.log.Debug("fib: kernel FDB changed behind fib's back; repairing", "keys", len(keys))
		r.d.markDirty(keys...)
	}
}

// setFolded replaces the record of k (before, had) by a folded report
// (in, have) and notes the repair.
func (r *Reconciler) setFolded(k Key, before Installed, had bool, in Installed, have bool) {
	switch {
	case have:
		r.installed[k] = in
	case had:
		delete(r.installed, k)
	}
	if had && before.Stale {
		r.stale--
	}
	if have && in.Stale {
		r.stale++
	}
	r.noteRepair(k)
}

// expireHeld applies the held reports older than echoHold whose key fib
// has not touched since, and returns when the next one is due (zero if
// none is held).
func (r *Reconciler) expireHeld(now time.Time) time.Time {
	var next time.Time
	var keys []Key
	for k, h := range r.held {
		if due := h.at.Add(echoHold); now.Before(due) {
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		delete(r.held, k)
		cur, had := r.installed[k]
		if had != h.had || had && cur != h.rec {
			continue // fib has written or deleted it since: outdated
		}
		r.setFolded(k, h.rec, h.had, h.in, h.have)
		keys = append(keys, k)
	}
	if len(keys) > 0 {
		r.log.Debug("fib: kernel FDB changed behind fib's back (held as a possible echo); repairing", "keys", len(keys))
		r.d.markDirty(keys...)
	}
	return next
}

// noteRepair records that k changed behind fib's back: the operation the
// next pass applies to it, if any, is a repair (ApplyEvent.Repair).
func (r *Reconciler) noteRepair(k Key) {
	if r.repairs == nil {
		r.repairs = make(map[Key]struct{})
	}
	r.repairs[k] = struct{}{}
}

// sameKernel reports whether two records describe the same kernel
// entries, whatever fib's own marks (Stale, suspect).
func (in Installed) sameKernel(o Installed) bool {
	return in.Dev == o.Dev && in.VTEP == o.VTEP && in.Self == o.Self && in.Master == o.Master &&
		in.Multi == o.Multi && in.Unmarked == o.Unmarked && in.Sticky == o.Sticky && in.Access == o.Access
}

// repairDrift says what an operation on a key that changed behind fib's
// back repairs, in Diff's terms: w is what is wanted, have what fib knew
// of the kernel before op.
func repairDrift(w want, have Installed, haveOK bool, op Op, dev string) Drift {
	d := Drift{VNI: w.Key.VNI, MAC: w.Key.MAC, Device: dev, Detail: op.String()}
	if op.Kind == OpDelete {
		d.Kind, d.Have = DriftExtra, have.VTEP
		switch {
		case w.Key.IsFlood():
			d.Table, d.Have = TableFlood, w.Key.VTEP
		case have.Self:
			d.Table = TableMAC
		default:
			d.Table = TableBridge
		}
		return d
	}
	d.Want = w.Entry.VTEP
	switch {
	case w.Key.IsFlood():
		d.Kind, d.Table = DriftMissing, TableFlood
	case !haveOK || !have.Self && !have.Master:
		d.Kind, d.Table = DriftMissing, TableMAC
	case !have.Self:
		d.Kind, d.Table = DriftWrong, TableMAC
		d.Detail += " (the VXLAN entry was missing)"
	case have.Multi || have.VTEP != w.Entry.VTEP:
		d.Kind, d.Table, d.Have = DriftWrong, TableMAC, have.VTEP
	case !have.Master:
		d.Kind, d.Table = DriftWrong, TableBridge
		d.Detail += " (the bridge entry was missing)"
	case have.Unmarked:
		d.Kind, d.Table = DriftWrong, TableBridge
		d.Detail += " (the bridge entry was not marked extern_learn)"
	default:
		d.Kind, d.Table = DriftWrong, TableBridge
		d.Detail += " (the bridge entry's sticky flag was wrong)"
	}
	return d
}

// foldEvent returns the record of k after the events st. An entry fib
// had no record of is Stale: found, not written by this run.
func foldEvent(k Key, st kstate, in Installed, had bool, dev string) Installed {
	if !had {
		in = Installed{Dev: dev, Stale: true}
	}
	if k.IsFlood() {
		switch st.self {
		case 1:
			in.Self, in.VTEP = true, k.VTEP
		case -1:
			in.Self, in.VTEP = false, netip.Addr{}
		}
		return in
	}
	switch st.self {
	case 1:
		in.Self, in.VTEP, in.Multi = true, st.vtep, false
	case -1:
		// Only the delete of the remote fib knows (or of any remote
		// when it knows several) removes the entry.
		if in.Multi || in.VTEP == st.vtep || !st.vtep.IsValid() {
			in.Self, in.VTEP, in.Multi = false, netip.Addr{}, false
		}
	}
	switch st.master {
	case 1:
		in.Master, in.Unmarked, in.Access = true, true, false
	case 2:
		in.Master, in.Unmarked, in.Access = true, false, false
	case -1:
		in.Master, in.Unmarked, in.Sticky = false, false, false
	}
	return in
}
