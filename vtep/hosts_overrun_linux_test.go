package vtep

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A burst of fib's ARP suppression (extern_learn) neighbours on the SVI,
// 20,000 of them, written while the watch is not reading, overruns any
// reasonable receive buffer (the small one forces it). The watch does not
// fail: a local host that appeared during the burst is reported, one that
// vanished is withdrawn, and no extern_learn entry is reported.
func TestWatchHostsOverrun(t *testing.T) {
	for _, c := range []struct {
		name   string
		rcvbuf int
	}{{"default buffer", hostsRcvBuf}, {"small buffer", 64 << 10}} {
		t.Run(c.name, func(t *testing.T) { testWatchHostsOverrun(t, c.rcvbuf) })
	}
}

func testWatchHostsOverrun(t *testing.T, rcvbuf int) {
	u, h := testNS(t, "l3o")
	sh(t, u, "ip", "addr", "add", "10.0.0.1/32", "dev", "lo")
	host, hostMAC := hostOn(t, u, "acc0", "10.1.0.10/24")
	m := NewManager(h, nsHandle(t, u), testLog(t))
	v := VRF{Name: "o", Backend: BackendDefault, L3: l3Spec(4001), RouterMAC: rmac, Members: []SVI{member(100, "acc0", "10.1.0.1/16")}}
	if err := m.EnsureVRF(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	pingGateway(t, host, "10.1.0.1")

	// The first event (the host) holds the watch until release: the
	// burst is queued on its socket meanwhile.
	events := make(chan HostEvent, 64)
	release := make(chan struct{})
	var first sync.Once
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- watchHosts(ctx, nsHandle(t, u), map[string]uint32{"br100": 100},
			map[uint32][]netip.Addr{100: {netip.MustParseAddr("10.1.0.1")}}, func(e HostEvent) {
				events <- e
				first.Do(func() { <-release })
			}, rcvbuf)
	}()
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(func() {
		unblock()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("WatchHosts: %v", err)
		}
	})
	next := func(what string) HostEvent {
		t.Helper()
		select {
		case e := <-events:
			return e
		case err := <-done:
			done <- err
			t.Fatalf("the watch ended (%v) before %s", err, what)
		case <-time.After(30 * time.Second):
			t.Fatalf("no host event within 30s: %s", what)
		}
		return HostEvent{}
	}
	a, b := netip.MustParseAddr("10.1.0.10"), netip.MustParseAddr("10.1.0.11")
	if e := next("the host"); e.Removed || e.Key.IP != a || e.MAC.String() != hostMAC {
		t.Fatalf("first event %+v, want %s at %s", e, a, hostMAC)
	}

	const n = 20000
	var batch strings.Builder
	for i := range n {
		fmt.Fprintf(&batch, "neigh replace 10.1.%d.%d lladdr 02:01:00:00:%02x:%02x dev br100 nud noarp extern_learn\n",
			128+i/250, 1+i%250, i>>8, i&0xff)
	}
	file := filepath.Join(t.TempDir(), "neigh.batch")
	if err := os.WriteFile(file, []byte(batch.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, u, "ip", "-batch", file)
	// During the burst, another host appears and the first one goes.
	sh(t, u, "ip", "neigh", "replace", b.String(), "lladdr", "02:00:00:00:00:11", "dev", "br100", "nud", "reachable")
	sh(t, u, "ip", "neigh", "del", a.String(), "dev", "br100")
	unblock()

	got := map[netip.Addr]HostEvent{}
	for len(got) < 2 {
		e := next("the new host and the withdrawal of the old one")
		if e.Key.VNI != 100 || (e.Key.IP != a && e.Key.IP != b) {
			t.Fatalf("unexpected event %+v (an extern_learn entry reported?)", e)
		}
		got[e.Key.IP] = e
	}
	if e := got[a]; !e.Removed {
		t.Errorf("%s: %+v, want withdrawn", a, e)
	}
	if e := got[b]; e.Removed || e.MAC.String() != "02:00:00:00:00:11" {
		t.Errorf("%s: %+v, want learned at 02:00:00:00:00:11", b, e)
	}
	// Nothing more: no extern_learn entry, no flap of the new host.
	select {
	case e := <-events:
		t.Errorf("unexpected event after the burst: %+v", e)
	case err := <-done:
		done <- err
		t.Errorf("the watch ended: %v", err)
	case <-time.After(time.Second):
	}
}
