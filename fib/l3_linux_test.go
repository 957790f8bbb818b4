package fib

import (
	"context"
	"encoding/binary"
	"golang.org/x/sys/unix"
	"strconv"

	"fmt"
	"github.com/evpnd/evpnd/containerlab/poll"
	"github.com/evpnd/evpnd/speaker/evpn"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"
)

// newL3Lab is a tenant namespace as vtep's EnsureVRF builds it: the L3VNI
// 4001 (vxlan4001 in br4001) and the member L2VNI 100 (br100), with the
// VTEP address on lo.
func newL3Lab(t *testing.T, table int) (*labNS, L3Devices, *L3Netlink) {
	l := newLab(t, "l3f", 4001, 100)
	l.run(t, []string{"ip", "addr", "add", "10.0.0.1/32", "dev", "lo"})
	dev := L3Devices{VRF: "t", L3VNI: 4001, Table: table, SVI: "br4001", VXLAN: "vxlan4001", MemberSVIs: []string{"br100"}}
	nsh, err := vnetns.GetFromName(l.ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nsh.Close() })
	k, err := NewL3Netlink(l.h, nsh)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return l, dev, k
}

func fillL3(t *testing.T, d *L3Desired) {
	must(t, d.SetNeigh("br100", a("10.1.0.20"), h1))
	must(t, d.SetNeigh("br100", a("2001:db8:1::20"), h1))
	must(t, d.SetHost(a("10.1.0.20"), NextHop{a("10.0.0.2"), rm2}))
	must(t, d.SetHost(a("2001:db8:1::20"), NextHop{a("10.0.0.2"), rm2}))
	must(t, d.AddPath(p("10.1.0.0/24"), NextHop{a("10.0.0.3"), rm3}))
	must(t, d.AddPath(p("10.99.0.0/16"), NextHop{a("10.0.0.3"), rm3}))
	must(t, d.AddPath(p("10.99.0.0/16"), NextHop{a("10.0.0.2"), rm2}))
	must(t, d.AddPath(p("2001:db8:99::/48"), NextHop{a("10.0.0.3"), rm3}))
	must(t, d.AddPath(p("2001:db8:99::/48"), NextHop{a("10.0.0.2"), rm2}))
}

func contains(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, out)
		}
	}
}

