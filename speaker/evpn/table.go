package evpn

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Options configure a Table.
type Options struct {
	// LocalVTEP and RouterID identify this leaf: routes with this next hop,
	// PMSI endpoint or originator are our own, reflected back, and ignored.
	LocalVTEP netip.Addr
	RouterID  netip.Addr
	// DupMoves moves of one MAC within DupWindow mark it duplicate
	// (RFC 7432 §15.1; FRR's defaults are 5 in 180 s).
	DupMoves  int
	DupWindow time.Duration
	// Freeze keeps a duplicate MAC at the location it had when detected,
	// ignoring further updates until it is cleared.
	Freeze bool
}

// EffectKind says what the caller must do.
type EffectKind uint8

const (
	// FIBSetMAC: point (VNI, MAC) at VTEP in the kernel (replace in place);
	// Sticky: pin it there (the winning route is sticky), so that the
	// bridge does not move it when the MAC is heard on a local port.
	FIBSetMAC EffectKind = iota + 1
	// FIBDelMAC: remove the remote entry for (VNI, MAC).
	FIBDelMAC
	// FIBAddFlood / FIBDelFlood: add or remove VTEP on VNI's flood list.
	FIBAddFlood
	FIBDelFlood
	// Advertise: originate (or update) the local type-2 for (VNI, MAC) with
	// Seq and Sticky.
	Advertise
	// WithdrawLocal: withdraw the local type-2 for (VNI, MAC).
	WithdrawLocal
	// DuplicateDetected: (VNI, MAC) moved Moves times within the window.
	DuplicateDetected
	// Rejected: a received route was not used; Reason says why.
	Rejected
	// Selected: the selected location of (VNI, MAC) changed from
	// (PrevLocal, PrevVTEP) to (Local, VTEP), with Seq and Sticky of the
	// winner; both false and invalid means none (added or removed). It
	// informs watchers and traces; it asks for no action.
	Selected
	// OddRoute: a received route is used although it is odd; Odd and
	// Reason say how. It is reported once per route and change, for the
	// log and metrics; it asks for no action.
	OddRoute
)

// MaxSeq is the highest MAC mobility sequence number. A bid never wraps
// past it: it saturates, and a MAC at it is flagged duplicate.
const MaxSeq = ^uint32(0)

// Oddity names a kind of odd received route, for logs and metrics. Routes
// with an Oddity come in Rejected effects (not used) or OddRoute effects
// (used).
type Oddity string

const (
	// OddLabelZero: a type-2 with label 0 carries no VNI to send to; it is
	// not installed.
	OddLabelZero Oddity = "label-zero"
	// OddDownstreamVNI: a type-2 whose label is not the local VNI it
	// imports into (a downstream-assigned VNI, RFC 8365 §5.1.2); it is
	// installed with that VNI in the FDB entry.
	OddDownstreamVNI Oddity = "downstream-vni"
	// OddNoPMSI: a type-3 without a PMSI tunnel attribute; no flood entry.
	OddNoPMSI Oddity = "no-pmsi"
	// OddPMSINotIR: a type-3 whose PMSI tunnel is not ingress replication
	// (PIM-SM, say); no flood entry, as FRR does.
	OddPMSINotIR Oddity = "pmsi-not-ingress-replication"
	// OddIPv6NextHop: an IPv6 next hop on evpnd's IPv4 VTEP fabric; not used.
	OddIPv6NextHop Oddity = "ipv6-next-hop"
	// OddESIWithoutAD: a type-2 with a non-zero ESI; evpnd imports no
	// Ethernet A-D routes, so the segment has none. It is installed towards
	// the next hop.
	OddESIWithoutAD Oddity = "esi-without-ad"
	// OddSeqMax: a type-2 with the MAC mobility sequence at MaxSeq; no
	// bid can beat it, so its MAC is flagged duplicate.
	OddSeqMax Oddity = "seq-at-maximum"
)

func (k EffectKind) String() string {
	switch k {
	case FIBSetMAC:
		return "fib-set-mac"
	case FIBDelMAC:
		return "fib-del-mac"
	case FIBAddFlood:
		return "fib-add-flood"
	case FIBDelFlood:
		return "fib-del-flood"
	case Advertise:
		return "advertise"
	case WithdrawLocal:
		return "withdraw-local"
	case DuplicateDetected:
		return "duplicate"
	case Rejected:
		return "rejected"
	case Selected:
		return "selected"
	case OddRoute:
		return "odd-route"
	}
	return "unknown"
}

