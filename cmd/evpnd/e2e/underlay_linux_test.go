package e2e

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/lab"
)

const underlayTopology = "testdata/underlay.clab.yml"

// underlayRoutes reads a node's routes of evpnd's underlay (proto 183),
// one line each, sorted, with runs of blanks folded.
func underlayRoutes(ctx context.Context, l *lab.Lab, node string) (string, error) {
	out, err := l.Exec(ctx, node, "ip", "-4", "-o", "route", "show", "table", "main", "proto", "183")
	if err != nil {
		return "", err
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line = strings.Join(strings.Fields(strings.ReplaceAll(line, `\`, " ")), " "); line != "" {
			lines = append(lines, line)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), nil
}

// TestUnderlay deploys two evpnd spines and three evpnd leafs with eBGP per
// /31 link and no static route (testdata/underlay.clab.yml), and checks
// evpnd's BGP underlay: every leaf routes each other leaf's loopback with
// ECMP over both spines and each spine's over its link, and the spines
// route each leaf's over its link; hosts in one VNI on different leafs
// reach each other. Then spine1 is killed while ping streams run: the
// streams keep flowing (the loss is reported; more than 1 s of it fails),
// and every route through spine1 leaves the leafs' kernels.
func TestUnderlay(t *testing.T) {
	requireKernel(t)
	bin := evpndBinDir(t)
	topo, err := lab.Load(underlayTopology)
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("ul%d%d", os.Getpid()%1000, labSeq.Add(1))
	start := time.Now()
	l, err := lab.Deploy(t.Context(), topo, lab.Options{Prefix: prefix, WorkDir: t.TempDir(), Path: []string{bin}, StopGrace: 5 * time.Second})
	if err != nil {
		t.Fatalf("deploy %s: %v", underlayTopology, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range topo.Nodes {
				if n.Cmd == "" {
					continue
				}
				if b, err := os.ReadFile(l.LogPath(n.Name)); err == nil {
					t.Logf("%s output:\n%s", n.Name, tail(string(b), 40))
				}
			}
		}
		if err := l.Destroy(); err != nil {
			t.Errorf("destroy lab %s: %v", prefix, err)
		}
	})
	ctx := t.Context()

	// The routes each node must hold, exactly (ip -o route, sorted).
	ecmp := func(leaf, other int) string {
		return fmt.Sprintf("10.0.0.%d src 10.0.0.%d nexthop via 10.1.%d.0 dev eth1 weight 1 nexthop via 10.2.%d.0 dev eth2 weight 1", other, leaf, leaf, leaf)
	}
	wantLeaf := func(leaf int, spines ...int) string {
		var lines []string
		for o := 1; o <= 3; o++ {
			if o == leaf {
				continue
			}
			if len(spines) == 2 {
				lines = append(lines, ecmp(leaf, o))
			} else {
				lines = append(lines, fmt.Sprintf("10.0.0.%d via 10.%d.%d.0 dev eth%d src 10.0.0.%d", o, spines[0], leaf, spines[0], leaf))
			}
		}
		for _, s := range spines {
			lo := map[int]string{1: "10.0.0.254", 2: "10.0.0.253"}[s]
			lines = append(lines, fmt.Sprintf("%s via 10.%d.%d.0 dev eth%d src 10.0.0.%d", lo, s, leaf, s, leaf))
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	wantSpine := func(s int) string {
		lo := map[int]string{1: "10.0.0.254", 2: "10.0.0.253"}[s]
		var lines []string
		for L := 1; L <= 3; L++ {
			lines = append(lines, fmt.Sprintf("10.0.0.%d via 10.%d.%d.1 dev eth%d src %s", L, s, L, L, lo))
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	waitRoutes := func(what string, want map[string]string) {
		t.Helper()
		took := eventually(t, convergeTimeout, what, func() error {
			for node, w := range want {
				got, err := underlayRoutes(ctx, l, node)
				if err != nil {
					return err
				}
				if got != w {
					return fmt.Errorf("%s has\n%s\nwant\n%s", node, got, w)
				}
			}
			return nil
		})
		t.Logf("%s: %v", what, took.Round(time.Millisecond))
	}
	waitRoutes("underlay routes with ECMP over both spines", map[string]string{
		"leaf1": wantLeaf(1, 1, 2), "leaf2": wantLeaf(2, 1, 2), "leaf3": wantLeaf(3, 1, 2),
		"spine1": wantSpine(1), "spine2": wantSpine(2),
	})
	t.Logf("deployed and converged in %v", time.Since(start).Round(time.Millisecond))
	for _, to := range []string{"192.168.100.12", "192.168.100.13"} {
		took := eventually(t, convergeTimeout, "h1 -> "+to, func() error { return pingOnce(ctx, l, "h1", to) })
		t.Logf("h1 reaches %s after %v", to, took.Round(time.Millisecond))
	}

	// Ping streams from h1, 20 a second for 6 s; spine1 dies after 2 s.
	type stream struct {
		to  string
		out string
		err error
	}
	streams := []*stream{{to: "192.168.100.12"}, {to: "192.168.100.13"}}
	var wg sync.WaitGroup
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.out, s.err = l.Exec(ctx, "h1", "ping", "-n", "-D", "-i", "0.05", "-c", "120", "-W", "1", s.to)
		}()
	}
	time.Sleep(2 * time.Second) // let the streams run before the kill: not a synchronisation
	killed := time.Now()
	if err := l.Kill("spine1"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for _, s := range streams {
		r, err := parsePing(s.out)
		if err != nil {
			t.Fatalf("h1 -> %s: %v (%v)", s.to, err, s.err)
		}
		lost := r.Transmitted - r.Received
		t.Logf("spine1 killed: h1 -> %s: %d sent, %d received, %d lost (%v of traffic at 20/s)",
			s.to, r.Transmitted, r.Received, lost, time.Duration(lost)*50*time.Millisecond)
		if r.Transmitted == 0 || lost > 20 {
			t.Errorf("h1 -> %s: %d of %d lost: traffic did not continue through spine2", s.to, lost, r.Transmitted)
		}
	}
	// Every route through spine1 left the leafs; spine1's loopback too.
	waitRoutes("routes through spine1 gone", map[string]string{
		"leaf1": wantLeaf(1, 2), "leaf2": wantLeaf(2, 2), "leaf3": wantLeaf(3, 2),
		"spine2": wantSpine(2),
	})
	t.Logf("routes converged on spine2 %v after the kill", time.Since(killed).Round(time.Millisecond))
	// Each leaf took its session to spine1 down (fast external failover)
	// rather than waiting out the hold time.
	for L := 1; L <= 3; L++ {
		leaf := fmt.Sprintf("leaf%d", L)
		eventually(t, changeTimeout, leaf+"'s session to spine1 down", func() error {
			out, err := l.Exec(ctx, leaf, "evpnctl", "show", "bgp", "summary")
			if err != nil {
				return err
			}
			if !strings.Contains(out, "Peers: 1 established of 2 configured") {
				return fmt.Errorf("%s", out)
			}
			return nil
		})
	}
	for _, to := range []string{"192.168.100.12", "192.168.100.13"} {
		if err := pingOnce(ctx, l, "h1", to); err != nil {
			t.Errorf("after spine1 died: h1 -> %s: %v", to, err)
		}
	}
}

// pingOnce sends one echo request and wants its reply.
func pingOnce(ctx context.Context, l *lab.Lab, from, to string) error {
	out, err := l.Exec(ctx, from, "ping", "-n", "-c", "1", "-W", "1", to)
	if err != nil {
		return err
	}
	r, err := parsePing(out)
	if err != nil {
		return err
	}
	if r.Received != 1 {
		return fmt.Errorf("ping %s -> %s: no reply", from, to)
	}
	return nil
}
