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
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/evpnd/evpnd/containerlab/lab"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// The l3 benchmark: remote MAC+IP routes into ARP suppression neighbours
// and symmetric-IRB host routes, on evpnd's default backend and FRR's
// vrf default (both the main table).
const (
	l3VNI    = uint32(4001)
	l3SVI    = "br4001"
	l3VXLAN  = "vxlan4001"
	l2SVI    = "br100" // the L2VNI's bridge is its SVI
	mainTbl  = unix.RT_TABLE_MAIN
	l3GWMAC  = "00:00:5e:00:01:01"
	frrL3MAC = "02:f0:0a:00:00:01" // the FRR leaf's router MAC: its br4001's MAC
)

var (
	// l3Hosts holds the remote hosts' addresses; the L2VNI's anycast
	// gateway is its first address.
	l3Hosts   = netip.MustParsePrefix("10.64.0.0/10")
	l3Gateway = netip.PrefixFrom(l3Hosts.Addr().Next(), l3Hosts.Bits())
)

// l3Options configure the l3 benchmark.
type l3Options struct {
	common   commonFlags
	Routes   int
	VTEPs    int
	Rounds   int
	Pack     int
	Withdraw bool
	Timeout  time.Duration
	// PprofDir: fetch evpnd's Go CPU profile (PprofSeconds from the
	// session's start) and heap profile (at the last entry) into it.
	PprofDir     string
	PprofSeconds int
}

func (o l3Options) validate() error {
	if err := checkLoad(o.Routes, o.VTEPs, o.Rounds); err != nil {
		return err
	}
	if max := 1 << (32 - l3Hosts.Bits()); o.Routes > max-16 {
		return fmt.Errorf("--routes %d: at most %d (the hosts are in %s)", o.Routes, max-16, l3Hosts)
	}
	if o.Pack < 0 {
		return fmt.Errorf("--pack %d: want 0 (as many as fit) or more", o.Pack)
	}
	return nil
}

// l3Result is one run's figures.
type l3Result struct {
	Impl   string
	Round  int // from 1
	Routes int
	// From the session Established to the first entry, the 10/50/90%
	// marks and the moment every neighbour and host route was in.
	First, Total time.Duration
	Marks        [3]time.Duration
	// The withdrawal: from the withdraws sent until every entry is gone
	// (0: not measured).
	WFirst, WTotal time.Duration
	// The leaf's daemons (FRR: bgpd + zebra) before the session, when the
	// last entry landed, and when the last one went.
	Before, After, Withdrawn usage
	Overflow                 bool
	Profile                  string // evpnd's Go profiles' top (--pprof)
}

func (r l3Result) rate() float64 { return float64(r.Routes) / r.Total.Seconds() }

// entryRate counts both entries of a route: its neighbour and host route.
func (r l3Result) entryRate() float64 { return 2 * r.rate() }

func (r l3Result) rssPerRoute() float64 {
	return float64(r.After.RSS-r.Before.RSS) / float64(r.Routes)
}

func (r l3Result) cpuPerRoute() time.Duration {
	return (r.After.CPU - r.Before.CPU) / time.Duration(r.Routes)
}

func (r l3Result) wCPUPerRoute() time.Duration {
	return (r.Withdrawn.CPU - r.After.CPU) / time.Duration(r.Routes)
}

// l3Routes are the routes the source announces: one type-3 per VTEP for
// the L2VNI, then routes MAC+IP type-2 routes round-robin over the VTEPs
// (label1 the L2VNI, label2 the L3VNI, the RTs of both, the VTEP's
// router MAC), each a distinct MAC and an address of l3Hosts.
func l3Routes(c feederConfig) []*evpn.Route {
	rts := []evpn.RT{evpn.AutoRT(c.ASN, c.VNI), evpn.AutoRT(c.ASN, l3VNI)}
	out := make([]*evpn.Route, 0, c.Routes+c.VTEPs)
	vteps := make([]netip.Addr, c.VTEPs)
	rds := make([]evpn.RD, c.VTEPs)
	for v := range vteps {
		vteps[v] = burstVTEP(c, v)
		rds[v] = evpn.RDFromIP(vteps[v], uint16(c.VNI))
		out = append(out, evpn.LocalIMETRoute(rds[v], c.VNI, vteps[v], rts[:1]))
	}
	for i := range c.Routes {
		v := i % c.VTEPs
		out = append(out, evpn.LocalMACIPRoute(rds[v], c.VNI, l3VNI, burstMAC(i), l3Host(i), vteps[v], rts, l3RouterMAC(v), 0, false))
	}
	return out
}

