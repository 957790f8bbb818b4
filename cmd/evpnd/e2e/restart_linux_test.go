package e2e

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TestRestart restarts evpnd on leaf1, stopped with SIGTERM or SIGKILL,
// under continuous pings between hosts behind leaf1 and hosts behind
// leaf3, in both VNIs. While leaf1's evpnd is down, h2 leaves leaf2, so
// its MAC is withdrawn. Then:
//   - no echo request may go unanswered;
//   - leaf1 removes its stale entry for h2 once BGP has re-synced
//     (End-of-RIB, well before the eor-timeout of the configs);
//   - the entries that stayed valid are never deleted or rewritten, on
//     leaf1 (its kernel state is kept) nor on the other leafs (the route
//     reflector keeps leaf1's routes under graceful restart): netlink
//     monitors in every leaf's namespace see no RTM_DELNEIGH and no
//     RTM_NEWNEIGH for them, and no device is recreated.
func TestRestart(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(unix.SignalName(sig), func(t *testing.T) { testRestart(t, sig, false) })
	}
	// Issue 8.4g: devices evpnd did not create (ifupdown2, netplan) carry
	// no owner alias; the restart must be detected all the same.
	t.Run("SIGTERM-adopted-devices", func(t *testing.T) { testRestart(t, syscall.SIGTERM, true) })
}

