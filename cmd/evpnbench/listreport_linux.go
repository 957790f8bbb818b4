//go:build linux

package main

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// listLabels name the listings in the report.
var listLabels = map[string]string{
	toolBridge:    "bridge fdb show dev vxlan100",
	toolNetlink:   "netlink dump (NeighList AF_BRIDGE)",
	toolAPI:       "ListMACs, Go gRPC client",
	toolCtl:       "evpnctl show evpn mac",
	toolCtlJSON:   "evpnctl -o json show evpn mac",
	toolVtysh:     `vtysh "show evpn mac vni all"`,
	toolVtyshJSON: `vtysh "show evpn mac vni all json"`,
}

// listStats are the medians (and wall time and RSS growth extremes) of
// one listing on one leaf.
type listStats struct {
	Impl, Tool          string
	N                   int
	Wall, WallMin, WMax time.Duration
	Rows                int
	Bytes               int64
	Pages, MaxPage      int
	ClientRSS           int64
	Daemon              bool
	Before, Peak        int64
	Growth, GrowthMax   int64
	CPU, Sys            time.Duration
	Alloc               int64 // evpnd's Go heap allocations; -1: not known
}

// median is the median of key over xs (the mean of the two middle values
// for an even count).
func median[T any](xs []T, key func(T) int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	v := make([]int64, len(xs))
	for i, x := range xs {
		v[i] = key(x)
	}
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}

// listStatsOf groups samples by leaf and listing, in order of appearance.
func listStatsOf(res []listSample) []listStats {
	type key struct{ impl, tool string }
	var order []key
	groups := map[key][]listSample{}
	for _, s := range res {
		k := key{s.Impl, s.Tool}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], s)
	}
	// evpnd's leaf first, whatever the round order.
	slices.SortStableFunc(order, func(a, b key) int {
		return strings.Compare(a.impl, b.impl)
	})
	var out []listStats
	for _, k := range order {
		g := groups[k]
		st := listStats{Impl: k.impl, Tool: k.tool, N: len(g),
			Wall:      time.Duration(median(g, func(s listSample) int64 { return int64(s.Wall) })),
			Rows:      int(median(g, func(s listSample) int64 { return int64(s.Rows) })),
			Bytes:     median(g, func(s listSample) int64 { return s.Bytes }),
			Pages:     int(median(g, func(s listSample) int64 { return int64(s.Pages) })),
			ClientRSS: median(g, func(s listSample) int64 { return s.ClientRSS }),
			WallMin:   g[0].Wall, WMax: g[0].Wall,
		}
		for _, s := range g {
			st.WallMin, st.WMax = min(st.WallMin, s.Wall), max(st.WMax, s.Wall)
			st.MaxPage = max(st.MaxPage, s.MaxPage)
			if s.Daemon != nil {
				st.Daemon = true
				st.GrowthMax = max(st.GrowthMax, s.Daemon.growth())
			}
		}
		if st.Daemon {
			d := func(f func(daemonCost) int64) int64 {
				return median(g, func(s listSample) int64 { return f(*s.Daemon) })
			}
			st.Before = d(func(c daemonCost) int64 { return c.Before })
			st.Peak = d(func(c daemonCost) int64 { return c.Peak })
			st.Growth = d(func(c daemonCost) int64 { return c.growth() })
			st.CPU = time.Duration(d(func(c daemonCost) int64 { return int64(c.CPU) }))
			st.Sys = time.Duration(d(func(c daemonCost) int64 { return int64(c.Sys) }))
			st.Alloc = d(func(c daemonCost) int64 { return c.Alloc })
		}
		out = append(out, st)
	}
	return out
}

func findStats(st []listStats, impl, tool string) *listStats {
	for i := range st {
		if st[i].Impl == impl && st[i].Tool == tool {
			return &st[i]
		}
	}
	return nil
}

func kib(b int64) string {
	if b >= 10<<20 {
		return mib(b)
	}
	return fmt.Sprintf("%.0f KiB", float64(b)/1024)
}

