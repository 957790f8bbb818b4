package vtep

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// vxlanOnly resolves #11 as the VXLAN device of VNI 100; nothing else is.
type vxlanOnly struct{}

func (vxlanOnly) vxlanVNI(idx int) (uint32, bool) { return 100, idx == 11 }

// withDst appends NDA_DST to a neighbour message built by neighMsg.
func withDst(b []byte, dst string) []byte {
	a := netip.MustParseAddr(dst).AsSlice()
	attr := make([]byte, rtaAlign(rtaHdrLen+len(a)))
	binary.NativeEndian.PutUint16(attr[0:2], uint16(rtaHdrLen+len(a)))
	binary.NativeEndian.PutUint16(attr[2:4], ndaDst)
	copy(attr[rtaHdrLen:], a)
	return append(b, attr...)
}

func TestForeignChange(t *testing.T) {
	const (
		m    = "02:00:00:00:00:01"
		zero = "00:00:00:00:00:00"
		perm = nudNoARP | nudPermanent // what `bridge fdb add ... self` and fib send
	)
	vtep := netip.MustParseAddr("10.0.0.2")
	tests := []struct {
		name string
		typ  uint16
		b    []byte
		want *VXLANChange
	}{
		// evpnd's own writes, or another program's extern_learn ones:
		// reported, marked, for fib to tell apart.
		{"VXLAN entry (self, extern_learn)", rtmNewNeigh,
			withDst(neighMsg(afBridge, 11, perm, ntfSelf|ntfExtLearned, m, 0, 0), "10.0.0.2"),
			&VXLANChange{VNI: 100, MAC: emac(m), VTEP: vtep, ExternLearn: true}},
		{"bridge entry (master, extern_learn)", rtmNewNeigh,
			neighMsg(afBridge, 11, 0, ntfExtLearned, m, 10, 0),
			&VXLANChange{VNI: 100, MAC: emac(m), Bridge: true, ExternLearn: true}},
		{"flood entry, extern_learn", rtmNewNeigh,
			withDst(neighMsg(afBridge, 11, perm, ntfSelf|ntfExtLearned, zero, 0, 0), "10.0.0.2"),
			&VXLANChange{VNI: 100, VTEP: vtep, ExternLearn: true}},
		{"hand-added VXLAN entry", rtmNewNeigh,
			withDst(neighMsg(afBridge, 11, nudNoARP, ntfSelf, m, 0, 0), "10.0.0.2"),
			&VXLANChange{VNI: 100, MAC: emac(m), VTEP: vtep}},
		{"deleted VXLAN entry, marked", rtmDelNeigh,
			withDst(neighMsg(afBridge, 11, perm, ntfSelf|ntfExtLearned, m, 0, 0), "10.0.0.2"),
			&VXLANChange{VNI: 100, MAC: emac(m), VTEP: vtep, Deleted: true}},
		{"hand-added bridge entry", rtmNewNeigh,
			neighMsg(afBridge, 11, nudNoARP, 0, m, 10, 0),
			&VXLANChange{VNI: 100, MAC: emac(m), Bridge: true}},
		{"deleted bridge entry, marked", rtmDelNeigh,
			neighMsg(afBridge, 11, 0, ntfExtLearned, m, 10, 0),
			&VXLANChange{VNI: 100, MAC: emac(m), Bridge: true, Deleted: true}},
		{"hand-appended flood entry", rtmNewNeigh,
			withDst(neighMsg(afBridge, 11, perm, ntfSelf, zero, 0, 0), "10.0.0.2"),
			&VXLANChange{VNI: 100, VTEP: vtep}},
		{"deleted flood entry", rtmDelNeigh,
			withDst(neighMsg(afBridge, 11, perm, ntfSelf, zero, 0, 0), "10.0.0.2"),
			&VXLANChange{VNI: 100, VTEP: vtep, Deleted: true}},
		{"local bridge entry (the port's own address)", rtmNewNeigh,
			neighMsg(afBridge, 11, nudPermanent, 0, m, 10, 0), nil},
		{"local bridge entry deleted", rtmDelNeigh,
			neighMsg(afBridge, 11, nudPermanent, 0, m, 10, 0), nil},
		{"multicast MAC", rtmNewNeigh,
			withDst(neighMsg(afBridge, 11, perm, ntfSelf, "01:00:5e:00:00:01", 0, 0), "10.0.0.2"), nil},
		{"bridge entry with a zero MAC", rtmNewNeigh, neighMsg(afBridge, 11, nudNoARP, 0, zero, 10, 0), nil},
		{"another device", rtmNewNeigh,
			withDst(neighMsg(afBridge, 12, nudNoARP, ntfSelf, m, 0, 0), "10.0.0.2"), nil},
		{"an access port's entry", rtmNewNeigh, neighMsg(afBridge, 12, 0, 0, m, 10, 0), nil},
		{"ARP entry", rtmNewNeigh, neighMsg(2, 11, 0x40, 0, m, 0, 0), nil},
		{"no MAC", rtmNewNeigh, neighMsg(afBridge, 11, nudNoARP, ntfSelf, "", 0, 0), nil},
		{"truncated", rtmDelNeigh, neighMsg(afBridge, 11, 0, ntfSelf, m, 0, 0)[:ndmsgLen+5], nil},
	}
	for _, tc := range tests {
		got, ok := foreignChange(tc.typ, tc.b, vxlanOnly{})
		switch {
		case tc.want == nil && ok:
			t.Errorf("%s: reported %+v, want nothing", tc.name, got)
		case tc.want != nil && !ok:
			t.Errorf("%s: not reported, want %+v", tc.name, *tc.want)
		case tc.want != nil && got != *tc.want:
			t.Errorf("%s: %+v, want %+v", tc.name, got, *tc.want)
		}
	}
}

// Decoding evpnd's own write (RTM_NEWNEIGH with extern_learn), which
// every remote MAC costs twice, allocates nothing.
func BenchmarkForeignChangeOwnWrite(b *testing.B) {
	msg := withDst(neighMsg(afBridge, 11, nudNoARP|nudPermanent, ntfSelf|ntfExtLearned, "02:00:00:00:00:02", 0, 0), "10.0.0.2")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := foreignChange(rtmNewNeigh, msg, vxlanOnly{}); !ok {
			b.Fatal("not reported")
		}
	}
}