func testRestart(t *testing.T, sig syscall.Signal, adopted bool) {
	const leaf, gone = "leaf1", "h2"
	f := deployFabric(t)
	f.converge()
	if f.at["h1"].Leaf != leaf || f.at["h4"].Leaf != leaf || f.at["h5"].Leaf != "leaf3" || f.at["h3"].Leaf != "leaf3" || f.at[gone].Leaf != "leaf2" {
		t.Fatalf("topology changed: the test needs h1, h4 on leaf1, h3, h5 on leaf3 and h2 on leaf2")
	}
	lf := f.m.leaf(leaf)
	goneAt := f.at[gone]
	// On every leaf, the entries wanted both before and after h2 leaves
	// must survive the restart untouched: on leaf1 because its kernel
	// state is kept, on the others because the route reflector keeps
	// leaf1's routes while it restarts (graceful restart).
	survivors := map[string]map[string]bool{}
	devs := map[string]map[string]int{}
	mons := map[string]*fdbMonitor{}
	afterAt := placement{}
	for h, a := range f.at {
		if h != gone {
			afterAt[h] = a
		}
	}
	for _, l := range f.m.Leafs {
		before, after := f.m.want(l.Name, f.at), f.m.want(l.Name, afterAt)
		survivors[l.Name] = map[string]bool{}
		for k := range before.Owned {
			if after.Owned[k] {
				// Events carry no extern_learn flag in their key.
				survivors[l.Name][strings.TrimSuffix(k, " extern_learn")] = true
			}
		}
		devs[l.Name] = f.linkIndexes(l.Name)
		mons[l.Name] = f.monitorFDB(l.Name, devs[l.Name])
	}
	if n := len(survivors[leaf]); n == 0 || n == len(f.m.want(leaf, f.at).Owned) {
		t.Fatalf("bad scenario: %d of %s's entries survive", n, leaf)
	}
	delete(f.at, gone)

	// Continuous pings across the restarting leaf, one per VNI.
	pings := map[string]*background{
		"h1 -> h5": f.start("h1", "ping", "-n", "-D", "-i", "0.02", f.m.host("h5").IP.String()),
		"h4 -> h3": f.start("h4", "ping", "-n", "-D", "-i", "0.02", f.m.host("h3").IP.String()),
	}
	pingsAnswered(t, pings)

	stopped := time.Now()
	if err := f.lab.Stop(leaf, sig); err != nil {
		t.Fatal(err)
	}
	// The route reflector notices (its session with leaf1 is gone) and
	// keeps leaf1's routes as stale under graceful restart.
	eventually(t, changeTimeout, f.m.Spine+" sees the session with "+leaf+" closed", func() error {
		out, err := f.lab.Exec(t.Context(), f.m.Spine, "ss", "-Htn", "state", "established", "( sport = :179 or dport = :179 )", "dst", lf.VTEP.String())
		if err != nil {
			return err
		}
		if s := strings.TrimSpace(out); s != "" {
			return fmt.Errorf("still established: %s", s)
		}
		return nil
	})
	// While leaf1's evpnd is down, h2 leaves leaf2: the withdraw reaches
	// leaf3 but not leaf1, whose kernel keeps the entry of the last run.
	f.sh(goneAt.Leaf, "ip link set "+goneAt.Port+" down")
	f.waitFDB(changeTimeout, "leaf2", "leaf3")
	stale := fmt.Sprintf("%s %s", lf.VNIs[f.m.host(gone).VNI].VXLANDevice, f.m.host(gone).MAC)
	if err := f.checkFDB(t.Context(), leaf); err == nil || !strings.Contains(err.Error(), "unexpected: "+stale) {
		t.Fatalf("%s with evpnd stopped: want exactly the entries of the last run, among them the stale %s; got %v", leaf, stale, err)
	}

	if adopted {
		// As if someone else had created them: no owner alias.
		for _, v := range lf.VNIs {
			for _, dev := range []string{v.VXLANDevice, v.Bridge} {
				f.sh(leaf, "ip link set dev "+dev+" alias ''")
				if out := f.exec(leaf, "ip", "-o", "link", "show", "dev", dev); strings.Contains(out, " alias ") {
					t.Fatalf("alias of %s not cleared: %s", dev, out)
				}
			}
		}
	}
	restarted := time.Now()
	if err := f.lab.Start(leaf); err != nil {
		t.Fatal(err)
	}
	synced := f.waitFDB(changeTimeout, leaf)
	t.Logf("evpnd on %s stopped with %s, down for %v, FDB exact %v after the restart (stale %s removed)",
		leaf, unix.SignalName(sig), restarted.Sub(stopped).Round(time.Millisecond), synced.Round(time.Millisecond), f.m.host(gone).MAC)
	// The eor-timeout of the configs (90s) is far beyond changeTimeout, so
	// the sync above came from End-of-RIB; the log must agree, and must say
	// that evpnd knew it was restarting (the graceful-restart R bit).
	log := f.lastRunLog(leaf)
	if strings.Contains(log, "End-of-RIB not received") {
		t.Errorf("%s synced on the eor-timeout, not on End-of-RIB; its log since the restart:\n%s", leaf, tail(log, 40))
	}
	if !strings.Contains(log, "restarting=true") {
		t.Errorf("%s did not detect its restart (no restarting=true in its log since the restart):\n%s", leaf, tail(log, 40))
	}

	// Keep the pings running a little after the sync (the prune phase),
	// by their own count of answers rather than a sleep.
	pingsLoseNothing(t, pings, 25, "across the restart")

	// The surviving entries were left alone on every leaf.
	for _, l := range f.m.Leafs {
		events, err := mons[l.Name].stop()
		if err != nil {
			t.Errorf("FDB monitor on %s: %v", l.Name, err)
		}
		var touched []string
		staleRemoved := false
		for _, ev := range events {
			if survivors[l.Name][ev.key] {
				touched = append(touched, ev.String())
			}
			if ev.del && strings.HasPrefix(ev.key, stale) {
				staleRemoved = true
			}
		}
		if len(touched) > 0 {
			t.Errorf("%s: entries that stayed valid were changed during the restart:\n  %s", l.Name, strings.Join(touched, "\n  "))
		}
		if l.Name == leaf && !staleRemoved {
			t.Errorf("%s: the monitor saw no deletion of %s: it cannot be trusted (%d events)", l.Name, stale, len(events))
		}
		t.Logf("%s: %d FDB events during the restart, none for the %d surviving entries", l.Name, len(events), len(survivors[l.Name]))
		if now := f.linkIndexes(l.Name); !mapsEqual(now, devs[l.Name]) {
			t.Errorf("%s: devices recreated: ifindexes %v, were %v", l.Name, now, devs[l.Name])
		}
	}
	f.waitFDB(changeTimeout)
}

