package fib

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// ke builds kernel entries of vxlan100 (VNI 100) tersely.
func keSelf(m int, vtep string, ext bool) KernelEntry {
	return KernelEntry{VNI: 100, Dev: "vxlan100", MAC: macN(m), VTEP: ip(vtep), Self: true, ExternLearn: ext}
}

func keMaster(m int, ext bool) KernelEntry {
	return KernelEntry{VNI: 100, Dev: "vxlan100", MAC: macN(m), ExternLearn: ext}
}

func keFlood(vtep string) KernelEntry {
	return KernelEntry{VNI: 100, Dev: "vxlan100", VTEP: ip(vtep), Self: true}
}

func keDevice(vni uint32) KernelEntry {
	d := vniDevs(vni)
	return KernelEntry{VNI: vni, Dev: d.VXLAN, Device: true}
}

func snapshot(vnis []uint32, macs map[int]string, floods ...string) Snapshot {
	s := Snapshot{VNIs: map[uint32]VNIDevices{}, MACs: map[Key]netip.Addr{}, Floods: map[Key]struct{}{}}
	for _, v := range vnis {
		s.VNIs[v] = vniDevs(v)
	}
	for m, vtep := range macs {
		s.MACs[MACKey(100, macN(m))] = ip(vtep)
	}
	for _, f := range floods {
		s.Floods[FloodKey(100, ip(f))] = struct{}{}
	}
	return s
}

