package configs

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// validLeaf returns a valid leaf config, without defaults applied.
func validLeaf() *Config {
	return &Config{
		RouterID:  addr("10.0.0.1"),
		ASN:       65000,
		Neighbors: []Neighbor{{Address: addr("10.0.0.254"), ASN: 65000}},
		L2VNIs: []L2VNI{
			{VNI: 100, AccessInterfaces: []string{"eth1"}},
			{VNI: 200, AccessInterfaces: []string{"eth2"}},
		},
	}
}

func validRR() *Config {
	return &Config{
		RouterID:         addr("10.0.0.254"),
		ASN:              65000,
		Role:             RoleRouteReflector,
		DynamicNeighbors: []DynamicNeighbor{{Prefix: netip.MustParsePrefix("10.0.0.0/24"), ASN: 65000}},
	}
}

func TestValidateAcceptsValid(t *testing.T) {
	for name, c := range map[string]*Config{"leaf": validLeaf(), "rr": validRR()} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		base   func() *Config
		mutate func(c *Config)
		path   string // the problem's key path
		want   string // a substring of its text
	}{
		{"router-id missing", validLeaf, func(c *Config) { c.RouterID = netip.Addr{} }, "router-id", "missing"},
		{"router-id IPv6", validLeaf, func(c *Config) { c.RouterID = addr("2001:db8::1") }, "router-id", "not IPv4"},
		{"router-id zero", validLeaf, func(c *Config) { c.RouterID = addr("0.0.0.0") }, "router-id", "0.0.0.0"},
		{"asn missing", validLeaf, func(c *Config) { c.ASN = 0 }, "asn", "missing"},
		{"role unknown", validLeaf, func(c *Config) { c.Role = "spine" }, "role", `"spine"`},
		{"log-level unknown", validLeaf, func(c *Config) { c.LogLevel = "trace" }, "log-level", "debug, info, warn or error"},
		{"vtep IPv6", validLeaf, func(c *Config) { c.VTEPIP = addr("2001:db8::1") }, "vtep-ip", "not IPv4"},
		{"vtep loopback", validLeaf, func(c *Config) { c.VTEPIP = addr("127.0.0.1") }, "vtep-ip", "unicast"},
		{"vtep multicast", validLeaf, func(c *Config) { c.VTEPIP = addr("239.1.1.1") }, "vtep-ip", "unicast"},
		{"listen-port 0 after defaults is impossible, 70000 is not", validLeaf, func(c *Config) { c.BGP.ListenPort = 70000 }, "bgp.listen-port", "-1"},
		{"listen-port -2", validLeaf, func(c *Config) { c.BGP.ListenPort = -2 }, "bgp.listen-port", "out of range"},
		{"ebgp-multihop on iBGP", validLeaf, func(c *Config) { c.Neighbors[0].EBGPMultihop = 2 }, "neighbors[0].ebgp-multihop", "iBGP"},
		{"ebgp-multihop 300", validLeaf, func(c *Config) { c.Neighbors[0].ASN = 65100; c.Neighbors[0].EBGPMultihop = 300 }, "neighbors[0].ebgp-multihop", "out of range"},
		{"hold-time below 3s", validLeaf, func(c *Config) { c.BGP.HoldTime = time.Second }, "bgp.hold-time", "3s to 65535s"},
		{"connect-retry negative", validLeaf, func(c *Config) { c.BGP.ConnectRetry = -time.Second }, "bgp.connect-retry", "1s to 1h"},
		{"listen addresses without listening", validLeaf, func(c *Config) {
			c.BGP.ListenPort = -1
			c.BGP.ListenAddresses = []netip.Addr{addr("10.0.0.1")}
		}, "bgp.listen-addresses", "listen-port is -1"},
		{"listen address twice", validLeaf, func(c *Config) {
			c.BGP.ListenAddresses = []netip.Addr{addr("10.0.0.1"), addr("10.0.0.1")}
		}, "bgp.listen-addresses[1]", "twice"},
		{"listen address empty", validLeaf, func(c *Config) { c.BGP.ListenAddresses = []netip.Addr{{}} }, "bgp.listen-addresses[0]", "empty"},
		{"restart-time negative", validLeaf, func(c *Config) { c.GracefulRestart.RestartTime = -time.Second }, "graceful-restart.restart-time", "4095s"},
		{"restart-time too long", validLeaf, func(c *Config) { c.GracefulRestart.RestartTime = time.Hour + time.Second*10000 }, "graceful-restart.restart-time", "12 bits"},
		{"restart-time fraction", validLeaf, func(c *Config) { c.GracefulRestart.RestartTime = 1500 * time.Millisecond }, "graceful-restart.restart-time", "whole number of seconds"},
		{"eor-timeout negative", validLeaf, func(c *Config) { c.GracefulRestart.EORTimeout = -time.Second }, "graceful-restart.eor-timeout", "positive"},
		{"duplicate-moves 1", validLeaf, func(c *Config) { c.MACMobility.DuplicateMoves = 1 }, "mac-mobility.duplicate-moves", "every ordinary move"},
		{"duplicate-window negative", validLeaf, func(c *Config) { c.MACMobility.DuplicateWindow = -time.Minute }, "mac-mobility.duplicate-window", "positive"},
		{"no peers", validLeaf, func(c *Config) { c.Neighbors = nil }, "neighbors", "no BGP peers"},
		{"neighbor address missing", validLeaf, func(c *Config) { c.Neighbors[0].Address = netip.Addr{} }, "neighbors[0].address", "missing"},
		{"neighbor address multicast", validLeaf, func(c *Config) { c.Neighbors[0].Address = addr("224.0.0.5") }, "neighbors[0].address", "unicast"},
		{"neighbor is router-id", validLeaf, func(c *Config) { c.Neighbors[0].Address = addr("10.0.0.1") }, "neighbors[0].address", "router-id"},
		{"neighbor is vtep-ip", validLeaf, func(c *Config) {
			c.VTEPIP = addr("10.0.1.1")
			c.Neighbors[0].Address = addr("10.0.1.1")
		}, "neighbors[0].address", "vtep-ip"},
		{"neighbor twice", validLeaf, func(c *Config) { c.Neighbors = append(c.Neighbors, c.Neighbors[0]) }, "neighbors[1].address", "neighbors[0]"},
		{"neighbor asn missing", validLeaf, func(c *Config) { c.Neighbors[0].ASN = 0 }, "neighbors[0].asn", "missing"},
		{"neighbor port", validLeaf, func(c *Config) { c.Neighbors[0].Port = 65536 }, "neighbors[0].port", "1-65535"},
		{"rr client on a leaf", validLeaf, func(c *Config) { c.Neighbors[0].RouteReflectorClient = ptr(true) }, "neighbors[0].route-reflector-client", "only a route reflector"},
		{"rr client on eBGP", validRR, func(c *Config) {
			c.Neighbors = []Neighbor{{Address: addr("192.168.0.1"), ASN: 65100, RouteReflectorClient: ptr(true)}}
		}, "neighbors[0].route-reflector-client", "eBGP"},
		{"dynamic prefix missing", validRR, func(c *Config) { c.DynamicNeighbors[0].Prefix = netip.Prefix{} }, "dynamic-neighbors[0].prefix", "missing"},
		{"dynamic prefix host bits", validRR, func(c *Config) { c.DynamicNeighbors[0].Prefix = netip.MustParsePrefix("10.0.0.7/24") }, "dynamic-neighbors[0].prefix", "write 10.0.0.0/24"},
		{"dynamic prefixes overlap", validRR, func(c *Config) {
			c.DynamicNeighbors = append(c.DynamicNeighbors, DynamicNeighbor{Prefix: netip.MustParsePrefix("10.0.0.128/25"), ASN: 65000})
		}, "dynamic-neighbors[1].prefix", "overlaps dynamic-neighbors[0]"},
		{"dynamic asn missing", validRR, func(c *Config) { c.DynamicNeighbors[0].ASN = 0 }, "dynamic-neighbors[0].asn", "missing"},
		{"dynamic rr client on leaf", validLeaf, func(c *Config) {
			c.DynamicNeighbors = []DynamicNeighbor{{Prefix: netip.MustParsePrefix("10.0.0.0/24"), ASN: 65000, RouteReflectorClient: ptr(true)}}
		}, "dynamic-neighbors[0].route-reflector-client", "only a route reflector"},
		{"dynamic without listening", validRR, func(c *Config) { c.BGP.ListenPort = -1 }, "bgp.listen-port", "dynamic-neighbors need"},
		{"rr with l2vnis", validRR, func(c *Config) { c.L2VNIs = []L2VNI{{VNI: 1}} }, "l2vnis", "installs nothing"},
		{"vni missing", validLeaf, func(c *Config) { c.L2VNIs[1].VNI = 0 }, "l2vnis[1].vni", "missing"},
		{"vni too big", validLeaf, func(c *Config) { c.L2VNIs[1].VNI = 1 << 24 }, "l2vnis[1].vni", "24 bits"},
		{"vni twice", validLeaf, func(c *Config) { c.L2VNIs[1].VNI = 100 }, "l2vnis[1].vni", "l2vnis[0]"},
		{"ifname too long", validLeaf, func(c *Config) { c.L2VNIs[1].Bridge = "bridge-for-tenant-a" }, "l2vnis[1].bridge", "too long"},
		{"ifname slash", validLeaf, func(c *Config) { c.L2VNIs[0].VXLANDevice = "vx/100" }, "l2vnis[0].vxlan-device", "invalid character"},
		{"ifname colon", validLeaf, func(c *Config) { c.L2VNIs[0].AccessInterfaces = []string{"eth1:0"} }, "l2vnis[0].access-interfaces[0]", "invalid character"},
		{"ifname space", validLeaf, func(c *Config) { c.L2VNIs[0].AccessInterfaces = []string{"eth 1"} }, "l2vnis[0].access-interfaces[0]", "invalid character"},
		{"ifname template", validLeaf, func(c *Config) { c.L2VNIs[0].Bridge = "br%d" }, "l2vnis[0].bridge", "invalid character"},
		{"ifname dotdot", validLeaf, func(c *Config) { c.L2VNIs[0].Bridge = ".." }, "l2vnis[0].bridge", "reserved"},
		{"ifname empty access", validLeaf, func(c *Config) { c.L2VNIs[0].AccessInterfaces = []string{""} }, "l2vnis[0].access-interfaces[0]", "empty"},
		{"vxlan equals own bridge", validLeaf, func(c *Config) { c.L2VNIs[0].VXLANDevice = "br100" }, "l2vnis[0].bridge", "l2vnis[0].vxlan-device"},
		{"vxlan equals other bridge", validLeaf, func(c *Config) { c.L2VNIs[1].VXLANDevice = "br100" }, "l2vnis[1].vxlan-device", "l2vnis[0].bridge"},
		{"access port in two VNIs", validLeaf, func(c *Config) { c.L2VNIs[1].AccessInterfaces = []string{"eth1"} }, "l2vnis[1].access-interfaces[0]", "l2vnis[0].access-interfaces[0]"},
		{"access port twice in one VNI", validLeaf, func(c *Config) { c.L2VNIs[0].AccessInterfaces = []string{"eth1", "eth1"} }, "l2vnis[0].access-interfaces[1]", "already used"},
		{"access port is a bridge", validLeaf, func(c *Config) { c.L2VNIs[0].AccessInterfaces = []string{"br200"} }, "l2vnis[1].bridge", "l2vnis[0].access-interfaces[0]"},
		{"rd garbage", validLeaf, func(c *Config) { c.L2VNIs[0].RD = "one:two" }, "l2vnis[0].rd", "ASN:N"},
		{"rd number too big for IPv4 form", validLeaf, func(c *Config) { c.L2VNIs[0].RD = "10.0.0.1:70000" }, "l2vnis[0].rd", "0-65535"},
		{"rd duplicates another's auto rd", validLeaf, func(c *Config) { c.L2VNIs[1].RD = "10.0.0.1:100" }, "l2vnis[1].rd", "l2vnis[0].rd"},
		{"auto rd collision", validLeaf, func(c *Config) { c.L2VNIs[1].VNI = 100 + 65535 }, "l2vnis[1].rd", "same RD"},
		{"import rt garbage", validLeaf, func(c *Config) { c.L2VNIs[0].ImportRTs = []string{"65000"} }, "l2vnis[0].import-rts[0]", "route target"},
		{"export rt garbage", validLeaf, func(c *Config) { c.L2VNIs[0].ExportRTs = []string{"65000:1", "70000:70000"} }, "l2vnis[0].export-rts[1]", "0-65535"},
		{"import rt in two VNIs", validLeaf, func(c *Config) {
			c.L2VNIs[0].ImportRTs = []string{"65000:7"}
			c.L2VNIs[1].ImportRTs = []string{"65000:7"}
		}, "l2vnis[1].import-rts[0]", "l2vnis[0].import-rts[0]"},
		{"import rt listed twice", validLeaf, func(c *Config) { c.L2VNIs[0].ImportRTs = []string{"65000:7", "65000:7"} }, "l2vnis[0].import-rts[1]", "also imported"},
		{"import rt shadows auto import", validLeaf, func(c *Config) { c.L2VNIs[1].ImportRTs = []string{"65001:100"} }, "l2vnis[1].import-rts[0]", "auto import of l2vnis[0]"},
		{"udp-port", validLeaf, func(c *Config) { c.L2VNIs[0].UDPPort = 65536 }, "l2vnis[0].udp-port", "1-65535"},
		{"udp-port negative", validLeaf, func(c *Config) { c.L2VNIs[0].UDPPort = -1 }, "l2vnis[0].udp-port", "1-65535"},
		{"mtu small", validLeaf, func(c *Config) { c.L2VNIs[0].MTU = 67 }, "l2vnis[0].mtu", "68-65535"},
		{"mtu big", validLeaf, func(c *Config) { c.L2VNIs[0].MTU = 65536 }, "l2vnis[0].mtu", "68-65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.base()
			tt.mutate(c)
			wantOneProblem(t, c, tt.path, tt.want)
		})
	}
}

