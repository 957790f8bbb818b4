package configs

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// loadText writes text to a file and loads it.
func loadText(t *testing.T, text string) (*Config, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "evpnd.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}

// TestBadConfigs is the table of bad configs of issue 12: each is refused
// by Load (what evpnd validate and evpnd run call) with a message that
// names the key, the value and the fix. TestRunRefusesBadConfigs in
// cmd/evpnd runs the same kinds through evpnd run in a namespace.
func TestBadConfigs(t *testing.T) {
	const l2 = "l2vnis:\n  - vni: 100\n"
	cases := []struct {
		name string
		text string
		want []string // each must appear in the error
		not  []string // none may
	}{
		{"explicit zero hold-time", minimal + "bgp:\n  hold-time: 0s\n",
			[]string{"line 7: bgp.hold-time: 0s: out of range: use 3s to 65535s", "0s, which turns keepalives off, is not supported"}, nil},
		{"explicit zero duplicate-window", minimal + "mac-mobility:\n  duplicate-window: 0s\n",
			[]string{"line 7: mac-mobility.duplicate-window: 0s: must be positive"}, nil},
		{"explicit zero duplicate-moves", minimal + "mac-mobility:\n  duplicate-moves: 0\n",
			[]string{"line 7: mac-mobility.duplicate-moves: 0: must be at least 2", "cannot be turned off"}, nil},
		{"explicit zero connect-retry", minimal + "bgp:\n  connect-retry: 0s\n",
			[]string{"bgp.connect-retry: 0s: out of range: use a duration from 1s to 1h"}, nil},
		{"explicit zero eor-timeout", minimal + "graceful-restart:\n  eor-timeout: 0s\n",
			[]string{"graceful-restart.eor-timeout: 0s: must be positive"}, nil},
		{"explicit zero restart-time", minimal + "graceful-restart:\n  restart-time: 0s\n",
			[]string{"graceful-restart.restart-time: 0s: out of range"}, nil},
		{"explicit zero listen-port", minimal + "bgp:\n  listen-port: 0\n",
			[]string{"bgp.listen-port: 0: out of range: use 1-65535, or -1"}, nil},
		{"explicit zero neighbor port", minimal + "    port: 0\n",
			[]string{"line 6: neighbors[0].port: 0: out of range: use 1-65535"}, nil},
		{"explicit zero udp-port", minimal + l2 + "    udp-port: 0\n",
			[]string{"line 8: l2vnis[0].udp-port: 0: out of range: use 1-65535"}, nil},
		{"hold-time too long", minimal + "bgp:\n  hold-time: 70000s\n",
			[]string{"bgp.hold-time: 19h26m40s: out of range: use 3s to 65535s"}, nil},
		{"duplicate-moves negative", minimal + "mac-mobility:\n  duplicate-moves: -3\n",
			[]string{"mac-mobility.duplicate-moves: -3: must be at least 2"}, nil},
		{"bare 0 for a duration", minimal + "bgp:\n  hold-time: 0\n",
			[]string{`line 7: bgp.hold-time: "0": a number alone is not a duration: write it with a unit, such as 0s`}, []string{"time.Duration", "!!int"}},
		{"bare number for a duration", minimal + "mac-mobility:\n  duplicate-window: 180\n",
			[]string{`line 7: mac-mobility.duplicate-window: "180": a number alone is not a duration`, "180s"}, []string{"time.Duration"}},
		{"unknown keys with value problems", `router-id: 10.0.0.1
asn: 65000
neighbours: []
bgp:
  hold_time: 5s
  listen-port: 70000
l2vnis:
  - vni: 100
  - vni: 100
  - vni: abc
`, []string{
			"5 problems",
			`line 3: neighbours: unknown key "neighbours" (did you mean "neighbors"?)`,
			`line 5: bgp.hold_time: unknown key "hold_time" (did you mean "hold-time"?)`,
			"line 6: bgp.listen-port: 70000: out of range",
			"line 9: l2vnis[1].vni: 100: already configured by l2vnis[0]",
			`line 10: l2vnis[2].vni: "abc": want a whole number`,
		}, []string{"no BGP peers", "l2vnis[2].vni: missing"}},
		{"bad value and a missing key", "router-id: 10.0.0.300\nneighbors: [{address: 10.0.0.254, asn: 65000}]\n",
			[]string{`line 1: router-id: "10.0.0.300": not an IP address`, "asn: missing"}, []string{"router-id: missing"}},
		{"binary file", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
			[]string{"not a text file: byte 0x89 at offset 0 (line 1, column 1) is not UTF-8"}, []string{"invalid leading UTF-8 octet"}},
		{"NUL in a text file", "router-id: 10.0.0.1\nasn: 65\x0000\n",
			[]string{"not a text file: byte 0x00 at offset 27 (line 2, column 8) is a control character"}, nil},
		{"invalid UTF-8 in a value", minimal + "log-level: inf\xffo\n",
			[]string{fmt.Sprintf("not a text file: byte 0xff at offset %d (line 6, column 15) is not UTF-8", len(minimal+"log-level: inf"))}, nil},
		{"overlong value", minimal + "log-level: " + strings.Repeat("a", 500000) + "\n",
			[]string{`log-level: "` + strings.Repeat("a", 64) + `"... (500000 bytes): unknown level`}, nil},
		{"overlong unknown key", minimal + "? " + strings.Repeat("k", 500000) + "\n: 1\n",
			[]string{`unknown key "` + strings.Repeat("k", 64) + `"... (500000 bytes)`}, []string{"did you mean"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadText(t, tc.text)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if len(msg) > 4000 {
				t.Errorf("error is %d bytes long", len(msg))
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q:\n%.2000s", w, msg)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(msg, n) {
					t.Errorf("error contains %q:\n%.2000s", n, msg)
				}
			}
		})
	}
}

