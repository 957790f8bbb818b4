package vtep

import (
	"context"
	"strings"
	"testing"

	"github.com/evpnd/evpnd/containerlab/netns"
)

// ShrinkVRF, then EnsureVRF, change a running VRF in place: a member
// removed goes (its port back in the underlay, its devices deleted), a
// kept member loses the gateway address it no longer has and keeps its
// devices (same index), a new member is built.
func TestShrinkVRF(t *testing.T) {
	for _, backend := range []Backend{BackendDefault, BackendNetns} {
		t.Run(string(backend), func(t *testing.T) {
			u, h := testNS(t, "l3k")
			sh(t, u, "ip", "addr", "add", "10.0.0.1/32", "dev", "lo")
			hostOn(t, u, "acc0", "10.1.0.10/24")
			hostOn(t, u, "acc1", "10.2.0.10/24")
			hostOn(t, u, "acc2", "10.3.0.10/24")
			m := NewManager(h, nsHandle(t, u), testLog(t))
			old := VRF{Name: "k", Backend: backend, L3: l3Spec(4001), RouterMAC: rmac, Members: []SVI{
				member(100, "acc0", "10.1.0.1/24", "10.1.9.1/24"), member(200, "acc1", "10.2.0.1/24")}}
			next := old
			next.Members = []SVI{member(100, "acc0", "10.1.0.1/24"), member(300, "acc2", "10.3.0.1/24")}
			ten := u
			if backend == BackendNetns {
				old.Namespace = tenantNS(t, "l3tk")
				next.Namespace = old.Namespace
				ten = &netns.NS{Name: old.Namespace}
			}
			ctx := context.Background()
			if err := m.EnsureVRF(ctx, old); err != nil {
				t.Fatal(err)
			}
			idx := sh(t, ten, "cat", "/sys/class/net/br100/ifindex")
			if err := m.ShrinkVRF(ctx, old, next); err != nil {
				t.Fatal(err)
			}
			if err := m.EnsureVRF(ctx, next); err != nil {
				t.Fatal(err)
			}
			if got := sh(t, ten, "cat", "/sys/class/net/br100/ifindex"); got != idx {
				t.Errorf("br100 made again: ifindex %s, was %s", got, idx)
			}
			if out := sh(t, ten, "ip", "addr", "show", "br100"); !strings.Contains(out, "10.1.0.1/24") || strings.Contains(out, "10.1.9.1") {
				t.Errorf("br100's gateways: %s", out)
			}
			links := sh(t, ten, "ip", "-o", "link", "show")
			if strings.Contains(links, "br200") || strings.Contains(links, "vxlan200") || !strings.Contains(links, "br300") {
				t.Errorf("members after the change:\n%s", links)
			}
			if out := sh(t, u, "ip", "-o", "link", "show", "acc1"); strings.Contains(out, "master") {
				t.Errorf("acc1 of the removed member still enslaved: %s", out)
			}
			if err := m.ShrinkVRF(ctx, next, next); err != nil {
				t.Errorf("ShrinkVRF with nothing to remove: %v", err)
			}
			if err := m.RemoveVRF(ctx, next); err != nil {
				t.Fatal(err)
			}
		})
	}
}
