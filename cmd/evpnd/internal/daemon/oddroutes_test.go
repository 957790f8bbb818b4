package daemon

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/metrics"
	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/evpn"
)

func TestOddLimiter(t *testing.T) {
	var o oddLimiter
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < oddLogBurst; i++ {
		if ok, n := o.allow(evpn.OddLabelZero, t0); !ok || n != 0 {
			t.Fatalf("line %d: allow = %v,%d, want true,0", i, ok, n)
		}
	}
	for i := 0; i < 3; i++ {
		if ok, _ := o.allow(evpn.OddLabelZero, t0.Add(time.Second)); ok {
			t.Fatalf("line %d past the burst allowed", oddLogBurst+i)
		}
	}
	// Another kind has its own budget.
	if ok, _ := o.allow(evpn.OddNoPMSI, t0.Add(time.Second)); !ok {
		t.Fatal("another kind suppressed")
	}
	// The next period logs again, with the count suppressed.
	if ok, n := o.allow(evpn.OddLabelZero, t0.Add(oddLogPeriod)); !ok || n != 3 {
		t.Fatalf("next period: allow = %v,%d, want true,3", ok, n)
	}
}

// TestOddRoutesLoggedAndCounted feeds the leaf loop one route of each odd
// kind: each is logged at WARN with its kind, counted in
// evpnd_odd_routes_total, and the downstream VNI reaches fib.
func TestOddRoutesLoggedAndCounted(t *testing.T) {
	var logBuf bytes.Buffer
	l := newTestLeaf(t, nil, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.1"))
	l.d.log = slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	l.d.metrics = metrics.New(nil, "test")
	vtep2 := netip.MustParseAddr("10.0.0.2")
	route := func(m byte, mod func(r *evpn.Route)) event {
		r := remoteRoute(vtep2, evpn.MAC{2, 0, 0, 0, 0x95, m}, 0, false)
		mod(r)
		return event{bgp: &speaker.Event{Type: speaker.EventRoute, Route: r, Peer: vtep2}}
	}
	imet := evpn.LocalIMETRoute(evpn.RDFromIP(vtep2, 100), 100, vtep2, rt100)
	imet.PMSI.Type = 3
	runBatch(t, l,
		route(1, func(r *evpn.Route) { r.Labels = []uint32{0} }),
		route(2, func(r *evpn.Route) { r.Labels = []uint32{5100} }),
		route(3, func(r *evpn.Route) { r.NextHop = netip.MustParseAddr("2001:db8::2") }),
		route(4, func(r *evpn.Route) { r.ESI = evpn.ESI{0, 1} }),
		route(5, func(r *evpn.Route) { r.Seq = evpn.MaxSeq }),
		event{bgp: &speaker.Event{Type: speaker.EventRoute, Route: imet, Peer: vtep2}},
	)
	kinds := []evpn.Oddity{evpn.OddLabelZero, evpn.OddDownstreamVNI, evpn.OddIPv6NextHop, evpn.OddESIWithoutAD, evpn.OddSeqMax, evpn.OddPMSINotIR}
	rec := httptest.NewRecorder()
	l.d.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, k := range kinds {
		if !strings.Contains(logBuf.String(), "kind="+string(k)+" ") {
			t.Errorf("no log line of kind %s in:\n%s", k, logBuf.String())
		}
		if want := fmt.Sprintf("evpnd_odd_routes_total{kind=%q} 1", k); !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	s := l.desired.Snapshot()
	k := fib.MACKey(100, evpn.MAC{2, 0, 0, 0, 0x95, 2})
	if s.MACs[k] != vtep2 || s.SendVNIs[k] != 5100 {
		t.Errorf("downstream VNI: fib has %v vni %d, want %s vni 5100", s.MACs[k], s.SendVNIs[k], vtep2)
	}
	if _, ok := s.MACs[fib.MACKey(100, evpn.MAC{2, 0, 0, 0, 0x95, 1})]; ok {
		t.Error("label 0 installed")
	}
	if len(s.Floods) != 0 {
		t.Errorf("flood entries from a PIM-SM type-3: %v", s.Floods)
	}
}
