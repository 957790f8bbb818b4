package speaker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// gobgpClient connects GoBGP's generated client to addr.
func gobgpClient(t *testing.T, addr string) api.GoBgpServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return api.NewGoBgpServiceClient(conn)
}

func listPeerAddrs(ctx context.Context, c api.GoBgpServiceClient) ([]string, error) {
	st, err := c.ListPeer(ctx, &api.ListPeerRequest{})
	if err != nil {
		return nil, err
	}
	var out []string
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r.GetPeer().GetConf().GetNeighborAddress())
	}
}

// TestGoBGPAPI: with GoBGPAPIListen, GoBGP's own client sees the
// neighbour and the announced routes; Stop releases the port, so that a
// new Server binds it again.
func TestGoBGPAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	apiAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(freePort(t, "127.0.0.1"))))
	a := startSpeaker(t, "127.0.0.141", 65000, false, func(c *Config) { c.GoBGPAPIListen = apiAddr })
	b := startSpeaker(t, "127.0.0.142", 65000, false, nil)
	a.peerWith(b, 65000, nil)
	routes := leafRoutes("10.0.0.1", "10.0.0.1", 1)
	if err := a.Announce(ctx, routes); err != nil {
		t.Fatal(err)
	}

	c := gobgpClient(t, apiAddr)
	peers, err := listPeerAddrs(ctx, c)
	if err != nil {
		t.Fatalf("gobgp neighbor: %v", err)
	}
	if len(peers) != 1 || peers[0] != b.addr.String() {
		t.Errorf("gobgp neighbor: %v, want [%s]", peers, b.addr)
	}

	st, err := c.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: FamilyL2VPNEVPN.api()})
	if err != nil {
		t.Fatalf("gobgp global rib -a evpn: %v", err)
	}
	got := map[evpn.Key]bool{}
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("gobgp global rib -a evpn: %v", err)
		}
		for _, p := range r.GetDestination().GetPaths() {
			// The CLI's form: NLRI and attributes as protobuf messages.
			nlri, err := apiutil.GetNativeNlri(p)
			if err != nil {
				t.Errorf("path of %s: %v", r.GetDestination().GetPrefix(), err)
				continue
			}
			attrs, err := apiutil.GetNativePathAttributes(p)
			if err != nil {
				t.Errorf("path of %s: %v", r.GetDestination().GetPrefix(), err)
				continue
			}
			rt, err := FromNative(nlri, attrs)
			if err != nil {
				t.Errorf("path of %s: %v", r.GetDestination().GetPrefix(), err)
				continue
			}
			got[rt.Key] = true
		}
	}
	for _, r := range routes {
		if !got[r.Key] {
			t.Errorf("gobgp global rib -a evpn: %s missing", r.Key)
		}
	}
	if len(got) != len(routes) {
		t.Errorf("gobgp global rib -a evpn: %d routes, want %d", len(got), len(routes))
	}

	if err := a.Stop(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := listPeerAddrs(ctx, gobgpClient(t, apiAddr)); err == nil {
		t.Error("GoBGP's API still answers after Stop")
	}
	// The port is free the moment Stop returns: a restarted daemon binds it.
	a2 := startSpeaker(t, "127.0.0.141", 65000, false, func(c *Config) { c.GoBGPAPIListen = apiAddr })
	if peers, err := listPeerAddrs(ctx, gobgpClient(t, apiAddr)); err != nil || len(peers) != 0 {
		t.Errorf("gobgp neighbor after the restart: %v, %v; want no neighbour", peers, err)
	}
	_ = a2
}