// listReport renders the medians per leaf and listing, then the ratios.
func listReport(o listOptions, res []listSample, host string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nlist: the whole MAC table of a leaf holding %d remote MACs (VNI 100, %d remote VTEPs), %d round(s) x %d listing(s) each\n",
		o.Routes, o.VTEPs, o.Rounds, o.Repeat)
	fmt.Fprintf(&b, "machine: %s\n", host)
	b.WriteString(`wall: from starting the command (in-process: connecting, or the dump call) until its output is
all read; commands write into a pipe that counts lines and bytes. out: the API's rows, pages and bytes
read from the socket; netlink: entries; commands: lines and bytes. tool RSS: the command's peak RSS
(GNU time). daemon: evpnd, or zebra for vtysh (zebra answers "show evpn"), from /proc: VmRSS before,
its peak during the listing (10 ms samples, and VmHWM reset first), growth = peak - before (median and
max), CPU = utime + stime (in brackets stime, the kernel's part; 10 ms ticks); evpnd alloc: what
evpnd's Go heap allocated (go_memstats_alloc_bytes_total from its /metrics, before and after).

`)
	st := listStatsOf(res)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "leaf\tlisting\tn\twall median\tmin\tmax\tout\ttool RSS\tdaemon RSS\tpeak\tgrowth (max)\tdaemon CPU (sys)\tevpnd alloc")
	for _, s := range st {
		out := fmt.Sprintf("%d lines, %s", s.Rows, kib(s.Bytes))
		switch s.Tool {
		case toolAPI:
			out = fmt.Sprintf("%d rows, %d pages (max %d), %s", s.Rows, s.Pages, s.MaxPage, kib(s.Bytes))
		case toolNetlink:
			out = fmt.Sprintf("%d entries", s.Rows)
		}
		crss := "-"
		if s.ClientRSS > 0 {
			crss = kib(s.ClientRSS)
		}
		d := "-\t-\t-\t-\t-"
		if s.Daemon {
			alloc := "-"
			if s.Alloc >= 0 {
				alloc = mib(s.Alloc)
			}
			d = fmt.Sprintf("%s\t%s\t%s (%s)\t%s (%s)\t%s", mib(s.Before), mib(s.Peak), mib(s.Growth), mib(s.GrowthMax), ms(s.CPU), ms(s.Sys), alloc)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Impl, listLabels[s.Tool], s.N,
			msl(s.Wall), msl(s.WallMin), msl(s.WMax), out, crss, d)
	}
	tw.Flush()

	b.WriteString("\nratios of the medians:\n")
	ratio := func(name string, a, c *listStats, daemon bool) {
		if a == nil || c == nil {
			return
		}
		fmt.Fprintf(&b, "  %-34s wall %.2fx", name, a.Wall.Seconds()/c.Wall.Seconds())
		if a.ClientRSS > 0 && c.ClientRSS > 0 {
			fmt.Fprintf(&b, ", tool RSS %.2fx", float64(a.ClientRSS)/float64(c.ClientRSS))
		}
		if daemon && a.Daemon && c.Daemon {
			fmt.Fprintf(&b, ", daemon CPU %s, daemon growth %s",
				fratio(float64(a.CPU), float64(c.CPU)), fratio(float64(a.Growth), float64(c.Growth)))
		}
		b.WriteString("\n")
	}
	e := func(tool string) *listStats { return findStats(st, implEvpnd, tool) }
	f := func(tool string) *listStats { return findStats(st, implFRR, tool) }
	ratio("evpnctl / vtysh (table):", e(toolCtl), f(toolVtysh), true)
	ratio("evpnctl -o json / vtysh json:", e(toolCtlJSON), f(toolVtyshJSON), true)
	ratio("ListMACs (API) / vtysh (table):", e(toolAPI), f(toolVtysh), true)
	ratio("evpnctl / bridge fdb show:", e(toolCtl), e(toolBridge), false)
	ratio("evpnctl -o json / bridge fdb show:", e(toolCtlJSON), e(toolBridge), false)
	ratio("ListMACs (API) / netlink dump:", e(toolAPI), e(toolNetlink), false)
	ratio("vtysh / bridge fdb show:", f(toolVtysh), f(toolBridge), false)
	ratio("vtysh json / bridge fdb show:", f(toolVtyshJSON), f(toolBridge), false)
	b.WriteString("(floor ratios use the floor measured on the same leaf; daemon ratios: evpnd against zebra)\n")
	return b.String()
}

// fratio is a/c, or "n/a" when c is zero (e.g. CPU below one tick).
func fratio(a, c float64) string {
	if c <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", a/c)
}

// msl prints a duration in ms, with one decimal below 100 ms.
func msl(d time.Duration) string {
	if d < 100*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return ms(d)
}
