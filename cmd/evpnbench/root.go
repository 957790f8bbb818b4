//go:build linux

package main

import (
	"io"
	"time"

	"github.com/spf13/cobra"
)

// commonFlags are the flags of every benchmark.
type commonFlags struct {
	frr     bool
	evpnd   string
	workDir string
	keep    bool
	verbose bool
	env     []string // extra environment for evpnd (GOGC=..., GODEBUG=gctrace=1)
	// evpnctl is the evpnctl binary of the benchmarks that need one
	// (needCtl); "" builds ./cmd/evpnctl.
	evpnctl string
	needCtl bool
}

func (c *commonFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&c.frr, "frr", false, "also measure the FRR 8.4 reference (bgpd + zebra from /usr/lib/frr) in the same run")
	f.StringVar(&c.evpnd, "evpnd", "", "evpnd binary to measure (default: build ./cmd/evpnd of the current module)")
	f.StringVar(&c.workDir, "workdir", "", "directory for configs and daemon logs (default: a new temporary directory)")
	f.BoolVar(&c.keep, "keep", false, "keep the work directory (it is always kept after a failure)")
	f.BoolVarP(&c.verbose, "verbose", "v", false, "log every step to stderr")
	f.StringArrayVar(&c.env, "evpnd-env", nil, "extra environment variable for evpnd, KEY=VALUE (repeatable), e.g. GOGC=50 or GODEBUG=gctrace=1 (written to its log)")
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "evpnbench",
		Short: "Scale harness: evpnd's BGP-to-kernel path against FRR 8.4",
		Long: `evpnbench measures evpnd on network namespaces and, with --frr, FRR 8.4
(bgpd + zebra) on the same machine in the same run, and prints both with
their ratio. Machines differ 2-4x from day to day: compare the ratio, not
the absolute figures, across runs. Needs root, iproute2, and for --frr
FRR 8.4 in /usr/lib/frr.

Everything is created in namespaces named evb-<pid>-*; they, and every
process in them, are removed on exit, on error and on Ctrl-C.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newBurstCmd(stdout, stderr), newLatencyCmd(stdout, stderr), newListCmd(stdout, stderr), newVNIsCmd(stdout, stderr), newL3Cmd(stdout, stderr))
	return root
}

func newBurstCmd(stdout, stderr io.Writer) *cobra.Command {
	o := burstOptions{}
	cmd := &cobra.Command{
		Use:   "burst",
		Short: "100k type-2 routes from a route-reflector peer until all are in the leaf's kernel",
		Long: `burst sends N type-2 routes (distinct MACs in VNI 100, next hops spread over
--vteps remote VTEPs from 10.0.0.10, RD vtep:100, RT 65000:100, VXLAN
encapsulation) plus one type-3 route per VTEP from a route-reflector peer in
namespace evb-<pid>-*-rr to the leaf under test in evb-<pid>-*-leaf. The
clock starts when the session is established (as the source sees it) and
stops when the leaf's kernel holds every MAC on vxlan100, both the VXLAN
(self) and the bridge (master) entry, as a netlink neighbour subscription in
the leaf namespace sees them; a dump then checks the count.

Sources (--source):
  gobgp  evpnd's speaker package (GoBGP v4) as a route reflector, preloaded
         before the session opens; it sends one route per UPDATE, as an
         evpnd reflector does, and is itself the limit of fast leafs.
  raw    pre-encoded UPDATEs (evpnd's codec plus the reflector's AS_PATH,
         LOCAL_PREF, ORIGINATOR_ID, CLUSTER_LIST) replayed at TCP speed,
         packed as FRR packs them (--pack 1: one per UPDATE): the leaf alone.

