//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	vnetns "github.com/vishvananda/netns"

	"github.com/evpnd/evpnd/containerlab/lab"
	"github.com/evpnd/evpnd/fib"
)

// burstOptions configure the burst benchmark.
type burstOptions struct {
	common   commonFlags
	Routes   int
	VTEPs    int
	Rounds   int
	Source   string // sourceGoBGP or sourceRaw
	Pack     int    // raw source: type-2 routes per UPDATE, 0 = as many as fit
	NoSource bool
	PerfDir  string
	// PprofDir: fetch Go CPU (PprofSeconds from the session's start) and
	// heap profiles from evpnd (run with --pprof) into this directory.
	PprofDir     string
	PprofSeconds int
	Timeout      time.Duration
	// Settle is how long to wait after the burst before the settled RSS
	// sample (0: until RSS is stable within 1% over 200 ms). Go returns
	// freed memory to the kernel only after a GC (forced every 2 minutes
	// when idle) and then gradually: 150s shows what evpnd keeps.
	Settle time.Duration
}

// Burst sources.
const (
	sourceGoBGP = "gobgp" // evpnd's speaker package as a route reflector
	sourceRaw   = "raw"   // pre-encoded UPDATEs replayed at TCP speed
)

// Implementations a burst runs into.
const (
	implSource = "source" // the minimal BGP receiver: the source's own floor
	implEvpnd  = "evpnd"
	implFRR    = "frr"
)

// burstResult is one run's figures.
type burstResult struct {
	Impl   string
	Routes int
	// From the session reaching Established (as the source sees it) to
	// the first entry, to 10/50/90% of them, and to the last (or NLRI, for
	// the source run).
	First, Total time.Duration
	Marks        [3]time.Duration
	// The leaf's processes (FRR: bgpd + zebra): before the session, when
	// the last entry lands, and once RSS has settled after it.
	Before, After, Settled usage
	Overflow               bool // the netlink subscription overflowed; Total is from dump polling
	Profile                string
}

func (r burstResult) rate() float64 { return float64(r.Routes) / r.Total.Seconds() }

// rssPerRoute is the growth of RSS over the burst per route, in bytes.
func (r burstResult) rssPerRoute() float64 {
	return float64(r.After.RSS-r.Before.RSS) / float64(r.Routes)
}

func (r burstResult) cpuPerRoute() time.Duration {
	return (r.After.CPU - r.Before.CPU) / time.Duration(r.Routes)
}

func (o burstOptions) validate() error {
	if err := checkLoad(o.Routes, o.VTEPs, o.Rounds); err != nil {
		return err
	}
	if o.Source != sourceGoBGP && o.Source != sourceRaw {
		return fmt.Errorf("--source %q: want %s or %s", o.Source, sourceGoBGP, sourceRaw)
	}
	if o.Pack < 0 {
		return fmt.Errorf("--pack %d: want 0 (as many as fit) or more", o.Pack)
	}
	return nil
}

// burstImpls is the order of the runs: per round the source floor, evpnd,
// then FRR, alternating the leafs' order every other round so that a
// machine slowing down over the run does not favour one of them.
func burstImpls(o burstOptions) []string {
	var out []string
	for r := range o.Rounds {
		if !o.NoSource {
			out = append(out, implSource)
		}
		out = append(out, leafOrder(r, o.common.frr)...)
	}
	return out
}

func runBurst(ctx context.Context, o burstOptions, stdout, stderr io.Writer) (err error) {
	if err := o.validate(); err != nil {
		return err
	}
	res, err := burst(ctx, o, stderr)
	if len(res) > 0 {
		fmt.Fprint(stdout, burstReport(o, res, machine()))
	}
	return err
}

// burst runs every implementation and returns the results so far.
func burst(ctx context.Context, o burstOptions, stderr io.Writer) (res []burstResult, err error) {
	e, err := newEnv(ctx, o.common, stderr)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, e.close(err)) }()
	for _, dir := range []string{o.PerfDir, o.PprofDir} {
		if dir == "" {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	e.leafPprof = o.PprofDir != ""
	var raw []byte
	if o.Source == sourceRaw {
		var n int
		if raw, n, err = rawUpdates(burstFeed(o), rrAddr, o.Pack); err != nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "evpnbench: raw source: %d routes in %d UPDATEs (%d bytes)\n", o.Routes+o.VTEPs, n, len(raw))
	}
	for i, impl := range burstImpls(o) {
		fmt.Fprintf(stderr, "evpnbench: burst %d: %s, %d routes from %s ...\n", i+1, impl, o.Routes, o.Source)
		r, err := burstOnce(ctx, e, o, impl, raw)
		if err != nil {
			return res, fmt.Errorf("burst into %s: %w", impl, err)
		}
		fmt.Fprintf(stderr, "evpnbench: burst %d: %s: %v (%.0f routes/s)\n", i+1, impl, r.Total.Round(time.Millisecond), r.rate())
		res = append(res, r)
	}
	return res, nil
}