func TestL3Kernel(t *testing.T) {
	for _, table := range []int{MainTable, 1001} {
		t.Run(map[int]string{MainTable: "main", 1001: "table1001"}[table], func(t *testing.T) {
			l, dev, k := newL3Lab(t, table)
			d := NewL3Desired(dev)
			fillL3(t, d)
			r := NewL3Reconciler(d, k, testLogger(t))
			ctx := context.Background()
			n, err := r.Sync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := WantL3(d.Snapshot())
			if n != len(PlanL3(want, L3State{}, true)) {
				t.Errorf("wrote %d ops", n)
			}
			tbl := []string{"table", itoa(table)}
			routes := l.run(t, append([]string{"ip", "route", "show", "proto", "241"}, tbl...))
			contains(t, "IPv4 routes", routes,
				"10.1.0.0/24 via 10.0.0.3 dev br4001 onlink",
				"10.1.0.20 via 10.0.0.2 dev br4001 onlink",
				"10.99.0.0/16",
				"nexthop via 10.0.0.2 dev br4001 weight 1 onlink",
				"nexthop via 10.0.0.3 dev br4001 weight 1 onlink")
			routes6 := l.run(t, append([]string{"ip", "-6", "route", "show", "proto", "241"}, tbl...))
			contains(t, "IPv6 routes", routes6,
				"2001:db8:1::20 via ::ffff:10.0.0.2 dev br4001",
				"2001:db8:99::/48",
				"nexthop via ::ffff:10.0.0.3 dev br4001 weight 1 onlink")
			// The host route wins over its covering type-5 prefix (a
			// table other than main is looked up through a rule, as a
			// VRF's would be).
			if table != MainTable {
				l.run(t, []string{"ip", "rule", "add", "pref", "100", "lookup", itoa(table)})
			}
			contains(t, "route get", l.run(t, []string{"ip", "route", "get", "10.1.0.20"}), "via 10.0.0.2 dev br4001")
			contains(t, "route get", l.run(t, []string{"ip", "route", "get", "10.1.0.99"}), "via 10.0.0.3 dev br4001")
			contains(t, "neighbours", l.run(t, []string{"ip", "neigh", "show", "nud", "noarp"}),
				"10.1.0.20 dev br100 lladdr 02:00:00:00:00:11 extern_learn NOARP",
				"2001:db8:1::20 dev br100 lladdr 02:00:00:00:00:11 extern_learn NOARP",
				"10.0.0.2 dev br4001 lladdr 02:ee:0a:00:00:02 extern_learn NOARP",
				"10.0.0.3 dev br4001 lladdr 02:ee:0a:00:00:03 extern_learn NOARP",
				"::ffff:10.0.0.2 dev br4001 lladdr 02:ee:0a:00:00:02 extern_learn NOARP")
			contains(t, "L3VNI FDB", l.run(t, []string{"bridge", "fdb", "show", "dev", "vxlan4001"}),
				"02:ee:0a:00:00:02 dst 10.0.0.2 self extern_learn",
				"02:ee:0a:00:00:03 dst 10.0.0.3 self extern_learn",
				"02:ee:0a:00:00:02 extern_learn master br4001")

			if ops, err := r.Check(ctx); err != nil || len(ops) != 0 {
				t.Errorf("check after a pass: %s %v", opLines(dev, ops), err)
			}
			l.run(t, []string{"ip", "neigh", "del", "10.1.0.20", "dev", "br100"})
			if ops, err := r.Check(ctx); err != nil || len(ops) != 1 || ops[0].Neigh == nil {
				t.Errorf("check after a neighbour was deleted: %s %v", opLines(dev, ops), err)
			}
			if n, err := r.Sync(ctx); n != 1 || err != nil {
				t.Errorf("repair wrote %d (%v)", n, err)
			}
			// fib's own writes, read back: nothing to do.
			if n, err := r.Sync(ctx); n != 0 || err != nil {
				t.Errorf("second pass wrote %d (%v)", n, err)
			}
			have, err := k.Dump(ctx, dev)
			if err != nil {
				t.Fatal(err)
			}
			if ops := PlanL3(want, have, true); len(ops) != 0 {
				t.Errorf("the kernel differs from the desired state after a pass: %s", opLines(dev, ops))
			}

			// VTEP 10.0.0.3 withdraws all: its router MAC goes with its
			// last route, once pruning is allowed.
			d.DeletePath(p("10.1.0.0/24"), a("10.0.0.3"))
			d.DeletePath(p("10.99.0.0/16"), a("10.0.0.3"))
			d.DeletePath(p("2001:db8:99::/48"), a("10.0.0.3"))
			r.MarkSynced()
			if _, err := r.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if out := l.run(t, []string{"ip", "neigh", "show", "dev", "br4001"}) + l.run(t, []string{"bridge", "fdb", "show", "dev", "vxlan4001"}); strings.Contains(out, "10.0.0.3") || strings.Contains(out, "02:ee:0a:00:00:03") {
				t.Errorf("router MAC of 10.0.0.3 left behind:\n%s", out)
			}
			if out := l.run(t, append([]string{"ip", "route", "show", "proto", "241"}, tbl...)); strings.Contains(out, "10.0.0.3") || strings.Contains(out, "10.1.0.0/24") {
				t.Errorf("routes via 10.0.0.3 left behind:\n%s", out)
			}
			// Withdraw everything: nothing of fib's is left.
			d2 := NewL3Desired(dev)
			r2 := NewL3Reconciler(d2, k, testLogger(t))
			r2.MarkSynced()
			if _, err := r2.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if have, _ := k.Dump(ctx, dev); len(have.Routes)+len(have.Neighs)+len(have.RMACs) != 0 {
				t.Errorf("left behind: %+v", have)
			}
		})
	}
}