// TestBadConfigExplicitValuesKept: a file may set a value equal to the
// default, and a Config built in code still gets defaults for zeros.
func TestBadConfigExplicitValuesKept(t *testing.T) {
	c, err := loadText(t, minimal+"bgp:\n  hold-time: 9s\nmac-mobility:\n  duplicate-moves: 2\n  duplicate-window: 1s\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.BGP.HoldTime != 9*time.Second || c.MACMobility.DuplicateMoves != 2 || c.MACMobility.DuplicateWindow != time.Second {
		t.Errorf("explicit values changed: %+v %+v", c.BGP, c.MACMobility)
	}
	c, err = loadText(t, minimal+"bgp:\n  hold-time:\n")
	if err != nil || c.BGP.HoldTime != DefaultHoldTime {
		t.Errorf("an empty value (null) is unset and gets the default: %v, %v", c, err)
	}
}

// cost runs f and returns its time and the bytes it allocated.
func cost(f func()) (time.Duration, uint64) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	f()
	d := time.Since(start)
	runtime.ReadMemStats(&after)
	return d, after.TotalAlloc - before.TotalAlloc
}

// header is a valid start of a leaf config.
const header = minimal + "l2vnis:\n"

// TestBadConfigLargeFiles: a 10 MB file is refused before it is parsed,
// in well under a second and 100 MB, by its size; files just under the
// limits cost a bounded amount and their error output is bounded.
func TestBadConfigLargeFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, fill func(b *strings.Builder), size int) string {
		var b strings.Builder
		b.WriteString(header)
		for b.Len() < size {
			fill(&b)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const tenMB = 10 << 20
	i := 0
	vnis := func(b *strings.Builder) {
		i++
		fmt.Fprintf(b, "  - vni: %d\n    vxlan-device: vxlan%d\n    bridge: br%d\n    access-interfaces: [eth%d]\n", i, i, i, i)
	}
	dups := func(b *strings.Builder) { b.WriteString("  - vni: 100\n") }
	value := func(b *strings.Builder) { b.WriteString(strings.Repeat("a", 4096)) }
	flow := func(b *strings.Builder) {
		b.WriteString("  - access-interfaces: [a" + strings.Repeat(",a", 4096) + "]\n")
	}

	for _, tc := range []struct {
		name  string
		path  string
		want  string
		limit bool // the file is over a limit checked before parsing
	}{
		{"10 MB of VNIs", write("vnis10.yaml", vnis, tenMB), "over the size limit of 1048576 bytes (1 MiB)", true},
		{"10 MB value", write("value10.yaml", func(b *strings.Builder) {
			if !strings.HasSuffix(b.String(), "a") {
				b.WriteString("log-level: ")
			}
			value(b)
		}, tenMB), "over the size limit", true},
		{"1 MiB of flow items", write("flow.yaml", flow, MaxFileSize-8200), "more than 120000 entries", true},
		{"1 MiB of VNIs", write("vnis1.yaml", vnis, MaxFileSize-100), "", false},
		{"30,000 duplicate VNIs", write("dups.yaml", dups, len(header)+30000*len("  - vni: 100\n")), "29999 problems", false},
		{"1 MiB of duplicate VNIs", write("dups1.yaml", dups, MaxFileSize-20), "problems", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fi, err := os.Stat(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			var lerr error
			d, alloc := cost(func() { _, lerr = Load(tc.path) })
			t.Logf("%s: %d bytes loaded in %v, %.1f MB allocated", tc.name, fi.Size(), d, float64(alloc)/(1<<20))
			switch {
			case tc.want == "" && lerr != nil:
				t.Fatalf("refused: %.500v", lerr)
			case tc.want != "" && (lerr == nil || !strings.Contains(lerr.Error(), tc.want)):
				t.Fatalf("error %.500v, want it to contain %q", lerr, tc.want)
			}
			if lerr != nil {
				msg := lerr.Error()
				if lines := strings.Count(msg, "\n") + 1; lines > MaxProblemsShown+2 || len(msg) > 20000 {
					t.Errorf("error output is %d lines, %d bytes", lines, len(msg))
				}
				if strings.Contains(msg, "alias") {
					t.Errorf("error blames aliases the file does not have: %.300s", msg)
				}
			}
			// Refused before parsing: bounded whatever the machine's load.
			if tc.limit && (d > time.Second || alloc > 100<<20) {
				t.Errorf("refusing it took %v and %d bytes, want well under 1 s and 100 MB", d, alloc)
			}
			// Parsed: allocation is deterministic; time only logged.
			if !tc.limit && alloc > 200<<20 {
				t.Errorf("loading it allocated %d MB, want at most 200", alloc>>20)
			}
		})
	}

	// The shape of the capped output.
	_, err := Load(filepath.Join(dir, "dups.yaml"))
	msg := err.Error()
	if !strings.HasPrefix(msg, "config "+filepath.Join(dir, "dups.yaml")+": 29999 problems:\n  line 8: l2vnis[1].vni: 100: already configured by l2vnis[0]") ||
		!strings.HasSuffix(msg, "\n  ... and 29949 more problems, not shown: fix these first") ||
		strings.Count(msg, "\n") != MaxProblemsShown+1 {
		t.Errorf("capped output:\n%s", msg)
	}
}

// TestParseSizeLimit: Parse, which a caller may hand any bytes, applies
// the same limit.
func TestParseSizeLimit(t *testing.T) {
	_, err := Parse(make([]byte, MaxFileSize+1), "big")
	if err == nil || !strings.Contains(err.Error(), "config big: 1048577 bytes, over the size limit") {
		t.Errorf("Parse of MaxFileSize+1 bytes: %v", err)
	}
}

// TestWithL2VNINamesGiven: a name given in the request that clashes is
// called the request's, not a default; a defaulted one is called a default.
func TestWithL2VNINamesGiven(t *testing.T) {
	c, err := loadText(t, minimal+"l2vnis:\n  - vni: 100\n    bridge: br300\n")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.WithL2VNI(L2VNI{VNI: 300, VXLANDevice: "vxlan100", RD: "10.0.0.1:100"})
	for _, w := range []string{
		`l2vnis[1].vxlan-device: "vxlan100": is already used by l2vnis[0].vxlan-device`,
		`l2vnis[1].rd: "10.0.0.1:100": is the same RD as l2vnis[0].rd`,
		`l2vnis[1].bridge: "br300": the default value is already used by l2vnis[0].bridge`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v, want %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "default value is already used by l2vnis[0].vxlan-device") {
		t.Errorf("a given name is called a default: %v", err)
	}
}

// TestWithoutL2VNIMovesFileRecord: after a VNI is deleted at run time, an
// entry added at the freed index does not inherit the explicit values
// (or lines) of the entry that used to be there.
func TestWithoutL2VNIMovesFileRecord(t *testing.T) {
	c, err := loadText(t, minimal+"l2vnis:\n  - vni: 100\n  - vni: 200\n    udp-port: 4789\n")
	if err != nil {
		t.Fatal(err)
	}
	d, ok := c.WithoutL2VNI(100)
	if !ok {
		t.Fatal("VNI 100 not found")
	}
	n, err := d.WithL2VNI(L2VNI{VNI: 300})
	if err != nil {
		t.Fatalf("adding VNI 300 after deleting VNI 100: %v", err)
	}
	if v := n.L2VNIs[1]; v.VNI != 300 || v.UDPPort != DefaultVXLANPort {
		t.Errorf("added entry %+v, want VNI 300 with the default UDP port", v)
	}
	if !n.isSet("l2vnis[0].udp-port") || n.isSet("l2vnis[1].udp-port") {
		t.Errorf("explicit record not moved: %v", n.explicit)
	}
	if l := n.lines["l2vnis[0].udp-port"]; l != 9 {
		t.Errorf("line of VNI 200's udp-port after the delete: %d, want 9", l)
	}
}
