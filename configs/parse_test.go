package configs

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// minimal is the smallest valid leaf config; tests append to it.
const minimal = `router-id: 10.0.0.1
asn: 65000
neighbors:
  - address: 10.0.0.254
    asn: 65000
`

// problemsOf returns the problems of a *ValidationError, failing otherwise.
func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	return ve.Problems
}

// findProblem returns the problem at path, failing if there is none.
// wantOneProblem checks that c.Validate reports exactly one problem, at
// path, whose message mentions want.
func wantOneProblem(t *testing.T, c *Config, path, want string) {
	t.Helper()
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted it")
	}
	ps := problemsOf(t, err)
	p := findProblem(t, ps, path)
	if !strings.Contains(p.Error(), want) {
		t.Errorf("problem %q does not mention %q", p.Error(), want)
	}
	if len(ps) != 1 {
		t.Errorf("want exactly one problem, got %d: %v", len(ps), err)
	}
}

func findProblem(t *testing.T, ps []Problem, path string) Problem {
	t.Helper()
	for _, p := range ps {
		if p.Path == path {
			return p
		}
	}
	t.Fatalf("no problem at %q among %v", path, ps)
	return Problem{}
}

func TestParseDecodesAllTypes(t *testing.T) {
	c, err := Parse([]byte(`router-id: 10.0.0.1
asn: 4200000000
vtep-ip: 10.0.1.1
bgp:
  listen-addresses: [10.0.0.1, "2001:db8::1"]
  listen-port: -1
graceful-restart:
  enabled: false
  restart-time: 1m30s
mac-mobility:
  duplicate-window: 500ms
  freeze: yes
neighbors:
  - address: 2001:db8::2
    asn: 65001
    route-reflector-client: false
dynamic-neighbors:
  - prefix: 10.1.0.0/16
    asn: 65002
l2vnis:
  - vni: 16777215
    mtu: 9000
    import-rts: [65000:1, 10.0.0.1:7]
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"router-id", c.RouterID, netip.MustParseAddr("10.0.0.1")},
		{"asn", c.ASN, uint32(4200000000)},
		{"listen-addresses[1]", c.BGP.ListenAddresses[1], netip.MustParseAddr("2001:db8::1")},
		{"listen-port", c.BGP.ListenPort, -1},
		{"enabled", *c.GracefulRestart.Enabled, false},
		{"restart-time", c.GracefulRestart.RestartTime, 90 * time.Second},
		{"duplicate-window", c.MACMobility.DuplicateWindow, 500 * time.Millisecond},
		{"freeze", c.MACMobility.Freeze, true},
		{"neighbor address", c.Neighbors[0].Address, netip.MustParseAddr("2001:db8::2")},
		{"rr client", *c.Neighbors[0].RouteReflectorClient, false},
		{"prefix", c.DynamicNeighbors[0].Prefix, netip.MustParsePrefix("10.1.0.0/16")},
		{"vni", c.L2VNIs[0].VNI, uint32(16777215)},
		{"import-rts", strings.Join(c.L2VNIs[0].ImportRTs, ","), "65000:1,10.0.0.1:7"},
		{"line of l2vnis[0].mtu", c.lines["l2vnis[0].mtu"], 22},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		path string // problem path; "" for a plain (non-validation) error
		line int
		want []string // substrings of the error text
	}{
		{
			name: "unknown top-level key with suggestion",
			yaml: minimal + "router_id: 10.0.0.1\n",
			path: "router_id", line: 6,
			want: []string{`unknown key "router_id"`, `did you mean "router-id"`, "vtep-ip"},
		},
		{
			name: "unknown nested key",
			yaml: minimal + "    adress: 10.0.0.9\n",
			path: "neighbors[0].adress", line: 6,
			want: []string{`unknown key "adress"`, `did you mean "address"`},
		},
		{
			name: "unknown key in l2vni",
			yaml: minimal + "l2vnis:\n  - vni: 10\n    vlan: 10\n",
			path: "l2vnis[0].vlan", line: 8,
			want: []string{`unknown key "vlan"`, "vxlan-device"},
		},
		{
			name: "duration without unit",
			yaml: minimal + "graceful-restart:\n  restart-time: 120\n",
			path: "graceful-restart.restart-time", line: 7,
			want: []string{`"120"`, "a number alone is not a duration", "120s"},
		},
		{
			name: "duration garbage",
			yaml: minimal + "mac-mobility:\n  duplicate-window: 3 minutes\n",
			path: "mac-mobility.duplicate-window", line: 7,
			want: []string{`"3 minutes"`, "not a duration", "30s"},
		},
		{
			name: "bad router-id",
			yaml: "router-id: 10.0.0.300\nasn: 1\n",
			path: "router-id", line: 1,
			want: []string{`"10.0.0.300"`, "not an IP address"},
		},
		{
			name: "address with prefix length",
			yaml: minimal + "vtep-ip: 10.0.0.1/32\n",
			path: "vtep-ip", line: 6,
			want: []string{"without a prefix length"},
		},
		{
			name: "bad prefix",
			yaml: minimal + "dynamic-neighbors:\n  - prefix: 10.0.0.0\n    asn: 1\n",
			path: "dynamic-neighbors[0].prefix", line: 7,
			want: []string{`"10.0.0.0"`, "not a prefix", "10.0.0.0/24"},
		},
		{
			name: "asn overflows uint32",
			yaml: "router-id: 10.0.0.1\nasn: 4294967296\n",
			path: "asn", line: 2,
			want: []string{"0 to 4294967295"},
		},
		{
			name: "negative vni",
			yaml: minimal + "l2vnis:\n  - vni: -1\n",
			path: "l2vnis[0].vni", line: 7,
			want: []string{`"-1"`, "whole number"},
		},
		{
			name: "quoted number",
			yaml: minimal + "l2vnis:\n  - vni: \"100\"\n",
			path: "l2vnis[0].vni", line: 7,
			want: []string{"remove the quotes"},
		},
		{
			name: "bool garbage",
			yaml: minimal + "mac-mobility:\n  freeze: maybe\n",
			path: "mac-mobility.freeze", line: 7,
			want: []string{"true or false"},
		},
		{
			name: "mapping where a list belongs",
			yaml: "router-id: 10.0.0.1\nasn: 1\nneighbors:\n  address: 10.0.0.2\n",
			path: "neighbors", line: 4,
			want: []string{"want a list"},
		},
		{
			name: "list where a string belongs",
			yaml: minimal + "l2vnis:\n  - vni: 1\n    bridge: [a, b]\n",
			path: "l2vnis[0].bridge", line: 8,
			want: []string{"want a string, got a list"},
		},
		{
			name: "key set twice",
			yaml: minimal + "asn: 65001\n",
			path: "asn", line: 6,
			want: []string{"set twice", "line 2"},
		},
		{
			name: "empty file",
			yaml: "",
			want: []string{"t.yaml", "empty"},
		},
		{
			name: "only comments",
			yaml: "# nothing here\n",
			want: []string{"empty"},
		},
		{
			name: "empty document",
			yaml: "---\n",
			want: []string{"empty"},
		},
		{
			name: "two documents",
			yaml: minimal + "---\nrouter-id: 10.0.0.2\n",
			want: []string{"line 7", "second YAML document"},
		},
		{
			name: "not a mapping",
			yaml: "- router-id: 10.0.0.1\n",
			want: []string{"must be a mapping"},
		},
		{
			name: "syntax error",
			yaml: "router-id: [10.0.0.1\n",
			want: []string{"t.yaml", "yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "t.yaml")
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", c)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tt.path == "" {
				var ve *ValidationError
				if errors.As(err, &ve) {
					t.Errorf("got a *ValidationError, want a plain error: %v", err)
				}
				return
			}
			p := findProblem(t, problemsOf(t, err), tt.path)
			if p.Line != tt.line {
				t.Errorf("problem %v on line %d, want %d", p, p.Line, tt.line)
			}
		})
	}
}

// All decode problems of a file are reported together, not just the first.
func TestParseReportsEveryProblem(t *testing.T) {
	_, err := Parse([]byte(`router-id: nope
asn: 65000
colour: blue
graceful-restart:
  eor-timeout: 30
l2vnis:
  - vni: 1
    rd: 1:1
    mtu: big
`), "t.yaml")
	ps := problemsOf(t, err)
	for _, path := range []string{"router-id", "colour", "graceful-restart.eor-timeout", "l2vnis[0].mtu"} {
		findProblem(t, ps, path)
	}
	if len(ps) != 4 {
		t.Errorf("got %d problems, want 4: %v", len(ps), err)
	}
	if !strings.Contains(err.Error(), "4 problems") {
		t.Errorf("error text %q does not count the problems", err)
	}
}

func TestParseAnchorsAndMerge(t *testing.T) {
	c, err := Parse([]byte(minimal+`l2vnis:
  - &common
    vni: 100
    export-rts: &rts [65000:1]
    mtu: 1450
  - <<: *common
    vni: 200
    import-rts: *rts
`), "")
	if err != nil {
		t.Fatal(err)
	}
	v := c.L2VNIs[1]
	if v.VNI != 200 || v.MTU != 1450 || len(v.ImportRTs) != 1 || v.ImportRTs[0] != "65000:1" {
		t.Errorf("merged l2vni = %+v", v)
	}

	// An unknown key inside merged content is still caught.
	_, err = Parse([]byte(minimal+`l2vnis:
  - &common
    vni: 100
  - <<: {vni: 3, colour: red}
`), "")
	findProblem(t, problemsOf(t, err), "l2vnis[1].colour")
}

// Merge keys over aliases can make a small file expand exponentially; the
// walk must give up rather than hang.
func TestParseAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString(minimal + "x0: &a0 {vni: 1}\n")
	for i := 1; i <= 7; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 10), ", ")
		fmt.Fprintf(&b, "x%d: &a%d {<<: [%s]}\n", i, i, refs)
	}
	b.WriteString("l2vnis:\n  - <<: *a7\n")
	start := time.Now()
	_, err := Parse([]byte(b.String()), "")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Parse took %v", d)
	}
	if err == nil || !strings.Contains(err.Error(), "expand to more than") {
		t.Errorf("error = %v, want the expansion limit", err)
	}
}

func TestLoadReadError(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want ErrNotExist", err)
	}
}
