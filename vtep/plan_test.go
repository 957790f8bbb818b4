package vtep

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func vniSpec(vni uint32, ports ...string) L2VNI {
	return L2VNI{
		VNI: vni, VXLAN: "vxlan" + itoa(vni), Bridge: "br" + itoa(vni),
		AccessPorts: ports, Local: netip.MustParseAddr("10.0.0.1"),
	}
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func conflicts(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		if ce, ok := err.(*ConflictError); ok {
			out = append(out, ce.Device+"/"+ce.Param+": want "+ce.Expected+", found "+ce.Found)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// kernel builds an Observed: a matching VNI 100 (bridge br100 #10,
// vxlan100 #11 enslaved with the right flags, acc0 #12 enslaved), plus an
// unused veth acc1 #13 and another bridge brX #20; mutate edits it
// (deleting a name from the map removes that link).
func kernel(mutate func(map[string]*LinkInfo)) Observed {
	links := []*LinkInfo{
		{Index: 10, Name: "br100", Kind: "bridge", Up: true, MTU: 1500},
		{Index: 11, Name: "vxlan100", Kind: "vxlan", Up: true, MTU: 1500, MasterIndex: 10,
			VXLAN: &VXLANInfo{VNI: 100, Local: netip.MustParseAddr("10.0.0.1"), Port: 4789},
			Port:  &PortFlags{Learning: false, NeighSuppress: true}},
		{Index: 12, Name: "acc0", Kind: "veth", Up: true, MTU: 1500, MasterIndex: 10},
		{Index: 13, Name: "acc1", Kind: "veth", MTU: 1500},
		{Index: 20, Name: "brX", Kind: "bridge", Up: true, MTU: 1500},
	}
	byName := map[string]*LinkInfo{}
	for _, l := range links {
		byName[l.Name] = l
	}
	if mutate != nil {
		mutate(byName)
	}
	kept := map[*LinkInfo]bool{}
	for _, l := range byName {
		kept[l] = true
	}
	var obs Observed
	for _, l := range links {
		if kept[l] { // mutate may rename links, or delete them from the map
			obs.Links = append(obs.Links, *l)
		}
	}
	return obs
}

func TestPlanL2(t *testing.T) {
	v100 := vniSpec(100, "acc0")
	tests := []struct {
		name      string
		vnis      []L2VNI
		obs       Observed
		actions   []string
		adopted   []string
		conflicts []string
		errHas    string // for non-conflict (configuration) errors
	}{
		{
			name: "empty kernel creates everything, bridge up last",
			vnis: []L2VNI{vniSpec(200, "acc1")},
			obs:  kernel(nil),
			actions: []string{
				"ip link add br200 type bridge; sysctl -w net.ipv6.conf.br200.disable_ipv6=1",
				"ip link add vxlan200 type vxlan id 200 local 10.0.0.1 dstport 4789 nolearning; sysctl -w net.ipv6.conf.vxlan200.disable_ipv6=1",
				"ip link set vxlan200 master br200",
				"bridge link set dev vxlan200 learning off neigh_suppress on",
				"ip link set vxlan200 up",
				"ip link set acc1 master br200",
				"ip link set acc1 up",
				"ip link set br200 up",
			},
		},
		{
			name: "MTU and port given",
			vnis: []L2VNI{{VNI: 7, VXLAN: "vx7", Bridge: "b7", Local: netip.MustParseAddr("2001:db8::1"), UDPPort: 4790, MTU: 9000}},
			obs:  kernel(nil),
			actions: []string{
				"ip link add b7 mtu 9000 type bridge; sysctl -w net.ipv6.conf.b7.disable_ipv6=1",
				"ip link add vx7 mtu 9000 type vxlan id 7 local 2001:db8::1 dstport 4790 nolearning; sysctl -w net.ipv6.conf.vx7.disable_ipv6=1",
				"ip link set vx7 master b7",
				"bridge link set dev vx7 learning off neigh_suppress on",
				"ip link set vx7 up",
				"ip link set b7 up",
			},
		},
		{
			name: "default VXLAN MTU is for a created device only",
			vnis: []L2VNI{func() L2VNI { v := vniSpec(100, "acc0"); v.DefaultVXLANMTU = 8950; return v }(),
				func() L2VNI { v := vniSpec(200); v.DefaultVXLANMTU = 8950; return v }()},
			obs:     kernel(nil),
			adopted: []string{"br100", "vxlan100"},
			actions: []string{
				"ip link add br200 type bridge; sysctl -w net.ipv6.conf.br200.disable_ipv6=1",
				"ip link add vxlan200 mtu 8950 type vxlan id 200 local 10.0.0.1 dstport 4789 nolearning; sysctl -w net.ipv6.conf.vxlan200.disable_ipv6=1",
				"ip link set vxlan200 master br200",
				"bridge link set dev vxlan200 learning off neigh_suppress on",
				"ip link set vxlan200 up",
				"ip link set br200 up",
			},
		},
		{
			name:    "matching devices are adopted untouched",
			vnis:    []L2VNI{v100},
			obs:     kernel(nil),
			adopted: []string{"br100", "vxlan100"},
		},
		{
			name: "adopted devices repaired: down, MTU, port flags, unenslaved port",
			vnis: []L2VNI{func() L2VNI { v := vniSpec(100, "acc0", "acc1"); v.MTU = 9000; return v }()},
			obs: kernel(func(m map[string]*LinkInfo) {
				m["br100"].Up = false
				m["vxlan100"].Up = false
				m["vxlan100"].Port = &PortFlags{Learning: true}
			}),
			actions: []string{
				"ip link set br100 mtu 9000",
				"ip link set vxlan100 mtu 9000",
				"bridge link set dev vxlan100 learning off neigh_suppress on",
				"ip link set vxlan100 up",
				"ip link set acc1 master br100",
				"ip link set acc1 up",
				"ip link set br100 up",
			},
			adopted: []string{"br100", "vxlan100"},
		},
		{
			name: "existing VXLAN device outside any bridge is enslaved",
			vnis: []L2VNI{v100},
			obs:  kernel(func(m map[string]*LinkInfo) { m["vxlan100"].MasterIndex = 0; m["vxlan100"].Port = nil }),
			actions: []string{
				"ip link set vxlan100 master br100",
				"bridge link set dev vxlan100 learning off neigh_suppress on",
			},
			adopted: []string{"br100", "vxlan100"},
		},
		{
			name: "VXLAN identity conflicts are all reported",
			vnis: []L2VNI{v100},
			obs: kernel(func(m map[string]*LinkInfo) {
				m["vxlan100"].VXLAN = &VXLANInfo{VNI: 200, Local: netip.MustParseAddr("10.0.0.9"), Port: 8472, Learning: true,
					Group: netip.MustParseAddr("239.1.1.1"), External: true}
			}),
			conflicts: []string{
				"vxlan100/external (collect_metadata): want off, found on",
				"vxlan100/vni: want 100, found 200",
				"vxlan100/local: want 10.0.0.1, found 10.0.0.9",
				"vxlan100/dstport: want 4789, found 8472",
				"vxlan100/learning: want nolearning, found learning",
				"vxlan100/remote/group: want none (evpnd programs the flood list), found 239.1.1.1",
			},
		},
		{
			name:      "local unset on the existing device",
			vnis:      []L2VNI{v100},
			obs:       kernel(func(m map[string]*LinkInfo) { m["vxlan100"].VXLAN.Local = netip.Addr{} }),
			conflicts: []string{"vxlan100/local: want 10.0.0.1, found unset"},
		},
		{
			name:      "bridge name taken by another kind",
			vnis:      []L2VNI{vniSpec(300)},
			obs:       kernel(func(m map[string]*LinkInfo) { m["acc1"].Name = "br300" }),
			conflicts: []string{"br300/kind: want bridge, found veth"},
		},
		{
			name:      "VXLAN name taken by a bridge",
			vnis:      []L2VNI{{VNI: 300, VXLAN: "brX", Bridge: "br300", Local: netip.MustParseAddr("10.0.0.1")}},
			obs:       kernel(nil),
			conflicts: []string{"brX/kind: want vxlan, found bridge"},
		},
		{
			name:      "VXLAN device in another bridge",
			vnis:      []L2VNI{v100},
			obs:       kernel(func(m map[string]*LinkInfo) { m["vxlan100"].MasterIndex = 20 }),
			conflicts: []string{"vxlan100/master: want br100, found brX"},
		},
		{
			name:      "access port in another bridge",
			vnis:      []L2VNI{vniSpec(100, "acc0", "acc1")},
			obs:       kernel(func(m map[string]*LinkInfo) { m["acc1"].MasterIndex = 20 }),
			conflicts: []string{"acc1/master: want br100, found brX"},
		},
		{
			name:    "access port missing is no conflict (see TestPlanRepair)",
			vnis:    []L2VNI{vniSpec(100, "acc0", "eth9")},
			obs:     kernel(nil),
			adopted: []string{"br100", "vxlan100"},
		},
		{
			name: "another device already carries the VNI",
			vnis: []L2VNI{v100},
			obs: kernel(func(m map[string]*LinkInfo) {
				m["vxlan100"].Name = "old100"
			}),
			conflicts: []string{"old100/vni: want VNI 100 only on vxlan100, found VNI 100 with dstport 4789"},
		},
		{
			name:    "the same VNI on another port does not collide",
			vnis:    []L2VNI{func() L2VNI { v := vniSpec(100); v.VXLAN = "vxnew"; v.UDPPort = 4790; return v }()},
			obs:     kernel(nil),
			adopted: []string{"br100"},
			actions: []string{
				"ip link add vxnew type vxlan id 100 local 10.0.0.1 dstport 4790 nolearning; sysctl -w net.ipv6.conf.vxnew.disable_ipv6=1",
				"ip link set vxnew master br100",
				"bridge link set dev vxnew learning off neigh_suppress on",
				"ip link set vxnew up",
			},
		},
		{
			name:   "duplicate VNI",
			vnis:   []L2VNI{vniSpec(5), vniSpec(5)},
			errHas: "l2vni 5 is configured twice",
		},
		{
			name:   "port shared by two VNIs",
			vnis:   []L2VNI{vniSpec(5, "acc1"), vniSpec(6, "acc1")},
			errHas: "device acc1 is configured as an access port of l2vni 5 and as an access port of l2vni 6",
		},
		{
			name:   "bad fields",
			vnis:   []L2VNI{{VNI: 1 << 24, VXLAN: "a-very-long-name-indeed", Bridge: "b"}},
			errHas: "VNI must be 1-16777215",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := PlanL2(tc.vnis, tc.obs)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("error %v, want one containing %q", err, tc.errHas)
				}
				return
			}
			if got := conflicts(err); !slices.Equal(got, tc.conflicts) {
				t.Fatalf("conflicts:\n got  %q\n want %q\n(error: %v)", got, tc.conflicts, err)
			}
			if err != nil {
				if len(plan.Actions) != 0 {
					t.Error("a failed plan carries actions")
				}
				return
			}
			var got []string
			for _, a := range plan.Actions {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tc.actions) {
				t.Errorf("actions:\n got  %q\n want %q", got, tc.actions)
			}
			if !slices.Equal(plan.Adopted, tc.adopted) {
				t.Errorf("adopted %q, want %q", plan.Adopted, tc.adopted)
			}
		})
	}
}

