package speaker

import (
	"net/netip"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

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

func apiPath(t *testing.T, r *evpn.Route, withdraw bool, peer string) *api.Path {
	t.Helper()
	p, err := ToPath(r, false)
	if err != nil {
		t.Fatal(err)
	}
	p.IsWithdraw = withdraw
	p.NeighborIp = peer
	if peer != "<nil>" {
		p.SourceAsn = 65001
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
	table := func(paths ...*api.Path) *api.WatchEventResponse {
		return &api.WatchEventResponse{Event: &api.WatchEventResponse_Table{Table: &api.WatchEventResponse_TableEvent{Paths: paths}}}
	}

	d := newDec()
	out := d.response(table(apiPath(t, rs[0], false, "10.9.0.1")), nil)
	if len(out) != 1 || out[0].Type != EventRoute || out[0].Withdraw || out[0].Peer != mustAddr("10.9.0.1") || out[0].PeerASN != 65001 {
		t.Fatalf("remote add: %+v", out)
	}
	// Our own path becoming best in place of the remote one withdraws it.
	out = d.response(table(apiPath(t, rs[0], false, "<nil>")), nil)
	if len(out) != 1 || !out[0].Withdraw || out[0].Peer != mustAddr("10.9.0.1") || out[0].Route.Key != rs[0].Key {
		t.Fatalf("own path replacing a remote one: %+v", out)
	}
	// Nothing about own paths otherwise, nor withdrawals never delivered.
	for name, p := range map[string]*api.Path{
		"own add":              apiPath(t, own[0], false, "<nil>"),
		"own withdraw":         apiPath(t, own[0], true, "<nil>"),
		"unknown withdraw":     apiPath(t, rs[1], true, "10.9.0.1"),
		"own VTEP from a peer": apiPath(t, own[2], false, "10.9.0.1"),
	} {
		if out := d.response(table(p), nil); len(out) != 0 {
			t.Errorf("%s: %+v", name, out)
		}
	}
	nlri, attrs, err := ToNative(rs[1])
	if err != nil {
		t.Fatal(err)
	}
	// ToNative never sets ORIGINATOR_ID; a route reflector does.
	reflected, err := apiutil.NewPath(nlri, false, append(attrs, bgp.NewPathAttributeOriginatorId("10.0.0.1")), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	reflected.NeighborIp = "10.9.0.1"
	if out := d.response(table(reflected), nil); len(out) != 0 {
		t.Errorf("our ORIGINATOR_ID: %+v", out)
	}
	// A remote withdrawal of a delivered route.
	d.response(table(apiPath(t, rs[1], false, "10.9.0.1")), nil)
	out = d.response(table(apiPath(t, rs[1], true, "10.9.0.1")), nil)
	if len(out) != 1 || !out[0].Withdraw {
		t.Errorf("remote withdraw: %+v", out)
	}

	// End-of-RIB, other families, unsupported route types, peer events.
	eor := &api.Path{Family: FamilyL2VPNEVPN.api(), NeighborIp: "10.9.0.1", SourceAsn: 65001}
	v4 := &api.Path{Family: FamilyIPv4Unicast.api(), NeighborIp: "10.9.0.1"}
	rd := bgp.NewRouteDistinguisherIPAddressAS("10.0.0.9", 1)
	ad, err := apiutil.NewPath(bgp.NewEVPNEthernetAutoDiscoveryRoute(rd, bgp.EthernetSegmentIdentifier{Value: make([]byte, 9)}, 0, 100), false,
		[]bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0)}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ad.NeighborIp = "10.9.0.1"
	out = newDec().response(table(eor, v4, ad), nil)
	if len(out) != 1 || out[0].Type != EventEndOfRIB || out[0].Peer != mustAddr("10.9.0.1") || out[0].Family != FamilyL2VPNEVPN {
		t.Errorf("EoR, ipv4, type-1: %+v", out)
	}
	peerEv := func(typ api.WatchEventResponse_PeerEvent_Type, st api.PeerState_SessionState) *api.WatchEventResponse {
		return &api.WatchEventResponse{Event: &api.WatchEventResponse_Peer{Peer: &api.WatchEventResponse_PeerEvent{
			Type: typ, Peer: &api.Peer{State: &api.PeerState{NeighborAddress: "10.9.0.1", PeerAsn: 65001, SessionState: st}}}}}
	}
	out = newDec().response(peerEv(api.WatchEventResponse_PeerEvent_INIT, api.PeerState_ESTABLISHED), nil)
	out = newDec().response(peerEv(api.WatchEventResponse_PeerEvent_END_OF_INIT, 0), out)
	if len(out) != 1 || out[0].Type != EventPeer || out[0].State != PeerStateEstablished || out[0].PeerASN != 65001 {
		t.Errorf("peer events: %+v", out)
	}
}
