//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"time"

	"github.com/evpnd/evpnd/containerlab/netns"
)

// leafPprof is where an evpnd leaf serves Go's profiles (evpnd run
// --pprof) when asked to, on the loopback of its own namespace.
const leafPprof = "127.0.0.1:6061"

// pprofRecord fetches a CPU profile of evpnd over a fixed window that
// starts with the burst, then its heap once the burst is in.
type pprofRecord struct {
	client *http.Client
	base   string // file names: base + ".cpu.pprof", ".heap.pprof"
	done   chan error
}

// startPprof starts fetching a CPU profile of seconds from the evpnd
// serving leafPprof in ns.
func startPprof(ctx context.Context, ns *netns.NS, base string, seconds int) *pprofRecord {
	p := &pprofRecord{client: newMetricsClient(ns), base: base, done: make(chan error, 1)}
	p.client.Timeout = time.Duration(seconds+30) * time.Second
	go func() {
		p.done <- p.fetch(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", seconds), base+".cpu.pprof")
	}()
	return p
}

func (p *pprofRecord) fetch(ctx context.Context, path, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+leafPprof+path, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("evpnd's pprof: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("evpnd's pprof %s: %s", path, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// finish takes the heap profile (live objects at the end of the burst),
// waits for the CPU profile, and returns the top of both as text
// (go tool pprof, when the go command is there), also written to
// base + ".pprof.txt".
func (p *pprofRecord) finish(ctx context.Context, bin string) (string, error) {
	herr := p.fetch(ctx, "/debug/pprof/heap?gc=1", p.base+".heap.pprof")
	var cerr error
	select {
	case cerr = <-p.done:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if cerr != nil {
		return "", cerr
	}
	if herr != nil {
		return "", herr
	}
	out := fmt.Sprintf("Go profiles: %s.cpu.pprof, %s.heap.pprof (go tool pprof %s FILE)\n", p.base, p.base, bin)
	defer func() { _ = os.WriteFile(p.base+".pprof.txt", []byte(out), 0o644) }()
	for _, a := range [][]string{
		{"-top", "-nodecount=25", bin, p.base + ".cpu.pprof"},
		{"-top", "-cum", "-nodecount=40", bin, p.base + ".cpu.pprof"},
		{"-top", "-sample_index=inuse_space", "-nodecount=20", bin, p.base + ".heap.pprof"},
	} {
		cmd := exec.CommandContext(ctx, "go", append([]string{"tool", "pprof"}, a...)...)
		b, err := cmd.CombinedOutput()
		if err != nil {
			out += fmt.Sprintf("go tool pprof %v: %v\n", a, err)
			continue
		}
		out += string(b)
	}
	return out, nil
}