Runs, in order: "source" (the source into a minimal BGP receiver that only
counts NLRIs: the floor of every leaf with this source), evpnd, and with
--frr an FRR 8.4 leaf (bgpd + zebra, advertise-all-vni, the same
vxlan100/br100 devices as evpnd creates). RSS and CPU are read from /proc
before the session and when the last entry lands; FRR's are bgpd's plus
zebra's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBurst(cmd.Context(), o, stdout, stderr)
		},
	}
	o.common.register(cmd)
	f := cmd.Flags()
	f.IntVar(&o.Routes, "routes", 100_000, "type-2 routes in the burst")
	f.IntVar(&o.VTEPs, "vteps", 10, "remote VTEPs the routes are spread over (next hops 10.0.0.10 and up)")
	f.IntVar(&o.Rounds, "rounds", 1, "rounds; each round runs every implementation once, alternating")
	f.StringVar(&o.Source, "source", sourceGoBGP, "burst source: gobgp (evpnd's speaker package as a route reflector, one route per UPDATE) or raw (pre-encoded UPDATEs replayed at TCP speed, packed as FRR packs them)")
	f.IntVar(&o.Pack, "pack", 0, "raw source: type-2 routes per UPDATE (0: as many as fit in 4096 bytes, about 110)")
	f.BoolVar(&o.NoSource, "no-source", false, "skip the source-only run")
	f.StringVar(&o.PerfDir, "perf", "", "record a CPU profile of the leaf daemons during the burst with perf(1) into this directory, and print its summary")
	f.StringVar(&o.PprofDir, "pprof", "", "run evpnd with --pprof and fetch its Go CPU profile (--pprof-seconds from the session's start) and heap profile (at the end of the burst) into this directory, and print their top")
	f.IntVar(&o.PprofSeconds, "pprof-seconds", 8, "length of the Go CPU profile of --pprof; pick it near the burst's duration")
	f.DurationVar(&o.Settle, "settle", 0, "wait this long after the burst before the \"RSS settled\" sample (default: until RSS is stable); Go gives memory back only after a GC, forced every 2 minutes when idle: 150s shows what evpnd keeps")
	f.DurationVar(&o.Timeout, "timeout", 3*time.Minute, "give up a run after this long (not counting --settle)")
	return cmd
}

func newLatencyCmd(stdout, stderr io.Writer) *cobra.Command {
	o := latencyOptions{}
	cmd := &cobra.Command{
		Use:   "latency",
		Short: "One MAC learned on leaf1 until it is in leaf2's FDB through the route reflector",
		Long: `latency deploys a route reflector (evb-<pid>-*-rr), two leafs and a host h1
behind leaf1's eth2 in VNI 100. For each sample, h1 sends one Ethernet frame
from a new source MAC; leaf1's bridge learns it, the leaf advertises it,
the reflector reflects it, and leaf2 installs it. The clock runs from the
frame being sent until a netlink neighbour subscription in leaf2's
namespace sees the MAC on vxlan100 with dst leaf1 (10.0.0.1). The time
until leaf1's own bridge reported the MAC is shown apart ("learn").

With --frr the same runs with FRR 8.4 leafs and an FRR route reflector.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLatency(cmd.Context(), o, stdout, stderr)
		},
	}
	o.common.register(cmd)
	f := cmd.Flags()
	f.IntVar(&o.N, "n", 20, "samples (different MACs) per implementation")
	f.DurationVar(&o.Gap, "gap", 200*time.Millisecond, "mean pause between samples (randomised ±50% so that samples do not lock to a periodic timer)")
	f.DurationVar(&o.Timeout, "timeout", 2*time.Minute, "give up a run after this long")
	f.IntVar(&o.Burst, "burst", 0, "also send leaf2 this many type-2 routes (VNI 100, 10 remote VTEPs) from a raw BGP source peered with it directly, started after the warm-up sample; the report shows the samples sent while it ran")
	return cmd
}

func newListCmd(stdout, stderr io.Writer) *cobra.Command {
	o := listOptions{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "The whole MAC table of a leaf holding 100k remote MACs: API, evpnctl, the kernel's dump, vtysh",
		Long: `list loads a leaf with N remote MACs as burst does (the raw source: N type-2
routes in VNI 100 over --vteps remote VTEPs from a route-reflector peer),
waits until the leaf's kernel holds every one on vxlan100, then reads the
whole table --repeat times each way:

  evpnd leaf  ListMACs over its API socket by a Go gRPC client in evpnbench
              (every page; the rows must equal N), "evpnctl show evpn mac"
              and "evpnctl -o json show evpn mac";
  FRR leaf    (--frr) vtysh -c "show evpn mac vni all" and its json form;
  both        the kernel's floor: "bridge fdb show dev vxlan100" and a
              netlink AF_BRIDGE dump of vxlan100 in evpnbench.

Commands write into a pipe that counts lines and bytes. For each listing:
wall time, the command's peak RSS (from GNU time(1) when installed), and
the serving daemon's (evpnd's, or zebra's for vtysh) VmRSS before, its peak
during the listing (sampled every 10 ms, and VmHWM reset first) and its CPU
time; for evpnd also what its Go heap allocated (its /metrics, served in
the leaf's namespace). The report gives medians, min and max, and
evpnd/FRR and evpnd/floor ratios.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runList(cmd.Context(), o, stdout, stderr)
		},
	}
	o.common.register(cmd)
	f := cmd.Flags()
	f.IntVar(&o.Routes, "routes", 100_000, "remote MACs the leaf holds (one type-2 route each)")
	f.IntVar(&o.VTEPs, "vteps", 10, "remote VTEPs the MACs are spread over (10.0.0.10 and up)")
	f.IntVar(&o.Rounds, "rounds", 1, "rounds; each loads a fresh leaf of every implementation, alternating")
	f.IntVar(&o.Repeat, "repeat", 3, "listings of each kind per loaded leaf")
	f.StringVar(&o.common.evpnctl, "evpnctl", "", "evpnctl binary to measure (default: build ./cmd/evpnctl of the current module)")
	f.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "give up a round (loading and listing one leaf) after this long")
	return cmd
}

