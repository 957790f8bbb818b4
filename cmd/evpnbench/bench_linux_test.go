//go:build linux

package main

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The harness as Go benchmarks. Each b.N iteration is one full round
// (fresh namespaces, evpnd, then FRR when installed), which takes tens of
// seconds, so -benchtime 1x (the default ends up there anyway) is the
// usual setting:
//
//	go test -run '^$' -bench . -benchtime 1x ./cmd/evpnbench
//	go test -run '^$' -bench BurstRaw -benchtime 3x ./cmd/evpnbench -args -evpnbench.routes 20000
var (
	benchRoutes = flag.Int("evpnbench.routes", 100_000, "routes in BenchmarkBurst*")
	benchN      = flag.Int("evpnbench.n", 20, "samples per fabric in BenchmarkLatency")
	benchNoFRR  = flag.Bool("evpnbench.nofrr", false, "skip the FRR reference")
	benchVNIs   = flag.Int("evpnbench.vnis", 4096, "L2VNIs in BenchmarkVNIs")
	benchL3     = flag.Int("evpnbench.l3routes", 50_000, "MAC+IP routes in BenchmarkL3")
)

func requireRoot(tb testing.TB) {
	if os.Geteuid() != 0 {
		tb.Skip("needs root to create network namespaces")
	}
}

// withFRR reports whether to run the FRR reference: installed and not
// turned off.
func withFRR(tb testing.TB) bool {
	if *benchNoFRR {
		return false
	}
	if _, err := exec.LookPath(frrBGPd); err != nil {
		tb.Log("FRR not installed: evpnd only")
		return false
	}
	return true
}

// BenchmarkBurst: the burst from the GoBGP route reflector (the evpnd
// fabric's own reflector), into evpnd and FRR.
func BenchmarkBurst(b *testing.B) { benchBurst(b, sourceGoBGP) }

// BenchmarkBurstRaw: the burst from the raw source (packed UPDATEs at TCP
// speed), which measures the leaf alone.
func BenchmarkBurstRaw(b *testing.B) { benchBurst(b, sourceRaw) }

func benchBurst(b *testing.B, source string) {
	requireRoot(b)
	o := burstOptions{
		common:  commonFlags{frr: withFRR(b)},
		Routes:  *benchRoutes,
		VTEPs:   10,
		Rounds:  b.N,
		Source:  source,
		Timeout: 5 * time.Minute,
	}
	b.ResetTimer()
	res, err := burst(context.Background(), o, os.Stderr)
	b.StopTimer()
	if len(res) > 0 {
		b.Log(burstReport(o, res, machine()))
	}
	if err != nil {
		b.Fatal(err)
	}
	if e := medianBurst(res, implEvpnd); e != nil {
		b.ReportMetric(e.Total.Seconds(), "evpnd-s")
		b.ReportMetric(e.rate(), "evpnd-routes/s")
		b.ReportMetric(e.rssPerRoute(), "evpnd-B/route")
		b.ReportMetric(float64(e.cpuPerRoute())/float64(time.Microsecond), "evpnd-cpu-µs/route")
		if f := medianBurst(res, implFRR); f != nil {
			b.ReportMetric(f.Total.Seconds(), "frr-s")
			b.ReportMetric(f.rssPerRoute(), "frr-B/route")
			b.ReportMetric(e.Total.Seconds()/f.Total.Seconds(), "evpnd/frr-time")
			b.ReportMetric(e.rssPerRoute()/f.rssPerRoute(), "evpnd/frr-rss")
		}
	}
	if s := medianBurst(res, implSource); s != nil {
		b.ReportMetric(s.Total.Seconds(), "source-s")
	}
}

// BenchmarkLatency: one MAC from leaf1 to leaf2's FDB through the route
// reflector, evpnd's fabric then FRR's.
func BenchmarkLatency(b *testing.B) {
	requireRoot(b)
	o := latencyOptions{
		common:  commonFlags{frr: withFRR(b)},
		N:       *benchN * b.N,
		Gap:     200 * time.Millisecond,
		Timeout: 5 * time.Minute,
	}
	b.ResetTimer()
	res, err := latency(context.Background(), o, os.Stderr)
	b.StopTimer()
	if len(res) > 0 {
		b.Log(latencyReport(o, res, machine()))
	}
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range res {
		rem := r.remote()
		b.ReportMetric(float64(percentile(rem, 50))/float64(time.Millisecond), r.Impl+"-p50-ms")
		b.ReportMetric(float64(percentile(rem, 90))/float64(time.Millisecond), r.Impl+"-p90-ms")
	}
	if len(res) == 2 {
		b.ReportMetric(percentile(res[0].remote(), 50).Seconds()/percentile(res[1].remote(), 50).Seconds(), "evpnd/frr-p50")
	}
}