// TestGoBGPAPIRefused: GoBGP's API has no authentication, so only a
// loopback address is accepted; a port in use fails Start, not the process.
func TestGoBGPAPIRefused(t *testing.T) {
	cfg := Config{RouterID: mustAddr("127.0.0.143"), ASN: 65000, ListenPort: -1, Logger: testLogger()}
	for _, addr := range []string{"0.0.0.0:50051", "10.0.0.1:50051", "[::]:50051", "[2001:db8::1]:50051", "localhost:50051"} {
		c := cfg
		c.GoBGPAPIListen = addr
		_, err := New(c)
		if err == nil || !strings.Contains(err.Error(), "api.gobgp-listen "+addr+" must be a loopback address: GoBGP's API has no authentication") {
			t.Errorf("GoBGPAPIListen %s: %v, want refused as not loopback", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1", "127.0.0.1:0", "127.0.0.1:http", "[::1]:70000"} {
		c := cfg
		c.GoBGPAPIListen = addr
		if _, err := New(c); err == nil {
			t.Errorf("GoBGPAPIListen %s accepted", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:50051", "127.1.2.3:50051", "[::1]:50051"} {
		c := cfg
		c.GoBGPAPIListen = addr
		if _, err := New(c); err != nil {
			t.Errorf("GoBGPAPIListen %s: %v", addr, err)
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := cfg
	c.GoBGPAPIListen = l.Addr().String()
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Start with the API port in use: %v, want address already in use", err)
	}
	if err := s.Stop(ctx, false); err != nil {
		t.Errorf("Stop after a failed Start: %v", err)
	}
}

// TestGoBGPLoggerHooks: what the logger takes from GoBGP's records (their
// attributes as GoBGP v4.9 logs them: the FSM's logger carries Topic and
// Key through With).
func TestGoBGPLoggerHooks(t *testing.T) {
	var apiErr error
	sessions := newSessionLog()
	g := newGobgpLogger(testLogger(), sessions, func(err error) { apiErr = err })

	g.Error(gobgpGrpcListenError, slog.String("Error", "bind: address already in use"))
	if apiErr == nil || !strings.Contains(apiErr.Error(), "address already in use") {
		t.Errorf("gRPC listen failure: %v", apiErr)
	}

	peer := mustAddr("192.0.2.1")
	fsm := g.With(slog.String("Topic", "Peer"), slog.String("Key", peer.String()))
	idle, est, open := bgp.BGP_FSM_IDLE.String(), bgp.BGP_FSM_ESTABLISHED.String(), bgp.BGP_FSM_OPENCONFIRM.String()
	change := func(from, to string, reason string) {
		fsm.Debug(gobgpStateChanged, slog.String("old", from), slog.String("new", to), slog.String("reason", reason))
	}
	change(est, idle, "hold-timer-expired")
	if e := sessions.lastError(peer); e != "hold-timer-expired" {
		t.Errorf("after a hold timer expiry: %q", e)
	}
	change(idle, bgp.BGP_FSM_ACTIVE.String(), "invalid-msg") // not a failure
	change(est, idle, "")                                    // no reason: keep the last
	if e := sessions.lastError(peer); e != "hold-timer-expired" {
		t.Errorf("after transitions without a failure: %q", e)
	}
	// The NOTIFICATION names the failure better than GoBGP's reason.
	fsm.Info(gobgpNotifSent, slog.String("State", open), slog.Int("Code", int(bgp.BGP_ERROR_OPEN_MESSAGE_ERROR)),
		slog.Int("Subcode", int(bgp.BGP_ERROR_SUB_BAD_PEER_AS)), slog.Any("Data", []byte{}))
	change(open, idle, "invalid-msg")
	if e := sessions.lastError(peer); e != "notification sent: code 2(open) subcode 2(bad peer as)" {
		t.Errorf("after an OPEN refused: %q", e)
	}
	fsm.Info(gobgpNotifReceived, slog.Int("Code", int(bgp.BGP_ERROR_CEASE)),
		slog.Int("Subcode", int(bgp.BGP_ERROR_SUB_ADMINISTRATIVE_SHUTDOWN)), slog.String("Communicated-Reason", "maintenance"))
	change(est, idle, "hold-timer-expired")
	if e := sessions.lastError(peer); e != "notification received: code 6(cease) subcode 2(administrative shutdown): maintenance" {
		t.Errorf("after a shutdown: %q", e)
	}
	// The notification counts once.
	change(est, idle, "hold-timer-expired")
	if e := sessions.lastError(peer); e != "hold-timer-expired" {
		t.Errorf("after a later hold timer expiry: %q", e)
	}
	if e := sessions.lastError(mustAddr("192.0.2.2")); e != "" {
		t.Errorf("another peer: %q", e)
	}
}