// l3Host is the i-th remote host's address.
func l3Host(i int) netip.Addr {
	a := l3Hosts.Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	n += 16 + uint32(i)
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// l3RouterMAC is the v-th remote VTEP's router MAC.
func l3RouterMAC(v int) evpn.MAC { return evpn.MAC{0x02, 0xee, 0, 0, byte(v >> 8), byte(v)} }

func runL3(ctx context.Context, o l3Options, stdout, stderr io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	res, err := l3Bench(ctx, o, stderr)
	if len(res) > 0 {
		fmt.Fprint(stdout, l3Report(o, res, machine()))
	}
	return err
}

// l3Bench runs every implementation and returns the results so far.
func l3Bench(ctx context.Context, o l3Options, stderr io.Writer) (res []l3Result, err error) {
	e, err := newEnv(ctx, o.common, stderr)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, e.close(err)) }()
	if o.PprofDir != "" {
		if err := os.MkdirAll(o.PprofDir, 0o755); err != nil {
			return nil, err
		}
		e.leafPprof = true
	}
	c := feederConfig{ASN: benchASN, RouterID: rrAddr, Peer: leafLoopback(1), Routes: o.Routes,
		VTEPs: o.VTEPs, FirstVTEP: firstRemote, VNI: burstVNI}
	routes := l3Routes(c)
	raw, n, err := rawUpdatesFor(routes, rrAddr, o.Pack)
	if err != nil {
		return nil, err
	}
	var wd []byte
	if o.Withdraw {
		if wd, _, err = rawWithdraws(routes[o.VTEPs:], o.Pack); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(stderr, "evpnbench: l3: %d MAC+IP routes in %d UPDATEs (%d bytes)\n", o.Routes, n, len(raw))
	for r := range o.Rounds {
		for _, impl := range leafOrder(r, o.common.frr) {
			fmt.Fprintf(stderr, "evpnbench: l3 round %d: %s, %d routes ...\n", r+1, impl, o.Routes)
			x, err := l3Once(ctx, e, o, impl, raw, wd)
			if err != nil {
				return res, fmt.Errorf("l3 into %s: %w", impl, err)
			}
			x.Round = r + 1
			fmt.Fprintf(stderr, "evpnbench: l3 round %d: %s: %v (%.0f entries/s)", r+1, impl, x.Total.Round(time.Millisecond), x.entryRate())
			if o.Withdraw {
				fmt.Fprintf(stderr, ", withdraw %v", x.WTotal.Round(time.Millisecond))
			}
			fmt.Fprintln(stderr)
			res = append(res, x)
		}
	}
	return res, nil
}

