package speaker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/poll"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// The in-process servers peer over loopback: each has its own 127.0.0.x
// address (all of 127/8 is local on Linux) and its own port.

func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("EVPND_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	// Not t.Log: GoBGP goroutines outlive a test and may still log.
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func freePort(t testing.TB, addr string) int32 {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

type testSpeaker struct {
	*Server
	t    testing.TB
	addr netip.Addr
	port int32
	rec  *recorder
}

// newSpeaker starts a server on addr, watched by a recorder. mod adjusts
// the config before New; pre runs between New and Start.
func newSpeaker(t testing.TB, addr string, asn uint32, mod func(*Config), pre ...func(*Server)) *testSpeaker {
	t.Helper()
	return startSpeaker(t, addr, asn, true, mod, pre...)
}

// startSpeaker is newSpeaker with the recorder's watch optional.
func startSpeaker(t testing.TB, addr string, asn uint32, watch bool, mod func(*Config), pre ...func(*Server)) *testSpeaker {
	t.Helper()
	a := netip.MustParseAddr(addr)
	ts := &testSpeaker{t: t, addr: a, port: freePort(t, addr), rec: newRecorder()}
	cfg := Config{
		RouterID:        a,
		ASN:             asn,
		ListenPort:      ts.port,
		ListenAddresses: []string{addr},
		ConnectRetry:    time.Second,
		Logger:          testLogger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range pre {
		f(s)
	}
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Stop(ctx, false); err != nil {
			t.Errorf("stop %s: %v", addr, err)
		}
	})
	ts.Server = s
	if !watch {
		return ts
	}
	if err := s.Watch(ctx, ts.rec.add); err != nil {
		t.Fatal(err)
	}
	return ts
}

// peerWith configures b as a's neighbour.
func (a *testSpeaker) peerWith(b *testSpeaker, asn uint32, mod func(*Neighbor)) {
	a.t.Helper()
	n := Neighbor{Address: b.addr, ASN: asn, Port: uint16(b.port), LocalAddress: a.addr}
	if mod != nil {
		mod(&n)
	}
	if err := a.AddNeighbor(context.Background(), n); err != nil {
		a.t.Fatal(err)
	}
}

// recorder keeps what a Watch delivered.
type recorder struct {
	mu     sync.Mutex
	events []Event
	routes map[evpn.Key]Event
	peers  map[netip.Addr]PeerState
	eor    map[netip.Addr]int
}

func newRecorder() *recorder {
	return &recorder{routes: map[evpn.Key]Event{}, peers: map[netip.Addr]PeerState{}, eor: map[netip.Addr]int{}}
}

func (r *recorder) add(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	switch ev.Type {
	case EventRoute:
		if ev.Withdraw {
			delete(r.routes, ev.Route.Key)
		} else {
			r.routes[ev.Route.Key] = ev
		}
	case EventPeer:
		r.peers[ev.Peer] = ev.State
	case EventEndOfRIB:
		r.eor[ev.Peer]++
	}
}

func (r *recorder) route(k evpn.Key) (Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev, ok := r.routes[k]
	return ev, ok
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.routes)
}

func (r *recorder) peerState(a netip.Addr) PeerState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peers[a]
}

// withdrawn counts the withdraw events delivered for k.
func (r *recorder) withdrawn(k evpn.Key) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.events {
		if ev.Type == EventRoute && ev.Withdraw && ev.Route.Key == k {
			n++
		}
	}
	return n
}

// lastWithdraw returns the last withdraw event delivered for k.
func (r *recorder) lastWithdraw(k evpn.Key) (Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.events) - 1; i >= 0; i-- {
		if ev := r.events[i]; ev.Type == EventRoute && ev.Withdraw && ev.Route.Key == k {
			return ev, true
		}
	}
	return Event{}, false
}

func (r *recorder) dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, ev := range r.events {
		switch ev.Type {
		case EventRoute:
			fmt.Fprintf(&b, "  route %s withdraw=%v stale=%v peer=%s nh=%s\n", ev.Route.Key, ev.Withdraw, ev.Stale, ev.Peer, ev.Route.NextHop)
		case EventPeer:
			fmt.Fprintf(&b, "  peer %s %s\n", ev.Peer, ev.State)
		case EventEndOfRIB:
			fmt.Fprintf(&b, "  eor %s %s\n", ev.Peer, ev.Family)
		}
	}
	return b.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool, dumps ...*recorder) {
	t.Helper()
	if _, err := poll.Until(context.Background(), timeout, 20*time.Millisecond, poll.Bool(cond)); err != nil {
		for _, r := range dumps {
			t.Logf("events:\n%s", r.dump())
		}
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// leafRoutes are the routes a leaf with VTEP vtep and router-id rid
// announces in the tests: MAC, MAC+IP, IMET, IP prefix.
func leafRoutes(rid, vtep string, n byte) []*evpn.Route {
	rd := evpn.RDFromIP(mustAddr(rid), 2)
	v := mustAddr(vtep)
	rt := evpn.AutoRT(65000, 100)
	return []*evpn.Route{
		{
			Key:    evpn.Key{Type: evpn.RouteTypeMACIP, RD: rd, MAC: evpn.MAC{2, 0, 0, 0, 0, n}},
			Labels: []uint32{100}, NextHop: v, RTs: []evpn.RT{rt}, Encap: evpn.TunnelTypeVXLAN,
			Mobility: true, Seq: 1,
		},
		{
			Key:    evpn.Key{Type: evpn.RouteTypeMACIP, RD: rd, MAC: evpn.MAC{2, 0, 0, 0, 0, n}, IP: netip.AddrFrom4([4]byte{192, 168, 100, n})},
			Labels: []uint32{100, 4001}, NextHop: v, RTs: []evpn.RT{rt, evpn.AutoRT(65000, 4001)}, Encap: evpn.TunnelTypeVXLAN,
			// The MAC route's sequence: GoBGP would otherwise put it there
			// itself (and refuses a lower one), see TestGoBGPMobility.
			Mobility: true, Seq: 1,
			RouterMAC: evpn.MAC{0x32, 0x42, 0x95, 0xbd, 0xfd, n}, HasRMAC: true,
		},
		{
			Key:     evpn.Key{Type: evpn.RouteTypeIMET, RD: rd, IP: v},
			NextHop: v, RTs: []evpn.RT{rt}, Encap: evpn.TunnelTypeVXLAN,
			PMSI: &evpn.PMSI{Type: evpn.PMSIIngressReplication, Label: 100, Endpoint: v},
		},
		{
			Key:    evpn.Key{Type: evpn.RouteTypeIPPrefix, RD: evpn.RDFromIP(mustAddr(rid), 1), Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, n, 0}), 24)},
			Labels: []uint32{4001}, NextHop: v, RTs: []evpn.RT{evpn.AutoRT(65000, 4001)}, Encap: evpn.TunnelTypeVXLAN,
			RouterMAC: evpn.MAC{0x32, 0x42, 0x95, 0xbd, 0xfd, n}, HasRMAC: true,
		},
	}
}