// Effect is one consequence of an input to the Table.
// ReasonUnusableVTEP is the Reason of a Rejected effect for a route whose
// VTEP (next hop, or type-3 PMSI endpoint) fails UsableVTEP.
const ReasonUnusableVTEP = "no usable VTEP: not a unicast IPv4 address outside 0/8, 127/8, 169.254/16, 224/4 and 240/4"

type Effect struct {
	Kind   EffectKind
	VNI    uint32
	MAC    MAC
	VTEP   netip.Addr
	Seq    uint32
	Sticky bool
	Moves  int
	Reason string
	// Odd classifies a Rejected or OddRoute effect for metrics; empty for
	// an ordinary rejection.
	Odd Oddity
	// SendVNI (FIBSetMAC only) is the VNI to put in the VXLAN header when it
	// differs from VNI (a downstream-assigned VNI); 0 means VNI.
	SendVNI uint32
	// Selected only.
	Local     bool
	PrevLocal bool
	PrevVTEP  netip.Addr
}

// MACKey identifies a MAC within a VNI.
type MACKey struct {
	VNI uint32
	MAC MAC
}

type candidate struct {
	vtep   netip.Addr
	seq    uint32
	sticky bool
	label  uint32 // VNI to send with when not the local VNI; 0 = local VNI
}

type localMAC struct {
	seq        uint32
	sticky     bool
	advertised bool
}

// location is where a MAC is selected: local, a remote VTEP, or nowhere.
type location struct {
	local bool
	vtep  netip.Addr
}

func (l location) valid() bool { return l.local || l.vtep.IsValid() }

type macState struct {
	remote    remotes // usually one: a slice is far smaller than a map
	local     *localMAC
	selected  location
	installed netip.Addr // VTEP the kernel was told; invalid = none
	instVNI   uint32     // SendVNI the kernel was told with installed
	// installedSticky: the kernel was told to pin the MAC (the winning
	// route is sticky, RFC 7432 §15.2).
	installedSticky bool
	moves           []time.Time
	duplicate       bool
	frozen          bool
	// last is where the MAC was selected before it went to no location at
	// lastAt: if it reappears elsewhere within moveGap, that is a move.
	last   location
	lastAt time.Time
	// lastSeq is the sequence number of the MAC's winning route at its
	// last selection (kept when it goes to no location): a local MAC
	// learned within moveGap after it went bids above it.
	lastSeq uint32
}

// moveGap is how long a MAC that lost its last route is remembered: one
// that reappears at another location within it has moved. A migrating VM
// often leaves its old leaf, which withdraws, before the new leaf learns
// it; without this, such moves would never count towards a duplicate.
const moveGap = 5 * time.Second

// goneMAC is what the table keeps of a MAC without routes for moveGap.
type goneMAC struct {
	last  location
	at    time.Time
	seq   uint32
	moves []time.Time
}

type routeRef struct {
	vni  uint32
	mac  MAC // type-2
	vtep netip.Addr
	odd  oddBits // oddities already reported for this route
}

// oddBits remember which oddities of a route were reported, so that each
// is reported once per route, and again only when it changes.
type oddBits struct {
	label  uint32 // downstream label reported (0 = none)
	esi    bool
	seqMax bool
}

type floodRef struct {
	vni  uint32
	vtep netip.Addr
}

// Table holds the remote EVPN state of a leaf and selects, per (VNI, MAC),
// where each MAC lives, across all RDs (RFC 7432 §15). It is a pure state
// machine: inputs are method calls with the current time, outputs are
// Effects. It is not safe for concurrent use.
type Table struct {
	opts   Options
	imp    *Importer
	macs   map[MACKey]*macState
	routes map[Key]routeRef // imported type-2 routes by identity
	floods map[Key]floodRef // imported type-3 routes by identity
	vteps  map[floodRef]int // type-3 routes per (VNI, VTEP)
	dups   map[MACKey]struct{}
	gone   map[MACKey]goneMAC // MACs without routes, for moveGap
	// counts are the per-VNI MAC counts, kept up to date by every change
	// of a MAC's selection or duplicate flag, so that readers (the API's
	// VNI rows, metrics) cost O(VNIs) instead of a walk of every MAC.
	counts map[uint32]*VNICounts
}

// VNICounts are the MACs of one VNI by where they are selected.
type VNICounts struct {
	Local      int // selected local
	Remote     int // selected at a remote VTEP
	Duplicates int // flagged duplicate (also counted above)
}