// l3Once deploys a fresh fabric, sends the routes into impl until every
// neighbour and host route is in its kernel, withdraws them when wd is
// set, and tears the fabric down.
func l3Once(ctx context.Context, e *env, o l3Options, impl string, raw, wd []byte) (r l3Result, err error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	r = l3Result{Impl: impl, Routes: o.Routes}
	leafID := leafLoopback(1)
	extra := []string{"sysctl -qw net.ipv4.ip_forward=1"}
	if impl == implFRR {
		extra = append(extra, frrL3Devices(leafID)...)
	}
	l, err := e.deploy(ctx, "l"+impl[:1], burstTopology("l3-"+impl, extra))
	if err != nil {
		return r, err
	}
	defer func() {
		if terr := e.teardown(l, "leaf"); terr != nil && err == nil {
			err = terr
		}
	}()
	src := &rawSource{ns: l.Node("rr"), local: rrAddr, peer: leafID, asn: benchASN, msgs: raw}
	defer src.close()

	pids, err := e.startL3Leaf(ctx, l, impl)
	if err != nil {
		return r, err
	}
	h, err := l.Node("leaf").Handle()
	if err != nil {
		return r, err
	}
	defer h.Close()
	svi, err := h.LinkByName(l2SVI)
	if err != nil {
		return r, err
	}
	ifindex := int32(svi.Attrs().Index)
	w, err := watchGroups(l.Node("leaf"), 256<<20, unix.RTNLGRP_NEIGH, unix.RTNLGRP_IPV4_ROUTE)
	if err != nil {
		return r, err
	}
	counter := newL3Counter(ifindex, mainTbl, l3Hosts, o.Routes)
	wctx, wcancel := context.WithCancel(ctx)
	werr := make(chan error, 1)
	go func() {
		werr <- w.RunRaw(wctx, func(b []byte, at time.Time) error {
			return parseL3Events(b, func(ev *l3Event) { counter.add(ev, at) })
		})
	}()
	defer func() { wcancel(); <-werr; w.Close() }()
	overflowed := false
	// wait waits for the counter's goal; after an overflow it polls dumps.
	wait := func(ctx context.Context, goal int, reached <-chan struct{}) (time.Time, error) {
		if !overflowed {
			select {
			case <-reached:
				_, _, last := counter.times()
				return last, nil
			case err := <-werr:
				if !errors.Is(err, errOverflow) {
					return time.Time{}, err
				}
				overflowed = true
			case err := <-src.failed():
				return time.Time{}, err
			case <-ctx.Done():
				n, rt := counter.counts()
				return time.Time{}, fmt.Errorf("the kernel holds %d neighbours on %s and %d host routes, want %d: %w", n, l2SVI, rt, goal, ctx.Err())
			}
		}
		var at time.Time
		err := waitFor(ctx, time.Hour, 100*time.Millisecond, "the kernel's L3 entries", func() (bool, error) {
			n, rt, err := countL3(h, ifindex)
			at = time.Now()
			return n == goal && rt == goal, err
		})
		return at, err
	}

	if r.Before, err = settledUsage(ctx, pids); err != nil {
		return r, err
	}
	reached := counter.expect(o.Routes)
	var gprof *pprofRecord
	if o.PprofDir != "" && impl == implEvpnd {
		gprof = startPprof(ctx, l.Node("leaf"), filepath.Join(o.PprofDir, fmt.Sprintf("l3-%s-%d", impl, e.seq)), o.PprofSeconds)
	}
	established, err := src.start(ctx)
	if err != nil {
		return r, err
	}
	last, err := wait(ctx, o.Routes, reached)
	if err != nil {
		return r, err
	}
	if r.After, err = sampleProcs(pids...); err != nil {
		return r, err
	}
	if gprof != nil {
		if r.Profile, err = gprof.finish(ctx, e.evpnd); err != nil {
			return r, err
		}
	}
	first, marks, _ := counter.times()
	r.First, r.Total = first.Sub(established), last.Sub(established)
	for i, m := range marks {
		if !m.IsZero() {
			r.Marks[i] = m.Sub(established)
		}
	}
	if n, rt, err := countL3(h, ifindex); err != nil {
		return r, err
	} else if n != o.Routes || rt != o.Routes {
		return r, fmt.Errorf("the notifications counted %d of each, a dump finds %d neighbours and %d host routes", o.Routes, n, rt)
	}
	if wd == nil {
		r.Overflow = overflowed
		return r, nil
	}
	reached = counter.expect(0)
	sent := time.Now()
	if err := src.write(wd); err != nil {
		return r, err
	}
	if last, err = wait(ctx, 0, reached); err != nil {
		return r, fmt.Errorf("withdraw: %w", err)
	}
	if r.Withdrawn, err = sampleProcs(pids...); err != nil {
		return r, err
	}
	first, _, _ = counter.times()
	r.WFirst, r.WTotal, r.Overflow = first.Sub(sent), last.Sub(sent), overflowed
	if n, rt, err := countL3(h, ifindex); err != nil {
		return r, err
	} else if n != 0 || rt != 0 {
		return r, fmt.Errorf("withdraw: a dump still finds %d neighbours and %d host routes", n, rt)
	}
	return r, nil
}

// countL3 dumps the extern_learn neighbours of l3Hosts on the SVI ifindex
// and the /32 routes of l3Hosts in the main table.
func countL3(h *netlink.Handle, ifindex int32) (neigh, route int, err error) {
	ns, err := h.NeighList(int(ifindex), netlink.FAMILY_V4)
	if err != nil {
		return 0, 0, fmt.Errorf("list neighbours: %w", err)
	}
	for _, n := range ns {
		ip, ok := netip.AddrFromSlice(n.IP)
		if ok && n.LinkIndex == int(ifindex) && n.Flags&unix.NTF_EXT_LEARNED != 0 && l3Hosts.Contains(ip.Unmap()) {
			neigh++
		}
	}
	rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: mainTbl}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return 0, 0, fmt.Errorf("list routes: %w", err)
	}
	for _, rt := range rs {
		if rt.Dst == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(rt.Dst.IP)
		if ones, _ := rt.Dst.Mask.Size(); ok && ones == 32 && l3Hosts.Contains(ip.Unmap()) {
			route++
		}
	}
	return neigh, route, nil
}

