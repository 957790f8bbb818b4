package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The router MACs of frr-l3: frr1's is the MAC of its L3VNI SVI, evpnd's
// is derived from its VTEP.
const (
	frrRMAC   = "02:f0:0a:00:00:01"
	evpndRMAC = "02:ee:0a:00:00:02"
)

// TestFRRL3 runs symmetric IRB between an FRR 8.4 leaf and an evpnd leaf,
// both with L3VNI 4001 in the main table (FRR's vrf default, evpnd's
// default backend): hosts in different subnets behind the two leafs reach
// each other over IPv4 and IPv6; evpnd installs FRR's MAC+IP route for h1 (host route via
// frr1 over br4001, FRR's router MAC as that next hop's neighbour and in
// vxlan4001's FDB, suppression neighbour on br100; for IPv6 via frr1's
// IPv4-mapped address) and FRR's type-5 for
// h3's subnet; FRR's kernel has the same for evpnd's h2 and its subnet,
// and FRR's "show evpn rmac/next-hops vni 4001" show the evpnd leaf.
func TestFRRL3(t *testing.T) {
	f := deploy(t, "frr-l3.clab.yml")

	// Each host resolves its gateway at its own leaf, which so learns the
	// host's MAC and address and advertises a MAC+IP route for it.
	f.ping("h1", "10.1.0.1")
	f.ping("h2", "10.2.0.1")
	f.ping("h3", "172.16.1.1")
	f.ping("h1", "fd00:1::1")
	f.ping("h2", "fd00:2::1")

	// evpnd installs what FRR advertises.
	f.waitKernel("leaf2", "FRR's routes installed", [][]string{
		{"ip", "route", "show", "10.1.0.11/32"}, {"via 10.0.0.1 dev br4001"},
		{"ip", "route", "show", "172.16.1.0/24"}, {"via 10.0.0.1 dev br4001"},
		{"ip", "neigh", "show", "10.0.0.1", "dev", "br4001"}, {"lladdr " + frrRMAC},
		{"bridge", "fdb", "show", "dev", "vxlan4001"}, {frrRMAC + " dst 10.0.0.1 self extern_learn"},
		{"ip", "neigh", "show", "10.1.0.11", "dev", "br100"}, {"lladdr 02:00:00:00:01:11", "extern_learn"},
		// IPv6 goes via the VTEP's IPv4-mapped address, as zebra does it.
		{"ip", "-6", "route", "show", "fd00:1::11/128"}, {"via ::ffff:10.0.0.1 dev br4001"},
		{"ip", "-6", "neigh", "show", "::ffff:10.0.0.1", "dev", "br4001"}, {"lladdr " + frrRMAC},
		{"ip", "-6", "neigh", "show", "fd00:1::11", "dev", "br100"}, {"lladdr 02:00:00:00:01:11", "extern_learn"},
	})
	f.waitFDB("leaf2", "vxlan100", "h1 at frr1", func(es []fdbEntry) bool { return remoteMAC(es, "02:00:00:00:01:11", frrVTEP) })
	// ... and FRR what evpnd advertises.
	f.waitKernel("frr1", "evpnd's routes installed", [][]string{
		{"ip", "route", "show", "10.2.0.12/32"}, {"via 10.0.0.2 dev br4001"},
		{"ip", "route", "show", "10.2.0.0/24"}, {"via 10.0.0.2 dev br4001"},
		{"ip", "neigh", "show", "10.0.0.2", "dev", "br4001"}, {"lladdr " + evpndRMAC},
		{"bridge", "fdb", "show", "dev", "vxlan4001"}, {evpndRMAC + " dst 10.0.0.2 self extern_learn"},
		{"ip", "-6", "route", "show", "fd00:2::12/128"}, {"via ::ffff:10.0.0.2 dev br4001"},
		{"ip", "-6", "route", "show", "fd00:2::/64"}, {"via ::ffff:10.0.0.2 dev br4001"},
		{"ip", "-6", "neigh", "show", "::ffff:10.0.0.2", "dev", "br4001"}, {"lladdr " + evpndRMAC},
	})

	// Routed both ways, through the L3VNI, over IPv4 and IPv6.
	for _, p := range [][2]string{{"h1", "10.2.0.12"}, {"h2", "10.1.0.11"}, {"h2", "172.16.1.13"}, {"h3", "10.2.0.12"}, {"h1", "fd00:2::12"}, {"h2", "fd00:1::11"}} {
		f.ping(p[0], p[1])
	}

	// FRR's zebra lists the evpnd leaf as router MAC and next hop of 4001.
	waitFor(t, 15*time.Second, "frr1: evpnd's router MAC and next hop in VNI 4001", func() (bool, string) {
		var rmacs, nhs map[string]json.RawMessage
		fn := f.frr["frr1"]
		if err := fn.vtyJSON("show evpn rmac vni 4001 json", &rmacs); err != nil {
			return false, err.Error()
		}
		if err := fn.vtyJSON("show evpn next-hops vni 4001 json", &nhs); err != nil {
			return false, err.Error()
		}
		if err := hasL3Entry(rmacs, evpndRMAC, "10.0.0.2"); err != nil {
			return false, "rmac: " + err.Error()
		}
		if err := hasL3Entry(nhs, "10.0.0.2", evpndRMAC); err != nil {
			return false, "next-hops: " + err.Error()
		}
		return true, ""
	})

	// h1's ARP entry goes on frr1: FRR withdraws its MAC+IP route and
	// evpnd removes the host route and the suppression neighbour, but
	// keeps FRR's router MAC, which the type-5 route still uses. When h1
	// speaks again, both come back.
	f.exec("frr1", "ip", "neigh", "del", "10.1.0.11", "dev", "br100")
	f.waitKernel("leaf2", "h1's host route and neighbour removed, router MAC kept", [][]string{
		{"ip", "route", "show", "172.16.1.0/24"}, {"via 10.0.0.1 dev br4001"},
		{"ip", "neigh", "show", "10.0.0.1", "dev", "br4001"}, {"lladdr " + frrRMAC},
		{"ip", "route", "show", "table", "all", "10.1.0.11/32"}, {"!"},
		{"ip", "neigh", "show", "10.1.0.11", "dev", "br100"}, {"!"},
	})
	f.ping("h1", "10.1.0.1")
	f.waitKernel("leaf2", "h1's host route back", [][]string{
		{"ip", "route", "show", "10.1.0.11/32"}, {"via 10.0.0.1 dev br4001"},
		{"ip", "neigh", "show", "10.1.0.11", "dev", "br100"}, {"lladdr 02:00:00:00:01:11", "extern_learn"},
	})
	f.ping("h2", "10.1.0.11")

	f.logShow("frr1", "show evpn rmac vni 4001", "show evpn next-hops vni 4001", "show evpn vni 4001", "show ip route", "show bgp l2vpn evpn")
	t.Logf("leaf2$ evpnctl show evpn rmac vni 4001\n%s", f.exec("leaf2", "evpnctl", "show", "evpn", "rmac", "vni", "4001"))
	t.Logf("leaf2$ evpnctl show ip route vrf t1\n%s", f.exec("leaf2", "evpnctl", "show", "ip", "route", "vrf", "t1"))
}