// class is what a MAC state adds to its VNI's counts.
func (st *macState) class() (local, remote, dup bool) {
	return st.selected.local, !st.selected.local && st.selected.vtep.IsValid(), st.duplicate
}

// recount moves a MAC from the counts of its class before a change to
// those of its class now.
func (t *Table) recount(vni uint32, wasLocal, wasRemote, wasDup bool, st *macState) {
	local, remote, dup := st.class()
	if local == wasLocal && remote == wasRemote && dup == wasDup {
		return
	}
	c := t.counts[vni]
	if c == nil {
		c = &VNICounts{}
		t.counts[vni] = c
	}
	add := func(n *int, was, is bool) {
		switch {
		case is && !was:
			*n++
		case was && !is:
			*n--
		}
	}
	add(&c.Local, wasLocal, local)
	add(&c.Remote, wasRemote, remote)
	add(&c.Duplicates, wasDup, dup)
	if *c == (VNICounts{}) {
		delete(t.counts, vni)
	}
}

// Counts returns the MAC counts of one VNI, in O(1).
func (t *Table) Counts(vni uint32) VNICounts {
	if c := t.counts[vni]; c != nil {
		return *c
	}
	return VNICounts{}
}

// NewTable returns an empty table importing by rules.
func NewTable(opts Options, rules []ImportRule) *Table {
	if opts.DupMoves <= 0 {
		opts.DupMoves = 5
	}
	if opts.DupWindow <= 0 {
		opts.DupWindow = 180 * time.Second
	}
	return &Table{
		opts:   opts,
		imp:    NewImporter(rules),
		macs:   map[MACKey]*macState{},
		routes: map[Key]routeRef{},
		floods: map[Key]floodRef{},
		vteps:  map[floodRef]int{},
		dups:   map[MACKey]struct{}{},
		gone:   map[MACKey]goneMAC{},
		counts: map[uint32]*VNICounts{},
	}
}

// SetDuplicateDetection changes the duplicate-detection settings (a
// config reload). They apply to moves from now on: a MAC already flagged
// stays flagged until cleared or its window passes without a move, and a
// frozen one stays frozen until then, even when freeze is turned off.
func (t *Table) SetDuplicateDetection(moves int, window time.Duration, freeze bool) {
	if moves <= 0 {
		moves = 5
	}
	if window <= 0 {
		window = 180 * time.Second
	}
	t.opts.DupMoves, t.opts.DupWindow, t.opts.Freeze = moves, window, freeze
}

// SetImportRules replaces the import rules. Routes already imported stay;
// the caller removes a VNI's state with RemoveVNI and re-feeds the RIB after
// adding one.
func (t *Table) SetImportRules(rules []ImportRule) { t.imp = NewImporter(rules) }

// ImportVNI returns the VNI r imports into under the current rules.
func (t *Table) ImportVNI(r *Route) (uint32, bool) { return t.imp.VNIFor(r) }

// RouteVNI returns the VNI a route the table holds was imported into.
func (t *Table) RouteVNI(k Key) (uint32, bool) {
	if ref, ok := t.routes[k]; ok {
		return ref.vni, true
	}
	if ref, ok := t.floods[k]; ok {
		return ref.vni, true
	}
	return 0, false
}

// RouteCount returns how many received routes of type rt the table holds
// (imported ones only).
func (t *Table) RouteCount(rt RouteType) int {
	switch rt {
	case RouteTypeMACIP:
		return len(t.routes)
	case RouteTypeIMET:
		return len(t.floods)
	}
	return 0
}

// HasFlood reports whether vtep is on vni's flood list.
func (t *Table) HasFlood(vni uint32, vtep netip.Addr) bool {
	return t.vteps[floodRef{vni: vni, vtep: vtep}] > 0
}

// IsOwn reports whether r was originated by this leaf.
func (t *Table) IsOwn(r *Route) bool {
	if t.opts.RouterID.IsValid() && r.Originator == t.opts.RouterID {
		return true
	}
	return t.opts.LocalVTEP.IsValid() && r.VTEP() == t.opts.LocalVTEP
}