// startL3Leaf starts impl in the leaf node with the tenant VRF (evpnd) or
// the default VRF's L3VNI (FRR) and returns once it is ready: evpnd has
// brought up br100 and br4001, FRR's bgpd knows VNI 100 and L3VNI 4001.
func (e *env) startL3Leaf(ctx context.Context, l *lab.Lab, impl string) ([]int, error) {
	leafID := leafLoopback(1)
	switch impl {
	case implEvpnd:
		cfg := filepath.Join(l.WorkDir(), "leaf.yaml")
		if err := os.WriteFile(cfg, []byte(evpndL3LeafConfig(leafID)), 0o644); err != nil {
			return nil, err
		}
		args := []string{e.evpnd, "run", "--config", cfg, "--cease-on-exit", "--api-socket", apiSocketFor(l.LogPath("leaf"))}
		if e.leafPprof {
			args = append(args, "--pprof", leafPprof)
		}
		d, err := e.start(l, "leaf", l.LogPath("leaf"), args, e.evEnv)
		if err != nil {
			return nil, err
		}
		for _, dev := range []string{l2SVI, l3SVI} {
			if err := waitLink(ctx, l, "leaf", dev, d); err != nil {
				return nil, err
			}
		}
		return []int{d.pid()}, nil
	case implFRR:
		f, err := e.startFRRWith(ctx, l, "leaf", fmt.Sprintf("vni %d\n!\n", l3VNI), frrL3BGPConf(leafID))
		if err != nil {
			return nil, err
		}
		if err := waitFor(ctx, 30*time.Second, 50*time.Millisecond, "bgpd to know VNI 100 and L3VNI 4001 from zebra", func() (bool, error) {
			out, err := f.vtysh(ctx, l, "show bgp l2vpn evpn vni")
			return err == nil && frrKnowsVNIs(out), nil
		}); err != nil {
			return nil, err
		}
		return f.pids(), nil
	}
	return nil, fmt.Errorf("no leaf implementation %q", impl)
}

// frrKnowsVNIs reports whether "show bgp l2vpn evpn vni" lists VNI 100
// (L2) and 4001 (L3).
func frrKnowsVNIs(out string) bool {
	var l2, l3 bool
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch {
		case f[0] == "*" && len(f) > 2 && f[1] == "100" && f[2] == "L2", f[0] == "100" && f[1] == "L2":
			l2 = true
		case f[0] == "*" && len(f) > 2 && f[1] == "4001" && f[2] == "L3", f[0] == "4001" && f[1] == "L3":
			l3 = true
		}
	}
	return l2 && l3
}

// frrL3BGPConf is the FRR leaf's bgpd config: frrBGPConf's leaf, whose
// advertise-all-vni also imports MAC+IP routes into the default VRF,
// which holds L3VNI 4001 (zebra's "vni 4001").
func frrL3BGPConf(id netip.Addr) string {
	return frrBGPConf("leaf", benchASN, id, []netip.Addr{rrAddr}, false)
}

// frrL3Devices are the commands that create, in an FRR leaf, what evpnd's
// tenant VRF on the default backend creates itself: the L2VNI's vxlan100
// in br100, which is its SVI with the anycast gateway's MAC and address
// (suppression on), and the L3VNI's vxlan4001 in br4001, whose MAC is the
// router MAC.
func frrL3Devices(vtep netip.Addr) []string {
	return []string{
		"ip link add br100 address " + l3GWMAC + " type bridge",
		"ip link add vxlan100 type vxlan id 100 local " + vtep.String() + " dstport 4789 nolearning",
		"ip link set vxlan100 master br100 addrgenmode none",
		"bridge link set dev vxlan100 learning off neigh_suppress on",
		"ip addr add " + l3Gateway.String() + " dev br100",
		"ip link add br4001 address " + frrL3MAC + " type bridge",
		"ip link set br4001 addrgenmode none",
		"ip link add vxlan4001 type vxlan id 4001 local " + vtep.String() + " dstport 4789 nolearning",
		"ip link set vxlan4001 master br4001 addrgenmode none",
		"bridge link set dev vxlan4001 learning off",
		"ip link set vxlan100 up", "ip link set br100 up",
		"ip link set vxlan4001 up", "ip link set br4001 up",
	}
}

// evpndL3LeafConfig is the evpnd leaf of the l3 benchmark: VNI 100 in
// tenant VRF t1 on the default backend (the main table, as FRR's vrf
// default) with L3VNI 4001 and the anycast gateway on br100.
func evpndL3LeafConfig(id netip.Addr) string {
	return evpndLeafConfig(id, nil) + fmt.Sprintf(`vrfs:
  - name: t1
    l3vni: %d
    backend: default
    gateway-mac: "%s"
    l2vnis:
      - {vni: %d, gateway-ips: [%s]}
`, l3VNI, l3GWMAC, burstVNI, l3Gateway)
}

