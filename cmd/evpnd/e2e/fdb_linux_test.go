package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestFDBExact: once every host has sent traffic, each leaf holds exactly
// the remote MACs of its VNIs (a VXLAN entry to the right VTEP and a
// bridge entry, both extern_learn), one flood entry per remote VTEP of
// each of its VNIs, its own hosts as local entries, and no other entry
// evpnd could own. waitFDB compares sets; this test also states the
// sizes, so that an empty model cannot pass.
func TestFDBExact(t *testing.T) {
	f := deployFabric(t)
	f.converge()
	sizes := map[string]int{}
	for _, lf := range f.m.Leafs {
		es, err := f.fdb(t.Context(), lf.Name)
		if err != nil {
			t.Fatal(err)
		}
		got := observed(es, lf)
		if d := diff(got, f.m.want(lf.Name, f.at)); d != "" {
			t.Errorf("%s:%s", lf.Name, d)
		}
		sizes[lf.Name] = len(got.Owned)
		// No local host may also be installed as remote, and no entry may
		// name another VNI's device: checked by the exact set above; here
		// the VNI 200 MACs must not appear at all on leaf2 (no VNI 200).
		if lf.Name == "leaf2" {
			for _, e := range es {
				if strings.HasPrefix(e.MAC, "02:00:00:00:02:") {
					t.Errorf("leaf2 has no VNI 200 but holds %s", e.key())
				}
			}
		}
	}
	// leaf1: VNI 100 floods to leaf2+leaf3 and has h2, h5 remote; VNI 200
	// floods to leaf3 and has h3 remote. leaf2: VNI 100 floods to
	// leaf1+leaf3 and has h1, hm, h5 remote. leaf3: VNI 100 floods to
	// leaf1+leaf2 and has h1, h2, hm remote; VNI 200 floods to leaf1 and has
	// h4 remote.
	want := map[string]int{"leaf1": 2 + 2*2 + 1 + 2, "leaf2": 2 + 3*2, "leaf3": 2 + 3*2 + 1 + 2}
	for leaf, n := range want {
		if sizes[leaf] != n {
			t.Errorf("%s: %d evpnd-owned entries, want %d", leaf, sizes[leaf], n)
		}
	}
}

// TestHostRemoved: a host that leaves leaf1 disappears from the other
// leafs' FDBs, whether its access port goes down (the kernel flushes the
// learned entry) or the port is deleted outright.
func TestHostRemoved(t *testing.T) {
	f := deployFabric(t)
	f.converge()
	cases := []struct {
		name, host, cmd string
	}{
		{"port down", "h1", "ip link set %s down"},
		{"port deleted", "h4", "ip link del %s"},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			ft := *f
			ft.t = t
			a := f.at[c.host]
			if a.Leaf != "leaf1" {
				t.Fatalf("%s is on %s, want leaf1", c.host, a)
			}
			ft.sh(a.Leaf, fmt.Sprintf(c.cmd, a.Port))
			delete(f.at, c.host)
			took := ft.waitFDB(changeTimeout)
			t.Logf("%s (%s) gone from every leaf's FDB %v after %q on %s", c.host, f.m.host(c.host).MAC, took.Round(time.Millisecond), fmt.Sprintf(c.cmd, a.Port), a.Leaf)
			if !f.lab.Running("leaf1") {
				t.Fatalf("evpnd on leaf1 exited after its access port was changed")
			}
		})
	}
}

// TestRouteReflector: the route reflector creates no VXLAN device or
// bridge and installs no FDB entry, neighbour or route, and it reflects
// routes with their next hop unchanged: every remote entry on the leafs
// points at a leaf VTEP, never at the reflector.
func TestRouteReflector(t *testing.T) {
	f := deployFabric(t)
	f.converge()
	spine := f.m.Spine

	var links []struct {
		Name     string `json:"ifname"`
		LinkInfo struct {
			Kind string `json:"info_kind"`
		} `json:"linkinfo"`
	}
	if err := json.Unmarshal([]byte(f.exec(spine, "ip", "-j", "-d", "link", "show")), &links); err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.LinkInfo.Kind != "" && l.LinkInfo.Kind != "veth" {
			t.Errorf("%s has a %s device %s: a route reflector creates none", spine, l.LinkInfo.Kind, l.Name)
		}
	}
	es, err := parseFDB([]byte(f.exec(spine, "bridge", "-j", "fdb", "show")))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.has("extern_learn") || e.Dst != "" || e.Master != "" {
			t.Errorf("%s FDB has %s: a route reflector installs nothing", spine, e.key())
		}
	}
	for _, line := range strings.Split(f.exec(spine, "ip", "neigh", "show"), "\n") {
		if strings.Contains(line, "extern_learn") {
			t.Errorf("%s has a neighbour installed for EVPN: %s", spine, line)
		}
	}
	// Routes: those of the exec commands (proto boot, which iproute2
	// leaves out of its JSON) and the kernel's.
	var routes []struct {
		Dst      string `json:"dst"`
		Protocol string `json:"protocol"`
	}
	if err := json.Unmarshal([]byte(f.exec(spine, "ip", "-j", "route", "show", "table", "all")), &routes); err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Protocol != "" && r.Protocol != "kernel" && r.Protocol != "boot" {
			t.Errorf("%s has route %s proto %s: a route reflector installs none", spine, r.Dst, r.Protocol)
		}
	}

	vteps := map[string]string{}
	for _, lf := range f.m.Leafs {
		vteps[lf.VTEP.String()] = lf.Name
	}
	remote := 0
	for _, lf := range f.m.Leafs {
		es, err := f.fdb(t.Context(), lf.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Dst == "" || !lf.vxlanDevices()[e.Ifname] {
				continue
			}
			remote++
			dst, err := netip.ParseAddr(e.Dst)
			switch {
			case err != nil:
				t.Errorf("%s: %s: bad destination: %v", lf.Name, e.key(), err)
			case dst == f.m.SpineAddr:
				t.Errorf("%s: %s: the reflector rewrote the next hop to itself", lf.Name, e.key())
			case vteps[e.Dst] == "" || vteps[e.Dst] == lf.Name:
				t.Errorf("%s: %s: destination is not another leaf's VTEP", lf.Name, e.key())
			}
		}
	}
	if remote == 0 {
		t.Fatal("no remote entries on any leaf")
	}
	t.Logf("%d VXLAN entries on the leafs, all pointing at the originating leaf's VTEP", remote)
}
