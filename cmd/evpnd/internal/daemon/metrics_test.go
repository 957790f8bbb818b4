package daemon

import (
	"context"
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/cmd/evpnd/internal/metrics"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/bgptest"
)

func TestMetricPeersState(t *testing.T) {
	// evpnd_bgp_peer_state is RFC 4271's numbering: the API's states
	// convert to it one for one.
	want := map[api.PeerState]uint8{api.PeerUnknown: 0, api.PeerIdle: 1, api.PeerConnect: 2, api.PeerActive: 3,
		api.PeerOpenSent: 4, api.PeerOpenConfirm: 5, api.PeerEstablished: metrics.PeerEstablished}
	for st, n := range want {
		got := metricPeers([]api.Peer{{State: st, ASN: 65000, Received: 3, Accepted: 2}})
		if got[0].State != n || got[0].ASN != 65000 || got[0].Received != 3 || got[0].Accepted != 2 {
			t.Errorf("state %d: got %+v, want State %d", st, got[0], n)
		}
	}
}

// TestMetricsStuckSessionResets: a raw peer exchanges OPENs with a real
// speaker but never confirms the speaker's OPEN; once the speaker's
// OpenConfirm watchdog has reset the session, the daemon's scrape shows
// evpnd_bgp_stuck_session_resets_total 1 (0 before).
func TestMetricsStuckSessionResets(t *testing.T) {
	const hold = 3 * time.Second // the shortest: the reset comes after it
	addr := netip.MustParseAddr("127.0.0.195")
	peer := netip.MustParseAddr("127.0.0.196")
	port := freePort(t, addr.String())
	srv, err := speaker.New(speaker.Config{RouterID: addr, ASN: 65000, ListenPort: port, ListenAddresses: []string{addr.String()},
		ConnectRetry: time.Second, HoldTime: hold, Logger: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		srv.Stop(ctx, false)
	})
	if err := srv.AddNeighbor(ctx, speaker.Neighbor{Address: peer, ASN: 65000, Passive: true}); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{}
	d.live.Store(&configs.Config{Role: configs.RoleRouteReflector})
	d.srv.Store(srv)
	m := metrics.New(metrics.SourceFunc(d.metricsSnapshot), "test")
	resets := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		for _, line := range strings.Split(rec.Body.String(), "\n") {
			if strings.HasPrefix(line, "evpnd_bgp_stuck_session_resets_total ") {
				return line
			}
		}
		return "(absent)"
	}
	if got := resets(); got != "evpnd_bgp_stuck_session_resets_total 0" {
		t.Fatalf("before any reset: %s", got)
	}

	// GoBGP closes connections that come while the neighbour is Idle.
	active := func() bool {
		ps, err := srv.Peers(ctx)
		return err == nil && len(ps) == 1 && ps[0].State == speaker.PeerStateActive
	}
	if !waitFor(t, "the neighbour to be Active", 30*time.Second, active) {
		t.Fatal("the neighbour never became Active")
	}
	dl := net.Dialer{Timeout: 5 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(peer, 0))}
	c, err := dl.Dial("tcp", netip.AddrPortFrom(addr, uint16(port)).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(bgptest.Open(65000, peer, uint16(hold/time.Second))); err != nil {
		t.Fatal(err)
	}
	// Read the speaker's OPEN and KEEPALIVE, then stay silent.
	for got := map[byte]bool{}; !got[bgptest.MsgOpen] || !got[bgptest.MsgKeepalive]; {
		typ, _, err := bgptest.Read(c)
		if err != nil || typ == bgptest.MsgNotification {
			t.Fatalf("read the speaker's OPEN and KEEPALIVE: type %d, %v", typ, err)
		}
		got[typ] = true
	}
	const want = "evpnd_bgp_stuck_session_resets_total 1"
	if !waitFor(t, "the reset in the scrape", hold+15*time.Second, func() bool { return resets() == want }) {
		t.Fatalf("after a session stuck in OpenConfirm: %s, want %s", resets(), want)
	}
}
