package configs

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/evpnd/evpnd/speaker/evpn"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// vrfLeaf is validLeaf with one tenant VRF routing both L2VNIs.
func vrfLeaf() *Config {
	c := validLeaf()
	c.VRFs = []VRF{{
		Name: "tenant-a", L3VNI: 4001, Backend: BackendNetns,
		GatewayMAC: "00:00:5e:00:01:01",
		L2VNIs: []VRFMember{
			{VNI: 100, GatewayIPs: []netip.Prefix{pfx("10.1.0.1/24"), pfx("2001:db8:1::1/64")}},
			{VNI: 200, GatewayIPs: []netip.Prefix{pfx("10.2.0.1/24")}},
		},
		AdvertisePrefixes: []netip.Prefix{pfx("10.99.0.0/16")},
	}}
	return c
}

// twoVRFs adds a second tenant on a third L2VNI.
func twoVRFs() *Config {
	c := vrfLeaf()
	c.L2VNIs = append(c.L2VNIs, L2VNI{VNI: 300})
	c.VRFs = append(c.VRFs, VRF{
		Name: "tenant-b", L3VNI: 4002, Backend: BackendNetns, GatewayMAC: "00:00:5e:00:01:01",
		L2VNIs: []VRFMember{{VNI: 300, GatewayIPs: []netip.Prefix{pfx("10.1.0.1/24")}}}, // overlaps tenant-a: isolated
	})
	return c
}

func TestVRFValid(t *testing.T) {
	for name, c := range map[string]*Config{"one": vrfLeaf(), "two overlapping tenants": twoVRFs()} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	c := vrfLeaf()
	c.VRFs[0].Backend = BackendVRF
	c.VRFs[0].Table = 1001
	if err := c.Validate(); err != nil {
		t.Errorf("vrf backend: %v", err)
	}
}

func TestVRFDefaults(t *testing.T) {
	c := twoVRFs()
	c.VRFs[1].Backend = BackendVRF
	orig := c.VRFs[0]
	c.ApplyDefaults()
	a, b := c.VRFs[0], c.VRFs[1]
	if a.VXLANDevice != "vxlan4001" || a.Bridge != "br4001" || a.UDPPort != 4789 || a.RD != "10.0.0.1:4001" ||
		a.Namespace != "tenant-a" || a.Table != 0 || a.RouterMAC != "02:ee:0a:00:00:01" {
		t.Errorf("defaults of a netns VRF: %+v", a)
	}
	if b.Table != 4002 || b.Namespace != "" {
		t.Errorf("defaults of a vrf-backend VRF: table %d namespace %q", b.Table, b.Namespace)
	}
	if a.L2VNIs[0].GatewayMAC != "00:00:5e:00:01:01" {
		t.Errorf("member gateway-mac not defaulted from the VRF's: %+v", a.L2VNIs[0])
	}
	if orig.L2VNIs[0].GatewayMAC != "" {
		t.Error("ApplyDefaults wrote through a shared member slice")
	}
	if got := c.VRFRouterMAC(a); got != DerivedRouterMAC(addr("10.0.0.1")) {
		t.Errorf("VRFRouterMAC = %v", got)
	}
	if DerivedRouterMAC(addr("10.0.0.1")) == DerivedRouterMAC(addr("10.0.0.2")) || !DerivedRouterMAC(addr("10.0.0.1")).IsUnicast() {
		t.Error("derived router MACs must be unicast and differ per router-id")
	}
	if rts, auto := c.VRFImportRTs(a); !auto || rts[0] != evpn.AutoRT(65000, 4001) {
		t.Errorf("VRFImportRTs = %v %v", rts, auto)
	}
	if c.VRFRD(a).String() != "10.0.0.1:4001" {
		t.Errorf("VRFRD = %v", c.VRFRD(a))
	}
	again := *c
	again.ApplyDefaults()
	if again.VRFs[0].RouterMAC != a.RouterMAC {
		t.Error("not idempotent")
	}
}