func TestDiffDrifts(t *testing.T) {
	tests := []struct {
		name   string
		s      Snapshot
		kernel []KernelEntry
		want   []string // Drift.String, in order
		detail []string // a substring of each drift's Detail
	}{
		{
			name: "clean",
			s:    snapshot([]uint32{100}, map[int]string{1: "10.0.0.2"}, "10.0.0.2"),
			kernel: []KernelEntry{keDevice(100), keSelf(1, "10.0.0.2", true), keMaster(1, true), keFlood("10.0.0.2"),
				// never reported: the port's own address, a multicast MAC
				{VNI: 100, Dev: "vxlan100", MAC: macN(99), Local: true},
				{VNI: 100, Dev: "vxlan100", MAC: mac(t, "01:00:5e:00:00:01"), VTEP: ip("10.0.0.9"), Self: true},
				// nor entries of other devices or unmanaged VNIs
				{VNI: 100, Dev: "vxlan999", MAC: macN(5), VTEP: ip("10.0.0.9"), Self: true},
				{VNI: 200, Dev: "vxlan200", MAC: macN(5), VTEP: ip("10.0.0.9"), Self: true},
			},
		},
		{
			name: "a local move in progress: the bridge learned the MAC on an access port",
			s:    snapshot([]uint32{100}, map[int]string{1: "10.0.0.2", 2: "10.0.0.2"}),
			kernel: []KernelEntry{keDevice(100), keSelf(1, "10.0.0.2", true),
				{VNI: 100, Dev: "vxlan100", MAC: macN(1), Access: true},
				// only for MACs with a VXLAN entry: a MAC fib lacks is missing
				{VNI: 100, Dev: "vxlan100", MAC: macN(2), Access: true}},
			want:   []string{"vni 100 mac 02:00:00:00:00:02 missing on vxlan100 want 10.0.0.2"},
			detail: []string{"bridge fdb replace 02:00:00:00:00:02"},
		},
		{
			name:   "an unmarked VXLAN entry with the right VTEP is correct",
			s:      snapshot([]uint32{100}, map[int]string{1: "10.0.0.2"}),
			kernel: []KernelEntry{keDevice(100), keSelf(1, "10.0.0.2", false), keMaster(1, true)},
		},
		{
			name:   "device missing: its entries are not listed",
			s:      snapshot([]uint32{100}, map[int]string{1: "10.0.0.2"}, "10.0.0.2"),
			kernel: nil,
			want:   []string{"vni 100 device missing on vxlan100"},
			detail: []string{"ip -d link show dev vxlan100"},
		},
		{
			name:   "MAC missing",
			s:      snapshot([]uint32{100}, map[int]string{1: "10.0.0.2"}),
			kernel: []KernelEntry{keDevice(100)},
			want:   []string{"vni 100 mac 02:00:00:00:00:01 missing on vxlan100 want 10.0.0.2"},
			detail: []string{"bridge fdb replace 02:00:00:00:00:01 dev vxlan100 dst 10.0.0.2 self master extern_learn"},
		},
		{
			name:   "MAC missing, a local entry holds it",
			s:      snapshot([]uint32{100}, map[int]string{1: "10.0.0.2"}),
			kernel: []KernelEntry{keDevice(100), {VNI: 100, Dev: "vxlan100", MAC: macN(1), Local: true, ExternLearn: true}},
			want:   []string{"vni 100 mac 02:00:00:00:00:01 missing on vxlan100 want 10.0.0.2"},
			detail: []string{"local, permanent"},
		},
		{
			name: "wrong: VXLAN entry to another VTEP, gone, or with several remotes",
			s:    snapshot([]uint32{100}, map[int]string{1: "10.0.0.2", 2: "10.0.0.2", 3: "10.0.0.2"}),
			kernel: []KernelEntry{keDevice(100),
				keSelf(1, "10.0.0.3", true), keMaster(1, true),
				keMaster(2, true),
				keSelf(3, "10.0.0.2", true), keSelf(3, "10.0.0.4", true), keMaster(3, true)},
			want: []string{
				"vni 100 mac 02:00:00:00:00:01 wrong on vxlan100 want 10.0.0.2 have 10.0.0.3",
				"vni 100 mac 02:00:00:00:00:02 wrong on vxlan100 want 10.0.0.2",
				"vni 100 mac 02:00:00:00:00:03 wrong on vxlan100 want 10.0.0.2",
			},
			detail: []string{"dst 10.0.0.2 self master", "VXLAN entry is missing", "several remotes"},
		},
		{
			name: "wrong bridge entry: missing (moved to an access port), local, unmarked",
			s:    snapshot([]uint32{100}, map[int]string{1: "10.0.0.2", 2: "10.0.0.2", 3: "10.0.0.2"}),
			kernel: []KernelEntry{keDevice(100),
				keSelf(1, "10.0.0.2", true),
				keSelf(2, "10.0.0.2", true), {VNI: 100, Dev: "vxlan100", MAC: macN(2), Local: true},
				keSelf(3, "10.0.0.2", true), keMaster(3, false)},
			want: []string{
				"vni 100 bridge 02:00:00:00:00:01 wrong on vxlan100 want 10.0.0.2",
				"vni 100 bridge 02:00:00:00:00:02 wrong on vxlan100 want 10.0.0.2",
				"vni 100 bridge 02:00:00:00:00:03 wrong on vxlan100 want 10.0.0.2",
			},
			detail: []string{"bridge fdb show br br100 | grep 02:00:00:00:00:01", "local, permanent", "not marked extern_learn"},
		},
		{
			name: "extra: marked or not, VXLAN entry or bridge entry only",
			s:    snapshot([]uint32{100}, nil),
			kernel: []KernelEntry{keDevice(100),
				keSelf(1, "10.0.0.2", true), keMaster(1, true),
				keSelf(2, "10.9.9.9", false),
				keMaster(3, false)},
			want: []string{
				"vni 100 bridge 02:00:00:00:00:03 extra on vxlan100",
				"vni 100 mac 02:00:00:00:00:01 extra on vxlan100 have 10.0.0.2",
				"vni 100 mac 02:00:00:00:00:02 extra on vxlan100 have 10.9.9.9",
			},
			detail: []string{
				"bridge fdb del 02:00:00:00:00:03 dev vxlan100 master",
				"bridge fdb del 02:00:00:00:00:01 dev vxlan100 master; bridge fdb del 02:00:00:00:00:01 dev vxlan100 dst 10.0.0.2 self",
				"bridge fdb del 02:00:00:00:00:02 dev vxlan100 dst 10.9.9.9 self",
			},
		},
		{
			name:   "flood: missing, extra, and a MAC moved to another VTEP",
			s:      snapshot([]uint32{100}, map[int]string{1: "10.0.0.3"}, "10.0.0.2", "10.0.0.3"),
			kernel: []KernelEntry{keDevice(100), keFlood("10.0.0.3"), keFlood("10.0.0.4"), keSelf(1, "10.0.0.2", true), keMaster(1, true)},
			want: []string{
				"vni 100 flood missing on vxlan100 want 10.0.0.2",
				"vni 100 flood extra on vxlan100 have 10.0.0.4",
				"vni 100 mac 02:00:00:00:00:01 wrong on vxlan100 want 10.0.0.3 have 10.0.0.2",
			},
			detail: []string{
				"bridge fdb append 00:00:00:00:00:00 dev vxlan100 dst 10.0.0.2 self",
				"bridge fdb del 00:00:00:00:00:00 dev vxlan100 dst 10.0.0.4 self",
				"dst 10.0.0.3",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(tt.s, tt.kernel)
			var lines []string
			for i, d := range got {
				lines = append(lines, d.String())
				if i < len(tt.detail) && !strings.Contains(d.Detail, tt.detail[i]) {
					t.Errorf("drift %d (%s): detail %q lacks %q", i, d, d.Detail, tt.detail[i])
				}
				if d.Device != "vxlan100" {
					t.Errorf("drift %d: device %q", i, d.Device)
				}
			}
			if strings.Join(lines, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Diff:\n got %s\nwant %s", strings.Join(lines, "\n     "), strings.Join(tt.want, "\n     "))
			}
		})
	}
}

