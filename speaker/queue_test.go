package speaker

import (
	"net/netip"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/evpnd/evpnd/speaker/evpn"
)

func routeEv(r *evpn.Route, withdraw bool, peer string) Event {
	return Event{Type: EventRoute, Route: r, Withdraw: withdraw, Peer: mustAddr(peer)}
}

func TestEventQueueCoalesces(t *testing.T) {
	rs := leafRoutes("10.0.0.1", "10.0.0.1", 1)
	q := newEventQueue()
	q.push([]Event{
		routeEv(rs[0], false, "10.9.0.1"),
		routeEv(rs[1], false, "10.9.0.1"),
		{Type: EventPeer, Peer: mustAddr("10.9.0.2"), State: PeerStateEstablished},
		routeEv(rs[0], true, "10.9.0.1"), // replaces the first, in place
	})
	q.push([]Event{{Type: EventEndOfRIB, Peer: mustAddr("10.9.0.1")}, routeEv(rs[1], false, "10.9.0.3")})
	select {
	case <-q.wake:
	default:
		t.Fatal("push did not wake the consumer")
	}
	got := q.take()
	want := []Event{routeEv(rs[0], true, "10.9.0.1"), routeEv(rs[1], false, "10.9.0.3"),
		{Type: EventPeer, Peer: mustAddr("10.9.0.2"), State: PeerStateEstablished}, {Type: EventEndOfRIB, Peer: mustAddr("10.9.0.1")}}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Type != want[i].Type || got[i].Withdraw != want[i].Withdraw || got[i].Peer != want[i].Peer ||
			(want[i].Route != nil && got[i].Route.Key != want[i].Route.Key) {
			t.Errorf("event %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	// After take, the same key queues anew.
	q.push([]Event{routeEv(rs[0], false, "10.9.0.1")})
	if got := q.take(); len(got) != 1 || got[0].Withdraw {
		t.Errorf("after take: %+v", got)
	}
	if got := q.take(); len(got) != 0 {
		t.Errorf("empty queue: %+v", got)
	}
}

func apiPath(t *testing.T, r *evpn.Route, withdraw bool, peer string) *apiutil.Path {
	t.Helper()
	p, err := ToPath(r, false)
	if err != nil {
		t.Fatal(err)
	}
	p.Withdrawal = withdraw
	if peer != "<nil>" {
		p.PeerAddress = mustAddr(peer)
		p.PeerASN = 65001
	}
	return p
}

// TestDecoderFilters covers what Watch delivers for GoBGP's paths.
func TestDecoderFilters(t *testing.T) {
	rs := leafRoutes("10.0.0.2", "10.0.0.2", 2)
	own := leafRoutes("10.0.0.1", "10.0.0.1", 1)
	newDec := func() *decoder {
		return &decoder{log: testLogger(), routerID: mustAddr("10.0.0.1"), vteps: []netip.Addr{mustAddr("10.0.0.1")}, remote: map[evpn.Key]remotePath{}}
	}
	table := func(paths ...*apiutil.Path) watchItem { return watchItem{paths: paths} }

	d := newDec()
	out := d.item(table(apiPath(t, rs[0], false, "10.9.0.1")), nil, nil)
	if len(out) != 1 || out[0].Type != EventRoute || out[0].Withdraw || out[0].Peer != mustAddr("10.9.0.1") || out[0].PeerASN != 65001 {
		t.Fatalf("remote add: %+v", out)
	}
	// Our own path becoming best in place of the remote one withdraws it.
	out = d.item(table(apiPath(t, rs[0], false, "<nil>")), nil, nil)
	if len(out) != 1 || !out[0].Withdraw || out[0].Peer != mustAddr("10.9.0.1") || out[0].Route.Key != rs[0].Key {
		t.Fatalf("own path replacing a remote one: %+v", out)
	}
	// Nothing about own paths otherwise, nor withdrawals never delivered.
	for name, p := range map[string]*apiutil.Path{
		"own add":              apiPath(t, own[0], false, "<nil>"),
		"own withdraw":         apiPath(t, own[0], true, "<nil>"),
		"unknown withdraw":     apiPath(t, rs[1], true, "10.9.0.1"),
		"own VTEP from a peer": apiPath(t, own[2], false, "10.9.0.1"),
	} {
		if out := d.item(table(p), nil, nil); len(out) != 0 {
			t.Errorf("%s: %+v", name, out)
		}
	}
	nlri, attrs, err := ToNative(rs[1])
	if err != nil {
		t.Fatal(err)
	}
	// ToNative never sets ORIGINATOR_ID; a route reflector does.
	reflected := &apiutil.Path{Family: bgp.RF_EVPN, Nlri: nlri, Attrs: append(attrs, must(bgp.NewPathAttributeOriginatorId(mustAddr("10.0.0.1")))),
		PeerAddress: mustAddr("10.9.0.1")}
	if out := d.item(table(reflected), nil, nil); len(out) != 0 {
		t.Errorf("our ORIGINATOR_ID: %+v", out)
	}
	// A remote withdrawal of a delivered route.
	d.item(table(apiPath(t, rs[1], false, "10.9.0.1")), nil, nil)
	out = d.item(table(apiPath(t, rs[1], true, "10.9.0.1")), nil, nil)
	if len(out) != 1 || !out[0].Withdraw {
		t.Errorf("remote withdraw: %+v", out)
	}

	// End-of-RIB, other families, unsupported route types, peer events.
	eor := &apiutil.Path{Family: bgp.RF_EVPN, PeerAddress: mustAddr("10.9.0.1"), PeerASN: 65001}
	v4 := &apiutil.Path{Family: bgp.RF_IPv4_UC, PeerAddress: mustAddr("10.9.0.1")}
	rd := must(bgp.NewRouteDistinguisherIPAddressAS(mustAddr("10.0.0.9"), 1))
	ad := &apiutil.Path{Family: bgp.RF_EVPN, Nlri: bgp.NewEVPNEthernetAutoDiscoveryRoute(rd, bgp.EthernetSegmentIdentifier{Value: make([]byte, 9)}, 0, 100),
		Attrs: []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0)}, PeerAddress: mustAddr("10.9.0.1")}
	out = newDec().item(table(eor, v4, ad), nil, nil)
	if len(out) != 1 || out[0].Type != EventEndOfRIB || out[0].Peer != mustAddr("10.9.0.1") || out[0].Family != FamilyL2VPNEVPN {
		t.Errorf("EoR, ipv4, type-1: %+v", out)
	}
	peerEv := func(typ apiutil.PeerEventType, st bgp.FSMState) watchItem {
		return watchItem{peer: &apiutil.WatchEventMessage_PeerEvent{
			Type: typ, Peer: apiutil.Peer{State: apiutil.PeerState{NeighborAddress: mustAddr("10.9.0.1"), PeerASN: 65001, SessionState: st}}}}
	}
	out = newDec().item(peerEv(apiutil.PEER_EVENT_INIT, bgp.BGP_FSM_ESTABLISHED), nil, nil)
	out = newDec().item(peerEv(apiutil.PEER_EVENT_END_OF_INIT, 0), out, nil)
	if len(out) != 1 || out[0].Type != EventPeer || out[0].State != PeerStateEstablished || out[0].PeerASN != 65001 {
		t.Errorf("peer events: %+v", out)
	}
}

