package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TestTenantVRFLocalHosts checks the life of a local host's type-2 routes
// through the daemon's wiring (vtep.WatchHosts on the SVI, the L3 model,
// BGP), as leaf2 receives them from leaf1 (tenant VRF t1, default
// backend): h1's ARP binding on leaf1's SVI gives a MAC+IP route (the
// RTs of VNI 100 and L3VNI 4001, leaf1's router MAC) next to its MAC-only
// route, as FRR sends them; the neighbour turning STALE keeps it; the
// neighbour deleted, or turned FAILED by the kernel's own probing,
// withdraws the MAC+IP route alone, and the MAC-only route stays while
// the bridge holds the MAC.
func TestTenantVRFLocalHosts(t *testing.T) {
	const (
		h1MAC   = "02:00:00:00:01:11"
		macOnly = "[2]:[0]:[48]:[" + h1MAC + "]\n"
		macIP   = "[2]:[0]:[48]:[" + h1MAC + "]:[32]:[10.1.0.11]"
		// A second address of h1's MAC: a neighbour is advertised only
		// while its MAC is local.
		marker = "[2]:[0]:[48]:[" + h1MAC + "]:[32]:[10.1.0.77]"
	)
	f, tenants := deployL3(t, "default")
	leaf1 := tenants["leaf1"]
	routes := func() string {
		return f.exec("leaf2", "evpnctl", "show", "evpn", "route", "type", "2")
	}
	// want reports whether leaf2's BGP table holds (or, with has false,
	// lacks) each of the NLRIs.
	want := func(has bool, nlris ...string) func() error {
		return func() error {
			out := routes()
			for _, n := range nlris {
				if strings.Contains(out, n) != has {
					return fmt.Errorf("leaf2's table has %s: %v, want %v:\n%s", n, !has, has, out)
				}
			}
			return nil
		}
	}

	f.waitPing("h1", "10.1.0.1")
	eventually(t, changeTimeout, "h1's MAC-only and MAC+IP routes at leaf2", want(true, macOnly, macIP))

	// The VRF's type-5 routes (its connected subnets), leaf1's and its
	// own, are listed under the L3VNI, as vtysh does.
	eventually(t, changeTimeout, "type-5 routes under L3VNI 4001 at leaf2", func() error {
		out := f.exec("leaf2", "evpnctl", "show", "evpn", "route", "type", "5", "vni", "4001")
		for _, want := range []string{"Route Distinguisher: 10.0.0.1:", "Route Distinguisher: 10.0.0.2:", "[5]:[0]:[24]:[10.1.0.0]", "[5]:[0]:[24]:[10.2.0.0]", "*>Lu"} {
			if !strings.Contains(out, want) {
				return fmt.Errorf("evpnctl show evpn route type 5 vni 4001 lacks %q:\n%s", want, out)
			}
		}
		return nil
	})
	out := routes()
	i := strings.Index(out, macIP)
	if attrs := out[i:min(len(out), i+400)]; !strings.Contains(attrs, "10.0.0.1") || !strings.Contains(attrs, "RT:65000:100") ||
		!strings.Contains(attrs, "RT:65000:4001") || !strings.Contains(attrs, "Rmac:02:ee:0a:00:00:01") {
		t.Errorf("h1's MAC+IP route lacks leaf1's next hop, the RTs of VNI 100 and L3VNI 4001 or leaf1's router MAC:\n%s", attrs)
	}

	// STALE keeps it. The marker, a neighbour added after the change,
	// shows that leaf1 has handled the change when it reaches leaf2.
	tenantExec(t, leaf1, "ip", "neigh", "change", "10.1.0.11", "lladdr", h1MAC, "dev", "br100", "nud", "stale")
	tenantExec(t, leaf1, "ip", "neigh", "replace", "10.1.0.77", "lladdr", h1MAC, "dev", "br100", "nud", "reachable")
	eventually(t, changeTimeout, "the marker at leaf2", want(true, marker))
	if err := want(true, macOnly, macIP)(); err != nil {
		t.Errorf("after h1's neighbour turned STALE: %v", err)
	}

	// Deleted: the MAC+IP route goes, the MAC-only route stays.
	tenantExec(t, leaf1, "ip", "neigh", "del", "10.1.0.11", "dev", "br100")
	eventually(t, changeTimeout, "h1's MAC+IP route withdrawn after its neighbour was deleted", want(false, macIP))
	if err := want(true, macOnly)(); err != nil {
		t.Errorf("after h1's neighbour was deleted: %v", err)
	}

	// Learned again, then FAILED by the kernel's probing: h1 gives up its
	// address, so leaf1's next resolution of it gets no answer. Quick
	// unicast probing on the SVI makes that take about a second.
	f.waitPing("h1", "10.1.0.1")
	eventually(t, changeTimeout, "h1's MAC+IP route back", want(true, macOnly, macIP))
	for _, kv := range []string{"delay_first_probe_time=1", "ucast_solicit=1", "mcast_solicit=1", "retrans_time_ms=100"} {
		tenantExec(t, leaf1, "sysctl", "-qw", "net.ipv4.neigh.br100."+kv)
	}
	f.exec("h1", "ip", "addr", "del", "10.1.0.11/24", "dev", "eth1")
	states := watchNeighStates(t, leaf1, "br100", netip.MustParseAddr("10.1.0.11"))
	tenantExec(t, leaf1, "ip", "neigh", "change", "10.1.0.11", "lladdr", h1MAC, "dev", "br100", "nud", "stale")
	_, _ = leaf1.Exec(context.Background(), "ping", "-c1", "-W1", "10.1.0.11") // starts the probing; fails
	eventually(t, changeTimeout, "h1's MAC+IP route withdrawn after its neighbour FAILED", want(false, macIP))
	// The kernel may garbage-collect the FAILED entry soon after, so the
	// notifications tell: it turned FAILED, and was not deleted before.
	seq := states()
	t.Logf("leaf1's neighbour for h1 went through %v", seq)
	if !slices.Contains(seq, "FAILED") || slices.Index(seq, "deleted") >= 0 && slices.Index(seq, "deleted") < slices.Index(seq, "FAILED") {
		t.Errorf("leaf1's neighbour for h1 went through %v, want FAILED (withdrawn for that, not for a delete)", seq)
	}
	if err := want(true, macOnly)(); err != nil {
		t.Errorf("after h1's neighbour FAILED: %v", err)
	}
}

