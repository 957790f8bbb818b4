package vtep

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// LinkInfo is the part of a kernel link that planning looks at.
type LinkInfo struct {
	Index       int
	Name        string
	Kind        string // "bridge", "vxlan", "veth", "device", ...
	Up          bool   // IFF_UP (administratively up)
	MTU         int
	MasterIndex int
	Alias       string
	VXLAN       *VXLANInfo // set when Kind is "vxlan"
	Port        *PortFlags // bridge-port flags; nil when not read
	// Read for PlanVRF's SVIs only:
	MAC      string         // hardware address, as net.HardwareAddr prints it
	Addrs    []netip.Prefix // addresses, with their prefix length; nil when not read
	VRFTable uint32         // set when Kind is "vrf"
}

// VXLANInfo is the identity of a VXLAN device.
type VXLANInfo struct {
	VNI      uint32
	Local    netip.Addr // invalid when unset
	Group    netip.Addr // remote or multicast group; invalid when unset
	Port     int        // destination UDP port
	Learning bool
	External bool // collect_metadata (flow-based) device
}

// PortFlags are the bridge-port flags evpnd sets on the VXLAN port.
type PortFlags struct {
	Learning      bool
	NeighSuppress bool
}

// Observed is the kernel's link table, as planning sees it.
type Observed struct {
	Links []LinkInfo
}

// view indexes an Observed for planning.
type view struct {
	byName  map[string]*LinkInfo
	byIndex map[int]*LinkInfo
	byVNI   map[vniPort][]*LinkInfo // non-external VXLAN devices
}

type vniPort struct {
	vni  uint32
	port int
}

func (o Observed) view() view {
	w := view{
		byName:  make(map[string]*LinkInfo, len(o.Links)),
		byIndex: make(map[int]*LinkInfo, len(o.Links)),
		byVNI:   map[vniPort][]*LinkInfo{},
	}
	for i := range o.Links {
		l := &o.Links[i]
		w.byName[l.Name] = l
		w.byIndex[l.Index] = l
		if l.VXLAN != nil && !l.VXLAN.External {
			k := vniPort{l.VXLAN.VNI, l.VXLAN.Port}
			w.byVNI[k] = append(w.byVNI[k], l)
		}
	}
	return w
}

// Op is the kind of change an Action makes.
type Op int

const (
	OpCreateBridge Op = iota + 1 // add a bridge, down, with IPv6 off
	OpCreateVXLAN                // add a VXLAN device, down, with IPv6 off
	OpSetMTU                     // set Dev's MTU
	OpSetMaster                  // enslave Dev to Master
	OpSetPortFlags               // learning off, neigh_suppress on (off with NoSuppress) for bridge port Dev
	OpSetUp                      // set Dev up
)

// Name is the op's stable snake_case name, for metrics labels.
func (o Op) Name() string {
	switch o {
	case OpCreateBridge:
		return "create_bridge"
	case OpCreateVXLAN:
		return "create_vxlan"
	case OpSetMTU:
		return "set_mtu"
	case OpSetMaster:
		return "set_master"
	case OpSetPortFlags:
		return "set_port_flags"
	case OpSetUp:
		return "set_up"
	}
	return "op_" + strconv.Itoa(int(o))
}

// Action is one step of a plan. Prev* fields carry the observed values an
// undo restores; Created tells that Dev is created earlier in the same
// plan (so undoing the creation undoes this step too).
type Action struct {
	Op      Op
	VNI     uint32
	Dev     string
	Master  string // OpSetMaster
	MTU     int    // OpCreate*, OpSetMTU
	Spec    L2VNI  // OpCreateVXLAN
	Created bool

	PrevMTU  int        // OpSetMTU
	PrevPort *PortFlags // OpSetPortFlags on a port that was already enslaved
	// NoSuppress: OpSetPortFlags turns neigh_suppress off, not on
	// (L2VNI.NoNeighSuppress).
	NoSuppress bool
}

