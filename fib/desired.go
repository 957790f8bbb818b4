package fib

import (
	"fmt"
	"net/netip"
	"sort"
	"sync"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// VNIDevices names the Linux devices of one L2VNI on this leaf.
type VNIDevices struct {
	VNI    uint32
	VXLAN  string // the VXLAN device that carries the VNI (vxlanV)
	Bridge string // the bridge the VXLAN device is a port of (brV)
}

// Key names one object that fib owns in the kernel: a remote MAC of a VNI
// (VTEP unset) or one flood-list entry of a VNI (MAC zero, VTEP set). It is
// comparable and keys maps.
type Key struct {
	VNI  uint32
	MAC  evpn.MAC
	VTEP netip.Addr // set for flood keys only
}

// MACKey is the key of a remote MAC.
func MACKey(vni uint32, mac evpn.MAC) Key { return Key{VNI: vni, MAC: mac} }

// FloodKey is the key of the flood-list entry for vtep.
func FloodKey(vni uint32, vtep netip.Addr) Key { return Key{VNI: vni, VTEP: vtep} }

// IsFlood reports whether k names a flood-list entry.
func (k Key) IsFlood() bool { return k.MAC.IsZero() }

func (k Key) String() string {
	if k.IsFlood() {
		return fmt.Sprintf("vni %d flood %s", k.VNI, k.VTEP)
	}
	return fmt.Sprintf("vni %d mac %s", k.VNI, k.MAC)
}

// Snapshot is a copy of the desired remote state. Desired.Snapshot returns
// one; tests build them by hand.
type Snapshot struct {
	VNIs   map[uint32]VNIDevices
	MACs   map[Key]netip.Addr // MAC keys → VTEP
	Floods map[Key]struct{}   // flood keys
	// SendVNIs holds the MACs sent with another VNI than their own
	// (FDBEntry.SendVNI); nil or missing means their own.
	SendVNIs map[Key]uint32
	// Sticky holds the MACs of MACs to be pinned (SetMACSticky); nil
	// when there are none.
	Sticky map[Key]struct{}
}

// Desired is the table of remote L2 state that fib installs: per VNI the
// remote MACs with their VTEP and the flood list, plus the devices of each
// VNI. All methods are safe for concurrent use and cheap: they update maps,
// record the changed keys in a dirty set and wake the reconciler. None of
// them does IO or blocks on the reconciler.
type Desired struct {
	mu     sync.Mutex
	vnis   map[uint32]VNIDevices
	macs   map[Key]netip.Addr
	sticky map[Key]struct{} // MACs of macs to pin (a subset)
	floods map[Key]struct{}
	dirty  dirtySet
	// sendVNIs holds the few MACs of macs sent with another VNI.
	sendVNIs map[Key]uint32
	// recheck holds the dirty keys whose kernel entry the reconciler must
	// not trust (Invalidate). It is a subset of dirty: takeDirty empties
	// both together, so it stays as small as the dirty set.
	recheck map[Key]struct{}
	// devicesChanged is set by SetVNI/RemoveVNI; the reconciler then
	// re-reads the kernel before it writes.
	devicesChanged bool
	wake           chan struct{}
}

// NewDesired returns an empty table.
func NewDesired() *Desired {
	return &Desired{
		vnis:     make(map[uint32]VNIDevices),
		macs:     make(map[Key]netip.Addr),
		sticky:   make(map[Key]struct{}),
		floods:   make(map[Key]struct{}),
		dirty:    newDirtySet(),
		sendVNIs: make(map[Key]uint32),
		recheck:  make(map[Key]struct{}),
		wake:     make(chan struct{}, 1),
	}
}

// wakeC returns the channel that receives a value after a mutation. It has a
// buffer of one, so any number of mutations coalesce into one wake-up.
func (d *Desired) wakeC() <-chan struct{} { return d.wake }

func (d *Desired) notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// validVTEP refuses what cannot be a tunnel endpoint, so that nothing is
// installed towards it: an IPv4 address that evpn.UsableVTEP refuses
// (0/8, 127/8, 169.254/16, 224/4, 240/4, FRR's martians), an IPv6 one
// that is unspecified, loopback, link-local or multicast.
func validVTEP(vtep netip.Addr) error {
	a := vtep.Unmap()
	switch {
	case a.Is4() && !evpn.UsableVTEP(a):
		return fmt.Errorf("invalid VTEP %v: not a unicast IPv4 address outside 0/8, 127/8, 169.254/16, 224/4 and 240/4", vtep)
	case a.Is6() && (a.IsUnspecified() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast()):
		return fmt.Errorf("invalid VTEP %v: want a global unicast IPv6 address", vtep)
	case !a.IsValid():
		return fmt.Errorf("invalid VTEP %v: want a unicast IPv4 or IPv6 address", vtep)
	}
	return nil
}

// SetMAC records that mac on vni lives behind vtep, movable. Setting the
// VTEP a MAC already has is a no-op; a new VTEP becomes one in-place
// replace in the kernel.
func (d *Desired) SetMAC(vni uint32, mac evpn.MAC, vtep netip.Addr) error {
	return d.SetRemoteMAC(vni, mac, vtep, false, 0)
}

// SetMACSticky is SetMAC for a MAC that may be pinned: with sticky (a
// sticky or static MAC, RFC 7432 §15.2) its bridge entry is written
// sticky, as FRR's zebra writes one, so that the bridge does not move it
// to a local port when the MAC is heard there. Changing only the flag
// rewrites the entry.
func (d *Desired) SetMACSticky(vni uint32, mac evpn.MAC, vtep netip.Addr, sticky bool) error {
	return d.SetRemoteMAC(vni, mac, vtep, sticky, 0)
}

// SetMACVNI is SetMAC for a remote VTEP that expects sendVNI in the VXLAN
// header rather than vni (a downstream-assigned VNI); 0 or vni means vni.
func (d *Desired) SetMACVNI(vni uint32, mac evpn.MAC, vtep netip.Addr, sendVNI uint32) error {
	return d.SetRemoteMAC(vni, mac, vtep, false, sendVNI)
}

// SetRemoteMAC is SetMAC with both options: sticky as for SetMACSticky,
// sendVNI as for SetMACVNI. Changing only an option rewrites the entry.
func (d *Desired) SetRemoteMAC(vni uint32, mac evpn.MAC, vtep netip.Addr, sticky bool, sendVNI uint32) error {
	if sendVNI >= 1<<24 {
		return fmt.Errorf("fib: set mac %s on vni %d: VNI %d to send with does not fit 24 bits", mac, vni, sendVNI)
	}
	sendVNI = vniOverride(sendVNI, vni)
	if !mac.IsUnicast() {
		return fmt.Errorf("fib: set mac %s on vni %d: not a unicast MAC", mac, vni)
	}
	if err := validVTEP(vtep); err != nil {
		return fmt.Errorf("fib: set mac %s on vni %d: %w", mac, vni, err)
	}
	vtep = vtep.Unmap()
	k := MACKey(vni, mac)
	d.mu.Lock()
	defer d.mu.Unlock()
	_, wasSticky := d.sticky[k]
	if old, ok := d.macs[k]; ok && old == vtep && wasSticky == sticky && d.sendVNIs[k] == sendVNI {
		return nil
	}
	d.macs[k] = vtep
	if sticky {
		d.sticky[k] = struct{}{}
	} else {
		delete(d.sticky, k)
	}
	if sendVNI != 0 {
		d.sendVNIs[k] = sendVNI
	} else {
		delete(d.sendVNIs, k)
	}
	d.markLocked(k)
	return nil
}

// DeleteMAC forgets mac on vni. Deleting an unknown MAC is a no-op.
func (d *Desired) DeleteMAC(vni uint32, mac evpn.MAC) {
	k := MACKey(vni, mac)
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.macs[k]; !ok {
		return
	}
	delete(d.macs, k)
	delete(d.sticky, k)
	delete(d.sendVNIs, k)
	d.markLocked(k)
}

// Invalidate tells fib that the kernel may no longer hold what it wrote for
// mac on vni, and queues the MAC for another look. Call it when the bridge
// has learned mac locally on an access port: the bridge then moves its
// entry for mac from the VXLAN port to that port and clears extern_learn,
// behind fib's back. The next pass does not trust its record of the entry:
//   - if the MAC is still wanted remote (the same VTEP included), it is
//     written again, which moves the bridge entry back to the VXLAN port;
//   - if it is not wanted, fib's entries are deleted as usual: the VXLAN
//     entry to the VTEP fib wrote, and the bridge entry only while it is
//     still on the VXLAN port (the kernel refuses to delete the local one).
//
// Entries of an earlier run are still deleted only after MarkSynced. Like
// the other mutations it is O(1), does no IO and never blocks on the
// reconciler. Multicast and zero MACs are ignored.
func (d *Desired) Invalidate(vni uint32, mac evpn.MAC) {
	if !mac.IsUnicast() {
		return
	}
	k := MACKey(vni, mac)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recheck[k] = struct{}{}
	d.markLocked(k)
}

// AddFlood puts vtep on vni's flood list.
func (d *Desired) AddFlood(vni uint32, vtep netip.Addr) error {
	if err := validVTEP(vtep); err != nil {
		return fmt.Errorf("fib: add flood vtep on vni %d: %w", vni, err)
	}
	k := FloodKey(vni, vtep.Unmap())
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.floods[k]; ok {
		return nil
	}
	d.floods[k] = struct{}{}
	d.markLocked(k)
	return nil
}

// DeleteFlood takes vtep off vni's flood list.
func (d *Desired) DeleteFlood(vni uint32, vtep netip.Addr) {
	k := FloodKey(vni, vtep.Unmap())
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.floods[k]; !ok {
		return
	}
	delete(d.floods, k)
	d.markLocked(k)
}

// SetVNI declares (or changes) the devices of a VNI. Entries of a VNI are
// installed only while it has devices. A new or changed VNI makes the
// reconciler read the kernel again before it writes, so that entries left
// by an earlier run are recognised, not rewritten.
func (d *Desired) SetVNI(dev VNIDevices) error {
	if dev.VNI == 0 || dev.VNI >= 1<<24 {
		return fmt.Errorf("fib: set vni %d: a VNI is 1-16777215", dev.VNI)
	}
	if dev.VXLAN == "" || dev.Bridge == "" {
		return fmt.Errorf("fib: set vni %d: both the vxlan and the bridge device names are required", dev.VNI)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.vnis[dev.VNI]; ok && old == dev {
		return nil
	}
	d.vnis[dev.VNI] = dev
	d.devicesChanged = true
	d.notify()
	return nil
}

// RemoveVNI stops managing a VNI. The reconciler deletes the entries it
// installed there (stale entries of an earlier run only after MarkSynced).
// The VNI's MACs and flood list stay in the table and are installed again
// if the VNI comes back.
func (d *Desired) RemoveVNI(vni uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.vnis[vni]; !ok {
		return
	}
	delete(d.vnis, vni)
	d.devicesChanged = true
	d.notify()
}

// markLocked adds k to the dirty set and wakes the reconciler.
func (d *Desired) markLocked(k Key) {
	d.dirty.add(k)
	d.notify()
}

// markDirty queues keys for another look by the reconciler (retries,
// resyncs).
func (d *Desired) markDirty(keys ...Key) {
	if len(keys) == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range keys {
		d.dirty.add(k)
	}
	d.notify()
}

// markAllDirty queues every key of the table.
func (d *Desired) markAllDirty() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k := range d.macs {
		d.dirty.add(k)
	}
	for k := range d.floods {
		d.dirty.add(k)
	}
	d.notify()
}

// markVNIsDirty queues every key of the given VNIs.
func (d *Desired) markVNIsDirty(vnis map[uint32]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k := range d.macs {
		if vnis[k.VNI] {
			d.dirty.add(k)
		}
	}
	for k := range d.floods {
		if vnis[k.VNI] {
			d.dirty.add(k)
		}
	}
	d.notify()
}

// dirtyAmong adds to in the keys of among that wait for the reconciler.
func (d *Desired) dirtyAmong(among []Key, in map[Key]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range among {
		if d.dirty.has(k) {
			in[k] = true
		}
	}
}

// Dirty returns the number of keys waiting for the reconciler.
func (d *Desired) Dirty() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dirty.len()
}

