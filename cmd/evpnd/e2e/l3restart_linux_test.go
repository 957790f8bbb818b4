package e2e

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TestTenantVRFRestart: restarting evpnd under routed ping loses nothing
// (issue 10). Hosts on leaf1 ping hosts on leaf2 in the other subnet,
// over IPv4 and IPv6, 50 echo requests a second each, routed by
// symmetric IRB through the L3VNI, while evpnd on leaf1 is stopped with
// SIGTERM, started again, and once synced stopped with SIGKILL and
// started again. Every echo request must be answered, counted by
// sequence number. Across both restarts leaf1's tenant devices are
// adopted (same ifindexes), and a netlink monitor in the namespace of its
// tenant devices sees no deletion or rewrite of an evpnd host route
// (protocol 241), suppression or router-MAC neighbour (extern_learn) or
// router-MAC FDB entry: the L3 state stays in the kernel as it was, and
// the reconciler deletes nothing before End-of-RIB, nor at End-of-RIB what
// the re-sent routes still want.
func TestTenantVRFRestart(t *testing.T) {
	t.Run("netns", func(t *testing.T) { tenantVRFRestart(t, "netns") })
	t.Run("default", func(t *testing.T) { tenantVRFRestart(t, "default") })
}

func tenantVRFRestart(t *testing.T, backend string) {
	const leaf = "leaf1"
	f, tenants := deployL3(t, backend)
	for host, gws := range map[string][]string{
		"h1": {"10.1.0.1", "2001:db8:1::1"}, "h3": {"10.2.0.1", "2001:db8:2::1"},
		"h2": {"10.1.0.1", "2001:db8:1::1"}, "h4": {"10.2.0.1", "2001:db8:2::1"},
	} {
		for _, gw := range gws {
			f.waitPing(host, gw)
		}
	}
	routed := []struct{ from, to string }{
		{"h1", "10.2.0.14"}, {"h1", "2001:db8:2::14"}, // leaf1 subnet A -> leaf2 subnet B
		{"h3", "10.1.0.12"}, {"h3", "2001:db8:1::12"}, // leaf1 subnet B -> leaf2 subnet A
	}
	for _, p := range routed {
		if err := f.pingUntil(t.Context(), p.from, p.to, changeTimeout); err != nil {
			t.Fatalf("routed %s -> %s before the restarts: %v", p.from, p.to, err)
		}
	}
	devs := []string{"br100", "vxlan100", "br200", "vxlan200", "br4001", "vxlan4001"}
	indexes := tenantIndexes(t, tenants[leaf], devs)
	mon := monitorL3(t, tenants[leaf])

	pings := map[string]*background{}
	for _, p := range routed {
		pings[p.from+" -> "+p.to] = f.start(p.from, "ping", "-n", "-D", "-i", "0.02", p.to)
	}
	pingsAnswered(t, pings)

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		stopped := time.Now()
		if err := f.lab.Stop(leaf, sig); err != nil {
			t.Fatal(err)
		}
		// Down for a while, by the pings' own count: routed traffic
		// flows on the kernel state evpnd left.
		pingsMore(t, pings, 10, "while evpnd on "+leaf+" is down")
		restarted := time.Now()
		if err := f.lab.Start(leaf); err != nil {
			t.Fatal(err)
		}
		synced := eventually(t, convergeTimeout, leaf+" restarted and synced on End-of-RIB", func() error {
			log := f.lastRunLog(leaf)
			if !strings.Contains(log, "restarting=true") {
				return fmt.Errorf("no start with restarting=true logged yet:\n%s", tail(log, 20))
			}
			if !strings.Contains(log, "End-of-RIB received from every established peer") {
				return fmt.Errorf("no End-of-RIB from the spine yet:\n%s", tail(log, 20))
			}
			return nil
		})
		// The prune phase after the sync, by the pings' count again.
		pingsMore(t, pings, 25, "after the restart")
		t.Logf("evpnd on %s stopped with %s at %s, down for %v, synced %v after its start",
			leaf, unix.SignalName(sig), stopped.Format("15:04:05.000000"), restarted.Sub(stopped).Round(time.Millisecond), synced.Round(time.Millisecond))
	}
	pingsLoseNothing(t, pings, 10, "across the SIGTERM and SIGKILL restarts of evpnd on "+leaf)

	if now := tenantIndexes(t, tenants[leaf], devs); !mapsEqual(now, indexes) {
		t.Errorf("%s: tenant devices recreated across the restarts: ifindexes %v, were %v", leaf, now, indexes)
	}
	// The monitor's control: a host route deleted now must show, with
	// its repair (a monitor that sees nothing cannot pass).
	control := time.Now()
	tenantExec(t, tenants[leaf], "ip", "route", "del", "10.2.0.14/32")
	eventually(t, changeTimeout, "the monitor sees the control deletion and its repair", func() error {
		var del, put bool
		for _, ev := range mon.events() {
			if ev.key == "route 10.2.0.14/32" && ev.at.After(control) {
				del = del || ev.del
				put = put || (del && !ev.del)
			}
		}
		if !del || !put {
			return fmt.Errorf("deletion seen %v, repair seen %v", del, put)
		}
		return nil
	})
	events, err := mon.stop()
	if err != nil {
		t.Errorf("L3 monitor on %s: %v", leaf, err)
	}
	// Nothing changed while evpnd was away: a restart that adopts its
	// state neither deletes nor rewrites an entry.
	var touched []string
	for _, ev := range events {
		if ev.at.Before(control) {
			touched = append(touched, ev.String())
		}
	}
	if len(touched) > 0 {
		t.Errorf("%s: evpnd's L3 entries were deleted or rewritten across the restarts:\n  %s", leaf, strings.Join(touched, "\n  "))
	}
	var lines []string
	for _, ev := range events {
		lines = append(lines, ev.String())
	}
	t.Logf("%s: %d L3 events during the restarts and the control (writes included; the control at %s):\n  %s",
		leaf, len(events), control.Format("15:04:05.000000"), strings.Join(lines, "\n  "))
	for _, line := range strings.Split(f.lastRunLog(leaf), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "l3 pass failed") {
			t.Errorf("%s logged: %s", leaf, line)
		}
	}
}

