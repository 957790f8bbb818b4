package fib

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/poll"
)

// In the kernel, a handed-over suppression neighbour becomes the
// kernel's: same MAC, no extern_learn, probed (PROBE, then FAILED here as
// no host answers), and fib neither rewrites nor deletes it afterwards.
func TestL3HandOverNeighKernel(t *testing.T) {
	l, dev, k := newL3Lab(t, MainTable)
	d := NewL3Desired(dev)
	must(t, d.SetNeigh("br100", a("10.1.0.20"), h1))
	must(t, d.SetNeigh("br100", a("2001:db8:1::20"), h1))
	r := NewL3Reconciler(d, k, testLogger(t))
	ctx := context.Background()
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	contains(t, "neighbours", l.run(t, []string{"ip", "neigh", "show", "dev", "br100"}),
		"10.1.0.20 lladdr 02:00:00:00:00:11 extern_learn NOARP")
	must(t, d.HandOverNeigh("br100", a("10.1.0.20"), h1))
	must(t, d.HandOverNeigh("br100", a("2001:db8:1::20"), h1))
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	out := l.run(t, []string{"ip", "neigh", "show", "dev", "br100"})
	for _, ip := range []string{"10.1.0.20 ", "2001:db8:1::20 "} {
		line := ""
		for _, ln := range strings.Split(out, "\n") {
			if strings.HasPrefix(ln, ip) {
				line = ln
			}
		}
		if !strings.Contains(line, "lladdr 02:00:00:00:00:11") || strings.Contains(line, "extern_learn") ||
			!strings.Contains(line, "PROBE") {
			t.Errorf("%s after the handover: %q, want the kernel's own entry in PROBE:\n%s", ip, line, out)
		}
	}
	// The kernel probes it: the entry counts probes and, unanswered,
	// fails; fib leaves it alone (a resync included).
	poll.True(t, 10*time.Second, "10.1.0.20 probed until FAILED", func() bool {
		return strings.Contains(l.run(t, []string{"ip", "neigh", "show", "10.1.0.20", "dev", "br100"}), "FAILED")
	})
	r.MarkSynced()
	r.Resync()
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if out := l.run(t, []string{"ip", "neigh", "show", "dev", "br100"}); strings.Contains(out, "extern_learn") {
		t.Errorf("fib wrote the handed-over neighbours again:\n%s", out)
	}
}
