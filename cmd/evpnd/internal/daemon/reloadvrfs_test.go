package daemon

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/evpnd/evpnd/configs"
)

// vrfCfg is a leaf with L2VNIs 100, 200, 300 (access ports eth1..eth3)
// and the VRFs given (each with its member VNIs).
func vrfCfg(t *testing.T, vrfs map[string][]uint32) *configs.Config {
	t.Helper()
	c := &configs.Config{Role: configs.RoleLeaf, RouterID: netip.MustParseAddr("10.0.0.1"), ASN: 65000,
		VTEPIP: netip.MustParseAddr("10.0.0.1")}
	for i, vni := range []uint32{100, 200, 300} {
		c.L2VNIs = append(c.L2VNIs, configs.L2VNI{VNI: vni, AccessInterfaces: []string{"eth" + string(rune('1'+i))}})
	}
	l3 := uint32(4001)
	for _, name := range slices.Sorted(maps.Keys(vrfs)) {
		f := configs.VRF{Name: name, L3VNI: l3, Backend: configs.BackendNetns, GatewayMAC: "00:00:5e:00:01:01"}
		for _, vni := range vrfs[name] {
			f.L2VNIs = append(f.L2VNIs, configs.VRFMember{VNI: vni, GatewayIPs: []netip.Prefix{netip.MustParsePrefix("10.9.0.1/24")}})
		}
		c.VRFs = append(c.VRFs, f)
		l3++
	}
	c.ApplyDefaults()
	return c
}

func vnisOf(c *configs.Config) []uint32 {
	var out []uint32
	for _, v := range c.L2VNIs {
		out = append(out, v.VNI)
	}
	return out
}

// The L2VNI plan of a reload covers the standalone L2VNIs only: a member
// of a VRF starts and stops with it, and an L2VNI that joins or leaves a
// VRF is stopped or started as a standalone one.
func TestPlanVNIsWithVRFs(t *testing.T) {
	cur := vrfCfg(t, map[string][]uint32{"t1": {100}, "t2": {200}})
	next := vrfCfg(t, map[string][]uint32{"t1": {100, 300}})
	if got := vnisOf(standalone(cur)); !slices.Equal(got, []uint32{300}) {
		t.Errorf("standalone(cur) = %v, want [300]", got)
	}
	p := planVNIs(standalone(cur), standalone(next))
	keys := func(m map[uint32]bool) []uint32 { return slices.Sorted(maps.Keys(m)) }
	if got := keys(p.stop); !slices.Equal(got, []uint32{300}) {
		t.Errorf("stop %v, want 300 (joins t1)", got)
	}
	if got := keys(p.start); !slices.Equal(got, []uint32{200}) {
		t.Errorf("start %v, want 200 (t2 removed, it stays standalone)", got)
	}
}

// withVRF and withoutVRF keep the config in force consistent as VRFs come
// and go: a VRF with its members, and none without.
func TestWithWithoutVRF(t *testing.T) {
	full := vrfCfg(t, map[string][]uint32{"t1": {100}, "t2": {200, 300}})
	t2 := full.VRFs[1]
	c := withoutVRF(full, t2)
	if got := vnisOf(c); !slices.Equal(got, []uint32{100}) || len(c.VRFs) != 1 || c.VRFs[0].Name != "t1" {
		t.Errorf("withoutVRF(t2): vnis %v vrfs %d", got, len(c.VRFs))
	}
	if len(full.VRFs) != 2 || len(full.L2VNIs) != 3 {
		t.Error("withoutVRF changed its argument")
	}
	c = withVRF(c, full, t2)
	if got := vnisOf(c); !slices.Equal(got, []uint32{100, 200, 300}) || len(c.VRFs) != 2 {
		t.Errorf("withVRF(t2): vnis %v vrfs %d", got, len(c.VRFs))
	}
	if f, ok := vrfOf(c, 300); !ok || f.Name != "t2" {
		t.Errorf("vni 300 routed in %q", f.Name)
	}
	// What addVNIs starts into keeps the running VRFs, whatever target says.
	target := vrfCfg(t, map[string][]uint32{"t1": {100}})
	run := withoutVRF(full, t2)
	in := inForceWith(target, run, []configs.L2VNI{full.L2VNIs[2]})
	if got := vnisOf(in); !slices.Equal(got, []uint32{100, 300}) || len(in.VRFs) != 1 {
		t.Errorf("inForceWith: vnis %v vrfs %d", got, len(in.VRFs))
	}
}

// finalConfig is target's, with what runs: a VRF restored after a failed
// reload runs as it was, with its members.
func TestFinalConfig(t *testing.T) {
	target := vrfCfg(t, map[string][]uint32{"t1": {100}})
	run := vrfCfg(t, map[string][]uint32{"t1": {100}, "t2": {200}})
	c := finalConfig(target, withoutVRF(run, run.VRFs[1]))
	if got := vnisOf(c); !slices.Equal(got, []uint32{100, 300}) || len(c.VRFs) != 1 {
		t.Errorf("applied: vnis %v vrfs %d", got, len(c.VRFs))
	}
	c = finalConfig(target, run) // t2 restored
	if got := vnisOf(c); !slices.Equal(got, []uint32{100, 200, 300}) || len(c.VRFs) != 2 || c.VRFs[1].Name != "t2" {
		t.Errorf("restored: vnis %v vrfs %+v", got, c.VRFs)
	}
}

// A VRF a reload builds is checked against the node first: its access
// interfaces must exist and carry no address; those a running VRF holds
// in its namespace are not looked for.
func TestVRFNodeProblems(t *testing.T) {
	cur := vrfCfg(t, map[string][]uint32{"t1": {100}})
	next := vrfCfg(t, map[string][]uint32{"t1": {100}, "t2": {200, 300}})
	next.L2VNIs[1].AccessInterfaces = []string{"lo"}                    // has 127.0.0.1
	next.L2VNIs[2].AccessInterfaces = []string{"eth1", "nosuch-evpnd0"} // eth1: t1's
	ch, ps := configs.DiffVRFs(cur, next)
	if len(ps) > 0 || len(ch.Added) != 1 {
		t.Fatalf("DiffVRFs: %+v %v", ch, ps)
	}
	var got []string
	for _, p := range vrfNodeProblems(cur, next, ch) {
		got = append(got, p.Path+" "+p.Value+": "+p.Reason)
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "l2vnis[1].access-interfaces[0] lo: has address 127.0.0.1") ||
		!strings.HasPrefix(got[1], "l2vnis[2].access-interfaces[1] nosuch-evpnd0: no such interface") {
		t.Errorf("problems:\n%s", strings.Join(got, "\n"))
	}
}