func TestVRFRejects(t *testing.T) {
	tests := []struct {
		name   string
		base   func() *Config
		mutate func(c *Config)
		path   string
		want   string
	}{
		{"name missing", vrfLeaf, func(c *Config) { c.VRFs[0].Name = "" }, "vrfs[0].name", "missing"},
		{"name too long", vrfLeaf, func(c *Config) { c.VRFs[0].Name = "tenant-with-a-long-name" }, "vrfs[0].name", "too long"},
		{"name twice", twoVRFs, func(c *Config) { c.VRFs[1].Name = "tenant-a"; c.VRFs[1].Namespace = "nsb" }, "vrfs[1].name", "vrfs[0]"},
		{"l3vni missing", vrfLeaf, func(c *Config) { c.VRFs[0].L3VNI = 0 }, "vrfs[0].l3vni", "missing"},
		{"l3vni too big", vrfLeaf, func(c *Config) { c.VRFs[0].L3VNI = 1 << 24 }, "vrfs[0].l3vni", "24 bits"},
		{"l3vni is an l2vni", vrfLeaf, func(c *Config) { c.VRFs[0].L3VNI = 200 }, "vrfs[0].l3vni", "l2vnis[1].vni"},
		{"l3vni twice", twoVRFs, func(c *Config) { c.VRFs[1].L3VNI = 4001 }, "vrfs[1].l3vni", "vrfs[0]"},
		{"backend missing", vrfLeaf, func(c *Config) { c.VRFs[0].Backend = "" }, "vrfs[0].backend", "missing"},
		{"backend unknown", vrfLeaf, func(c *Config) { c.VRFs[0].Backend = "vlan" }, "vrfs[0].backend", "unknown backend"},
		{"default backend twice", twoVRFs, func(c *Config) {
			c.VRFs[0].Backend, c.VRFs[1].Backend = BackendDefault, BackendDefault
			c.VRFs[1].L2VNIs[0].GatewayIPs = []netip.Prefix{pfx("10.3.0.1/24")}
		}, "vrfs[1].backend", "main routing table"},
		{"namespace on vrf backend", vrfLeaf, func(c *Config) { c.VRFs[0].Backend = BackendVRF; c.VRFs[0].Namespace = "x" }, "vrfs[0].namespace", "only for backend netns"},
		{"namespace twice", twoVRFs, func(c *Config) { c.VRFs[1].Namespace = "tenant-a" }, "vrfs[1].namespace", "vrfs[0]"},
		{"namespace slash", vrfLeaf, func(c *Config) { c.VRFs[0].Namespace = "a/b" }, "vrfs[0].namespace", "invalid character"},
		{"table on netns", vrfLeaf, func(c *Config) { c.VRFs[0].Table = 7 }, "vrfs[0].table", "only for backend vrf"},
		{"table main", vrfLeaf, func(c *Config) { c.VRFs[0].Backend = BackendVRF; c.VRFs[0].Table = 254 }, "vrfs[0].table", "reserved"},
		{"table defaults to a reserved one", vrfLeaf, func(c *Config) { c.VRFs[0].Backend = BackendVRF; c.VRFs[0].L3VNI = 255 }, "vrfs[0].table", "default value is a reserved"},
		{"table twice", twoVRFs, func(c *Config) {
			c.VRFs[0].Backend, c.VRFs[1].Backend = BackendVRF, BackendVRF
			c.VRFs[0].Table, c.VRFs[1].Table = 9, 9
		}, "vrfs[1].table", "vrfs[0]"},
		{"vrf device name taken", vrfLeaf, func(c *Config) { c.VRFs[0].Backend = BackendVRF; c.VRFs[0].Name = "br100" }, "vrfs[0].name", "l2vnis[0].bridge"},
		{"bridge taken", vrfLeaf, func(c *Config) { c.VRFs[0].Bridge = "br200" }, "vrfs[0].bridge", "l2vnis[1].bridge"},
		{"rd clash", vrfLeaf, func(c *Config) { c.VRFs[0].RD = "10.0.0.1:100" }, "vrfs[0].rd", "l2vnis[0].rd"},
		{"import rt also an l2vni's", vrfLeaf, func(c *Config) {
			c.L2VNIs[0].ImportRTs = []string{"65000:9"}
			c.VRFs[0].ImportRTs = []string{"65000:9"}
		}, "vrfs[0].import-rts[0]", "l2vnis[0].import-rts[0]"},
		{"import rt shadows an l2vni's auto import", vrfLeaf, func(c *Config) { c.VRFs[0].ImportRTs = []string{"65001:200"} }, "vrfs[0].import-rts[0]", "auto import of l2vnis[1]"},
		{"export rt garbage", vrfLeaf, func(c *Config) { c.VRFs[0].ExportRTs = []string{"x"} }, "vrfs[0].export-rts[0]", "route target"},
		{"udp-port", vrfLeaf, func(c *Config) { c.VRFs[0].UDPPort = 70000 }, "vrfs[0].udp-port", "1-65535"},
		{"router mac garbage", vrfLeaf, func(c *Config) { c.VRFs[0].RouterMAC = "02:00" }, "vrfs[0].router-mac", "not a MAC"},
		{"router mac multicast", vrfLeaf, func(c *Config) { c.VRFs[0].RouterMAC = "01:00:5e:00:00:01" }, "vrfs[0].router-mac", "not a unicast MAC"},
		{"gateway mac multicast", vrfLeaf, func(c *Config) { c.VRFs[0].GatewayMAC = "33:33:00:00:00:01" }, "vrfs[0].gateway-mac", "not a unicast MAC"},
		{"gateway mac zero", vrfLeaf, func(c *Config) { c.VRFs[0].L2VNIs[0].GatewayMAC = "00:00:00:00:00:00" }, "vrfs[0].l2vnis[0].gateway-mac", "not a unicast MAC"},
		{"gateway mac is router mac", vrfLeaf, func(c *Config) { c.VRFs[0].GatewayMAC = "02:ee:0a:00:00:01" }, "vrfs[0].gateway-mac", "equals the VRF's router MAC"},
		{"gateway mac missing", vrfLeaf, func(c *Config) { c.VRFs[0].GatewayMAC = ""; c.VRFs[0].L2VNIs[1].GatewayMAC = "00:00:5e:00:01:01" }, "vrfs[0].l2vnis[0].gateway-mac", "missing"},
		{"member not an l2vni", vrfLeaf, func(c *Config) { c.VRFs[0].L2VNIs[1].VNI = 999 }, "vrfs[0].l2vnis[1].vni", "not in l2vnis"},
		{"member missing", vrfLeaf, func(c *Config) { c.VRFs[0].L2VNIs[1].VNI = 0 }, "vrfs[0].l2vnis[1].vni", "missing"},
		{"member twice in a vrf", vrfLeaf, func(c *Config) { c.VRFs[0].L2VNIs[1].VNI = 100 }, "vrfs[0].l2vnis[1].vni", "vrfs[0].l2vnis[0]"},
		{"l2vni in two vrfs", twoVRFs, func(c *Config) { c.VRFs[1].L2VNIs[0].VNI = 200 }, "vrfs[1].l2vnis[0].vni", "one VRF"},
		{"gateway ips missing", vrfLeaf, func(c *Config) { c.VRFs[0].L2VNIs[1].GatewayIPs = nil }, "vrfs[0].l2vnis[1].gateway-ips", "missing"},
		{"gateway is network address", vrfLeaf, func(c *Config) { c.VRFs[0].L2VNIs[1].GatewayIPs[0] = pfx("10.2.0.0/24") }, "vrfs[0].l2vnis[1].gateway-ips[0]", "such as 10.2.0.1"},
		{"gateway is broadcast", vrfLeaf, func(c *Config) { c.VRFs[0].L2VNIs[1].GatewayIPs[0] = pfx("10.2.0.255/24") }, "vrfs[0].l2vnis[1].gateway-ips[0]", "broadcast"},
		{"gateway host prefix", vrfLeaf, func(c *Config) { c.VRFs[0].L2VNIs[1].GatewayIPs[0] = pfx("10.2.0.1/32") }, "vrfs[0].l2vnis[1].gateway-ips[0]", "host prefix"},
		{"gateway link-local", vrfLeaf, func(c *Config) { c.VRFs[0].L2VNIs[1].GatewayIPs[0] = pfx("fe80::1/64") }, "vrfs[0].l2vnis[1].gateway-ips[0]", "routable"},
		{"gateway subnets overlap", vrfLeaf, func(c *Config) { c.VRFs[0].L2VNIs[1].GatewayIPs[0] = pfx("10.1.0.129/25") }, "vrfs[0].l2vnis[1].gateway-ips[0]", "overlaps vrfs[0].l2vnis[0].gateway-ips[0]"},
		{"gateway subnets overlap in a member", vrfLeaf, func(c *Config) {
			c.VRFs[0].L2VNIs[1].GatewayIPs = append(c.VRFs[0].L2VNIs[1].GatewayIPs, pfx("10.2.0.2/16"))
		}, "vrfs[0].l2vnis[1].gateway-ips[1]", "overlaps"},
		{"default backend gateway holds the VTEP", vrfLeaf, func(c *Config) {
			c.VRFs[0].Backend = BackendDefault
			c.VRFs[0].L2VNIs[1].GatewayIPs[0] = pfx("10.0.0.2/24")
		}, "vrfs[0].l2vnis[1].gateway-ips[0]", "vtep-ip"},
		{"prefix host bits", vrfLeaf, func(c *Config) { c.VRFs[0].AdvertisePrefixes[0] = pfx("10.99.1.0/16") }, "vrfs[0].advertise-prefixes[0]", "host bits"},
		{"prefix default", vrfLeaf, func(c *Config) { c.VRFs[0].AdvertisePrefixes[0] = pfx("0.0.0.0/0") }, "vrfs[0].advertise-prefixes[0]", "advertise-default-route"},
		{"prefix twice", vrfLeaf, func(c *Config) {
			c.VRFs[0].AdvertisePrefixes = append(c.VRFs[0].AdvertisePrefixes, pfx("10.99.0.0/16"))
		}, "vrfs[0].advertise-prefixes[1]", "twice"},
		{"rr with vrfs", func() *Config { c := validRR(); c.VRFs = vrfLeaf().VRFs; return c }, func(c *Config) {}, "vrfs", "installs nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.base()
			tt.mutate(c)
			wantOneProblem(t, c, tt.path, tt.want)
		})
	}
}