// l3Report renders the results as a table, then the evpnd/FRR ratios of
// the medians.
func l3Report(o l3Options, res []l3Result, host string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nl3: %d MAC+IP type-2 routes (L2VNI 100, L3VNI 4001, %d remote VTEPs, raw source) into one leaf\n", o.Routes, o.VTEPs)
	fmt.Fprintf(&b, "machine: %s\n", host)
	b.WriteString("clock: from the BGP session Established (seen by the source) to the first / 10% / 50% / 90% / last moment the leaf's\n" +
		"kernel holds both every suppression neighbour (extern_learn on br100) and every /32 host route (main table);\n" +
		"withdraw: from the withdrawals sent until both are gone. entries/s = 2 x routes / time. RSS, CPU: the leaf's\n" +
		"daemons from /proc (FRR: bgpd + zebra), before the session, at the last entry (end) and at the last deletion.\n" +
		"RSS/route = (end - before) / routes.\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\ttime\tfirst\t10%\t50%\t90%\tentries/s\tRSS before\tRSS end\tRSS/route\tCPU/route\twithdraw\twd CPU/route\t")
	for _, r := range res {
		note := ""
		if r.Overflow {
			note = " (*)"
		}
		wdT, wdC := "-", "-"
		if r.WTotal > 0 {
			wdT, wdC = ms(r.WTotal), fmt.Sprintf("%.1f µs", float64(r.wCPUPerRoute())/float64(time.Microsecond))
		}
		fmt.Fprintf(tw, "%s\t%s%s\t%s\t%s\t%s\t%s\t%.0f\t%s\t%s\t%.0f B\t%.1f µs\t%s\t%s\t\n", r.Impl, ms(r.Total), note,
			ms(r.First), ms(r.Marks[0]), ms(r.Marks[1]), ms(r.Marks[2]), r.entryRate(), mib(r.Before.RSS), mib(r.After.RSS), r.rssPerRoute(),
			float64(r.cpuPerRoute())/float64(time.Microsecond), wdT, wdC)
	}
	tw.Flush()
	for _, r := range res {
		if r.Overflow {
			b.WriteString("(*) the netlink subscription overflowed: the end was found by dumps every 100 ms\n")
			break
		}
	}
	e, f := medianL3(res, implEvpnd), medianL3(res, implFRR)
	if e != nil && f != nil {
		fmt.Fprintf(&b, "\nevpnd/FRR (medians): time %.2fx, RSS/route %.2fx, CPU/route %.2fx",
			e.Total.Seconds()/f.Total.Seconds(), e.rssPerRoute()/f.rssPerRoute(), float64(e.cpuPerRoute())/float64(f.cpuPerRoute()))
		if e.WTotal > 0 && f.WTotal > 0 {
			fmt.Fprintf(&b, ", withdraw time %.2fx", e.WTotal.Seconds()/f.WTotal.Seconds())
		}
		b.WriteString("\n")
	}
	if o.Rounds > 1 {
		for _, p := range l3Pairs(res) {
			fmt.Fprintf(&b, "round %d, evpnd/FRR: time %.2fx, RSS/route %.2fx, CPU/route %.2fx", p[0].Round,
				p[0].Total.Seconds()/p[1].Total.Seconds(), p[0].rssPerRoute()/p[1].rssPerRoute(), float64(p[0].cpuPerRoute())/float64(p[1].cpuPerRoute()))
			if p[0].WTotal > 0 && p[1].WTotal > 0 {
				fmt.Fprintf(&b, ", withdraw time %.2fx", p[0].WTotal.Seconds()/p[1].WTotal.Seconds())
			}
			b.WriteString("\n")
		}
	}
	for _, r := range res {
		if r.Profile != "" {
			fmt.Fprintf(&b, "\nGo profiles of %s during the routes' arrival:\n%s", r.Impl, r.Profile)
		}
	}
	return b.String()
}

// l3Pairs returns, per round that ran both, its evpnd and FRR results.
func l3Pairs(res []l3Result) [][2]l3Result {
	var out [][2]l3Result
	for i := range res {
		for j := range res {
			if res[i].Impl == implEvpnd && res[j].Impl == implFRR && res[i].Round == res[j].Round && res[i].Round > 0 {
				out = append(out, [2]l3Result{res[i], res[j]})
			}
		}
	}
	return out
}

// medianL3 is the run of impl with the median time (of two, the slower),
// or nil.
func medianL3(res []l3Result, impl string) *l3Result {
	var rs []l3Result
	for _, r := range res {
		if r.Impl == impl {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].Total < rs[j-1].Total; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
	return &rs[len(rs)/2]
}
