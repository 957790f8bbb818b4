package fib

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestDesiredEntries(t *testing.T) {
	s := Snapshot{
		VNIs: map[uint32]VNIDevices{100: vniDevs(100), 200: vniDevs(200)},
		MACs: map[Key]netip.Addr{
			MACKey(200, macN(1)): ip("10.0.0.3"),
			MACKey(100, macN(2)): ip("10.0.0.2"),
			MACKey(100, macN(1)): ip("10.0.0.2"),
			MACKey(300, macN(1)): ip("10.0.0.9"), // VNI without devices
		},
		Floods: map[Key]struct{}{
			FloodKey(100, ip("10.0.0.3")): {},
			FloodKey(100, ip("10.0.0.2")): {},
			FloodKey(300, ip("10.0.0.9")): {},
		},
	}
	got := DesiredEntries(s)
	want := []FDBEntry{
		{VNI: 100, Dev: "vxlan100", VTEP: ip("10.0.0.2")},
		{VNI: 100, Dev: "vxlan100", VTEP: ip("10.0.0.3")},
		{VNI: 100, Dev: "vxlan100", MAC: macN(1), VTEP: ip("10.0.0.2")},
		{VNI: 100, Dev: "vxlan100", MAC: macN(2), VTEP: ip("10.0.0.2")},
		{VNI: 200, Dev: "vxlan200", MAC: macN(1), VTEP: ip("10.0.0.3")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DesiredEntries:\n got %v\nwant %v", got, want)
	}
	if n := len(DesiredEntries(Snapshot{})); n != 0 {
		t.Errorf("empty snapshot gave %d entries", n)
	}
}

func TestInstalledFrom(t *testing.T) {
	m1, m2, m3, m4 := macN(1), macN(2), macN(3), macN(4)
	dump := []KernelEntry{
		// m1: both halves marked.
		{VNI: 100, Dev: "vxlan100", MAC: m1, VTEP: ip("10.0.0.2"), Self: true, ExternLearn: true},
		{VNI: 100, Dev: "vxlan100", MAC: m1, ExternLearn: true},
		// m2: hand-added, not marked: managed all the same.
		{VNI: 100, Dev: "vxlan100", MAC: m2, VTEP: ip("10.0.0.2"), Self: true},
		{VNI: 100, Dev: "vxlan100", MAC: m2},
		// m3: VXLAN entry with two remotes, no bridge entry.
		{VNI: 100, Dev: "vxlan100", MAC: m3, VTEP: ip("10.0.0.2"), Self: true, ExternLearn: true},
		{VNI: 100, Dev: "vxlan100", MAC: m3, VTEP: ip("10.0.0.3"), Self: true, ExternLearn: true},
		// m4: bridge entry only.
		{VNI: 100, Dev: "vxlan100", MAC: m4, ExternLearn: true},
		// flood entries, marked or not.
		{VNI: 100, Dev: "vxlan100", VTEP: ip("10.0.0.2"), Self: true},
		{VNI: 100, Dev: "vxlan100", VTEP: ip("10.0.0.3"), Self: true, ExternLearn: true},
		// the VXLAN device's own address on the bridge (local): not ours.
		{VNI: 100, Dev: "vxlan100", MAC: mac(t, "46:6d:5d:19:7a:6f"), Local: true},
		// a multicast MAC and the device marker: skipped.
		{VNI: 100, Dev: "vxlan100", MAC: mac(t, "01:00:5e:00:00:01"), VTEP: ip("10.0.0.2"), Self: true},
		{VNI: 100, Dev: "vxlan100", Device: true},
	}
	got := InstalledFrom(dump)
	want := map[Key]Installed{
		MACKey(100, m1):               {Dev: "vxlan100", VTEP: ip("10.0.0.2"), Self: true, Master: true, Stale: true},
		MACKey(100, m2):               {Dev: "vxlan100", VTEP: ip("10.0.0.2"), Self: true, Master: true, Unmarked: true, Stale: true},
		MACKey(100, m3):               {Dev: "vxlan100", Self: true, Multi: true, Stale: true},
		MACKey(100, m4):               {Dev: "vxlan100", Master: true, Stale: true},
		FloodKey(100, ip("10.0.0.2")): {Dev: "vxlan100", VTEP: ip("10.0.0.2"), Self: true, Stale: true},
		FloodKey(100, ip("10.0.0.3")): {Dev: "vxlan100", VTEP: ip("10.0.0.3"), Self: true, Stale: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("InstalledFrom:\n got %v\nwant %v", got, want)
	}
}

func TestPlan(t *testing.T) {
	e := func(n int, vtep string) FDBEntry {
		return FDBEntry{VNI: 100, Dev: "vxlan100", MAC: macN(n), VTEP: ip(vtep)}
	}
	flood := func(vtep string) FDBEntry { return FDBEntry{VNI: 100, Dev: "vxlan100", VTEP: ip(vtep)} }
	ok := func(n int, vtep string, stale bool) Installed {
		return Installed{Dev: "vxlan100", VTEP: ip(vtep), Self: true, Master: true, Stale: stale}
	}
	tests := []struct {
		name  string
		want  []FDBEntry
		have  map[Key]Installed
		prune bool
		ops   []string
	}{
		{name: "empty"},
		{
			name: "missing entries are written",
			want: []FDBEntry{e(1, "10.0.0.2"), flood("10.0.0.2")},
			ops: []string{
				"bridge fdb append 00:00:00:00:00:00 dev vxlan100 dst 10.0.0.2 self extern_learn",
				"bridge fdb replace 02:00:00:00:00:01 dev vxlan100 dst 10.0.0.2 self master extern_learn",
			},
		},
		{
			name: "correct entries, stale or not, are not rewritten",
			want: []FDBEntry{e(1, "10.0.0.2"), e(2, "10.0.0.2"), flood("10.0.0.2")},
			have: map[Key]Installed{
				MACKey(100, macN(1)):          ok(1, "10.0.0.2", true),
				MACKey(100, macN(2)):          ok(2, "10.0.0.2", false),
				FloodKey(100, ip("10.0.0.2")): {Dev: "vxlan100", VTEP: ip("10.0.0.2"), Self: true, Stale: true},
			},
		},
		{
			name: "a moved MAC is one replace",
			want: []FDBEntry{e(1, "10.0.0.3")},
			have: map[Key]Installed{MACKey(100, macN(1)): ok(1, "10.0.0.2", false)},
			ops:  []string{"bridge fdb replace 02:00:00:00:00:01 dev vxlan100 dst 10.0.0.3 self master extern_learn"},
		},
		{
			name: "a missing bridge half or a second remote is rewritten",
			want: []FDBEntry{e(1, "10.0.0.2"), e(2, "10.0.0.2")},
			have: map[Key]Installed{
				MACKey(100, macN(1)): {Dev: "vxlan100", VTEP: ip("10.0.0.2"), Self: true},
				MACKey(100, macN(2)): {Dev: "vxlan100", Self: true, Master: true, Multi: true},
			},
			ops: []string{
				"bridge fdb replace 02:00:00:00:00:01 dev vxlan100 dst 10.0.0.2 self master extern_learn",
				"bridge fdb replace 02:00:00:00:00:02 dev vxlan100 dst 10.0.0.2 self master extern_learn",
			},
		},
		{
			name: "stale entries wait for prune",
			have: map[Key]Installed{
				MACKey(100, macN(1)):          ok(1, "10.0.0.2", true),
				FloodKey(100, ip("10.0.0.9")): {Dev: "vxlan100", VTEP: ip("10.0.0.9"), Self: true, Stale: true},
			},
		},
		{
			name:  "stale entries go with prune",
			prune: true,
			have: map[Key]Installed{
				MACKey(100, macN(1)):          ok(1, "10.0.0.2", true),
				MACKey(100, macN(2)):          {Dev: "vxlan100", Self: true, Multi: true, Stale: true},
				FloodKey(100, ip("10.0.0.9")): {Dev: "vxlan100", VTEP: ip("10.0.0.9"), Self: true, Stale: true},
			},
			ops: []string{
				"bridge fdb del 00:00:00:00:00:00 dev vxlan100 dst 10.0.0.9 self",
				"bridge fdb del 02:00:00:00:00:01 dev vxlan100 master; bridge fdb del 02:00:00:00:00:01 dev vxlan100 dst 10.0.0.2 self",
				"bridge fdb del 02:00:00:00:00:02 dev vxlan100 self",
			},
		},
		{
			name: "entries wanted in this run are deleted before prune",
			have: map[Key]Installed{MACKey(100, macN(1)): ok(1, "10.0.0.2", false)},
			ops: []string{
				"bridge fdb del 02:00:00:00:00:01 dev vxlan100 master; bridge fdb del 02:00:00:00:00:01 dev vxlan100 dst 10.0.0.2 self",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, op := range Plan(tt.want, tt.have, tt.prune) {
				got = append(got, op.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.ops, "\n") {
				t.Errorf("Plan:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tt.ops, "\n     "))
			}
		})
	}
}

func vniDevs(vni uint32) VNIDevices {
	return VNIDevices{VNI: vni, VXLAN: fmt.Sprintf("vxlan%d", vni), Bridge: fmt.Sprintf("br%d", vni)}
}

// A sticky MAC needs a sticky bridge entry and a movable one a movable
// entry: either difference is a rewrite (unpinning said so in the op);
// the VXLAN side and extern_learn as before. Diff agrees.
func TestPlanSticky(t *testing.T) {
	m := macN(1)
	k := MACKey(100, m)
	e := FDBEntry{VNI: 100, Dev: "vxlan100", MAC: m, VTEP: ip("10.0.0.2")}
	pinned := e
	pinned.Sticky = true
	in := Installed{Dev: "vxlan100", VTEP: ip("10.0.0.2"), Self: true, Master: true}
	inPinned := in
	inPinned.Sticky = true
	tests := []struct {
		name string
		want FDBEntry
		have Installed
		op   string
	}{
		{"sticky wanted, sticky installed", pinned, inPinned, ""},
		{"movable wanted, movable installed", e, in, ""},
		{"sticky wanted, movable installed", pinned, in,
			"bridge fdb replace 02:00:00:00:00:01 dev vxlan100 dst 10.0.0.2 self master extern_learn; bridge fdb replace 02:00:00:00:00:01 dev vxlan100 master sticky static"},
		{"movable wanted, sticky installed", e, inPinned,
			"bridge fdb replace 02:00:00:00:00:01 dev vxlan100 dst 10.0.0.2 self master extern_learn; bridge fdb replace 02:00:00:00:00:01 dev vxlan100 master dynamic"},
	}
	for _, tt := range tests {
		ops := Plan([]FDBEntry{tt.want}, map[Key]Installed{k: tt.have}, true)
		var got string
		if len(ops) == 1 {
			got = ops[0].String()
		} else if len(ops) > 1 {
			t.Errorf("%s: %d ops", tt.name, len(ops))
			continue
		}
		if got != tt.op {
			t.Errorf("%s: op %q, want %q", tt.name, got, tt.op)
		}
		s := Snapshot{VNIs: map[uint32]VNIDevices{100: vniDevs(100)}, MACs: map[Key]netip.Addr{k: tt.want.VTEP}}
		if tt.want.Sticky {
			s.Sticky = map[Key]struct{}{k: {}}
		}
		dump := []KernelEntry{
			{VNI: 100, Dev: "vxlan100", Device: true},
			{VNI: 100, Dev: "vxlan100", MAC: m, VTEP: tt.have.VTEP, Self: true, ExternLearn: true},
			{VNI: 100, Dev: "vxlan100", MAC: m, ExternLearn: true, Sticky: tt.have.Sticky},
		}
		drifts := Diff(s, dump)
		if (len(drifts) == 0) != (tt.op == "") {
			t.Errorf("%s: Diff %v, op %q", tt.name, drifts, tt.op)
		}
		for _, d := range drifts {
			if d.Table != TableBridge || d.Kind != DriftWrong {
				t.Errorf("%s: drift %v, want bridge wrong", tt.name, d)
			}
		}
	}
}
