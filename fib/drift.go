package fib

import (
	"bytes"
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// DriftKind says how the kernel differs from the desired state.
type DriftKind uint8

const (
	// DriftMissing: a wanted entry (or the VNI's VXLAN device) is absent.
	DriftMissing DriftKind = iota + 1
	// DriftExtra: the kernel holds an entry on a managed VXLAN device that
	// BGP did not select.
	DriftExtra
	// DriftWrong: the entry exists but differs: another VTEP, several
	// remotes, or a bridge entry not marked extern_learn.
	DriftWrong
)

func (k DriftKind) String() string {
	switch k {
	case DriftMissing:
		return "missing"
	case DriftExtra:
		return "extra"
	case DriftWrong:
		return "wrong"
	}
	return fmt.Sprintf("drift(%d)", uint8(k))
}

// The tables a Drift can name.
const (
	// TableMAC is the VXLAN device's own (self) entry of a remote MAC:
	// where to tunnel it.
	TableMAC = "mac"
	// TableBridge is the bridge's (master) entry that forwards a remote
	// MAC to the VXLAN port.
	TableBridge = "bridge"
	// TableFlood is one flood-list entry: 00:00:00:00:00:00 to a VTEP.
	TableFlood = "flood"
	// TableDevice is the VNI's VXLAN device itself.
	TableDevice = "device"
)

// Drift is one difference between the desired state and the kernel.
type Drift struct {
	Kind  DriftKind
	VNI   uint32
	Table string   // TableMAC, TableBridge, TableFlood or TableDevice
	MAC   evpn.MAC // zero for flood and device drifts
	// Want is the VTEP BGP selected (Missing, Wrong); Have the one the
	// kernel's VXLAN entry points at (Extra, Wrong), unset for bridge
	// entries and when it has several.
	Want   netip.Addr
	Have   netip.Addr
	Device string // the VNI's VXLAN device
	// Detail is the iproute2 command that fixes the drift (or, for a
	// device, shows it), with a reason where the kind does not say it all.
	Detail string
}

func (d Drift) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "vni %d %s", d.VNI, d.Table)
	if d.Table == TableMAC || d.Table == TableBridge {
		fmt.Fprintf(&b, " %s", d.MAC)
	}
	fmt.Fprintf(&b, " %s on %s", d.Kind, d.Device)
	if d.Want.IsValid() {
		fmt.Fprintf(&b, " want %s", d.Want)
	}
	if d.Have.IsValid() {
		fmt.Fprintf(&b, " have %s", d.Have)
	}
	return b.String()
}

// key is the Key of the entry a drift concerns (zero for a device).
func (d Drift) key() Key {
	switch d.Table {
	case TableFlood:
		return FloodKey(d.VNI, d.vtep())
	case TableMAC, TableBridge:
		return MACKey(d.VNI, d.MAC)
	}
	return Key{}
}

func (d Drift) vtep() netip.Addr {
	if d.Want.IsValid() {
		return d.Want
	}
	return d.Have
}