// String renders the action as the iproute2 command that does the same.
func (a Action) String() string {
	switch a.Op {
	case OpCreateBridge:
		return "ip link add " + a.Dev + mtuArg(a.MTU) + " type bridge; sysctl -w net.ipv6.conf." + a.Dev + ".disable_ipv6=1"
	case OpCreateVXLAN:
		return fmt.Sprintf("ip link add %s%s type vxlan id %d local %s dstport %d nolearning; sysctl -w net.ipv6.conf.%s.disable_ipv6=1",
			a.Dev, mtuArg(a.MTU), a.Spec.VNI, a.Spec.Local, a.Spec.port(), a.Dev)
	case OpSetMTU:
		return "ip link set " + a.Dev + " mtu " + strconv.Itoa(a.MTU)
	case OpSetMaster:
		return "ip link set " + a.Dev + " master " + a.Master
	case OpSetPortFlags:
		if a.NoSuppress {
			return "bridge link set dev " + a.Dev + " learning off neigh_suppress off"
		}
		return "bridge link set dev " + a.Dev + " learning off neigh_suppress on"
	case OpSetUp:
		return "ip link set " + a.Dev + " up"
	}
	return fmt.Sprintf("op(%d) %s", a.Op, a.Dev)
}

func mtuArg(mtu int) string {
	if mtu == 0 {
		return ""
	}
	return " mtu " + strconv.Itoa(mtu)
}

// Plan is what Ensure will do: the actions in order, the devices that
// already exist and are adopted (possibly repaired by some actions), and
// the configured access ports that do not exist (yet).
type Plan struct {
	Actions []Action
	Adopted []string
	Absent  []AbsentPort
}

// AbsentPort is a configured access port that does not exist. It is not
// a conflict: a VM's tap or a containerlab link often appears after
// evpnd starts, and Supervise enslaves it when it does.
type AbsentPort struct {
	VNI    uint32
	Port   string
	Bridge string
	Uplink bool // a VRF's uplink (PlanVRF), not an access port
}

// PlanL2 compares the desired VNIs with the observed links and returns the
// actions that make the kernel match, or every conflict found (joined
// *ConflictError values and configuration errors). It is pure: the same
// input gives the same plan, and a kernel that already matches gives no
// actions.
func PlanL2(vnis []L2VNI, obs Observed) (Plan, error) {
	return plan(vnis, obs, false)
}

// PlanRepair is PlanL2 for devices evpnd already set up (Supervise): the
// same actions and conflicts, except that an access port found in its
// bridge keeps the admin state an operator gave it (`ip link set swp1
// down` shuts a port on purpose); a port the plan enslaves again is
// brought up, as at start.
func PlanRepair(vnis []L2VNI, obs Observed) (Plan, error) {
	return plan(vnis, obs, true)
}

func plan(vnis []L2VNI, obs Observed, repair bool) (Plan, error) {
	return planView(vnis, obs.view(), repair)
}

// planView is plan over an indexed Observed, so that a caller planning
// VNIs one by one (Supervise) indexes the links once, not once per VNI.
func planView(vnis []L2VNI, w view, repair bool) (Plan, error) {
	if err := ValidateSet(vnis); err != nil {
		return Plan{}, err
	}
	var p Plan
	var errs []error
	for _, v := range vnis {
		acts, adopted, absent, verrs := planOne(v, w, repair)
		p.Actions = append(p.Actions, acts...)
		p.Adopted = append(p.Adopted, adopted...)
		p.Absent = append(p.Absent, absent...)
		errs = append(errs, verrs...)
	}
	if len(errs) > 0 {
		return Plan{}, errors.Join(errs...)
	}
	return p, nil
}

