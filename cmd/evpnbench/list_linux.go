//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"time"

	"github.com/evpnd/evpnd/containerlab/lab"
)

// The list benchmark: what it costs to read a leaf's whole MAC table,
// through evpnd's API and evpnctl, against the kernel's own dump of the
// same FDB and against FRR's vtysh on an FRR leaf holding the same MACs.

// listOptions configure the list benchmark.
type listOptions struct {
	common  commonFlags
	Routes  int
	VTEPs   int
	Rounds  int
	Repeat  int // listings of each kind per loaded leaf
	Timeout time.Duration
}

// Listings. The floor ones run on every leaf (the same FDB in the kernel);
// the others on their own implementation's leaf.
const (
	toolBridge    = "bridge"       // bridge fdb show dev vxlan100
	toolNetlink   = "netlink"      // an in-process AF_BRIDGE neighbour dump of vxlan100
	toolAPI       = "api"          // ListMACs by an in-process Go gRPC client
	toolCtl       = "evpnctl"      // evpnctl show evpn mac
	toolCtlJSON   = "evpnctl-json" // evpnctl -o json show evpn mac
	toolVtysh     = "vtysh"        // vtysh -c "show evpn mac vni all"
	toolVtyshJSON = "vtysh-json"   // vtysh -c "show evpn mac vni all json"
)

// listTools are the listings run on a leaf of impl, in order.
func listTools(impl string) []string {
	tools := []string{toolBridge, toolNetlink}
	if impl == implFRR {
		return append(tools, toolVtysh, toolVtyshJSON)
	}
	return append(tools, toolAPI, toolCtl, toolCtlJSON)
}

// listSample is one listing.
type listSample struct {
	Impl string // the leaf: evpnd or frr
	Tool string
	Wall time.Duration
	// Rows: the API's rows, the netlink dump's unicast entries, or a
	// tool's output lines.
	Rows int
	// Bytes: what the API client read from the socket (HTTP/2 framing
	// included), or a tool's output.
	Bytes          int64
	Pages, MaxPage int   // API only: pages and the largest page's rows
	ClientRSS      int64 // the command's peak RSS (GNU time's %M), bytes; 0 in-process or unknown
	// Daemon is evpnd's cost (zebra's for vtysh) during the listing; nil
	// for the floor, which no daemon serves.
	Daemon *daemonCost
}

func (o listOptions) validate() error {
	if err := checkLoad(o.Routes, o.VTEPs, o.Rounds); err != nil {
		return err
	}
	if o.Repeat < 1 {
		return fmt.Errorf("--repeat %d: want at least 1", o.Repeat)
	}
	return nil
}

// listImpls is the order of the loaded leafs: evpnd, then FRR, swapped
// every other round as in burst.
func listImpls(o listOptions) []string {
	var out []string
	for r := range o.Rounds {
		out = append(out, leafOrder(r, o.common.frr)...)
	}
	return out
}

func runList(ctx context.Context, o listOptions, stdout, stderr io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	res, err := list(ctx, o, stderr)
	if len(res) > 0 {
		fmt.Fprint(stdout, listReport(o, res, machine()))
	}
	return err
}

// list loads a leaf of each implementation per round and lists its MAC
// table every way; it returns the samples so far.
func list(ctx context.Context, o listOptions, stderr io.Writer) (res []listSample, err error) {
	o.common.needCtl = true
	e, err := newEnv(ctx, o.common, stderr)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, e.close(err)) }()
	if _, err := exec.LookPath("bridge"); err != nil {
		return nil, errors.New("needs iproute2's bridge on PATH for the kernel's floor")
	}
	raw, _, err := rawUpdates(burstFeed(burstOptions{Routes: o.Routes, VTEPs: o.VTEPs}), rrAddr, 0)
	if err != nil {
		return nil, err
	}
	gnuTime := findGNUTime()
	if gnuTime == "" {
		fmt.Fprintln(stderr, "evpnbench: list: no GNU time(1): the commands' peak RSS is not measured (apt-get install time)")
	}
	for i, impl := range listImpls(o) {
		fmt.Fprintf(stderr, "evpnbench: list %d: loading %d MACs into %s ...\n", i+1, o.Routes, impl)
		rs, err := listOnce(ctx, e, o, impl, raw, gnuTime, stderr)
		res = append(res, rs...)
		if err != nil {
			return res, fmt.Errorf("list on %s: %w", impl, err)
		}
	}
	return res, nil
}

