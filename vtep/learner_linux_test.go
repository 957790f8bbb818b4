package vtep

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
func (c *collector) waitFor(t *testing.T, what string, cond func() bool) {
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
func runLearner(t *testing.T, l *Learner, c *collector) {
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
func waitForwarding(t *testing.T, ns *netns.NS, port string) {
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
	l.rcvbuf, l.chanLen = 1024, 1
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
