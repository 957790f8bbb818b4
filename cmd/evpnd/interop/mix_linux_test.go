package interop

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// Hosts of frr-mix (see testdata/frr-mix.clab.yml).
const (
	mixVMMAC   = "02:00:00:00:02:20"
	mixVMIP    = "10.2.0.20"
	mixVMIP6   = "fd00:2::20"
	mixH1MAC   = "02:00:00:00:01:11"
	mixH2MAC   = "02:00:00:00:01:12"
	mixH3MAC   = "02:00:00:00:02:13"
	mixH4MAC   = "02:00:00:00:02:14"
	mixFRRVTEP = "10.0.0.1"
	mixEVPNVTP = "10.0.0.2"
)

// TestFRRMixedFabric is a fabric as users mix it: an FRR 8.4 leaf and an
// evpnd leaf routing one tenant (L3VNI 4001 in the main table, the same
// anycast gateways on VNIs 100 and 200) behind an evpnd spine that
// reflects their routes (testdata/frr-mix.clab.yml).
//
//   - routing: bridged pings within each subnet across the vendors,
//     routed pings between the subnets both ways (IPv4 and IPv6); each
//     kernel holds the other side's host routes via its VTEP over
//     br4001, its router MAC as that VTEP's neighbour and in vxlan4001's
//     FDB, and the suppression neighbours on the SVIs; FRR's zebra lists
//     evpnd's router MAC, next hop and hosts (show evpn rmac/next-hops vni
//     4001, show evpn arp-cache vni V) and evpnd FRR's (evpnctl show evpn
//     rmac vni 4001).
//   - type5: FRR's type-5 routes for a connected subnet and a static route
//     (IPv4 and IPv6) are installed by evpnd; evpnd's for its uplink's
//     subnets and its advertise-prefixes by FRR, whose BGP table shows
//     them with evpnd's VTEP, the L3VNI's RT and evpnd's router MAC; hosts
//     behind them reach each other through both.
//   - vm-move: a VM moves from the FRR leaf to the evpnd leaf and back
//     under routed and bridged ping from both leafs, its old port still
//     up: the new leaf wins by MAC mobility sequence number (1, then 2, in
//     FRR's BGP table and zebra and in evpnctl's arp-cache), traffic
//     resumes (the outage is logged per move and stream), and neither
//     side keeps a stale host route, neighbour, FDB entry or router MAC
//     for it (but FRR 8.4's VXLAN self entry, see moveVM).
func TestFRRMixedFabric(t *testing.T) {
	f := deploy(t, "frr-mix.clab.yml")

	// Each host resolves its gateway at its own leaf, which so learns the
	// host and advertises a MAC+IP route for it.
	for _, p := range [][2]string{
		{"h1", "10.1.0.1"}, {"h2", "10.1.0.1"}, {"h3", "10.2.0.1"}, {"h4", "10.2.0.1"}, {"vm", "10.2.0.1"},
		{"h1", "fd00:1::1"}, {"h2", "fd00:1::1"}, {"h3", "fd00:2::1"}, {"h4", "fd00:2::1"}, {"vm", "fd00:2::1"},
	} {
		f.ping(p[0], p[1])
	}

	f.run("routing", func(f *fabric) {
		// Bridged within a subnet, across the vendors.
		for _, p := range [][2]string{
			{"h1", "10.1.0.12"}, {"h2", "10.1.0.11"}, {"h3", "10.2.0.14"}, {"h4", "10.2.0.13"}, {"h4", mixVMIP},
			{"h1", "fd00:1::12"}, {"h2", "fd00:1::11"}, {"h3", "fd00:2::14"}, {"h4", "fd00:2::13"}, {"h4", mixVMIP6},
		} {
			f.ping(p[0], p[1])
		}
		// Routed between the subnets, both ways.
		for _, p := range [][2]string{
			{"h1", "10.2.0.14"}, {"h4", "10.1.0.11"}, {"h2", "10.2.0.13"}, {"h3", "10.1.0.12"}, {"h2", mixVMIP},
			{"h1", "fd00:2::14"}, {"h4", "fd00:1::11"}, {"h2", "fd00:2::13"}, {"h3", "fd00:1::12"}, {"h2", mixVMIP6},
		} {
			f.ping(p[0], p[1])
		}
		f.waitKernel("leaf2", "FRR's hosts and router MAC installed", [][]string{
			{"ip", "route", "show", "10.1.0.11/32"}, {"via 10.0.0.1 dev br4001"},
			{"ip", "route", "show", "10.2.0.13/32"}, {"via 10.0.0.1 dev br4001"},
			{"ip", "route", "show", mixVMIP + "/32"}, {"via 10.0.0.1 dev br4001"},
			{"ip", "-6", "route", "show", "fd00:1::11/128"}, {"via ::ffff:10.0.0.1 dev br4001"},
			{"ip", "-6", "route", "show", "fd00:2::13/128"}, {"via ::ffff:10.0.0.1 dev br4001"},
			{"ip", "neigh", "show", "10.0.0.1", "dev", "br4001"}, {"lladdr " + frrRMAC},
			{"ip", "-6", "neigh", "show", "::ffff:10.0.0.1", "dev", "br4001"}, {"lladdr " + frrRMAC},
			{"bridge", "fdb", "show", "dev", "vxlan4001"}, {frrRMAC + " dst 10.0.0.1 self extern_learn"},
			{"ip", "neigh", "show", "10.1.0.11", "dev", "br100"}, {"lladdr " + mixH1MAC, "extern_learn"},
			{"ip", "neigh", "show", "10.2.0.13", "dev", "br200"}, {"lladdr " + mixH3MAC, "extern_learn"},
			{"ip", "neigh", "show", mixVMIP, "dev", "br200"}, {"lladdr " + mixVMMAC, "extern_learn"},
			{"ip", "-6", "neigh", "show", "fd00:1::11", "dev", "br100"}, {"lladdr " + mixH1MAC, "extern_learn"},
			{"ip", "-6", "neigh", "show", "fd00:2::13", "dev", "br200"}, {"lladdr " + mixH3MAC, "extern_learn"},
			// Only FRR's VTEP is a router MAC next hop.
			{"bridge", "fdb", "show", "dev", "vxlan4001"}, {"dst 10.0.0.1"},
		})
		f.waitKernel("frr1", "evpnd's hosts and router MAC installed", [][]string{
			{"ip", "route", "show", "10.1.0.12/32"}, {"via 10.0.0.2 dev br4001"},
			{"ip", "route", "show", "10.2.0.14/32"}, {"via 10.0.0.2 dev br4001"},
			{"ip", "-6", "route", "show", "fd00:1::12/128"}, {"via ::ffff:10.0.0.2 dev br4001"},
			{"ip", "-6", "route", "show", "fd00:2::14/128"}, {"via ::ffff:10.0.0.2 dev br4001"},
			{"ip", "neigh", "show", "10.0.0.2", "dev", "br4001"}, {"lladdr " + evpndRMAC},
			{"ip", "-6", "neigh", "show", "::ffff:10.0.0.2", "dev", "br4001"}, {"lladdr " + evpndRMAC},
			{"bridge", "fdb", "show", "dev", "vxlan4001"}, {evpndRMAC + " dst 10.0.0.2 self extern_learn"},
			{"ip", "neigh", "show", "10.1.0.12", "dev", "br100"}, {"lladdr " + mixH2MAC, "extern_learn"},
			{"ip", "neigh", "show", "10.2.0.14", "dev", "br200"}, {"lladdr " + mixH4MAC, "extern_learn"},
			{"ip", "-6", "neigh", "show", "fd00:1::12", "dev", "br100"}, {"lladdr " + mixH2MAC, "extern_learn"},
			{"ip", "-6", "neigh", "show", "fd00:2::14", "dev", "br200"}, {"lladdr " + mixH4MAC, "extern_learn"},
		})
		f.waitKernel("leaf2", "one router MAC only, FRR's", [][]string{
			{"ip", "neigh", "show", "dev", "br4001", "nud", "all"}, {"lladdr " + frrRMAC},
		})
		if out := f.exec("leaf2", "bridge", "fdb", "show", "dev", "vxlan4001"); strings.Count(out, " dst ") != 1 {
			f.t.Errorf("leaf2: vxlan4001 holds other router MACs than FRR's:\n%s", out)
		}
		// FRR's zebra: evpnd's router MAC, next hop and hosts.
		f.waitZebra("frr1", "evpnd's router MAC, next hop and hosts", map[string][2]string{
			"show evpn rmac vni 4001 json":      {evpndRMAC, mixEVPNVTP},
			"show evpn next-hops vni 4001 json": {mixEVPNVTP, evpndRMAC},
			"show evpn arp-cache vni 100 json":  {"10.1.0.12", mixEVPNVTP},
			"show evpn arp-cache vni 200 json":  {"10.2.0.14", mixEVPNVTP},
		})
		f.waitZebra("frr1", "evpnd's IPv6 hosts", map[string][2]string{
			"show evpn arp-cache vni 100 json": {"fd00:1::12", mixH2MAC},
			"show evpn arp-cache vni 200 json": {"fd00:2::14", mixH4MAC},
		})
		// evpnd: FRR's hosts remote at its VTEP, its own local.
		waitFor(f.t, 15*time.Second, "leaf2: evpnctl show evpn arp-cache", func() (bool, string) {
			es, out, err := f.arpCache("leaf2")
			if err != nil {
				return false, err.Error()
			}
			for _, w := range []struct {
				ip, mac string
				local   bool
			}{
				{"10.1.0.11", mixH1MAC, false}, {"fd00:1::11", mixH1MAC, false}, {"10.2.0.13", mixH3MAC, false},
				{"fd00:2::13", mixH3MAC, false}, {mixVMIP, mixVMMAC, false}, {mixVMIP6, mixVMMAC, false},
				{"10.1.0.12", mixH2MAC, true}, {"fd00:1::12", mixH2MAC, true}, {"10.2.0.14", mixH4MAC, true}, {"fd00:2::14", mixH4MAC, true},
			} {
				if !slices.ContainsFunc(es, func(e *evpndv1.ARPEntry) bool {
					return e.GetIp() == w.ip && e.GetMac() == w.mac && e.GetLocal() == w.local && (w.local || e.GetVtep() == mixFRRVTEP)
				}) {
					return false, fmt.Sprintf("no entry %s %s local=%v:\n%s", w.ip, w.mac, w.local, out)
				}
			}
			return true, ""
		})
		// evpnd: FRR's router MAC.
		waitFor(f.t, 15*time.Second, "leaf2: evpnctl show evpn rmac vni 4001 lists FRR's", func() (bool, string) {
			out, err := f.lab.Exec(context.Background(), "leaf2", "evpnctl", "show", "evpn", "rmac", "vni", "4001")
			return err == nil && lineWith(out, []string{frrRMAC, mixFRRVTEP}) && !strings.Contains(out, evpndRMAC), out
		})
		f.logShow("frr1", "show evpn rmac vni 4001", "show evpn next-hops vni 4001", "show evpn arp-cache vni 100", "show evpn arp-cache vni 200")
		f.t.Logf("leaf2$ evpnctl show evpn rmac vni 4001\n%s", f.exec("leaf2", "evpnctl", "show", "evpn", "rmac", "vni", "4001"))
		f.t.Logf("leaf2$ evpnctl show evpn arp-cache vni 200\n%s", f.exec("leaf2", "evpnctl", "show", "evpn", "arp-cache", "vni", "200"))
	})

	f.run("type5", func(f *fabric) {
		f.waitKernel("leaf2", "FRR's type-5 routes installed", [][]string{
			{"ip", "route", "show", "172.16.1.0/24"}, {"via 10.0.0.1 dev br4001"},
			{"ip", "route", "show", "198.51.100.0/24"}, {"via 10.0.0.1 dev br4001"},
			{"ip", "-6", "route", "show", "fd00:16::/64"}, {"via ::ffff:10.0.0.1 dev br4001"},
			{"ip", "-6", "route", "show", "2001:db8:16::/64"}, {"via ::ffff:10.0.0.1 dev br4001"},
		})
		f.waitKernel("frr1", "evpnd's type-5 routes installed", [][]string{
			{"ip", "route", "show", "192.0.2.0/24"}, {"via 10.0.0.2 dev br4001"},
			{"ip", "route", "show", "203.0.113.0/24"}, {"via 10.0.0.2 dev br4001"},
			{"ip", "-6", "route", "show", "2001:db8:6::/64"}, {"via ::ffff:10.0.0.2 dev br4001"},
			{"ip", "-6", "route", "show", "2001:db8:7::/64"}, {"via ::ffff:10.0.0.2 dev br4001"},
		})
		for _, p := range [][2]string{
			// Tenant hosts to the prefixes behind the other vendor's leaf.
			{"h2", "172.16.1.15"}, {"h4", "198.51.100.1"}, {"h2", "fd00:16::15"},
			{"h1", "192.0.2.6"}, {"h3", "203.0.113.1"}, {"h1", "2001:db8:6::6"}, {"h3", "2001:db8:7::1"},
			// Type-5 to type-5: behind FRR to behind evpnd.
			{"h5", "203.0.113.1"}, {"h6", "198.51.100.1"}, {"h5", "2001:db8:7::1"}, {"h6", "2001:db8:16::1"},
			{"h2", "2001:db8:16::1"},
		} {
			f.ping(p[0], p[1])
		}
		// FRR's BGP table holds evpnd's type-5 routes as RFC 9136 has
		// them: evpnd's VTEP as next hop, the L3VNI's RT, the Router's
		// MAC, VXLAN encapsulation.
		f.waitRoutes("frr1", "evpnd's type-5 routes", func(tb evpnTable) error {
			rd := tb["10.0.0.2:4001"]
			for _, p := range []string{"[5]:[0]:[24]:[192.0.2.0]", "[5]:[0]:[24]:[203.0.113.0]", "[5]:[0]:[64]:[2001:db8:6::]", "[5]:[0]:[64]:[2001:db8:7::]"} {
				r, ok := rd[p]
				if !ok {
					return fmt.Errorf("no %s in RD 10.0.0.2:4001", p)
				}
				ps := r.paths()
				if len(ps) == 0 || len(ps[0].Nexthops) == 0 || ps[0].Nexthops[0].IP != mixEVPNVTP {
					return fmt.Errorf("%s: paths %+v, want next hop %s", p, ps, mixEVPNVTP)
				}
				if ec := ps[0].ecomms(); !slices.Equal(ec, []string{"ET:8", "RT:65000:4001", "Rmac:" + evpndRMAC}) {
					return fmt.Errorf("%s: extended communities %v", p, ec)
				}
			}
			return nil
		})
		f.logShow("frr1", "show ip route", "show ipv6 route", "show bgp l2vpn evpn route type prefix")
		f.t.Logf("leaf2$ evpnctl show ip route vrf t1\n%s", f.exec("leaf2", "evpnctl", "show", "ip", "route", "vrf", "t1"))
	})

	f.run("vm-move", func(f *fabric) {
		// FRR's router MAC on leaf2 counts the routes that use it: the
		// VM's host routes leave with the VM and come back with it, no
		// reference is leaked or lost.
		before := f.rmacRoutes("leaf2", frrRMAC)
		// FRR -> evpnd: leaf2 must win with sequence number 1.
		f.moveVM("eth1", "eth2", "frr1", "leaf2", 1)
		away := f.rmacRoutes("leaf2", frrRMAC)
		// evpnd -> FRR: frr1 must win with 2.
		f.moveVM("eth2", "eth1", "leaf2", "frr1", 2)
		waitFor(f.t, 15*time.Second, "leaf2: FRR's router MAC used by as many routes as before the moves", func() (bool, string) {
			n := f.rmacRoutes("leaf2", frrRMAC)
			return n == before && away < before, fmt.Sprintf("routes via FRR's router MAC: %d before, %d with the VM at leaf2, %d back", before, away, n)
		})
		f.t.Logf("leaf2: FRR's router MAC used by %d routes, %d while the VM was at leaf2", before, away)
	})

	// Nothing failed on the evpnd side along the way.
	for _, node := range []string{"rr", "leaf2"} {
		data, err := os.ReadFile(f.lab.LogPath(node))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			switch {
			case strings.Contains(line, "level=ERROR"), strings.Contains(line, "not installed"), strings.Contains(line, "not repaired"):
				t.Errorf("%s logged: %s", node, line)
			case strings.Contains(line, "level=WARN"):
				t.Logf("%s warned: %s", node, line)
			}
		}
	}
}

