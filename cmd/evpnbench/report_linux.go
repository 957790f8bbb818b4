//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// machine describes the host in one line: CPUs, model, kernel, load, Go
// and FRR versions.
func machine() string {
	var u unix.Utsname
	kernel := "?"
	if unix.Uname(&u) == nil {
		kernel = unix.ByteSliceToString(u.Release[:])
	}
	model := "?"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range bytes.Lines(data) {
			if k, v, ok := strings.Cut(string(line), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	load := "?"
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(data)); len(f) >= 3 {
			load = strings.Join(f[:3], " ")
		}
	}
	frr := "not installed"
	if out, err := exec.Command(frrBGPd, "--version").Output(); err == nil {
		frr = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	return fmt.Sprintf("%d CPUs (%s), kernel %s, load %s, %s, FRR %s",
		runtime.NumCPU(), model, kernel, load, runtime.Version(), frr)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// burstReport renders the results as a table, then evpnd/FRR ratios of
// the medians.
func burstReport(o burstOptions, res []burstResult, host string) string {
	var b strings.Builder
	src := "a GoBGP route reflector (evpnd's speaker package, one route per UPDATE)"
	if o.Source == sourceRaw {
		src = "a raw BGP source (pre-encoded UPDATEs at TCP speed, "
		if o.Pack == 1 {
			src += "one route per UPDATE)"
		} else {
			src += "packed as FRR packs them)"
		}
	}
	fmt.Fprintf(&b, "\nburst: %d type-2 routes (VNI 100, %d remote VTEPs) from %s into one leaf\n", o.Routes, o.VTEPs, src)
	fmt.Fprintf(&b, "machine: %s\n", host)
	b.WriteString("clock: from the BGP session Established (seen by the source) to the first / 50% / last MAC with both its\n" +
		"VXLAN and bridge entry in the leaf's kernel (source run: NLRIs received). RSS, CPU: the leaf's daemons from\n" +
		"/proc (FRR: bgpd + zebra), before the session, when the last entry lands (end), and " + settled(o) + ".\n" +
		"RSS/route = (end - before) / routes.\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\ttime\tfirst\t50%\troutes/s\tRSS before\tRSS end\tRSS settled\tpeak RSS\tRSS/route\tCPU/route\t")
	for _, r := range res {
		if r.Impl == implSource {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0f\t\t\t\t\t\t\t\n", r.Impl, ms(r.Total), ms(r.First), ms(r.Marks[1]), r.rate())
			continue
		}
		note := ""
		if r.Overflow {
			note = " (*)"
		}
		fmt.Fprintf(tw, "%s\t%s%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%.0f B\t%.1f µs\t\n", r.Impl, ms(r.Total), note,
			ms(r.First), ms(r.Marks[1]), r.rate(),
			mib(r.Before.RSS), mib(r.After.RSS), mib(r.Settled.RSS), mib(max(r.After.HWM, r.Settled.HWM)), r.rssPerRoute(),
			float64(r.cpuPerRoute())/float64(time.Microsecond))
	}
	tw.Flush()
	for _, r := range res {
		if r.Overflow {
			b.WriteString("(*) the netlink subscription overflowed: the end was found by dumps every 100 ms\n")
			break
		}
	}
	e, f, s := medianBurst(res, implEvpnd), medianBurst(res, implFRR), medianBurst(res, implSource)
	b.WriteString("\n")
	if e != nil && f != nil {
		fmt.Fprintf(&b, "evpnd/FRR (medians): time %.2fx, RSS/route %.2fx, CPU/route %.2fx\n",
			e.Total.Seconds()/f.Total.Seconds(), e.rssPerRoute()/f.rssPerRoute(), float64(e.cpuPerRoute())/float64(f.cpuPerRoute()))
	}
	if s != nil {
		for _, x := range []*burstResult{e, f} {
			if x == nil {
				continue
			}
			if s.Total*20 < x.Total {
				fmt.Fprintf(&b, "%s: the source alone takes %s, under 5%% of the leaf's time: the leaf is measured alone\n", x.Impl, ms(s.Total))
				continue
			}
			fmt.Fprintf(&b, "%s/source floor: time %.2fx", x.Impl, x.Total.Seconds()/s.Total.Seconds())
			if x.Total < s.Total*5/4 {
				b.WriteString(" - bounded by the source: its time says little about the leaf (try --source raw)")
			}
			b.WriteString("\n")
		}
	}
	for _, r := range res {
		if r.Profile != "" {
			fmt.Fprintf(&b, "\nCPU profile of %s during the burst (perf, cpu-clock):\n%s", r.Impl, r.Profile)
		}
	}
	return b.String()
}

func settled(o burstOptions) string {
	if o.Settle > 0 {
		return fmt.Sprintf("%v after it (settled)", o.Settle)
	}
	return "once stable after it (settled)"
}

// medianBurst is the run of impl with the median time, or nil.
func medianBurst(res []burstResult, impl string) *burstResult {
	var rs []burstResult
	for _, r := range res {
		if r.Impl == impl {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b burstResult) int { return int(a.Total - b.Total) })
	return &rs[len(rs)/2]
}

// percentile returns the p-th percentile (0-100) of sorted durations by
// the nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}
