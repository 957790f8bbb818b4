//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// usage is the memory and CPU use of a set of processes at one moment.
type usage struct {
	RSS int64         // VmRSS, bytes
	HWM int64         // VmHWM (peak RSS), bytes
	CPU time.Duration // user + system time since start
}

func (u usage) add(v usage) usage {
	return usage{RSS: u.RSS + v.RSS, HWM: u.HWM + v.HWM, CPU: u.CPU + v.CPU}
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Go supports (the kernel fixes it for the ABI).
const clockTick = 100

// parseStatus reads VmRSS and VmHWM (kB) from /proc/PID/status.
func parseStatus(data []byte) (rss, hwm int64, err error) {
	found := 0
	for line := range bytes.Lines(data) {
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst = &rss
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst = &hwm
		default:
			continue
		}
		f := bytes.Fields(line)
		if len(f) != 3 || string(f[2]) != "kB" {
			return 0, 0, fmt.Errorf("unexpected status line %q", bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(string(f[1]), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("status line %q: %w", bytes.TrimSpace(line), err)
		}
		*dst = kb * 1024
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("no VmRSS/VmHWM in status (a kernel thread or a zombie?)")
	}
	return rss, hwm, nil
}

// parseStatCPU returns utime + stime from /proc/PID/stat.
func parseStatCPU(data []byte) (time.Duration, error) {
	user, sys, err := parseStatTimes(data)
	return user + sys, err
}

// parseStatTimes returns utime and stime from /proc/PID/stat.
func parseStatTimes(data []byte) (user, sys time.Duration, err error) {
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses,
	// so fields are counted after the last ')'. utime and stime are fields
	// 14 and 15 of proc(5), i.e. the 12th and 13th after the comm.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, errors.New("malformed stat: no ')'")
	}
	f := bytes.Fields(data[i+1:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("malformed stat: %d fields after comm", len(f))
	}
	var t [2]time.Duration
	for j, s := range f[11:13] {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("malformed stat time %q: %w", s, err)
		}
		t[j] = time.Duration(n) * time.Second / clockTick
	}
	return t[0], t[1], nil
}

// sampleProcs sums the usage of pids.
func sampleProcs(pids ...int) (usage, error) {
	var total usage
	for _, pid := range pids {
		base := "/proc/" + strconv.Itoa(pid)
		st, err := os.ReadFile(base + "/status")
		if err != nil {
			return usage{}, fmt.Errorf("pid %d: %w", pid, err)
		}
		rss, hwm, err := parseStatus(st)
		if err != nil {
			return usage{}, fmt.Errorf("pid %d: %w", pid, err)
		}
		stat, err := os.ReadFile(base + "/stat")
		if err != nil {
			return usage{}, fmt.Errorf("pid %d: %w", pid, err)
		}
		cpu, err := parseStatCPU(stat)
		if err != nil {
			return usage{}, fmt.Errorf("pid %d: %w", pid, err)
		}
		total = total.add(usage{RSS: rss, HWM: hwm, CPU: cpu})
	}
	return total, nil
}
