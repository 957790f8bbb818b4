package vtep

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/evpnd/evpnd/speaker/evpn"
	vnetns "github.com/vishvananda/netns"
)

// collector records a Learner's events and folds them into a state, as
// the daemon's consumer would. hold, when set, blocks out until closed.
type collector struct {
	mu    sync.Mutex
	evs   []MACEvent
	state map[MACKey]LocalMAC
	hold  chan struct{}
}

func newCollector() *collector { return &collector{state: map[MACKey]LocalMAC{}} }

func (c *collector) out(ev MACEvent) {
	c.mu.Lock()
	hold := c.hold
	c.mu.Unlock()
	if hold != nil {
		<-hold
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evs = append(c.evs, ev)
	k := MACKey{VNI: ev.VNI, MAC: ev.MAC}
	if ev.Removed {
		delete(c.state, k)
	} else {
		c.state[k] = LocalMAC{Port: ev.Port, Static: ev.Static}
	}
}

// waitFor polls cond under the collector's lock until it holds or a
// deadline passes.
func (c *collector) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.mu.Lock()
			defer c.mu.Unlock()
			st := fmt.Sprint(c.state)
			if len(c.state) > 10 {
				st = fmt.Sprintf("(%d MACs)", len(c.state))
			}
			t.Fatalf("timed out waiting for %s; state %s; last events %v", what, st, tail(c.evs, 10))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func tail(evs []MACEvent, n int) []MACEvent {
	if len(evs) > n {
		return evs[len(evs)-n:]
	}
	return evs
}

func (c *collector) eventsFor(mac evpn.MAC) []MACEvent {
	var r []MACEvent
	for _, ev := range c.evs {
		if ev.MAC == mac {
			r = append(r, ev)
		}
	}
	return r
}

func mac(t *testing.T, s string) evpn.MAC {
	t.Helper()
	m, err := evpn.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func nsHandle(t testing.TB, ns *netns.NS) vnetns.NsHandle {
	t.Helper()
	h, err := vnetns.GetFromName(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// runLearner runs l until the test ends and checks that Run returns.
func runLearner(t testing.TB, l *Learner, c *collector) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- l.Run(ctx, c.out) }()
	t.Cleanup(func() {
		cancel()
		c.mu.Lock()
		if c.hold != nil {
			select {
			case <-c.hold:
			default:
				close(c.hold)
			}
		}
		c.mu.Unlock()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

const hostMAC = "02:00:00:00:00:bb"

// learnerLab builds leaf namespace with l2vni 100 (access port acc0) whose
// veth peer host0 sits in a host namespace as 192.168.100.1/24 with MAC
// hostMAC and IPv6 off, so the host sends nothing unasked.
func learnerLab(t *testing.T) (leaf, host *netns.NS, m *Manager) {
	leaf, h := testNS(t, "vtl")
	host = netns.ForTest(t, "vth")
	sh(t, leaf, "ip", "link", "add", "acc0", "type", "veth", "peer", "name", "host0")
	sh(t, leaf, "ip", "link", "set", "host0", "netns", host.Name)
	sh(t, host, "sysctl", "-qw", "net.ipv6.conf.host0.disable_ipv6=1")
	sh(t, host, "ip", "link", "set", "host0", "address", hostMAC)
	sh(t, host, "ip", "addr", "add", "192.168.100.1/24", "dev", "host0")
	sh(t, host, "ip", "link", "set", "host0", "up")
	m = NewManager(h, nsHandle(t, leaf), testLog(t))
	if err := m.Ensure(context.Background(), []L2VNI{vniSpec(100, "acc0")}); err != nil {
		t.Fatal(err)
	}
	waitForwarding(t, leaf, "acc0")
	return leaf, host, m
}

func TestLearner(t *testing.T) {
	leaf, host, m := learnerLab(t)
	ctx := context.Background()
	static, dyn, marker, other := mac(t, "02:00:00:00:00:01"), mac(t, "02:00:00:00:00:aa"), mac(t, "02:00:00:00:00:cc"), mac(t, "02:00:00:00:00:dd")
	bb := mac(t, hostMAC)

	// Present before Run: reported as the initial state.
	sh(t, leaf, "bridge", "fdb", "add", static.String(), "dev", "acc0", "master", "static")
	l := NewLearner(nsHandle(t, leaf), []L2VNI{vniSpec(100, "acc0")}, testLog(t))
	c := newCollector()
	runLearner(t, l, c)
	k := func(vni uint32, m evpn.MAC) MACKey { return MACKey{VNI: vni, MAC: m} }
	c.waitFor(t, "initial static MAC", func() bool { return c.state[k(100, static)] == LocalMAC{Port: "acc0", Static: true} })

	// Learned, then deleted.
	sh(t, leaf, "bridge", "fdb", "add", dyn.String(), "dev", "acc0", "master", "dynamic")
	c.waitFor(t, "dynamic MAC add", func() bool { return c.state[k(100, dyn)] == LocalMAC{Port: "acc0"} })
	sh(t, leaf, "bridge", "fdb", "del", dyn.String(), "dev", "acc0", "master")
	c.waitFor(t, "dynamic MAC removal", func() bool {
		evs := c.eventsFor(dyn)
		return len(evs) == 2 && evs[1].Removed && evs[1].Port == "acc0" && evs[1].VNI == 100
	})

	// A remote MAC (extern_learn on the VXLAN port) is not local. The
	// marker, added after it, proves the learner has seen past it.
	// Nor is an extern_learn entry on an access port: only evpnd
	// installs those.
	ext := mac(t, "02:00:00:00:00:ee")
	sh(t, leaf, "bridge", "fdb", "add", bb.String(), "dev", "vxlan100", "master", "extern_learn")
	sh(t, leaf, "bridge", "fdb", "add", ext.String(), "dev", "acc0", "master", "extern_learn")
	sh(t, leaf, "bridge", "fdb", "add", marker.String(), "dev", "acc0", "master", "dynamic")
	c.waitFor(t, "marker MAC", func() bool { _, ok := c.state[k(100, marker)]; return ok })
	c.mu.Lock()
	if evs := append(c.eventsFor(bb), c.eventsFor(ext)...); len(evs) != 0 {
		t.Errorf("extern_learn MACs reported: %v", evs)
	}
	c.mu.Unlock()

	// The host sends one frame (an echo to a neighbour on its own subnet,
	// pinned by a static ARP entry so that no ARP retries follow): the
	// bridge learns hostMAC on acc0, taking the entry over from the VXLAN
	// port. That is a local learn.
	sh(t, host, "ip", "neigh", "replace", "192.168.100.2", "lladdr", "02:00:00:00:00:99", "dev", "host0", "nud", "permanent")
	_, _ = host.Exec(ctx, "ping", "-c1", "-W1", "192.168.100.2")
	c.waitFor(t, "move from vxlan100 to acc0", func() bool { return c.state[k(100, bb)] == LocalMAC{Port: "acc0"} })
	if fdb := sh(t, leaf, "bridge", "fdb", "show", "dev", "acc0"); !strings.Contains(fdb, hostMAC) || strings.Contains(lineWith(fdb, hostMAC), "extern_learn") {
		t.Errorf("kernel FDB after the move:\n%s", fdb)
	}

	// evpnd installs it as remote again: it moved away, so Removed.
	sh(t, leaf, "bridge", "fdb", "replace", bb.String(), "dev", "vxlan100", "master", "extern_learn")
	c.waitFor(t, "move back to vxlan100", func() bool {
		evs := c.eventsFor(bb)
		return len(evs) == 2 && evs[1].Removed && evs[1].Port == "acc0"
	})

	// Dump agrees with what was reported, and neither holds the ports' own
	// (permanent) addresses.
	got, err := l.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[MACKey]LocalMAC{k(100, static): {Port: "acc0", Static: true}, k(100, marker): {Port: "acc0"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Dump = %v, want %v", got, want)
	}
	c.mu.Lock()
	if fmt.Sprint(c.state) != fmt.Sprint(want) {
		t.Errorf("reported state %v, want %v", c.state, want)
	}
	c.mu.Unlock()

	// Runtime VNI add: the new VNI's existing MACs are reported.
	sh(t, leaf, "ip", "link", "add", "acc1", "type", "veth", "peer", "name", "host1")
	sh(t, leaf, "sysctl", "-qw", "net.ipv6.conf.host1.disable_ipv6=1")
	sh(t, leaf, "ip", "link", "set", "host1", "up")
	vnis := []L2VNI{vniSpec(100, "acc0"), vniSpec(200, "acc1")}
	if err := m.Ensure(ctx, vnis); err != nil {
		t.Fatal(err)
	}
	waitForwarding(t, leaf, "acc1")
	sh(t, leaf, "bridge", "fdb", "add", other.String(), "dev", "acc1", "master", "dynamic")
	l.SetVNIs(vnis)
	c.waitFor(t, "MAC of added VNI 200", func() bool { return c.state[k(200, other)] == LocalMAC{Port: "acc1"} })

	// Runtime VNI removal: its MACs are reported Removed. VNI 200 now also
	// lists acc2, which does not exist yet.
	l.SetVNIs([]L2VNI{vniSpec(200, "acc1", "acc2")})
	c.waitFor(t, "removal of VNI 100's MACs", func() bool { return len(c.state) == 1 })
	c.mu.Lock()
	n := len(c.evs)
	for _, ev := range c.evs[n-2:] {
		if !ev.Removed || ev.VNI != 100 {
			t.Errorf("after removing VNI 100: event %+v, want a VNI 100 removal", ev)
		}
	}
	c.mu.Unlock()

	// acc2 is plugged in later: its ifindex, unknown at the last resync,
	// is looked up when its first FDB event arrives.
	sh(t, leaf, "ip", "link", "add", "acc2", "type", "veth", "peer", "name", "host2")
	sh(t, leaf, "sysctl", "-qw", "net.ipv6.conf.host2.disable_ipv6=1")
	sh(t, leaf, "ip", "link", "set", "host2", "up")
	sh(t, leaf, "ip", "link", "set", "acc2", "master", "br200", "up")
	waitForwarding(t, leaf, "acc2")
	sh(t, leaf, "bridge", "fdb", "add", dyn.String(), "dev", "acc2", "master", "dynamic")
	c.waitFor(t, "MAC on hot-plugged acc2", func() bool { return c.state[k(200, dyn)] == LocalMAC{Port: "acc2"} })
}

// waitForwarding waits until a bridge port is forwarding: the bridge
// refuses dynamic entries on a disabled port (no carrier), and carrier
// changes reach the bridge asynchronously (linkwatch).
func waitForwarding(t testing.TB, ns *netns.NS, port string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := sh(t, ns, "bridge", "link", "show", "dev", port)
		if strings.Contains(out, "state forwarding") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bridge port %s not forwarding: %s", port, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func lineWith(s, sub string) string {
	for _, ln := range strings.Split(s, "\n") {
		if strings.Contains(ln, sub) {
			return ln
		}
	}
	return ""
}

// TestLearnerOverrun stalls the consumer while the kernel sends a burst
// of FDB events into a tiny socket buffer. The socket overruns (ENOBUFS);
// the learner must resync and report exactly the kernel's state.
func TestLearnerOverrun(t *testing.T) {
	leaf, h := testNS(t, "vto")
	// The peer must be up: the bridge refuses dynamic entries on a port
	// without carrier (state disabled). With IPv6 off it sends nothing.
	sh(t, leaf, "ip", "link", "add", "acc0", "type", "veth", "peer", "name", "host0")
	sh(t, leaf, "sysctl", "-qw", "net.ipv6.conf.host0.disable_ipv6=1")
	sh(t, leaf, "ip", "link", "set", "host0", "up")
	vnis := []L2VNI{vniSpec(100, "acc0")}
	if err := NewManager(h, nsHandle(t, leaf), testLog(t)).Ensure(context.Background(), vnis); err != nil {
		t.Fatal(err)
	}
	waitForwarding(t, leaf, "acc0")
	first := mac(t, "02:00:00:00:00:01")
	sh(t, leaf, "bridge", "fdb", "add", first.String(), "dev", "acc0", "master", "dynamic")

	l := NewLearner(nsHandle(t, leaf), vnis, testLog(t))
	l.rcvbuf = 1024
	c := newCollector()
	runLearner(t, l, c)
	c.waitFor(t, "initial MAC", func() bool { return len(c.state) == 1 })

	hold := make(chan struct{})
	c.mu.Lock()
	c.hold = hold
	c.mu.Unlock()
	const n = 2000
	var batch strings.Builder
	for i := range n {
		if i == n/2 {
			// Deep in the burst, so its notification is likely lost in the
			// overrun and must come from the resync's difference.
			fmt.Fprintf(&batch, "fdb del %s dev acc0 master\n", first)
		}
		fmt.Fprintf(&batch, "fdb add 02:00:00:01:%02x:%02x dev acc0 master dynamic\n", i>>8, i&0xff)
	}
	file := filepath.Join(t.TempDir(), "burst")
	if err := os.WriteFile(file, []byte(batch.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, leaf, "bridge", "-batch", file)
	c.mu.Lock()
	c.hold = nil
	c.mu.Unlock()
	close(hold)

	c.waitFor(t, "all burst MACs", func() bool {
		_, stale := c.state[MACKey{VNI: 100, MAC: first}]
		return len(c.state) == n && !stale
	})
	if l.resyncs.Load() == 0 {
		t.Error("no resync happened: the burst did not overrun the socket, so the test proved nothing")
	}
	got, err := l.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(got) != n || fmt.Sprint(got) != fmt.Sprint(c.state) {
		t.Errorf("Dump has %d MACs, reported state %d; they differ", len(got), len(c.state))
	}
	t.Logf("resyncs: %d, events: %d", l.resyncs.Load(), len(c.evs))
}

// accessLab is a leaf namespace with l2vni 100 whose access port acc0 is
// forwarding (its veth peer up, with IPv6 off so it sends nothing).
func accessLab(t testing.TB, prefix string) (*netns.NS, []L2VNI) {
	t.Helper()
	leaf, h := testNS(t, prefix)
	sh(t, leaf, "ip", "link", "add", "acc0", "type", "veth", "peer", "name", "host0")
	sh(t, leaf, "sysctl", "-qw", "net.ipv6.conf.host0.disable_ipv6=1")
	sh(t, leaf, "ip", "link", "set", "host0", "up")
	vnis := []L2VNI{vniSpec(100, "acc0")}
	if err := NewManager(h, nsHandle(t, leaf), testLog(t)).Ensure(context.Background(), vnis); err != nil {
		t.Fatal(err)
	}
	waitForwarding(t, leaf, "acc0")
	return leaf, vnis
}

// TestLearnerRunStartsFromDump: the daemon announces what Dump returned
// and only then starts Run. A MAC that goes in between must be reported
// Removed by Run, a new one added, and the unchanged ones not at all. A
// second Run starts from what the first had reported.
func TestLearnerRunStartsFromDump(t *testing.T) {
	leaf, vnis := accessLab(t, "vtd")
	gone, kept, added, marker, later := mac(t, "02:00:00:00:00:01"), mac(t, "02:00:00:00:00:02"),
		mac(t, "02:00:00:00:00:03"), mac(t, "02:00:00:00:00:04"), mac(t, "02:00:00:00:00:05")
	fdb := func(op string, m evpn.MAC) {
		args := []string{"bridge", "fdb", op, m.String(), "dev", "acc0", "master"}
		if op == "add" {
			args = append(args, "static")
		}
		sh(t, leaf, args...)
	}
	fdb("add", gone)
	fdb("add", kept)

	l := NewLearner(nsHandle(t, leaf), vnis, testLog(t))
	ctx := context.Background()
	dumped, err := l.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k := func(m evpn.MAC) MACKey { return MACKey{VNI: 100, MAC: m} }
	if want := (map[MACKey]LocalMAC{k(gone): {Port: "acc0", Static: true}, k(kept): {Port: "acc0", Static: true}}); fmt.Sprint(dumped) != fmt.Sprint(want) {
		t.Fatalf("Dump = %v, want %v", dumped, want)
	}

	// Between Dump and Run: one MAC goes, one comes.
	fdb("del", gone)
	fdb("add", added)

	run := func() (c *collector, stop func()) {
		c = newCollector()
		runCtx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { errc <- l.Run(runCtx, c.out) }()
		stopped := false
		stop = func() {
			if stopped {
				return
			}
			stopped = true
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
		}
		t.Cleanup(stop)
		return c, stop
	}
	// The marker, added once the resync's removal is seen, proves the
	// resync is over: every event after the removal is in c.evs by then.
	settle := func(c *collector, m evpn.MAC, what string, cond func() bool) []string {
		c.waitFor(t, what, cond)
		fdb("add", m)
		c.waitFor(t, "marker "+m.String(), func() bool { _, ok := c.state[k(m)]; return ok })
		c.mu.Lock()
		defer c.mu.Unlock()
		var got []string
		for _, ev := range c.evs {
			got = append(got, evString(ev))
		}
		return got
	}

	c, stop := run()
	got := settle(c, marker, "removal of "+gone.String(), func() bool { return len(c.eventsFor(gone)) > 0 })
	want := []string{"-100 " + gone.String() + " acc0 static", "+100 " + added.String() + " acc0 static", "+100 " + marker.String() + " acc0 static"}
	if !slices.Equal(got, want) {
		t.Errorf("first Run after Dump reported\n %q\nwant (nothing for the unchanged %s)\n %q", got, kept, want)
	}
	stop()

	// Run stopped; added goes meanwhile. The next Run reports just that.
	fdb("del", added)
	c, _ = run()
	got = settle(c, later, "removal of "+added.String(), func() bool { return len(c.eventsFor(added)) > 0 })
	want = []string{"-100 " + added.String() + " acc0 static", "+100 " + later.String() + " acc0 static"}
	if !slices.Equal(got, want) {
		t.Errorf("second Run reported\n %q\nwant\n %q", got, want)
	}
}

// TestLearnerSkipsRemoteBurst writes remote MACs the way evpnd's fib does
// (one message per MAC with NTF_SELF and NTF_MASTER, so a VXLAN entry and
// a bridge entry on the VXLAN port) and ARP suppression entries on the
// bridge, while a learner runs. None is a local MAC, and none may be
// decoded: the VXLAN entries and the ARP entries are dropped by the socket
// filter in the kernel, the bridge entries on the VXLAN port by their
// header. A local MAC then still takes over and is reported.
func TestLearnerSkipsRemoteBurst(t *testing.T) {
	leaf, vnis := accessLab(t, "vts")
	local := mac(t, "02:00:00:00:00:01")
	sh(t, leaf, "bridge", "fdb", "add", local.String(), "dev", "acc0", "master", "static")
	l := NewLearner(nsHandle(t, leaf), vnis, testLog(t))
	c := newCollector()
	runLearner(t, l, c)
	c.waitFor(t, "initial MAC", func() bool { return len(c.state) == 1 })
	decoded0 := l.decoded.Load()

	const n = 2000
	var batch, neigh strings.Builder
	for i := range n {
		fmt.Fprintf(&batch, "fdb add 02:10:00:00:%02x:%02x dev vxlan100 dst 10.0.0.%d self master extern_learn\n", i>>8, i&0xff, 2+i%100)
		fmt.Fprintf(&neigh, "neigh replace 10.200.%d.%d lladdr 02:10:00:00:%02x:%02x dev br100 nud noarp extern_learn\n", i/250, 1+i%250, i>>8, i&0xff)
	}
	dir := t.TempDir()
	for name, text := range map[string]string{"fdb": batch.String(), "neigh": neigh.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sh(t, leaf, "bridge", "-batch", filepath.Join(dir, "fdb"))
	sh(t, leaf, "ip", "-batch", filepath.Join(dir, "neigh"))
	marker := mac(t, "02:00:00:00:00:02")
	sh(t, leaf, "bridge", "fdb", "add", marker.String(), "dev", "acc0", "master", "static")
	c.waitFor(t, "marker", func() bool { return len(c.state) == 2 })

	decoded, skipped := l.decoded.Load()-decoded0, l.skipped.Load()
	t.Logf("decoded %d, skipped after peeking %d, for %d remote MACs and %d ARP entries", decoded, skipped, n, n)
	if decoded > 2 {
		t.Errorf("decoded %d notifications for the marker; want at most 2 (the remote burst must not be decoded)", decoded)
	}
	if skipped < n || skipped >= 2*n {
		t.Errorf("skipped %d notifications in user space, want the %d bridge entries only: the VXLAN and ARP ones must not reach user space", skipped, n)
	}

	// The VXLAN port taking over a local MAC is still seen.
	sh(t, leaf, "bridge", "fdb", "replace", local.String(), "dev", "vxlan100", "master", "extern_learn")
	c.waitFor(t, "take-over by vxlan100", func() bool { _, ok := c.state[MACKey{VNI: 100, MAC: local}]; return !ok })
}

// TestLearnerAnyBridgePort: the learner learns on every port of a managed
// bridge, also one that no configuration lists and that is enslaved after
// Run started (a VM's tap, a containerlab veth), and withdraws its MACs
// when the port leaves the bridge. Ports of other bridges are not watched.
func TestLearnerAnyBridgePort(t *testing.T) {
	leaf, _, _ := learnerLab(t) // br100 with access port acc0
	host := netns.ForTest(t, "vtv")
	vm := mac(t, "02:00:00:00:00:5a")
	l := NewLearner(nsHandle(t, leaf), []L2VNI{vniSpec(100, "acc0")}, testLog(t))
	c := newCollector()
	runLearner(t, l, c)
	k := MACKey{VNI: 100, MAC: vm}

	// A bridge evpnd does not manage, with a port and a learned MAC: never
	// reported.
	sh(t, leaf, "ip", "link", "add", "brx", "type", "bridge")
	sh(t, leaf, "ip", "link", "add", "px", "type", "veth", "peer", "name", "pxp")
	sh(t, leaf, "ip", "link", "set", "px", "master", "brx", "up")
	sh(t, leaf, "ip", "link", "set", "pxp", "up")
	sh(t, leaf, "ip", "link", "set", "brx", "up")
	waitForwarding(t, leaf, "px")
	sh(t, leaf, "bridge", "fdb", "add", "02:00:00:00:00:77", "dev", "px", "master", "dynamic")

	// The "VM": a veth whose far end sits in its own namespace, enslaved
	// to br100 now.
	sh(t, leaf, "ip", "link", "add", "tap7", "type", "veth", "peer", "name", "vm0")
	sh(t, leaf, "ip", "link", "set", "vm0", "netns", host.Name)
	sh(t, host, "sysctl", "-qw", "net.ipv6.conf.vm0.disable_ipv6=1")
	sh(t, host, "ip", "link", "set", "vm0", "address", vm.String())
	sh(t, host, "ip", "addr", "add", "192.168.100.7/24", "dev", "vm0")
	sh(t, host, "ip", "link", "set", "vm0", "up")
	sh(t, leaf, "ip", "link", "set", "tap7", "master", "br100", "up")
	waitForwarding(t, leaf, "tap7")
	// One frame from the VM (to a neighbour pinned by a static ARP entry,
	// so nothing else follows) makes the bridge learn its MAC on tap7.
	sh(t, host, "ip", "neigh", "replace", "192.168.100.2", "lladdr", "02:00:00:00:00:99", "dev", "vm0", "nud", "permanent")
	_, _ = host.Exec(context.Background(), "ping", "-c1", "-W1", "192.168.100.2")
	c.waitFor(t, "the VM's MAC learned on tap7", func() bool { return c.state[k] == LocalMAC{Port: "tap7"} })

	// Released from the bridge: the kernel flushes the port's entries and
	// the MAC is withdrawn.
	sh(t, leaf, "ip", "link", "set", "tap7", "nomaster")
	c.waitFor(t, "the VM's MAC withdrawn with tap7", func() bool {
		evs := c.eventsFor(vm)
		return len(evs) == 2 && evs[1].Removed && evs[1].Port == "tap7"
	})

	// Enslaved again with a static entry, then the learner restarts: the
	// dump finds the port although no configuration names it.
	sh(t, leaf, "ip", "link", "set", "tap7", "master", "br100")
	waitForwarding(t, leaf, "tap7")
	sh(t, leaf, "bridge", "fdb", "replace", vm.String(), "dev", "tap7", "master", "static")
	c.waitFor(t, "the static MAC on tap7", func() bool { return c.state[k] == LocalMAC{Port: "tap7", Static: true} })
	got, err := NewLearner(nsHandle(t, leaf), []L2VNI{vniSpec(100, "acc0")}, testLog(t)).Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got[k] != (LocalMAC{Port: "tap7", Static: true}) {
		t.Errorf("Dump: %v, want %s on tap7 (static)", got, vm)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, m := range c.state {
		if key.MAC.String() == "02:00:00:00:00:77" || m.Port == "px" {
			t.Errorf("MAC of an unmanaged bridge reported: %v %v", key, m)
		}
	}
	for key := range got {
		if key.MAC.String() == "02:00:00:00:00:77" {
			t.Errorf("Dump lists a MAC of an unmanaged bridge: %v", key)
		}
	}
}