// A restart: a new reconciler finds the previous run's entries and,
// before MarkSynced, deletes nothing, nor rewrites what is correct.
func TestL3RestartKeepsEntries(t *testing.T) {
	_, dev, k := newL3Lab(t, MainTable)
	d := NewL3Desired(dev)
	fillL3(t, d)
	ctx := context.Background()
	if _, err := NewL3Reconciler(d, k, nil).Sync(ctx); err != nil {
		t.Fatal(err)
	}
	d2 := NewL3Desired(dev)
	must(t, d2.SetHost(a("10.1.0.20"), NextHop{a("10.0.0.2"), rm2})) // relearned so far
	r2 := NewL3Reconciler(d2, k, nil)
	if n, err := r2.Sync(ctx); n != 0 || err != nil {
		t.Errorf("restarted reconciler wrote %d before MarkSynced (%v)", n, err)
	}
	before, _ := k.Dump(ctx, dev)
	if len(before.Routes) != 5 {
		t.Errorf("entries of the previous run: %+v", before.Routes)
	}
	// What this run writes and withdraws before MarkSynced goes at once.
	must(t, d2.SetHost(a("10.1.0.30"), NextHop{a("10.0.0.4"), evpn.MAC{2, 0xee, 10, 0, 0, 4}}))
	if _, err := r2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	d2.DeleteHost(a("10.1.0.30"))
	if _, err := r2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if now, _ := k.Dump(ctx, dev); len(now.Routes) != 5 || len(now.RMACs) != 2 {
		t.Errorf("after a withdraw before MarkSynced: routes %v, router MACs %v", now.Routes, now.RMACs)
	}
	r2.MarkSynced()
	if _, err := r2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	after, _ := k.Dump(ctx, dev)
	if len(after.Routes) != 1 || len(after.RMACs) != 1 || len(after.Neighs) != 1 {
		t.Errorf("after MarkSynced: %+v", after)
	}
}

// Drift (a host route, a router-MAC neighbour, a router-MAC FDB entry
// deleted by someone else) is repaired by Run on the kernel's report.
func TestL3DriftRepaired(t *testing.T) {
	for _, table := range []int{MainTable, 1001} {
		t.Run(map[int]string{MainTable: "main", 1001: "table1001"}[table], func(t *testing.T) { testL3DriftRepaired(t, table) })
	}
}

