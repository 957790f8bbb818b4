package vtep

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/evpnd/evpnd/speaker/evpn"
)

var (
	rmac  = evpn.MAC{0x02, 0xee, 10, 0, 0, 1}
	gwmac = evpn.MAC{0x00, 0x00, 0x5e, 0x00, 0x01, 0x01}
)

func tenantVRF(backend Backend) VRF {
	v := VRF{
		Name: "tenant-a", Backend: backend, L3: vniSpec(4001), RouterMAC: rmac,
		Members: []SVI{{L2: vniSpec(100, "acc0"), GatewayMAC: gwmac,
			GatewayIPs: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24"), netip.MustParsePrefix("2001:db8:1::1/64")}}},
	}
	switch backend {
	case BackendNetns:
		v.Namespace = "tenant-a"
	case BackendVRF:
		v.Table = 4001
	}
	return v
}

func planStrings(t *testing.T, p VRFPlan, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, a := range p.Actions {
		b.WriteString(a.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func diffLines(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
}

// underlayWithPort is an underlay namespace holding only the access port.
func underlayWithPort() NSObserved {
	return NSObserved{Exists: true, Links: []LinkInfo{{Index: 12, Name: "acc0", Kind: "veth", MTU: 1500}}}
}

func TestPlanVRFDefault(t *testing.T) {
	p, err := PlanVRF(tenantVRF(BackendDefault), underlayWithPort(), NSObserved{})
	diffLines(t, planStrings(t, p, err), `ip link add br4001 type bridge
ip link add vxlan4001 type vxlan id 4001 local 10.0.0.1 dstport 4789 nolearning; ip link set vxlan4001 addrgenmode none
ip link set vxlan4001 master br4001
bridge link set dev vxlan4001 learning off neigh_suppress on
ip link set br4001 address 02:ee:0a:00:00:01
ip link set vxlan4001 up
ip link set br4001 up
ip link add br100 type bridge
ip link add vxlan100 type vxlan id 100 local 10.0.0.1 dstport 4789 nolearning; ip link set vxlan100 addrgenmode none
ip link set vxlan100 master br100
bridge link set dev vxlan100 learning off neigh_suppress on
ip link set acc0 master br100
ip link set br100 address 00:00:5e:00:01:01
ip addr add 10.1.0.1/24 dev br100
ip addr add 2001:db8:1::1/64 dev br100 nodad
ip link set vxlan100 up
ip link set acc0 up
ip link set br100 up
`)
}

func TestPlanVRFNetns(t *testing.T) {
	p, err := PlanVRF(tenantVRF(BackendNetns), underlayWithPort(), NSObserved{})
	diffLines(t, planStrings(t, p, err), `ip netns add tenant-a
ip link set acc0 netns tenant-a
ip -n tenant-a link add br4001 type bridge
ip link add vxlan4001 type vxlan id 4001 local 10.0.0.1 dstport 4789 nolearning; ip link set vxlan4001 addrgenmode none
ip link set vxlan4001 netns tenant-a
ip -n tenant-a link set vxlan4001 master br4001
bridge -n tenant-a link set dev vxlan4001 learning off neigh_suppress on
ip -n tenant-a link set br4001 address 02:ee:0a:00:00:01
ip -n tenant-a link set vxlan4001 up
ip -n tenant-a link set br4001 up
ip -n tenant-a link add br100 type bridge
ip link add vxlan100 type vxlan id 100 local 10.0.0.1 dstport 4789 nolearning; ip link set vxlan100 addrgenmode none
ip link set vxlan100 netns tenant-a
ip -n tenant-a link set vxlan100 master br100
bridge -n tenant-a link set dev vxlan100 learning off neigh_suppress on
ip -n tenant-a link set acc0 master br100
ip -n tenant-a link set br100 address 00:00:5e:00:01:01
ip -n tenant-a addr add 10.1.0.1/24 dev br100
ip -n tenant-a addr add 2001:db8:1::1/64 dev br100 nodad
ip -n tenant-a link set vxlan100 up
ip -n tenant-a link set acc0 up
ip -n tenant-a link set br100 up
`)
	// The kernel after that plan: nothing more to do.
	tenant := NSObserved{Exists: true, Links: []LinkInfo{
		{Index: 2, Name: "br4001", Kind: "bridge", Up: true, MAC: rmac.String(), Addrs: []netip.Prefix{netip.MustParsePrefix("fe80::ee:aff:fe00:1/64")}},
		{Index: 3, Name: "vxlan4001", Kind: "vxlan", Up: true, MasterIndex: 2, VXLAN: &VXLANInfo{VNI: 4001, Local: netip.MustParseAddr("10.0.0.1"), Port: 4789}, Port: &PortFlags{NeighSuppress: true}},
		{Index: 4, Name: "br100", Kind: "bridge", Up: true, MAC: gwmac.String(), Addrs: []netip.Prefix{
			netip.MustParsePrefix("10.1.0.1/24"), netip.MustParsePrefix("2001:db8:1::1/64"), netip.MustParsePrefix("fe80::200:5eff:fe00:101/64")}},
		{Index: 5, Name: "vxlan100", Kind: "vxlan", Up: true, MasterIndex: 4, VXLAN: &VXLANInfo{VNI: 100, Local: netip.MustParseAddr("10.0.0.1"), Port: 4789}, Port: &PortFlags{NeighSuppress: true}},
		{Index: 12, Name: "acc0", Kind: "veth", Up: true, MasterIndex: 4},
	}}
	p, err = PlanVRF(tenantVRF(BackendNetns), NSObserved{Exists: true}, tenant)
	diffLines(t, planStrings(t, p, err), "")
	if len(p.Adopted) != 4 {
		t.Errorf("adopted %v", p.Adopted)
	}

	// Drift: the gateway MAC and an address gone, IPv6 turned off, the
	// VXLAN port's learning on.
	tenant.Links[2].MAC = "02:00:00:00:00:99"
	tenant.Links[2].Addrs = tenant.Links[2].Addrs[:1]
	tenant.Links[3].Port = &PortFlags{Learning: true, NeighSuppress: true}
	p, err = PlanVRF(tenantVRF(BackendNetns), NSObserved{Exists: true}, tenant)
	diffLines(t, planStrings(t, p, err), `bridge -n tenant-a link set dev vxlan100 learning off neigh_suppress on
ip -n tenant-a link set br100 address 00:00:5e:00:01:01
ip -n tenant-a link set br100 addrgenmode eui64
ip -n tenant-a addr add 2001:db8:1::1/64 dev br100 nodad
`)
	if a := p.Actions[1]; a.PrevMAC != "02:00:00:00:00:99" || a.Created {
		t.Errorf("undo data of the MAC change: %+v", a)
	}
}

// The VRF backend goes through the same planner: a VRF device with its
// table, the SVIs enslaved to it before their addresses are added.
func TestPlanVRFDevice(t *testing.T) {
	p, err := PlanVRF(tenantVRF(BackendVRF), underlayWithPort(), NSObserved{})
	diffLines(t, planStrings(t, p, err), `ip link add tenant-a type vrf table 4001
ip link add br4001 type bridge
ip link add vxlan4001 type vxlan id 4001 local 10.0.0.1 dstport 4789 nolearning; ip link set vxlan4001 addrgenmode none
ip link set vxlan4001 master br4001
bridge link set dev vxlan4001 learning off neigh_suppress on
ip link set br4001 master tenant-a
ip link set br4001 address 02:ee:0a:00:00:01
ip link set vxlan4001 up
ip link set br4001 up
ip link add br100 type bridge
ip link add vxlan100 type vxlan id 100 local 10.0.0.1 dstport 4789 nolearning; ip link set vxlan100 addrgenmode none
ip link set vxlan100 master br100
bridge link set dev vxlan100 learning off neigh_suppress on
ip link set acc0 master br100
ip link set br100 master tenant-a
ip link set br100 address 00:00:5e:00:01:01
ip addr add 10.1.0.1/24 dev br100
ip addr add 2001:db8:1::1/64 dev br100 nodad
ip link set vxlan100 up
ip link set acc0 up
ip link set br100 up
ip link set tenant-a up
`)

	// An adopted bridge outside the VRF is enslaved to it; a VRF device
	// with another table or a device of another kind is a conflict.
	under := NSObserved{Exists: true, Links: []LinkInfo{
		{Index: 1, Name: "tenant-a", Kind: "vrf", Up: true, VRFTable: 4001},
		{Index: 2, Name: "br4001", Kind: "bridge", Up: true, MAC: rmac.String(), Addrs: []netip.Prefix{netip.MustParsePrefix("fe80::1/64")}},
		{Index: 3, Name: "vxlan4001", Kind: "vxlan", Up: true, MasterIndex: 2, VXLAN: &VXLANInfo{VNI: 4001, Local: netip.MustParseAddr("10.0.0.1"), Port: 4789}, Port: &PortFlags{NeighSuppress: true}},
	}}
	v := tenantVRF(BackendVRF)
	v.Members = nil
	p, err = PlanVRF(v, under, NSObserved{})
	diffLines(t, planStrings(t, p, err), "ip link set br4001 master tenant-a\n")
	under.Links[1].MasterIndex = 1
	p, err = PlanVRF(v, under, NSObserved{})
	diffLines(t, planStrings(t, p, err), "")

	under.Links[0].VRFTable = 7
	if _, err := PlanVRF(v, under, NSObserved{}); len(conflicts(err)) != 1 || !strings.Contains(conflicts(err)[0], "tenant-a/table: want 4001, found 7") {
		t.Errorf("table conflict: %v", err)
	}
	under.Links[0].Kind = "bridge"
	if _, err := PlanVRF(v, under, NSObserved{}); len(conflicts(err)) != 1 || !strings.Contains(conflicts(err)[0], "tenant-a/kind") {
		t.Errorf("kind conflict: %v", err)
	}
}

func TestPlanVRFConflictsAndInvalid(t *testing.T) {
	// netns: the underlay already holds a VXLAN socket for the VNI under
	// another name.
	under := NSObserved{Exists: true, Links: []LinkInfo{
		{Index: 7, Name: "vx-old", Kind: "vxlan", VXLAN: &VXLANInfo{VNI: 100, Local: netip.MustParseAddr("10.0.0.1"), Port: 4789}},
		{Index: 12, Name: "acc0", Kind: "veth"},
	}}
	_, err := PlanVRF(tenantVRF(BackendNetns), under, NSObserved{Exists: true})
	if c := conflicts(err); len(c) != 1 || !strings.Contains(c[0], "vx-old/vni") {
		t.Errorf("conflicts %v (%v)", c, err)
	}
	for name, mut := range map[string]func(*VRF){
		"no namespace":       func(v *VRF) { v.Namespace = "" },
		"multicast rmac":     func(v *VRF) { v.RouterMAC[0] = 1 },
		"zero gateway mac":   func(v *VRF) { v.Members[0].GatewayMAC = evpn.MAC{} },
		"l3vni access ports": func(v *VRF) { v.L3.AccessPorts = []string{"x"} },
		"bridge shared":      func(v *VRF) { v.Members[0].L2.Bridge = "br4001" },
		"unknown backend":    func(v *VRF) { v.Backend = "vlan" },
	} {
		v := tenantVRF(BackendNetns)
		mut(&v)
		if _, err := PlanVRF(v, under, NSObserved{}); err == nil || len(conflicts(err)) != 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// borderVRF is a VRF without members and with one uplink, as a border
// leaf has.
func borderVRF(backend Backend) VRF {
	v := tenantVRF(backend)
	v.Members = nil
	v.Uplinks = []Uplink{{Name: "up0", Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/30"), netip.MustParsePrefix("2001:db8:ff::1/126")}}}
	return v
}

// uplinkLines renders the actions of a plan on uplink up0.
func uplinkLines(p VRFPlan) string {
	var b strings.Builder
	for _, a := range p.Actions {
		if a.Dev == "up0" {
			b.WriteString(a.String())
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// An uplink is moved into the tenant's namespace (netns), enslaved to the
// VRF device (vrf) or left in place (default), then addressed and brought
// up; a kernel that matches gives no actions.
func TestPlanVRFUplinks(t *testing.T) {
	under := NSObserved{Exists: true, Links: []LinkInfo{{Index: 9, Name: "up0", Kind: "veth", MTU: 1500,
		Addrs: []netip.Prefix{netip.MustParsePrefix("fe80::1/64")}}}}
	for _, c := range []struct {
		backend Backend
		want    string
	}{
		{BackendDefault, `ip addr add 192.0.2.1/30 dev up0
ip addr add 2001:db8:ff::1/126 dev up0 nodad
ip link set up0 up
`},
		{BackendNetns, `ip link set up0 netns tenant-a
ip -n tenant-a addr add 192.0.2.1/30 dev up0
ip -n tenant-a addr add 2001:db8:ff::1/126 dev up0 nodad
ip -n tenant-a link set up0 up
`},
		{BackendVRF, `ip link set up0 master tenant-a
ip addr add 192.0.2.1/30 dev up0
ip addr add 2001:db8:ff::1/126 dev up0 nodad
ip link set up0 up
`},
	} {
		t.Run(string(c.backend), func(t *testing.T) {
			p, err := PlanVRF(borderVRF(c.backend), under, NSObserved{})
			if err != nil {
				t.Fatal(err)
			}
			diffLines(t, uplinkLines(p), c.want)
			if c.backend == BackendVRF {
				// The VRF device comes up last, after its uplink is in.
				if last := p.Actions[len(p.Actions)-1]; last.Op != L3SetUp || last.Dev != "tenant-a" {
					t.Errorf("last action %s, want the VRF device up", last)
				}
			}
		})
	}

	// The uplink as the plan left it: nothing to do; an address lost or
	// the link down is repaired.
	up := LinkInfo{Index: 9, Name: "up0", Kind: "veth", Up: true, Addrs: []netip.Prefix{
		netip.MustParsePrefix("192.0.2.1/30"), netip.MustParsePrefix("2001:db8:ff::1/126"), netip.MustParsePrefix("fe80::1/64")}}
	p, err := PlanVRF(borderVRF(BackendDefault), NSObserved{Exists: true, Links: []LinkInfo{up}}, NSObserved{})
	if err != nil {
		t.Fatal(err)
	}
	diffLines(t, uplinkLines(p), "")
	up.Up, up.Addrs = false, up.Addrs[:1]
	p, err = PlanVRF(borderVRF(BackendDefault), NSObserved{Exists: true, Links: []LinkInfo{up}}, NSObserved{})
	if err != nil {
		t.Fatal(err)
	}
	diffLines(t, uplinkLines(p), "ip addr add 2001:db8:ff::1/126 dev up0 nodad\nip link set up0 up\n")

	// Missing: a warning, no action; taken when it appears.
	p, err = PlanVRF(borderVRF(BackendNetns), NSObserved{Exists: true}, NSObserved{Exists: true})
	if err != nil {
		t.Fatal(err)
	}
	if uplinkLines(p) != "" || len(p.Absent) != 1 || !p.Absent[0].Uplink || p.Absent[0].Port != "up0" {
		t.Errorf("absent uplink: actions %q absent %+v", uplinkLines(p), p.Absent)
	}

	// Another owner's interface (a bridge port) is a conflict.
	under = NSObserved{Exists: true, Links: []LinkInfo{{Index: 8, Name: "brx", Kind: "bridge"}, {Index: 9, Name: "up0", Kind: "veth", MasterIndex: 8}}}
	if _, err := PlanVRF(borderVRF(BackendDefault), under, NSObserved{}); len(conflicts(err)) != 1 || !strings.Contains(conflicts(err)[0], "up0/master: want none, found brx") {
		t.Errorf("uplink in a bridge: %v", err)
	}
	// Invalid: an uplink that is also an access port.
	v := borderVRF(BackendNetns)
	v.Members = tenantVRF(BackendNetns).Members
	v.Uplinks[0].Name = "acc0"
	if _, err := PlanVRF(v, under, NSObserved{}); err == nil || !strings.Contains(err.Error(), "uplink acc0 is also") {
		t.Errorf("uplink acc0 = access port: %v", err)
	}
}

// An interface with an address of its own (an underlay port) is not
// taken as an uplink into a namespace or VRF device; in place (default
// backend), or once taken, its other addresses are left alone.
func TestPlanVRFUplinkForeignAddress(t *testing.T) {
	own := LinkInfo{Index: 9, Name: "up0", Kind: "veth", Up: true, Addrs: []netip.Prefix{
		netip.MustParsePrefix("10.1.1.1/31"), netip.MustParsePrefix("fe80::1/64"), netip.MustParsePrefix("192.0.2.1/30")}}
	under := NSObserved{Exists: true, Links: []LinkInfo{own}}
	for _, b := range []Backend{BackendNetns, BackendVRF} {
		_, err := PlanVRF(borderVRF(b), under, NSObserved{})
		if c := conflicts(err); len(c) != 1 || !strings.Contains(c[0], "up0/address: want none but the uplink's, found 10.1.1.1/31") {
			t.Errorf("%s: %v", b, err)
		}
	}
	p, err := PlanVRF(borderVRF(BackendDefault), under, NSObserved{})
	if err != nil {
		t.Fatal(err)
	}
	diffLines(t, uplinkLines(p), "ip addr add 2001:db8:ff::1/126 dev up0 nodad\n")
	// Already in the tenant namespace: its addresses there are the
	// operator's business.
	p, err = PlanVRF(borderVRF(BackendNetns), NSObserved{Exists: true}, NSObserved{Exists: true, Links: []LinkInfo{own}})
	if err != nil {
		t.Fatal(err)
	}
	diffLines(t, uplinkLines(p), "ip -n tenant-a addr add 2001:db8:ff::1/126 dev up0 nodad\n")
}