// want is the desired value of one key at the time it was taken from the
// dirty set: Entry is meaningful only when OK. Recheck is set when the key
// was invalidated: the reconciler's record of its kernel entry may be
// wrong.
type want struct {
	Key     Key
	Entry   FDBEntry
	OK      bool
	Recheck bool
}

// takeDirty removes up to max keys from the dirty set and returns them with
// their desired entries, appended to buf: half of them from the keys marked
// most recently, the rest from the oldest (see dirtySet).
func (d *Desired) takeDirty(max int, buf []want) []want {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dirty.take(max, func(k Key) {
		w := d.wantLocked(k)
		if _, ok := d.recheck[k]; ok {
			delete(d.recheck, k)
			w.Recheck = true
		}
		buf = append(buf, w)
	})
	return buf
}

func (d *Desired) wantLocked(k Key) want {
	w := want{Key: k}
	dev, ok := d.vnis[k.VNI]
	if !ok {
		return w
	}
	if k.IsFlood() {
		if _, ok := d.floods[k]; ok {
			w.Entry, w.OK = FDBEntry{VNI: k.VNI, Dev: dev.VXLAN, VTEP: k.VTEP}, true
		}
		return w
	}
	if vtep, ok := d.macs[k]; ok {
		_, sticky := d.sticky[k]
		w.Entry, w.OK = FDBEntry{VNI: k.VNI, Dev: dev.VXLAN, MAC: k.MAC, VTEP: vtep, Sticky: sticky, SendVNI: d.sendVNIs[k]}, true
	}
	return w
}

