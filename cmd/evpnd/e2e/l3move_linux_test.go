package e2e

import (
	"fmt"

	"github.com/evpnd/evpnd/containerlab/netns"
	"strings"
	"testing"
	"time"
)

// TestTenantVRFMove migrates hm, a VM of VNI 100 in tenant VRF t1, from
// leaf1 to leaf2 with its MAC and IP (its link to leaf1 goes down, its
// link to leaf2 comes up with the same MAC and address) and has it speak
// first, pinging its gateway, as a migrated VM does. The anycast gateway
// answers it at once at its new leaf, routed traffic to it from the other
// subnet resumes from both leafs, and the kernels hold it at its new
// place only: leaf1 routes to it through leaf2 (host route, router MAC,
// suppression neighbour and remote MAC towards 10.0.0.2), leaf2 holds
// its MAC on the access port and keeps no host route, remote MAC or
// extern_learn neighbour for it.
func TestTenantVRFMove(t *testing.T) {
	t.Run("netns", func(t *testing.T) { tenantVRFMove(t, "netns") })
	t.Run("default", func(t *testing.T) { tenantVRFMove(t, "default") })
}

func tenantVRFMove(t *testing.T, backend string) {
	const (
		hmIP  = "10.1.0.50"
		hmMAC = "02:00:00:00:01:50"
	)
	f, tenants := deployL3(t, backend)
	vteps := map[string]string{"leaf1": "10.0.0.1", "leaf2": "10.0.0.2"}

	f.waitPing("hm", "10.1.0.1")
	// Before the move: leaf2 routes to hm through leaf1.
	for _, src := range []string{"h4", "h3"} {
		if err := f.pingUntil(t.Context(), src, hmIP, changeTimeout); err != nil {
			t.Fatalf("routed %s -> hm before the move: %v", src, err)
		}
	}
	eventually(t, changeTimeout, "hm at leaf1", func() error { return hmAt(t, tenants, vteps, "leaf1", "leaf2", hmIP, hmMAC) })

	out := f.exec("hm", "sh", "-ec", "ip link set eth1 down\n"+
		"date +%s.%N\n"+
		"ip addr flush dev eth1\n"+
		"ip link set eth1 address 02:00:00:00:01:51\n"+
		"ip link set eth2 address "+hmMAC+"\n"+
		"ip addr add "+hmIP+"/24 dev eth2\n"+
		"ip link set eth2 up\n"+
		"ip route replace default via 10.1.0.1 dev eth2\n")
	moved, err := parseUnixTime(out)
	if err != nil {
		t.Fatalf("move script: %v", err)
	}
	// The gateway answers at once: it is on every leaf, with the same MAC.
	if err := f.ping(t.Context(), "hm", "10.1.0.1", 1); err != nil {
		// The new link may take a moment to forward (the bridge port's
		// carrier); one more try, bounded.
		if err := f.pingUntil(t.Context(), "hm", "10.1.0.1", 2*time.Second); err != nil {
			t.Fatalf("hm -> its gateway right after the move: %v", err)
		}
	}
	// The routed outage, from hm's first answer from its gateway at the
	// new leaf (the new link forwards then) to the first routed reply; a
	// lost echo request costs its 1 s wait.
	gwAt := time.Now()
	for _, src := range []string{"h3", "h4"} {
		if err := f.pingUntil(t.Context(), src, hmIP, changeTimeout); err != nil {
			t.Errorf("routed %s -> hm after the move: %v", src, err)
			continue
		}
		t.Logf("routed %s -> hm answered %v after hm's gateway did (pinged in turn)", src, time.Since(gwAt).Round(time.Millisecond))
	}
	eventually(t, changeTimeout, "hm at leaf2, nothing of it left at leaf1", func() error {
		return hmAt(t, tenants, vteps, "leaf2", "leaf1", hmIP, hmMAC)
	})
	t.Logf("kernels exact with hm at leaf2 %v after the move", time.Since(moved).Round(time.Millisecond))
	for _, src := range []string{"h3", "h4", "h1", "h2"} {
		if err := f.ping(t.Context(), src, hmIP, 3); err != nil {
			t.Errorf("%s -> hm after the move: %v", src, err)
		}
	}
	if err := hmAt(t, tenants, vteps, "leaf2", "leaf1", hmIP, hmMAC); err != nil {
		t.Errorf("after more traffic: %v", err)
	}
}