func testL3DriftRepaired(t *testing.T, table int) {
	l, dev, k := newL3Lab(t, table)
	d := NewL3Desired(dev)
	fillL3(t, d)
	r := NewL3Reconciler(d, k, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	nsh, err := vnetns.GetFromName(l.ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	events, err := WatchL3(ctx, nsh)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, events) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	tbl := []string{}
	if table != MainTable {
		tbl = []string{"table", itoa(table)}
	}
	routes := append([]string{"ip", "route", "show", "proto", "241"}, tbl...)
	waitUntil(t, "first pass", func() bool {
		// Until the first route is in, table 1001 does not exist and
		// "ip route show" fails: not yet, not an error.
		out, err := l.ns.Exec(context.Background(), routes...)
		return err == nil && strings.Contains(out, "10.1.0.20")
	})
	// A message from a sender other than the kernel on the route and
	// neighbour groups: the library reports it through the error callback,
	// which must not end the watch.
	multicastNoise(t, l)
	for _, c := range []struct {
		del   []string
		check []string
		want  string
	}{
		{append([]string{"ip", "route", "del", "10.1.0.20/32", "proto", "241"}, tbl...), routes, "10.1.0.20 via 10.0.0.2"},
		{[]string{"ip", "neigh", "del", "10.0.0.2", "dev", "br4001"}, []string{"ip", "neigh", "show", "dev", "br4001"}, "10.0.0.2 lladdr 02:ee:0a:00:00:02 extern_learn"},
		{[]string{"bridge", "fdb", "del", "02:ee:0a:00:00:02", "dev", "vxlan4001", "self"}, []string{"bridge", "fdb", "show", "dev", "vxlan4001"}, "02:ee:0a:00:00:02 dst 10.0.0.2 self"},
		// Twice: the watch must survive its first repair.
		{append([]string{"ip", "route", "del", "10.1.0.20/32", "proto", "241"}, tbl...), routes, "10.1.0.20 via 10.0.0.2"},
	} {
		start := time.Now()
		l.run(t, c.del)
		// Within 2 s: a repair on the kernel's report, not on some
		// later unrelated pass.
		poll.True(t, 2*time.Second, strings.Join(c.del, " ")+" repaired", func() bool { return strings.Contains(l.run(t, c.check), c.want) })
		t.Logf("%s: repaired in %v", strings.Join(c.del, " "), time.Since(start))
	}
	if s := r.Stats(); s.Repairs < 4 || s.Errors != 0 {
		t.Errorf("stats %+v: want at least 4 repairs, no errors", s)
	}
}

// In a table that routes the underlay, a type-5 route for a VTEP address
// is not installed.
func TestL3UnderlayGuardKernel(t *testing.T) {
	l, dev, k := newL3Lab(t, MainTable)
	dev.UnderlayTable, dev.LocalVTEP = true, a("10.0.0.1")
	d := NewL3Desired(dev)
	must(t, d.AddPath(p("10.0.0.3/32"), NextHop{a("10.0.0.2"), rm2})) // another VTEP's address
	must(t, d.AddPath(p("10.99.0.0/16"), NextHop{a("10.0.0.3"), rm3}))
	r := NewL3Reconciler(d, k, testLogger(t))
	if _, err := r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := l.run(t, []string{"ip", "route", "show", "proto", "241"})
	if strings.Contains(out, "10.0.0.3 via") || !strings.Contains(out, "10.99.0.0/16") || r.Stats().Refused != 1 {
		t.Errorf("routes %q, stats %+v", out, r.Stats())
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.True(t, 5*time.Second, what, cond)
}

func itoa(n int) string { return strconv.Itoa(n) }

// The reconciler may start before vtep has made the VRF's devices: its
// passes fail and are retried until the devices are there, then it
// converges.
func TestL3DevicesLater(t *testing.T) {
	l := newLab(t, "l3late", 100)
	l.run(t, []string{"ip", "addr", "add", "10.0.0.1/32", "dev", "lo"})
	nsh, err := vnetns.GetFromName(l.ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	k, err := NewL3Netlink(l.h, nsh)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	dev := L3Devices{VRF: "t", L3VNI: 4001, Table: MainTable, SVI: "br4001", VXLAN: "vxlan4001", MemberSVIs: []string{"br100"}}
	d := NewL3Desired(dev)
	fillL3(t, d)
	r := NewL3Reconciler(d, k, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	l.addVNI(t, 4001)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ops, err := r.Check(ctx)
		if err == nil && len(ops) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not converged within 10s of the devices appearing: %v %v", ops, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// multicastNoise sends, from a user socket in l's namespace, an empty
// message to the route and neighbour multicast groups.
func multicastNoise(t *testing.T, l *labNS) {
	t.Helper()
	err := l.ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return err
		}
		groups := uint32(1<<(unix.RTNLGRP_IPV4_ROUTE-1) | 1<<(unix.RTNLGRP_IPV6_ROUTE-1) | 1<<(unix.RTNLGRP_NEIGH-1))
		msg := make([]byte, unix.NLMSG_HDRLEN)
		binary.NativeEndian.PutUint32(msg[0:4], uint32(len(msg)))
		binary.NativeEndian.PutUint16(msg[4:6], unix.NLMSG_NOOP)
		return unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups})
	})
	if err != nil {
		t.Fatalf("multicast noise: %v", err)
	}
}

