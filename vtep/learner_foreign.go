package vtep

import (
	"net/netip"

	"github.com/evpnd/evpnd/fib/nlfdb"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// VXLANChange is a change of the FDB of a managed VXLAN device, as
// Learner.OnForeignVXLAN reports it: an operator's `bridge fdb
// add/del/replace` on the device, a flush by the kernel, another
// program's write, or evpnd's own (notifications carry no sender; see
// OnForeignVXLAN).
type VXLANChange struct {
	VNI uint32
	MAC evpn.MAC // zero: a flood-list (ingress replication) entry
	// VTEP is the VXLAN entry's remote (NDA_DST); unset for a bridge
	// entry.
	VTEP netip.Addr
	// Bridge is set for the bridge's (master) entry for the MAC on the
	// VXLAN port; otherwise the change is to the VXLAN device's own
	// (self) entry.
	Bridge  bool
	Deleted bool // RTM_DELNEIGH; otherwise added or changed
	// ExternLearn says an added or changed entry carries extern_learn
	// (NTF_EXT_LEARNED): evpnd's own write, or another program's that
	// only the consumer's record can tell from it.
	ExternLearn bool
	// Lost says that changes may have been missed: the event socket
	// overran or failed, and the learner has just subscribed again. No
	// other field is set. The consumer should read the kernel again
	// (fib.Reconciler.Resync).
	Lost bool
}

// ndaDst is NDA_DST from linux/neighbour.h.
const ndaDst = 1

// vxlanResolver tells which ifindexes are managed VXLAN devices.
type vxlanResolver interface {
	vxlanVNI(ifindex int) (vni uint32, ok bool)
}

// foreignChange reports whether the neighbour message b (typ RTM_NEWNEIGH
// or RTM_DELNEIGH) is a change of a managed VXLAN device's FDB, and which.
// evpnd writes every entry with extern_learn, but so may another program
// (a stray entry fib must remove), so an added or changed entry carrying
// NTF_EXT_LEARNED is reported with ExternLearn set, for the consumer to
// compare with what it wrote; a delete carries the deleted entry's flags.
// Skipped: local (NUD_PERMANENT) bridge entries such as the port's own
// address, and multicast MACs.
func foreignChange(typ uint16, b []byte, r vxlanResolver) (VXLANChange, bool) {
	h, ok := nlfdb.ParseHeader(b)
	if !ok || h.Family != afBridge {
		return VXLANChange{}, false
	}
	deleted := typ == rtmDelNeigh
	marked := !deleted && h.Flags&ntfExtLearned != 0
	self := h.Flags&ntfSelf != 0
	if !self && h.State&nudPermanent != 0 {
		return VXLANChange{}, false // local entry: the kernel's or an operator's, not fib's
	}
	vni, ok := r.vxlanVNI(int(h.Ifindex))
	if !ok {
		return VXLANChange{}, false
	}
	n, ok := nlfdb.Parse(b)
	mac, dst, master := n.LLAddr, n.Dst, n.Master
	if !ok || len(mac) != macLen {
		return VXLANChange{}, false
	}
	c := VXLANChange{VNI: vni, MAC: evpn.MAC(mac), Deleted: deleted, ExternLearn: marked}
	switch {
	case self && (c.MAC.IsUnicast() || c.MAC.IsZero()):
		c.VTEP = dst
	case !self && master != 0 && c.MAC.IsUnicast():
		c.Bridge = true
	default:
		return VXLANChange{}, false
	}
	return c, true
}