func newVNIsCmd(stdout, stderr io.Writer) *cobra.Command {
	o := vnisOptions{}
	cmd := &cobra.Command{
		Use:   "vnis",
		Short: "A leaf with N L2VNIs from evpnd's start until its route reflector holds every type-3, beside iproute2's floor",
		Long: `vnis starts evpnd on a leaf (evb-<pid>-*-leaf) configured with N L2VNIs
(10000 and up, devices vxlanV and brV, no access interfaces), whose one
peer is a BGP receiver in the reflector's namespace that counts type-3
(IMET) routes. The clock runs from evpnd's start until the receiver holds N.
evpnd's RSS and CPU time are read then.

In the same run, the kernel's floor for the same devices: iproute2 -batch in
a fresh namespace (bridge, VXLAN device enslaved, port flags through
bridge(8), both up), two ways: "addrgenmode none" on each device before it
comes up, and "IPv6 off" (net.ipv6.conf.default.disable_ipv6=1 in that
namespace while the devices are created). The report gives medians and
evpnd's time over each floor's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVNIs(cmd.Context(), o, stdout, stderr)
		},
	}
	o.common.register(cmd)
	f := cmd.Flags()
	f.IntSliceVar(&o.VNIs, "vnis", []int{4096}, "L2VNIs on the leaf (comma-separated list: one measurement each)")
	f.IntVar(&o.Rounds, "rounds", 1, "rounds of every way per VNI count, alternating the order")
	f.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "give up one run after this long")
	f.BoolVar(&o.NoFloor, "no-floor", false, "measure evpnd only, not the iproute2 floors")
	return cmd
}

func newL3Cmd(stdout, stderr io.Writer) *cobra.Command {
	o := l3Options{}
	cmd := &cobra.Command{
		Use:   "l3",
		Short: "50k remote MAC+IP routes until every suppression neighbour and host route is in the leaf's kernel",
		Long: `l3 sends N type-2 MAC+IP routes from a raw BGP source (pre-encoded UPDATEs
at TCP speed, packed as FRR packs them) on a route-reflector peer in
evb-<pid>-*-rr to the leaf under test in evb-<pid>-*-leaf: label1 = L2VNI
100, label2 = L3VNI 4001, RTs 65000:100 and 65000:4001, the router's MAC
of the route's VTEP (--vteps remote VTEPs from 10.0.0.10), a distinct MAC
and address (10.64.0.16 and up) each, and a type-3 route per VTEP.

The leaf is evpnd with tenant VRF t1 on the default backend (the main
table), or with --frr also FRR 8.4 (bgpd + zebra) with "vni 4001" in the
default VRF and advertise-all-vni, on the devices evpnd creates (br100 with
the anycast gateway 10.64.0.1/10, br4001). The clock runs from the session
Established until a netlink subscription in the leaf's namespace has seen
every suppression neighbour (extern_learn on br100) and every /32 host
route (main table); a dump then checks both counts. With --withdraw (the
default) the source then withdraws every route and the clock runs until
both are gone. RSS and CPU are read from /proc before the session, at the
last entry and at the last deletion; FRR's are bgpd's plus zebra's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runL3(cmd.Context(), o, stdout, stderr)
		},
	}
	o.common.register(cmd)
	f := cmd.Flags()
	f.IntVar(&o.Routes, "routes", 50_000, "MAC+IP routes")
	f.IntVar(&o.VTEPs, "vteps", 10, "remote VTEPs the routes are spread over (next hops 10.0.0.10 and up, one router MAC each)")
	f.IntVar(&o.Rounds, "rounds", 1, "rounds; each round runs every implementation once, alternating")
	f.IntVar(&o.Pack, "pack", 0, "type-2 routes per UPDATE (0: as many as fit in 4096 bytes)")
	f.BoolVar(&o.Withdraw, "withdraw", true, "then withdraw every route and time until the kernel holds none")
	f.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "give up a run after this long")
	f.StringVar(&o.PprofDir, "pprof", "", "run evpnd with --pprof and fetch its Go CPU profile (--pprof-seconds from the session's start) and heap profile (at the last entry) into this directory, and print their top")
	f.IntVar(&o.PprofSeconds, "pprof-seconds", 10, "length of the Go CPU profile of --pprof; pick it near the routes' arrival time (the withdrawal waits for it)")
	return cmd
}