// On the default backend a border leaf's default route goes into the main
// table with LastResortMetric: the operator's own default route stays and
// wins; with none, evpnd's is used, ECMP over both border leafs. Passes
// are idempotent and the withdraw removes evpnd's route only.
func TestL3DefaultRouteLastResortKernel(t *testing.T) {
	l, dev, k := newL3Lab(t, MainTable)
	dev.UnderlayTable, dev.LocalVTEP = true, a("10.0.0.1")
	l.run(t, []string{"ip", "route", "add", "default", "via", "10.0.0.9", "dev", "br100", "onlink", "proto", "static"})
	d := NewL3Desired(dev)
	for _, pf := range []string{"0.0.0.0/0", "::/0"} {
		must(t, d.AddPath(p(pf), NextHop{a("10.0.0.2"), rm2}))
		must(t, d.AddPath(p(pf), NextHop{a("10.0.0.3"), rm3}))
	}
	r := NewL3Reconciler(d, k, testLogger(t))
	ctx := context.Background()
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	out := l.run(t, []string{"ip", "route", "show", "default"})
	if !strings.Contains(out, "default via 10.0.0.9 dev br100 proto static onlink") ||
		!strings.Contains(out, "default proto 241 metric 4294967295") || strings.Count(out, "nexthop via") != 2 {
		t.Errorf("default routes:\n%s", out)
	}
	if out := l.run(t, []string{"ip", "route", "get", "192.0.2.7"}); !strings.Contains(out, "via 10.0.0.9") {
		t.Errorf("the operator's default route must win: %s", out)
	}
	if out := l.run(t, []string{"ip", "-6", "route", "show", "default"}); !strings.Contains(out, "proto 241 metric 4294967295") || strings.Count(out, "nexthop via ::ffff:10.0.0.") != 2 {
		t.Errorf("IPv6 default route: %s", out)
	}
	if n, err := r.Sync(ctx); err != nil || n != 0 {
		t.Errorf("second pass wrote %d (%v): the routes read back must match", n, err)
	}
	l.run(t, []string{"ip", "route", "del", "default", "via", "10.0.0.9", "proto", "static"})
	if out := l.run(t, []string{"ip", "route", "get", "192.0.2.7"}); !strings.Contains(out, "dev br4001") {
		t.Errorf("without the operator's, evpnd's default route is used: %s", out)
	}
	l.run(t, []string{"ip", "route", "add", "default", "via", "10.0.0.9", "dev", "br100", "onlink", "proto", "static"})
	for _, pf := range []string{"0.0.0.0/0", "::/0"} {
		d.DeletePath(p(pf), a("10.0.0.2"))
		d.DeletePath(p(pf), a("10.0.0.3"))
	}
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	out = l.run(t, []string{"ip", "route", "show", "default"})
	if strings.Contains(out, "proto 241") || !strings.Contains(out, "via 10.0.0.9") {
		t.Errorf("after the withdraw: %s", out)
	}
	if out := l.run(t, []string{"ip", "-6", "route", "show", "default"}); strings.Contains(out, "proto 241") {
		t.Errorf("IPv6 default route left: %s", out)
	}
}

// countingL3 counts the kernel work of an L3Reconciler: its dumps (of
// one kind of object each; Check's, of all, are not counted) and ops.
type countingL3 struct {
	L3Kernel
	dumps, ops atomic.Int64
}

func (c *countingL3) Dump(ctx context.Context, dev L3Devices, kinds ...L3Kind) (L3State, error) {
	if len(kinds) > 0 {
		c.dumps.Add(1)
	}
	return c.L3Kernel.Dump(ctx, dev, kinds...)
}

func (c *countingL3) Apply(ctx context.Context, dev L3Devices, ops []L3Op) []error {
	c.ops.Add(int64(len(ops)))
	return c.L3Kernel.Apply(ctx, dev, ops)
}

