package labcheck

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/lab"
)

// fakeFabric answers pings and evpnctl like a fabric would, with faults to
// inject: reach decides whether a ping from host to address gets a reply.
type fakeFabric struct {
	mu     sync.Mutex // Matrix checks the cross-VNI pairs concurrently
	p      *Plan
	reach  func(from, to Host) bool
	routed func(from, to Host, v6 bool) bool // a ping through the gateways; nil: reach
	macs   map[string]string                 // leaf -> "evpnctl show evpn mac" output
	routes map[string]int                    // on-link routes currently added, by "host addr"
}

func (f *fakeFabric) Exec(_ context.Context, node string, argv ...string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case argv[0] == "ping":
		addr := argv[len(argv)-1]
		from := *f.p.Host(node)
		for _, h := range f.p.Hosts {
			v6 := h.Prefix6.IsValid() && h.Prefix6.Addr().String() == addr
			if h.Addr().String() != addr && !v6 {
				continue
			}
			ok := f.reach(from, h)
			if f.routed != nil && from.VNI != h.VNI && f.routes[node+" "+addr+"/32"] == 0 {
				ok = f.routed(from, h, v6)
			}
			if ok {
				return "1 packets transmitted, 1 received", nil
			}
		}
		return "1 packets transmitted, 0 received", errors.New("exit status 1")
	case argv[0] == "ip" && argv[1] == "route":
		key := node + " " + argv[3]
		if argv[2] == "add" {
			f.routes[key]++
		} else {
			f.routes[key]--
		}
		return "", nil
	case argv[0] == "evpnctl":
		return f.macs[node], nil
	}
	return "", errors.New("unexpected command " + strings.Join(argv, " "))
}

func evpnL2Plan(t *testing.T) *Plan {
	t.Helper()
	topo, err := lab.Load("../evpn-l2.clab.yml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := PlanOf(topo)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMatrixFindsFaults checks that the matrix fails a fabric where a pair
// in one VNI cannot reach, and one where two VNIs leak into each other at
// layer 2 (the on-link routes make the cross-VNI ping possible; only the
// fabric must stop it), and that it removes its routes.
func TestMatrixFindsFaults(t *testing.T) {
	p := evpnL2Plan(t)
	if got := len(p.Hosts); got != 4 {
		t.Fatalf("evpn-l2 has %d hosts, want 4", got)
	}
	ctx := context.Background()
	sameVNI := func(a, b Host) bool { return a.VNI == b.VNI }
	for _, tc := range []struct {
		name  string
		reach func(a, b Host) bool
		want  string
	}{
		{"healthy", sameVNI, ""},
		{"h2 cut off", func(a, b Host) bool { return sameVNI(a, b) && a.Name != "h2" && b.Name != "h2" }, "h1 (VNI 100) cannot reach h2"},
		{"VNIs leak", func(a, b Host) bool { return true }, "at layer 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeFabric{p: p, reach: tc.reach, routes: map[string]int{}}
			res, err := p.Matrix(ctx, f, 300*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(res.Failures, "\n")
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("failures:\n%s\nwant one with %q", got, tc.want)
			}
			for k, n := range f.routes {
				if n != 0 {
					t.Errorf("route %s: added %d more times than deleted", k, n)
				}
			}
			if len(f.routes) != 2*4 { // 4 cross-VNI pairs, a route on each end
				t.Errorf("on-link routes used: %v, want 8", f.routes)
			}
		})
	}
}

// TestMatrixRouted checks the routed half of the matrix on evpn-fabric,
// whose hosts route to the other subnet through their anycast gateways:
// every cross-VNI pair must answer both ways over IPv4 and IPv6 without
// the on-link routes, and still be isolated at layer 2 with them.
func TestMatrixRouted(t *testing.T) {
	topo, err := lab.Load("../evpn-fabric.clab.yml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := PlanOf(topo)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(p.Routed()); got != 16 {
		t.Fatalf("evpn-fabric has %d routed pairs, want 16 (4 hosts in each of 2 subnets)", got)
	}
	ctx := context.Background()
	sameVNI := func(a, b Host) bool { return a.VNI == b.VNI }
	routed := func(a, b Host, v6 bool) bool { return true }
	for _, tc := range []struct {
		name   string
		reach  func(a, b Host) bool
		routed func(a, b Host, v6 bool) bool
		want   string
	}{
		{"healthy", sameVNI, routed, ""},
		{"no routing", sameVNI, func(a, b Host, v6 bool) bool { return false }, "cannot reach h2 192.168.200.12 (VNI 200) routed"},
		{"no IPv6 routing", sameVNI, func(a, b Host, v6 bool) bool { return !v6 }, "cannot reach h2 2001:db8:200::12 (VNI 200) routed"},
		{"h8 unrouted", sameVNI, func(a, b Host, v6 bool) bool { return a.Name != "h8" }, "h8 (VNI 200) cannot reach h1 192.168.100.11"},
		{"VNIs leak", func(a, b Host) bool { return true }, routed, "at layer 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeFabric{p: p, reach: tc.reach, routed: tc.routed, routes: map[string]int{}}
			res, err := p.Matrix(ctx, f, 300*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(res.Failures, "\n")
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("failures:\n%s\nwant one with %q", got, tc.want)
			}
			if tc.want == "" && (len(res.Routed) != 16 || res.Routed6 != 16 || len(res.Isolated) != 16) {
				t.Errorf("routed %d (IPv6 %d), isolated %d: want 16 each", len(res.Routed), res.Routed6, len(res.Isolated))
			}
		})
	}
}