// Accepted edge values: each must pass, so that the checks above are not
// simply rejecting everything near a limit.
func TestValidateAcceptsEdges(t *testing.T) {
	tests := []struct {
		name   string
		base   func() *Config
		mutate func(c *Config)
	}{
		{"max asn", validLeaf, func(c *Config) { c.ASN = 4294967295; c.Neighbors[0].ASN = 4294967295 }},
		{"max vni", validLeaf, func(c *Config) { c.L2VNIs[1].VNI = 16777215 }},
		{"vni 1", validLeaf, func(c *Config) { c.L2VNIs[1].VNI = 1 }},
		{"15-char names", validLeaf, func(c *Config) { c.L2VNIs[0].Bridge = "abcdefghijklmno" }},
		{"no l2vnis on a leaf", validLeaf, func(c *Config) { c.L2VNIs = nil }},
		{"dynamic neighbors only on a leaf", validLeaf, func(c *Config) {
			c.Neighbors = nil
			c.DynamicNeighbors = []DynamicNeighbor{{Prefix: netip.MustParsePrefix("10.0.0.0/24"), ASN: 65000}}
		}},
		{"do not listen", validLeaf, func(c *Config) { c.BGP.ListenPort = -1 }},
		{"IPv6 neighbor", validLeaf, func(c *Config) { c.Neighbors[0].Address = addr("2001:db8::2") }},
		{"duplicate-moves 2", validLeaf, func(c *Config) { c.MACMobility.DuplicateMoves = 2 }},
		{"restart-time 4095s", validLeaf, func(c *Config) { c.GracefulRestart.RestartTime = MaxRestartTime }},
		{"mtu 68 and 65535", validLeaf, func(c *Config) { c.L2VNIs[0].MTU = 68; c.L2VNIs[1].MTU = 65535 }},
		{"explicit RTs and RDs of every form", validLeaf, func(c *Config) {
			c.L2VNIs[0].RD = "65000:4294967295"
			c.L2VNIs[1].RD = "4200000000:1"
			c.L2VNIs[0].ImportRTs = []string{"65000:100", "10.0.0.1:5", "4200000000:100"}
			c.L2VNIs[0].ExportRTs = []string{"1:1", "4200000000:100", "64086.59904:7"}
		}},
		{"explicit import of own VNI value from another AS", validLeaf, func(c *Config) { c.L2VNIs[0].ImportRTs = []string{"65001:100"} }},
		{"rr client false on eBGP", validRR, func(c *Config) {
			c.Neighbors = []Neighbor{{Address: addr("192.168.0.1"), ASN: 65100, RouteReflectorClient: ptr(false)}}
		}},
		{"eBGP peer of a route reflector", validRR, func(c *Config) {
			c.Neighbors = []Neighbor{{Address: addr("192.168.0.1"), ASN: 65100}}
		}},
		{"disjoint dynamic ranges", validRR, func(c *Config) {
			c.DynamicNeighbors = append(c.DynamicNeighbors, DynamicNeighbor{Prefix: netip.MustParsePrefix("10.0.1.0/24"), ASN: 65000})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.base()
			tt.mutate(c)
			if err := c.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

// Every problem of a file is reported in one error, with lines, in file
// order.
func TestValidateReportsEveryProblem(t *testing.T) {
	c, err := Parse([]byte(`router-id: 10.0.0.1
asn: 0
mac-mobility:
  duplicate-moves: 1
neighbors:
  - address: 10.0.0.1
    asn: 65000
l2vnis:
  - vni: 100
    bridge: vxlan300
    access-interfaces: [x/y]
  - vni: 300
    rd: 10.0.0.1:100
    mtu: 20
  - vni: 100
`), "many.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	err = c.Validate()
	ps := problemsOf(t, err)
	want := []struct {
		path string
		line int
	}{
		{"asn", 2},
		{"mac-mobility.duplicate-moves", 4},
		{"neighbors[0].address", 6},
		{"l2vnis[0].access-interfaces[0]", 11},
		{"l2vnis[1].vxlan-device", 12}, // defaulted vxlan300, taken by l2vnis[0]
		{"l2vnis[1].rd", 13},           // taken by l2vnis[0]'s default
		{"l2vnis[1].mtu", 14},
		{"l2vnis[2].vni", 15},
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.Path)
	}
	if len(ps) != len(want) {
		t.Fatalf("got problems %v, want %d: %v", got, len(want), err)
	}
	for i, w := range want {
		if ps[i].Path != w.path || ps[i].Line != w.line {
			t.Errorf("problem %d = %s (line %d), want %s (line %d)", i, ps[i].Path, ps[i].Line, w.path, w.line)
		}
	}
	msg := err.Error()
	for _, s := range []string{"config many.yaml: 8 problems", "line 11: l2vnis[0].access-interfaces[0]: \"x/y\"", "the default value is already used by l2vnis[0].bridge"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error text lacks %q:\n%s", s, msg)
		}
	}
	var p Problem
	if !errors.As(err, &p) || p.Path != "asn" {
		t.Errorf("errors.As(Problem) = %+v", p)
	}
}

// Validate must not change the config it checks.
func TestValidateDoesNotModify(t *testing.T) {
	c := validLeaf()
	c.Role = RoleRouteReflector // invalid with l2vnis, and RR defaults differ
	before := *c
	before.Neighbors = append([]Neighbor(nil), c.Neighbors...)
	before.L2VNIs = append([]L2VNI(nil), c.L2VNIs...)
	_ = c.Validate()
	if !reflect.DeepEqual(before, *c) {
		t.Errorf("Validate modified the config:\nbefore %+v\nafter  %+v", before, *c)
	}
}
