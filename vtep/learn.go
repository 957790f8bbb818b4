package vtep

import (
	"bytes"
	"cmp"
	"net"
	"slices"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// Constants from linux/neighbour.h, repeated here so that the pure
// classification builds on every platform.
const (
	afBridge      = 7    // AF_BRIDGE
	nudNoARP      = 0x40 // NUD_NOARP: "static" FDB entry
	nudPermanent  = 0x80 // NUD_PERMANENT: the bridge's or a port's own address
	ntfSelf       = 0x02 // NTF_SELF: the device's own table (VXLAN FDB, uc/mc lists)
	ntfExtLearned = 0x10 // NTF_EXT_LEARNED: extern_learn, how evpnd installs remote MACs
	ntfSticky     = 0x40 // NTF_STICKY
	ntfExtLocked  = 0x02 // NTF_EXT_LOCKED (in NDA_FLAGS_EXT): 802.1X locked port entry
)

// fdbUpdate is a bridge FDB notification or dump entry, reduced to what
// classification needs.
type fdbUpdate struct {
	Deleted     bool // RTM_DELNEIGH
	Family      int
	LinkIndex   int // the bridge port (or the bridge) the entry points at
	MasterIndex int // the bridge (NDA_MASTER)
	MAC         net.HardwareAddr
	State       int
	Flags       int
	FlagsExt    int
}

// resolver tells which ifindexes are managed bridges, and which links can
// be access ports (any link but a bridge or a VXLAN device).
type resolver interface {
	bridgeVNI(ifindex int) (vni uint32, ok bool)
	port(ifindex int) (name string, ok bool)
}

// localEntry is a local MAC as the learner tracks it.
type localEntry struct {
	Port   string
	Index  int
	Static bool
}

func (e localEntry) public() LocalMAC { return LocalMAC{Port: e.Port, Static: e.Static} }

// macState is the set of local MACs, as last reported.
type macState map[MACKey]localEntry

// observation is what one fdbUpdate says about one key of a managed bridge.
type observation struct {
	Key       MACKey
	PortIndex int
	Deleted   bool        // the entry on PortIndex is gone
	Local     *localEntry // non-nil: the key now lives on an access port
}

// classify maps an FDB update to an observation about a managed bridge, or
// reports that it concerns nothing evpnd watches.
//
// An entry is a local MAC when it is a bridge (not NTF_SELF) entry of a
// managed bridge, on any port of it but a VXLAN device (an access port:
// configured, or enslaved by anyone at any time, as a VM's tap), for a
// unicast MAC, and neither the port's own address (permanent), nor
// installed by evpnd (extern_learn), nor locked. The entry's master says
// which bridge, and so which VNI, the port serves. A live entry of a managed bridge that is not
// local (say, on the VXLAN port with extern_learn) means the MAC is no
// longer local, since the bridge holds one entry per MAC.
func classify(u fdbUpdate, r resolver) (observation, bool) {
	if u.Family != afBridge || u.Flags&ntfSelf != 0 || u.MasterIndex == 0 {
		return observation{}, false
	}
	mac, ok := evpn.MACFrom(u.MAC)
	if !ok || !mac.IsUnicast() {
		return observation{}, false
	}
	vni, ok := r.bridgeVNI(u.MasterIndex)
	if !ok {
		return observation{}, false
	}
	o := observation{Key: MACKey{VNI: vni, MAC: mac}, PortIndex: u.LinkIndex, Deleted: u.Deleted}
	if u.Deleted || u.State&nudPermanent != 0 || u.Flags&ntfExtLearned != 0 || u.FlagsExt&ntfExtLocked != 0 {
		return o, true
	}
	name, ok := r.port(u.LinkIndex)
	if !ok || u.LinkIndex == u.MasterIndex {
		return o, true
	}
	o.Local = &localEntry{Port: name, Index: u.LinkIndex, Static: u.State&nudNoARP != 0 || u.Flags&ntfSticky != 0}
	return o, true
}

// apply folds an observation into s and returns the event to report, if
// the reported state changes.
func (s macState) apply(o observation) (MACEvent, bool) {
	cur, had := s[o.Key]
	switch {
	case o.Deleted:
		// Only the deletion of the entry we know (same port) removes it: a
		// delete of some other port's entry for the MAC is stale.
		if !had || cur.Index != o.PortIndex {
			return MACEvent{}, false
		}
	case o.Local != nil:
		s[o.Key] = *o.Local
		if had && cur.Port == o.Local.Port && cur.Static == o.Local.Static {
			return MACEvent{}, false
		}
		return MACEvent{VNI: o.Key.VNI, MAC: o.Key.MAC, Port: o.Local.Port, Static: o.Local.Static}, true
	case !had:
		return MACEvent{}, false
	}
	delete(s, o.Key)
	return MACEvent{VNI: o.Key.VNI, MAC: o.Key.MAC, Port: cur.Port, Static: cur.Static, Removed: true}, true
}

// resync replaces the part of s within scope by snap (a full dump of that
// scope) and returns the events that take a consumer from the old state
// to the new one: removals first, then additions and changes, each sorted
// by VNI and MAC. Entries outside scope are untouched. scope nil means
// every VNI.
func (s macState) resync(snap macState, scope func(vni uint32) bool) []MACEvent {
	in := func(vni uint32) bool { return scope == nil || scope(vni) }
	var rm, add []MACEvent
	for k, cur := range s {
		if !in(k.VNI) {
			continue
		}
		if _, ok := snap[k]; !ok {
			rm = append(rm, MACEvent{VNI: k.VNI, MAC: k.MAC, Port: cur.Port, Static: cur.Static, Removed: true})
			delete(s, k)
		}
	}
	for k, e := range snap {
		if !in(k.VNI) {
			continue
		}
		cur, had := s[k]
		s[k] = e
		if had && cur.Port == e.Port && cur.Static == e.Static {
			continue
		}
		add = append(add, MACEvent{VNI: k.VNI, MAC: k.MAC, Port: e.Port, Static: e.Static})
	}
	sortEvents(rm)
	sortEvents(add)
	return append(rm, add...)
}

func sortEvents(evs []MACEvent) {
	slices.SortFunc(evs, func(a, b MACEvent) int {
		if c := cmp.Compare(a.VNI, b.VNI); c != 0 {
			return c
		}
		return bytes.Compare(a.MAC[:], b.MAC[:])
	})
}

// public returns a copy of s in the exported form.
func (s macState) public() map[MACKey]LocalMAC {
	m := make(map[MACKey]LocalMAC, len(s))
	for k, e := range s {
		m[k] = e.public()
	}
	return m
}