// TestDiffMatchesPlan: what Diff reports as drift is what the reconciler
// would change after MarkSynced, key for key.
func TestDiffMatchesPlan(t *testing.T) {
	s := snapshot([]uint32{100}, map[int]string{1: "10.0.0.2", 2: "10.0.0.2", 3: "10.0.0.2", 4: "10.0.0.2", 5: "10.0.0.2"}, "10.0.0.2")
	kernel := []KernelEntry{keDevice(100),
		keSelf(1, "10.0.0.2", true), keMaster(1, true), // correct
		keSelf(2, "10.0.0.2", false), keMaster(2, true), // correct (unmarked VXLAN entry)
		keSelf(3, "10.0.0.3", true), keMaster(3, true), // wrong VTEP
		keSelf(4, "10.0.0.2", true), keMaster(4, false), // unmarked bridge entry
		keSelf(6, "10.0.0.2", false), keMaster(6, false), // extra
		keFlood("10.0.0.9"), // extra flood; the wanted one is missing; MAC 5 too
	}
	drifted := map[Key]bool{}
	for _, d := range Diff(s, kernel) {
		drifted[d.key()] = true
	}
	planned := map[Key]bool{}
	for _, op := range Plan(DesiredEntries(s), InstalledFrom(kernel), true) {
		planned[op.Entry.Key()] = true
	}
	if fmt.Sprint(drifted) != fmt.Sprint(planned) || len(planned) != 6 {
		t.Errorf("Diff drifted %v\nPlan changes  %v\nwant the same 6 keys", drifted, planned)
	}
}

// BenchmarkDiff100k diffs 100k wanted MACs (and 100 flood VTEPs) against a
// kernel holding both entries of each, with a few drifts of every kind.
func BenchmarkDiff100k(b *testing.B) {
	const n = 100_000
	s := Snapshot{VNIs: map[uint32]VNIDevices{100: vniDevs(100)}, MACs: make(map[Key]netip.Addr, n), Floods: map[Key]struct{}{}}
	kernel := make([]KernelEntry, 0, 2*n+200)
	kernel = append(kernel, keDevice(100))
	for i := range n {
		vtep := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8 & 0x3f), byte(i)})
		s.MACs[MACKey(100, macN(i))] = vtep
		switch {
		case i%20000 == 1: // missing
		case i%20000 == 2: // wrong VTEP
			kernel = append(kernel, KernelEntry{VNI: 100, Dev: "vxlan100", MAC: macN(i), VTEP: ip("10.9.9.9"), Self: true, ExternLearn: true},
				KernelEntry{VNI: 100, Dev: "vxlan100", MAC: macN(i), ExternLearn: true})
		default:
			kernel = append(kernel, KernelEntry{VNI: 100, Dev: "vxlan100", MAC: macN(i), VTEP: vtep, Self: true, ExternLearn: true},
				KernelEntry{VNI: 100, Dev: "vxlan100", MAC: macN(i), ExternLearn: true})
		}
	}
	for i := range 100 {
		s.Floods[FloodKey(100, netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}))] = struct{}{}
		kernel = append(kernel, keFlood(fmt.Sprintf("10.1.0.%d", i)))
	}
	kernel = append(kernel, keSelf(n+1, "10.9.9.9", false)) // extra
	b.ReportAllocs()
	b.ResetTimer()
	var drifts int
	for b.Loop() {
		drifts = len(Diff(s, kernel))
	}
	b.ReportMetric(float64(drifts), "drifts")
	b.ReportMetric(float64(len(kernel))*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	if drifts != 2*n/20000+1 {
		b.Errorf("%d drifts, want %d", drifts, 2*n/20000+1)
	}
}