// Diff compares a desired snapshot with a kernel dump of the managed VXLAN
// devices and returns every difference, sorted by VNI, Table (as a
// string), MAC and VTEP (Want, else Have). It is pure.
//
// Only the VNIs of s.VNIs are compared, and of the dump only entries on
// their VXLAN device. What counts is what the reconciler keeps, so that a
// clean Diff means a resync would change nothing. Each key gets at most
// one drift:
//
//   - device, Missing: the VNI's VXLAN device does not exist (no Device
//     marker in the dump). Its entries are then not reported one by one.
//   - mac, Missing: a wanted MAC has neither its VXLAN (self) entry nor its
//     bridge (master) entry on the VXLAN port.
//   - mac, Wrong: a wanted MAC's VXLAN entry is missing while its bridge
//     entry exists, points at another VTEP (Have), or has several remotes;
//     whatever the bridge entry is. The VXLAN entry's extern_learn flag
//     does not matter: the kernel cannot restore it once it was removed.
//   - bridge, Wrong: a wanted MAC's VXLAN entry is right, but its bridge
//     entry is missing (or a local entry holds the MAC), lacks
//     extern_learn, or is sticky when the MAC is not, or the other way
//     round.
//   - none for a wanted MAC whose bridge entry the bridge has learned on
//     an access port (Installed.Access): the host is moving here, and
//     the learner's report decides whether the MAC stays remote.
//   - mac, Extra: an unwanted MAC has a VXLAN entry (Have: its remote),
//     marked or not; fib owns the managed VXLAN devices' FDB.
//   - bridge, Extra: an unwanted MAC has only a bridge entry on the VXLAN
//     port.
//   - flood, Missing / Extra: a wanted flood VTEP is absent; an entry to a
//     VTEP that is not wanted exists.
//
// Never reported: local (permanent) bridge entries such as the VXLAN
// port's own address, entries on other ports (access ports, the bridge),
// multicast MACs, and the VXLAN devices of unmanaged VNIs.
func Diff(s Snapshot, kernel []KernelEntry) []Drift {
	inst, present, local := foldKernel(kernel, s.VNIs)
	var out []Drift
	add := func(kind DriftKind, vni uint32, table string, m evpn.MAC, want, have netip.Addr, detail string) {
		out = append(out, Drift{Kind: kind, VNI: vni, Table: table, MAC: m, Want: want, Have: have,
			Device: s.VNIs[vni].VXLAN, Detail: detail})
	}
	for vni, dev := range s.VNIs {
		if !present[vni] {
			add(DriftMissing, vni, TableDevice, evpn.MAC{}, netip.Addr{}, netip.Addr{},
				fmt.Sprintf("ip -d link show dev %s (missing: nothing of VNI %d is installed until it exists)", dev.VXLAN, vni))
		}
	}
	for k, vtep := range s.MACs {
		dev, ok := s.VNIs[k.VNI]
		if !ok || !present[k.VNI] {
			continue
		}
		in, had := inst[k]
		_, sticky := s.Sticky[k]
		want := FDBEntry{VNI: k.VNI, Dev: dev.VXLAN, MAC: k.MAC, VTEP: vtep, Sticky: sticky, SendVNI: s.SendVNIs[k]}
		if had && (in.Holds(want) || in.Access) {
			continue // Access: a local move in progress, which a resync leaves alone
		}
		fix := Op{Kind: OpSet, Entry: FDBEntry{VNI: k.VNI, Dev: dev.VXLAN, MAC: k.MAC, VTEP: vtep, SendVNI: want.SendVNI}}.String()
		if sticky {
			fix += fmt.Sprintf("; bridge fdb replace %s dev %s master sticky static", k.MAC, dev.VXLAN)
		}
		switch {
		case !had:
			if local[k] {
				fix += localNote(k.MAC, dev.VXLAN)
			}
			add(DriftMissing, k.VNI, TableMAC, k.MAC, vtep, netip.Addr{}, fix)
		case !in.Self:
			add(DriftWrong, k.VNI, TableMAC, k.MAC, vtep, netip.Addr{}, fix+" (the VXLAN entry is missing)")
		case in.Multi:
			add(DriftWrong, k.VNI, TableMAC, k.MAC, vtep, netip.Addr{}, fix+" (the VXLAN entry has several remotes)")
		case in.VTEP != vtep:
			add(DriftWrong, k.VNI, TableMAC, k.MAC, vtep, in.VTEP, fix)
		case in.SendVNI != want.SendVNI:
			add(DriftWrong, k.VNI, TableMAC, k.MAC, vtep, in.VTEP, fmt.Sprintf("%s (the VXLAN entry sends with VNI %d)", fix, cmp.Or(in.SendVNI, k.VNI)))
		case !in.Master && local[k]:
			add(DriftWrong, k.VNI, TableBridge, k.MAC, vtep, netip.Addr{}, fix+localNote(k.MAC, dev.VXLAN))
		case !in.Master:
			add(DriftWrong, k.VNI, TableBridge, k.MAC, vtep, netip.Addr{},
				fmt.Sprintf("%s (the bridge entry is missing; bridge fdb show br %s | grep %s tells whether local learning moved it to an access port)",
					fix, dev.Bridge, k.MAC))
		case in.Unmarked:
			add(DriftWrong, k.VNI, TableBridge, k.MAC, vtep, netip.Addr{}, fix+" (the bridge entry is not marked extern_learn)")
		case !in.Sticky:
			add(DriftWrong, k.VNI, TableBridge, k.MAC, vtep, netip.Addr{},
				fmt.Sprintf("bridge fdb replace %s dev %s master sticky static (the MAC is sticky: its bridge entry must be pinned)", k.MAC, dev.VXLAN))
		default:
			add(DriftWrong, k.VNI, TableBridge, k.MAC, vtep, netip.Addr{},
				fmt.Sprintf("bridge fdb replace %s dev %s master dynamic (the bridge entry is sticky, the MAC no longer is)", k.MAC, dev.VXLAN))
		}
	}
	for k := range s.Floods {
		dev, ok := s.VNIs[k.VNI]
		if !ok || !present[k.VNI] {
			continue
		}
		if in, had := inst[k]; !had || !in.Self {
			add(DriftMissing, k.VNI, TableFlood, evpn.MAC{}, k.VTEP, netip.Addr{},
				fmt.Sprintf("bridge fdb append 00:00:00:00:00:00 dev %s dst %s self extern_learn", dev.VXLAN, k.VTEP))
		}
	}
	for k, in := range inst {
		if k.IsFlood() {
			if _, ok := s.Floods[k]; !ok {
				add(DriftExtra, k.VNI, TableFlood, evpn.MAC{}, netip.Addr{}, k.VTEP,
					fmt.Sprintf("bridge fdb del 00:00:00:00:00:00 dev %s dst %s self", in.Dev, k.VTEP))
			}
			continue
		}
		if _, ok := s.MACs[k]; ok {
			continue
		}
		op := Op{Kind: OpDelete, Entry: FDBEntry{VNI: k.VNI, Dev: in.Dev, MAC: k.MAC, VTEP: in.VTEP, SendVNI: in.SendVNI}, Self: in.Self, Master: in.Master}
		if in.Self {
			add(DriftExtra, k.VNI, TableMAC, k.MAC, netip.Addr{}, in.VTEP, op.String())
		} else {
			add(DriftExtra, k.VNI, TableBridge, k.MAC, netip.Addr{}, netip.Addr{}, op.String())
		}
	}
	slices.SortFunc(out, compareDrift)
	return out
}

func localNote(m evpn.MAC, dev string) string {
	return fmt.Sprintf(" (a local, permanent bridge entry on %s holds the MAC and fib never deletes those: bridge fdb del %s dev %s master first)", dev, m, dev)
}

func compareDrift(a, b Drift) int {
	switch {
	case a.VNI != b.VNI:
		if a.VNI < b.VNI {
			return -1
		}
		return 1
	case a.Table != b.Table:
		return strings.Compare(a.Table, b.Table)
	}
	if c := bytes.Compare(a.MAC[:], b.MAC[:]); c != 0 {
		return c
	}
	return a.vtep().Compare(b.vtep())
}