// BenchmarkList: the whole MAC table of a loaded leaf through evpnd's API,
// evpnctl (table and JSON), the kernel's dump, and FRR's vtysh.
func BenchmarkList(b *testing.B) {
	requireRoot(b)
	o := listOptions{
		common:  commonFlags{frr: withFRR(b)},
		Routes:  *benchRoutes,
		VTEPs:   10,
		Rounds:  b.N,
		Repeat:  3,
		Timeout: 5 * time.Minute,
	}
	b.ResetTimer()
	res, err := list(context.Background(), o, os.Stderr)
	b.StopTimer()
	if len(res) > 0 {
		b.Log(listReport(o, res, machine()))
	}
	if err != nil {
		b.Fatal(err)
	}
	st := listStatsOf(res)
	for _, s := range st {
		b.ReportMetric(float64(s.Wall)/float64(time.Millisecond), s.Impl+"-"+s.Tool+"-ms")
	}
	e, f := findStats(st, implEvpnd, toolCtl), findStats(st, implFRR, toolVtysh)
	if e != nil && f != nil {
		b.ReportMetric(e.Wall.Seconds()/f.Wall.Seconds(), "evpnctl/vtysh-time")
	}
	if e, f := findStats(st, implEvpnd, toolCtlJSON), findStats(st, implFRR, toolVtyshJSON); e != nil && f != nil {
		b.ReportMetric(e.Wall.Seconds()/f.Wall.Seconds(), "evpnctl-json/vtysh-json-time")
	}
}

// TestVNIsSmoke runs the vnis benchmark at a small size (256 VNIs, one
// round): evpnd must bring every VNI's type-3 route to its reflector,
// and both iproute2 floors must create the devices.
func TestVNIsSmoke(t *testing.T) {
	requireRoot(t)
	if testing.Short() {
		t.Skip("-short: the vnis benchmark takes some seconds")
	}
	var out, errOut strings.Builder
	o := vnisOptions{VNIs: []int{256}, Rounds: 1, Timeout: 2 * time.Minute}
	if err := runVNIs(context.Background(), o, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	t.Log(out.String())
	row := ""
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "256" {
			row = line
		}
	}
	if row == "" || strings.Contains(row, " - ") {
		t.Errorf("no complete row for 256 VNIs in the report:\n%s", out.String())
	}
}

// BenchmarkVNIs: the vnis benchmark at -evpnbench.vnis VNIs, b.N rounds.
func BenchmarkVNIs(b *testing.B) {
	requireRoot(b)
	var out, errOut strings.Builder
	o := vnisOptions{VNIs: []int{*benchVNIs}, Rounds: b.N, Timeout: 5 * time.Minute}
	if err := runVNIs(context.Background(), o, &out, &errOut); err != nil {
		b.Fatalf("%v\n%s", err, errOut.String())
	}
	b.Log(out.String())
}

// BenchmarkL3: -evpnbench.l3routes MAC+IP routes into neighbours and host
// routes, then withdrawn, into evpnd and FRR, b.N rounds.
func BenchmarkL3(b *testing.B) {
	requireRoot(b)
	o := l3Options{
		common:   commonFlags{frr: withFRR(b)},
		Routes:   *benchL3,
		VTEPs:    10,
		Rounds:   b.N,
		Withdraw: true,
		Timeout:  10 * time.Minute,
	}
	b.ResetTimer()
	res, err := l3Bench(context.Background(), o, os.Stderr)
	b.StopTimer()
	if len(res) > 0 {
		b.Log(l3Report(o, res, machine()))
	}
	if err != nil {
		b.Fatal(err)
	}
	if e := medianL3(res, implEvpnd); e != nil {
		b.ReportMetric(e.Total.Seconds(), "evpnd-s")
		b.ReportMetric(e.entryRate(), "evpnd-entries/s")
		b.ReportMetric(e.rssPerRoute(), "evpnd-B/route")
		b.ReportMetric(float64(e.cpuPerRoute())/float64(time.Microsecond), "evpnd-cpu-µs/route")
		if f := medianL3(res, implFRR); f != nil {
			b.ReportMetric(f.Total.Seconds(), "frr-s")
			b.ReportMetric(f.rssPerRoute(), "frr-B/route")
			b.ReportMetric(e.Total.Seconds()/f.Total.Seconds(), "evpnd/frr-time")
			b.ReportMetric(e.rssPerRoute()/f.rssPerRoute(), "evpnd/frr-rss")
			b.ReportMetric(float64(e.cpuPerRoute())/float64(f.cpuPerRoute()), "evpnd/frr-cpu")
		}
	}
}
