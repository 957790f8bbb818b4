package vtep

import (
	"encoding/binary"

	"github.com/evpnd/evpnd/fib/nlfdb"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// The learner reads neighbour notifications itself instead of through
// netlink.NeighSubscribe: evpnd's own fib writes two notifications per
// remote MAC on the VXLAN ports (the VXLAN entry and the bridge entry),
// 200k for a 100k-route burst, and none of them is a local MAC. Decoding
// each into a netlink.Neigh, with its allocations, only for classify to
// drop it was most of the learner's CPU in such a burst. Now a socket
// filter drops the VXLAN entries (NTF_SELF) and the ARP/ND neighbours in
// the kernel (neighFilter); of the rest, the ndmsg header and at most two
// attributes are read in place and the bridge entries of remote MACs are
// dropped before anything is decoded; what is left is parsed without
// allocating.

// Layouts and constants from linux/netlink.h, linux/rtnetlink.h and
// linux/neighbour.h (nlfdb's, or repeated), so the parsing builds and is
// tested on every platform.
const (
	nlmsgHdrLen  = nlfdb.NlmsgHdrLen
	ndmsgLen     = nlfdb.NdmsgLen
	rtaHdrLen    = 4  // struct rtattr
	nlmsgError   = 2  // NLMSG_ERROR
	rtmNewNeigh  = 28 // RTM_NEWNEIGH
	rtmDelNeigh  = 29 // RTM_DELNEIGH
	ndaLLAddr    = nlfdb.NdaLLAddr
	ndaMaster    = nlfdb.NdaMaster
	ndaFlagsExt  = nlfdb.NdaFlagsExt
	macLen       = 6
	rtaAlignment = 4
)

func rtaAlign(n int) int { return (n + rtaAlignment - 1) &^ (rtaAlignment - 1) }

// linkKind is what the resolver already knows about an ifindex.
type linkKind int

const (
	linkUnknown linkKind = iota // not seen yet: must be looked up
	linkAccess                  // a configured access port
	linkBridge                  // a managed bridge
	linkOther                   // known to be neither (VXLAN devices, other links)
)

// linkKinds tells what an ifindex is without looking it up.
type linkKinds interface {
	kind(ifindex int) (linkKind, uint32)
}

// worthDecoding reports whether the neighbour message b (the ndmsg and its
// attributes; typ RTM_NEWNEIGH or RTM_DELNEIGH) can change the reported
// state s, reading the header and at most two attributes in place. It
// never reports false for a message that classify and apply would turn
// into an event:
//   - not AF_BRIDGE (ARP/ND neighbours) or NTF_SELF (the VXLAN device's
//     own table, half of every remote MAC evpnd writes): classify drops it;
//   - on a port (any link but a bridge or a VXLAN device), or on an
//     ifindex not seen yet: decode it, unless its master is known to be
//     a bridge evpnd does not manage;
//   - on a known non-access port (a VXLAN port, a bridge itself, a port of
//     an unmanaged bridge): a delete never matters, since a local entry
//     lives on an access port and apply ignores deletes of other ports'
//     entries. A live entry matters only when it takes over a MAC that is
//     local now (the bridge holds one entry per MAC), so the MAC and the
//     master are read in place and looked up in s.
func (s macState) worthDecoding(typ uint16, b []byte, r linkKinds) bool {
	h, ok := nlfdb.ParseHeader(b)
	if !ok || h.Family != afBridge || h.Flags&ntfSelf != 0 {
		return false
	}
	var mac []byte
	master := 0
	attrs := func() {
		nlfdb.WalkAttrs(b, func(t uint16, v []byte) {
			switch {
			case t == ndaLLAddr:
				mac = v
			case t == ndaMaster && len(v) >= 4:
				master = int(binary.NativeEndian.Uint32(v))
			}
		})
	}
	switch k, _ := r.kind(int(h.Ifindex)); k {
	case linkUnknown:
		return true
	case linkAccess:
		attrs()
		mk, _ := r.kind(master)
		return mk != linkOther
	}
	if typ != rtmNewNeigh || len(s) == 0 {
		return false
	}
	attrs()
	if master == 0 || len(mac) != macLen {
		return false // classify drops it
	}
	k, vni := r.kind(master)
	switch k {
	case linkUnknown:
		return true
	case linkBridge:
		_, local := s[MACKey{VNI: vni, MAC: evpn.MAC(mac)}]
		return local
	}
	return false
}

// parseNeigh decodes a neighbour message (the ndmsg and its attributes)
// into an fdbUpdate without allocating: MAC aliases b, so the update must
// not outlive b. It reports false for a malformed message.
func parseNeigh(typ uint16, b []byte) (fdbUpdate, bool) {
	n, ok := nlfdb.Parse(b)
	return fdbUpdate{
		Deleted:     typ == rtmDelNeigh,
		Family:      int(n.Family),
		LinkIndex:   int(n.Ifindex),
		State:       int(n.State),
		Flags:       int(n.Flags),
		MAC:         n.LLAddr,
		MasterIndex: int(n.Master),
		FlagsExt:    int(n.FlagsExt),
	}, ok
}
