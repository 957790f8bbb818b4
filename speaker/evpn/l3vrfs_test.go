package evpn

import (
	"net/netip"
	"testing"
)

// blue is a second VRF beside l3opts' red: L3VNI 4002, member L2VNI 200.
func blue() L3VRF {
	return L3VRF{
		Name: "blue", L3VNI: 4002, RD: RDFromIP(vtep1, 3), RouterMAC: ownRM,
		ExportRTs: []RT{rtAuto(4002)}, Import: ImportRule{Auto: true},
		Members: []L3Member{{L2VNI: 200, RD: RDFromIP(vtep1, 4), ExportRTs: []RT{rtAuto(200)}, Import: ImportRule{Auto: true},
			GatewayMAC: gwMAC, GatewayIPs: []netip.Addr{gw4}}},
	}
}

// blueMACIP is macIP in blue (L2VNI 200, L3VNI 4002).
func blueMACIP(vtep netip.Addr, mac MAC, ip netip.Addr, rmac MAC) *Route {
	r := macIP(vtep, mac, ip, 0, rmac)
	r.Key.RD = RDFromIP(vtep, 4)
	r.Labels = []uint32{200, 4002}
	r.RTs = []RT{rtAuto(200), rtAuto(4002)}
	return r
}

// A VRF added at run time imports the routes fed after it; removing it
// undoes exactly its state (neighbours, host and prefix routes, local
// routes withdrawn) and leaves the other VRF's alone. SnapshotVRF shows
// one VRF.
func TestL3AddRemoveVRF(t *testing.T) {
	tab := NewL3Table(l3opts())
	// red's state: a remote host and a type-5.
	tab.Update(macIP(vtep2, mac1, hostA, 0, rmac2))
	tab.Update(type5(vtep2, 1, "172.16.2.0/24", rmac2))
	redBefore := tab.SnapshotVRF(4001)

	// Before blue exists, its routes are not imported.
	r := blueMACIP(vtep2, mac2, hostA, rmac2)
	for _, e := range tab.Update(r) {
		if e.Kind != L3Rejected {
			t.Fatalf("blue route before blue: %s", fmtL3(e))
		}
	}
	if err := tab.AddVRF(blue()); err != nil {
		t.Fatal(err)
	}
	if err := tab.AddVRF(blue()); err == nil {
		t.Error("AddVRF twice: no error")
	}
	if err := tab.AddVRF(L3VRF{Name: "x", L3VNI: 4009, Members: []L3Member{{L2VNI: 100}}}); err == nil {
		t.Error("AddVRF with red's member: no error")
	}
	// Re-fed, its route imports into blue only.
	expectL3(t, "blue route re-fed", tab.Update(r),
		"set-neigh 200 192.168.100.10 02:00:00:00:00:02",
		"set-host blue/4002 192.168.100.10 via 10.0.0.2 02:aa:00:00:00:02")
	expectL3(t, "blue local host", tab.LocalHost(200, mac1, netip.MustParseAddr("192.168.100.20"), 0, false),
		"advertise [2]:[0]:[02:00:00:00:00:01]:[192.168.100.20] rd 10.0.0.1:4 labels=[200 4002] seq=0 sticky=false")
	b := tab.SnapshotVRF(4002)
	if len(b.Neighs) != 1 || len(b.Hosts) != 1 || len(b.RouterMACs) != 1 || len(b.Prefixes) != 0 {
		t.Errorf("SnapshotVRF(blue) = %+v", b)
	}
	if got := tab.SnapshotVRF(4001); !sameSnapshot(got, redBefore) {
		t.Errorf("red changed with blue added:\n%+v\nwas\n%+v", got, redBefore)
	}
	if s := tab.SnapshotVRF(4999); len(s.Neighs)+len(s.Hosts)+len(s.Prefixes)+len(s.RouterMACs) != 0 {
		t.Errorf("SnapshotVRF(unknown) = %+v", s)
	}

	expectL3(t, "blue removed", tab.RemoveVRF(4002),
		"withdraw [2]:[0]:[02:00:00:00:00:01]:[192.168.100.20] rd 10.0.0.1:4",
		"del-neigh 200 192.168.100.10 02:00:00:00:00:02",
		"del-host blue/4002 192.168.100.10 via 10.0.0.2 02:aa:00:00:00:02")
	if got := tab.SnapshotVRF(4001); !sameSnapshot(got, redBefore) {
		t.Errorf("red changed with blue removed:\n%+v\nwas\n%+v", got, redBefore)
	}
	if got := tab.Snapshot(); !sameSnapshot(got, redBefore) {
		t.Errorf("whole snapshot after blue removed:\n%+v\nwant red's\n%+v", got, redBefore)
	}
	if eff := tab.RemoveVRF(4002); eff != nil {
		t.Errorf("RemoveVRF twice: %v", eff)
	}
	// Its route's withdrawal is now unknown; red's still works.
	if eff := tab.Withdraw(r.Key); eff != nil {
		t.Errorf("withdraw of a removed VRF's route: %v", eff)
	}
	expectL3(t, "red's type-5 withdrawn", tab.Withdraw(type5(vtep2, 1, "172.16.2.0/24", rmac2).Key),
		"del-prefix red/4001 172.16.2.0/24 via [10.0.0.2 02:aa:00:00:00:02]")

	// Removing red, and adding it back: a fresh VRF that re-imports.
	expectL3(t, "red removed", tab.RemoveVRF(4001),
		"del-neigh 100 192.168.100.10 02:00:00:00:00:01",
		"del-host red/4001 192.168.100.10 via 10.0.0.2 02:aa:00:00:00:02")
	if len(tab.routes)+len(tab.neighs)+len(tab.hosts)+len(tab.prefs)+len(tab.rmacs)+len(tab.local) != 0 {
		t.Errorf("state left with no VRF: routes %d neighs %d hosts %d prefs %d rmacs %d local %d",
			len(tab.routes), len(tab.neighs), len(tab.hosts), len(tab.prefs), len(tab.rmacs), len(tab.local))
	}
	if err := tab.AddVRF(l3opts().VRFs[0]); err != nil {
		t.Fatal(err)
	}
	expectL3(t, "red re-fed", tab.Update(macIP(vtep2, mac1, hostA, 0, rmac2)),
		"set-neigh 100 192.168.100.10 02:00:00:00:00:01",
		"set-host red/4001 192.168.100.10 via 10.0.0.2 02:aa:00:00:00:02")
}

// A VRF changed in place is removed and added back in one batch, its
// local hosts replayed: the last word on a local route is its
// announcement, under the new RD when the member's RD changed.
func TestL3VRFSwap(t *testing.T) {
	tab := NewL3Table(l3opts())
	ip := netip.MustParseAddr("192.168.100.20")
	tab.LocalHost(100, mac1, ip, 0, false)
	red := l3opts().VRFs[0]
	red.Members[0].RD = RDFromIP(vtep1, 9)
	eff := tab.RemoveVRF(red.L3VNI)
	if err := tab.AddVRF(red); err != nil {
		t.Fatal(err)
	}
	eff = append(eff, tab.LocalHost(100, mac1, ip, 0, false)...)
	expectL3(t, "swap with a new RD", eff,
		"withdraw [2]:[0]:[02:00:00:00:00:01]:[192.168.100.20] rd 10.0.0.1:2",
		"advertise [2]:[0]:[02:00:00:00:00:01]:[192.168.100.20] rd 10.0.0.1:9 labels=[100 4001] seq=0 sticky=false")
}