// lastRunLog returns a node's log since its cmd was last started.
func (f *fabric) lastRunLog(node string) string {
	f.t.Helper()
	data, err := os.ReadFile(f.lab.LogPath(node))
	if err != nil {
		f.t.Fatal(err)
	}
	s := string(data)
	if i := strings.LastIndex(s, "--- evpnlab "); i >= 0 {
		s = s[i:]
	}
	return s
}

// linkIndexes returns the ifindex of every VXLAN device and bridge of a
// leaf.
func (f *fabric) linkIndexes(leaf string) map[string]int {
	f.t.Helper()
	h, err := f.lab.Node(leaf).Handle()
	if err != nil {
		f.t.Fatal(err)
	}
	defer h.Close()
	out := map[string]int{}
	for _, v := range f.m.leaf(leaf).VNIs {
		for _, name := range []string{v.VXLANDevice, v.Bridge} {
			l, err := h.LinkByName(name)
			if err != nil {
				f.t.Fatalf("%s: %s: %v", leaf, name, err)
			}
			out[name] = l.Attrs().Index
		}
	}
	return out
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// fdbEvent is one RTM_NEWNEIGH or RTM_DELNEIGH for a bridge FDB entry on
// a monitored device, keyed like fdbEntry.key without flags:
// "vxlan100 02:00:00:00:01:12 dst 10.0.0.2 self" or "... master br100".
type fdbEvent struct {
	at  time.Time
	del bool
	key string
}

func (e fdbEvent) String() string {
	op := "RTM_NEWNEIGH"
	if e.del {
		op = "RTM_DELNEIGH"
	}
	return fmt.Sprintf("%s %s %s", e.at.Format("15:04:05.000000"), op, e.key)
}

// fdbMonitor records the FDB events of a namespace from a netlink
// subscription, which is bound before monitorFDB returns.
type fdbMonitor struct {
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	evs  []fdbEvent
	errs []error
}

// monitorFDB subscribes to the neighbour events of a node and keeps those
// for bridge FDB entries on the given devices (name -> ifindex). The
// subscription is closed by stop or at the end of the test.
func (f *fabric) monitorFDB(node string, devs map[string]int) *fdbMonitor {
	f.t.Helper()
	names := map[int]string{}
	for n, i := range devs {
		names[i] = n
	}
	nsh, err := vnetns.GetFromName(f.lab.Namespace(node))
	if err != nil {
		f.t.Fatal(err)
	}
	defer nsh.Close()
	m := &fdbMonitor{done: make(chan struct{})}
	ch := make(chan netlink.NeighUpdate, 1024)
	err = netlink.NeighSubscribeWithOptions(ch, m.done, netlink.NeighSubscribeOptions{
		Namespace: &nsh,
		ErrorCallback: func(err error) {
			if harmlessNetlinkReport(err) {
				return
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			select {
			case <-m.done: // the socket was closed on purpose
			default:
				m.errs = append(m.errs, err)
			}
		},
	})
	if err != nil {
		f.t.Fatalf("subscribe to FDB events in %s: %v", node, err)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for u := range ch {
			dev, ok := names[u.LinkIndex]
			if u.Family != unix.AF_BRIDGE || !ok {
				continue
			}
			key := dev + " " + u.HardwareAddr.String()
			switch {
			case u.Flags&netlink.NTF_SELF != 0:
				key += " dst " + ipString(u.IP) + " self"
			case u.MasterIndex != 0:
				key += " master " + names[u.MasterIndex]
			}
			m.mu.Lock()
			m.evs = append(m.evs, fdbEvent{at: time.Now(), del: u.Type == unix.RTM_DELNEIGH, key: key})
			m.mu.Unlock()
		}
	}()
	f.t.Cleanup(func() { m.stop() })
	return m
}

func ipString(ip net.IP) string {
	if ip == nil {
		return "-"
	}
	return ip.String()
}

// stop ends the subscription and returns the events seen and any error of
// the subscription (an overrun would mean lost events).
func (m *fdbMonitor) stop() ([]fdbEvent, error) {
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
