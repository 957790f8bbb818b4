package fib

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSetMsgBytes pins the exact RTM_NEWNEIGH fib sends for a remote MAC
// (the message `bridge fdb replace MAC dev X dst VTEP self master
// extern_learn` sends) and for a flood entry. Needs no privileges.
func TestSetMsgBytes(t *testing.T) {
	le := binary.NativeEndian
	hdr := func(l uint32, typ, flags uint16, seq uint32) []byte {
		b := le.AppendUint32(nil, l)
		b = le.AppendUint16(b, typ)
		b = le.AppendUint16(b, flags)
		b = le.AppendUint32(b, seq)
		return le.AppendUint32(b, 0)
	}
	nd := func(ifindex uint32, state uint16, flags byte) []byte {
		b := []byte{unix.AF_BRIDGE, 0, 0, 0}
		b = le.AppendUint32(b, ifindex)
		b = le.AppendUint16(b, state)
		return append(b, flags, 0)
	}
	lladdr := func(m []byte) []byte { return append(append(le.AppendUint16(le.AppendUint16(nil, 10), 2), m...), 0, 0) }
	dst4 := func(a ...byte) []byte { return append(le.AppendUint16(le.AppendUint16(nil, 8), 1), a...) }

	e := FDBEntry{VNI: 100, Dev: "vxlan100", MAC: macN(1), VTEP: ip("10.0.0.2")}
	m := setMsg(e, 7)
	m.flags |= unix.NLM_F_ACK
	got := appendNeighMsg(nil, m, 42)
	var want []byte
	want = append(want, hdr(48, unix.RTM_NEWNEIGH, unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_REPLACE, 42)...)
	want = append(want, nd(7, unix.NUD_NOARP|unix.NUD_PERMANENT, unix.NTF_SELF|unix.NTF_MASTER|unix.NTF_EXT_LEARNED)...)
	m1 := macN(1)
	want = append(want, lladdr(m1[:])...)
	want = append(want, dst4(10, 0, 0, 2)...)
	if !bytes.Equal(got, want) {
		t.Errorf("MAC message\n got % x\nwant % x", got, want)
	}

	f := setMsg(FDBEntry{VNI: 100, Dev: "vxlan100", VTEP: ip("10.0.0.3")}, 7)
	got = appendNeighMsg(nil, f, 43)
	want = append(hdr(48, unix.RTM_NEWNEIGH, unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_APPEND, 43),
		nd(7, unix.NUD_NOARP|unix.NUD_PERMANENT, unix.NTF_SELF|unix.NTF_EXT_LEARNED)...)
	want = append(want, lladdr(make([]byte, 6))...)
	want = append(want, dst4(10, 0, 0, 3)...)
	if !bytes.Equal(got, want) {
		t.Errorf("flood message\n got % x\nwant % x", got, want)
	}

	// A MAC delete is two messages, bridge first, the VXLAN one bound to
	// the VTEP.
	dm := deleteMsgs(Op{Kind: OpDelete, Entry: e, Self: true, Master: true}, 7)
	if len(dm) != 2 || dm[0].ntf != unix.NTF_MASTER || dm[0].dst.IsValid() ||
		dm[1].ntf != unix.NTF_SELF || dm[1].dst != e.VTEP || dm[1].typ != unix.RTM_DELNEIGH {
		t.Errorf("delete messages: %+v", dm)
	}
}

func TestParseAcksAndFDB(t *testing.T) {
	le := binary.NativeEndian
	ack := func(seq uint32, errno int32) []byte {
		b := le.AppendUint32(nil, 36)
		b = le.AppendUint16(b, unix.NLMSG_ERROR)
		b = le.AppendUint16(b, unix.NLM_F_CAPPED)
		b = le.AppendUint32(b, seq)
		b = le.AppendUint32(b, 0)
		b = le.AppendUint32(b, uint32(-errno))
		// The capped original header.
		b = le.AppendUint32(b, 48)
		b = le.AppendUint16(b, unix.RTM_NEWNEIGH)
		b = le.AppendUint16(b, 0)
		b = le.AppendUint32(b, seq)
		return le.AppendUint32(b, 0)
	}
	buf := append(ack(5, 0), ack(6, int32(unix.ENOENT))...)
	msgs, err := parseMsgs(buf, nil)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("parse: %v, %d messages", err, len(msgs))
	}
	if seq, err := ackResult(msgs[0]); seq != 5 || err != nil {
		t.Errorf("ack: seq %d err %v", seq, err)
	}
	if seq, err := ackResult(msgs[1]); seq != 6 || !errors.Is(err, unix.ENOENT) || !ignorableDeleteErr(err) {
		t.Errorf("error: seq %d err %v", seq, err)
	}
	if _, err := parseMsgs(buf[:20], nil); err == nil {
		t.Error("truncated message accepted")
	}

	// An FDB dump entry is the same layout as our request.
	e := FDBEntry{VNI: 100, Dev: "vxlan100", MAC: macN(9), VTEP: ip("2001:db8::9")}
	raw := appendNeighMsg(nil, setMsg(e, 11), 1)
	f, ok := parseFDB(raw[unix.SizeofNlMsghdr:])
	if !ok || f.ifindex != 11 || f.mac != macN(9) || f.dst != e.VTEP || f.ntf != macFlags {
		t.Errorf("parseFDB: %+v ok=%v", f, ok)
	}
}
