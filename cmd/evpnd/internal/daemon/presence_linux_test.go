package daemon

import (
	"strings"
	"testing"

	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/evpnd/evpnd/vtep"
)

// The API's device presence reads the namespace that holds the devices:
// a tenant's on the netns backend (a read of the underlay's, as before,
// reported a netns tenant's devices missing), the underlay's otherwise.
func TestPresenceReadsTheVNIsNamespace(t *testing.T) {
	netns.RequireLinkKind(t, "bridge")
	ns := netns.ForTest(t, "prs")
	if _, err := ns.Exec(t.Context(), "ip", "link", "add", "brT", "type", "bridge"); err != nil {
		t.Fatal(err)
	}
	c := &configs.Config{VRFs: []configs.VRF{
		{Name: "t", Backend: configs.BackendNetns, Namespace: ns.Name, L2VNIs: []configs.VRFMember{{VNI: 100}}},
		{Name: "d", Backend: configs.BackendDefault, L2VNIs: []configs.VRFMember{{VNI: 200}}},
	}}
	if got := vniNamespace(c, 100); got != ns.Name {
		t.Errorf("namespace of VNI 100 (netns tenant): %q, want %q", got, ns.Name)
	}
	if got, got2 := vniNamespace(c, 200), vniNamespace(c, 300); got != "" || got2 != "" {
		t.Errorf("namespace of VNI 200 (default backend) %q, of 300 (no VRF) %q, want the underlay's", got, got2)
	}
	p := presence{}
	if !p.has(vniNamespace(c, 100), "brT", "lo") {
		t.Error("brT not found in the tenant namespace")
	}
	if p.has(vniNamespace(c, 100), "brT", "absent0") {
		t.Error("a missing device reported present")
	}
	if p.has(vniNamespace(c, 200), "brT") {
		t.Error("the tenant's brT found in the underlay namespace")
	}
	if !p.has("", "lo") || p.has("absent-ns-name", "lo") {
		t.Error("underlay lo not found, or an absent namespace's found")
	}
}

// A new L2VNI is checked against the links of the namespace read: a
// missing access interface, one with an address (IPv6 link-local aside),
// and device names taken by links of another kind are problems.
func TestNodeProblems(t *testing.T) {
	netns.RequireLinkKind(t, "veth")
	ns := netns.ForTest(t, "npr")
	for _, argv := range [][]string{
		{"ip", "link", "add", "acc0", "type", "veth", "peer", "name", "acc1"},
		{"ip", "addr", "add", "10.9.0.1/31", "dev", "acc1"},
		{"ip", "addr", "add", "fe80::9/64", "dev", "acc0", "nodad"},
		{"ip", "link", "add", "br100", "type", "veth", "peer", "name", "vx100"},
	} {
		if _, err := ns.Exec(t.Context(), argv...); err != nil {
			t.Fatal(err)
		}
	}
	n, err := vtep.OpenNode(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	v := configs.L2VNI{VNI: 100, VXLANDevice: "vx100", Bridge: "br100", AccessInterfaces: []string{"acc0", "acc1", "nope"}}
	var got []string
	for _, p := range nodeProblemsIn(n, "l2vnis[0]", v) {
		got = append(got, p.Path+" "+p.Value+": "+p.Reason)
	}
	want := []string{
		"l2vnis[0].access-interfaces[1] acc1: has address 10.9.0.1/31",
		"l2vnis[0].access-interfaces[2] nope: no such interface",
		"l2vnis[0].vxlan-device vx100: the name is taken by a veth device",
		"l2vnis[0].bridge br100: the name is taken by a veth device",
	}
	if len(got) != len(want) {
		t.Fatalf("problems:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d: %q, want it to start with %q", i, got[i], want[i])
		}
	}
}
