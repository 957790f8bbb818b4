package configs

import (
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

func TestApplyDefaultsLeaf(t *testing.T) {
	c := &Config{
		RouterID:  addr("10.0.0.1"),
		ASN:       65000,
		Neighbors: []Neighbor{{Address: addr("10.0.0.254"), ASN: 65000}},
		L2VNIs:    []L2VNI{{VNI: 100}, {VNI: 70000}},
	}
	c.ApplyDefaults()
	checks := []struct {
		name      string
		got, want any
	}{
		{"role", c.Role, RoleLeaf},
		{"log-level", c.LogLevel, "info"},
		{"vtep-ip", c.VTEPIP, addr("10.0.0.1")},
		{"listen-port", c.BGP.ListenPort, 179},
		{"graceful-restart.enabled", c.GracefulRestart.IsEnabled(), true},
		{"graceful-restart.enabled set", c.GracefulRestart.Enabled != nil, true},
		{"restart-time", c.GracefulRestart.RestartTime, 120 * time.Second},
		{"eor-timeout", c.GracefulRestart.EORTimeout, 30 * time.Second},
		{"duplicate-moves", c.MACMobility.DuplicateMoves, 5},
		{"duplicate-window", c.MACMobility.DuplicateWindow, 180 * time.Second},
		{"freeze", c.MACMobility.Freeze, false},
		{"neighbor port", c.Neighbors[0].Port, 179},
		{"neighbor rr client on a leaf", c.Neighbors[0].RouteReflectorClient == nil, true},
		{"vxlan-device", c.L2VNIs[0].VXLANDevice, "vxlan100"},
		{"bridge", c.L2VNIs[0].Bridge, "br100"},
		{"udp-port", c.L2VNIs[0].UDPPort, 4789},
		{"mtu", c.L2VNIs[0].MTU, 0},
		{"rd", c.L2VNIs[0].RD, "10.0.0.1:100"},
		{"rd above 65535", c.L2VNIs[1].RD, "10.0.0.1:4465"}, // (70000-1)%65535+1
		{"import-rts stay auto", len(c.L2VNIs[0].ImportRTs), 0},
		{"export-rts stay auto", len(c.L2VNIs[0].ExportRTs), 0},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaulted config is invalid: %v", err)
	}
}

func TestApplyDefaultsRouteReflector(t *testing.T) {
	c := &Config{
		RouterID: addr("10.0.0.254"),
		ASN:      65000,
		Role:     RoleRouteReflector,
		Neighbors: []Neighbor{
			{Address: addr("10.0.0.1"), ASN: 65000},
			{Address: addr("10.0.0.2"), ASN: 65000, RouteReflectorClient: ptr(false)},
			{Address: addr("192.168.0.1"), ASN: 65100}, // eBGP: never a client by default
		},
		DynamicNeighbors: []DynamicNeighbor{
			{Prefix: netip.MustParsePrefix("10.0.1.0/24"), ASN: 65000},
			{Prefix: netip.MustParsePrefix("10.0.2.0/24"), ASN: 65001},
		},
	}
	c.ApplyDefaults()
	got := []bool{
		c.Neighbors[0].IsRouteReflectorClient(),
		c.Neighbors[1].IsRouteReflectorClient(),
		c.Neighbors[2].IsRouteReflectorClient(),
		c.DynamicNeighbors[0].IsRouteReflectorClient(),
		c.DynamicNeighbors[1].IsRouteReflectorClient(),
	}
	if want := []bool{true, false, false, true, false}; !slices.Equal(got, want) {
		t.Errorf("route-reflector clients = %v, want %v", got, want)
	}
	if c.VTEPIP.IsValid() {
		t.Errorf("a route reflector got vtep-ip %v", c.VTEPIP)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

// Set values survive, and applying twice changes nothing more.
func TestApplyDefaultsKeepsValuesAndIsIdempotent(t *testing.T) {
	c := &Config{
		RouterID:        addr("10.0.0.1"),
		VTEPIP:          addr("10.0.1.1"),
		ASN:             65000,
		LogLevel:        "debug",
		BGP:             BGP{ListenPort: -1, ConnectRetry: 7 * time.Second, HoldTime: 30 * time.Second},
		GracefulRestart: GracefulRestart{Enabled: ptr(false), RestartTime: time.Second, EORTimeout: time.Minute},
		MACMobility:     MACMobility{DuplicateMoves: 3, DuplicateWindow: time.Minute, Freeze: true},
		Neighbors:       []Neighbor{{Address: addr("10.0.0.254"), ASN: 65000, Port: 1179, AddressFamilies: []string{FamilyL2VPNEVPN}}},
		API:             API{Socket: "/run/x.sock"},
		L2VNIs: []L2VNI{{VNI: 100, VXLANDevice: "vx", Bridge: "b", RD: "65000:7",
			ImportRTs: []string{"1:1"}, ExportRTs: []string{"2:2"}, UDPPort: 8472, MTU: 1400}},
	}
	want := *c
	want.Neighbors = slices.Clone(c.Neighbors)
	want.L2VNIs = slices.Clone(c.L2VNIs)
	want.Role = RoleLeaf
	// The set rd and route targets, parsed once.
	rd, _ := evpn.ParseRD("65000:7")
	rt := func(s string) evpn.RT { r, _ := evpn.ParseRT(s); return r }
	want.L2VNIs[0].routing = &Routing{RD: rd, ImportRTs: []evpn.RT{rt("1:1")}, ExportRTs: []evpn.RT{rt("2:2")}}
	c.ApplyDefaults()
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("ApplyDefaults changed set values:\ngot  %+v\nwant %+v", *c, want)
	}

	d := validLeaf()
	d.ApplyDefaults()
	once := *d
	once.Neighbors = slices.Clone(d.Neighbors)
	once.L2VNIs = slices.Clone(d.L2VNIs)
	d.ApplyDefaults()
	if !reflect.DeepEqual(*d, once) {
		t.Errorf("second ApplyDefaults changed the config:\nonce  %+v\ntwice %+v", once, *d)
	}
}

// Without a router-id no RD can be derived; ApplyDefaults must leave rd
// empty so that Validate reports the router-id alone.
func TestApplyDefaultsWithoutRouterID(t *testing.T) {
	c := validLeaf()
	c.RouterID = netip.Addr{}
	c.ApplyDefaults()
	if c.L2VNIs[0].RD != "" || c.VTEPIP.IsValid() {
		t.Errorf("rd %q, vtep-ip %v derived from no router-id", c.L2VNIs[0].RD, c.VTEPIP)
	}
	ps := problemsOf(t, c.Validate())
	if len(ps) != 1 || ps[0].Path != "router-id" {
		t.Errorf("problems = %v, want router-id only", ps)
	}
}

func TestAutoRDNumber(t *testing.T) {
	for _, tt := range []struct {
		vni  uint32
		want uint16
	}{
		{0, 0}, {1, 1}, {100, 100}, {65535, 65535},
		{65536, 1}, {65635, 100}, {100100, 34565}, {16777215, 255},
	} {
		if got := AutoRDNumber(tt.vni); got != tt.want {
			t.Errorf("AutoRDNumber(%d) = %d, want %d", tt.vni, got, tt.want)
		}
	}
	// Any block of 65535 consecutive VNIs gets distinct, non-zero numbers.
	for _, start := range []uint32{1, 10000, 100001, MaxVNI - 65534} {
		seen := make([]bool, 65536)
		for v := start; v < start+65535; v++ {
			n := AutoRDNumber(v)
			if n == 0 || seen[n] {
				t.Fatalf("block from %d: VNI %d gets number %d again (or zero)", start, v, n)
			}
			seen[n] = true
		}
	}
}

// Adding, removing or reordering VNIs never changes another VNI's RD.
func TestRDStability(t *testing.T) {
	rds := func(c *Config) map[uint32]evpn.RD {
		c.ApplyDefaults()
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		m := map[uint32]evpn.RD{}
		for _, v := range c.L2VNIs {
			m[v.VNI] = c.L2VNIRD(v)
		}
		return m
	}
	withVNIs := func(vnis ...uint32) *Config {
		c := validLeaf()
		c.L2VNIs = nil
		for _, v := range vnis {
			c.L2VNIs = append(c.L2VNIs, L2VNI{VNI: v})
		}
		return c
	}
	before := rds(withVNIs(100, 200, 100100))
	for _, after := range []map[uint32]evpn.RD{
		rds(withVNIs(50, 100, 150, 200, 100100, 16000000)), // added before, between, after
		rds(withVNIs(100100, 200, 100)),                    // reordered
		rds(withVNIs(200, 100100)),                         // one removed
	} {
		for vni, rd := range after {
			if old, ok := before[vni]; ok && old != rd {
				t.Errorf("VNI %d: RD changed from %v to %v", vni, old, rd)
			}
		}
	}
	if want := evpn.RDFromIP(addr("10.0.0.1"), 100); before[100] != want {
		t.Errorf("VNI 100: RD %v, want %v", before[100], want)
	}
}

func TestL2VNIRD(t *testing.T) {
	c := validLeaf()
	// Before ApplyDefaults the RD is derived on the fly.
	if got, want := c.L2VNIRD(L2VNI{VNI: 7}), evpn.RDFromIP(addr("10.0.0.1"), 7); got != want {
		t.Errorf("auto RD = %v, want %v", got, want)
	}
	got := c.L2VNIRD(L2VNI{VNI: 7, RD: "4200000000:9"})
	if want := (evpn.RD{Type: evpn.RDTypeAS4, Admin: 4200000000, Number: 9}); got != want {
		t.Errorf("explicit RD = %+v, want %+v", got, want)
	}
}

func TestRouteTargets(t *testing.T) {
	c := validLeaf()
	c.ASN = 4200000001 // auto RTs use the low 16 bits, as FRR does
	auto := L2VNI{VNI: 100}
	rts, isAuto := c.ImportRTs(auto)
	want := evpn.RT{Admin: 4200000001 & 0xffff, Value: 100}
	if !isAuto || len(rts) != 1 || rts[0] != want {
		t.Errorf("auto ImportRTs = %v, %v; want [%v], true", rts, isAuto, want)
	}
	if ex := c.ExportRTs(auto); len(ex) != 1 || ex[0] != want {
		t.Errorf("auto ExportRTs = %v, want [%v]", ex, want)
	}

	explicit := L2VNI{VNI: 100, ImportRTs: []string{"65000:1", "10.0.0.1:2"}, ExportRTs: []string{"65000:3"}}
	rts, isAuto = c.ImportRTs(explicit)
	wantImport := []evpn.RT{{Admin: 65000, Value: 1}, {IPv4: true, Admin: 0x0a000001, Value: 2}}
	if isAuto || !slices.Equal(rts, wantImport) {
		t.Errorf("explicit ImportRTs = %v, %v; want %v, false", rts, isAuto, wantImport)
	}
	if ex := c.ExportRTs(explicit); !slices.Equal(ex, []evpn.RT{{Admin: 65000, Value: 3}}) {
		t.Errorf("explicit ExportRTs = %v", ex)
	}
}

func TestSmallHelpers(t *testing.T) {
	for _, tt := range []struct {
		enabled *bool
		want    bool
	}{{nil, true}, {ptr(true), true}, {ptr(false), false}} {
		if got := (GracefulRestart{Enabled: tt.enabled}).IsEnabled(); got != tt.want {
			t.Errorf("IsEnabled(%v) = %v", tt.enabled, got)
		}
	}
	for level, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn,
		"error": slog.LevelError, "": slog.LevelInfo,
	} {
		if got := (&Config{LogLevel: level}).SlogLevel(); got != want {
			t.Errorf("SlogLevel(%q) = %v, want %v", level, got, want)
		}
	}
}

// ApplyDefaults parses each L2VNI's rd and route targets once: reading
// them afterwards (on every advertised MAC) parses and allocates nothing,
// and gives what parsing an L2VNI built in code gives.
func TestL2VNIRoutingParsedOnce(t *testing.T) {
	c := validLeaf()
	c.L2VNIs[0].RD, c.L2VNIs[0].ExportRTs = "10.0.0.1:9", []string{"65000:100", "65001:4200000000"}
	c.L2VNIs[1].ImportRTs = []string{"1:2"}
	raw := slices.Clone(c.L2VNIs)
	c.ApplyDefaults()
	for i, v := range c.L2VNIs {
		got, fresh := c.L2VNIRouting(v), c.L2VNIRouting(raw[i])
		if !reflect.DeepEqual(got, fresh) {
			t.Errorf("vni %d: routing after ApplyDefaults %+v, parsed from the file's values %+v", v.VNI, got, fresh)
		}
		if n := testing.AllocsPerRun(100, func() { _ = c.L2VNIRD(v); _ = c.ExportRTs(v) }); n != 0 {
			t.Errorf("vni %d: reading its RD and export RTs allocates %.0f times: parsed again", v.VNI, n)
		}
	}
	if r := c.L2VNIRouting(c.L2VNIs[0]); r.RD.String() != "10.0.0.1:9" || len(r.ExportRTs) != 2 || !r.ImportAuto {
		t.Errorf("vni 100: %+v, want rd 10.0.0.1:9, two export RTs, the auto import RT", r)
	}
	if r := c.L2VNIRouting(c.L2VNIs[1]); r.RD.String() != "10.0.0.1:200" || r.ImportAuto || len(r.ImportRTs) != 1 {
		t.Errorf("vni 200: %+v, want the auto RD 10.0.0.1:200 and one set import RT", r)
	}
}
