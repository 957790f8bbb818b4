package fib

import (
	"bytes"
	"fmt"
	"net/netip"
	"sort"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// FDBEntry is one remote entry fib wants in the kernel.
//
// A unicast MAC becomes ONE RTM_NEWNEIGH (family AF_BRIDGE) on the VXLAN
// device with NTF_SELF|NTF_MASTER|NTF_EXT_LEARNED and NDA_DST = VTEP, the
// message zebra sends. The kernel applies it to the bridge (master: forward
// the MAC to the VXLAN port) and then to the VXLAN device (self: tunnel it
// to VTEP), like
//
//	bridge fdb replace MAC dev vxlanV dst VTEP self extern_learn
//	bridge fdb replace MAC dev vxlanV master extern_learn
//
// A sticky MAC takes a second message that pins the bridge entry, as
// zebra pins a remote sticky MAC (NTF_STICKY; the bridge ignores the flag
// in a message with NTF_EXT_LEARNED, so it goes alone, and the entry
// keeps its extern_learn mark):
//
//	bridge fdb replace MAC dev vxlanV master sticky static
//
// A zero MAC is a flood-list (ingress replication) entry, appended:
//
//	bridge fdb append 00:00:00:00:00:00 dev vxlanV dst VTEP self
//
// A MAC whose remote VTEP expects another VNI in the VXLAN header (a
// downstream-assigned VNI, RFC 8365 §5.1.2) has SendVNI set; the message then
// carries NDA_VNI, like "bridge fdb replace ... vni N".
type FDBEntry struct {
	VNI  uint32
	Dev  string   // the VNI's VXLAN device
	MAC  evpn.MAC // zero for a flood-list entry
	VTEP netip.Addr
	// SendVNI is the VNI to send with when it is not VNI; 0 means VNI.
	SendVNI uint32
	// Sticky pins the MAC's bridge entry to the VXLAN port (a remote
	// sticky or static MAC, RFC 7432 §15.2). MACs only.
	Sticky bool
}

// IsFlood reports whether e is a flood-list entry.
func (e FDBEntry) IsFlood() bool { return e.MAC.IsZero() }

// Key returns the key of e.
func (e FDBEntry) Key() Key {
	if e.IsFlood() {
		return FloodKey(e.VNI, e.VTEP)
	}
	return MACKey(e.VNI, e.MAC)
}

// DesiredEntries computes every kernel entry wanted by a snapshot, sorted by
// VNI, then flood entries before MACs. MACs and flood VTEPs of a VNI without
// devices are not installed.
func DesiredEntries(s Snapshot) []FDBEntry {
	out := make([]FDBEntry, 0, len(s.MACs)+len(s.Floods))
	for k, vtep := range s.MACs {
		if dev, ok := s.VNIs[k.VNI]; ok {
			_, sticky := s.Sticky[k]
			out = append(out, FDBEntry{VNI: k.VNI, Dev: dev.VXLAN, MAC: k.MAC, VTEP: vtep, Sticky: sticky, SendVNI: s.SendVNIs[k]})
		}
	}
	for k := range s.Floods {
		if dev, ok := s.VNIs[k.VNI]; ok {
			out = append(out, FDBEntry{VNI: k.VNI, Dev: dev.VXLAN, VTEP: k.VTEP})
		}
	}
	sortEntries(out)
	return out
}

func sortEntries(es []FDBEntry) {
	sort.Slice(es, func(i, j int) bool { return keyLess(es[i].Key(), es[j].Key()) })
}

func keyLess(a, b Key) bool {
	if a.VNI != b.VNI {
		return a.VNI < b.VNI
	}
	if c := bytes.Compare(a.MAC[:], b.MAC[:]); c != 0 {
		return c < 0
	}
	return a.VTEP.Less(b.VTEP)
}

// KernelEntry is one bridge-family FDB entry read from the kernel on a
// managed VXLAN device: either the VXLAN device's own entry (Self, with the
// remote VTEP) or the bridge's entry that forwards the MAC to the VXLAN port.
// A VXLAN entry with several remotes is listed once per remote.
//
// Kernel.Dump also returns one entry with Device set (and only VNI and Dev
// besides) for every VXLAN device that exists, so that a device without
// entries can be told from a missing one.
type KernelEntry struct {
	VNI         uint32
	Dev         string
	MAC         evpn.MAC
	VTEP        netip.Addr // Self entries only
	SendVNI     uint32     // Self entries only: NDA_VNI when it is not VNI, else 0
	Self        bool       // NTF_SELF: VXLAN FDB; otherwise NTF_MASTER: bridge FDB
	ExternLearn bool       // NTF_EXT_LEARNED, evpnd's (and zebra's) marker
	Sticky      bool       // NTF_STICKY on a bridge entry: pinned to its port
	// Local is set for a bridge entry the kernel holds as local
	// (NUD_PERMANENT): the port's own address, or one added as
	// "permanent". Frames to it are delivered to the host; fib never
	// writes, owns or deletes such entries.
	Local bool
	// Device marks the entry that says Dev exists; it describes no FDB
	// entry.
	Device bool
	// Access marks a bridge entry of the MAC on another port of the VNI's
	// bridge (an access port), learned there: neither extern_learn nor
	// local. Dev is still the VNI's VXLAN device; the entry is not fib's.
	Access bool
}

// Installed is what the kernel holds for one key on a managed VXLAN
// device, as fib sees it.
type Installed struct {
	Dev  string
	VTEP netip.Addr // the VXLAN entry's remote; invalid when Multi
	// SendVNI is the VXLAN entry's remote VNI when it is not the device's.
	SendVNI uint32
	Self    bool // the VXLAN entry exists
	Master  bool // the bridge entry on the VXLAN port exists (MACs only, never a local one)
	Multi   bool // the VXLAN entry has several remotes (a MAC should have one)
	Sticky  bool // the bridge entry is sticky (pinned to the VXLAN port)
	// Unmarked is set when the bridge entry lacks extern_learn: written by
	// an operator or another program. A wanted MAC's entry is written
	// again (the bridge then marks it); an unwanted one is deleted like
	// any other once pruning is allowed.
	Unmarked bool
	// Access is set when a kernel read found the MAC's bridge entry on an
	// access port of the VNI's bridge, learned (KernelEntry.Access): the
	// host is moving here. A wanted remote MAC in that state is not
	// written over (planKey): the learner's report of the local MAC
	// decides, by MAC mobility, and its Invalidate makes fib write the
	// MAC again if it stays remote.
	Access bool
	// Stale is set for entries found in the kernel that this run has not
	// (yet) wanted: left by an earlier run, or added behind fib's back.
	// They are deleted only after MarkSynced.
	Stale bool
	// suspect is set by the reconciler when the key was invalidated
	// (Desired.Invalidate): the kernel may have changed the entry since
	// (local learning moves the bridge entry to an access port), so it
	// matches nothing and a wanted entry is written again. A successful
	// write or delete, or a kernel read, replaces the record.
	suspect bool
}

// Holds reports whether the kernel holds exactly e, as fib writes it, by
// the record in (fib's own, or a kernel read folded by InstalledFrom). It
// is the one definition of "installed in the kernel": the reconciler
// writes an entry until it holds, and `show evpn mac` (with or without
// verify) reports a remote MAC in the kernel when it holds. A suspect
// record holds nothing. The VXLAN entry's extern_learn flag is not
// required: the kernel never sets it on an entry that was once written
// without it (an entry "added by the user" cannot be taken over by an
// externally learned one, vxlan_core.c), so demanding it would rewrite
// such an entry forever. The bridge entry must carry it: a rewrite sets
// it there.
func (in Installed) Holds(e FDBEntry) bool {
	return in.holds(e.Dev, e.VTEP, e.SendVNI, e.IsFlood(), e.Sticky)
}

// holds is Holds of an entry on dev to vtep (and sendVNI), a flood one
// or a MAC's (sticky or not).
func (in Installed) holds(dev string, vtep netip.Addr, sendVNI uint32, flood, sticky bool) bool {
	if in.suspect || in.Dev != dev || !in.Self || in.Multi || in.VTEP != vtep || in.SendVNI != sendVNI {
		return false
	}
	return flood || (in.Master && !in.Unmarked && in.Sticky == sticky)
}

// InstalledFrom folds a kernel dump into the entries fib manages on the
// VXLAN devices: every unicast MAC's VXLAN entry (with its remote) and
// bridge entry on the VXLAN port, marked extern_learn or not, and every
// zero-MAC (flood-list) entry. It skips local (permanent) bridge entries,
// multicast MACs and the Device markers. Every result is Stale.
func InstalledFrom(dump []KernelEntry) map[Key]Installed {
	out, _, _ := foldKernel(dump, nil)
	return out
}

// foldKernel is InstalledFrom restricted to the VXLAN devices of vnis (all
// entries when vnis is nil). It also returns the VNIs whose device exists
// and the MACs held by a local bridge entry on the VXLAN port.
func foldKernel(dump []KernelEntry, vnis map[uint32]VNIDevices) (map[Key]Installed, map[uint32]bool, map[Key]bool) {
	out := make(map[Key]Installed, len(dump)/2+1)
	present := make(map[uint32]bool)
	var local, access map[Key]bool
	for _, e := range dump {
		if vnis != nil {
			if d, ok := vnis[e.VNI]; !ok || d.VXLAN != e.Dev {
				continue
			}
		}
		switch {
		case e.Access:
			if e.MAC.IsUnicast() && !e.Self {
				if access == nil {
					access = make(map[Key]bool)
				}
				access[MACKey(e.VNI, e.MAC)] = true
			}
			continue
		case e.Device:
			present[e.VNI] = true
			continue
		case e.MAC.IsZero():
			if e.Self && e.VTEP.IsValid() {
				out[FloodKey(e.VNI, e.VTEP)] = Installed{Dev: e.Dev, VTEP: e.VTEP, Self: true, Stale: true}
			}
			continue
		case !e.MAC.IsUnicast():
			continue
		case !e.Self && e.Local:
			if local == nil {
				local = make(map[Key]bool)
			}
			local[MACKey(e.VNI, e.MAC)] = true
			continue
		}
		k := MACKey(e.VNI, e.MAC)
		in := out[k]
		in.Dev, in.Stale = e.Dev, true
		if e.Self {
			if in.Self && in.VTEP != e.VTEP {
				in.Multi, in.VTEP = true, netip.Addr{}
			} else if !in.Multi {
				in.VTEP = e.VTEP
				in.SendVNI = vniOverride(e.SendVNI, e.VNI)
			}
			in.Self = true
		} else {
			in.Master, in.Unmarked, in.Sticky = true, !e.ExternLearn, e.Sticky
		}
		out[k] = in
	}
	for k := range access {
		// Only of MACs fib has entries for: a local MAC is not fib's.
		if in, ok := out[k]; ok && !in.Master {
			in.Access = true
			out[k] = in
		}
	}
	return out, present, local
}

// vniOverride is the SendVNI of an entry whose remote VNI is v on a device
// of VNI dev: 0 when they are the same.
func vniOverride(v, dev uint32) uint32 {
	if v == dev {
		return 0
	}
	return v
}

// OpKind is what an Op does.
type OpKind uint8

const (
	// OpSet writes an entry: replace for a MAC (one message, self and
	// master), append for a flood entry.
	OpSet OpKind = iota + 1
	// OpDelete removes an entry fib owns. A missing entry is success.
	OpDelete
)

// Op is one change to the kernel. For OpDelete, Entry.VTEP is the remote to
// remove (invalid: the whole VXLAN entry), Self and Master say which of the
// MAC's two entries to remove.
type Op struct {
	Kind   OpKind
	Entry  FDBEntry
	Self   bool
	Master bool
	// Unpin (OpSet of a movable MAC): the bridge entry is sticky and must
	// be made movable again, which takes a message of its own.
	Unpin bool
}

// String renders op as the iproute2 command(s) it stands for.
func (op Op) String() string {
	e := op.Entry
	mac := e.MAC.String()
	dst := ""
	if e.VTEP.IsValid() {
		dst = " dst " + e.VTEP.String()
	}
	if e.SendVNI != 0 {
		dst += fmt.Sprintf(" vni %d", e.SendVNI)
	}
	switch {
	case op.Kind == OpSet && e.IsFlood():
		return fmt.Sprintf("bridge fdb append %s dev %s%s self extern_learn", mac, e.Dev, dst)
	case op.Kind == OpSet && e.Sticky:
		return fmt.Sprintf("bridge fdb replace %s dev %s%s self master extern_learn; bridge fdb replace %s dev %s master sticky static",
			mac, e.Dev, dst, mac, e.Dev)
	case op.Kind == OpSet && op.Unpin:
		return fmt.Sprintf("bridge fdb replace %s dev %s%s self master extern_learn; bridge fdb replace %s dev %s master dynamic",
			mac, e.Dev, dst, mac, e.Dev)
	case op.Kind == OpSet:
		return fmt.Sprintf("bridge fdb replace %s dev %s%s self master extern_learn", mac, e.Dev, dst)
	case op.Kind == OpDelete:
		s := ""
		if op.Master {
			s = fmt.Sprintf("bridge fdb del %s dev %s master", mac, e.Dev)
		}
		if op.Self {
			if s != "" {
				s += "; "
			}
			s += fmt.Sprintf("bridge fdb del %s dev %s%s self", mac, e.Dev, dst)
		}
		return s
	}
	return fmt.Sprintf("op(%d) %s", op.Kind, mac)
}

// planKey decides what to do for one key: w is what is wanted, have/haveOK
// what the kernel holds. Entries not wanted are deleted unless they are
// stale and prune is false (before MarkSynced).
func planKey(w want, have Installed, haveOK, prune bool) (Op, bool) {
	if w.OK {
		if haveOK && (have.Holds(w.Entry) || have.Access && !have.suspect) {
			// Access: a local move in progress, not drift (see
			// Installed.Access); Invalidate ends it.
			return Op{}, false
		}
		return Op{Kind: OpSet, Entry: w.Entry, Self: true, Master: !w.Entry.IsFlood(),
			Unpin: haveOK && have.Sticky && !w.Entry.Sticky}, true
	}
	if !haveOK || (have.Stale && !prune) {
		return Op{}, false
	}
	e := FDBEntry{VNI: w.Key.VNI, Dev: have.Dev, MAC: w.Key.MAC, VTEP: have.VTEP, SendVNI: have.SendVNI}
	return Op{Kind: OpDelete, Entry: e, Self: have.Self, Master: have.Master}, true
}

// Plan is the full plan that turns have into want: writes for missing or
// different entries, deletes for entries no longer wanted (stale ones only
// when prune). The reconciler computes the same per dirty key; Plan serves
// tests and tools. The result is sorted by key. Diff reports the same
// differences as drift.
func Plan(wantEntries []FDBEntry, have map[Key]Installed, prune bool) []Op {
	wanted := make(map[Key]struct{}, len(wantEntries))
	var ops []Op
	for _, e := range wantEntries {
		k := e.Key()
		wanted[k] = struct{}{}
		h, ok := have[k]
		if op, do := planKey(want{Key: k, Entry: e, OK: true}, h, ok, prune); do {
			ops = append(ops, op)
		}
	}
	for k, h := range have {
		if _, ok := wanted[k]; ok {
			continue
		}
		if op, do := planKey(want{Key: k}, h, true, prune); do {
			ops = append(ops, op)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return keyLess(ops[i].Entry.Key(), ops[j].Entry.Key()) })
	return ops
}
