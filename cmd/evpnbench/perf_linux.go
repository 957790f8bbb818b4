//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// perfRecord is a running "perf record" of some processes: a sampling CPU
// profile with call graphs (frame pointers; Go keeps them on amd64 and
// arm64), software clock so that it works in VMs without a PMU.
type perfRecord struct {
	k    *child
	data string
	base string
}

func startPerf(ctx context.Context, e *env, base string, pids []int) (*perfRecord, error) {
	if _, err := exec.LookPath("perf"); err != nil {
		return nil, fmt.Errorf("--perf needs perf(1) (apt-get install linux-perf): %w", err)
	}
	ps := make([]string, len(pids))
	for i, p := range pids {
		ps[i] = strconv.Itoa(p)
	}
	data := base + ".perf.data"
	_ = os.Remove(data)
	c := exec.Command("perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g",
		"-p", strings.Join(ps, ","), "-o", data)
	log, err := os.Create(base + ".perf.log")
	if err != nil {
		return nil, err
	}
	defer log.Close()
	c.Stdout, c.Stderr = log, log
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	k, err := e.run("perf", c)
	if err != nil {
		return nil, err
	}
	p := &perfRecord{k: k, data: data, base: base}
	// perf creates its output file once it is attached.
	err = waitFor(ctx, 10*time.Second, 10*time.Millisecond, "perf record to attach", func() (bool, error) {
		if k.exited() {
			return false, fmt.Errorf("perf record exited: %v (see %s.perf.log)", k.err, base)
		}
		fi, err := os.Stat(data)
		return err == nil && fi.Size() > 0, nil
	})
	if err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// finish stops the recording and writes two reports next to the data:
// flat (self time per function) and inclusive (time under each function).
// It returns the first lines of each.
func (p *perfRecord) finish(ctx context.Context) (string, error) {
	_ = p.k.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.k.done:
	case <-time.After(30 * time.Second):
		p.k.stop(time.Second)
		return "", fmt.Errorf("perf record did not stop")
	}
	var summary strings.Builder
	for _, rep := range []struct {
		name string
		args []string
		top  int
	}{
		{"self", []string{"--no-children", "--sort", "dso,sym"}, 25},
		{"inclusive", []string{"--children", "--sort", "sym"}, 40},
	} {
		args := append([]string{"report", "--stdio", "-i", p.data, "-g", "none", "--percent-limit", "0.5"}, rep.args...)
		out, err := exec.CommandContext(ctx, "perf", args...).Output()
		if err != nil {
			return "", fmt.Errorf("perf report: %w", err)
		}
		file := p.base + ".perf-" + rep.name + ".txt"
		if err := os.WriteFile(file, out, 0o644); err != nil {
			return "", err
		}
		fmt.Fprintf(&summary, "  %s (%s):\n", rep.name, file)
		n := 0
		for line := range bytes.Lines(out) {
			t := strings.TrimRight(string(line), "\n")
			if strings.HasPrefix(t, "#") || strings.TrimSpace(t) == "" {
				continue
			}
			if n++; n > rep.top {
				break
			}
			fmt.Fprintf(&summary, "    %s\n", strings.TrimSpace(t))
		}
	}
	return summary.String(), nil
}

// stop kills perf if it still runs.
func (p *perfRecord) stop() { p.k.stop(time.Second) }