// TestCheckMACs checks the MAC table comparison: the right table passes; a
// temporary containerlab MAC, a missing MAC and a wrong VTEP fail.
func TestCheckMACs(t *testing.T) {
	p := evpnL2Plan(t)
	const header = "VNI      MAC               Type   VTEP/Port       Seq   Flags      Kernel Other VTEPs\n"
	good := map[string]string{
		"leaf1": header +
			"100      02:00:00:00:01:11 local  eth2            0                yes\n" +
			"100      02:00:00:00:01:12 remote 10.0.0.2        0                yes\n" +
			"200      02:00:00:00:02:13 remote 10.0.0.3        0                yes\n" +
			"200      02:00:00:00:02:14 local  eth3            0                yes\n\nDisplayed 4 MACs: 2 local, 2 remote\n",
		"leaf2": header +
			"100      02:00:00:00:01:11 remote 10.0.0.1        0                yes\n" +
			"100      02:00:00:00:01:12 local  eth2            0                yes\n",
		"leaf3": header +
			"200      02:00:00:00:02:13 local  eth2            0                yes\n" +
			"200      02:00:00:00:02:14 remote 10.0.0.1        0                yes\n",
	}
	ctx := context.Background()
	if err := p.CheckMACs(ctx, &fakeFabric{p: p, macs: good}, 0); err != nil {
		t.Fatalf("correct tables: %v", err)
	}
	for name, leaf2 := range map[string]string{
		"temporary MAC": good["leaf2"] + "100      aa:c1:ab:12:34:56 local  eth2            0                yes\n",
		"missing MAC":   header + "100      02:00:00:00:01:12 local  eth2            0                yes\n",
		"wrong VTEP":    strings.Replace(good["leaf2"], "10.0.0.1 ", "10.0.0.3 ", 1),
	} {
		bad := map[string]string{"leaf1": good["leaf1"], "leaf2": leaf2, "leaf3": good["leaf3"]}
		err := p.CheckMACs(ctx, &fakeFabric{p: p, macs: bad}, 0)
		if err == nil || !strings.Contains(err.Error(), "leaf2") {
			t.Errorf("%s: err = %v, want a leaf2 failure", name, err)
		}
		if name == "temporary MAC" && !strings.Contains(err.Error(), "temporary") {
			t.Errorf("temporary MAC not named as such: %v", err)
		}
	}
}
