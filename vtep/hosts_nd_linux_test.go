package vtep

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// A host that talks to its anycast gateway over IPv4 (ARP) and IPv6 (ND)
// becomes two local MAC+IP bindings, never the gateway's own addresses or
// the host's link-local one; a neighbour the kernel finds FAILED (the
// host stopped answering for its address) is withdrawn by the kernel's
// own probing, not by an admin delete.
func TestWatchHostsNDAndFailed(t *testing.T) {
	u, h := testNS(t, "l3nd")
	sh(t, u, "ip", "addr", "add", "10.0.0.1/32", "dev", "lo")
	host, hostMAC := hostOn(t, u, "acc0", "10.1.0.10/24")
	sh(t, host, "ip", "-6", "addr", "add", "2001:db8:1::10/64", "dev", "eth0", "nodad")
	m := NewManager(h, nsHandle(t, u), testLog(t))
	v := VRF{Name: "nd", Backend: BackendDefault, L3: l3Spec(4001), RouterMAC: rmac,
		Members: []SVI{member(100, "acc0", "10.1.0.1/24", "2001:db8:1::1/64")}}
	if err := m.EnsureVRF(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	// Quick unicast probing on the SVI, so that an unanswered neighbour
	// turns FAILED within about a second (defaults: 5 s delay, 3 probes 1 s
	// apart).
	for _, kv := range []string{"delay_first_probe_time=1", "ucast_solicit=1", "mcast_solicit=1", "retrans_time_ms=100"} {
		sh(t, u, "sysctl", "-qw", "net.ipv4.neigh.br100."+kv)
	}

	events := make(chan HostEvent, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- WatchHosts(ctx, nsHandle(t, u), map[string]uint32{"br100": 100},
			map[uint32][]netip.Addr{100: {netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("2001:db8:1::1")}},
			func(e HostEvent) { events <- e })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("WatchHosts: %v", err)
		}
	})
	next := func(what string) HostEvent {
		t.Helper()
		select {
		case e := <-events:
			return e
		case <-time.After(15 * time.Second):
			t.Fatalf("no host event within 15s: %s\n%s", what, sh(t, u, "ip", "neigh", "show", "dev", "br100"))
		}
		return HostEvent{}
	}

	pingGateway(t, host, "10.1.0.1")
	pingGateway(t, host, "2001:db8:1::1")
	v4, v6 := netip.MustParseAddr("10.1.0.10"), netip.MustParseAddr("2001:db8:1::10")
	seen := map[netip.Addr]bool{}
	for len(seen) < 2 {
		e := next("the host's ARP and ND bindings")
		if e.Removed || (e.Key.IP != v4 && e.Key.IP != v6) || e.Key.VNI != 100 || e.MAC.String() != hostMAC {
			t.Fatalf("event %+v, want %s and %s learned at %s on VNI 100", e, v4, v6, hostMAC)
		}
		seen[e.Key.IP] = true
	}

	// The host gives up its IPv4 address: the SVI's next resolution of it
	// gets no answer, and the kernel marks the neighbour FAILED.
	sh(t, host, "ip", "addr", "del", "10.1.0.10/24", "dev", "eth0")
	sh(t, u, "ip", "neigh", "change", "10.1.0.10", "lladdr", hostMAC, "dev", "br100", "nud", "stale")
	// Traffic to it starts the probing (the ping itself fails).
	_, _ = u.Exec(context.Background(), "ping", "-c1", "-W1", "10.1.0.10")
	e := next("the FAILED IPv4 neighbour")
	if !e.Removed || e.Key.IP != v4 {
		t.Fatalf("event %+v, want %s withdrawn", e, v4)
	}
	// Withdrawn for FAILED, not because the entry went away.
	if out := sh(t, u, "ip", "neigh", "show", "10.1.0.10", "dev", "br100"); !strings.Contains(out, "FAILED") {
		t.Errorf("neighbour after the withdrawal: %q, want FAILED", out)
	}

	// The IPv6 binding is unaffected until its neighbour is deleted.
	sh(t, u, "ip", "-6", "neigh", "del", "2001:db8:1::10", "dev", "br100")
	if e := next("the deleted IPv6 neighbour"); !e.Removed || e.Key.IP != v6 {
		t.Fatalf("event %+v, want %s withdrawn", e, v6)
	}
}
