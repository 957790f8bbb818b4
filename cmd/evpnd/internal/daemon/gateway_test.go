package daemon

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/metrics"
	"github.com/evpnd/evpnd/cmd/evpnd/internal/trace"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/evpnd/evpnd/vtep"
)

// gatewayLeaf is a loop (no BGP, no kernel) of leaf 10.0.0.1 with VRF red
// (L3VNI 4001) routing L2VNI 100, gateway 10.1.0.1/24 with MAC gw; its
// log goes to the returned buffer.
func gatewayLeaf(t *testing.T, gw evpn.MAC) (*leaf, *bytes.Buffer) {
	t.Helper()
	cfg := &configs.Config{RouterID: netip.MustParseAddr("10.0.0.1"), ASN: 65000, VTEPIP: netip.MustParseAddr("10.0.0.1"),
		L2VNIs: []configs.L2VNI{{VNI: 100, VXLANDevice: "vxlan100", Bridge: "br100", AccessInterfaces: []string{"eth1"}}},
		VRFs: []configs.VRF{{Name: "red", L3VNI: 4001, GatewayMAC: gw.String(),
			L2VNIs: []configs.VRFMember{{VNI: 100, GatewayIPs: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24")}}}}}}
	cfg.ApplyDefaults()
	var buf bytes.Buffer
	d := &Daemon{cfg: cfg, log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})),
		hub: newHub(), trace: trace.New(0, 0), metrics: metrics.New(nil, "test")}
	l := &leaf{d: d, q: newQueue[event](), vnis: map[uint32]configs.L2VNI{100: cfg.L2VNIs[0]},
		advertised: map[evpn.MACKey]*evpn.Route{}, desired: fib.NewDesired(), hosts: newLocalHosts(cfg), l3: evpn.NewL3Table(d.l3Options())}
	l.table = evpn.NewTable(evpn.Options{LocalVTEP: cfg.VTEPIP, RouterID: cfg.RouterID}, d.importRules())
	d.live.Store(cfg)
	return l, &buf
}

func scrapeLine(t *testing.T, m *metrics.Metrics, prefix string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

// Another leaf's anycast gateway with another MAC (a MAC+IP route for our
// gateway address, or a Default Gateway route) is warned about once per
// (VNI, leaf, MAC), counted every time, and never installed; a remote
// route for our own gateway MAC, and our gateway MAC learned on an access
// port, are neither installed nor advertised.
func TestGatewayMACConflict(t *testing.T) {
	gw := evpn.MAC{0, 0, 0x5e, 0, 1, 1}
	l, logs := gatewayLeaf(t, gw)
	vtep2, vtep3 := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	other := evpn.MAC{0, 0, 0x5e, 0, 1, 2}
	rts := []evpn.RT{evpn.AutoRT(65000, 100), evpn.AutoRT(65000, 4001)}
	rmac := evpn.MAC{2, 0xaa, 0, 0, 0, 2}
	route := func(vtep netip.Addr, rdn uint16, mac evpn.MAC, ip string, defgw bool) *evpn.Route {
		r := evpn.LocalMACIPRoute(evpn.RDFromIP(vtep, rdn), 100, 4001, mac, netip.MustParseAddr(ip), vtep, rts, rmac, 0, false)
		r.DefaultGW = defgw
		return r
	}
	feed := func(rs ...*evpn.Route) {
		now := time.Now()
		var eff []evpn.Effect
		for _, r := range rs {
			eff = l.handle(&event{bgp: &speaker.Event{Type: speaker.EventRoute, Route: r, Peer: r.VTEP()}}, eff, now)
		}
		l.apply(eff, &effBuf{})
		l.applyL3(l.l3eff, &effBuf{})
		l.l3eff = nil
	}
	feed(route(vtep2, 2, other, "10.1.0.1", false), route(vtep2, 2, other, "10.1.0.1", false), // the same route twice
		route(vtep2, 3, other, "10.1.0.1", true)) // and as a Default Gateway route
	if n := strings.Count(logs.String(), "different MAC"); n != 1 {
		t.Errorf("%d warnings for one (VNI, leaf, MAC), want 1:\n%s", n, logs)
	}
	for _, want := range []string{"vni=100", "leaf=10.0.0.2", "mac=00:00:5e:00:01:02", "local_gateway_mac=00:00:5e:00:01:01", "gateway-mac"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("warning lacks %q:\n%s", want, logs)
		}
	}
	feed(route(vtep3, 2, other, "10.1.0.1", true)) // another leaf: warned too
	if n := strings.Count(logs.String(), "different MAC"); n != 2 {
		t.Errorf("%d warnings after a second leaf, want 2:\n%s", n, logs)
	}
	if got := scrapeLine(t, l.d.metrics, `evpnd_gateway_mac_conflicts_total{vni="100"}`); !strings.HasSuffix(got, " 4") {
		t.Errorf("metric %q, want 4 conflicting routes counted", got)
	}

	// Our own gateway MAC from another leaf, as a host or a gateway.
	feed(route(vtep2, 4, gw, "10.1.0.1", true), route(vtep2, 5, gw, "10.1.0.77", false))
	if n := strings.Count(logs.String(), "different MAC"); n != 2 {
		t.Errorf("our own gateway MAC warned about as a conflict:\n%s", logs)
	}
	if mi, ok := l.table.Lookup(100, gw); ok {
		t.Errorf("remote entry for our gateway MAC installed: %+v", mi)
	}
	if mi, ok := l.table.Lookup(100, other); !ok || mi.VTEP != vtep3 && mi.VTEP != vtep2 {
		t.Errorf("the other leaf's gateway MAC as a plain MAC: %+v %v, want it installed (as zebra does)", mi, ok)
	}
	if s := l.l3.Snapshot(); len(s.Neighs)+len(s.Hosts) != 0 {
		t.Errorf("L3 state %+v, want no neighbour or host route for a gateway", s)
	}

	// Our gateway MAC heard on an access port: never a local host.
	now := time.Now()
	for range 2 {
		eff := l.handle(&event{local: &vtep.MACEvent{VNI: 100, MAC: gw, Port: "eth1"}}, nil, now)
		b := l.apply(eff, &effBuf{})
		if mi, ok := l.table.Lookup(100, gw); ok || len(l.advertised) != 0 || b == nil {
			t.Errorf("gateway MAC learned locally: table %+v %v, advertised %v", mi, ok, l.advertised)
		}
	}
	if n := strings.Count(logs.String(), "learned on an access port"); n != 1 {
		t.Errorf("%d warnings for the gateway MAC on eth1, want 1:\n%s", n, logs)
	}
}