// harmlessNetlinkReport tells the netlink library's reports of a message
// from a sender other than the kernel, after which its subscription goes
// on (a real failure closes the channel): a monitor must not count them.
func harmlessNetlinkReport(err error) bool {
	return strings.Contains(err.Error(), "Wrong sender portid")
}

// pingsMore waits until every ping of pings has had more further answers.
func pingsMore(t *testing.T, pings map[string]*background, more int, when string) {
	t.Helper()
	seen := map[string]int{}
	for name, p := range pings {
		seen[name] = len(parseReplies(p.output()))
	}
	eventually(t, changeTimeout, "pings answered "+when, func() error {
		for name, p := range pings {
			if n := len(parseReplies(p.output())); n < seen[name]+more {
				return fmt.Errorf("%s: %d of %d more replies", name, n-seen[name], more)
			}
		}
		return nil
	})
}

// tenantIndexes returns the ifindex of each of devs in ns.
func tenantIndexes(t *testing.T, ns *netns.NS, devs []string) map[string]int {
	t.Helper()
	h, err := ns.Handle()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	out := map[string]int{}
	for _, d := range devs {
		l, err := h.LinkByName(d)
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		out[d] = l.Attrs().Index
	}
	return out
}

// l3Event is a change of one of evpnd's L3 entries seen by monitorL3.
type l3Event struct {
	at  time.Time
	del bool
	key string
}

func (e l3Event) String() string {
	op := "new"
	if e.del {
		op = "deleted"
	}
	return fmt.Sprintf("%s %s %s", e.at.Format("15:04:05.000000"), op, e.key)
}

// l3Monitor records, in one namespace, the route events of evpnd's
// routes (protocol 241) and the neighbour events of extern_learn
// entries: neighbours (suppression, router MAC) and FDB entries.
type l3Monitor struct {
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	evs  []l3Event
	errs []error
}