// Update feeds a received (best) route. Re-feeding the same route is
// harmless; a changed route for a known key replaces it.
func (t *Table) Update(r *Route, now time.Time) []Effect {
	if t.IsOwn(r) {
		return nil
	}
	reject := func(why string) []Effect {
		// A route that no longer qualifies must not keep its old contents.
		eff := t.Withdraw(r.Key, now)
		return append(eff, Effect{Kind: Rejected, MAC: r.MAC, VTEP: r.VTEP(), Seq: r.Seq, Reason: why})
	}
	rejectOdd := func(odd Oddity, why string) []Effect {
		eff := reject(why)
		eff[len(eff)-1].Odd = odd
		return eff
	}
	if r.Type == RouteTypeIMET {
		// Only ingress replication gives a flood entry (RFC 8365 §9); FRR
		// installs none for anything else, and neither does evpnd.
		if r.PMSI == nil {
			return rejectOdd(OddNoPMSI, "type-3 without a PMSI tunnel attribute: no flood entry")
		}
		if r.PMSI.Type != PMSIIngressReplication {
			return rejectOdd(OddPMSINotIR, fmt.Sprintf("type-3 PMSI tunnel type %d is not ingress replication (6): no flood entry", r.PMSI.Type))
		}
	}
	vtep := r.VTEP()
	if !UsableVTEP(vtep) {
		if vtep.Is6() && !vtep.Is4In6() {
			return rejectOdd(OddIPv6NextHop, fmt.Sprintf("IPv6 next hop %s on an IPv4 VTEP fabric", vtep))
		}
		return reject(ReasonUnusableVTEP)
	}
	if r.Encap != 0 && r.Encap != TunnelTypeVXLAN {
		return reject("encapsulation is not VXLAN")
	}
	vni, ok := t.imp.VNIFor(r)
	if !ok {
		return reject("no route target matches a local VNI")
	}
	switch r.Type {
	case RouteTypeMACIP:
		if !r.MAC.IsUnicast() {
			return reject("MAC is not unicast")
		}
		if len(r.Labels) > 0 && r.Labels[0] == 0 {
			return rejectOdd(OddLabelZero, "type-2 with label 0: no VNI to send to")
		}
		return t.updateMAC(r, vni, vtep, now)
	case RouteTypeIMET:
		return t.updateFlood(r.Key, vni, vtep)
	}
	return nil
}

func (t *Table) updateFlood(k Key, vni uint32, vtep netip.Addr) []Effect {
	ref := floodRef{vni, vtep}
	if old, ok := t.floods[k]; ok {
		if old == ref {
			return nil
		}
		eff := t.withdrawFlood(k)
		return append(eff, t.updateFlood(k, vni, vtep)...)
	}
	t.floods[k] = ref
	t.vteps[ref]++
	if t.vteps[ref] == 1 {
		return []Effect{{Kind: FIBAddFlood, VNI: vni, VTEP: vtep}}
	}
	return nil
}

func (t *Table) withdrawFlood(k Key) []Effect {
	ref, ok := t.floods[k]
	if !ok {
		return nil
	}
	delete(t.floods, k)
	t.vteps[ref]--
	if t.vteps[ref] > 0 {
		return nil
	}
	delete(t.vteps, ref)
	return []Effect{{Kind: FIBDelFlood, VNI: ref.vni, VTEP: ref.vtep}}
}

func (t *Table) updateMAC(r *Route, vni uint32, vtep netip.Addr, now time.Time) []Effect {
	var eff []Effect
	mk := MACKey{vni, r.MAC}
	old, had := t.routes[r.Key]
	if had && (old.vni != vni || old.mac != r.MAC) {
		eff = t.Withdraw(r.Key, now)
		old = routeRef{}
	}
	c := candidate{vtep: vtep, seq: r.Seq, sticky: r.Sticky}
	if l := r.L2VNI(); l != 0 && l != vni {
		c.label = l
	}
	ref := routeRef{vni: vni, mac: r.MAC, vtep: vtep}
	ref.odd = oddBits{label: c.label, esi: !r.ESI.IsZero(), seqMax: r.Seq == MaxSeq}
	t.routes[r.Key] = ref
	if c.label != 0 && c.label != old.odd.label {
		eff = append(eff, Effect{Kind: OddRoute, Odd: OddDownstreamVNI, VNI: vni, MAC: r.MAC, VTEP: vtep, Seq: r.Seq,
			Reason: fmt.Sprintf("label %d differs from the local VNI %d (downstream-assigned VNI): installed with VNI %d", c.label, vni, c.label)})
	}
	if ref.odd.esi && !old.odd.esi {
		eff = append(eff, Effect{Kind: OddRoute, Odd: OddESIWithoutAD, VNI: vni, MAC: r.MAC, VTEP: vtep, Seq: r.Seq,
			Reason: fmt.Sprintf("ESI %s with no Ethernet A-D route for the segment: installed towards the next hop", r.ESI)})
	}
	if ref.odd.seqMax && !old.odd.seqMax {
		eff = append(eff, Effect{Kind: OddRoute, Odd: OddSeqMax, VNI: vni, MAC: r.MAC, VTEP: vtep, Seq: r.Seq,
			Reason: "MAC mobility sequence number at its maximum: no move can outbid it; the MAC is flagged duplicate"})
	}
	st := t.state(mk)
	st.remote.set(r.Key, c)
	eff = append(eff, t.reselect(mk, st, now)...)
	if r.Seq == MaxSeq {
		eff = append(eff, t.flagDuplicate(mk, st, "a route has the maximum MAC mobility sequence number")...)
	}
	return eff
}