// TestPlanUndoInfo checks the values a rollback needs are carried: which
// steps act on devices created by the same plan, and the previous MTU and
// port flags of adopted devices.
func TestPlanUndoInfo(t *testing.T) {
	v := vniSpec(100, "acc0")
	v.MTU = 9000
	obs := kernel(func(m map[string]*LinkInfo) { m["vxlan100"].Port = &PortFlags{Learning: true, NeighSuppress: true} })
	plan, err := PlanL2([]L2VNI{v, vniSpec(200, "acc1")}, obs)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range plan.Actions {
		switch {
		case a.Op == OpSetMTU && a.PrevMTU != 1500:
			t.Errorf("%s: PrevMTU %d, want 1500", a, a.PrevMTU)
		case a.Op == OpSetPortFlags && a.Dev == "vxlan100" && (a.PrevPort == nil || !a.PrevPort.Learning):
			t.Errorf("%s: PrevPort %+v, want the observed flags", a, a.PrevPort)
		case a.VNI == 200 && a.Dev != "acc1" && a.Op != OpCreateBridge && a.Op != OpCreateVXLAN && !a.Created:
			t.Errorf("%s: acts on a device created by this plan but Created is false", a)
		case a.Dev == "acc1" && a.Created:
			t.Errorf("%s: acc1 pre-exists but Created is true", a)
		}
	}
}

