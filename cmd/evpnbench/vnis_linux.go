//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/evpnd/evpnd/containerlab/lab"
)

// The vnis benchmark: a leaf configured with N L2VNIs, from evpnd's start
// until its route reflector holds every VNI's type-3 route, beside the
// kernel's floor for creating the same devices with iproute2 -batch.

type vnisOptions struct {
	common  commonFlags
	VNIs    []int
	Rounds  int
	Timeout time.Duration
	NoFloor bool
}

// The ways vnis measures.
const (
	wayEvpnd       = "evpnd"
	wayAddrGenNone = "iproute2 addrgenmode none"
	wayIPv6Off     = "iproute2 IPv6 off"
)

type vnisResult struct {
	VNIs  int
	Way   string
	Total time.Duration
	Use   usage // evpnd's, when the last type-3 arrived
}

const firstBenchVNI = 10000

func runVNIs(ctx context.Context, o vnisOptions, stdout, stderr io.Writer) (err error) {
	if len(o.VNIs) == 0 || o.Rounds < 1 {
		return errors.New("--vnis and --rounds must be positive")
	}
	for _, n := range o.VNIs {
		if n < 1 || firstBenchVNI+n > 1<<24 {
			return fmt.Errorf("--vnis %d out of range", n)
		}
	}
	e, err := newEnv(ctx, o.common, stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, e.close(err)) }()
	var res []vnisResult
	defer func() {
		if len(res) > 0 {
			fmt.Fprint(stdout, vnisReport(res, machine()))
		}
	}()
	for _, n := range o.VNIs {
		for r := range o.Rounds {
			ways := []string{wayEvpnd, wayAddrGenNone, wayIPv6Off}
			if r%2 == 1 { // alternate, so that a drift of the machine is not one way's
				ways = []string{wayIPv6Off, wayAddrGenNone, wayEvpnd}
			}
			if o.NoFloor {
				ways = []string{wayEvpnd}
			}
			for _, way := range ways {
				fmt.Fprintf(stderr, "evpnbench: vnis %d, round %d: %s ...\n", n, r+1, way)
				var x vnisResult
				var l *lab.Lab
				if way == wayEvpnd {
					x, l, err = vnisEvpnd(ctx, e, o, n)
				} else {
					x, l, err = vnisFloor(ctx, e, o, n, way)
				}
				if err == nil {
					fmt.Fprintf(stderr, "evpnbench: vnis %d, round %d: %s: %v; deleting the devices ...\n", n, r+1, way, x.Total.Round(time.Millisecond))
					res = append(res, x)
				}
				if l != nil {
					err = errors.Join(err, e.teardownVNIs(l, n))
				}
				if err != nil {
					return fmt.Errorf("%d VNIs, %s: %w", n, way, err)
				}
			}
		}
	}
	return nil
}

// vnisConfig is an evpnd leaf config with n L2VNIs from firstBenchVNI,
// devices named by default (vxlanV, brV), no access interfaces.
func vnisConfig(id netip.Addr, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "router-id: %[1]s\nasn: %[2]d\nvtep-ip: %[1]s\nrole: leaf\nlog-level: warn\nbgp:\n  listen-addresses: [%[1]s]\nneighbors:\n  - address: %[3]s\n    asn: %[2]d\nl2vnis:\n", id, benchASN, rrAddr)
	for i := range n {
		fmt.Fprintf(&b, "  - vni: %d\n", firstBenchVNI+i)
	}
	return b.String()
}

// vnisEvpnd starts evpnd with n VNIs in a fresh leaf whose peer, in the
// rr namespace, is a BGP receiver counting type-3 routes, and times from
// the start until it has n.
// The lab it returns, also with an error, is the caller's to tear down
// (teardownVNIs).
func vnisEvpnd(ctx context.Context, e *env, o vnisOptions, n int) (r vnisResult, l *lab.Lab, err error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	r = vnisResult{VNIs: n, Way: wayEvpnd}
	l, err = e.deploy(ctx, "ve", burstTopology("vnis-evpnd", nil))
	if err != nil {
		return r, nil, err
	}
	leafID := leafLoopback(1)
	sink, err := listenSink(l.Node("rr"), rrAddr, n)
	if err != nil {
		return r, l, err
	}
	sink.routeType = 3
	sinkErr := make(chan error, 1)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { sinkErr <- sink.Run(sctx, benchASN, rrAddr) }()
	cfg := filepath.Join(l.WorkDir(), "leaf.yaml")
	if err := os.WriteFile(cfg, []byte(vnisConfig(leafID, n)), 0o644); err != nil {
		return r, l, err
	}
	start := time.Now()
	d, err := e.start(l, "leaf", l.LogPath("leaf"), []string{e.evpnd, "run", "--config", cfg, "--cease-on-exit", "--api-socket", apiSocketFor(l.LogPath("leaf"))}, e.evEnv)
	if err != nil {
		return r, l, err
	}
	select {
	case <-sink.full:
	case err := <-sinkErr:
		return r, l, fmt.Errorf("route reflector: %v", err)
	case <-d.done:
		return r, l, fmt.Errorf("evpnd exited: %v (see %s)", d.err, l.LogPath("leaf"))
	case <-ctx.Done():
		got, _, _, _ := sink.result()
		return r, l, fmt.Errorf("%d of %d type-3 routes after %v: %w (see %s)", got, n, time.Since(start).Round(time.Millisecond), ctx.Err(), l.LogPath("leaf"))
	}
	_, _, _, last := sink.result()
	r.Total = last.Sub(start)
	if r.Use, err = sampleProcs(d.pid()); err != nil {
		return r, l, err
	}
	return r, l, nil
}