func burstFeed(o burstOptions) feederConfig {
	return feederConfig{ASN: benchASN, RouterID: rrAddr, Peer: leafLoopback(1), Routes: o.Routes,
		VTEPs: o.VTEPs, FirstVTEP: firstRemote, VNI: burstVNI}
}

// burstSource is what opens the session and sends the burst.
type burstSource interface {
	// start opens the session and returns when it is established.
	start(ctx context.Context) (time.Time, error)
	// failed reports an error after start (nil channel: never).
	failed() <-chan error
	close()
}

func (s *rawSource) failed() <-chan error { return s.errc }

// burstOnce deploys a fresh fabric, runs one burst into impl and tears the
// fabric down.
func burstOnce(ctx context.Context, e *env, o burstOptions, impl string, raw []byte) (r burstResult, err error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout+o.Settle)
	defer cancel()
	r = burstResult{Impl: impl, Routes: o.Routes}
	leafID := leafLoopback(1)
	var extra []string
	if impl == implFRR {
		extra = frrDevices(leafID)
	}
	l, err := e.deploy(ctx, "b"+impl[:1], burstTopology("burst-"+impl, extra))
	if err != nil {
		return r, err
	}
	defer func() {
		if terr := e.teardown(l, "leaf"); terr != nil && err == nil {
			err = terr
		}
	}()
	leafNS := l.Node("leaf")

	// 1. The source, preloaded.
	var src burstSource
	switch o.Source {
	case sourceGoBGP:
		f, err := e.startFeeder(ctx, l, burstFeed(o))
		if err != nil {
			return r, err
		}
		src = f
	case sourceRaw:
		src = &rawSource{ns: l.Node("rr"), local: rrAddr, peer: leafID, asn: benchASN, msgs: raw}
	}
	defer src.close()

	// 2. The leaf under test, ready and idle.
	type outcome struct {
		first, last time.Time
		marks       [3]time.Time
		overflow    bool
	}
	var pids []int
	var waitDone func(context.Context) (outcome, error)
	switch impl {
	case implSource:
		sink, err := listenSink(leafNS, leafID, o.Routes)
		if err != nil {
			return r, err
		}
		sctx, scancel := context.WithCancel(ctx)
		defer scancel()
		serr := make(chan error, 1)
		go func() { serr <- sink.Run(sctx, benchASN, leafID) }()
		waitDone = func(ctx context.Context) (outcome, error) {
			select {
			case <-sink.full:
			case err := <-serr:
				return outcome{}, fmt.Errorf("receiver stopped: %v", err)
			case err := <-src.failed():
				return outcome{}, err
			case <-ctx.Done():
				got, _, _, _ := sink.result()
				return outcome{}, fmt.Errorf("%d of %d routes received: %w", got, o.Routes, ctx.Err())
			}
			_, first, marks, last := sink.result()
			return outcome{first: first, marks: marks, last: last}, nil
		}
	case implEvpnd, implFRR:
		lf, err := e.startLeaf(ctx, l, impl, false)
		if err != nil {
			return r, err
		}
		pids = lf.pids
	}
	if impl != implSource {
		w, counter, err := watchVXLAN(l, "leaf", o.Routes)
		if err != nil {
			return r, err
		}
		wctx, wcancel := context.WithCancel(ctx)
		werr := make(chan error, 1)
		go func() { werr <- w.Run(wctx, counter.add) }()
		defer func() { wcancel(); <-werr; w.Close() }()
		waitDone = func(ctx context.Context) (outcome, error) {
			select {
			case <-counter.full:
				first, marks, last := counter.times()
				return outcome{first: first, marks: marks, last: last}, nil
			case err := <-werr:
				if !errors.Is(err, errOverflow) {
					return outcome{}, err
				}
				first, marks, _ := counter.times()
				last, err := pollDump(ctx, l, "leaf", o.Routes)
				return outcome{first: first, marks: marks, last: last, overflow: true}, err
			case err := <-src.failed():
				return outcome{}, err
			case <-ctx.Done():
				s, m, _ := counter.counts()
				return outcome{}, fmt.Errorf("kernel holds %d VXLAN and %d bridge entries of %d: %w", s, m, o.Routes, ctx.Err())
			}
		}
		if r.Before, err = settledUsage(ctx, pids); err != nil {
			return r, err
		}
	}

	// 3. Go.
	var prof *perfRecord
	if o.PerfDir != "" && len(pids) > 0 {
		if prof, err = startPerf(ctx, e, filepath.Join(o.PerfDir, "burst-"+o.Source+"-"+impl), pids); err != nil {
			return r, err
		}
		defer prof.stop()
	}
	var gprof *pprofRecord
	if o.PprofDir != "" && impl == implEvpnd {
		gprof = startPprof(ctx, leafNS, filepath.Join(o.PprofDir, "burst-"+o.Source+"-"+impl), o.PprofSeconds)
	}
	established, err := src.start(ctx)
	if err != nil {
		return r, err
	}
	out, err := waitDone(ctx)
	if err != nil {
		return r, err
	}
	if len(pids) > 0 {
		if r.After, err = sampleProcs(pids...); err != nil {
			return r, err
		}
	}
	if prof != nil {
		if r.Profile, err = prof.finish(ctx); err != nil {
			return r, err
		}
	}
	if gprof != nil {
		txt, err := gprof.finish(ctx, e.evpnd)
		if err != nil {
			return r, err
		}
		r.Profile += txt
	}
	r.First, r.Total, r.Overflow = out.first.Sub(established), out.last.Sub(established), out.overflow
	for i, m := range out.marks {
		r.Marks[i] = m.Sub(established)
	}
	if impl != implSource {
		if o.Settle > 0 {
			select {
			case <-time.After(o.Settle):
			case <-ctx.Done():
				return r, ctx.Err()
			}
			r.Settled, err = sampleProcs(pids...)
		} else {
			r.Settled, err = settledUsage(ctx, pids)
		}
		if err != nil {
			return r, err
		}
		if n, err := countInstalled(ctx, l, "leaf"); err != nil {
			return r, err
		} else if n < o.Routes {
			return r, fmt.Errorf("the notifications counted %d routes but a dump finds %d", o.Routes, n)
		}
	}
	return r, nil
}