func TestConflictErrorText(t *testing.T) {
	err := error(&ConflictError{VNI: 100, Device: "vxlan100", Param: "dstport", Expected: "4789", Found: "8472", Fix: "delete it"})
	want := "l2vni 100: device vxlan100: dstport is 8472, evpnd expects 4789: delete it"
	if err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	var ce *ConflictError
	if !errors.As(errors.Join(errors.New("x"), err), &ce) {
		t.Error("ConflictError not found through errors.Join")
	}
}

// TestPlanRepair: a missing access port is reported Absent, not a
// conflict; PlanRepair leaves an enslaved access port's admin state
// alone but brings up one it enslaves again; PlanL2 (start) brings both
// up.
func TestPlanRepair(t *testing.T) {
	v := vniSpec(100, "acc0", "acc1", "eth9")
	obs := kernel(func(m map[string]*LinkInfo) {
		m["acc0"].Up = false // an operator shut it
		m["acc1"].Up = false // released, and down
	})
	str := func(p Plan) []string {
		var out []string
		for _, a := range p.Actions {
			out = append(out, a.String())
		}
		return out
	}
	p, err := PlanRepair([]L2VNI{v}, obs)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ip link set acc1 master br100", "ip link set acc1 up"}; !slices.Equal(str(p), want) {
		t.Errorf("repair actions %q, want %q", str(p), want)
	}
	if want := []AbsentPort{{VNI: 100, Port: "eth9", Bridge: "br100"}}; !slices.Equal(p.Absent, want) {
		t.Errorf("absent %v, want %v", p.Absent, want)
	}
	p, err = PlanL2([]L2VNI{v}, obs)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ip link set acc0 up", "ip link set acc1 master br100", "ip link set acc1 up"}; !slices.Equal(str(p), want) {
		t.Errorf("start actions %q, want %q", str(p), want)
	}
	// A deleted VXLAN device is rebuilt as at start.
	p, err = PlanRepair([]L2VNI{vniSpec(100, "acc0")}, kernel(func(m map[string]*LinkInfo) { delete(m, "vxlan100") }))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Actions) != 4 || p.Actions[0].Op != OpCreateVXLAN || p.Actions[1].Op != OpSetMaster {
		t.Errorf("rebuild actions %q", str(p))
	}
}