// run runs fn as a subtest on the same fabric; a failed subtest stops the
// test, since the next ones build on its state.
func (f *fabric) run(name string, fn func(*fabric)) {
	f.t.Helper()
	ok := f.t.Run(name, func(t *testing.T) {
		sub := *f
		sub.t = t
		fn(&sub)
	})
	if !ok {
		f.t.FailNow()
	}
}

// waitZebra waits until each of FRR's keyed JSON answers (command: key,
// value of one of its fields) holds its entry.
func (f *fabric) waitZebra(node, what string, want map[string][2]string) {
	f.t.Helper()
	waitFor(f.t, 15*time.Second, node+": "+what, func() (bool, string) {
		for cmd, kv := range want {
			var m map[string]any
			if err := f.frr[node].vtyJSON(cmd, &m); err != nil {
				return false, err.Error()
			}
			if err := hasEntry(m, kv[0], kv[1]); err != nil {
				return false, cmd + ": " + err.Error()
			}
		}
		return true, ""
	})
}

// hasEntry looks for key with a string field equal to val anywhere in
// FRR's JSON m: at the top (show evpn rmac/next-hops) or one level down
// (show evpn arp-cache nests its entries under "neighbors").
func hasEntry(m map[string]any, key, val string) error {
	var find func(m map[string]any) bool
	find = func(m map[string]any) bool {
		if e, ok := m[key].(map[string]any); ok {
			for _, v := range e {
				if s, ok := v.(string); ok && s == val {
					return true
				}
			}
		}
		for _, v := range m {
			if sub, ok := v.(map[string]any); ok && find(sub) {
				return true
			}
		}
		return false
	}
	if !find(m) {
		return fmt.Errorf("no entry %s with %s in %v", key, val, m)
	}
	return nil
}

