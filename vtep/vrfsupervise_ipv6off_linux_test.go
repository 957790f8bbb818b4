package vtep

import (
	"context"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/netns"
)

// syncBuf is a log sink safe for concurrent writes.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// With IPv6 off in a tenant namespace (net.ipv6.conf.all.disable_ipv6=1),
// the kernel refuses a VRF's IPv6 gateway addresses, and each refused run
// is rolled back, whose link events ran it again: SuperviseVRFs re-ran in
// a tight loop. Now it builds the VRF without its IPv6 addresses, warns
// once naming the sysctl, IPv4 works, and once IPv6 is on again the IPv6
// gateway is added.
func TestSuperviseVRFsIPv6Off(t *testing.T) {
	u, h := testNS(t, "l3v6")
	sh(t, u, "ip", "addr", "add", "10.0.0.1/32", "dev", "lo")
	host, _ := hostOn(t, u, "acc0", "10.1.0.10/24")
	var logs syncBuf
	m := NewManager(h, nsHandle(t, u), slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	v := VRF{Name: "s6", Backend: BackendNetns, Namespace: tenantNS(t, "l3v6t"), L3: l3Spec(4001), RouterMAC: rmac,
		Members: []SVI{member(100, "acc0", "10.1.0.1/24", "2001:db8:1::1/64")}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tn := &netns.NS{Name: v.Namespace}
	if out, err := exec.Command("ip", "netns", "add", v.Namespace).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	sh(t, tn, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	if err := m.EnsureVRF(ctx, v); err == nil {
		t.Log("the kernel accepted the IPv6 gateway with IPv6 off; the loop cannot happen here, but the rest is checked")
	}

	var mu sync.Mutex
	runs := 0
	done := make(chan error, 1)
	go func() {
		done <- m.SuperviseVRFs(ctx, []VRF{v}, func(r VRFRepair) {
			mu.Lock()
			runs++
			mu.Unlock()
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return runs
	}
	// The first run, then its own events: it settles within seconds.
	deadline := time.Now().Add(20 * time.Second)
	for count() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no first run within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	settled := false
	for last := count(); time.Now().Before(deadline); {
		time.Sleep(2 * time.Second)
		if c := count(); c == last {
			settled = true
			break
		} else {
			last = c
		}
	}
	if !settled {
		t.Fatalf("SuperviseVRFs still re-running after 20s: %d runs\n%s", count(), logs.String())
	}
	const warning = "net.ipv6.conf.all.disable_ipv6=1 in namespace"
	if n := strings.Count(logs.String(), warning); n != 1 {
		t.Errorf("%d warnings naming net.ipv6.conf.all.disable_ipv6, want 1:\n%s", n, logs.String())
	}
	pingGateway(t, host, "10.1.0.1")

	sh(t, tn, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0")
	for deadline := time.Now().Add(20 * time.Second); ; {
		if strings.Contains(sh(t, tn, "ip", "-6", "addr", "show", "dev", "br100"), "2001:db8:1::1/64") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("IPv6 gateway not added within 20s of IPv6 on:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), warning); n != 1 {
		t.Errorf("%d warnings, want still 1", n)
	}
}
