package fib

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/evpnd/evpnd/containerlab/poll"
	vnetns "github.com/vishvananda/netns"
)

// underlayLab is a leaf namespace with two /31 links to a spine namespace
// (10.1.1.1/31 via l1 to 10.1.1.0, 10.2.1.1/31 via l2 to 10.2.1.0) and
// loopback 10.0.0.1, running an Underlay reconciler.
type underlayLab struct {
	leaf   *netns.NS
	u      *Underlay
	mu     sync.Mutex
	conn   func(netip.Addr) bool
	drifts map[DriftKind]int // repairs reported to OnRepair
	hold   chan struct{}     // OnLinks waits for it to close while set
	held   int               // calls of OnLinks that waited
}

func newUnderlayLab(t *testing.T) *underlayLab {
	t.Helper()
	netns.RequireLinkKind(t, "veth")
	leaf := netns.ForTest(t, "ul-leaf")
	spine := netns.ForTest(t, "ul-spine")
	l := &underlayLab{leaf: leaf}
	run := func(ns *netns.NS, argv ...string) {
		t.Helper()
		if _, err := ns.Exec(context.Background(), argv...); err != nil {
			t.Fatal(err)
		}
	}
	run(leaf, "ip", "link", "set", "lo", "up")
	run(leaf, "ip", "addr", "add", "10.0.0.1/32", "dev", "lo")
	for i, pair := range [][2]string{{"l1", "s1"}, {"l2", "s2"}} {
		n := string(rune('1' + i))
		run(leaf, "ip", "link", "add", pair[0], "type", "veth", "peer", "name", pair[1], "netns", spine.Name)
		run(leaf, "ip", "addr", "add", "10."+n+".1.1/31", "dev", pair[0])
		run(spine, "ip", "addr", "add", "10."+n+".1.0/31", "dev", pair[1])
		run(leaf, "ip", "link", "set", pair[0], "up")
		run(spine, "ip", "link", "set", pair[1], "up")
	}
	nsh, err := vnetns.GetFromPath(leaf.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nsh.Close() })
	l.drifts = map[DriftKind]int{}
	u, err := NewUnderlay(nsh, UnderlayConfig{Logger: testLogger(t), OnLinks: func(c func(netip.Addr) bool) {
		l.mu.Lock()
		l.conn = c
		hold := l.hold
		if hold != nil {
			l.held++
		}
		l.mu.Unlock()
		if hold != nil {
			<-hold
		}
	}, OnRepair: func(_ UnderlayOp, k DriftKind) {
		l.mu.Lock()
		l.drifts[k]++
		l.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	l.u = u
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		u.Close()
	})
	return l
}

func (l *underlayLab) routes(t *testing.T) string {
	t.Helper()
	out, err := l.leaf.Exec(context.Background(), "ip", "-4", "route", "show", "table", "main", "proto", "183")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(out), " ")
}

// waitRoutes polls the kernel until its proto-183 routes read want (ip
// leaves the protocol out when it filters on it).
func (l *underlayLab) waitRoutes(t *testing.T, what, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := l.routes(t)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: kernel has %q, want %q", what, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitDrift waits until OnRepair has reported a repair of kind (it runs
// after the write the kernel already shows).
func (l *underlayLab) waitDrift(t *testing.T, kind DriftKind) {
	t.Helper()
	var n int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		l.mu.Lock()
		n = l.drifts[kind]
		l.mu.Unlock()
		if n > 0 {
			break
		}
	}
	if n == 0 {
		t.Errorf("OnRepair reported no repair of a %s route", kind)
	}
}

