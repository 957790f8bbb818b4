//go:build linux

// Command evpnbench is evpnd's scale harness. It measures the BGP → kernel
// path of evpnd and, in the same run and on the same machine, of FRR 8.4
// (bgpd + zebra), and prints both with their ratio:
//
//   - burst: 100k type-2 routes from a route-reflector peer until every
//     one is in the leaf's kernel FDB: time, routes/s, RSS and CPU per
//     route;
//   - latency: one MAC learned on leaf1 until it is in leaf2's FDB through
//     a route reflector: p50, p90, max;
//   - list: the whole MAC table of a leaf holding 100k remote MACs, read
//     through evpnd's API and evpnctl, against the kernel's own FDB dump
//     and FRR's vtysh: time, the tools' and the daemon's memory and CPU.
//
// Everything runs in network namespaces named evb-<pid>-*, which are
// removed, with every process started in them, when evpnbench exits, also
// on Ctrl-C and on error. It needs root. See containerlab/BENCHMARKS.md for
// the figures and how to read them.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// The burst source runs as a child process inside its namespace.
	if len(os.Args) > 1 && os.Args[1] == feederCommand {
		os.Exit(feederMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "evpnbench:", err)
		os.Exit(1)
	}
}
