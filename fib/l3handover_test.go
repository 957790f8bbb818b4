package fib

import (
	"context"
	"strings"
	"testing"
)

// HandOverNeigh turns the delete of a suppression neighbour into a
// handover to the kernel (replace without extern_learn, NUD_PROBE), also
// before MarkSynced and for an entry fib never wrote; a neighbour wanted
// again before the pass is written, not handed over; a handed-over entry
// is no longer fib's (no later delete).
func TestL3HandOverNeigh(t *testing.T) {
	k := &fakeL3{}
	d := NewL3Desired(l3dev)
	r := NewL3Reconciler(d, k, nil)
	ctx := context.Background()
	must(t, d.SetNeigh("br100", a("10.1.0.20"), h1))
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	k.ops = nil
	must(t, d.HandOverNeigh("br100", a("10.1.0.20"), h1))
	must(t, d.HandOverNeigh("br100", a("10.1.0.30"), h1)) // never fib's
	must(t, d.HandOverNeigh("br100", a("10.1.0.40"), h1))
	must(t, d.SetNeigh("br100", a("10.1.0.40"), h1)) // wanted again
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(k.lines(), "\n")
	want := map[string]bool{
		"ip neigh replace 10.1.0.20 lladdr 02:00:00:00:00:11 dev br100 nud probe":              true,
		"ip neigh replace 10.1.0.30 lladdr 02:00:00:00:00:11 dev br100 nud probe":              true,
		"ip neigh replace 10.1.0.40 lladdr 02:00:00:00:00:11 dev br100 nud noarp extern_learn": true,
	}
	if len(got) != len(want) {
		t.Fatalf("ops:\n%s\nwant the %d of %v", k.lines(), len(want), want)
	}
	for _, l := range got {
		if !want[l] {
			t.Errorf("unexpected op %q; all:\n%s", l, k.lines())
		}
	}
	// The handed-over entries are the kernel's now: nothing more to do,
	// after MarkSynced too.
	k.ops = nil
	r.MarkSynced()
	d.DeleteNeigh("br100", a("10.1.0.40"))
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := k.lines(); got != "ip neigh del 10.1.0.40 dev br100" {
		t.Errorf("after the handover:\n%s", got)
	}
}