func TestUnderlayKernel(t *testing.T) {
	l := newUnderlayLab(t)
	a := netip.MustParseAddr
	src := a("10.0.0.1")
	both := []netip.Addr{a("10.2.1.0"), a("10.1.1.0")}
	const ecmp = "10.0.0.2 src 10.0.0.1 nexthop via 10.1.1.0 dev l1 weight 1 nexthop via 10.2.1.0 dev l2 weight 1"
	pf := netip.MustParsePrefix

	l.u.Set([]UnderlayRoute{{Prefix: pf("10.0.0.2/32"), NextHops: both, Src: src}})
	l.waitRoutes(t, "ECMP install", ecmp)

	l.u.Set([]UnderlayRoute{{Prefix: pf("10.0.0.2/32"), NextHops: both[:1], Src: src}})
	l.waitRoutes(t, "replace by one next hop", "10.0.0.2 via 10.2.1.0 dev l2 src 10.0.0.1")

	l.u.Set([]UnderlayRoute{{Prefix: pf("10.0.0.2/32"), NextHops: both, Src: src}})
	l.waitRoutes(t, "back to ECMP", ecmp)
	if n := l.u.Repairs(); n != 0 {
		t.Errorf("%d repairs counted for evpnd's own writes", n)
	}

	// Drift: deleted, changed, and a foreign route with evpnd's mark; a
	// route of another protocol is left alone.
	ctx := context.Background()
	if _, err := l.leaf.Exec(ctx, "ip", "route", "add", "10.0.0.98/32", "via", "10.1.1.0", "proto", "static"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.leaf.Exec(ctx, "ip", "route", "del", "10.0.0.2/32"); err != nil {
		t.Fatal(err)
	}
	l.waitRoutes(t, "deleted route put back", ecmp)
	l.waitDrift(t, DriftMissing)
	if _, err := l.leaf.Exec(ctx, "ip", "route", "replace", "10.0.0.2/32", "via", "10.1.1.0", "proto", "183"); err != nil {
		t.Fatal(err)
	}
	l.waitRoutes(t, "changed route put back", ecmp)
	l.waitDrift(t, DriftWrong)
	if _, err := l.leaf.Exec(ctx, "ip", "route", "add", "10.0.0.99/32", "via", "10.1.1.0", "proto", "183"); err != nil {
		t.Fatal(err)
	}
	l.waitRoutes(t, "foreign marked route deleted", ecmp)
	l.waitDrift(t, DriftExtra)
	if n := l.u.Repairs(); n < 3 {
		t.Errorf("%d repairs counted, want at least 3", n)
	}
	if out, _ := l.leaf.Exec(ctx, "ip", "route", "show", "10.0.0.98/32"); !strings.Contains(out, "proto static") {
		t.Errorf("a static route was touched: %q", out)
	}

	// A link goes down: the kernel flushes the multipath route, fib puts
	// it back over the live link, and reports the dead gateway as not
	// connected; back up, ECMP again.
	repairs := l.u.Repairs()
	if _, err := l.leaf.Exec(ctx, "ip", "link", "set", "l2", "down"); err != nil {
		t.Fatal(err)
	}
	l.waitRoutes(t, "link down", "10.0.0.2 via 10.1.1.0 dev l1 src 10.0.0.1")
	l.mu.Lock()
	c := l.conn
	l.mu.Unlock()
	if c(a("10.2.1.0")) || !c(a("10.1.1.0")) {
		t.Errorf("connected(10.2.1.0)=%v connected(10.1.1.0)=%v after l2 went down", c(a("10.2.1.0")), c(a("10.1.1.0")))
	}
	if _, err := l.leaf.Exec(ctx, "ip", "link", "set", "l2", "up"); err != nil {
		t.Fatal(err)
	}
	l.waitRoutes(t, "link up", ecmp)
	if n := l.u.Repairs(); n != repairs {
		t.Errorf("a link change counted %d repairs", n-repairs)
	}

	// Withdrawn.
	l.u.Set(nil)
	l.waitRoutes(t, "withdraw", "")
}

// TestUnderlayRepairBeforeOnLinks: when a link goes down, the route over
// it is rewritten over the live link while OnLinks (the daemon's fast
// external failover, a call into the BGP server) has not returned.
func TestUnderlayRepairBeforeOnLinks(t *testing.T) {
	l := newUnderlayLab(t)
	a := netip.MustParseAddr
	pf := netip.MustParsePrefix
	l.u.Set([]UnderlayRoute{{Prefix: pf("10.0.0.2/32"), NextHops: []netip.Addr{a("10.1.1.0"), a("10.2.1.0")}, Src: a("10.0.0.1")}})
	l.waitRoutes(t, "ECMP install", "10.0.0.2 src 10.0.0.1 nexthop via 10.1.1.0 dev l1 weight 1 nexthop via 10.2.1.0 dev l2 weight 1")
	hold := make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	t.Cleanup(release) // before the lab's cleanup stops Run
	l.mu.Lock()
	l.hold = hold
	l.mu.Unlock()
	if _, err := l.leaf.Exec(context.Background(), "ip", "link", "set", "l2", "down"); err != nil {
		t.Fatal(err)
	}
	l.waitRoutes(t, "link down, OnLinks held", "10.0.0.2 via 10.1.1.0 dev l1 src 10.0.0.1")
	l.mu.Lock()
	held := l.held
	l.hold = nil
	l.mu.Unlock()
	release()
	if held == 0 {
		t.Error("OnLinks was not called after the link went down")
	}
}

// The same reconciler keeps a tenant VRF's static routes: IPv4 and IPv6,
// in the VRF's table, marked StaticProtocol, next to the underlay's and
// the L3 reconciler's routes of that table, which it leaves alone.
func TestStaticRoutesKernel(t *testing.T) {
	netns.RequireLinkKind(t, "veth")
	leaf := netns.ForTest(t, "st-leaf")
	ext := netns.ForTest(t, "st-ext")
	ctx := context.Background()
	run := func(ns *netns.NS, argv ...string) {
		t.Helper()
		if _, err := ns.Exec(ctx, argv...); err != nil {
			t.Fatal(err)
		}
	}
	run(leaf, "ip", "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", ext.Name)
	run(leaf, "ip", "addr", "add", "192.0.2.1/30", "dev", "up0")
	run(leaf, "ip", "addr", "add", "2001:db8:ff::1/126", "dev", "up0", "nodad")
	run(ext, "ip", "link", "set", "eth0", "up")
	run(leaf, "ip", "link", "set", "up0", "up")
	// Routes of the others in the same table: the underlay's and a type-5.
	run(leaf, "ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.2", "proto", "183")
	run(leaf, "ip", "route", "add", "203.0.113.0/24", "via", "192.0.2.2", "proto", "241")
	nsh, err := vnetns.GetFromPath(leaf.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nsh.Close() })
	u, err := NewUnderlay(nsh, UnderlayConfig{Logger: testLogger(t), Table: MainTable, Protocol: StaticProtocol, IPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- u.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		u.Close()
	})
	a, pf := netip.MustParseAddr, netip.MustParsePrefix
	routes := func() string {
		var b strings.Builder
		for _, fam := range []string{"-4", "-6"} {
			out, err := leaf.Exec(ctx, "ip", fam, "route", "show", "proto", "242")
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(strings.Join(strings.Fields(out), " "))
			b.WriteString("|")
		}
		return b.String()
	}
	wait := func(what, want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			got := routes()
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: kernel has %q, want %q", what, got, want)
			}
		}
	}
	u.Set([]UnderlayRoute{
		{Prefix: pf("0.0.0.0/0"), NextHops: []netip.Addr{a("192.0.2.2")}},
		{Prefix: pf("::/0"), NextHops: []netip.Addr{a("2001:db8:ff::2")}},
		{Prefix: pf("10.9.0.0/16"), NextHops: []netip.Addr{a("10.77.0.1")}}, // not connected: not installed
	})
	const both = "default via 192.0.2.2 dev up0|default via 2001:db8:ff::2 dev up0 metric 1024 pref medium|"
	wait("install", both)
	// Drift repaired; the link going down and up takes the routes with it
	// and back.
	run(leaf, "ip", "-6", "route", "del", "::/0", "proto", "242")
	wait("deleted route put back", both)
	for _, r := range []string{"198.51.100.0/24", "203.0.113.0/24"} {
		if out, _ := leaf.Exec(ctx, "ip", "route", "show", r); !strings.Contains(out, "via 192.0.2.2") {
			t.Errorf("another reconciler's route %s was touched: %q", r, out)
		}
	}
	run(leaf, "ip", "link", "set", "up0", "down")
	wait("uplink down", "||")
	run(leaf, "ip", "link", "set", "up0", "up")
	run(leaf, "ip", "addr", "replace", "2001:db8:ff::1/126", "dev", "up0", "nodad") // IPv6 addresses go with the link
	wait("uplink up", both)
	u.Set(nil)
	wait("withdraw", "||")
}

