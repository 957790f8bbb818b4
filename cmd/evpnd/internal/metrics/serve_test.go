package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape serves one GET /metrics from h without a network.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// serve runs m.Serve on a loopback listener and returns its base URL and a
// function that stops it and returns Serve's result.
func serve(t *testing.T, m *Metrics) (string, func() error) {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, ln) }()
	var once sync.Once
	var serveErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-done:
			case <-time.After(30 * time.Second):
				serveErr = errors.New("Serve did not return 30s after its context ended")
			}
		})
		return serveErr
	}
	t.Cleanup(func() { stop() })
	return "http://" + ln.Addr().String(), stop
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func TestHTTPScrape(t *testing.T) {
	m := New(&fakeSource{s: sampleSnapshot()}, "1.2.3")
	m.MACMove(100)
	m.UnderlayRepaired("wrong")
	base, stop := serve(t, m)

	code, body, hdr := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q, want the text exposition format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the exposition text: %v\n%s", err, body)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		f := fams[name]
		if f == nil {
			return 0, false
		}
	next:
		for _, mt := range f.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case mt.Gauge != nil:
				return mt.GetGauge().GetValue(), true
			case mt.Counter != nil:
				return mt.GetCounter().GetValue(), true
			}
		}
		return 0, false
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"evpnd_bgp_peer_up", map[string]string{"peer": "10.0.0.1"}, 1},
		{"evpnd_bgp_peer_state", map[string]string{"peer": "10.0.0.2", "asn": "65001"}, 3},
		{"evpnd_macs", map[string]string{"vni": "100", "source": "remote"}, 40},
		{"evpnd_evpn_routes", map[string]string{"type": "2"}, 50},
		{"evpnd_fib_errors_total", nil, 4},
		{"evpnd_bgp_stuck_session_resets_total", nil, 2},
		{"evpnd_underlay_drift_repairs_total", map[string]string{"drift": "wrong"}, 1},
		{"evpnd_mac_moves_total", map[string]string{"vni": "100"}, 1},
		{"evpnd_build_info", map[string]string{"version": "1.2.3"}, 1},
	} {
		if got, ok := value(c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	for _, n := range []string{"go_goroutines", "process_open_fds", "evpnd_fib_reconcile_duration_seconds"} {
		if fams[n] == nil {
			t.Errorf("%s missing from the scrape", n)
		}
	}
	if f := fams["evpnd_fib_writes_total"]; f == nil || f.GetType().String() != "COUNTER" {
		t.Errorf("evpnd_fib_writes_total is %v, want a counter", f.GetType())
	}

	code, body, _ = get(t, base+"/")
	if code != http.StatusOK || !strings.Contains(body, `href="/metrics"`) || !strings.Contains(body, "1.2.3") {
		t.Errorf("GET /: %d\n%s\nwant a page linking to /metrics and naming the version", code, body)
	}
	if code, _, _ = get(t, base+"/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope: %d, want 404", code)
	}

	if err := stop(); err != nil {
		t.Fatalf("Serve after its context ended: %v, want nil", err)
	}
	if _, err := http.Get(base + "/metrics"); err == nil {
		t.Fatal("server still answers after Serve returned")
	}
}

// blockingSource blocks each Snapshot until release is closed.
type blockingSource struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingSource) Snapshot() Snapshot {
	b.entered <- struct{}{}
	<-b.release
	return sampleSnapshot()
}

// TestGracefulShutdown ends Serve's context during a scrape: the scrape
// still completes, and Serve returns nil only after it.
func TestGracefulShutdown(t *testing.T) {
	src := &blockingSource{entered: make(chan struct{}, 1), release: make(chan struct{})}
	m := New(src, "dev")
	base, stop := serve(t, m)

	type result struct {
		code int
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, string(b), err}
	}()
	<-src.entered // the scrape is in progress

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned (%v) with a scrape in progress", err)
	case r := <-got:
		t.Fatalf("scrape ended (%d, %v) before its Snapshot returned", r.code, r.err)
	case <-time.After(100 * time.Millisecond):
		// Neither ended by itself; this only lets a wrong order show.
	}
	close(src.release)
	r := <-got
	if r.err != nil || r.code != http.StatusOK || !strings.Contains(r.body, "evpnd_bgp_peer_up") {
		t.Fatalf("in-flight scrape: %d %v\n%s", r.code, r.err, r.body)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Serve: %v, want nil", err)
	}
}

func TestListenErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, c := range []struct {
		addr, want string
		errno      error
	}{
		{"", "metrics.listen is empty", nil},
		{"127.0.0.1", "missing port", nil},
		{"127.0.0.1:99999", "invalid port", nil},
		{busy.Addr().String(), "address already in use", syscall.EADDRINUSE},
	} {
		ln, err := Listen(c.addr)
		if err == nil {
			ln.Close()
			t.Errorf("Listen(%q) succeeded, want an error", c.addr)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "metrics.listen") || !strings.Contains(msg, c.want) ||
			!strings.Contains(msg, "127.0.0.1:9273") {
			t.Errorf("Listen(%q) = %q; want it to name metrics.listen, say %q and suggest an address", c.addr, msg, c.want)
		}
		if c.errno != nil && !errors.Is(err, c.errno) {
			t.Errorf("Listen(%q) = %v, want it to wrap %v", c.addr, err, c.errno)
		}
	}
}
