package daemon

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/trace"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/containerlab/poll"
	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/evpnd/evpnd/vtep"
)

func testLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func freePort(t *testing.T, addr string) int32 {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

type recorder struct {
	mu     sync.Mutex
	routes map[evpn.Key]*evpn.Route
}

func (r *recorder) add(ev speaker.Event) {
	if ev.Type != speaker.EventRoute {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev.Withdraw {
		delete(r.routes, ev.Route.Key)
	} else {
		r.routes[ev.Route.Key] = ev.Route
	}
}

func (r *recorder) get(k evpn.Key) (*evpn.Route, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	x, ok := r.routes[k]
	return x, ok
}

type bgpNode struct {
	srv  *speaker.Server
	addr netip.Addr
	port int32
	rec  *recorder
}

func startSpeaker(t *testing.T, addr string, vtep netip.Addr) *bgpNode {
	a := netip.MustParseAddr(addr)
	n := &bgpNode{addr: a, port: freePort(t, addr), rec: &recorder{routes: map[evpn.Key]*evpn.Route{}}}
	s, err := speaker.New(speaker.Config{RouterID: a, ASN: 65000, ListenPort: n.port, ListenAddresses: []string{addr},
		ConnectRetry: time.Second, LocalVTEPs: []netip.Addr{vtep}, Logger: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		s.Stop(ctx, false)
	})
	if err := s.Watch(context.Background(), n.rec.add); err != nil {
		t.Fatal(err)
	}
	n.srv = s
	return n
}

func peerUp(t *testing.T, a, b *bgpNode) {
	if err := a.srv.AddNeighbor(context.Background(), speaker.Neighbor{Address: b.addr, ASN: 65000, Port: uint16(b.port), LocalAddress: a.addr}); err != nil {
		t.Fatal(err)
	}
	if err := b.srv.AddNeighbor(context.Background(), speaker.Neighbor{Address: a.addr, ASN: 65000, Port: uint16(a.port), LocalAddress: b.addr}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ps, _ := a.srv.Peers(context.Background())
		if len(ps) == 1 && ps[0].State == speaker.PeerStateEstablished {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("session not established")
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) bool {
	if _, err := poll.Until(context.Background(), d, 20*time.Millisecond, poll.Bool(cond)); err != nil {
		t.Logf("waiting for %s: %v", what, err)
		return false
	}
	return true
}

// newTestLeaf builds the daemon's leaf state around srv, as runLeaf does, with
// VTEP/router-id vtep.
func newTestLeaf(t *testing.T, srv *speaker.Server, routerID, vtepIP netip.Addr) *leaf {
	cfg := &configs.Config{RouterID: routerID, ASN: 65000, VTEPIP: vtepIP,
		L2VNIs: []configs.L2VNI{{VNI: 100, VXLANDevice: "vxlan100", Bridge: "br100", AccessInterfaces: []string{"eth1"}}}}
	cfg.ApplyDefaults()
	d := &Daemon{cfg: cfg, log: testLog(), hub: newHub(), trace: trace.New(0, 0)}
	l := &leaf{d: d, srv: srv, q: newQueue[event](), vnis: map[uint32]configs.L2VNI{},
		advertised: map[evpn.MACKey]*evpn.Route{}, desired: fib.NewDesired()}
	l.adv = srv.NewAdvertiser(speaker.AdvertiserConfig{Retry: 100 * time.Millisecond,
		OnOutbid: func(o speaker.Outbid) { l.q.push(event{outbid: &o}) }})
	for _, v := range cfg.L2VNIs {
		l.vnis[v.VNI] = v
	}
	l.table = evpn.NewTable(evpn.Options{LocalVTEP: vtepIP, RouterID: routerID}, d.importRules())
	return l
}

func runBatch(t *testing.T, l *leaf, evs ...event) {
	now := time.Now()
	var eff []evpn.Effect
	for i := range evs {
		eff = l.handle(&evs[i], eff, now)
	}
	for _, e := range eff {
		t.Logf("  effect %s mac=%s vtep=%s seq=%d", e.Kind, e.MAC, e.VTEP, e.Seq)
	}
	l.flush(l.apply(eff, &effBuf{}))
	l.adv.Flush(context.Background())
}

var rt100 = []evpn.RT{evpn.AutoRT(65000, 100)}

func remoteRoute(vtep netip.Addr, mac evpn.MAC, seq uint32, sticky bool) *evpn.Route {
	r := evpn.LocalMACRoute(evpn.RDFromIP(vtep, 100), 100, mac, vtep, rt100, seq, sticky)
	return r
}

// An Advertise and a WithdrawLocal of the same MAC in one loop batch must
// leave the route withdrawn in BGP: only the last decision of a batch
// counts (a flush that sent withdrawals before announcements left the
// route in BGP forever).
func TestSameBatchAdvertiseThenWithdraw(t *testing.T) {
	mac := evpn.MAC{2, 0, 0, 0, 0x11, 1}
	for _, tc := range []string{"local add + remote winner", "local add + local del"} {
		t.Run(tc, func(t *testing.T) {
			a := startSpeaker(t, "127.0.0.21", netip.MustParseAddr("10.0.0.1")) // observer / other leaf, VTEP 10.0.0.1
			b := startSpeaker(t, "127.0.0.22", netip.MustParseAddr("10.0.0.2")) // leaf under test, VTEP 10.0.0.2
			peerUp(t, a, b)
			l := newTestLeaf(t, b.srv, netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.2"))
			evs := []event{{local: &vtep.MACEvent{VNI: 100, MAC: mac, Port: "eth1"}}}
			if tc == "local add + remote winner" {
				// Leaf A (lower VTEP) learned the same MAC at the same time, seq 0.
				evs = append(evs, event{bgp: &speaker.Event{Type: speaker.EventRoute, Route: remoteRoute(netip.MustParseAddr("10.0.0.1"), mac, 0, false), Peer: a.addr}})
			} else {
				evs = append(evs, event{local: &vtep.MACEvent{VNI: 100, MAC: mac, Port: "eth1", Removed: true}})
			}
			runBatch(t, l, evs...)
			info, _ := l.table.Lookup(100, mac)
			t.Logf("table: local=%v vtep=%v; advertised: %v", info.Local, info.VTEP, l.advertised[evpn.MACKey{VNI: 100, MAC: mac}] != nil)
			key := evpn.Key{Type: evpn.RouteTypeMACIP, RD: evpn.RDFromIP(netip.MustParseAddr("10.0.0.2"), 100), MAC: mac}
			// The route must not show up at A: watch for it for a while.
			if waitFor(t, "B's route at A", 3*time.Second, func() bool { _, ok := a.rec.get(key); return ok }) {
				t.Errorf("leaf B's route for %s is in BGP (seen by A) although B's table withdrew it", mac)
			}
		})
	}
}

// Issue 8.4b: a local route that GoBGP refuses because its RIB holds a
// path for the MAC with a higher sequence number, one the table never
// sees (its import rejects MPLS encapsulation), is bid above that path's
// sequence number. (It used to be bid at the table's highest seen plus
// one, refused three times, then given up while recorded as advertised.)
func TestRefusedLocalRouteIsBidAgain(t *testing.T) {
	mac := evpn.MAC{2, 0, 0, 0, 0x33, 1}
	va, vb := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	a := startSpeaker(t, "127.0.0.41", va)
	b := startSpeaker(t, "127.0.0.42", vb)
	peerUp(t, a, b)
	ctx := context.Background()
	fromA := remoteRoute(va, mac, 9, false)
	fromA.Encap = 10 // MPLS: GoBGP keeps it, evpnd's import rejects it
	if err := a.srv.Announce(ctx, []*evpn.Route{fromA}); err != nil {
		t.Fatal(err)
	}
	if !waitFor(t, "A's route at B", 5*time.Second, func() bool { _, ok := b.rec.get(fromA.Key); return ok }) {
		t.Fatal("A's route never reached B")
	}
	l := newTestLeaf(t, b.srv, vb, vb)
	// The watch delivers A's route; the table rejects it.
	runBatch(t, l, event{bgp: &speaker.Event{Type: speaker.EventRoute, Route: fromA, Peer: a.addr}})
	runBatch(t, l, event{local: &vtep.MACEvent{VNI: 100, MAC: mac, Port: "eth1"}})
	keyB := evpn.Key{Type: evpn.RouteTypeMACIP, RD: evpn.RDFromIP(vb, 100), MAC: mac}
	if _, ok := l.adv.Advertised(keyB); ok {
		t.Fatal("a refused route is recorded as taken by BGP")
	}
	if l.q.len() != 1 {
		t.Fatalf("refused announce queued %d outbid events, want 1", l.q.len())
	}
	runBatch(t, l, l.q.drain(nil)...)
	var got *evpn.Route
	if !waitFor(t, "B's re-bid at A", 5*time.Second, func() bool { r, ok := a.rec.get(keyB); got = r; return ok }) {
		t.Fatal("B's local route never reached A after the re-bid")
	}
	if got.Seq != 10 {
		t.Fatalf("B's route seq %d, want 10 (A's MPLS path's 9 + 1)", got.Seq)
	}
	if info, _ := l.table.Lookup(100, mac); !info.Local || info.Seq != 10 {
		t.Fatalf("table: %+v, want local seq 10", info)
	}
	if r, ok := l.adv.Advertised(keyB); !ok || r.Seq != 10 || l.adv.Pending() != 0 {
		t.Fatalf("advertiser: %v %v, pending %d", r, ok, l.adv.Pending())
	}
}

// Issue 8.4h: a restarted leaf learned its local MAC at seq 0 before the
// fabric's routes came in; at EventSynced it bids above the remote route
// present (here seq 4, which would otherwise win over its seq 0).
func TestRestartedLeafRebidsAtSync(t *testing.T) {
	mac := evpn.MAC{2, 0, 0, 0, 0x44, 1}
	va, vb := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	a := startSpeaker(t, "127.0.0.43", va)
	b := startSpeaker(t, "127.0.0.44", vb)
	peerUp(t, a, b)
	l := newTestLeaf(t, b.srv, vb, vb)
	l.d.restarted.Store(true)
	l.rec = fib.NewReconciler(l.desired, nil, testLog(), fib.Config{})
	// Start: the local MAC from the bridge, at seq 0.
	runBatch(t, l, event{local: &vtep.MACEvent{VNI: 100, MAC: mac, Port: "eth1"}})
	// The initial table: A holds the MAC at seq 4, then the table is in.
	fromA := remoteRoute(va, mac, 4, false)
	runBatch(t, l,
		event{bgp: &speaker.Event{Type: speaker.EventRoute, Route: fromA, Peer: a.addr}},
		event{bgp: &speaker.Event{Type: speaker.EventSynced}})
	if info, _ := l.table.Lookup(100, mac); !info.Local || info.Seq != 5 {
		t.Fatalf("table after sync: %+v, want local at seq 5", info)
	}
	keyB := evpn.Key{Type: evpn.RouteTypeMACIP, RD: evpn.RDFromIP(vb, 100), MAC: mac}
	var got *evpn.Route
	if !waitFor(t, "B's re-bid at A", 5*time.Second, func() bool { r, ok := a.rec.get(keyB); got = r; return ok && r.Seq == 5 }) {
		t.Fatalf("B's route at A: %+v, want seq 5", got)
	}
}