// burstLeaf is the daemon (evpnd) or daemons (FRR's bgpd and zebra) under
// test in the leaf node of a burst fabric.
type burstLeaf struct {
	impl    string
	pids    []int    // evpnd's, or bgpd's and zebra's
	socket  string   // evpnd: its API socket
	metrics string   // evpnd: its /metrics host:port in the leaf's namespace, if on
	frr     *frrNode // FRR: its instance
}

// leafMetrics is where an evpnd leaf serves /metrics when asked to, in
// its own namespace.
const leafMetrics = "127.0.0.1:9273"

// startLeaf starts impl (evpnd or FRR) in the leaf node of a burst fabric
// and returns once it is ready for the session: evpnd has created
// vxlan100, or FRR's bgpd knows VNI 100 from zebra. With metrics, evpnd
// also serves /metrics on leafMetrics.
func (e *env) startLeaf(ctx context.Context, l *lab.Lab, impl string, metrics bool) (*burstLeaf, error) {
	leafID := leafLoopback(1)
	lf := &burstLeaf{impl: impl}
	switch impl {
	case implEvpnd:
		cfg := filepath.Join(l.WorkDir(), "leaf.yaml")
		conf := evpndLeafConfig(leafID, nil)
		if metrics {
			lf.metrics = leafMetrics
			conf += "metrics:\n  listen: " + leafMetrics + "\n"
		}
		if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		lf.socket = apiSocketFor(l.LogPath("leaf"))
		args := []string{e.evpnd, "run", "--config", cfg, "--cease-on-exit", "--api-socket", lf.socket}
		if e.leafPprof {
			args = append(args, "--pprof", leafPprof)
		}
		d, err := e.start(l, "leaf", l.LogPath("leaf"), args, e.evEnv)
		if err != nil {
			return nil, err
		}
		lf.pids = []int{d.pid()}
		if err := waitLink(ctx, l, "leaf", "vxlan100", d); err != nil {
			return nil, err
		}
	case implFRR:
		f, err := e.startFRR(ctx, l, "leaf", frrBGPConf("leaf", benchASN, leafID, []netip.Addr{rrAddr}, false))
		if err != nil {
			return nil, err
		}
		lf.frr, lf.pids = f, f.pids()
		if err := waitFor(ctx, 30*time.Second, 50*time.Millisecond, "bgpd to know VNI 100 from zebra", func() (bool, error) {
			out, err := f.vtysh(ctx, l, "show bgp l2vpn evpn vni 100")
			return err == nil && strings.Contains(out, "VNI: 100"), nil
		}); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("no leaf implementation %q", impl)
	}
	return lf, nil
}

