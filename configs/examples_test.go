package configs

import (
	"path/filepath"
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestExampleConfigs loads every example in this directory, so that the
// documentation they are cannot rot.
func TestExampleConfigs(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	loaded := map[string]*Config{}
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		loaded[f] = c
	}
	for _, f := range []string{"leaf1.yaml", "leaf2.yaml", "rr.yaml", "ebgp-leaf.yaml"} {
		if _, ok := loaded[f]; !ok {
			t.Errorf("example %s missing or invalid", f)
		}
	}
	if t.Failed() {
		return
	}

	// The examples describe one fabric; check they fit together.
	l1, l2, rr := loaded["leaf1.yaml"], loaded["leaf2.yaml"], loaded["rr.yaml"]
	for _, l := range []*Config{l1, l2} {
		if l.Role != RoleLeaf || l.ASN != rr.ASN || len(l.L2VNIs) != 2 ||
			l.L2VNIs[0].VNI != 100 || l.L2VNIs[1].VNI != 200 ||
			len(l.Neighbors) != 1 || l.Neighbors[0].Address != rr.RouterID {
			t.Errorf("leaf %v does not peer with the route reflector over VNIs 100 and 200: %+v", l.RouterID, l)
		}
		if !rr.DynamicNeighbors[0].Prefix.Contains(l.RouterID) {
			t.Errorf("route reflector does not accept leaf %v", l.RouterID)
		}
	}
	if l1.L2VNIRD(l1.L2VNIs[0]) == l2.L2VNIRD(l2.L2VNIs[0]) {
		t.Error("leaf1 and leaf2 use the same RD for VNI 100")
	}
	if rr.Role != RoleRouteReflector || !rr.DynamicNeighbors[0].IsRouteReflectorClient() {
		t.Errorf("rr.yaml is not a route reflector with clients: %+v", rr)
	}
	eb := loaded["ebgp-leaf.yaml"]
	if eb.Neighbors[0].ASN == eb.ASN {
		t.Error("ebgp-leaf.yaml peers over iBGP")
	}
	if !eb.Underlay.Enabled || !eb.Neighbors[0].HasFamily(FamilyIPv4Unicast) {
		t.Error("ebgp-leaf.yaml should show the BGP underlay")
	}
	if _, auto := eb.ImportRTs(eb.L2VNIs[1]); auto || eb.L2VNIs[1].RD == "" {
		t.Error("ebgp-leaf.yaml's second VNI should show explicit RD and RTs")
	}
	l3, ok := loaded["l3-leaf.yaml"]
	if !ok {
		t.Fatal("example l3-leaf.yaml missing or invalid")
	}
	if len(l3.VRFs) != 2 || l3.VRFs[0].Backend != BackendNetns || l3.VRFs[1].Namespace != "tenant-b" {
		t.Errorf("l3-leaf.yaml should show two netns tenants: %+v", l3.VRFs)
	}
	if w := l3.Warnings(); w != nil {
		t.Errorf("l3-leaf.yaml warns: %v", w)
	}
	for _, l := range []*Config{l1, l2, rr, eb} {
		if w := l.Warnings(); w != nil {
			t.Errorf("%v warns: %v", l.RouterID, w)
		}
	}
}

// A loaded config written back with yaml.Marshal reads back the same, so
// the daemon can show its running config in the file's own format.
func TestMarshalRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			continue // reported by TestExampleConfigs
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("%s: marshal: %v", f, err)
		}
		back, err := Parse(out, f+" (marshalled)")
		if err != nil {
			t.Errorf("%s: %v\n%s", f, err, out)
			continue
		}
		back.ApplyDefaults()
		// Compare as YAML: nil and empty lists both marshal as [].
		again, err := yaml.Marshal(back)
		if err != nil {
			t.Fatalf("%s: marshal: %v", f, err)
		}
		if string(again) != string(out) {
			t.Errorf("%s: round trip differs:\nloaded:\n%s\nread back:\n%s", f, out, again)
		}
		if back.VTEPIP != c.VTEPIP || back.GracefulRestart.RestartTime != c.GracefulRestart.RestartTime ||
			!reflect.DeepEqual(back.DynamicNeighbors, c.DynamicNeighbors) && len(c.DynamicNeighbors) > 0 {
			t.Errorf("%s: typed fields differ after the round trip", f)
		}
	}
	if len(files) == 0 {
		t.Fatal("no example configs")
	}
}