// Withdraw removes a received route by identity. Unknown keys are ignored.
func (t *Table) Withdraw(k Key, now time.Time) []Effect {
	if k.Type == RouteTypeIMET {
		return t.withdrawFlood(k)
	}
	ref, ok := t.routes[k]
	if !ok {
		return nil
	}
	delete(t.routes, k)
	mk := MACKey{ref.vni, ref.mac}
	st := t.macs[mk]
	if st == nil {
		return nil
	}
	st.remote.del(k)
	eff := t.reselect(mk, st, now)
	t.gc(mk, st)
	return eff
}

// LocalAdd reports a MAC learned on a local access port. If remote routes
// exist for it, it is advertised with the highest sequence among the routes
// present now plus one, so it wins over them (RFC 7432 §15). The bid
// saturates at MaxSeq: a MAC that needs a bid above it is flagged duplicate.
func (t *Table) LocalAdd(vni uint32, mac MAC, sticky bool, now time.Time) []Effect {
	mk := MACKey{vni, mac}
	st := t.state(mk)
	if st.local != nil && st.selected.local {
		if st.local.sticky == sticky {
			return nil // already ours
		}
		// Became static, or stopped being static: advertise the change.
		st.local.sticky = sticky
		st.local.advertised = false
		return t.reselect(mk, st, now)
	}
	seq, saturated := t.bid(st, now)
	st.local = &localMAC{seq: seq, sticky: sticky}
	eff := t.reselect(mk, st, now)
	if saturated {
		eff = append(eff, t.flagDuplicate(mk, st, "the local bid is at the maximum MAC mobility sequence number")...)
	}
	return eff
}

// atMaxSeq reports whether a route of the MAC, remote or local, has the
// maximum sequence number.
func (st *macState) atMaxSeq() bool {
	if st.local != nil && st.local.seq == MaxSeq {
		return true
	}
	for _, rc := range st.remote {
		if rc.seq == MaxSeq {
			return true
		}
	}
	return false
}

// bid returns the sequence number a local MAC bids: one above the highest
// of the routes present now (remote ones, and the local one if any). With
// none, it is one above the sequence number the MAC was last selected with
// if it went less than moveGap ago (a migrating VM's old leaf often
// withdraws before the new one learns it: the move still raises the
// sequence number, and a late copy of the old route, from a slower path,
// cannot tie with the new one), else 0. It saturates at MaxSeq, and
// reports whether it did: a bid of MaxSeq cannot outbid a route already at
// MaxSeq.
func (t *Table) bid(st *macState, now time.Time) (uint32, bool) {
	if len(st.remote) == 0 && st.local == nil {
		if !st.last.valid() || now.Sub(st.lastAt) >= moveGap {
			return 0, false
		}
		return min(st.lastSeq, MaxSeq-1) + 1, false // nothing present to outbid at MaxSeq
	}
	var top uint32
	for _, rc := range st.remote {
		top = max(top, rc.seq)
	}
	if st.local != nil {
		top = max(top, st.local.seq)
	}
	if top == MaxSeq {
		return MaxSeq, true
	}
	return top + 1, false
}

// LocalDel reports that a local MAC aged out or left its access port.
func (t *Table) LocalDel(vni uint32, mac MAC, now time.Time) []Effect {
	mk := MACKey{vni, mac}
	st := t.macs[mk]
	if st == nil || st.local == nil {
		return nil
	}
	var eff []Effect
	if st.local.advertised {
		eff = append(eff, Effect{Kind: WithdrawLocal, VNI: vni, MAC: mac})
	}
	st.local = nil
	eff = append(eff, t.reselect(mk, st, now)...)
	t.gc(mk, st)
	return eff
}