// WantMAC returns the kernel entry fib installs for a MAC, false when it
// installs none (the MAC is not in the table, or its VNI has no devices).
func (d *Desired) WantMAC(vni uint32, mac evpn.MAC) (FDBEntry, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w := d.wantLocked(MACKey(vni, mac))
	return w.Entry, w.OK
}

// takeDevicesChanged returns and clears the devices-changed flag together
// with the current devices.
func (d *Desired) takeDevicesChanged() (bool, []VNIDevices) {
	d.mu.Lock()
	defer d.mu.Unlock()
	changed := d.devicesChanged
	d.devicesChanged = false
	return changed, d.vniListLocked()
}

func (d *Desired) vniListLocked() []VNIDevices {
	out := make([]VNIDevices, 0, len(d.vnis))
	for _, v := range d.vnis {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VNI < out[j].VNI })
	return out
}

// devicesPending reports whether SetVNI/RemoveVNI changed the devices since
// the reconciler last looked.
func (d *Desired) devicesPending() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.devicesChanged
}

// VNIs returns the managed VNIs' devices, sorted by VNI.
func (d *Desired) VNIs() []VNIDevices {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.vniListLocked()
}

// Snapshot returns a copy of the table.
func (d *Desired) Snapshot() Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Snapshot{
		VNIs:   make(map[uint32]VNIDevices, len(d.vnis)),
		MACs:   make(map[Key]netip.Addr, len(d.macs)),
		Floods: make(map[Key]struct{}, len(d.floods)),
	}
	for k, v := range d.vnis {
		s.VNIs[k] = v
	}
	for k, v := range d.macs {
		s.MACs[k] = v
	}
	for k := range d.floods {
		s.Floods[k] = struct{}{}
	}
	if len(d.sticky) > 0 {
		s.Sticky = make(map[Key]struct{}, len(d.sticky))
		for k := range d.sticky {
			s.Sticky[k] = struct{}{}
		}
	}
	if len(d.sendVNIs) > 0 {
		s.SendVNIs = make(map[Key]uint32, len(d.sendVNIs))
		for k, v := range d.sendVNIs {
			s.SendVNIs[k] = v
		}
	}
	return s
}