func TestVRFWarnings(t *testing.T) {
	if w := validLeaf().Warnings(); w != nil {
		t.Errorf("a config without VRFs warns: %v", w)
	}
	if w := vrfLeaf().Warnings(); w != nil {
		t.Errorf("a clean VRF config warns: %v", w)
	}
	c := twoVRFs() // l2vnis[2] routed by tenant-b: no warning
	c.L2VNIs = append(c.L2VNIs, L2VNI{VNI: 400})
	c.VRFs[0].L2VNIs[1].GatewayMAC = "00:00:5e:00:01:02"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	w := c.Warnings()
	if len(w) != 2 {
		t.Fatalf("want 2 warnings, got %v", w)
	}
	if w[0].Path != "vrfs[0].l2vnis[1].gateway-mac" || !strings.Contains(w[0].Reason, "differs from vrfs[0].l2vnis[0].gateway-mac") {
		t.Errorf("gateway MAC warning: %v", w[0])
	}
	if w[1].Path != "l2vnis[3]" || !strings.Contains(w[1].Reason, "neigh_suppress") {
		t.Errorf("neigh_suppress warning: %v", w[1])
	}
}

// The vrfs section is parsed as strictly as the rest: unknown keys and bad
// values name their key path and line.
func TestParseVRFStrict(t *testing.T) {
	text := minimal + `l2vnis:
  - vni: 100
vrfs:
  - name: t1
    l3vni: 4001
    backend: netns
    gateway-mac: 00:00:5e:00:01:01
    l2vni: []
    l2vnis:
      - vni: 100
        gateway-ips: [10.1.0.1/24, 10.2.0.1]
        gatway-mac: x
    advertise-prefixes: [nope]
`
	_, err := loadText(t, text)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`line 13: vrfs[0].l2vni: unknown key "l2vni" (did you mean "l2vnis"?)`,
		`line 16: vrfs[0].l2vnis[0].gateway-ips[1]: "10.2.0.1": not a prefix`,
		`line 17: vrfs[0].l2vnis[0].gatway-mac: unknown key "gatway-mac" (did you mean "gateway-mac"?)`,
		`line 18: vrfs[0].advertise-prefixes[0]: "nope": not a prefix`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// An explicit zero stays, for Validate to refuse.
	_, err = loadText(t, minimal+"l2vnis:\n  - vni: 100\nvrfs:\n  - name: t1\n    l3vni: 4001\n    backend: vrf\n    table: 0\n    udp-port: 0\n    gateway-mac: 00:00:5e:00:01:01\n    l2vnis:\n      - vni: 100\n        gateway-ips: [10.1.0.1/24]\n")
	for _, want := range []string{"line 12: vrfs[0].table: 0: is a reserved table", "line 13: vrfs[0].udp-port: 0: out of range"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestVRFAdvertisedPrefixes(t *testing.T) {
	v := vrfLeaf().VRFs[0]
	v.AdvertiseDefaultRoute = true
	v.AdvertisePrefixes = append(v.AdvertisePrefixes, pfx("10.1.0.0/24")) // also a gateway subnet
	var got []string
	for _, p := range VRFAdvertisedPrefixes(v) {
		got = append(got, p.String())
	}
	want := "0.0.0.0/0 10.1.0.0/24 10.2.0.0/24 10.99.0.0/16 ::/0 2001:db8:1::/64"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
}

// borderLeaf is vrfLeaf as a border leaf: an uplink with an IPv4 and an
// IPv6 address, default routes through it.
func borderLeaf() *Config {
	c := vrfLeaf()
	c.VRFs[0].AdvertiseDefaultRoute = true
	c.VRFs[0].Uplinks = []Uplink{{Interface: "eth5", Addresses: []netip.Prefix{pfx("192.0.2.1/30"), pfx("2001:db8:ff::1/126")}}}
	c.VRFs[0].Routes = []StaticRoute{
		{Prefix: pfx("0.0.0.0/0"), Via: addr("192.0.2.2")},
		{Prefix: pfx("::/0"), Via: addr("2001:db8:ff::2")},
	}
	return c
}

func TestVRFUplinks(t *testing.T) {
	if err := borderLeaf().Validate(); err != nil {
		t.Fatalf("border leaf: %v", err)
	}
	c := borderLeaf()
	c.VRFs[0].Backend = BackendVRF
	if err := c.Validate(); err != nil {
		t.Errorf("border leaf on backend vrf: %v", err)
	}
	// On backend default an uplink and routes that keep clear of the
	// VTEP are fine, and so are default routes (the last resort there).
	c = borderLeaf()
	c.VRFs[0].Backend = BackendDefault
	c.VRFs[0].Routes = append(c.VRFs[0].Routes, StaticRoute{Prefix: pfx("198.51.100.0/24"), Via: addr("192.0.2.2")})
	if err := c.Validate(); err != nil {
		t.Errorf("border leaf on backend default: %v", err)
	}
	var got []string
	for _, p := range VRFAdvertisedPrefixes(borderLeaf().VRFs[0]) {
		got = append(got, p.String())
	}
	if want := "0.0.0.0/0 10.1.0.0/24 10.2.0.0/24 10.99.0.0/16 192.0.2.0/30 ::/0 2001:db8:1::/64 2001:db8:ff::/126"; strings.Join(got, " ") != want {
		t.Errorf("advertised %v, want %s (the uplink's subnets are connected)", got, want)
	}

	tests := []struct {
		name   string
		mutate func(c *Config)
		path   string
		want   string
	}{
		{"interface missing", func(c *Config) { c.VRFs[0].Uplinks[0].Interface = "" }, "vrfs[0].uplinks[0].interface", "missing"},
		{"interface bad name", func(c *Config) { c.VRFs[0].Uplinks[0].Interface = "a/b" }, "vrfs[0].uplinks[0].interface", "invalid character"},
		{"interface is an access port", func(c *Config) { c.VRFs[0].Uplinks[0].Interface = "eth1" }, "vrfs[0].uplinks[0].interface", "l2vnis[0].access-interfaces[0]"},
		{"interface is a bridge", func(c *Config) { c.VRFs[0].Uplinks[0].Interface = "br100" }, "vrfs[0].uplinks[0].interface", "l2vnis[0].bridge"},
		{"interface twice", func(c *Config) {
			c.VRFs[0].Uplinks = append(c.VRFs[0].Uplinks, Uplink{Interface: "eth5", Addresses: []netip.Prefix{pfx("192.0.2.5/30")}})
		}, "vrfs[0].uplinks[1].interface", "vrfs[0].uplinks[0].interface"},
		{"addresses missing", func(c *Config) { c.VRFs[0].Uplinks[0].Addresses = nil; c.VRFs[0].Routes = nil }, "vrfs[0].uplinks[0].addresses", "missing"},
		{"address host prefix", func(c *Config) {
			c.VRFs[0].Uplinks[0].Addresses[1] = pfx("2001:db8:ff::1/128")
			c.VRFs[0].Routes = c.VRFs[0].Routes[:1]
		}, "vrfs[0].uplinks[0].addresses[1]", "host prefix"},
		{"address network", func(c *Config) {
			c.VRFs[0].Uplinks[0].Addresses[0] = pfx("192.0.2.0/30")
			c.VRFs[0].Routes = c.VRFs[0].Routes[1:]
		}, "vrfs[0].uplinks[0].addresses[0]", "network or broadcast"},
		{"address link-local", func(c *Config) {
			c.VRFs[0].Uplinks[0].Addresses[1] = pfx("fe80::1/64")
			c.VRFs[0].Routes = c.VRFs[0].Routes[:1]
		}, "vrfs[0].uplinks[0].addresses[1]", "routable"},
		{"address overlaps a gateway subnet", func(c *Config) {
			c.VRFs[0].Uplinks[0].Addresses[0] = pfx("10.1.0.201/30")
			c.VRFs[0].Routes = c.VRFs[0].Routes[1:]
		}, "vrfs[0].uplinks[0].addresses[0]", "overlaps vrfs[0].l2vnis[0].gateway-ips[0]"},
		{"addresses overlap", func(c *Config) {
			c.VRFs[0].Uplinks = append(c.VRFs[0].Uplinks, Uplink{Interface: "eth6", Addresses: []netip.Prefix{pfx("192.0.2.2/30")}})
		}, "vrfs[0].uplinks[1].addresses[0]", "overlaps vrfs[0].uplinks[0].addresses[0]"},
		{"default backend address holds the VTEP", func(c *Config) {
			c.VRFs[0].Backend = BackendDefault
			c.VRFs[0].Uplinks[0].Addresses[1] = pfx("10.0.0.2/24")
			c.VRFs[0].Routes = nil
		}, "vrfs[0].uplinks[0].addresses[1]", "vtep-ip"},
		{"default backend route covers the VTEP", func(c *Config) {
			c.VRFs[0].Backend = BackendDefault
			c.VRFs[0].Routes[0].Prefix = pfx("10.0.0.0/8")
		}, "vrfs[0].routes[0].prefix", "holds vtep-ip"},
		{"route prefix missing", func(c *Config) { c.VRFs[0].Routes[0].Prefix = netip.Prefix{} }, "vrfs[0].routes[0].prefix", "missing"},
		{"route host bits", func(c *Config) { c.VRFs[0].Routes[0].Prefix = pfx("198.51.100.1/24") }, "vrfs[0].routes[0].prefix", "write 198.51.100.0/24"},
		{"route twice", func(c *Config) { c.VRFs[0].Routes[1] = StaticRoute{Prefix: pfx("0.0.0.0/0"), Via: addr("192.0.2.2")} }, "vrfs[0].routes[1].prefix", "twice"},
		{"route to a connected subnet", func(c *Config) { c.VRFs[0].Routes[0].Prefix = pfx("10.2.0.0/24") }, "vrfs[0].routes[0].prefix", "connected here (vrfs[0].l2vnis[1].gateway-ips[0])"},
		{"route via missing", func(c *Config) { c.VRFs[0].Routes[0].Via = netip.Addr{} }, "vrfs[0].routes[0].via", "missing"},
		{"route via other family", func(c *Config) { c.VRFs[0].Routes[0].Via = addr("2001:db8:ff::2") }, "vrfs[0].routes[0].via", "address family"},
		{"route via off the uplinks", func(c *Config) { c.VRFs[0].Routes[0].Via = addr("10.1.0.9") }, "vrfs[0].routes[0].via", "no uplink's subnet"},
		{"route via own address", func(c *Config) { c.VRFs[0].Routes[1].Via = addr("2001:db8:ff::1") }, "vrfs[0].routes[1].via", "own address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := borderLeaf()
			tt.mutate(c)
			wantOneProblem(t, c, tt.path, tt.want)
		})
	}
}

func TestParseVRFUplinks(t *testing.T) {
	text := minimal + `l2vnis:
  - vni: 100
vrfs:
  - name: t1
    l3vni: 4001
    backend: netns
    gateway-mac: 00:00:5e:00:01:01
    l2vnis:
      - vni: 100
        gateway-ips: [10.1.0.1/24]
    advertise-default-route: true
    uplinks:
      - interface: eth5
        addresses: [192.0.2.1/30, "2001:db8:ff::1/126"]
    routes:
      - {prefix: 0.0.0.0/0, via: 192.0.2.2}
      - {prefix: "::/0", via: "2001:db8:ff::2"}
`
	c, err := loadText(t, text)
	if err != nil {
		t.Fatal(err)
	}
	v := c.VRFs[0]
	if len(v.Uplinks) != 1 || v.Uplinks[0].Interface != "eth5" || len(v.Uplinks[0].Addresses) != 2 ||
		len(v.Routes) != 2 || v.Routes[1].Via != addr("2001:db8:ff::2") || v.Routes[1].Prefix != pfx("::/0") {
		t.Errorf("parsed %+v %+v", v.Uplinks, v.Routes)
	}
	_, err = loadText(t, strings.Replace(strings.Replace(text, "interface: eth5", "interfce: eth5", 1), "via: 192.0.2.2", "via: 192.0.2.2/30", 1))
	for _, want := range []string{`vrfs[0].uplinks[0].interfce: unknown key "interfce" (did you mean "interface"?)`, `vrfs[0].routes[0].via: "192.0.2.2/30"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
