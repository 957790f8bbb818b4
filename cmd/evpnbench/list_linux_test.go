//go:build linux

package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestListSmoke runs the list benchmark on a small table so that it keeps
// working: one leaf of each implementation (FRR when installed), every
// listing once, with the benchmark's own checks (the API returns one row
// per MAC; each command prints at least a line per MAC). It asserts no
// timing.
func TestListSmoke(t *testing.T) {
	requireRoot(t)
	if testing.Short() {
		t.Skip("-short: the list smoke test builds evpnd and evpnctl and loads a leaf")
	}
	const routes = 2000
	o := listOptions{
		common:  commonFlags{frr: withFRR(t)},
		Routes:  routes,
		VTEPs:   2,
		Rounds:  1,
		Repeat:  1,
		Timeout: 2 * time.Minute,
	}
	var progress bytes.Buffer
	res, err := list(t.Context(), o, &progress)
	t.Log(progress.String())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]listSample{}
	for _, s := range res {
		got[s.Impl+"/"+s.Tool] = s
	}
	for _, impl := range listImpls(o) {
		for _, tool := range listTools(impl) {
			s, ok := got[impl+"/"+tool]
			if !ok {
				t.Errorf("%s on the %s leaf: no sample", tool, impl)
				continue
			}
			if err := s.check(routes); err != nil {
				t.Errorf("%s on the %s leaf: %v", tool, impl, err)
			}
			if s.Wall <= 0 {
				t.Errorf("%s on the %s leaf: wall time %v", tool, impl, s.Wall)
			}
			if (tool == toolBridge || tool == toolNetlink) != (s.Daemon == nil) {
				t.Errorf("%s on the %s leaf: daemon metered = %v; want it for every listing but the kernel's floor", tool, impl, s.Daemon != nil)
			}
			if s.Daemon != nil && (s.Daemon.Before <= 0 || s.Daemon.Peak < s.Daemon.Before) {
				t.Errorf("%s on the %s leaf: daemon RSS before %d, peak %d", tool, impl, s.Daemon.Before, s.Daemon.Peak)
			}
			// Listing 2,000 rows allocates megabytes in evpnd; zebra has
			// no such counter.
			if s.Daemon != nil && impl == implEvpnd && s.Daemon.Alloc <= 0 {
				t.Errorf("%s on the evpnd leaf: evpnd allocated %d bytes; want its /metrics delta", tool, s.Daemon.Alloc)
			}
		}
	}
	if s := got[implEvpnd+"/"+toolAPI]; s.Pages < 2 || s.MaxPage > 1000 || s.Bytes <= 0 {
		t.Errorf("ListMACs: %d rows in %d pages (largest %d), %d bytes read: want pages of at most 1000 rows", s.Rows, s.Pages, s.MaxPage, s.Bytes)
	}
	rep := listReport(o, res, "test")
	for _, want := range []string{"evpnctl show evpn mac", "ListMACs, Go gRPC client", "evpnctl / bridge fdb show"} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
	t.Log(rep)
}

func TestListSampleCheck(t *testing.T) {
	const n = 100
	for _, c := range []struct {
		s  listSample
		ok bool
	}{
		{listSample{Tool: toolAPI, Rows: n}, true},
		{listSample{Tool: toolAPI, Rows: n - 1}, false},
		{listSample{Tool: toolAPI, Rows: n + 1}, false},
		{listSample{Tool: toolCtl, Rows: n + 3}, true},
		{listSample{Tool: toolCtl, Rows: n}, false}, // no header
		{listSample{Tool: toolCtlJSON, Rows: n + 3}, true},
		{listSample{Tool: toolCtlJSON, Rows: n - 1}, false},
		{listSample{Tool: toolBridge, Rows: 2*n + 10}, true},
		{listSample{Tool: toolBridge, Rows: 2*n - 1}, false},
		{listSample{Tool: toolNetlink, Rows: 2 * n}, true},
		{listSample{Tool: toolNetlink, Rows: n}, false},
		{listSample{Tool: toolVtyshJSON, Rows: 8 * n}, true},
		{listSample{Tool: toolVtysh, Rows: 3}, false},
	} {
		if err := c.s.check(n); (err == nil) != c.ok {
			t.Errorf("%s with %d rows/lines for %d MACs: err = %v, want ok = %v", c.s.Tool, c.s.Rows, n, err, c.ok)
		}
	}
}

func TestLineCounter(t *testing.T) {
	var c lineCounter
	for _, p := range []string{"a\nb", "c\n", "", "\n\n"} {
		if n, err := c.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if c.lines != 4 || c.bytes != 7 {
		t.Errorf("lines, bytes = %d, %d; want 4, 7", c.lines, c.bytes)
	}
}

func TestListStatsMedian(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	d := func(before, peak int64) *daemonCost { return &daemonCost{Before: before, Peak: peak} }
	res := []listSample{
		{Impl: implFRR, Tool: toolVtysh, Wall: ms(50), Daemon: d(10, 10)},
		{Impl: implEvpnd, Tool: toolCtl, Wall: ms(30), Daemon: d(100, 150)},
		{Impl: implEvpnd, Tool: toolCtl, Wall: ms(10), Daemon: d(100, 110)},
		{Impl: implEvpnd, Tool: toolCtl, Wall: ms(20), Daemon: d(100, 120)},
		{Impl: implEvpnd, Tool: toolCtl, Wall: ms(40), Daemon: d(100, 100)},
	}
	st := listStatsOf(res)
	if len(st) != 2 || st[0].Impl != implEvpnd {
		t.Fatalf("stats %+v: want evpnd's first, then frr's", st)
	}
	e := st[0]
	if e.N != 4 || e.Wall != ms(25) || e.WallMin != ms(10) || e.WMax != ms(40) {
		t.Errorf("evpnctl: n %d, median %v, min %v, max %v; want 4, 25ms, 10ms, 40ms", e.N, e.Wall, e.WallMin, e.WMax)
	}
	if e.Growth != 15 || e.GrowthMax != 50 {
		t.Errorf("evpnctl: growth %d (max %d); want 15 (max 50)", e.Growth, e.GrowthMax)
	}
}

func TestParseGoAlloc(t *testing.T) {
	body := "# HELP go_memstats_alloc_bytes_total Total number of bytes allocated.\n" +
		"# TYPE go_memstats_alloc_bytes_total counter\n" +
		"go_memstats_alloc_bytes_total 1.234567e+09\n" +
		"go_memstats_alloc_bytes 5.5e+06\n"
	if got, err := parseGoAlloc([]byte(body)); err != nil || got != 1234567000 {
		t.Errorf("parseGoAlloc = %d, %v; want 1234567000", got, err)
	}
	if _, err := parseGoAlloc([]byte("go_memstats_alloc_bytes 5.5e+06\n")); err == nil {
		t.Error("no counter: no error")
	}
	if _, err := parseGoAlloc([]byte("go_memstats_alloc_bytes_total x\n")); err == nil {
		t.Error("bad value: no error")
	}
}
