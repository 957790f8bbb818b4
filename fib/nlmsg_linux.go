package fib

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/evpnd/evpnd/fib/nlfdb"
	"github.com/evpnd/evpnd/speaker/evpn"
	"golang.org/x/sys/unix"
)

// Wire format of the rtnetlink neighbour messages fib sends and reads
// (include/uapi/linux/neighbour.h). The messages are built by hand, without
// per-attribute allocations, because 100k of them must go out in well under
// a second.

const (
	sizeofNdmsg = 12
	// fdbState is what `bridge fdb replace ... self` sends by default:
	// the VXLAN driver accepts only NUD_PERMANENT or NUD_REACHABLE, and a
	// permanent entry never ages out. The bridge ignores the state of an
	// extern_learn entry.
	fdbState = unix.NUD_NOARP | unix.NUD_PERMANENT
	// Flags of the one message that writes a remote MAC (zebra's shape).
	macFlags   = unix.NTF_SELF | unix.NTF_MASTER | unix.NTF_EXT_LEARNED
	floodFlags = unix.NTF_SELF | unix.NTF_EXT_LEARNED
	// ntfSticky is NTF_STICKY (linux/neighbour.h), which x/sys/unix does
	// not define: a bridge entry that does not move to another port.
	ntfSticky = 0x40
)

var native = binary.NativeEndian

// neighMsg describes one RTM_NEWNEIGH/RTM_DELNEIGH request.
type neighMsg struct {
	typ     uint16 // RTM_NEWNEIGH or RTM_DELNEIGH
	flags   uint16 // NLM_F_* besides NLM_F_REQUEST
	ifindex int32
	state   uint16
	ntf     uint8 // NTF_*
	mac     evpn.MAC
	dst     netip.Addr // NDA_DST when valid
	vni     uint32     // NDA_VNI when not 0
}