// Expire clears duplicate flags whose MAC has not moved for a whole
// detection window (like FRR's recovery timer), re-evaluating the MAC: a
// frozen MAC is unfrozen, and a local one is advertised again. A MAC with
// a route at MaxSeq stays flagged until ClearDuplicate. It also forgets
// MACs that lost their last route more than moveGap ago. Call it
// periodically; it costs O(duplicates + recently gone MACs).
func (t *Table) Expire(now time.Time) []Effect {
	var eff []Effect
	for mk, g := range t.gone {
		if now.Sub(g.at) >= moveGap {
			delete(t.gone, mk)
		}
	}
	for mk := range t.dups {
		st := t.macs[mk]
		if st == nil || !st.duplicate {
			delete(t.dups, mk)
			continue
		}
		if n := len(st.moves); n > 0 && now.Sub(st.moves[n-1]) < t.opts.DupWindow {
			continue
		}
		if st.atMaxSeq() {
			continue // the alarm lasts while a route sits at the maximum
		}
		eff = append(eff, t.ClearDuplicate(mk.VNI, mk.MAC, now)...)
	}
	return eff
}

// Duplicates returns the MACs flagged duplicate.
func (t *Table) Duplicates() []MACInfo {
	var out []MACInfo
	for mk := range t.dups {
		if st := t.macs[mk]; st != nil {
			out = append(out, t.info(mk, st))
		}
	}
	return out
}

// RemoveVNI drops every remote and local entry of a VNI, returning the
// effects that undo them (fib deletions, local withdrawals).
func (t *Table) RemoveVNI(vni uint32) []Effect {
	return t.RemoveVNIs(map[uint32]bool{vni: true})
}

// RemoveVNIs is RemoveVNI for several VNIs, in one pass over the table
// (a pass costs O(MACs + routes), whatever the number of VNIs).
func (t *Table) RemoveVNIs(vnis map[uint32]bool) []Effect {
	var eff []Effect
	for k, ref := range t.routes {
		if vnis[ref.vni] {
			delete(t.routes, k)
		}
	}
	for mk := range t.gone {
		if vnis[mk.VNI] {
			delete(t.gone, mk)
		}
	}
	for mk, st := range t.macs {
		if !vnis[mk.VNI] {
			continue
		}
		delete(t.dups, mk)
		if st.installed.IsValid() {
			eff = append(eff, Effect{Kind: FIBDelMAC, VNI: mk.VNI, MAC: mk.MAC, VTEP: st.installed})
		}
		if st.local != nil && st.local.advertised {
			eff = append(eff, Effect{Kind: WithdrawLocal, VNI: mk.VNI, MAC: mk.MAC})
		}
		delete(t.macs, mk)
	}
	for vni := range vnis {
		delete(t.counts, vni)
	}
	for k, ref := range t.floods {
		if vnis[ref.vni] {
			eff = append(eff, t.withdrawFlood(k)...)
		}
	}
	return eff
}

// ClearDuplicate clears the duplicate flag of a MAC and re-evaluates it.
func (t *Table) ClearDuplicate(vni uint32, mac MAC, now time.Time) []Effect {
	mk := MACKey{vni, mac}
	st := t.macs[mk]
	if st == nil || !st.duplicate {
		return nil
	}
	wl, wr, wd := st.class()
	st.duplicate, st.frozen, st.moves = false, false, nil
	t.recount(vni, wl, wr, wd, st)
	delete(t.dups, mk)
	st.last = location{}
	eff := t.reselect(mk, st, now)
	t.gc(mk, st)
	return eff
}

func (t *Table) state(mk MACKey) *macState {
	st := t.macs[mk]
	if st == nil {
		st = &macState{}
		if g, ok := t.gone[mk]; ok {
			delete(t.gone, mk)
			st.last, st.lastAt, st.lastSeq, st.moves = g.last, g.at, g.seq, g.moves
		}
		t.macs[mk] = st
	}
	return st
}

func (t *Table) gc(mk MACKey, st *macState) {
	if len(st.remote) == 0 && st.local == nil && !st.duplicate {
		delete(t.macs, mk)
		if st.last.valid() {
			t.gone[mk] = goneMAC{last: st.last, at: st.lastAt, seq: st.lastSeq, moves: st.moves}
		}
	}
}