// evpndRouteProtocol is fib.RouteProtocol, the mark of evpnd's routes.
const evpndRouteProtocol = 241

func monitorL3(t *testing.T, ns *netns.NS) *l3Monitor {
	t.Helper()
	nsh, err := vnetns.GetFromName(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	m := &l3Monitor{done: make(chan struct{})}
	// The library reports harmless problems through the callback too (a
	// message from a sender other than the kernel) and goes on; a real
	// failure (an overrun) closes the channel, seen below.
	onErr := func(err error) {
		if harmlessNetlinkReport(err) {
			return
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		select {
		case <-m.done:
		default:
			m.errs = append(m.errs, err)
		}
	}
	closed := func(what string) {
		m.mu.Lock()
		defer m.mu.Unlock()
		select {
		case <-m.done:
		default:
			m.errs = append(m.errs, fmt.Errorf("the %s subscription ended early", what))
		}
	}
	routes := make(chan netlink.RouteUpdate, 1024)
	neighs := make(chan netlink.NeighUpdate, 1024)
	if err := netlink.RouteSubscribeWithOptions(routes, m.done, netlink.RouteSubscribeOptions{Namespace: &nsh, ErrorCallback: onErr}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.NeighSubscribeWithOptions(neighs, m.done, netlink.NeighSubscribeOptions{Namespace: &nsh, ErrorCallback: onErr}); err != nil {
		t.Fatal(err)
	}
	add := func(del bool, key string) {
		m.mu.Lock()
		m.evs = append(m.evs, l3Event{at: time.Now(), del: del, key: key})
		m.mu.Unlock()
	}
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		for u := range routes {
			if u.Protocol != evpndRouteProtocol || u.Dst == nil {
				continue
			}
			add(u.Type == unix.RTM_DELROUTE, "route "+u.Dst.String())
		}
		closed("route")
	}()
	// An administrative delete clears a neighbour's extern_learn flag
	// before the kernel reports it: deletions are matched by key against
	// the extern_learn entries found at the start or seen since.
	ext, err := extLearnedKeys(ns)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer m.wg.Done()
		for u := range neighs {
			k := neighKey(u.Neigh)
			if u.Flags&netlink.NTF_EXT_LEARNED != 0 {
				ext[k] = true
			} else if u.Type != unix.RTM_DELNEIGH || !ext[k] {
				continue
			}
			add(u.Type == unix.RTM_DELNEIGH, k)
		}
		closed("neighbour")
	}()
	t.Cleanup(func() { m.stop() })
	return m
}

// neighKey names a neighbour or FDB entry without its state and flags.
func neighKey(n netlink.Neigh) string {
	if n.Family == unix.AF_BRIDGE {
		return fmt.Sprintf("fdb %s dst %s ifindex %d", n.HardwareAddr, ipString(n.IP), n.LinkIndex)
	}
	return fmt.Sprintf("neigh %s ifindex %d", ipString(n.IP), n.LinkIndex)
}

// extLearnedKeys returns the keys of the extern_learn neighbours and FDB
// entries in ns.
func extLearnedKeys(ns *netns.NS) (map[string]bool, error) {
	h, err := ns.Handle()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	out := map[string]bool{}
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6, unix.AF_BRIDGE} {
		ns, err := h.NeighList(0, fam)
		if err != nil {
			return nil, err
		}
		for _, n := range ns {
			if n.Flags&netlink.NTF_EXT_LEARNED != 0 {
				out[neighKey(n)] = true
			}
		}
	}
	return out, nil
}

// events returns the events so far.
func (m *l3Monitor) events() []l3Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]l3Event(nil), m.evs...)
}

// stop ends the subscriptions and returns the events and any error of
// the subscriptions (an overrun would mean lost events).
func (m *l3Monitor) stop() ([]l3Event, error) {
	m.mu.Lock()
	select {
	case <-m.done:
	default:
		close(m.done)
	}
	m.mu.Unlock()
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	var err error
	if len(m.errs) > 0 {
		err = fmt.Errorf("%d subscription errors, first: %w", len(m.errs), m.errs[0])
	}
	return m.evs, err
}