// appendNeighMsg appends m as one netlink message with sequence seq.
func appendNeighMsg(b []byte, m neighMsg, seq uint32) []byte {
	start := len(b)
	b = append(b, make([]byte, unix.SizeofNlMsghdr+sizeofNdmsg)...)
	h := b[start:]
	native.PutUint16(h[4:], m.typ)
	native.PutUint16(h[6:], unix.NLM_F_REQUEST|m.flags)
	native.PutUint32(h[8:], seq)
	// h[12:16] pid 0: the kernel fills in the socket's port id.
	nd := h[unix.SizeofNlMsghdr:]
	nd[0] = unix.AF_BRIDGE
	native.PutUint32(nd[4:], uint32(m.ifindex))
	native.PutUint16(nd[8:], m.state)
	nd[10] = m.ntf
	b = appendAttr(b, unix.NDA_LLADDR, m.mac[:])
	if m.dst.IsValid() {
		a := m.dst.AsSlice()
		b = appendAttr(b, unix.NDA_DST, a)
	}
	if m.vni != 0 {
		var v [4]byte
		native.PutUint32(v[:], m.vni)
		b = appendAttr(b, unix.NDA_VNI, v[:])
	}
	native.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

func appendAttr(b []byte, typ uint16, v []byte) []byte {
	l := unix.SizeofRtAttr + len(v)
	b = native.AppendUint16(b, uint16(l))
	b = native.AppendUint16(b, typ)
	b = append(b, v...)
	for pad := align4(l) - l; pad > 0; pad-- {
		b = append(b, 0)
	}
	return b
}

func align4(n int) int { return (n + 3) &^ 3 }

// setMsg is the message that writes op (OpSet).
func setMsg(e FDBEntry, ifindex int32) neighMsg {
	if e.IsFlood() {
		return neighMsg{typ: unix.RTM_NEWNEIGH, flags: unix.NLM_F_CREATE | unix.NLM_F_APPEND,
			ifindex: ifindex, state: fdbState, ntf: floodFlags, dst: e.VTEP}
	}
	return neighMsg{typ: unix.RTM_NEWNEIGH, flags: unix.NLM_F_CREATE | unix.NLM_F_REPLACE,
		ifindex: ifindex, state: fdbState, ntf: macFlags, mac: e.MAC, dst: e.VTEP, vni: e.SendVNI}
}

// setMsgs are the messages that carry out an OpSet: setMsg, and for a
// sticky MAC (or one to unpin) a second, bridge-only one that sets (or
// clears) NTF_STICKY. The bridge honours the flag only in a message
// without NTF_EXT_LEARNED (br_fdb.c takes the external-learn path for
// those and ignores it), with a state other than permanent (which would
// make the entry local): zebra's NUD_NOARP|NUD_REACHABLE (static) to pin,
// NUD_REACHABLE to unpin. The entry keeps its extern_learn mark either way.
func setMsgs(op Op, ifindex int32, out []neighMsg) []neighMsg {
	out = append(out, setMsg(op.Entry, ifindex))
	e := op.Entry
	switch {
	case e.IsFlood():
	case e.Sticky:
		out = append(out, neighMsg{typ: unix.RTM_NEWNEIGH, flags: unix.NLM_F_CREATE | unix.NLM_F_REPLACE,
			ifindex: ifindex, state: unix.NUD_NOARP | unix.NUD_REACHABLE, ntf: unix.NTF_MASTER | ntfSticky, mac: e.MAC})
	case op.Unpin:
		out = append(out, neighMsg{typ: unix.RTM_NEWNEIGH, flags: unix.NLM_F_CREATE | unix.NLM_F_REPLACE,
			ifindex: ifindex, state: unix.NUD_REACHABLE, ntf: unix.NTF_MASTER, mac: e.MAC})
	}
	return out
}

// deleteMsgs are the messages that carry out an OpDelete. A MAC's bridge
// and VXLAN entries go in separate messages: in one message the kernel
// stops after the bridge part fails, and the bridge part fails with ENOENT
// when the MAC has meanwhile been learned on another port (which is the
// reason the local entry survives).
func deleteMsgs(op Op, ifindex int32) []neighMsg {
	var out []neighMsg
	e := op.Entry
	if op.Master && !e.IsFlood() {
		out = append(out, neighMsg{typ: unix.RTM_DELNEIGH, ifindex: ifindex, ntf: unix.NTF_MASTER, mac: e.MAC})
	}
	if op.Self || e.IsFlood() {
		// The VXLAN driver matches the remote by address and VNI: an entry
		// with a VNI of its own is deleted only with it.
		out = append(out, neighMsg{typ: unix.RTM_DELNEIGH, ifindex: ifindex, ntf: unix.NTF_SELF, mac: e.MAC, dst: e.VTEP, vni: e.SendVNI})
	}
	return out
}

// nlMsg is one parsed netlink message; data aliases the receive buffer.
type nlMsg struct {
	typ, flags uint16
	seq        uint32
	data       []byte
}

// parseMsgs splits a receive buffer into messages.
func parseMsgs(b []byte, out []nlMsg) ([]nlMsg, error) {
	for len(b) >= unix.SizeofNlMsghdr {
		l := int(native.Uint32(b))
		if l < unix.SizeofNlMsghdr || l > len(b) {
			return out, fmt.Errorf("netlink: bad message length %d of %d", l, len(b))
		}
		out = append(out, nlMsg{
			typ:   native.Uint16(b[4:]),
			flags: native.Uint16(b[6:]),
			seq:   native.Uint32(b[8:]),
			data:  b[unix.SizeofNlMsghdr:l],
		})
		b = b[min(align4(l), len(b)):]
	}
	return out, nil
}

// ackResult decodes an NLMSG_ERROR message: the sequence number of the
// request it answers and its error (nil for an ack).
func ackResult(m nlMsg) (uint32, error) {
	d := m.data
	if len(d) < 4+unix.SizeofNlMsghdr {
		return m.seq, errors.New("netlink: short error message")
	}
	errno := -int32(native.Uint32(d))
	seq := native.Uint32(d[4+8:])
	if errno == 0 {
		return seq, nil
	}
	var err error = syscall.Errno(errno)
	// Extended ack TLVs follow the (capped) original header.
	if m.flags&unix.NLM_F_ACK_TLVS != 0 && m.flags&unix.NLM_F_CAPPED != 0 {
		tlv := d[4+unix.SizeofNlMsghdr:]
		for len(tlv) >= unix.SizeofRtAttr {
			l := int(native.Uint16(tlv))
			if l < unix.SizeofRtAttr || l > len(tlv) {
				break
			}
			if native.Uint16(tlv[2:]) == unix.NLMSGERR_ATTR_MSG {
				err = fmt.Errorf("%w: %s", err, cString(tlv[unix.SizeofRtAttr:l]))
			}
			tlv = tlv[min(align4(l), len(tlv)):]
		}
	}
	return seq, err
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// fdbFromMsg decodes one RTM_NEWNEIGH of a bridge FDB dump.
type fdbMsg struct {
	ifindex int32
	state   uint16
	ntf     uint8
	mac     evpn.MAC
	macOK   bool
	dst     netip.Addr
	vni     uint32 // NDA_VNI: sent only when not the device's VNI
	master  int32
}

func parseFDB(d []byte) (fdbMsg, bool) {
	var f fdbMsg
	if len(d) < sizeofNdmsg || d[0] != unix.AF_BRIDGE {
		return f, false
	}
	n, _ := nlfdb.Parse(d) // a malformed tail leaves what came before it
	f.ifindex, f.state, f.ntf = n.Ifindex, n.State, n.Flags
	f.mac, f.macOK = n.MAC()
	f.dst, f.vni, f.master = n.Dst, n.VNI, n.Master
	return f, f.macOK
}
