package vtep

import (
	"encoding/binary"
	"fmt"
	"maps"
	"testing"
)

// kind completes fakeResolver for worthDecoding: #11 (the VXLAN port)
// and #30 (an unmanaged bridge) are known to be neither managed bridge
// nor port; anything else not listed is unknown.
func (f fakeResolver) kind(idx int) (linkKind, uint32) {
	if _, ok := f.port(idx); ok {
		return linkAccess, 0
	}
	if vni, ok := f.bridgeVNI(idx); ok {
		return linkBridge, vni
	}
	switch idx {
	case 11, 30:
		return linkOther, 0
	}
	return linkUnknown, 0
}

// neighMsg builds a neighbour message as the kernel sends it (ndmsg, then
// NDA_LLADDR, NDA_MASTER when master != 0, NDA_FLAGS_EXT when ext != 0).
func neighMsg(family uint8, ifindex int, state uint16, flags uint8, mac string, master int, ext uint32) []byte {
	b := make([]byte, ndmsgLen)
	b[0] = family
	binary.NativeEndian.PutUint32(b[4:8], uint32(ifindex))
	binary.NativeEndian.PutUint16(b[8:10], state)
	b[10] = flags
	attr := func(typ uint16, val []byte) {
		a := make([]byte, rtaAlign(rtaHdrLen+len(val)))
		binary.NativeEndian.PutUint16(a[0:2], uint16(rtaHdrLen+len(val)))
		binary.NativeEndian.PutUint16(a[2:4], typ)
		copy(a[rtaHdrLen:], val)
		b = append(b, a...)
	}
	u32 := func(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
	if mac != "" {
		attr(ndaLLAddr, hw(mac))
	}
	attr(3 /* NDA_CACHEINFO, ignored */, make([]byte, 16))
	if master != 0 {
		attr(ndaMaster, u32(uint32(master)))
	}
	if ext != 0 {
		attr(ndaFlagsExt, u32(ext))
	}
	return b
}

func TestParseNeigh(t *testing.T) {
	const m1 = "02:00:00:00:00:01"
	b := neighMsg(afBridge, 12, nudNoARP, ntfSticky, m1, 10, ntfExtLocked)
	u, ok := parseNeigh(rtmDelNeigh, b)
	want := fdbUpdate{Deleted: true, Family: afBridge, LinkIndex: 12, MasterIndex: 10, MAC: hw(m1), State: nudNoARP, Flags: ntfSticky, FlagsExt: ntfExtLocked}
	if !ok || fmt.Sprint(u) != fmt.Sprint(want) {
		t.Errorf("parseNeigh = %+v, %v; want %+v", u, ok, want)
	}
	bad := []struct {
		name string
		b    []byte
	}{
		{"shorter than ndmsg", b[:ndmsgLen-1]},
		{"attribute longer than the message", b[:len(b)-2]},
		{"attribute length below its header", append(b[:ndmsgLen:ndmsgLen], 2, 0, 2, 0)},
	}
	for _, tc := range bad {
		if _, ok := parseNeigh(rtmNewNeigh, tc.b); ok {
			t.Errorf("%s: parsed", tc.name)
		}
	}
}

func TestWorthDecoding(t *testing.T) {
	const local, remote = "02:00:00:00:00:01", "02:00:00:00:00:02"
	s := macState{{VNI: 100, MAC: emac(local)}: {Port: "acc0", Index: 12}}
	tests := []struct {
		name string
		typ  uint16
		b    []byte
		want bool
	}{
		{"learned on an access port", rtmNewNeigh, neighMsg(afBridge, 12, 0x02, 0, remote, 10, 0), true},
		{"deleted on an access port", rtmDelNeigh, neighMsg(afBridge, 12, 0x02, 0, local, 10, 0), true},
		{"on a port not seen yet", rtmNewNeigh, neighMsg(afBridge, 99, 0x02, 0, remote, 10, 0), true},
		{"remote MAC on the VXLAN port", rtmNewNeigh, neighMsg(afBridge, 11, 0x02, ntfExtLearned, remote, 10, 0), false},
		{"VXLAN port takes over a local MAC", rtmNewNeigh, neighMsg(afBridge, 11, 0x02, ntfExtLearned, local, 10, 0), true},
		{"local MAC's remote entry deleted", rtmDelNeigh, neighMsg(afBridge, 11, 0x02, ntfExtLearned, local, 10, 0), false},
		{"local MAC on the VXLAN port of an unseen bridge", rtmNewNeigh, neighMsg(afBridge, 11, 0x02, ntfExtLearned, local, 98, 0), true},
		{"local MAC in another VNI's bridge", rtmNewNeigh, neighMsg(afBridge, 11, 0x02, ntfExtLearned, local, 20, 0), false},
		{"local MAC on an unmanaged bridge's port", rtmNewNeigh, neighMsg(afBridge, 31, 0x02, 0, local, 30, 0), false},
		{"the bridge's own entry for a local MAC", rtmNewNeigh, neighMsg(afBridge, 10, nudPermanent, 0, local, 10, 0), true},
		{"VXLAN entry (NTF_SELF)", rtmNewNeigh, neighMsg(afBridge, 11, 0x02, ntfSelf|ntfExtLearned, local, 0, 0), false},
		{"ARP entry", rtmNewNeigh, neighMsg(2, 10, 0x40, ntfExtLearned, local, 0, 0), false},
		{"no master", rtmNewNeigh, neighMsg(afBridge, 11, 0x02, 0, local, 0, 0), false},
		{"no MAC", rtmNewNeigh, neighMsg(afBridge, 11, 0x02, 0, "", 10, 0), false},
		{"truncated header", rtmNewNeigh, neighMsg(afBridge, 12, 0x02, 0, local, 10, 0)[:8], false},
	}
	for _, tc := range tests {
		if got := s.worthDecoding(tc.typ, tc.b, fakeResolver{}); got != tc.want {
			t.Errorf("%s: worthDecoding = %v, want %v", tc.name, got, tc.want)
		}
	}
	if (macState{}).worthDecoding(rtmNewNeigh, tests[4].b, fakeResolver{}) {
		t.Error("a take-over is worth decoding with no local MACs at all")
	}
}

// TestWorthDecodingHidesNoEvent checks worthDecoding's promise over every
// combination of the fields it and classify look at: a message it drops
// would not have changed the reported state.
func TestWorthDecodingHidesNoEvent(t *testing.T) {
	const m1, m2 = "02:00:00:00:00:01", "02:00:00:00:00:02"
	base := macState{
		{VNI: 100, MAC: emac(m1)}: {Port: "acc0", Index: 12},
		{VNI: 200, MAC: emac(m2)}: {Port: "acc2", Index: 22, Static: true},
	}
	n, dropped := 0, 0
	for _, typ := range []uint16{rtmNewNeigh, rtmDelNeigh} {
		for _, family := range []uint8{afBridge, 2, 10} {
			for _, idx := range []int{10, 11, 12, 13, 20, 22, 30, 31, 99} {
				for _, master := range []int{0, 10, 20, 30, 98} {
					for _, flags := range []uint8{0, ntfSelf, ntfExtLearned, ntfSticky, ntfSelf | ntfExtLearned} {
						for _, state := range []uint16{0x02, nudNoARP, nudPermanent} {
							for _, m := range []string{m1, m2, "02:00:00:00:00:03", "01:00:5e:00:00:01"} {
								for _, ext := range []uint32{0, ntfExtLocked} {
									b := neighMsg(family, idx, state, flags, m, master, ext)
									n++
									if base.worthDecoding(typ, b, fakeResolver{}) {
										continue
									}
									dropped++
									u, ok := parseNeigh(typ, b)
									if !ok {
										t.Fatalf("parseNeigh failed on %x", b)
									}
									o, ok := classify(u, fakeResolver{})
									if !ok {
										continue
									}
									s := maps.Clone(base)
									if ev, ok := s.apply(o); ok {
										t.Errorf("dropped %+v (type %d), which reports %s", u, typ, evString(ev))
									}
								}
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d of %d messages dropped undecoded", dropped, n)
	if dropped == 0 || dropped == n {
		t.Errorf("dropped %d of %d: the test covers nothing", dropped, n)
	}
}

// The remote entries evpnd writes are dropped without an allocation.
func TestWorthDecodingAllocs(t *testing.T) {
	s := macState{{VNI: 100, MAC: emac("02:00:00:00:00:01")}: {Port: "acc0", Index: 12}}
	b := neighMsg(afBridge, 11, 0x02, ntfExtLearned, "02:00:00:00:00:02", 10, 0)
	allocs := testing.AllocsPerRun(1000, func() {
		if s.worthDecoding(rtmNewNeigh, b, fakeResolver{}) {
			t.Fatal("remote entry worth decoding")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per dropped message, want 0", allocs)
	}
}

// BenchmarkNeighFilter compares what one notification costs the learner:
// a remote MAC's bridge entry on the VXLAN port, dropped after a look at
// its header and two attributes, and a local MAC's, parsed, classified
// and applied.
func BenchmarkNeighFilter(b *testing.B) {
	s := macState{{VNI: 100, MAC: emac("02:00:00:00:00:01")}: {Port: "acc0", Index: 12}}
	b.Run("vxlan-port-dropped", func(b *testing.B) {
		msg := neighMsg(afBridge, 11, 0x02, ntfExtLearned, "02:00:00:00:00:02", 10, 0)
		b.ReportAllocs()
		for b.Loop() {
			if s.worthDecoding(rtmNewNeigh, msg, fakeResolver{}) {
				b.Fatal("decoded")
			}
		}
	})
	b.Run("access-port-decoded", func(b *testing.B) {
		msg := neighMsg(afBridge, 12, 0x02, 0, "02:00:00:00:00:01", 10, 0)
		b.ReportAllocs()
		for b.Loop() {
			if !s.worthDecoding(rtmNewNeigh, msg, fakeResolver{}) {
				b.Fatal("dropped")
			}
			u, _ := parseNeigh(rtmNewNeigh, msg)
			if o, ok := classify(u, fakeResolver{}); ok {
				s.apply(o)
			}
		}
	})
}