// vnisFloor creates, in a fresh namespace, the devices evpnd creates for
// n VNIs with iproute2 -batch (creation, port flags through bridge(8),
// then up) and times it. With wayIPv6Off, IPv6 is off on the devices from
// their creation: net.ipv6.conf.default.disable_ipv6=1 in that namespace
// for the time of the creation (fine where nothing else creates
// interfaces); with wayAddrGenNone, each device's IPv6 address generation
// is turned off before it comes up.
func vnisFloor(ctx context.Context, e *env, o vnisOptions, n int, way string) (r vnisResult, l *lab.Lab, err error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	r = vnisResult{VNIs: n, Way: way}
	l, err = e.deploy(ctx, "vf", topology("vnis-floor", []topoNode{{name: "leaf"}}, nil))
	if err != nil {
		return r, nil, err
	}
	ipv6Off := way == wayIPv6Off
	var create, flags, up strings.Builder
	local := leafLoopback(1)
	for i := range n {
		v := firstBenchVNI + i
		fmt.Fprintf(&create, "link add br%d type bridge\n", v)
		if !ipv6Off {
			fmt.Fprintf(&create, "link set br%d addrgenmode none\n", v)
		}
		fmt.Fprintf(&create, "link add vxlan%d type vxlan id %d local %s dstport 4789 nolearning\n", v, v, local)
		if !ipv6Off {
			fmt.Fprintf(&create, "link set vxlan%d addrgenmode none\n", v)
		}
		fmt.Fprintf(&create, "link set vxlan%d master br%d\n", v, v)
		fmt.Fprintf(&flags, "link set dev vxlan%d learning off neigh_suppress on\n", v)
		fmt.Fprintf(&up, "link set vxlan%d up\nlink set br%d up\n", v, v)
	}
	var steps [][]string
	if ipv6Off {
		steps = append(steps, []string{"sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"})
	}
	for i, f := range []struct {
		tool string
		text string
	}{{"ip", create.String()}, {"bridge", flags.String()}, {"ip", up.String()}} {
		file := filepath.Join(l.WorkDir(), fmt.Sprintf("batch%d", i))
		if err := os.WriteFile(file, []byte(f.text), 0o644); err != nil {
			return r, l, err
		}
		steps = append(steps, []string{f.tool, "-batch", file})
		if ipv6Off && i == 0 {
			steps = append(steps, []string{"sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=0"})
		}
	}
	start := time.Now()
	for _, argv := range steps {
		if out, err := l.Exec(ctx, "leaf", argv...); err != nil {
			return r, l, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out)
		}
	}
	r.Total = time.Since(start)
	return r, l, nil
}

// teardownVNIs deletes the n VNIs' devices of the leaf, one request
// each, and tears the lab down. Deleting a bridge waits for an RCU
// barrier (br_multicast_dev_del) with the RTNL held: one by one, the
// kernel releases the RTNL between them, where a group deletion, or the
// namespace's cleanup, would hold it for minutes for thousands of bridges
// and stall every other program's link changes on the machine; and they
// are gone before the next measurement starts.
func (e *env) teardownVNIs(l *lab.Lab, n int) error {
	e.stopKids()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "link del vxlan%d\nlink del br%d\n", firstBenchVNI+i, firstBenchVNI+i)
	}
	file := filepath.Join(l.WorkDir(), "teardown")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err == nil {
		_, _ = l.Exec(context.Background(), "leaf", "ip", "-force", "-batch", file)
	}
	return e.teardown(l)
}

// vnisReport prints, per VNI count, the median time of each way, evpnd's
// RSS and CPU, and evpnd's time over each floor's.
func vnisReport(res []vnisResult, host string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nvnis: from evpnd's start until its route reflector holds every type-3 route,\nbeside iproute2 -batch creating the same devices (bridge + VXLAN per VNI, up)\n%s\n\n", host)
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "VNIs\tevpnd\tRSS\tCPU\taddrgenmode none\tIPv6 off\tevpnd/agm-none\tevpnd/IPv6-off\t")
	counts := map[int]bool{}
	for _, x := range res {
		counts[x.VNIs] = true
	}
	var ns []int
	for n := range counts {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	for _, n := range ns {
		ev, agm, off := medianVNIs(res, n, wayEvpnd), medianVNIs(res, n, wayAddrGenNone), medianVNIs(res, n, wayIPv6Off)
		sec := func(x *vnisResult) string {
			if x == nil {
				return "-"
			}
			return fmt.Sprintf("%.2f s", x.Total.Seconds())
		}
		ratio := func(a, b *vnisResult) string {
			if a == nil || b == nil || b.Total == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", a.Total.Seconds()/b.Total.Seconds())
		}
		rss, cpu := "-", "-"
		if ev != nil {
			rss, cpu = mib(ev.Use.RSS), fmt.Sprintf("%.2f s", ev.Use.CPU.Seconds())
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", n, sec(ev), rss, cpu, sec(agm), sec(off), ratio(ev, agm), ratio(ev, off))
	}
	w.Flush()
	return b.String()
}

// medianVNIs is the run of way with n VNIs of median time.
func medianVNIs(res []vnisResult, n int, way string) *vnisResult {
	var xs []vnisResult
	for _, x := range res {
		if x.VNIs == n && x.Way == way {
			xs = append(xs, x)
		}
	}
	if len(xs) == 0 {
		return nil
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].Total < xs[j].Total })
	return &xs[len(xs)/2]
}