// hmAt checks the tenant kernels of both leafs for a host (ip, mac) of VNI
// 100 attached at leaf at: at holds its MAC on the access port eth4 and
// no remote MAC, host route or extern_learn neighbour for it; the other
// leaf has its MAC on vxlan100 towards at's VTEP, the host route via that
// VTEP on br4001 and the extern_learn suppression neighbour on br100.
func hmAt(t *testing.T, tenants map[string]*netns.NS, vteps map[string]string, at, other, ip, mac string) error {
	run := func(leaf string, argv ...string) (string, error) {
		return tenants[leaf].Exec(t.Context(), argv...)
	}
	fdb, err := run(at, "bridge", "fdb", "show", "br", "br100")
	if err != nil {
		return err
	}
	local := false
	for _, line := range strings.Split(fdb, "\n") {
		if !strings.HasPrefix(line, mac+" ") {
			continue
		}
		if strings.Contains(line, "dev vxlan100") {
			return fmt.Errorf("%s keeps a remote MAC for %s: %q", at, mac, line)
		}
		if strings.Contains(line, "dev eth4") {
			local = true
		}
	}
	if !local {
		return fmt.Errorf("%s has not learned %s on eth4:\n%s", at, mac, fdb)
	}
	if r, err := run(at, "ip", "route", "show", ip+"/32"); err != nil {
		return err
	} else if strings.TrimSpace(r) != "" {
		return fmt.Errorf("%s keeps a host route for its local host %s: %q", at, ip, r)
	}
	if n, err := run(at, "ip", "neigh", "show", ip, "dev", "br100"); err != nil {
		return err
	} else if strings.Contains(n, "extern_learn") {
		return fmt.Errorf("%s keeps a suppression neighbour for its local host %s: %q", at, ip, n)
	}

	fdb, err = run(other, "bridge", "fdb", "show", "dev", "vxlan100")
	if err != nil {
		return err
	}
	remote := false
	for _, line := range strings.Split(fdb, "\n") {
		// (The bridge's own entry for the MAC on vxlan100 has no dst.)
		if strings.HasPrefix(line, mac+" ") && strings.Contains(line, " dst ") {
			if !strings.Contains(line, "dst "+vteps[at]+" ") {
				return fmt.Errorf("%s has %s towards the wrong VTEP: %q", other, mac, line)
			}
			remote = true
		}
	}
	if !remote {
		return fmt.Errorf("%s has no remote MAC %s towards %s:\n%s", other, mac, vteps[at], fdb)
	}
	if br, err := run(other, "bridge", "fdb", "show", "br", "br100"); err != nil {
		return err
	} else {
		for _, line := range strings.Split(br, "\n") {
			if strings.HasPrefix(line, mac+" ") && strings.Contains(line, "dev eth4") {
				return fmt.Errorf("%s keeps %s on its access port: %q", other, mac, line)
			}
		}
	}
	if r, err := run(other, "ip", "route", "show", ip+"/32"); err != nil {
		return err
	} else if !strings.Contains(r, "via "+vteps[at]+" dev br4001") {
		return fmt.Errorf("%s: no host route %s via %s dev br4001: %q", other, ip, vteps[at], r)
	}
	if n, err := run(other, "ip", "neigh", "show", ip, "dev", "br100"); err != nil {
		return err
	} else if !strings.Contains(n, "lladdr "+mac) || !strings.Contains(n, "extern_learn") {
		return fmt.Errorf("%s: no suppression neighbour %s %s on br100: %q", other, ip, mac, n)
	}
	return nil
}