// watchNeighStates records the states that ip's neighbour entry on dev in
// namespace ns goes through ("deleted" for a delete) from now until the
// test ends; the returned function reads the record so far.
func watchNeighStates(t *testing.T, ns *netns.NS, dev string, ip netip.Addr) func() []string {
	t.Helper()
	h, err := vnetns.GetFromPath(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan netlink.NeighUpdate, 256)
	done := make(chan struct{})
	var mu sync.Mutex
	var seq []string
	var werr error
	if err := netlink.NeighSubscribeWithOptions(ch, done, netlink.NeighSubscribeOptions{Namespace: &h,
		ErrorCallback: func(err error) {
			if !harmlessNetlinkReport(err) {
				mu.Lock()
				werr = err
				mu.Unlock()
			}
		}}); err != nil {
		h.Close()
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for u := range ch {
			a, ok := netip.AddrFromSlice(u.IP)
			if !ok || a.Unmap() != ip {
				continue
			}
			// The address is unique in ns: dev is not checked.
			st := "deleted"
			switch {
			case u.Type != unix.RTM_NEWNEIGH:
			case u.State&netlink.NUD_FAILED != 0:
				st = "FAILED"
			default:
				st = fmt.Sprintf("state %#x", u.State)
			}
			mu.Lock()
			seq = append(seq, st)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		close(done)
		<-stopped
		h.Close()
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		if werr != nil {
			t.Errorf("neighbour watch of %s on %s: %v", ip, dev, werr)
		}
		return slices.Clone(seq)
	}
}
