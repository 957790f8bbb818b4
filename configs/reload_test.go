package configs

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func loadLeaf2(t *testing.T, edit func(string) string) *Config {
	t.Helper()
	data, err := os.ReadFile("leaf2.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte(edit(string(data))), "leaf2.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// RestartNeeded names the restart-only keys that changed, and nothing for
// the keys a reload applies.
func TestRestartNeeded(t *testing.T) {
	cur := loadLeaf2(t, func(s string) string { return s })
	for _, tc := range []struct {
		name string
		edit func(string) string
		want []string
	}{
		{"same", func(s string) string { return s }, nil},
		{"live keys only", func(s string) string {
			s = strings.Replace(s, "log-level: info", "log-level: debug", 1)
			s = strings.Replace(s, "duplicate-moves: 5", "duplicate-moves: 3", 1)
			s = strings.Replace(s, "  - vni: 200\n    access-interfaces: [eth2]", "  - vni: 300\n    access-interfaces: [eth3]", 1)
			return strings.Replace(s, "description: route reflector", "description: spine", 1)
		}, nil},
		{"identity", func(s string) string {
			s = strings.Replace(s, "router-id: 10.0.0.2", "router-id: 10.0.0.9", 1)
			s = strings.Replace(s, "asn: 65000 # the peer", "asn: 65001 # the peer", 1)
			s = strings.Replace(s, "\nasn: 65000", "\nasn: 65001", 1)
			return strings.Replace(s, "restart-time: 120s", "restart-time: 60s", 1)
		}, []string{"asn: 65000 -> 65001", "graceful-restart.restart-time: 2m0s -> 1m0s", "router-id: 10.0.0.2 -> 10.0.0.9"}},
		{"api", func(s string) string { return s + "api:\n  socket: /run/x.sock\n" }, []string{`api.socket: "" -> "/run/x.sock"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := loadLeaf2(t, tc.edit)
			if got := RestartNeeded(cur, next); !slices.Equal(got, tc.want) {
				t.Errorf("RestartNeeded = %q, want %q", got, tc.want)
			}
		})
	}
}

// WithLive keeps the restart-only keys and takes the live ones.
func TestWithLive(t *testing.T) {
	cur := loadLeaf2(t, func(s string) string { return s })
	next := loadLeaf2(t, func(s string) string {
		s = strings.Replace(s, "router-id: 10.0.0.2", "router-id: 10.0.0.9", 1)
		s = strings.Replace(s, "log-level: info", "log-level: debug", 1)
		return strings.Replace(s, "duplicate-moves: 5", "duplicate-moves: 3", 1)
	})
	got := cur.WithLive(next)
	if got.RouterID != cur.RouterID || got.LogLevel != "debug" || got.MACMobility.DuplicateMoves != 3 || len(got.L2VNIs) != 2 {
		t.Errorf("WithLive: router-id %s log-level %s moves %d vnis %d", got.RouterID, got.LogLevel, got.MACMobility.DuplicateMoves, len(got.L2VNIs))
	}
	if cur.LogLevel != "info" {
		t.Error("WithLive changed its receiver")
	}
}

// OnlyL2VNIs keeps the file's lines with the entries it keeps, so a
// problem found later still names the right line.
func TestOnlyL2VNIs(t *testing.T) {
	c := loadLeaf2(t, func(s string) string { return s })
	only := c.OnlyL2VNIs(func(v L2VNI) bool { return v.VNI == 200 })
	if len(only.L2VNIs) != 1 || only.L2VNIs[0].VNI != 200 {
		t.Fatalf("OnlyL2VNIs: %v", only.L2VNIs)
	}
	if only.lines["l2vnis[0].vni"] != c.lines["l2vnis[1].vni"] || only.lines["l2vnis[0].vni"] == 0 {
		t.Errorf("line of the kept entry: %d, want %d", only.lines["l2vnis[0].vni"], c.lines["l2vnis[1].vni"])
	}
	if _, ok := only.lines["l2vnis[1].vni"]; ok {
		t.Error("a dropped entry's line is still there")
	}
	if len(c.L2VNIs) != 2 {
		t.Error("OnlyL2VNIs changed its receiver")
	}
}

func loadL3(t *testing.T, edit func(string) string) *Config {
	t.Helper()
	data, err := os.ReadFile("l3-leaf.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte(edit(string(data))), "l3-leaf.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func vrfNames(vs []VRF) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

// DiffVRFs sorts each VRF change into added, removed, rebuilt (devices,
// members, gateways, routing identity) or readvertised (type-5 only), and
// refuses what only a new VRF can change.
func TestDiffVRFs(t *testing.T) {
	same := func(s string) string { return s }
	cur := loadL3(t, same)
	// tenant-b removed (and its L2VNI 300 with it).
	dropB := func(s string) string {
		i := strings.Index(s, "  # A second tenant")
		s = s[:i]
		return strings.Replace(s, "  - vni: 300\n    access-interfaces: [eth3]\n", "", 1)
	}
	for _, tc := range []struct {
		name                                                string
		edit                                                func(string) string
		added, removed, changed, rebuilt, readvertised, bad []string
	}{
		{name: "same", edit: same},
		{name: "tenant removed", edit: dropB, removed: []string{"tenant-b"}},
		{name: "tenant added", edit: func(s string) string {
			s = strings.Replace(s, "  - vni: 300\n    access-interfaces: [eth3]\n",
				"  - vni: 300\n    access-interfaces: [eth3]\n  - vni: 400\n    access-interfaces: [eth4]\n", 1)
			return s + "  - name: tenant-c\n    l3vni: 4003\n    backend: netns\n    gateway-mac: 00:00:5e:00:01:01\n    l2vnis:\n      - vni: 400\n        gateway-ips: [10.1.0.1/24]\n"
		}, added: []string{"tenant-c"}},
		{name: "member added", edit: func(s string) string {
			s = strings.Replace(s, "  - vni: 300\n    access-interfaces: [eth3]\n",
				"  - vni: 300\n    access-interfaces: [eth3]\n  - vni: 400\n    access-interfaces: [eth4]\n", 1)
			return s + "      - vni: 400\n        gateway-ips: [10.4.0.1/24]\n"
		}, changed: []string{"tenant-b"}},
		{name: "member removed", edit: func(s string) string {
			return strings.Replace(s, "      - vni: 200\n        gateway-ips: [10.2.0.1/24]\n", "", 1)
		}, changed: []string{"tenant-a"}},
		{name: "gateway changed", edit: func(s string) string {
			return strings.Replace(s, "gateway-ips: [10.2.0.1/24]", "gateway-ips: [10.2.0.254/24]", 1)
		}, changed: []string{"tenant-a"}},
		{name: "member's l2vni changed", edit: func(s string) string {
			return strings.Replace(s, "access-interfaces: [eth3]", "access-interfaces: [eth3, eth5]", 1)
		}, changed: []string{"tenant-b"}},
		{name: "advertise", edit: func(s string) string {
			s = strings.Replace(s, "advertise-prefixes: [10.99.0.0/16]", "advertise-prefixes: [10.98.0.0/16]", 1)
			return strings.Replace(s, "advertise-default-route: false", "advertise-default-route: true", 1)
		}, readvertised: []string{"tenant-a"}},
		{name: "empty uplinks and routes", edit: func(s string) string {
			return strings.Replace(s, "advertise-prefixes: [10.99.0.0/16]\n", "advertise-prefixes: [10.99.0.0/16]\n    uplinks: []\n    routes: []\n", 1)
		}},
		{name: "uplink and static route added", edit: func(s string) string {
			return strings.Replace(s, "advertise-prefixes: [10.99.0.0/16]\n", "advertise-prefixes: [10.99.0.0/16]\n    uplinks:\n      - {interface: eth9, addresses: [192.0.2.1/30]}\n    routes:\n      - {prefix: 0.0.0.0/0, via: 192.0.2.2}\n", 1)
		}, rebuilt: []string{"tenant-a"}},
		{name: "rd", edit: func(s string) string {
			return strings.Replace(s, "rd: 10.0.0.1:4001", "rd: 10.0.0.1:14001", 1)
		}, changed: []string{"tenant-a"}},
		{name: "uplink", edit: func(s string) string {
			return s + "    uplinks: [{interface: eth9, addresses: [192.0.2.1/24]}]\n"
		}, rebuilt: []string{"tenant-b"}},
		{name: "l3vni devices", edit: func(s string) string {
			return strings.Replace(s, "# vxlan-device: vxlan4001   # default vxlan<L3VNI>", "vxlan-device: vx4001", 1)
		}, rebuilt: []string{"tenant-a"}},
		{name: "identity", edit: func(s string) string {
			s = strings.Replace(s, "l3vni: 4002", "l3vni: 4005", 1)
			return strings.Replace(s, "namespace: tenant-a", "namespace: ten-a", 1)
		}, rebuilt: []string{"tenant-a", "tenant-b"}, bad: []string{"vrfs[0].namespace", "vrfs[1].l3vni"}},
		{name: "backend", edit: func(s string) string {
			i := strings.Index(s, "  - name: tenant-b")
			return s[:i] + strings.Replace(s[i:], "backend: netns", "backend: default", 1)
		}, rebuilt: []string{"tenant-b"}, bad: []string{"vrfs[1].backend"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := loadL3(t, tc.edit)
			ch, ps := DiffVRFs(cur, next)
			check := func(what string, got, want []string) {
				t.Helper()
				if !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", what, got, want)
				}
			}
			check("added", vrfNames(ch.Added), tc.added)
			check("removed", vrfNames(ch.Removed), tc.removed)
			check("changed", vrfNames(ch.Changed), tc.changed)
			check("rebuilt", vrfNames(ch.Rebuilt), tc.rebuilt)
			check("readvertised", vrfNames(ch.Readvertised), tc.readvertised)
			var bad []string
			for _, p := range ps {
				bad = append(bad, p.Path)
				if !strings.Contains(p.Reason, "remove the VRF") || p.Line == 0 {
					t.Errorf("problem %+v: want a line and the way out", p)
				}
			}
			check("refused", bad, tc.bad)
			if ch.Empty() != (tc.added == nil && tc.removed == nil && tc.changed == nil && tc.rebuilt == nil && tc.readvertised == nil) {
				t.Errorf("Empty() = %v", ch.Empty())
			}
		})
	}
}

// WithLive takes the VRFs from the file, unless router-id or asn (from
// which their automatic RD, RTs and router MAC derive) changed too.
func TestWithLiveVRFs(t *testing.T) {
	cur := loadL3(t, func(s string) string { return s })
	drop := func(s string) string { return s[:strings.Index(s, "  # A second tenant")] }
	if got := vrfNames(cur.WithLive(loadL3(t, drop)).VRFs); !slices.Equal(got, []string{"tenant-a"}) {
		t.Errorf("WithLive VRFs = %q", got)
	}
	next := loadL3(t, func(s string) string {
		return strings.Replace(drop(s), "router-id: 10.0.0.1", "router-id: 10.0.0.7", 1)
	})
	if got := vrfNames(cur.WithLive(next).VRFs); !slices.Equal(got, []string{"tenant-a", "tenant-b"}) {
		t.Errorf("WithLive VRFs with a new router-id = %q, want the running ones", got)
	}
}
