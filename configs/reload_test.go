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