// With LastResortDefault (a default-backend VRF's static routes in the
// main table) a static default route goes in next to the operator's,
// which stays and wins, and its withdraw removes evpnd's only.
func TestStaticDefaultLastResortKernel(t *testing.T) {
	netns.RequireLinkKind(t, "veth")
	leaf := netns.ForTest(t, "sd-leaf")
	ext := netns.ForTest(t, "sd-ext")
	ctx := context.Background()
	run := func(argv ...string) string {
		t.Helper()
		out, err := leaf.Exec(ctx, argv...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	run("ip", "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", ext.Name)
	run("ip", "addr", "add", "192.0.2.1/29", "dev", "up0")
	run("ip", "link", "set", "up0", "up")
	if _, err := ext.Exec(ctx, "ip", "link", "set", "eth0", "up"); err != nil {
		t.Fatal(err)
	}
	run("ip", "route", "add", "default", "via", "192.0.2.2", "proto", "static") // the operator's
	nsh, err := vnetns.GetFromPath(leaf.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nsh.Close() })
	u, err := NewUnderlay(nsh, UnderlayConfig{Logger: testLogger(t), Protocol: StaticProtocol, IPv6: true, LastResortDefault: true})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- u.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		u.Close()
	})
	u.Set([]UnderlayRoute{{Prefix: netip.MustParsePrefix("0.0.0.0/0"), NextHops: []netip.Addr{netip.MustParseAddr("192.0.2.3")}}})
	waitUntil(t, "static default route next to the operator's", func() bool {
		out := run("ip", "route", "show", "default")
		return strings.Contains(out, "default via 192.0.2.2 dev up0 proto static") && strings.Contains(out, "default via 192.0.2.3 dev up0 proto 242 metric 4294967295")
	})
	if out := run("ip", "route", "get", "198.51.100.1"); !strings.Contains(out, "via 192.0.2.2") {
		t.Errorf("the operator's default route must win: %s", out)
	}
	u.Set(nil)
	waitUntil(t, "static default route withdrawn, the operator's kept", func() bool {
		out := run("ip", "route", "show", "default")
		return !strings.Contains(out, "proto 242") && strings.Contains(out, "via 192.0.2.2")
	})
}