// TestDecoderMalformed: a type-2 GoBGP accepts but RFC 7432 does not (3
// labels, MAC length 32) is rejected, counted, and withdraws the route
// delivered before for its key (treat as withdraw, RFC 7606 §2).
func TestDecoderMalformed(t *testing.T) {
	rs := leafRoutes("10.0.0.2", "10.0.0.2", 2)
	var bad malformedLog
	d := &decoder{log: testLogger(), routerID: mustAddr("10.0.0.1"), remote: map[evpn.Key]remotePath{}, bad: &bad}
	for name, spoil := range map[string]func(*bgp.EVPNMacIPAdvertisementRoute, *bgp.EVPNNLRI){
		"3 labels":       func(r *bgp.EVPNMacIPAdvertisementRoute, n *bgp.EVPNNLRI) { n.Length += 3 }, // as GoBGP leaves a third label unread
		"MAC length 32":  func(r *bgp.EVPNMacIPAdvertisementRoute, _ *bgp.EVPNNLRI) { r.MacAddressLength = 32 },
		"MAC length 128": func(r *bgp.EVPNMacIPAdvertisementRoute, _ *bgp.EVPNNLRI) { r.MacAddressLength = 128 },
	} {
		before := bad.n.Load()
		if out := d.item(watchItem{paths: []*apiutil.Path{apiPath(t, rs[0], false, "10.9.0.1")}}, nil, nil); len(out) != 1 || out[0].Withdraw {
			t.Fatalf("%s: valid add: %+v", name, out)
		}
		p := apiPath(t, rs[0], false, "10.9.0.1")
		n := p.Nlri.(*bgp.EVPNNLRI)
		spoil(n.RouteTypeData.(*bgp.EVPNMacIPAdvertisementRoute), n)
		out := d.item(watchItem{paths: []*apiutil.Path{p}}, nil, nil)
		if len(out) != 1 || !out[0].Withdraw || out[0].Route.Key != rs[0].Key || out[0].Peer != mustAddr("10.9.0.1") {
			t.Errorf("%s: got %+v, want the route withdrawn", name, out)
		}
		if bad.n.Load() != before+1 {
			t.Errorf("%s: malformed count %d, want %d", name, bad.n.Load(), before+1)
		}
		// Again: nothing left to withdraw.
		if out := d.item(watchItem{paths: []*apiutil.Path{p}}, nil, nil); len(out) != 0 {
			t.Errorf("%s again: %+v", name, out)
		}
	}
}

