package daemon

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/speaker/evpn"
)

func vtepChange(i int) api.Change {
	return api.Change{Kind: api.ChangeAdded, VTEP: &api.VTEPChange{VNI: uint32(i)}}
}

func TestHubDeliversInOrderAfterInitial(t *testing.T) {
	h := newHub()
	if h.active() {
		t.Fatal("active with no watcher")
	}
	w := h.subscribe()
	if !h.active() {
		t.Fatal("not active with a watcher")
	}
	for i := 1; i <= 3; i++ {
		h.publish(vtepChange(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var got []api.Change
	err := w.serve(ctx, []api.Change{vtepChange(100)}, true, func(c api.Change) error {
		got = append(got, c)
		if len(got) == 5 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("serve: %v", err)
	}
	want := []uint32{100, 0, 1, 2, 3} // initial, SYNCED, then the buffered changes
	for i, c := range got {
		v := uint32(0)
		if c.VTEP != nil {
			v = c.VTEP.VNI
		} else if c.Kind != api.ChangeSynced {
			t.Fatalf("change %d: %+v", i, c)
		}
		if v != want[i] {
			t.Fatalf("order: got %+v, want VNIs %v", got, want)
		}
	}
	h.unsubscribe(w)
	if h.active() {
		t.Fatal("active after unsubscribe")
	}
}

func TestHubCutsOffSlowWatcher(t *testing.T) {
	h := newHub()
	w := h.subscribe()
	fast := h.subscribe()
	for i := 0; i < watchBuffer+10; i++ {
		h.publish(vtepChange(i))
	}
	n := 0
	err := w.serve(context.Background(), nil, false, func(api.Change) error { n++; return nil })
	if !errors.Is(err, api.ErrSlowConsumer) {
		t.Fatalf("want ErrSlowConsumer, got %v", err)
	}
	// Everything buffered before the gap was delivered first.
	if n != watchBuffer {
		t.Fatalf("delivered %d before the cut, want %d", n, watchBuffer)
	}
	h.unsubscribe(w)
	// Another watcher's overflow is its own: after draining, a new change
	// still reaches a watcher that keeps up.
	h.unsubscribe(fast)
	ok := h.subscribe()
	h.publish(vtepChange(7))
	select {
	case c := <-ok.ch:
		if c.VTEP.VNI != 7 {
			t.Fatalf("got %+v", c)
		}
	default:
		t.Fatal("change not delivered")
	}
}

func TestComparePathsOrdersByRDThenNLRI(t *testing.T) {
	rd := func(s string) evpn.RD {
		r, err := evpn.ParseRD(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	mk := func(rdS string, typ evpn.RouteType, mac byte) api.RoutePath {
		return api.RoutePath{Route: &evpn.Route{Key: evpn.Key{Type: typ, RD: rd(rdS), MAC: evpn.MAC{2, 0, 0, 0, 0, mac}}}}
	}
	paths := []api.RoutePath{
		mk("10.0.0.2:100", evpn.RouteTypeMACIP, 1),
		mk("10.0.0.1:100", evpn.RouteTypeIMET, 0),
		mk("10.0.0.1:100", evpn.RouteTypeMACIP, 9),
		mk("10.0.0.1:100", evpn.RouteTypeMACIP, 3),
		mk("10.0.0.1:20", evpn.RouteTypeMACIP, 3),
	}
	sortPaths(paths)
	var got []string
	for _, p := range paths {
		got = append(got, fmt.Sprintf("%s %s %d", p.Route.RD, p.Route.MAC, p.Route.Type))
	}
	want := []string{
		"10.0.0.1:20 02:00:00:00:00:03 2",
		"10.0.0.1:100 02:00:00:00:00:03 2",
		"10.0.0.1:100 02:00:00:00:00:09 2",
		"10.0.0.1:100 02:00:00:00:00:00 3",
		"10.0.0.2:100 02:00:00:00:00:01 2",
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order:\n got %q\nwant %q", got, want)
		}
	}
}

// At most maxWatchers Watch streams run at once; one more is refused with
// api.ErrTooManyWatchers and holds nothing; once a stream ends, a new one
// is admitted.
func TestWatchStreamsBounded(t *testing.T) {
	cfg := &configs.Config{Role: configs.RoleRouteReflector}
	d := &Daemon{hub: newHub()}
	d.live.Store(cfg)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cancels := make([]context.CancelFunc, maxWatchers)
	done := make(chan error, maxWatchers+1)
	for i := range maxWatchers {
		wctx, wcancel := context.WithCancel(ctx)
		cancels[i] = wcancel
		go func() { done <- d.Watch(wctx, false, func(api.Change) error { return nil }) }()
	}
	if !waitFor(t, "every stream subscribed", 10*time.Second, func() bool { return int(d.hub.n.Load()) == maxWatchers }) {
		t.Fatalf("%d streams subscribed, want %d", d.hub.n.Load(), maxWatchers)
	}
	err := d.Watch(ctx, false, func(api.Change) error { return nil })
	if !errors.Is(err, api.ErrTooManyWatchers) {
		t.Fatalf("stream %d: %v, want ErrTooManyWatchers", maxWatchers+1, err)
	}
	if n := d.hub.n.Load(); n != maxWatchers {
		t.Fatalf("the refused stream left %d subscribed", n)
	}
	cancels[0]()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("ended stream: %v", err)
	}
	go func() { done <- d.Watch(ctx, false, func(api.Change) error { return nil }) }()
	if !waitFor(t, "a new stream admitted", 10*time.Second, func() bool { return int(d.hub.n.Load()) == maxWatchers }) {
		t.Fatal("no stream admitted after one ended")
	}
	cancel()
	for range maxWatchers {
		<-done
	}
	if n := d.hub.n.Load(); n != 0 || len(d.hub.slots) != 0 {
		t.Fatalf("after every stream ended: %d subscribed, %d slots held", n, len(d.hub.slots))
	}
}

// At most maxSnapshots initial states are held at once: the next waits
// for one to be released, or for its context.
func TestWatchSnapshotsBounded(t *testing.T) {
	h := newHub()
	var dones []func()
	for range maxSnapshots {
		done, err := h.snapshotTurn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		dones = append(dones, done)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.snapshotTurn(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("snapshot %d with %d held: %v, want to wait until its context ends", maxSnapshots+1, maxSnapshots, err)
	}
	got := make(chan error, 1)
	go func() {
		done, err := h.snapshotTurn(t.Context())
		if err == nil {
			done()
		}
		got <- err
	}()
	dones[0]()
	if err := <-got; err != nil {
		t.Fatalf("snapshot after a release: %v", err)
	}
}

// A watcher's buffer is bounded: a client that falls watchBuffer changes
// behind gets every change up to the gap, then ErrSlowConsumer.
func TestWatcherBufferBounded(t *testing.T) {
	h := newHub()
	w := h.subscribe()
	defer h.unsubscribe(w)
	for i := range watchBuffer + 10 {
		h.publish(vtepChange(i))
	}
	if len(w.ch) != watchBuffer {
		t.Fatalf("buffered %d changes, want the bound %d", len(w.ch), watchBuffer)
	}
	n := 0
	err := w.serve(t.Context(), nil, false, func(api.Change) error { n++; return nil })
	if !errors.Is(err, api.ErrSlowConsumer) || n != watchBuffer {
		t.Fatalf("serve: %v after %d changes, want ErrSlowConsumer after %d", err, n, watchBuffer)
	}
}
