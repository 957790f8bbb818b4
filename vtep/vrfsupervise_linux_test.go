package vtep

import (
	"context"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/netns"
)

// SuperviseVRFs reports whether a re-run may have lost the VRF's FDB: on
// its first run (changes before the subscription are unknown) and after
// a VXLAN device was deleted and rebuilt, yes; after an access port's
// host end went down and up again (a host moving away and back), no, so
// that the daemon does not read the kernel FDB again and undo the
// bridge's move of the host's MAC to its port.
func TestSuperviseVRFsFDBLost(t *testing.T) {
	u, h := testNS(t, "l3s")
	sh(t, u, "ip", "addr", "add", "10.0.0.1/32", "dev", "lo")
	host, _ := hostOn(t, u, "acc0", "10.1.0.10/24")
	m := NewManager(h, nsHandle(t, u), testLog(t))
	v := VRF{Name: "s", Backend: BackendNetns, Namespace: tenantNS(t, "l3st"), L3: l3Spec(4001), RouterMAC: rmac,
		Members: []SVI{member(100, "acc0", "10.1.0.1/24")}}
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.EnsureVRF(ctx, v); err != nil {
		t.Fatal(err)
	}
	repairs := make(chan VRFRepair, 64)
	done := make(chan error, 1)
	go func() { done <- m.SuperviseVRFs(ctx, []VRF{v}, func(r VRFRepair) { repairs <- r }) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	next := func(what string) VRFRepair {
		t.Helper()
		select {
		case r := <-repairs:
			if r.Err != nil || r.VRF != "s" {
				t.Fatalf("%s: repair %+v", what, r)
			}
			return r
		case err := <-done:
			t.Fatalf("%s: SuperviseVRFs returned %v", what, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no repair reported within 10s", what)
		}
		return VRFRepair{}
	}
	if r := next("first run"); !r.FDBLost {
		t.Errorf("first run: FDBLost false, want true (changes before the subscription are unknown)")
	}
	// Let the first run's own events pass: nothing more is reported once
	// a quiet second has passed.
	for quiet := false; !quiet; {
		select {
		case <-repairs:
		case <-time.After(time.Second):
			quiet = true
		}
	}

	tn := &netns.NS{Name: v.Namespace}
	sh(t, host, "ip", "link", "set", "eth0", "down")
	if r := next("access port's peer down"); r.FDBLost {
		t.Errorf("access port's carrier down: FDBLost true, want false")
	}
	sh(t, host, "ip", "link", "set", "eth0", "up")
	for quiet := false; !quiet; {
		select {
		case r := <-repairs:
			if r.FDBLost {
				t.Errorf("access port's carrier up: FDBLost true, want false")
			}
		case <-time.After(time.Second):
			quiet = true
		}
	}

	sh(t, tn, "ip", "link", "del", "vxlan100")
	if r := next("vxlan100 deleted"); !r.FDBLost {
		t.Errorf("vxlan100 deleted and rebuilt: FDBLost false, want true")
	}
	waitFor(t, func() bool {
		_, err := tn.Exec(context.Background(), "ip", "link", "show", "vxlan100")
		return err == nil
	})
}