// Issue 8.4e: a peer's withdrawal queued after its Established must not be
// delivered before it (it used to replace an older event for the key in
// place, ahead of the peer events).
func TestEventQueueKeepsPeerOrder(t *testing.T) {
	rs := leafRoutes("10.0.0.1", "10.0.0.1", 1)
	a := "10.9.0.1"
	q := newEventQueue()
	q.push([]Event{
		routeEv(rs[0], false, a),
		{Type: EventPeer, Peer: mustAddr(a), State: PeerStateActive},
		{Type: EventPeer, Peer: mustAddr(a), State: PeerStateEstablished},
		routeEv(rs[0], true, a),
		routeEv(rs[1], false, a),
		routeEv(rs[1], true, a), // no peer event in between: coalesced
		{Type: EventEndOfRIB, Peer: mustAddr(a)},
		routeEv(rs[0], false, a),
	})
	got := q.take()
	type ev struct {
		typ      EventType
		state    PeerState
		key      evpn.Key
		withdraw bool
	}
	want := []ev{
		{typ: EventRoute, key: rs[0].Key},
		{typ: EventPeer, state: PeerStateActive},
		{typ: EventPeer, state: PeerStateEstablished},
		{typ: EventRoute, key: rs[0].Key, withdraw: true},
		{typ: EventRoute, key: rs[1].Key, withdraw: true},
		{typ: EventEndOfRIB},
		{typ: EventRoute, key: rs[0].Key},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Type != w.typ || g.State != w.state || g.Withdraw != w.withdraw || (g.Route != nil && g.Route.Key != w.key) {
			t.Errorf("event %d: got %v %v withdraw=%v, want %v %v withdraw=%v", i, g.Type, g.State, g.Withdraw, w.typ, w.state, w.withdraw)
		}
	}
}
