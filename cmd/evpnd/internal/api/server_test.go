package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/evpnd/evpnd/configs"
	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
	"github.com/evpnd/evpnd/speaker/evpn"
)

func mustMAC(t *testing.T, s string) evpn.MAC {
	t.Helper()
	m, err := evpn.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustRD(t *testing.T, s string) evpn.RD {
	t.Helper()
	rd, err := evpn.ParseRD(s)
	if err != nil {
		t.Fatal(err)
	}
	return rd
}

func mustRT(t *testing.T, s string) evpn.RT {
	t.Helper()
	rt, err := evpn.ParseRT(s)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

var ip = netip.MustParseAddr

func checkProto(t *testing.T, what string, got, want proto.Message) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Errorf("%s:\ngot  %s\nwant %s", what, prototext.Format(got), prototext.Format(want))
	}
}

// wantCode checks that err is a status with code and a message containing
// every one of parts.
func wantCode(t *testing.T, err error, code codes.Code, parts ...string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("error %v: want code %v", err, code)
	}
	for _, p := range parts {
		if !strings.Contains(st.Message(), p) {
			t.Errorf("message %q does not contain %q", st.Message(), p)
		}
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGetStatus(t *testing.T) {
	started := time.Now().Add(-time.Hour).Truncate(time.Second)
	fb := &fakeBackend{status: Status{
		Version: "v1.2.3", Started: started, RouterID: ip("10.0.0.1"), ASN: 65000,
		Role: configs.RoleLeaf, VTEP: ip("10.0.0.11"), KernelInSync: true, BGPSynced: true,
		FIBPending: 3, FIBErrors: 7, L2VNIs: 2, PeersEstablished: 1, PeersConfigured: 2, Restarted: true,
	}}
	c, _ := serveUnix(t, fb)
	got, err := c.GetStatus(ctxT(t), &evpndv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if up := got.GetUptime().AsDuration(); up < time.Hour || up > 2*time.Hour {
		t.Errorf("uptime %v, want about 1h since started", up)
	}
	got.Uptime = nil
	checkProto(t, "status", got, &evpndv1.GetStatusResponse{
		Version: "v1.2.3", Started: timestamppb.New(started), RouterId: "10.0.0.1", Asn: 65000,
		Role: evpndv1.Role_ROLE_LEAF, VtepIp: "10.0.0.11", KernelInSync: true, BgpSynced: true,
		FibPending: 3, FibErrors: 7, L2VniCount: 2, PeersEstablished: 1, PeersConfigured: 2, Restarted: true,
	})

	// A route reflector has no VTEP: "" rather than "invalid IP".
	fb.mu.Lock()
	fb.status = Status{Role: configs.RoleRouteReflector, RouterID: ip("10.0.0.254")}
	fb.mu.Unlock()
	got, err = c.GetStatus(ctxT(t), &evpndv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	checkProto(t, "route reflector status", got, &evpndv1.GetStatusResponse{
		RouterId: "10.0.0.254", Role: evpndv1.Role_ROLE_ROUTE_REFLECTOR,
	})
}

func testVNIs(t *testing.T) ([]VNI, []*evpndv1.VNI) {
	vnis := []VNI{{
		VNI: 100, VXLAN: "vxlan100", Bridge: "br100", AccessPorts: []string{"eth1", "eth2"},
		RD: mustRD(t, "10.0.0.1:100"), ImportAuto: true, ExportRTs: []evpn.RT{mustRT(t, "65000:100")},
		LocalMACs: 4, RemoteMACs: 5, DuplicateMACs: 1, Flood: []netip.Addr{ip("10.0.0.2"), ip("10.0.0.3")},
		UDPPort: 4789, MTU: 1450, DevicesPresent: true, LocalVTEP: ip("10.0.0.1"),
	}, {
		VNI: 200, VXLAN: "vx200", Bridge: "br200", RD: mustRD(t, "65000:200"),
		ImportRTs: []evpn.RT{mustRT(t, "65000:2000"), mustRT(t, "10.0.0.9:7")},
		ExportRTs: []evpn.RT{mustRT(t, "65000:2000")}, UDPPort: 4790,
	}}
	want := []*evpndv1.VNI{{
		Vni: 100, VxlanDevice: "vxlan100", Bridge: "br100", AccessInterfaces: []string{"eth1", "eth2"},
		Rd: "10.0.0.1:100", ImportRtsAuto: true, ExportRts: []string{"65000:100"},
		LocalMacs: 4, RemoteMacs: 5, DuplicateMacs: 1, FloodVteps: []string{"10.0.0.2", "10.0.0.3"},
		UdpPort: 4789, Mtu: 1450, DevicesPresent: true, LocalVtep: "10.0.0.1",
	}, {
		Vni: 200, VxlanDevice: "vx200", Bridge: "br200", Rd: "65000:200",
		ImportRts: []string{"65000:2000", "10.0.0.9:7"}, ExportRts: []string{"65000:2000"}, UdpPort: 4790,
	}}
	return vnis, want
}

func TestListAndGetVNI(t *testing.T) {
	vnis, want := testVNIs(t)
	fb := &fakeBackend{vnis: vnis}
	c, _ := serveUnix(t, fb)
	ctx := ctxT(t)

	list, err := c.ListVNIs(ctx, &evpndv1.ListVNIsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	checkProto(t, "ListVNIs", list, &evpndv1.ListVNIsResponse{Vnis: want})

	got, err := c.GetVNI(ctx, &evpndv1.GetVNIRequest{Vni: 200})
	if err != nil {
		t.Fatal(err)
	}
	checkProto(t, "GetVNI 200", got, &evpndv1.GetVNIResponse{Vni: want[1]})

	_, err = c.GetVNI(ctx, &evpndv1.GetVNIRequest{Vni: 300})
	wantCode(t, err, codes.NotFound, "300")

	fb.mu.Lock()
	fb.vnisErr = fmt.Errorf("l2vnis: %w", ErrNotLeaf)
	fb.mu.Unlock()
	_, err = c.GetVNI(ctx, &evpndv1.GetVNIRequest{Vni: 100})
	wantCode(t, err, codes.FailedPrecondition, "route reflector")
	_, err = c.ListVNIs(ctx, &evpndv1.ListVNIsRequest{})
	wantCode(t, err, codes.FailedPrecondition, "route reflector")
}

// macRows returns n MACs of VNI 100, every third one local.
func macRows(n int) []MAC {
	rows := make([]MAC, n)
	for i := range rows {
		rows[i] = MAC{VNI: 100, MAC: evpn.MAC{2, 0, 0, 0, byte(i >> 8), byte(i)}, Local: i%3 == 0, VTEP: ip("10.0.0.2"), Seq: uint32(i)}
	}
	return rows
}

func TestListMACsConversion(t *testing.T) {
	fb := &fakeBackend{macs: []MAC{{
		VNI: 100, MAC: mustMAC(t, "02:00:00:00:01:0b"), Local: true, VTEP: ip("10.0.0.1"),
		Seq: 2, Sticky: true, InKernel: true, Port: "eth1",
	}, {
		VNI: 100, MAC: mustMAC(t, "02:00:00:00:02:0c"), VTEP: ip("10.0.0.2"), Seq: 5, Duplicate: true,
		Others: []netip.Addr{ip("10.0.0.3"), ip("10.0.0.4")},
	}}}
	c, _ := serveUnix(t, fb)
	st, err := c.ListMACs(ctxT(t), &evpndv1.ListMACsRequest{
		Vni: 100, Source: evpndv1.MACSource_MAC_SOURCE_REMOTE, Mac: "02:00:00:00:02:0C", DuplicatesOnly: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := recvAll(t, st)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	checkProto(t, "ListMACs", msgs[0], &evpndv1.ListMACsResponse{Macs: []*evpndv1.MAC{{
		Vni: 100, Mac: "02:00:00:00:01:0b", Source: evpndv1.MACSource_MAC_SOURCE_LOCAL, Vtep: "10.0.0.1",
		Seq: 2, Sticky: true, InKernel: true, Port: "eth1",
	}, {
		Vni: 100, Mac: "02:00:00:00:02:0c", Source: evpndv1.MACSource_MAC_SOURCE_REMOTE, Vtep: "10.0.0.2",
		Seq: 5, Duplicate: true, OtherVteps: []string{"10.0.0.3", "10.0.0.4"},
	}}})

	fb.mu.Lock()
	f := fb.macFilter
	fb.mu.Unlock()
	m := mustMAC(t, "02:00:00:00:02:0c")
	if want := (MACFilter{VNI: 100, Source: MACRemote, MAC: &m, DuplicatesOnly: true}); f.VNI != want.VNI ||
		f.Source != want.Source || f.MAC == nil || *f.MAC != m || f.DuplicatesOnly != want.DuplicatesOnly {
		t.Errorf("backend got filter %+v, want %+v", f, want)
	}

	for src, want := range map[evpndv1.MACSource]MACSource{
		evpndv1.MACSource_MAC_SOURCE_UNSPECIFIED: MACAny,
		evpndv1.MACSource_MAC_SOURCE_LOCAL:       MACLocal,
	} {
		st, err := c.ListMACs(ctxT(t), &evpndv1.ListMACsRequest{Source: src})
		if err != nil {
			t.Fatal(err)
		}
		recvAll(t, st)
		fb.mu.Lock()
		f := fb.macFilter
		fb.mu.Unlock()
		if f != (MACFilter{Source: want}) {
			t.Errorf("source %v: backend got filter %+v, want source %v and nothing else", src, f, want)
		}
	}
}

func recvAll[T any](t *testing.T, st grpc.ServerStreamingClient[T]) []*T {
	t.Helper()
	var out []*T
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Recv after %d messages: %v", len(out), err)
		}
		out = append(out, m)
	}
}

// TestListMACsPages checks that 2500 rows arrive as 1000+1000+500, in
// order, and that the first page leaves before the backend produced the
// rest: the server streams, it does not collect the table.
func TestListMACsPages(t *testing.T) {
	rows := macRows(2500)
	gate := make(chan struct{})
	fb := &fakeBackend{macs: rows, macsGate: gate}
	c, _ := serveUnix(t, fb)
	st, err := c.ListMACs(ctxT(t), &evpndv1.ListMACsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// The backend waits on gate after the first 1000 rows; a server that
	// collected every row first would never send this message.
	first, err := st.Recv()
	if err != nil {
		t.Fatalf("first page: %v", err)
	}
	close(gate)
	msgs := append([]*evpndv1.ListMACsResponse{first}, recvAll(t, st)...)
	var sizes []int
	i := 0
	for _, msg := range msgs {
		sizes = append(sizes, len(msg.GetMacs()))
		for _, m := range msg.GetMacs() {
			if want := rows[i].MAC.String(); m.GetMac() != want || m.GetSeq() != rows[i].Seq {
				t.Fatalf("row %d: got %s seq %d, want %s seq %d", i, m.GetMac(), m.GetSeq(), want, rows[i].Seq)
			}
			i++
		}
	}
	if !reflect.DeepEqual(sizes, []int{1000, 1000, 500}) {
		t.Errorf("page sizes %v, want [1000 1000 500]", sizes)
	}
	if i != len(rows) {
		t.Errorf("got %d rows, want %d", i, len(rows))
	}
}

func TestListMACsEmptyAndError(t *testing.T) {
	fb := &fakeBackend{}
	c, _ := serveUnix(t, fb)
	st, err := c.ListMACs(ctxT(t), &evpndv1.ListMACsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if msgs := recvAll(t, st); len(msgs) != 0 {
		t.Errorf("empty table: got %d messages, want none", len(msgs))
	}

	// Rows already produced arrive; then the error.
	fb.mu.Lock()
	fb.macs, fb.macsErr = macRows(1500), errors.New("table gone")
	fb.mu.Unlock()
	st, err = c.ListMACs(ctxT(t), &evpndv1.ListMACsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for {
		m, err := st.Recv()
		if err != nil {
			wantCode(t, err, codes.Internal, "table gone")
			break
		}
		n += len(m.GetMacs())
	}
	if n != 1000 {
		t.Errorf("got %d rows before the error, want the first full page of 1000", n)
	}
}

func TestRoutePrefix(t *testing.T) {
	for _, tc := range []struct {
		k    evpn.Key
		want string
	}{
		{evpn.Key{Type: 2, MAC: evpn.MAC{2, 0, 0, 0, 1, 0x0b}}, "[2]:[0]:[48]:[02:00:00:00:01:0b]"},
		{evpn.Key{Type: 2, MAC: evpn.MAC{2, 0, 0, 0, 1, 0x0b}, IP: ip("192.168.100.11")}, "[2]:[0]:[48]:[02:00:00:00:01:0b]:[32]:[192.168.100.11]"},
		{evpn.Key{Type: 2, EthTag: 5, MAC: evpn.MAC{2, 0, 0, 0, 1, 0x0b}, IP: ip("2001:db8::11")}, "[2]:[5]:[48]:[02:00:00:00:01:0b]:[128]:[2001:db8::11]"},
		{evpn.Key{Type: 3, IP: ip("10.0.0.1")}, "[3]:[0]:[32]:[10.0.0.1]"},
		{evpn.Key{Type: 3, IP: ip("2001:db8::1")}, "[3]:[0]:[128]:[2001:db8::1]"},
		{evpn.Key{Type: 5, Prefix: netip.MustParsePrefix("172.16.1.0/24")}, "[5]:[0]:[24]:[172.16.1.0]"},
		{evpn.Key{Type: 5, Prefix: netip.MustParsePrefix("2001:db8:1::/64")}, "[5]:[0]:[64]:[2001:db8:1::]"},
		{evpn.Key{Type: 4}, "[4]"},
	} {
		if got := routePrefix(tc.k); got != tc.want {
			t.Errorf("routePrefix(%v) = %q, want %q", tc.k, got, tc.want)
		}
	}
}

func TestListRoutes(t *testing.T) {
	esi := evpn.ESI{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	paths := []RoutePath{{
		Route: &evpn.Route{
			Key:     evpn.Key{Type: 2, RD: mustRD(t, "10.0.0.2:100"), MAC: mustMAC(t, "02:00:00:00:01:0b"), IP: ip("192.168.100.11")},
			ESI:     esi,
			Labels:  []uint32{100, 4001},
			NextHop: ip("10.0.0.2"),
			RTs:     []evpn.RT{mustRT(t, "65000:100"), mustRT(t, "65000:4001")},
			Seq:     3, Sticky: true, Originator: ip("10.0.0.2"),
		},
		Peer: ip("10.1.1.0"), Best: true, Selected: true, VNI: 100, Age: 90 * time.Second,
		ExtCommunities: []string{"ET:8", "MM:3, sticky", "Rmac:3e:42:0f:4f:45:81"},
		ASPath:         []uint32{65001, 65002}, LocalPref: 100, Origin: "i",
		ClusterList: []netip.Addr{ip("10.0.0.254")}, Stale: true,
	}, {
		Route: &evpn.Route{
			Key:     evpn.Key{Type: 3, RD: mustRD(t, "10.0.0.1:100"), IP: ip("10.0.0.1")},
			NextHop: ip("10.0.0.1"),
			RTs:     []evpn.RT{mustRT(t, "65000:100")},
			PMSI:    &evpn.PMSI{Type: evpn.PMSIIngressReplication, Label: 100, Endpoint: ip("10.0.0.1")},
		},
		Peer: ip("10.1.1.0"), Local: true, Best: true, Selected: true, VNI: 100, Origin: "i",
	}, {
		Route: &evpn.Route{
			Key:       evpn.Key{Type: 5, RD: mustRD(t, "10.0.0.1:1"), Prefix: netip.MustParsePrefix("172.16.1.0/24")},
			Labels:    []uint32{4001},
			GatewayIP: ip("172.16.1.1"),
			NextHop:   ip("10.0.0.1"),
		},
		Origin: "?",
	}}
	fb := &fakeBackend{routes: paths}
	c, _ := serveUnix(t, fb)
	st, err := c.ListRoutes(ctxT(t), &evpndv1.ListRoutesRequest{RouteType: 2, Vni: 100, Rd: "10.0.0.2:100"})
	if err != nil {
		t.Fatal(err)
	}
	msgs := recvAll(t, st)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	checkProto(t, "ListRoutes", msgs[0], &evpndv1.ListRoutesResponse{Routes: []*evpndv1.Route{{
		RouteType: 2, Rd: "10.0.0.2:100", Prefix: "[2]:[0]:[48]:[02:00:00:00:01:0b]:[32]:[192.168.100.11]",
		Mac: "02:00:00:00:01:0b", Ip: "192.168.100.11", Esi: &evpndv1.EthernetSegment{Type: 0, Value: "010203040506070809"},
		Labels: []uint32{100, 4001}, NextHop: "10.0.0.2", RouteTargets: []string{"65000:100", "65000:4001"},
		ExtendedCommunities: []string{"ET:8", "MM:3, sticky", "Rmac:3e:42:0f:4f:45:81"},
		MacMobilitySeq:      3, Sticky: true, AsPath: []uint32{65001, 65002}, LocalPref: 100, Origin: "i",
		Peer: "10.1.1.0", Best: true, Selected: true, Vni: 100, Age: durationpb.New(90 * time.Second),
		Stale: true, OriginatorId: "10.0.0.2", ClusterList: []string{"10.0.0.254"},
	}, {
		RouteType: 3, Rd: "10.0.0.1:100", Prefix: "[3]:[0]:[32]:[10.0.0.1]", Originator: "10.0.0.1",
		NextHop: "10.0.0.1", RouteTargets: []string{"65000:100"},
		PmsiTunnelType: "ingress-replication", PmsiLabel: 100, PmsiEndpoint: "10.0.0.1",
		Origin: "i", Local: true, Best: true, Selected: true, Vni: 100, Age: durationpb.New(0),
	}, {
		RouteType: 5, Rd: "10.0.0.1:1", Prefix: "[5]:[0]:[24]:[172.16.1.0]", IpPrefix: "172.16.1.0/24",
		GatewayIp: "172.16.1.1", Esi: &evpndv1.EthernetSegment{Value: "000000000000000000"},
		Labels: []uint32{4001}, NextHop: "10.0.0.1", Origin: "?", Age: durationpb.New(0),
	}}})

	fb.mu.Lock()
	f := fb.routeFilter
	fb.mu.Unlock()
	if f.Type != 2 || f.VNI != 100 || f.RD == nil || *f.RD != mustRD(t, "10.0.0.2:100") {
		t.Errorf("backend got filter %+v, want type 2, vni 100, rd 10.0.0.2:100", f)
	}

	for _, rt := range []uint32{0, 3, 5} {
		st, err := c.ListRoutes(ctxT(t), &evpndv1.ListRoutesRequest{RouteType: rt})
		if err != nil {
			t.Fatal(err)
		}
		recvAll(t, st)
		fb.mu.Lock()
		f := fb.routeFilter
		fb.mu.Unlock()
		if f != (RouteFilter{Type: evpn.RouteType(rt)}) {
			t.Errorf("route_type %d: backend got filter %+v", rt, f)
		}
	}
}

func TestListRoutesPages(t *testing.T) {
	paths := make([]RoutePath, 2500)
	for i := range paths {
		paths[i] = RoutePath{Route: &evpn.Route{Key: evpn.Key{Type: 3, RD: evpn.RD{Admin: 65000, Number: uint32(i)}, IP: ip("10.0.0.1")}}}
	}
	c, _ := serveUnix(t, &fakeBackend{routes: paths})
	st, err := c.ListRoutes(ctxT(t), &evpndv1.ListRoutesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	i := 0
	for _, msg := range recvAll(t, st) {
		sizes = append(sizes, len(msg.GetRoutes()))
		for _, r := range msg.GetRoutes() {
			if want := fmt.Sprintf("65000:%d", i); r.GetRd() != want {
				t.Fatalf("row %d: rd %s, want %s", i, r.GetRd(), want)
			}
			i++
		}
	}
	if !reflect.DeepEqual(sizes, []int{1000, 1000, 500}) {
		t.Errorf("page sizes %v, want [1000 1000 500]", sizes)
	}
}

func TestListPeers(t *testing.T) {
	fb := &fakeBackend{peers: []Peer{{
		Address: ip("10.1.1.0"), ASN: 65000, Description: "spine1", RouterID: ip("10.0.0.254"),
		State: PeerEstablished, Uptime: time.Hour, Received: 10, Accepted: 9, Advertised: 4,
		MessagesReceived: 13, MessagesSent: 11, EORReceived: true, GracefulRestart: true, PeerRestarting: true, LastError: "hold timer expired", Dynamic: true, RRClient: true,
	}, {
		Address: ip("2001:db8::2"), ASN: 65001, State: PeerActive,
	}}}
	c, _ := serveUnix(t, fb)
	got, err := c.ListPeers(ctxT(t), &evpndv1.ListPeersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	checkProto(t, "ListPeers", got, &evpndv1.ListPeersResponse{Peers: []*evpndv1.Peer{{
		Address: "10.1.1.0", Asn: 65000, Description: "spine1", RouterId: "10.0.0.254",
		State: evpndv1.PeerState_PEER_STATE_ESTABLISHED, Uptime: durationpb.New(time.Hour),
		Received: 10, Accepted: 9, Advertised: 4, MessagesReceived: 13, MessagesSent: 11,
		EorReceived: true, GracefulRestart: true, PeerRestarting: true,
		LastError: "hold timer expired", Dynamic: true, RouteReflectorClient: true,
	}, {
		Address: "2001:db8::2", Asn: 65001, State: evpndv1.PeerState_PEER_STATE_ACTIVE, Uptime: durationpb.New(0),
	}}})
	if fb.peersAdvertised {
		t.Error("a plain ListPeers asked the backend to count advertised paths")
	}
	if _, err := c.ListPeers(ctxT(t), &evpndv1.ListPeersRequest{WithAdvertised: true}); err != nil || !fb.peersAdvertised {
		t.Errorf("with_advertised not passed to the backend: %v", err)
	}
}

func TestPeerStates(t *testing.T) {
	for s, want := range map[PeerState]evpndv1.PeerState{
		PeerUnknown:     evpndv1.PeerState_PEER_STATE_UNSPECIFIED,
		PeerIdle:        evpndv1.PeerState_PEER_STATE_IDLE,
		PeerConnect:     evpndv1.PeerState_PEER_STATE_CONNECT,
		PeerActive:      evpndv1.PeerState_PEER_STATE_ACTIVE,
		PeerOpenSent:    evpndv1.PeerState_PEER_STATE_OPEN_SENT,
		PeerOpenConfirm: evpndv1.PeerState_PEER_STATE_OPEN_CONFIRM,
		PeerEstablished: evpndv1.PeerState_PEER_STATE_ESTABLISHED,
		PeerState(99):   evpndv1.PeerState_PEER_STATE_UNSPECIFIED,
	} {
		if got := toPeerState(s); got != want {
			t.Errorf("toPeerState(%d) = %v, want %v", s, got, want)
		}
	}
}

func TestErrorStatusUnavailable(t *testing.T) {
	s := NewServer(nil, nil)
	err := s.errorStatus("GetVNI", "", fmt.Errorf("wrapped: %w", ErrUnavailable), false)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("got %v", err)
	}
}