// A single drift, a single change and fib's own writes read back cost
// O(1) kernel work: no dump, one op per entry to repair or change,
// however many entries the VRF holds.
func TestL3SingleDriftCost(t *testing.T) {
	l, dev, nk := newL3Lab(t, MainTable)
	k := &countingL3{L3Kernel: nk}
	d := NewL3Desired(dev)
	const hosts = 2000
	for i := range hosts {
		ip := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		must(t, d.SetNeigh("br100", ip, evpn.MAC{2, 1, 0, 0, byte(i >> 8), byte(i)}))
		must(t, d.SetHost(ip, NextHop{a("10.0.0.2"), rm2}))
	}
	var mu sync.Mutex
	var repairs []string
	r := NewL3Reconciler(d, k, testLogger(t), L3Config{OnApply: func(e L3ApplyEvent) {
		if e.Repair {
			mu.Lock()
			repairs = append(repairs, fmt.Sprintf("%s %s %v", e.Table(), e.DriftKind(), e.TraceKeys()))
			mu.Unlock()
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	nsh, err := vnetns.GetFromName(l.ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	events, err := WatchL3(ctx, nsh)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, events) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	// 2000 routes, 2001 neighbours, 1 router MAC.
	const total = 2*hosts + 2
	waitUntil(t, "install", func() bool { return r.Stats().Applied == total })
	// fib's own writes come back (4002 events): they must cost nothing.
	poll.True(t, 5*time.Second, "own writes read back", func() bool {
		ops, err := r.Check(ctx)
		return err == nil && len(ops) == 0 && k.ops.Load() == total
	})
	if n := k.dumps.Load(); n != 3 {
		t.Errorf("%d dumps to install, want 3 (one per kind)", n)
	}
	for _, c := range []struct {
		what   string
		do     func()
		check  []string
		want   string
		writes int64
	}{
		{"route deleted", func() { l.run(t, []string{"ip", "route", "del", "10.1.3.7/32", "proto", "241"}) },
			[]string{"ip", "route", "show", "10.1.3.7/32"}, "10.1.3.7 via 10.0.0.2", 1},
		{"neighbour deleted", func() { l.run(t, []string{"ip", "neigh", "del", "10.1.2.9", "dev", "br100"}) },
			[]string{"ip", "neigh", "show", "10.1.2.9", "dev", "br100"}, "lladdr 02:01:00:00:02:09 extern_learn", 1},
		{"router MAC neighbour replaced", func() {
			l.run(t, []string{"ip", "neigh", "replace", "10.0.0.2", "lladdr", "02:00:00:00:00:99", "dev", "br4001", "nud", "permanent"})
		}, []string{"ip", "neigh", "show", "10.0.0.2", "dev", "br4001"}, "02:ee:0a:00:00:02 extern_learn", 1},
		{"router MAC FDB entry deleted", func() { l.run(t, []string{"bridge", "fdb", "del", "02:ee:0a:00:00:02", "dev", "vxlan4001", "self"}) },
			[]string{"bridge", "fdb", "show", "dev", "vxlan4001"}, "02:ee:0a:00:00:02 dst 10.0.0.2 self", 1},
		{"router MAC bridge entry deleted", func() { l.run(t, []string{"bridge", "fdb", "del", "02:ee:0a:00:00:02", "dev", "vxlan4001", "master"}) },
			[]string{"bridge", "fdb", "show", "dev", "vxlan4001"}, "02:ee:0a:00:00:02 extern_learn master br4001", 1},
		{"host added", func() { must(t, d.SetHost(a("10.1.200.1"), NextHop{a("10.0.0.2"), rm2})) },
			[]string{"ip", "route", "show", "10.1.200.1/32"}, "10.1.200.1 via 10.0.0.2", 1},
	} {
		ops0 := k.ops.Load()
		start := time.Now()
		c.do()
		poll.True(t, 2*time.Second, c.what+": repaired", func() bool { return strings.Contains(l.run(t, c.check), c.want) })
		took := time.Since(start)
		// Let anything else it set off happen before counting.
		poll.True(t, 2*time.Second, c.what+": settled", func() bool {
			ops, err := r.Check(ctx)
			return err == nil && len(ops) == 0
		})
		if got, dumps := k.ops.Load()-ops0, k.dumps.Load()-3; got != c.writes || dumps != 0 {
			t.Errorf("%s: %d ops and %d dumps, want %d ops and no dump", c.what, got, dumps, c.writes)
		}
		t.Logf("%s: %d op(s), %d dumps in all, in %v (VRF of %d entries)", c.what, k.ops.Load()-ops0, k.dumps.Load(), took, total)
	}
	// Each repair was reported once, with the histories it belongs to
	// (dev.MemberVNIs is not set: the suppression neighbour has none).
	mu.Lock()
	defer mu.Unlock()
	want := []string{"route missing [{4001 02:ee:0a:00:00:02}]", "neigh missing []", "neigh missing [{4001 02:ee:0a:00:00:02}]", "rmac missing [{4001 02:ee:0a:00:00:02}]",
		"rmac missing [{4001 02:ee:0a:00:00:02}]"} // its VXLAN side, then its bridge side
	if !slices.Equal(repairs, want) {
		t.Errorf("repairs reported %q, want %q", repairs, want)
	}
}

// The kernel drops a link's IPv4 routes without a report when the link
// goes down: when the L3VNI's SVI goes down and up again, the watch's
// link report makes the reconciler read the kernel again, and the host
// route, type-5 route and router-MAC neighbour come back.
func TestL3LinkFlapRepaired(t *testing.T) {
	l, dev, k := newL3Lab(t, MainTable)
	d := NewL3Desired(dev)
	fillL3(t, d)
	r := NewL3Reconciler(d, k, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	nsh, err := vnetns.GetFromName(l.ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	events, err := WatchL3(ctx, nsh)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, events) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	converged := func() bool {
		ops, err := r.Check(ctx)
		return err == nil && len(ops) == 0
	}
	waitUntil(t, "install", converged)
	dumps := r.Stats().Dumps
	l.run(t, []string{"ip", "link", "set", "br4001", "down"})
	if out := l.run(t, []string{"ip", "route", "show", "proto", "241"}); strings.Contains(out, "10.1.0.20") {
		t.Fatalf("the kernel kept the host route of a link set down (the test's premise):\n%s", out)
	}
	l.run(t, []string{"ip", "link", "set", "br4001", "up"})
	poll.True(t, 2*time.Second, "routes and neighbours back after the link flap", converged)
	if s := r.Stats(); s.Dumps <= dumps {
		t.Errorf("no dump after the link flap: stats %+v", s)
	}
}

// L3Netlink's neighbour and FDB dumps are filtered by device in the
// kernel: the L3VNI's router MACs are read without the FDB entries of the
// other devices (the L2VNIs' remote MACs), suppression neighbours without
// the other SVIs'.
func TestL3DumpFiltered(t *testing.T) {
	l, dev, k := newL3Lab(t, MainTable)
	d := NewL3Desired(dev)
	fillL3(t, d)
	if _, err := NewL3Reconciler(d, k, nil).Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		fam  uint8
		name string
	}{{unix.AF_BRIDGE, "vxlan4001"}, {unix.AF_UNSPEC, "br100"}, {unix.AF_UNSPEC, "br4001"}} {
		idx, err := k.index(c.name)
		if err != nil {
			t.Fatal(err)
		}
		all, err := l.h.NeighList(0, int(c.fam))
		if err != nil {
			t.Fatal(err)
		}
		others := 0
		for _, n := range all {
			if n.LinkIndex != idx {
				others++
			}
		}
		got, err := k.neighList(c.fam, idx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || others == 0 {
			t.Fatalf("%s: %d entries, %d on other devices: the test needs both", c.name, len(got), others)
		}
		for _, n := range got {
			if n.LinkIndex != idx {
				t.Errorf("%s: the dump returned an entry of ifindex %d: %+v", c.name, n.LinkIndex, n)
			}
		}
	}
}

// Another owner's route at one of fib's prefixes replaced fib's only if
// it has the metric fib's has: the operator's default route next to a
// remote default route (LastResortMetric, in a table that routes the
// underlay) costs nothing; a static host route written over fib's is
// undone.
func TestL3ForeignRoute(t *testing.T) {
	l, dev, nk := newL3Lab(t, MainTable)
	dev.UnderlayTable, dev.LocalVTEP = true, a("10.0.0.1")
	k := &countingL3{L3Kernel: nk}
	d := NewL3Desired(dev)
	must(t, d.AddPath(p("0.0.0.0/0"), NextHop{a("10.0.0.2"), rm2}))
	must(t, d.SetHost(a("10.1.0.20"), NextHop{a("10.0.0.2"), rm2}))
	r := NewL3Reconciler(d, k, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	nsh, err := vnetns.GetFromName(l.ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	events, err := WatchL3(ctx, nsh)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, events) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	converged := func() bool {
		ops, err := r.Check(ctx)
		return err == nil && len(ops) == 0
	}
	waitUntil(t, "install", converged)
	ops0 := k.ops.Load()
	l.run(t, []string{"ip", "route", "add", "default", "dev", "br100", "metric", "0"})
	l.run(t, []string{"ip", "route", "replace", "10.1.0.20/32", "dev", "br100", "proto", "static"})
	poll.True(t, 2*time.Second, "the host route undone", func() bool {
		return strings.Contains(l.run(t, []string{"ip", "route", "show", "10.1.0.20/32"}), "proto 241")
	})
	waitUntil(t, "converged", converged)
	out := l.run(t, []string{"ip", "route", "show", "default"})
	if !strings.Contains(out, "default dev br100") || !strings.Contains(out, "proto 241 metric 4294967295") {
		t.Errorf("default routes:\n%s", out)
	}
	if n := k.ops.Load() - ops0; n != 1 {
		t.Errorf("%d ops, want 1 (the host route)", n)
	}
}