func TestMTUWarnings(t *testing.T) {
	obs := kernel(func(m map[string]*LinkInfo) {
		m["vxlan100"].MTU = 1450
		m["acc1"].MasterIndex = 10 // enslaved by someone else, 1500
		m["brX"].MTU = 9000        // not a port
	})
	got := MTUWarnings([]L2VNI{vniSpec(100, "acc0")}, obs)
	want := []MTUWarning{
		{VNI: 100, Port: "acc0", PortMTU: 1500, VXLAN: "vxlan100", VXLANMTU: 1450},
		{VNI: 100, Port: "acc1", PortMTU: 1500, VXLAN: "vxlan100", VXLANMTU: 1450},
	}
	if !slices.Equal(got, want) {
		t.Errorf("MTUWarnings = %v, want %v", got, want)
	}
	if got := MTUWarnings([]L2VNI{vniSpec(100, "acc0")}, kernel(nil)); len(got) != 0 {
		t.Errorf("equal MTUs warned: %v", got)
	}
}

// TestPlanNoNeighSuppress: an L2VNI without an SVI gets its VXLAN port
// with neigh_suppress off, an adopted port with it on is turned off, and
// a port already right gives no action.
func TestPlanNoNeighSuppress(t *testing.T) {
	v := vniSpec(200)
	v.NoNeighSuppress = true
	plan, err := PlanL2([]L2VNI{v}, kernel(nil))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range plan.Actions {
		if a.Op == OpSetPortFlags {
			got = append(got, a.String())
		}
	}
	if want := []string{"bridge link set dev vxlan200 learning off neigh_suppress off"}; !slices.Equal(got, want) {
		t.Errorf("created: port flags %q, want %q", got, want)
	}

	v = vniSpec(100, "acc0")
	v.NoNeighSuppress = true
	plan, err = PlanL2([]L2VNI{v}, kernel(nil)) // vxlan100 has neigh_suppress on
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Actions) != 1 || plan.Actions[0].Op != OpSetPortFlags || !plan.Actions[0].NoSuppress ||
		plan.Actions[0].PrevPort == nil || !plan.Actions[0].PrevPort.NeighSuppress {
		t.Errorf("adopted with neigh_suppress on: actions %v, want one that turns it off (undo info kept)", plan.Actions)
	}

	off := kernel(func(m map[string]*LinkInfo) { m["vxlan100"].Port = &PortFlags{} })
	if plan, err = PlanL2([]L2VNI{v}, off); err != nil || len(plan.Actions) != 0 {
		t.Errorf("adopted with neigh_suppress off: actions %v (err %v), want none", plan.Actions, err)
	}
	if plan, err = PlanL2([]L2VNI{vniSpec(100, "acc0")}, off); err != nil || len(plan.Actions) != 1 || plan.Actions[0].NoSuppress {
		t.Errorf("routed VNI adopted with neigh_suppress off: actions %v (err %v), want one that turns it on", plan.Actions, err)
	}
}