// listOnce deploys a fresh fabric, loads the leaf of impl with the
// routes, lists its table o.Repeat times each way, and tears it down.
func listOnce(ctx context.Context, e *env, o listOptions, impl string, raw []byte, gnuTime string, stderr io.Writer) (res []listSample, err error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var extra []string
	if impl == implFRR {
		extra = frrDevices(leafLoopback(1))
	}
	l, err := e.deploy(ctx, "l"+impl[:1], burstTopology("list-"+impl, extra))
	if err != nil {
		return nil, err
	}
	defer func() {
		if terr := e.teardown(l, "leaf"); terr != nil && err == nil {
			err = terr
		}
	}()
	src := &rawSource{ns: l.Node("rr"), local: rrAddr, peer: leafLoopback(1), asn: benchASN, msgs: raw}
	defer src.close()
	lf, err := e.startLeaf(ctx, l, impl, true)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := loadLeaf(ctx, l, src, o.Routes); err != nil {
		return nil, err
	}
	// The daemon that answers: evpnd, or zebra for "show evpn".
	pid := lf.pids[0]
	if lf.frr != nil {
		pid = lf.frr.zebraPID()
	}
	if _, err := settledUsage(ctx, []int{pid}); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "evpnbench: list: %s holds %d MACs after %v; listing ...\n", impl, o.Routes, time.Since(start).Round(time.Millisecond))
	ls := &lister{e: e, l: l, lf: lf, pid: pid, gnuTime: gnuTime}
	if lf.metrics != "" {
		ls.metrics = newMetricsClient(l.Node("leaf"))
		if err := ls.calibrate(ctx); err != nil {
			return nil, err
		}
	}
	for range o.Repeat {
		for _, tool := range listTools(impl) {
			s, err := ls.run(ctx, tool)
			if err == nil {
				err = s.check(o.Routes)
			}
			if err != nil {
				return res, fmt.Errorf("%s: %w", tool, err)
			}
			res = append(res, s)
		}
	}
	return res, nil
}

// loadLeaf opens the source's session and waits until the leaf's kernel
// holds want MACs on vxlan100 (both entries), as a netlink subscription
// sees them: not by dumps, which at 100k entries cost seconds each (see
// BENCHMARKS.md). The load is not timed; the subscription is closed before
// the listings.
func loadLeaf(ctx context.Context, l *lab.Lab, src *rawSource, want int) error {
	w, counter, err := watchVXLAN(l, "leaf", want)
	if err != nil {
		return err
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	werr := make(chan error, 1)
	go func() { werr <- w.Run(wctx, counter.add) }()
	stop := func() error {
		wcancel()
		err := <-werr
		w.Close()
		return err
	}
	if _, err := src.start(ctx); err != nil {
		return errors.Join(err, stop())
	}
	select {
	case <-counter.full:
		_ = stop() // canceled
		return nil
	case err := <-werr:
		w.Close()
		if !errors.Is(err, errOverflow) {
			return err
		}
		_, err = pollDump(ctx, l, "leaf", want)
		return err
	case err := <-src.failed():
		return errors.Join(err, stop())
	case <-ctx.Done():
		s, m, _ := counter.counts()
		_ = stop()
		return fmt.Errorf("the leaf's kernel holds %d VXLAN and %d bridge entries of %d: %w", s, m, want, ctx.Err())
	}
}

// check fails a listing whose output does not hold the whole table.
func (s listSample) check(routes int) error {
	want, what := routes, "lines of output (at least one per MAC)"
	switch s.Tool {
	case toolAPI:
		if s.Rows != routes {
			return fmt.Errorf("ListMACs returned %d rows in %d pages, but the leaf's kernel holds %d MACs", s.Rows, s.Pages, routes)
		}
		return nil
	case toolNetlink:
		want, what = 2*routes, "unicast entries (a VXLAN and a bridge entry per MAC)"
	case toolBridge:
		want, what = 2*routes, "lines of output (a VXLAN and a bridge entry per MAC)"
	case toolCtl:
		want, what = routes+1, "lines of output (a header and a row per MAC)"
	}
	if s.Rows < want {
		return fmt.Errorf("%d %s for %d MACs: want at least %d (%d bytes of output)", s.Rows, what, routes, want, s.Bytes)
	}
	return nil
}
