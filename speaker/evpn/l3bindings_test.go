package evpn

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
)

func fmtBindings(bs []Binding) []string {
	var out []string
	for _, b := range bs {
		kind, state := "remote "+b.VTEP.String(), "active"
		if b.Local {
			kind = "local"
		}
		if !b.Active {
			state = "inactive"
		}
		out = append(out, fmt.Sprintf("%d %s %s %s %s seq=%d sticky=%v", b.L2VNI, b.IP, b.MAC, kind, state, b.Seq, b.Sticky))
	}
	return out
}

func expectBindings(t *testing.T, step string, got []Binding, want ...string) {
	t.Helper()
	if g := fmtBindings(got); !slices.Equal(g, want) {
		t.Errorf("%s: bindings\n got %q\nwant %q", step, g, want)
	}
}

// Bindings lists one row per IP of the VRF's members: the local host while
// it is advertised, the remote host installed when one outbids it, and a
// local host whose MAC is away as inactive.
func TestL3Bindings(t *testing.T) {
	tab := NewL3Table(l3opts())
	expectBindings(t, "empty", tab.Bindings(4001, 0))
	hostB := netip.MustParseAddr("192.168.100.11")
	hostC := netip.MustParseAddr("192.168.100.12")
	tab.LocalHost(100, mac1, hostA, 0, false)
	tab.Update(macIP(vtep2, mac2, hostB, 2, rmac2))
	tab.Update(macIP(vtep2, mac2, host6, 2, rmac2))
	expectBindings(t, "one local, two remote", tab.Bindings(4001, 0),
		"100 192.168.100.10 02:00:00:00:00:01 local active seq=0 sticky=false",
		"100 192.168.100.11 02:00:00:00:00:02 remote 10.0.0.2 active seq=2 sticky=false",
		"100 2001:db8:100::10 02:00:00:00:00:02 remote 10.0.0.2 active seq=2 sticky=false")

	// A remote route at a higher sequence takes hostA: one row, remote.
	tab.Update(macIP(vtep3, mac1, hostA, 4, rmac3))
	expectBindings(t, "outbid", tab.Bindings(4001, 100)[:1],
		"100 192.168.100.10 02:00:00:00:00:01 remote 10.0.0.3 active seq=4 sticky=false")
	// The host comes back: local again, with the MAC's new sequence.
	tab.LocalMACSeq(100, mac1, 5, false)
	expectBindings(t, "back", tab.Bindings(4001, 100)[:1],
		"100 192.168.100.10 02:00:00:00:00:01 local active seq=5 sticky=false")

	// A local host whose MAC moved away, with no remote route for its IP
	// yet: kept, inactive.
	tab.LocalHost(100, mac2, hostC, 1, true)
	tab.LocalMACAway(100, mac2)
	expectBindings(t, "away", tab.Bindings(4001, 100)[2:3],
		"100 192.168.100.12 02:00:00:00:00:02 local inactive seq=1 sticky=true")
	if b, ok := tab.Binding(100, hostC); !ok || b.Active || !b.Local {
		t.Errorf("Binding of the away host: %+v %v", b, ok)
	}
	tab.LocalHostGone(100, hostC)
	if n := len(tab.Bindings(4001, 0)); n != 3 {
		t.Errorf("after the away host is gone: %d bindings, want 3", n)
	}

	// Binding agrees with Bindings, row by row.
	for _, b := range tab.Bindings(4001, 0) {
		if got, ok := tab.Binding(b.L2VNI, b.IP); !ok || got != b {
			t.Errorf("Binding(%d, %s) = %+v %v, want %+v", b.L2VNI, b.IP, got, ok, b)
		}
	}
	if b, ok := tab.Binding(100, hostC); ok {
		t.Errorf("Binding of a gone host: %+v", b)
	}
	if vni, ok := tab.MemberOfRD(RDFromIP(vtep1, 2)); !ok || vni != 100 {
		t.Errorf("MemberOfRD = %d %v, want 100", vni, ok)
	}
	if _, ok := tab.MemberOfRD(RDFromIP(vtep2, 2)); ok {
		t.Error("MemberOfRD found another leaf's RD")
	}

	// Another member's filter, an L2VNI outside the VRF and an unknown
	// L3VNI list nothing.
	expectBindings(t, "other L2VNI", tab.Bindings(4001, 200))
	expectBindings(t, "unknown L3VNI", tab.Bindings(4002, 0))
}
