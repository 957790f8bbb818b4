package e2e

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/netns"
)

// borderFile is the lab of the border leaf test.
const borderFile = "testdata/border.clab.yml"

// External addresses behind the border leafs (on ext's loopback).
const (
	extIPv4 = "198.51.100.1"
	extIPv6 = "2001:db8:ee::1"
)

// TestBorderLeaf runs two border leafs (leaf2, leaf3) whose uplinks reach
// an external router, ext, and a leaf with a tenant host (leaf1), all on
// the netns backend, and as TestBorderLeaf/default with leaf1 and leaf3
// on the default backend. The border leafs move their uplink into the
// tenant's namespace (default backend: address it in place), address it,
// install their static default routes via ext (default backend: with the
// last-resort metric in the main table) and advertise 0.0.0.0/0 and ::/0
// as type-5. leaf1 installs each as one
// route with both border leafs as next hops (ECMP), its host reaches an
// address behind ext over IPv4 and IPv6, and when one border leaf stops,
// leaf1's default routes converge to the other one and the host still
// reaches ext.
func TestBorderLeaf(t *testing.T) {
	t.Run("netns", func(t *testing.T) { borderLeaf(t, map[string]string{}) })
	t.Run("default", func(t *testing.T) { borderLeaf(t, map[string]string{"leaf1": "default", "leaf3": "default"}) })
}

// borderLeaf runs the test with the leafs' backends: netns unless
// backends says otherwise.
func borderLeaf(t *testing.T, backends map[string]string) {
	backend := func(leaf string) string {
		if b, ok := backends[leaf]; ok {
			return b
		}
		return "netns"
	}
	leaf1Backend := backend("leaf1")
	f, tenants := deployL3Lab(t, borderFile, backend)
	vteps := map[string]string{"leaf2": "10.0.0.2", "leaf3": "10.0.0.3"}
	uplink := map[string][2]string{"leaf2": {"192.0.2.1/30", "2001:db8:ff::1/126"}, "leaf3": {"192.0.2.5/30", "2001:db8:ff::5/126"}}
	ext := map[string][2]string{"leaf2": {"192.0.2.2", "2001:db8:ff::2"}, "leaf3": {"192.0.2.6", "2001:db8:ff::6"}}

	// The border leafs: the uplink in the tenant namespace with its
	// addresses, the static default routes via ext marked evpnd-static.
	tb := eventually(t, convergeTimeout, "border leafs' uplinks and static routes", func() error {
		for _, leaf := range []string{"leaf2", "leaf3"} {
			ns := tenants[leaf]
			out, err := ns.Exec(t.Context(), "ip", "addr", "show", "dev", "eth5")
			if err != nil {
				return fmt.Errorf("%s: uplink eth5 not in the tenant namespace: %w", leaf, err)
			}
			for _, a := range uplink[leaf] {
				if !strings.Contains(out, a) || !strings.Contains(out, ",UP") {
					return fmt.Errorf("%s: uplink eth5 lacks %s or is down:\n%s", leaf, a, out)
				}
			}
			for i, fam := range []string{"-4", "-6"} {
				r, err := ns.Exec(t.Context(), "ip", fam, "route", "show", "default")
				if err != nil {
					return err
				}
				if !strings.Contains(r, "via "+ext[leaf][i]+" dev eth5 proto 242") {
					return fmt.Errorf("%s: no static default route via %s (proto 242): %q", leaf, ext[leaf][i], r)
				}
				if backend(leaf) == "default" && !strings.Contains(r, "proto 242 metric 4294967295") {
					return fmt.Errorf("%s (default backend): static default route without the last-resort metric: %q", leaf, r)
				}
			}
		}
		return nil
	})
	t.Logf("border leafs ready in %v", tb.Round(time.Millisecond))
	if out := f.exec("leaf2", "ip", "-br", "link"); strings.Contains(out, "eth5") {
		t.Errorf("leaf2: the uplink is still in the underlay namespace:\n%s", out)
	}

	// leaf1: one route per family with both border leafs as next hops.
	checkDefaults(t, tenants["leaf1"], leaf1Backend, []string{"leaf2", "leaf3"}, vteps)
	out := f.exec("leaf1", "evpnctl", "show", "ip", "route", "vrf", "t1")
	for _, want := range []string{"P 0.0.0.0/0", "P ::/0", "via 10.0.0.2", "via 10.0.0.3", "(ECMP, 2 paths)", "P 192.0.2.0/30", "P 192.0.2.4/30"} {
		if !strings.Contains(out, want) {
			t.Errorf("leaf1's evpnctl show ip route vrf t1 lacks %q:\n%s", want, out)
		}
	}

	// A border leaf keeps its own default routes: the other's are not
	// installed, nor listed; the tenant's subnet from leaf1 is.
	eventually(t, changeTimeout, "leaf2's evpnctl show ip route vrf t1", func() error {
		out, err := f.lab.Exec(t.Context(), "leaf2", "evpnctl", "show", "ip", "route", "vrf", "t1")
		if err != nil {
			return err
		}
		if strings.Contains(out, "0.0.0.0/0") || strings.Contains(out, "::/0") || !strings.Contains(out, "P 10.1.0.0/24") {
			return fmt.Errorf("want leaf1's subnet and no default route:\n%s", out)
		}
		return nil
	})
	if out := tenantExec(t, tenants["leaf2"], "ip", "route", "show", "default"); strings.Contains(out, "br4001") {
		t.Errorf("leaf2 installed the other border leaf's default route: %q", out)
	}

	// The host reaches the address behind the border leafs.
	for _, dst := range []string{extIPv4, extIPv6} {
		if err := f.pingUntil(t.Context(), "h1", dst, changeTimeout); err != nil {
			t.Fatalf("h1 -> %s: %v", dst, err)
		}
		if err := f.ping(t.Context(), "h1", dst, 3); err != nil {
			t.Errorf("h1 -> %s: %v", dst, err)
		}
	}

	// A border leaf's check covers its static routes too: none missing.
	eventually(t, changeTimeout, "leaf2's check without drift", func() error {
		out, err := f.lab.Exec(t.Context(), "leaf2", "evpnctl", "check")
		if err != nil || !strings.Contains(out, "No drift") {
			return fmt.Errorf("evpnctl check: %v:\n%s", err, out)
		}
		return nil
	})
	if _, err := tenants["leaf2"].Exec(t.Context(), "ip", "route", "add", "203.0.113.0/24", "via", "192.0.2.2", "proto", "242"); err != nil {
		t.Fatal(err)
	}
	eventually(t, changeTimeout, "a foreign evpnd-static route on leaf2 removed", func() error {
		out, err := tenants["leaf2"].Exec(t.Context(), "ip", "route", "show", "203.0.113.0/24")
		if err != nil || strings.TrimSpace(out) != "" {
			return fmt.Errorf("still there: %q (%v)", out, err)
		}
		return nil
	})

	// leaf2 stops: its routes are withdrawn, leaf1 converges on leaf3.
	start := time.Now()
	if err := f.lab.Stop("leaf2", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	checkDefaults(t, tenants["leaf1"], leaf1Backend, []string{"leaf3"}, vteps)
	t.Logf("leaf1's default routes on leaf3 alone %v after leaf2's evpnd was told to stop", time.Since(start).Round(time.Millisecond))
	for _, dst := range []string{extIPv4, extIPv6} {
		if err := f.pingUntil(t.Context(), "h1", dst, changeTimeout); err != nil {
			t.Fatalf("h1 -> %s after leaf2 stopped: %v", dst, err)
		}
		if err := f.ping(t.Context(), "h1", dst, 3); err != nil {
			t.Errorf("h1 -> %s after leaf2 stopped: %v", dst, err)
		}
	}
	out = f.exec("leaf1", "evpnctl", "show", "ip", "route", "vrf", "t1")
	if strings.Contains(out, "via 10.0.0.2") || !strings.Contains(out, "via 10.0.0.3") {
		t.Errorf("leaf1's evpnctl after leaf2 stopped:\n%s", out)
	}

	// leaf2 starts again: it adopts its uplink (already in the tenant
	// namespace) and static routes, and leaf1 is back on ECMP.
	start = time.Now()
	if err := f.lab.Start("leaf2"); err != nil {
		t.Fatal(err)
	}
	checkDefaults(t, tenants["leaf1"], leaf1Backend, []string{"leaf2", "leaf3"}, vteps)
	t.Logf("leaf1's default routes on both border leafs again %v after leaf2's evpnd started", time.Since(start).Round(time.Millisecond))
	for _, dst := range []string{extIPv4, extIPv6} {
		if err := f.ping(t.Context(), "h1", dst, 3); err != nil {
			t.Errorf("h1 -> %s after leaf2 restarted: %v", dst, err)
		}
	}
	for _, leaf := range []string{"leaf1", "leaf2", "leaf3"} {
		data, err := os.ReadFile(f.lab.LogPath(leaf))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "level=ERROR") || strings.Contains(line, "DATA RACE") || (strings.Contains(line, "level=WARN") && strings.Contains(line, "uplink")) {
				t.Errorf("%s logged: %s", leaf, line)
			}
		}
	}
}