// better reports whether a beats b under RFC 7432 §15: sticky first, then
// the higher sequence number, then the lower VTEP address.
func better(a, b candidate) bool {
	if a.sticky != b.sticky {
		return a.sticky
	}
	if a.seq != b.seq {
		return a.seq > b.seq
	}
	return a.vtep.Less(b.vtep)
}

// best returns the winning candidate, and whether it is the local one.
func (t *Table) best(st *macState) (candidate, bool, bool) {
	var win candidate
	found, local := false, false
	for _, rc := range st.remote {
		if c := rc.candidate; !found || better(c, win) {
			win, found = c, true
		}
	}
	if st.local != nil {
		lc := candidate{vtep: t.opts.LocalVTEP, seq: st.local.seq, sticky: st.local.sticky}
		// A local MAC wins ties it would win by address, and any tie against
		// its own reflection (same VTEP) is impossible: own routes are dropped.
		if !found || better(lc, win) {
			win, found, local = lc, true, true
		}
	}
	return win, found, local
}

func (t *Table) reselect(mk MACKey, st *macState, now time.Time) []Effect {
	wl, wr, wd := st.class()
	defer t.recount(mk.VNI, wl, wr, wd, st)
	var eff []Effect
	if st.frozen {
		return nil
	}
	win, found, local := t.best(st)
	loc := location{}
	if found {
		loc = location{local: local}
		if !local {
			loc.vtep = win.vtep
		}
	}
	if found {
		st.lastSeq = win.seq
	}
	if loc != st.selected {
		sel := Effect{Kind: Selected, VNI: mk.VNI, MAC: mk.MAC, Local: loc.local, VTEP: loc.vtep,
			PrevLocal: st.selected.local, PrevVTEP: st.selected.vtep}
		if found {
			sel.Seq, sel.Sticky = win.seq, win.sticky
		}
		prev := st.selected
		if !prev.valid() && st.last.valid() && now.Sub(st.lastAt) < moveGap {
			prev = st.last // back after a gap: compare with where it was
		}
		if prev.valid() && loc.valid() && prev != loc {
			dup := t.countMove(mk, st, now)
			if st.frozen {
				// Detection froze the MAC: it stays where it was, in the
				// table, the kernel and BGP, until the flag is cleared.
				return dup
			}
			eff = append(eff, dup...)
		}
		eff = append(eff, sel)
		if loc.valid() {
			st.last = location{}
		} else {
			st.last, st.lastAt = st.selected, now
		}
		st.selected = loc
	}
	// Kernel: a remote winner is installed; otherwise nothing remote.
	if found && !local {
		if st.installed != win.vtep || st.instVNI != win.label || st.installedSticky != win.sticky {
			st.installed, st.instVNI, st.installedSticky = win.vtep, win.label, win.sticky
			eff = append(eff, Effect{Kind: FIBSetMAC, VNI: mk.VNI, MAC: mk.MAC, VTEP: win.vtep, Seq: win.seq, Sticky: win.sticky, SendVNI: win.label})
		}
	} else if st.installed.IsValid() {
		eff = append(eff, Effect{Kind: FIBDelMAC, VNI: mk.VNI, MAC: mk.MAC, VTEP: st.installed})
		st.installed, st.instVNI, st.installedSticky = netip.Addr{}, 0, false
	}
	// Advertisement of the local MAC: on while it wins, withdrawn when it
	// loses (the losing PE withdraws, RFC 7432 §15). A duplicate that is not
	// frozen is still advertised from wherever it is now (FRR's default
	// warning-only action); a frozen one never gets here.
	if st.local != nil {
		switch {
		case local && !st.local.advertised:
			st.local.advertised = true
			eff = append(eff, Effect{Kind: Advertise, VNI: mk.VNI, MAC: mk.MAC, VTEP: t.opts.LocalVTEP, Seq: st.local.seq, Sticky: st.local.sticky})
		case !local && st.local.advertised:
			st.local.advertised = false
			eff = append(eff, Effect{Kind: WithdrawLocal, VNI: mk.VNI, MAC: mk.MAC})
		}
	}
	return eff
}

func (t *Table) countMove(mk MACKey, st *macState, now time.Time) []Effect {
	cut := now.Add(-t.opts.DupWindow)
	kept := st.moves[:0]
	for _, m := range st.moves {
		if m.After(cut) {
			kept = append(kept, m)
		}
	}
	st.moves = append(kept, now)
	if len(st.moves) < t.opts.DupMoves {
		return nil
	}
	return t.flagDuplicate(mk, st, "")
}

