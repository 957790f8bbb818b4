package configs

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// underlayLeaf is a leaf of an eBGP fabric with the BGP underlay on its
// two links.
func underlayLeaf() *Config {
	return &Config{
		RouterID: addr("10.0.0.1"),
		ASN:      65101,
		Underlay: Underlay{Enabled: true},
		Neighbors: []Neighbor{
			{Address: addr("10.1.1.0"), ASN: 65000},
			{Address: addr("10.2.1.0"), ASN: 65000, AddressFamilies: []string{FamilyIPv4Unicast}},
		},
		L2VNIs: []L2VNI{{VNI: 100, AccessInterfaces: []string{"eth3"}}},
	}
}

func TestUnderlayDefaults(t *testing.T) {
	c := underlayLeaf()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	if want := []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}; !slices.Equal(c.Underlay.Advertise, want) {
		t.Errorf("advertise = %v, want %v", c.Underlay.Advertise, want)
	}
	if got := c.Neighbors[0].AddressFamilies; !slices.Equal(got, []string{FamilyL2VPNEVPN, FamilyIPv4Unicast}) {
		t.Errorf("default families with the underlay = %v", got)
	}
	if got := c.Neighbors[1].AddressFamilies; !slices.Equal(got, []string{FamilyIPv4Unicast}) {
		t.Errorf("explicit families changed to %v", got)
	}
	rr := validRR()
	rr.Underlay.Enabled = true
	rr.Neighbors = []Neighbor{{Address: addr("10.1.1.1"), ASN: 65101}}
	if err := rr.Validate(); err != nil {
		t.Fatal(err)
	}
	rr.ApplyDefaults()
	if want := []netip.Prefix{netip.MustParsePrefix("10.0.0.254/32")}; !slices.Equal(rr.Underlay.Advertise, want) {
		t.Errorf("route reflector advertise = %v, want %v", rr.Underlay.Advertise, want)
	}
	plain := validLeaf()
	plain.ApplyDefaults()
	if got := plain.Neighbors[0].AddressFamilies; !slices.Equal(got, []string{FamilyL2VPNEVPN}) {
		t.Errorf("default families without the underlay = %v", got)
	}
}

func TestUnderlayRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		path   string
		want   string
	}{
		{"unknown family", func(c *Config) { c.Neighbors[1].AddressFamilies = []string{"ipv6-unicast"} }, "neighbors[1].address-families[0]", "unknown address family"},
		{"family twice", func(c *Config) { c.Neighbors[1].AddressFamilies = []string{"ipv4-unicast", "ipv4-unicast"} }, "neighbors[1].address-families[1]", "twice"},
		{"ibgp underlay", func(c *Config) { c.Neighbors[1].ASN = 65101 }, "neighbors[1].address-families[0]", "iBGP"},
		{"multihop underlay", func(c *Config) { c.Neighbors[1].EBGPMultihop = 2 }, "neighbors[1].address-families[0]", "ebgp-multihop"},
		{"no underlay peer", func(c *Config) {
			for i := range c.Neighbors {
				c.Neighbors[i].AddressFamilies = []string{FamilyL2VPNEVPN}
			}
		}, "underlay.enabled", "no neighbor carries ipv4-unicast"},
		{"ipv4-unicast without underlay", func(c *Config) {
			c.Underlay.Enabled = false
			c.Neighbors = c.Neighbors[1:]
		}, "neighbors[0].address-families[0]", "underlay.enabled"},
		{"advertise without underlay", func(c *Config) {
			c.Underlay = Underlay{Advertise: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}}
			c.Neighbors = c.Neighbors[:1]
		}, "underlay.advertise[0]", "without underlay.enabled"},
		{"advertise IPv6", func(c *Config) { c.Underlay.Advertise = []netip.Prefix{netip.MustParsePrefix("2001:db8::1/128")} }, "underlay.advertise[0]", "not IPv4"},
		{"advertise host bits", func(c *Config) { c.Underlay.Advertise = []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")} }, "underlay.advertise[0]", "10.0.0.0/24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := underlayLeaf()
			tt.mutate(c)
			wantOneProblem(t, c, tt.path, tt.want)
		})
	}
}

// The YAML keys parse strictly, like the rest of the file.
func TestUnderlayParse(t *testing.T) {
	const y = `
router-id: 10.0.0.1
asn: 65101
underlay:
  enabled: true
  advertise: [10.0.0.1/32]
neighbors:
  - address: 10.1.1.0
    asn: 65000
    address-families: [l2vpn-evpn, ipv4-unicast]
l2vnis:
  - vni: 100
`
	c, err := Parse([]byte(y), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Underlay.Enabled || !c.Neighbors[0].HasFamily(FamilyIPv4Unicast) {
		t.Errorf("parsed %+v", c)
	}
	if _, err := Parse([]byte(strings.Replace(y, "advertise:", "advertize:", 1)), "test.yaml"); err == nil {
		t.Error("a misspelt underlay key was accepted")
	}
}

func TestPeerOnLink(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.1.0/31": "10.1.1.1", "10.1.1.1/31": "10.1.1.0",
		"10.1.1.1/30": "10.1.1.2", "10.1.1.2/30": "10.1.1.1",
		"10.1.1.0/30": "", "10.1.1.3/30": "", "10.1.1.1/24": "", "2001:db8::1/127": "",
	} {
		got, ok := PeerOnLink(netip.MustParsePrefix(in))
		if (want == "") == ok || (ok && got.String() != want) {
			t.Errorf("PeerOnLink(%s) = %v, %v; want %q", in, got, ok, want)
		}
	}
}

func TestNeighborByInterface(t *testing.T) {
	c := underlayLeaf()
	c.Neighbors[0] = Neighbor{Interface: "eth1", ASN: 65000}
	c.Neighbors[1] = Neighbor{Interface: "eth2", ASN: 65000}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		mutate func(c *Config)
		path   string
		want   string
	}{
		"both":      {func(c *Config) { c.Neighbors[0].Address = addr("10.1.1.0") }, "neighbors[0].interface", "give one of them"},
		"same link": {func(c *Config) { c.Neighbors[1].Interface = "eth1" }, "neighbors[1].interface", "same link"},
		"bad name":  {func(c *Config) { c.Neighbors[1].Interface = "eth/1" }, "neighbors[1].interface", "invalid character"},
		"multihop": {func(c *Config) {
			c.Neighbors[1].EBGPMultihop = 2
			c.Neighbors[1].AddressFamilies = []string{FamilyL2VPNEVPN}
		}, "neighbors[1].ebgp-multihop", "directly connected"},
	} {
		t.Run(name, func(t *testing.T) {
			c := underlayLeaf()
			c.Neighbors[0] = Neighbor{Interface: "eth1", ASN: 65000}
			c.Neighbors[1] = Neighbor{Interface: "eth2", ASN: 65000}
			tt.mutate(c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			p := findProblem(t, problemsOf(t, err), tt.path)
			if !strings.Contains(p.Error(), tt.want) {
				t.Errorf("problem %q does not mention %q", p.Error(), tt.want)
			}
		})
	}
}