// Check reports what a pass would write, and writes nothing.
func TestUnderlayCheckKernel(t *testing.T) {
	netns.RequireLinkKind(t, "veth")
	leaf := netns.ForTest(t, "uc-leaf")
	ext := netns.ForTest(t, "uc-ext")
	ctx := context.Background()
	run := func(argv ...string) {
		t.Helper()
		if _, err := leaf.Exec(ctx, argv...); err != nil {
			t.Fatal(err)
		}
	}
	run("ip", "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", ext.Name)
	run("ip", "addr", "add", "192.0.2.1/29", "dev", "up0")
	run("ip", "addr", "add", "2001:db8:ff::1/126", "dev", "up0", "nodad")
	run("ip", "link", "set", "up0", "up")
	if _, err := ext.Exec(ctx, "ip", "link", "set", "eth0", "up"); err != nil {
		t.Fatal(err)
	}
	// A next hop counts while its link is up, carrier included, which the
	// kernel may report a little after both ends are set up.
	if _, err := poll.Until(ctx, 5*time.Second, 2*time.Millisecond, func() error {
		out, err := leaf.Exec(ctx, "ip", "-br", "link", "show", "up0")
		if err != nil || !strings.Contains(out, " UP ") {
			return fmt.Errorf("up0 not up yet: %q %v", out, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	nsh, err := vnetns.GetFromPath(leaf.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nsh.Close() })
	u, err := NewUnderlay(nsh, UnderlayConfig{Logger: testLogger(t), Protocol: StaticProtocol, IPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	pf, a := netip.MustParsePrefix, netip.MustParseAddr
	u.Set([]UnderlayRoute{
		{Prefix: pf("0.0.0.0/0"), NextHops: []netip.Addr{a("192.0.2.2")}},
		{Prefix: pf("::/0"), NextHops: []netip.Addr{a("2001:db8:ff::2")}},
		{Prefix: pf("10.9.0.0/16"), NextHops: []netip.Addr{a("10.77.0.1")}}, // not connected: not wanted now
	})
	check := func() string {
		t.Helper()
		wanted, drifts, err := u.Check()
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%d:", wanted)
		for _, d := range drifts {
			fmt.Fprintf(&b, " %s (%s);", d.Op, d.Kind)
		}
		return b.String()
	}
	if got, want := check(), "2: replace 0.0.0.0/0 nexthop via 192.0.2.2 (missing); replace ::/0 nexthop via 2001:db8:ff::2 (missing);"; got != want {
		t.Errorf("nothing installed: %s, want %s", got, want)
	}
	run("ip", "route", "add", "default", "via", "192.0.2.3", "proto", "242")
	run("ip", "-6", "route", "add", "default", "via", "2001:db8:ff::2", "proto", "242")
	run("ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.2", "proto", "242")
	if got, want := check(), "2: replace 0.0.0.0/0 nexthop via 192.0.2.2 (wrong); delete 198.51.100.0/24 nexthop via 192.0.2.2 (extra);"; got != want {
		t.Errorf("wrong and extra: %s, want %s", got, want)
	}
	if out, _ := leaf.Exec(ctx, "ip", "route", "show", "default"); !strings.Contains(out, "via 192.0.2.3") {
		t.Errorf("Check wrote: %s", out)
	}
}
