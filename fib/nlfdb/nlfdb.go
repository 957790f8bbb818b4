// Package nlfdb decodes the kernel's neighbour netlink messages
// (RTM_NEWNEIGH, RTM_DELNEIGH: struct ndmsg and its attributes) as bridge
// FDB entries carry them, in place and without allocating: fib reads its
// dumps with it, vtep's learner the notifications of local MACs, and
// evpnbench its watch of the kernel's FDB. It is the one decoder of those
// messages; writing them stays with fib, the one writer.
//
// The layouts and constants of linux/netlink.h, linux/rtnetlink.h and
// linux/neighbour.h are repeated here, so the package builds and is tested
// on every platform.
package nlfdb

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// Sizes and attribute types used here.
const (
	NlmsgHdrLen = 16 // struct nlmsghdr
	NdmsgLen    = 12 // struct ndmsg: family, pad1, pad2, ifindex, state, flags, type
	rtaHdrLen   = 4  // struct rtattr
	nlaTypeMask = 0x3fff

	NdaDst      = 1  // NDA_DST
	NdaLLAddr   = 2  // NDA_LLADDR
	NdaVNI      = 7  // NDA_VNI
	NdaMaster   = 9  // NDA_MASTER
	NdaFlagsExt = 15 // NDA_FLAGS_EXT
)

var native = binary.NativeEndian

func align4(n int) int { return (n + 3) &^ 3 }

// Header is the fixed part of a neighbour message (struct ndmsg).
type Header struct {
	Family  uint8
	Ifindex int32
	State   uint16 // NUD_*
	Flags   uint8  // NTF_*
}

// ParseHeader reads the ndmsg at the start of msg, false when msg is too
// short for one.
func ParseHeader(msg []byte) (Header, bool) {
	if len(msg) < NdmsgLen {
		return Header{}, false
	}
	return Header{
		Family:  msg[0],
		Ifindex: int32(native.Uint32(msg[4:8])),
		State:   native.Uint16(msg[8:10]),
		Flags:   msg[10],
	}, true
}

// WalkAttrs calls fn for each well-formed attribute of msg (an ndmsg and
// its attributes), with its type (flag bits masked off) and value, and
// reports whether msg was well formed. fn has seen the attributes before a
// malformed one.
func WalkAttrs(msg []byte, fn func(typ uint16, val []byte)) bool {
	if len(msg) < NdmsgLen {
		return false
	}
	b := msg[NdmsgLen:]
	for len(b) >= rtaHdrLen {
		l := int(native.Uint16(b[0:2]))
		if l < rtaHdrLen || l > len(b) {
			return false
		}
		fn(native.Uint16(b[2:4])&nlaTypeMask, b[rtaHdrLen:l])
		b = b[min(align4(l), len(b)):]
	}
	return true
}

// Neigh is one neighbour message decoded. LLAddr aliases the message, so
// a Neigh must not outlive it.
type Neigh struct {
	Header
	LLAddr   []byte     // NDA_LLADDR
	Dst      netip.Addr // NDA_DST, an IPv4-mapped address unmapped: the VXLAN remote
	Master   int32      // NDA_MASTER: the bridge of a bridge entry; 0 when absent
	VNI      uint32     // NDA_VNI: sent only when not the device's VNI; 0 when absent
	FlagsExt uint32     // NDA_FLAGS_EXT
}

// MAC returns LLAddr as a MAC, false unless it is six bytes long.
func (n *Neigh) MAC() (evpn.MAC, bool) {
	if len(n.LLAddr) != len(evpn.MAC{}) {
		return evpn.MAC{}, false
	}
	return evpn.MAC(n.LLAddr), true
}

// Parse decodes msg, the payload of one RTM_NEWNEIGH or RTM_DELNEIGH. It
// reports false for a malformed message (too short for an ndmsg, or an
// attribute overrunning it); the attributes before the bad one are
// decoded.
func Parse(msg []byte) (Neigh, bool) {
	h, ok := ParseHeader(msg)
	if !ok {
		return Neigh{}, false
	}
	n := Neigh{Header: h}
	ok = WalkAttrs(msg, func(t uint16, v []byte) {
		switch t {
		case NdaLLAddr:
			n.LLAddr = v
		case NdaDst:
			if ip, ok := netip.AddrFromSlice(v); ok {
				n.Dst = ip.Unmap()
			}
		case NdaMaster:
			if len(v) >= 4 {
				n.Master = int32(native.Uint32(v))
			}
		case NdaVNI:
			if len(v) >= 4 {
				n.VNI = native.Uint32(v)
			}
		case NdaFlagsExt:
			if len(v) >= 4 {
				n.FlagsExt = native.Uint32(v)
			}
		}
	})
	return n, ok
}

// Messages calls fn with the type and payload of each netlink message in
// b (what one read from a netlink socket returned), in order. It returns
// an error for a message whose length does not fit, having called fn for
// the messages before it.
func Messages(b []byte, fn func(typ uint16, payload []byte)) error {
	for len(b) >= NlmsgHdrLen {
		l := int(native.Uint32(b))
		if l < NlmsgHdrLen || l > len(b) {
			return fmt.Errorf("netlink: bad message length %d of %d", l, len(b))
		}
		fn(native.Uint16(b[4:6]), b[NlmsgHdrLen:l])
		b = b[min(align4(l), len(b)):]
	}
	return nil
}