// waitLink waits until node has an up link named dev (evpnd creates its
// devices at start), or the daemon exits.
func waitLink(ctx context.Context, l *lab.Lab, node, dev string, d *child) error {
	h, err := l.Node(node).Handle()
	if err != nil {
		return err
	}
	defer h.Close()
	return waitFor(ctx, 30*time.Second, 20*time.Millisecond, node+" to create "+dev, func() (bool, error) {
		if d.exited() {
			return false, fmt.Errorf("%s exited: %v (see %s)", d.name, d.err, l.LogPath(node))
		}
		lk, err := h.LinkByName(dev)
		return err == nil && lk.Attrs().Flags&net.FlagUp != 0, nil
	})
}

// watchVXLAN subscribes to FDB notifications in node and counts the
// entries installed on its vxlan100.
func watchVXLAN(l *lab.Lab, node string, want int) (*fdbWatch, *macCounter, error) {
	ns := l.Node(node)
	h, err := ns.Handle()
	if err != nil {
		return nil, nil, err
	}
	defer h.Close()
	lk, err := h.LinkByName("vxlan100")
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", node, err)
	}
	// Room for every notification of the burst (two per MAC, about 1 KB
	// each as the kernel accounts them) should this process fall behind.
	w, err := watchFDB(ns, 256<<20)
	if err != nil {
		return nil, nil, err
	}
	return w, newMACCounter(int32(lk.Attrs().Index), want), nil
}

// countInstalled dumps node's vxlan100 FDB and returns the number of MACs
// with both a VXLAN entry (with a remote) and a bridge entry.
func countInstalled(ctx context.Context, l *lab.Lab, node string) (int, error) {
	h, err := vnetns.GetFromName(l.Namespace(node))
	if err != nil {
		return 0, err
	}
	defer h.Close()
	k, err := fib.NewNetlinkKernel(h)
	if err != nil {
		return 0, err
	}
	defer k.Close()
	es, err := k.Dump(ctx, []fib.VNIDevices{{VNI: burstVNI, VXLAN: "vxlan100", Bridge: "br100"}})
	if err != nil {
		return 0, err
	}
	return installedMACs(es), nil
}

// installedMACs counts the unicast MACs with both entries in a dump.
func installedMACs(es []fib.KernelEntry) int {
	type both struct{ self, master bool }
	m := map[[6]byte]*both{}
	for _, e := range es {
		if !e.MAC.IsUnicast() || e.Access {
			continue
		}
		b := m[e.MAC]
		if b == nil {
			b = &both{}
			m[e.MAC] = b
		}
		if e.Self && e.VTEP.IsValid() {
			b.self = true
		} else if !e.Self {
			b.master = true
		}
	}
	n := 0
	for _, b := range m {
		if b.self && b.master {
			n++
		}
	}
	return n
}

// pollDump counts by dumps every 100 ms until want MACs are installed:
// the fallback when the subscription overflowed (less precise).
func pollDump(ctx context.Context, l *lab.Lab, node string, want int) (time.Time, error) {
	var at time.Time
	err := waitFor(ctx, time.Hour, 100*time.Millisecond, "the kernel to hold every route", func() (bool, error) {
		n, err := countInstalled(ctx, l, node)
		at = time.Now()
		return n >= want, err
	})
	return at, err
}

// settledUsage samples pids until RSS changes by less than 1% over 200 ms
// (a daemon that just started is still allocating), at most 5 s.
func settledUsage(ctx context.Context, pids []int) (usage, error) {
	prev, err := sampleProcs(pids...)
	if err != nil {
		return usage{}, err
	}
	for range 25 {
		select {
		case <-ctx.Done():
			return usage{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		cur, err := sampleProcs(pids...)
		if err != nil {
			return usage{}, err
		}
		d := cur.RSS - prev.RSS
		if d < 0 {
			d = -d
		}
		if d*100 < cur.RSS {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}

// checkLoad checks the flags that size a leaf's load, shared by burst and
// list.
func checkLoad(routes, vteps, rounds int) error {
	if routes < 1 || routes > 1<<24 {
		return fmt.Errorf("--routes %d: want 1-%d", routes, 1<<24)
	}
	if vteps < 1 || vteps > 200 {
		return fmt.Errorf("--vteps %d: want 1-200 (10.0.0.10 and up, below the reflector's 10.0.0.254)", vteps)
	}
	if rounds < 1 {
		return fmt.Errorf("--rounds %d: want at least 1", rounds)
	}
	return nil
}

// leafOrder is the order of the leaf implementations in round r: evpnd,
// then FRR (if measured), swapped every other round so that a machine
// slowing down over the run does not favour one of them.
func leafOrder(r int, frr bool) []string {
	if !frr {
		return []string{implEvpnd}
	}
	if r%2 == 1 {
		return []string{implFRR, implEvpnd}
	}
	return []string{implEvpnd, implFRR}
}