// flagDuplicate marks a MAC duplicate (and frozen, with Options.Freeze),
// returning the DuplicateDetected effect, or nothing when it already is.
// why is empty for too many moves.
func (t *Table) flagDuplicate(mk MACKey, st *macState, why string) []Effect {
	if st.duplicate {
		return nil
	}
	st.duplicate = true
	t.dups[mk] = struct{}{}
	if t.opts.Freeze {
		st.frozen = true
	}
	return []Effect{{Kind: DuplicateDetected, VNI: mk.VNI, MAC: mk.MAC, Moves: len(st.moves), Reason: why}}
}

// MACInfo describes the selection state of one MAC, for the API and tests.
type MACInfo struct {
	VNI       uint32
	MAC       MAC
	Local     bool
	VTEP      netip.Addr // remote VTEP when !Local
	Seq       uint32
	Sticky    bool
	Duplicate bool
	Frozen    bool
	Routes    int          // remote routes known for the MAC
	Others    []netip.Addr // VTEPs of the remote routes not selected
}

// Lookup returns the state of one MAC.
func (t *Table) Lookup(vni uint32, mac MAC) (MACInfo, bool) {
	st := t.macs[MACKey{vni, mac}]
	if st == nil {
		return MACInfo{}, false
	}
	return t.info(MACKey{vni, mac}, st), true
}

func (t *Table) info(mk MACKey, st *macState) MACInfo {
	mi := MACInfo{VNI: mk.VNI, MAC: mk.MAC, Local: st.selected.local, VTEP: st.selected.vtep,
		Duplicate: st.duplicate, Frozen: st.frozen, Routes: len(st.remote)}
	if win, ok, _ := t.best(st); ok {
		mi.Seq, mi.Sticky = win.seq, win.sticky
	}
	for _, rc := range st.remote {
		if v := rc.candidate.vtep; (mi.Local || v != mi.VTEP) && !slices.Contains(mi.Others, v) {
			mi.Others = append(mi.Others, v)
		}
	}
	return mi
}

// MACs calls fn for every MAC with a selection state; fn returning false stops.
func (t *Table) MACs(fn func(MACInfo) bool) {
	for mk, st := range t.macs {
		if !fn(t.info(mk, st)) {
			return
		}
	}
}

// FloodLists returns every VNI's flood list in one pass over the table.
func (t *Table) FloodLists() map[uint32][]netip.Addr {
	out := map[uint32][]netip.Addr{}
	for ref := range t.vteps {
		out[ref.vni] = append(out[ref.vni], ref.vtep)
	}
	return out
}

// FloodList returns the remote VTEPs on a VNI's flood list.
func (t *Table) FloodList(vni uint32) []netip.Addr {
	var out []netip.Addr
	for ref := range t.vteps {
		if ref.vni == vni {
			out = append(out, ref.vtep)
		}
	}
	return out
}

// UsableVTEP reports whether a can be a remote VTEP (a VXLAN tunnel
// endpoint): a unicast IPv4 address outside the ranges no router forwards
// to, as FRR's martian next-hop check has them: 0.0.0.0/8 ("this
// network", RFC 791), 127.0.0.0/8 (loopback), 169.254.0.0/16 (link
// local, RFC 3927), 224.0.0.0/4 (multicast) and 240.0.0.0/4 (reserved,
// RFC 1112, with the limited broadcast address). A route naming any other
// is not used, and fib installs nothing towards one.
func UsableVTEP(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	b := a.As4()
	switch {
	case b[0] == 0, b[0] == 127, b[0] >= 224:
		return false
	case b[0] == 169 && b[1] == 254:
		return false
	}
	return true
}

// remotes are the received routes for one MAC, by route identity.
type remotes []remoteCand

type remoteCand struct {
	key Key
	candidate
}

func (rs *remotes) set(k Key, c candidate) {
	for i := range *rs {
		if (*rs)[i].key == k {
			(*rs)[i].candidate = c
			return
		}
	}
	*rs = append(*rs, remoteCand{key: k, candidate: c})
}

func (rs *remotes) del(k Key) {
	s := *rs
	for i := range s {
		if s[i].key == k {
			s[i] = s[len(s)-1]
			*rs = s[:len(s)-1]
			return
		}
	}
}