func planOne(v L2VNI, w view, repair bool) (acts []Action, adopted []string, absent []AbsentPort, errs []error) {
	byName, byIndex := w.byName, w.byIndex
	conflict := func(dev, param, want, found, fix string) {
		errs = append(errs, &ConflictError{VNI: v.VNI, Device: dev, Param: param, Expected: want, Found: found, Fix: fix})
	}
	masterName := func(idx int) string {
		if m, ok := byIndex[idx]; ok {
			return m.Name
		}
		return "ifindex " + strconv.Itoa(idx)
	}
	var tail []Action // ups, appended last so devices come up fully configured

	// Bridge.
	br, brExists := byName[v.Bridge]
	switch {
	case !brExists:
		acts = append(acts, Action{Op: OpCreateBridge, VNI: v.VNI, Dev: v.Bridge, MTU: v.MTU})
		tail = append(tail, Action{Op: OpSetUp, VNI: v.VNI, Dev: v.Bridge, Created: true})
	case br.Kind != "bridge":
		conflict(v.Bridge, "kind", "bridge", br.Kind,
			fmt.Sprintf("the name is taken by another device: configure another bridge name for l2vni %d (delete %s only if it is a leftover nothing uses)", v.VNI, v.Bridge))
	default:
		adopted = append(adopted, v.Bridge)
		if v.MTU != 0 && br.MTU != v.MTU {
			acts = append(acts, Action{Op: OpSetMTU, VNI: v.VNI, Dev: v.Bridge, MTU: v.MTU, PrevMTU: br.MTU})
		}
		if !br.Up {
			tail = append(tail, Action{Op: OpSetUp, VNI: v.VNI, Dev: v.Bridge})
		}
	}
	bridgeOK := !brExists || br.Kind == "bridge"
	isOurBridge := func(masterIdx int) bool { return brExists && bridgeOK && masterIdx == br.Index }

	// VXLAN device.
	vx, vxExists := byName[v.VXLAN]
	switch {
	case !vxExists:
		for _, o := range w.byVNI[vniPort{v.VNI, v.port()}] {
			if o.Name != v.VXLAN {
				conflict(o.Name, "vni", fmt.Sprintf("VNI %d only on %s", v.VNI, v.VXLAN), fmt.Sprintf("VNI %d with dstport %d", v.VNI, v.port()),
					fmt.Sprintf("the kernel allows one VXLAN device per VNI and port: delete %s or configure vxlan-device %s for l2vni %d", o.Name, o.Name, v.VNI))
			}
		}
		mtu := v.MTU
		if mtu == 0 {
			mtu = v.DefaultVXLANMTU
		}
		acts = append(acts,
			Action{Op: OpCreateVXLAN, VNI: v.VNI, Dev: v.VXLAN, MTU: mtu, Spec: v},
			Action{Op: OpSetMaster, VNI: v.VNI, Dev: v.VXLAN, Master: v.Bridge, Created: true},
			Action{Op: OpSetPortFlags, VNI: v.VNI, Dev: v.VXLAN, Created: true, NoSuppress: v.NoNeighSuppress},
			Action{Op: OpSetUp, VNI: v.VNI, Dev: v.VXLAN, Created: true})
	case vx.Kind != "vxlan" || vx.VXLAN == nil:
		conflict(v.VXLAN, "kind", "vxlan", vx.Kind,
			fmt.Sprintf("the name is taken by another device: configure another vxlan-device name for l2vni %d (delete %s only if it is a leftover nothing uses)", v.VNI, v.VXLAN))
	default:
		n := len(errs)
		planVXLANIdentity(v, vx, conflict)
		if len(errs) > n {
			break
		}
		adopted = append(adopted, v.VXLAN)
		if v.MTU != 0 && vx.MTU != v.MTU {
			acts = append(acts, Action{Op: OpSetMTU, VNI: v.VNI, Dev: v.VXLAN, MTU: v.MTU, PrevMTU: vx.MTU})
		}
		switch {
		case vx.MasterIndex == 0:
			acts = append(acts,
				Action{Op: OpSetMaster, VNI: v.VNI, Dev: v.VXLAN, Master: v.Bridge},
				Action{Op: OpSetPortFlags, VNI: v.VNI, Dev: v.VXLAN, NoSuppress: v.NoNeighSuppress})
		case isOurBridge(vx.MasterIndex):
			if vx.Port == nil || vx.Port.Learning || vx.Port.NeighSuppress == v.NoNeighSuppress {
				acts = append(acts, Action{Op: OpSetPortFlags, VNI: v.VNI, Dev: v.VXLAN, PrevPort: vx.Port, NoSuppress: v.NoNeighSuppress})
			}
		default:
			conflict(v.VXLAN, "master", v.Bridge, masterName(vx.MasterIndex),
				fmt.Sprintf("release it (ip link set %s nomaster) or configure bridge %s for l2vni %d", v.VXLAN, masterName(vx.MasterIndex), v.VNI))
		}
		if !vx.Up {
			acts = append(acts, Action{Op: OpSetUp, VNI: v.VNI, Dev: v.VXLAN})
		}
	}

	// Access ports.
	for _, name := range v.AccessPorts {
		ap, ok := byName[name]
		if !ok {
			absent = append(absent, AbsentPort{VNI: v.VNI, Port: name, Bridge: v.Bridge})
			continue
		}
		enslave := false
		switch {
		case ap.MasterIndex == 0:
			enslave = true
			acts = append(acts, Action{Op: OpSetMaster, VNI: v.VNI, Dev: name, Master: v.Bridge})
		case isOurBridge(ap.MasterIndex):
		default:
			conflict(name, "master", v.Bridge, masterName(ap.MasterIndex),
				fmt.Sprintf("release it (ip link set %s nomaster) or remove it from the access ports of l2vni %d", name, v.VNI))
			continue
		}
		if !ap.Up && (enslave || !repair) {
			acts = append(acts, Action{Op: OpSetUp, VNI: v.VNI, Dev: name})
		}
	}
	return append(acts, tail...), adopted, absent, errs
}