// hasL3Entry reports whether FRR's keyed JSON (show evpn rmac/next-hops
// vni L json: one object per key, besides counters) has key with a field
// whose value is want.
func hasL3Entry(m map[string]json.RawMessage, key, want string) error {
	raw, ok := m[key]
	if !ok {
		return fmt.Errorf("no entry %s in %v", key, keys(m))
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		return fmt.Errorf("entry %s: %w", key, err)
	}
	for _, v := range fields {
		if s, ok := v.(string); ok && s == want {
			return nil
		}
	}
	return fmt.Errorf("entry %s = %s lacks %s", key, raw, want)
}

func keys(m map[string]json.RawMessage) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// waitKernel waits until every command of pairs (argv, then the strings
// one line of its output must contain, or just "!" for no output at all)
// shows what it must in node.
func (f *fabric) waitKernel(node, what string, pairs [][]string) {
	f.t.Helper()
	waitFor(f.t, 20*time.Second, node+": "+what, func() (bool, string) {
		for i := 0; i+1 < len(pairs); i += 2 {
			out, err := f.lab.Exec(context.Background(), node, pairs[i]...)
			if err != nil {
				return false, err.Error()
			}
			if want := pairs[i+1]; len(want) == 1 && want[0] == "!" {
				if strings.TrimSpace(out) != "" {
					return false, fmt.Sprintf("%s: want nothing, have:\n%s", strings.Join(pairs[i], " "), out)
				}
				continue
			}
			if !lineWith(out, pairs[i+1]) {
				return false, fmt.Sprintf("%s: no line with %q:\n%s", strings.Join(pairs[i], " "), pairs[i+1], out)
			}
		}
		return true, ""
	})
}

// lineWith reports whether one line of out contains every one of subs.
func lineWith(out string, subs []string) bool {
	for _, line := range strings.Split(out, "\n") {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			return true
		}
	}
	return false
}
