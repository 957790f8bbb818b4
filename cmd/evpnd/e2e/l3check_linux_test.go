package e2e

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/poll"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Drift repair (issue 10: "a deleted host route, neighbour or
// router-MAC entry is repaired within 50 ms"). The figure is measured and
// logged against drift50ms; the test fails only past driftBound, so that a
// loaded 2-core machine does not make it flake.
const (
	drift50ms  = 50 * time.Millisecond
	driftBound = time.Second
	driftPoll  = time.Millisecond
	driftTries = 3
)

// TestTenantVRFCheck: evpnctl check compares the VRFs' L3 state (host
// routes, router MACs, suppression neighbours) with the kernel too: with
// the lab converged it finds no drift and counts L3 entries. Then each of
// leaf2's L3 entries for h1 (behind leaf1) is deleted behind evpnd's back,
// driftTries times, and must be written again by the L3 watch: the host
// route (via leaf1's VTEP on br4001), the suppression neighbour on br100,
// the router-MAC neighbour of leaf1's VTEP on br4001 (IPv4 and the
// IPv4-mapped next hop of IPv6 routes), and the router MAC's FDB entries
// on vxlan4001 (the VXLAN entry to leaf1 and the bridge entry). The
// deletion goes through netlink and the repair is polled through netlink
// every millisecond; the times are logged against issue 10's 50 ms.
func TestTenantVRFCheck(t *testing.T) {
	f, tenants := deployL3(t, "netns")
	const host, hostMAC = "10.1.0.11", "02:00:00:00:01:11" // h1, behind leaf1
	const vtep1, rmac1 = "10.0.0.1", "02:ee:0a:00:00:01"   // leaf1
	f.waitPing("h1", "10.1.0.1")                           // (h1 speaks first: leaf1 learns it)
	f.waitPing("h1", "2001:db8:1::1")
	if err := f.pingUntil(t.Context(), "h4", host, changeTimeout); err != nil {
		t.Fatalf("routed h4 -> h1: %v", err)
	}
	check := func() string {
		out, _ := f.lab.Exec(t.Context(), "leaf2", "evpnctl", "check")
		return out
	}
	eventually(t, changeTimeout, "leaf2's check without drift, L3 compared", func() error {
		out := check()
		if !strings.Contains(out, "No drift") || !strings.Contains(out, "L3 entr") {
			return fmt.Errorf("evpnctl check:\n%s", out)
		}
		return nil
	})
	// The L3VNI names its VRF: its L3 state is checked, no L2 FDB.
	if out, err := f.lab.Exec(t.Context(), "leaf2", "evpnctl", "check", "vni", "4001"); err != nil ||
		!strings.Contains(out, "No drift") || !strings.Contains(out, "L3 entr") {
		t.Errorf("evpnctl check vni 4001: %v\n%s", err, out)
	}

	h, err := tenants["leaf2"].Handle()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	index := func(name string) int {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatalf("leaf2: %s: %v", name, err)
		}
		return l.Attrs().Index
	}
	br100, br4001, vx4001 := index("br100"), index("br4001"), index("vxlan4001")
	ip := net.ParseIP
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }

	// findNeigh returns leaf2's extern_learn entry (neighbour or FDB)
	// on link in family for ip and mac; self and master select the
	// VXLAN or bridge side of an FDB entry.
	findNeigh := func(link, family int, ipAddr net.IP, hw net.HardwareAddr, master bool) (*netlink.Neigh, error) {
		ns, err := h.NeighList(link, family)
		if err != nil {
			return nil, err
		}
		for i, n := range ns {
			if n.Flags&netlink.NTF_EXT_LEARNED == 0 || !slices.Equal(n.HardwareAddr, hw) {
				continue
			}
			if family == unix.AF_BRIDGE {
				if isMaster := n.Flags&netlink.NTF_SELF == 0; isMaster != master || (!master && !n.IP.Equal(ipAddr)) {
					continue
				}
			} else if !n.IP.Equal(ipAddr) {
				continue
			}
			return &ns[i], nil
		}
		return nil, nil
	}
	neighEntry := func(what string, link, family int, ipAddr net.IP, hw net.HardwareAddr, master bool) driftEntry {
		return driftEntry{
			what: what,
			present: func() (bool, error) {
				n, err := findNeigh(link, family, ipAddr, hw, master)
				return n != nil, err
			},
			del: func() error {
				n, err := findNeigh(link, family, ipAddr, hw, master)
				if err != nil || n == nil {
					return fmt.Errorf("not there to delete (%v)", err)
				}
				if family == unix.AF_INET6 && n.IP.To4() != nil {
					// The library would encode an IPv4-mapped address as
					// IPv4, which the kernel refuses for AF_INET6.
					return tenants["leaf2"].Do(func() error { return neighDel16(link, n.IP) })
				}
				if family == unix.AF_BRIDGE {
					// As "bridge fdb del": the side's flag, the MAC and,
					// for the VXLAN side, the remote.
					del := &netlink.Neigh{Family: unix.AF_BRIDGE, LinkIndex: link, HardwareAddr: n.HardwareAddr, Flags: netlink.NTF_MASTER}
					if !master {
						del.Flags, del.IP = netlink.NTF_SELF, n.IP
					}
					return h.NeighDel(del)
				}
				return h.NeighDel(n)
			},
		}
	}
	hostRoute := func() (*netlink.Route, error) {
		rs, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: unix.RT_TABLE_MAIN, Dst: &net.IPNet{IP: ip(host), Mask: net.CIDRMask(32, 32)}},
			netlink.RT_FILTER_TABLE|netlink.RT_FILTER_DST)
		if err != nil {
			return nil, err
		}
		for i, r := range rs {
			if r.Protocol == evpndRouteProtocol && r.LinkIndex == br4001 && r.Gw.Equal(ip(vtep1)) {
				return &rs[i], nil
			}
		}
		return nil, nil
	}
	entries := []driftEntry{
		{
			what: "host route " + host + "/32 via " + vtep1 + " dev br4001",
			present: func() (bool, error) {
				r, err := hostRoute()
				return r != nil, err
			},
			del: func() error {
				r, err := hostRoute()
				if err != nil || r == nil {
					return fmt.Errorf("not there to delete (%v)", err)
				}
				return h.RouteDel(r)
			},
		},
		neighEntry("suppression neighbour "+host+" on br100", br100, unix.AF_INET, ip(host), mac(hostMAC), false),
		neighEntry("router-MAC neighbour "+vtep1+" on br4001", br4001, unix.AF_INET, ip(vtep1), mac(rmac1), false),
		neighEntry("router-MAC neighbour ::ffff:"+vtep1+" on br4001", br4001, unix.AF_INET6, ip("::ffff:"+vtep1), mac(rmac1), false),
		neighEntry("router-MAC VXLAN FDB entry "+rmac1+" dst "+vtep1+" on vxlan4001", vx4001, unix.AF_BRIDGE, ip(vtep1), mac(rmac1), false),
		neighEntry("router-MAC bridge FDB entry "+rmac1+" on vxlan4001", vx4001, unix.AF_BRIDGE, nil, mac(rmac1), true),
	}
	eventually(t, changeTimeout, "leaf2's L3 entries for h1 and leaf1", func() error {
		for _, e := range entries {
			if ok, err := e.present(); err != nil || !ok {
				return fmt.Errorf("no %s (%v)", e.what, err)
			}
		}
		return nil
	})
	var worst time.Duration
	for _, e := range entries {
		var took []time.Duration
		early := 0
		for range driftTries {
			ok, err := e.present()
			if err != nil || !ok {
				t.Fatalf("leaf2: no %s before the deletion (%v); evpnctl check:\n%s", e.what, err, check())
			}
			if err := e.del(); err != nil {
				t.Fatalf("leaf2: delete the %s: %v", e.what, err)
			}
			deleted := time.Now()
			// (A pass already under way, woken by the previous repair's
			// own events, can put it back before the first look.)
			if ok, _ := e.present(); ok {
				early++
			}
			_, err = poll.Until(t.Context(), driftBound, driftPoll, func() error {
				if ok, err := e.present(); err != nil || !ok {
					return fmt.Errorf("not repaired (%v)", err)
				}
				return nil
			})
			d := time.Since(deleted)
			if err != nil {
				t.Fatalf("leaf2: the deleted %s: %v; evpnctl check:\n%s", e.what, err, check())
			}
			took = append(took, d)
			worst = max(worst, d)
		}
		slices.Sort(took)
		note := ""
		if took[len(took)-1] > drift50ms {
			note = fmt.Sprintf(" (over issue 10's %v)", drift50ms)
		}
		if early > 0 {
			note += fmt.Sprintf(" (%d back at the first look)", early)
		}
		t.Logf("leaf2: %s deleted %d times: repaired in %v%s", e.what, driftTries, roundAll(took), note)
	}
	t.Logf("every deleted L3 entry repaired, the slowest in %v (issue 10: %v; failure bound %v)", worst.Round(10*time.Microsecond), drift50ms, driftBound)
	// And the lab still routes over them.
	if err := f.ping(t.Context(), "h4", host, 3); err != nil {
		t.Errorf("routed h4 -> h1 after the repairs: %v", err)
	}
	eventually(t, changeTimeout, "leaf2's check without drift after the repairs", func() error {
		if out := check(); !strings.Contains(out, "No drift") {
			return fmt.Errorf("evpnctl check:\n%s", out)
		}
		return nil
	})
}

// neighDel16 deletes the IPv6 neighbour ip (16 bytes, IPv4-mapped ones
// included) on link, in the calling thread's namespace.
func neighDel16(link int, ip net.IP) error {
	req := nl.NewNetlinkRequest(unix.RTM_DELNEIGH, unix.NLM_F_ACK)
	req.AddData(&netlink.Ndmsg{Family: unix.AF_INET6, Index: uint32(link)})
	req.AddData(nl.NewRtAttr(unix.NDA_DST, ip.To16()))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// driftEntry is one kernel entry the drift test deletes and waits for.
type driftEntry struct {
	what    string
	present func() (bool, error)
	del     func() error
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Microsecond)
	}
	return out
}