// planVXLANIdentity reports the parameters of an existing VXLAN device
// that cannot be changed in place: changing them means re-creating it.
func planVXLANIdentity(v L2VNI, vx *LinkInfo, conflict func(dev, param, want, found, fix string)) {
	fix := fmt.Sprintf("delete it (ip link del %s) so evpnd re-creates it, or change the configuration of l2vni %d to match", v.VXLAN, v.VNI)
	x := vx.VXLAN
	if x.External {
		conflict(v.VXLAN, "external (collect_metadata)", "off", "on", fix)
	}
	if x.VNI != v.VNI {
		conflict(v.VXLAN, "vni", strconv.FormatUint(uint64(v.VNI), 10), strconv.FormatUint(uint64(x.VNI), 10), fix)
	}
	if x.Local != v.Local {
		conflict(v.VXLAN, "local", v.Local.String(), addrOrNone(x.Local), fix)
	}
	if x.Port != v.port() {
		conflict(v.VXLAN, "dstport", strconv.Itoa(v.port()), strconv.Itoa(x.Port), fix)
	}
	if x.Learning {
		conflict(v.VXLAN, "learning", "nolearning", "learning", fix)
	}
	if x.Group.IsValid() && !x.Group.IsUnspecified() {
		conflict(v.VXLAN, "remote/group", "none (evpnd programs the flood list)", x.Group.String(), fix)
	}
}

func addrOrNone(a netip.Addr) string {
	if !a.IsValid() {
		return "unset"
	}
	return a.String()
}

// MTUWarning is a port of a VNI's bridge whose MTU exceeds the VNI's
// VXLAN device's: frames that fit the port but not the tunnel are dropped
// on their way to a remote leaf (the bridge does not fragment).
type MTUWarning struct {
	VNI      uint32
	Port     string
	PortMTU  int
	VXLAN    string
	VXLANMTU int
}

// MTUWarnings lists the ports of the VNIs' bridges, the VXLAN device
// aside, whose MTU is larger than that VXLAN device's. It is pure.
func MTUWarnings(vnis []L2VNI, obs Observed) []MTUWarning {
	w := obs.view()
	ports := map[int][]*LinkInfo{} // master ifindex -> its ports
	for i := range obs.Links {
		if l := &obs.Links[i]; l.MasterIndex != 0 {
			ports[l.MasterIndex] = append(ports[l.MasterIndex], l)
		}
	}
	var out []MTUWarning
	for _, v := range vnis {
		br, vx := w.byName[v.Bridge], w.byName[v.VXLAN]
		if br == nil || vx == nil || br.Kind != "bridge" || vx.MasterIndex != br.Index {
			continue
		}
		for _, l := range ports[br.Index] {
			if l.Index != vx.Index && l.MTU > vx.MTU {
				out = append(out, MTUWarning{VNI: v.VNI, Port: l.Name, PortMTU: l.MTU, VXLAN: v.VXLAN, VXLANMTU: vx.MTU})
			}
		}
	}
	return out
}

// Repair is one re-application of a VNI's plan by Supervise.
type Repair struct {
	VNI     uint32
	VXLAN   string   // the VNI's VXLAN device
	Actions []Action // what was changed, in order; empty when Err is set
	// Recreated names the bridge or VXLAN device found deleted and
	// re-created by someone else since it was last seen (same name, new
	// ifindex), and adopted: its FDB is gone.
	Recreated []string
	// Err is set when the kernel conflicts with the VNI's configuration
	// (joined *ConflictError values; nothing was changed) or applying
	// failed (what this repair did was undone).
	Err error
}

// FDBLost reports whether the repair rebuilt or re-attached the VNI's
// VXLAN device or bridge: the kernel then lost (or may have lost) the
// FDB evpnd wrote there (the VXLAN device's entries go with it, the
// bridge's entries on the VXLAN port go when it leaves the bridge), and
// the caller must have it written again (fib.Reconciler.Resync).
func (r Repair) FDBLost() bool {
	if len(r.Recreated) > 0 {
		return true
	}
	for _, a := range r.Actions {
		switch a.Op {
		case OpCreateVXLAN, OpCreateBridge:
			return true
		case OpSetMaster, OpSetUp:
			if a.Dev == r.VXLAN {
				return true
			}
		}
	}
	return false
}