// checkDefaults waits until ns (leaf1's tenant table) holds 0.0.0.0/0
// and ::/0 via exactly the VTEPs of borders over the L3VNI's SVI, marked
// evpnd's (proto 241); on the default backend, in the main table, with
// the last-resort metric.
func checkDefaults(t *testing.T, ns *netns.NS, backend string, borders []string, vteps map[string]string) {
	t.Helper()
	eventually(t, changeTimeout, fmt.Sprintf("leaf1's default routes via %v", borders), func() error {
		for _, fam := range []string{"-4", "-6"} {
			r, err := ns.Exec(t.Context(), "ip", fam, "route", "show", "default", "proto", "241")
			if err != nil {
				return err
			}
			r = strings.TrimSpace(r)
			if r == "" {
				return fmt.Errorf("no %s default route of evpnd", fam)
			}
			if backend == "default" && !strings.Contains(r, "metric 4294967295") {
				return fmt.Errorf("default backend: %s default route without the last-resort metric: %q", fam, r)
			}
			n := 0
			for _, lf := range []string{"leaf2", "leaf3"} {
				gw := vteps[lf]
				if fam == "-6" {
					gw = "::ffff:" + gw
				}
				has := strings.Contains(r, "via "+gw+" dev br4001")
				want := false
				for _, b := range borders {
					want = want || b == lf
				}
				if has != want {
					return fmt.Errorf("%s default route: next hop %s of %s present %v, want %v: %q", fam, gw, lf, has, want, r)
				}
				if has {
					n++
				}
			}
			if multi := strings.Count(r, "nexthop"); (n > 1) != (multi == n) {
				return fmt.Errorf("%s default route: want %d next hops: %q", fam, n, r)
			}
		}
		return nil
	})
}
