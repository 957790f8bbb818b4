package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestTenantVRFIPv6: the l3 lab's L2VNIs carry IPv6 anycast gateways
// (2001:db8:1::1/64 and 2001:db8:2::1/64) beside their IPv4 ones. Hosts
// reach their gateway and each other over IPv6 in the same subnet across
// the leafs (L2 over the member VNIs) and between the subnets across the
// leafs (symmetric IRB through the L3VNI), with each leaf holding an IPv6
// host route for the other leaf's hosts on br4001.
func TestTenantVRFIPv6(t *testing.T) {
	t.Run("netns", func(t *testing.T) { tenantVRFIPv6(t, "netns") })
	t.Run("default", func(t *testing.T) { tenantVRFIPv6(t, "default") })
}

func tenantVRFIPv6(t *testing.T, backend string) {
	f, tenants := deployL3(t, backend)
	for host, gw := range map[string]string{"h1": "2001:db8:1::1", "h2": "2001:db8:1::1", "h3": "2001:db8:2::1", "h4": "2001:db8:2::1"} {
		f.waitPing(host, gw)
		if out := f.exec(host, "ip", "-6", "neigh", "show", gw); !strings.Contains(out, "lladdr "+gatewayMAC) {
			t.Errorf("%s resolved its gateway %s as %q, want MAC %s", host, gw, strings.TrimSpace(out), gatewayMAC)
		}
	}
	// Same subnet, across the leafs.
	for _, p := range [][2]string{{"h1", "2001:db8:1::12"}, {"h2", "2001:db8:1::11"}, {"h3", "2001:db8:2::14"}, {"h4", "2001:db8:2::13"}} {
		f.waitPing(p[0], p[1])
		if err := f.ping(t.Context(), p[0], p[1], 3); err != nil {
			t.Errorf("%s -> %s: %v", p[0], p[1], err)
		}
	}
	// Different subnets, across the leafs: routed.
	for _, p := range [][2]string{{"h1", "2001:db8:2::14"}, {"h4", "2001:db8:1::11"}, {"h3", "2001:db8:1::12"}, {"h2", "2001:db8:2::13"}} {
		if err := f.pingUntil(t.Context(), p[0], p[1], changeTimeout); err != nil {
			t.Errorf("routed %s -> %s: %v", p[0], p[1], err)
			continue
		}
		if err := f.ping(t.Context(), p[0], p[1], 3); err != nil {
			t.Errorf("routed %s -> %s: %v", p[0], p[1], err)
		}
	}
	eventually(t, changeTimeout, "IPv6 host routes", func() error {
		for leaf, ips := range map[string][]string{"leaf1": {"2001:db8:1::12", "2001:db8:2::14"}, "leaf2": {"2001:db8:1::11", "2001:db8:2::13"}} {
			for _, ip := range ips {
				r, err := tenants[leaf].Exec(t.Context(), "ip", "-6", "route", "show", ip+"/128")
				if err != nil {
					return err
				}
				if !strings.Contains(r, "dev br4001") {
					return fmt.Errorf("%s: no IPv6 host route %s on br4001: %q", leaf, ip, r)
				}
			}
		}
		return nil
	})
}