// background is a command running in a node until stopped.
type background struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
}

func (b *background) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

func (b *background) output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

// startPing pings ip from node every 50 ms with timestamps (ping -D)
// until stopPing; it is killed by PID in t.Cleanup if the test ends first.
func (f *fabric) startPing(node, ip string) *background {
	f.t.Helper()
	cmd, err := f.lab.Command(context.Background(), node, "ping", "-D", "-n", "-i", "0.05", ip)
	if err != nil {
		f.t.Fatal(err)
	}
	b := &background{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = b, b
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(b.done) }()
	f.t.Cleanup(func() { b.stop() })
	return b
}

// stop ends the ping by PID with SIGINT, so that it prints its
// statistics, and waits for it.
func (b *background) stop() {
	select {
	case <-b.done:
		return
	default:
	}
	_ = b.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-b.done:
	case <-time.After(3 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}

var rePingStats = regexp.MustCompile(`\d+ packets transmitted, \d+ received[^\n]*`)

var rePingReply = regexp.MustCompile(`\[(\d+)\.(\d+)\] \d+ bytes from .*icmp_seq=(\d+)`)

// replies returns the reply times of ping -D output, in order.
func replies(out string) []time.Time {
	var ts []time.Time
	seen := map[string]bool{}
	for _, m := range rePingReply.FindAllStringSubmatch(out, -1) {
		if seen[m[3]] {
			continue
		}
		seen[m[3]] = true
		sec, _ := strconv.ParseInt(m[1], 10, 64)
		frac := (m[2] + "000000000")[:9]
		ns, _ := strconv.ParseInt(frac, 10, 64)
		ts = append(ts, time.Unix(sec, ns))
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	return ts
}

// longestGap returns the longest time between two replies, and when it
// ended.
func longestGap(ts []time.Time) (time.Duration, time.Time) {
	var gap time.Duration
	var end time.Time
	for i := 1; i < len(ts); i++ {
		if d := ts[i].Sub(ts[i-1]); d > gap {
			gap, end = d, ts[i]
		}
	}
	return gap, end
}

// vmStream is one ping to vm across a move.
type vmStream struct {
	name string // who, and routed or bridged
	b    *background
}

// moveVM moves vm's MAC and addresses from its port on leaf src to its
// port on leaf dst, under routed ping from h1 (behind frr1) and h2
// (behind leaf2) and bridged ping from h3 (frr1) and h4 (leaf2), the old
// port staying up with a parking MAC. dst must win with MAC mobility
// sequence number seq; then traffic resumes and both leafs' kernels,
// FRR's zebra and evpnd's views hold exactly the new location.
func (f *fabric) moveVM(from, to, src, dst string, seq uint32) {
	f.t.Helper()
	streams := []vmStream{
		{"routed h1 (frr1)", f.startPing("h1", mixVMIP)},
		{"routed h2 (leaf2)", f.startPing("h2", mixVMIP)},
		{"bridged h3 (frr1)", f.startPing("h3", mixVMIP)},
		{"bridged h4 (leaf2)", f.startPing("h4", mixVMIP)},
	}
	for _, p := range streams {
		waitFor(f.t, 10*time.Second, p.name+" pings to vm answered before the move", func() (bool, string) {
			return len(replies(p.b.output())) > 0, p.b.output()
		})
	}
	parking := map[string]string{"eth1": "02:00:00:00:02:e0", "eth2": "02:00:00:00:02:f0"}[from]
	moved := time.Now()
	f.exec("vm", "sh", "-ec", strings.Join([]string{
		"ip addr flush dev " + from + " scope global",
		"ip link set " + from + " address " + parking,
		"ip link set " + to + " address " + mixVMMAC,
		"ip addr add " + mixVMIP + "/24 dev " + to,
		"ip addr add " + mixVMIP6 + "/64 dev " + to + " nodad",
		"ip route replace default via 10.2.0.1 dev " + to,
		"ip -6 route replace default via fd00:2::1 dev " + to,
	}, "\n"))
	// The VM speaks at its new place: its gateway answers there (tried
	// every 100 ms).
	gw := waitFor(f.t, 20*time.Second, "vm to ping its gateway at "+dst, func() (bool, string) {
		out, err := f.lab.Exec(context.Background(), "vm", "ping", "-c1", "-W0.1", "-n", "10.2.0.1")
		return err == nil, out
	})
	f.ping("vm", "fd00:2::1")
	f.t.Logf("%s -> %s: vm's IPv4 gateway answered %v after the move", src, dst, gw.Round(time.Millisecond))

	// Traffic resumes from both leafs, and flows: 10 replies since the
	// move.
	for _, p := range streams {
		waitFor(f.t, 20*time.Second, p.name+" pings to vm answered after the move", func() (bool, string) {
			ts := replies(p.b.output())
			n := len(ts) - slices.IndexFunc(ts, func(t time.Time) bool { return t.After(moved) })
			if n > len(ts) {
				n = 0
			}
			return n >= 10, fmt.Sprintf("%d replies since the move", n)
		})
	}
	// The new location, installed by the other side; nothing stale at
	// the old one.
	at := map[string]string{"frr1": mixFRRVTEP, "leaf2": mixEVPNVTP}[dst]
	f.waitKernel(src, "vm's host route via "+at+", remote neighbour, remote MAC", [][]string{
		{"ip", "route", "show", mixVMIP + "/32"}, {"via " + at + " dev br4001"},
		{"ip", "-6", "route", "show", mixVMIP6 + "/128"}, {"via ::ffff:" + at + " dev br4001"},
		{"ip", "neigh", "show", mixVMIP, "dev", "br200"}, {"lladdr " + mixVMMAC},
		{"ip", "-6", "neigh", "show", mixVMIP6, "dev", "br200"}, {"lladdr " + mixVMMAC},
	})
	f.waitFDB(src, "vxlan200", "vm at "+dst, func(es []fdbEntry) bool { return remoteMAC(es, mixVMMAC, netip.MustParseAddr(at)) })
	f.waitKernel(dst, "no remote host route, neighbour or MAC for vm", [][]string{
		{"ip", "route", "show", "table", "all", mixVMIP + "/32"}, {"!"},
		{"ip", "-6", "route", "show", "table", "all", mixVMIP6 + "/128"}, {"!"},
	})
	if dst == "frr1" {
		// FRR 8.4's zebra, when a remote MAC turns local, leaves the
		// VXLAN device's own entry (self, dst the old VTEP) in place: it
		// logs no dpDel for it, though bgpd passed it evpnd's
		// withdrawal. The bridge forwards by its own entry, on the access
		// port, so only that one is checked here.
		f.waitFDB(dst, "vxlan200", "no bridge entry for vm on the VXLAN port", func(es []fdbEntry) bool {
			return !slices.ContainsFunc(es, func(e fdbEntry) bool { return e.MAC == mixVMMAC && e.Master })
		})
		f.t.Logf("frr1$ bridge fdb show dev vxlan200 (FRR 8.4 keeps a stale self entry for vm)\n%s", f.exec("frr1", "bridge", "fdb", "show", "dev", "vxlan200"))
	} else {
		f.waitFDB(dst, "vxlan200", "no remote entry for vm", func(es []fdbEntry) bool { return !hasMAC(es, mixVMMAC) })
	}
	// The neighbour at the new place is the local one the VM made, not
	// a remote (extern_learn) one left over.
	for _, ip := range []string{mixVMIP, mixVMIP6} {
		if out := f.exec(dst, "ip", "neigh", "show", ip, "dev", "br200"); strings.Contains(out, "extern_learn") {
			f.t.Errorf("%s: stale remote neighbour for vm after it moved there: %s", dst, out)
		}
	}
	if out := f.exec(src, "ip", "neigh", "show", mixVMIP, "dev", "br200"); !strings.Contains(out, "extern_learn") {
		f.t.Errorf("%s: vm's neighbour after it moved away is not the remote one: %s", src, out)
	}

	// MAC mobility: the new location's route carries seq, the old one's
	// is withdrawn, in FRR's BGP table and in its zebra.
	f.waitRoutes("frr1", fmt.Sprintf("vm's MAC and MAC+IP routes from %s only, with MM:%d", dst, seq), func(tb evpnTable) error {
		n := 0
		for rd, prefixes := range tb {
			for p, r := range prefixes {
				if r.RouteType != 2 || r.MAC != mixVMMAC {
					continue
				}
				n++
				for _, path := range r.paths() {
					nh := ""
					if len(path.Nexthops) > 0 {
						nh = path.Nexthops[0].IP
					}
					if path.Local != (dst == "frr1") || (!path.Local && nh != at) {
						return fmt.Errorf("%s %s: path local=%v next hop %q, want the route of %s", rd, p, path.Local, nh, dst)
					}
					if s, err := path.mobilitySeq(); err != nil || s != seq {
						return fmt.Errorf("%s %s: MAC mobility %d (%v), want %d", rd, p, s, err, seq)
					}
				}
			}
		}
		if n < 2 {
			return fmt.Errorf("%d routes for vm, want its MAC and MAC+IP routes", n)
		}
		return nil
	})
	zs := map[bool]string{true: "local", false: "remote"}[dst == "frr1"]
	waitFor(f.t, 15*time.Second, "frr1's zebra: vm "+zs, func() (bool, string) {
		z, err := f.zebraMACIn("frr1", 200, mixVMMAC)
		if err != nil {
			return false, err.Error()
		}
		if dst == "frr1" {
			return z.Type == "local" && z.LocalSequence == seq, fmt.Sprintf("%+v", z)
		}
		return z.Type == "remote" && z.RemoteVTEP == at && z.RemoteSequence == seq, fmt.Sprintf("%+v", z)
	})
	f.waitZebra("frr1", "vm's neighbour "+zs, map[string][2]string{
		"show evpn arp-cache vni 200 json": {mixVMIP, zs},
	})
	if dst == "leaf2" {
		f.waitZebra("frr1", "vm's neighbours at evpnd's VTEP", map[string][2]string{
			"show evpn arp-cache vni 200 json": {mixVMIP, mixEVPNVTP},
		})
	}
	// evpnd's view: the VM local at leaf2 with the sequence it won with,
	// or remote at frr1 with FRR's.
	waitFor(f.t, 15*time.Second, "leaf2: evpnctl show evpn arp-cache vni 200 has vm at "+dst, func() (bool, string) {
		es, out, err := f.arpCache("leaf2")
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, e := range es {
			if e.GetMac() != mixVMMAC || (e.GetIp() != mixVMIP && e.GetIp() != mixVMIP6) {
				continue
			}
			if e.GetLocal() != (dst == "leaf2") || e.GetSeq() != seq || (dst == "frr1" && e.GetVtep() != at) {
				return false, fmt.Sprintf("entry %v, want local=%v seq %d\n%s", e, dst == "leaf2", seq, out)
			}
			n++
		}
		return n == 2, out
	})
	f.t.Logf("leaf2$ evpnctl show evpn arp-cache vni 200\n%s", f.exec("leaf2", "evpnctl", "show", "evpn", "arp-cache", "vni", "200"))
	// The router MACs are unchanged: each side's one for the other.
	f.waitKernel("leaf2", "FRR's router MAC only", [][]string{
		{"bridge", "fdb", "show", "dev", "vxlan4001"}, {frrRMAC + " dst 10.0.0.1 self extern_learn"},
	})
	f.waitZebra("frr1", "evpnd's router MAC", map[string][2]string{
		"show evpn rmac vni 4001 json": {evpndRMAC, mixEVPNVTP},
	})

	for _, p := range streams {
		p.b.stop()
		out := p.b.output()
		ts := replies(out)
		gap, end := longestGap(ts)
		stats := ""
		if m := rePingStats.FindString(out); m != "" {
			stats = m
		}
		f.t.Logf("%s -> %s: %s -> vm every 50 ms: longest time without a reply %v, ending %v after the move; %d replies (%s)",
			src, dst, p.name, gap.Round(time.Millisecond), end.Sub(moved).Round(time.Millisecond), len(ts), stats)
	}
	f.ping("h1", mixVMIP6)
	f.ping("h2", mixVMIP6)
	f.ping("h3", mixVMIP)
	f.ping("h4", mixVMIP)
	f.logShow("frr1", "show evpn mac vni 200 mac "+mixVMMAC, "show evpn arp-cache vni 200", "show bgp l2vpn evpn route mac "+mixVMMAC)
}

// zebraMACIn returns what FRR's zebra in node knows about mac in vni.
func (f *fabric) zebraMACIn(node string, vni int, mac string) (zebraMAC, error) {
	var m map[string]zebraMAC
	if err := f.frr[node].vtyJSON(fmt.Sprintf("show evpn mac vni %d mac %s json", vni, mac), &m); err != nil {
		return zebraMAC{}, err
	}
	z, ok := m[mac]
	if !ok {
		return zebraMAC{}, fmt.Errorf("%s: zebra does not know MAC %s in VNI %d", node, mac, vni)
	}
	return z, nil
}

// arpCache returns evpnd's "show evpn arp-cache" in node (every routed
// L2VNI), as entries and as JSON.
func (f *fabric) arpCache(node string) ([]*evpndv1.ARPEntry, string, error) {
	out, err := f.lab.Exec(context.Background(), node, "evpnctl", "-o", "json", "show", "evpn", "arp-cache")
	if err != nil {
		return nil, out, err
	}
	var r evpndv1.ListARPCacheResponse
	if err := protojson.Unmarshal([]byte(out), &r); err != nil {
		return nil, out, fmt.Errorf("evpnctl -o json show evpn arp-cache: %w\n%s", err, out)
	}
	return r.GetEntries(), out, nil
}

// rmacRoutes returns how many routes evpnd in node counts on router MAC
// rmac in VNI 4001 (evpnctl show evpn rmac vni 4001), failing the test if
// it has no such router MAC.
func (f *fabric) rmacRoutes(node, rmac string) uint64 {
	f.t.Helper()
	out := f.exec(node, "evpnctl", "-o", "json", "show", "evpn", "rmac", "vni", "4001")
	var r evpndv1.ListRouterMACsResponse
	if err := protojson.Unmarshal([]byte(out), &r); err != nil {
		f.t.Fatalf("evpnctl -o json show evpn rmac vni 4001: %v\n%s", err, out)
	}
	for _, e := range r.GetRouterMacs() {
		if e.GetRouterMac() == rmac {
			return uint64(e.GetRoutes())
		}
	}
	f.t.Fatalf("%s: no router MAC %s in VNI 4001:\n%s", node, rmac, out)
	return 0
}
