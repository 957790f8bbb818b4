//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/evpnd/evpnd/containerlab/lab"
	"github.com/evpnd/evpnd/containerlab/netns"
	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// lister lists the MAC table of one loaded leaf.
type lister struct {
	e   *env
	l   *lab.Lab
	lf  *burstLeaf
	pid int // the daemon that serves the listings: evpnd, or zebra for vtysh
	// gnuTime is GNU time(1), which reports a command's own peak RSS; ""
	// when it is not installed (see runCounted).
	gnuTime string
	// metrics reads evpnd's /metrics (nil: FRR); allocOverhead is what
	// one scrape allocates itself, taken off each listing's figure.
	metrics       *http.Client
	allocOverhead int64
}

// newMetricsClient returns an HTTP client that connects from inside the
// namespace ns (the socket belongs to the namespace it was created in).
func newMetricsClient(ns *netns.NS) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var c net.Conn
				err := ns.Do(func() error {
					var d net.Dialer
					var err error
					c, err = d.DialContext(ctx, network, addr)
					return err
				})
				return c, err
			},
		},
	}
}

// goAlloc returns evpnd's go_memstats_alloc_bytes_total: the bytes its Go
// heap has allocated since it started, freed or not.
func (ls *lister) goAlloc(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ls.lf.metrics+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := ls.metrics.Do(req)
	if err != nil {
		return 0, fmt.Errorf("evpnd's metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("evpnd's metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("evpnd's metrics: %s", resp.Status)
	}
	return parseGoAlloc(body)
}

// parseGoAlloc finds go_memstats_alloc_bytes_total in a Prometheus text
// exposition.
func parseGoAlloc(body []byte) (int64, error) {
	const name = "go_memstats_alloc_bytes_total "
	for line := range bytes.Lines(body) {
		if v, ok := bytes.CutPrefix(line, []byte(name)); ok {
			f, err := strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
			if err != nil {
				return 0, fmt.Errorf("evpnd's metrics: %s: %w", bytes.TrimSpace(line), err)
			}
			return int64(f), nil
		}
	}
	return 0, errors.New("evpnd's metrics have no go_memstats_alloc_bytes_total")
}

// calibrate measures what a scrape of evpnd's metrics allocates itself:
// the smallest difference between consecutive scrapes.
func (ls *lister) calibrate(ctx context.Context) error {
	if ls.metrics == nil {
		return nil
	}
	prev, err := ls.goAlloc(ctx)
	if err != nil {
		return err
	}
	ls.allocOverhead = -1
	for range 3 {
		cur, err := ls.goAlloc(ctx)
		if err != nil {
			return err
		}
		if d := cur - prev; ls.allocOverhead < 0 || d < ls.allocOverhead {
			ls.allocOverhead = d
		}
		prev = cur
	}
	return nil
}

// findGNUTime returns the path of GNU time(1), or "" if it is missing.
func findGNUTime() string {
	p, err := exec.LookPath("time")
	if err != nil {
		return ""
	}
	out, err := exec.Command(p, "--version").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("GNU")) {
		return ""
	}
	return p
}

// run runs one listing of tool, metering the daemon that serves it (not
// for the floor).
func (ls *lister) run(ctx context.Context, tool string) (listSample, error) {
	s := listSample{Impl: ls.lf.impl, Tool: tool}
	var argv []string
	switch tool {
	case toolBridge:
		// bridge -n switches namespace itself: no "ip netns exec" needed.
		argv = []string{"bridge", "-n", ls.l.Namespace("leaf"), "fdb", "show", "dev", "vxlan100"}
	case toolNetlink:
		n, wall, err := netlinkDump(ls.l, "leaf", "vxlan100")
		s.Rows, s.Wall = n, wall
		return s, err
	case toolCtl:
		argv = []string{ls.e.evpnctl, "--socket", ls.lf.socket, "show", "evpn", "mac"}
	case toolCtlJSON:
		argv = []string{ls.e.evpnctl, "--socket", ls.lf.socket, "-o", "json", "show", "evpn", "mac"}
	case toolVtysh:
		argv = []string{"vtysh", "--vty_socket", ls.lf.frr.Dir, "-c", "show evpn mac vni all"}
	case toolVtyshJSON:
		argv = []string{"vtysh", "--vty_socket", ls.lf.frr.Dir, "-c", "show evpn mac vni all json"}
	case toolAPI:
	default:
		return s, fmt.Errorf("no listing %q", tool)
	}
	pid := ls.pid
	if tool == toolBridge {
		pid = 0 // the kernel's floor: no daemon serves it
	}
	var alloc0 int64
	scrape := pid != 0 && ls.metrics != nil
	if scrape {
		var err error
		if alloc0, err = ls.goAlloc(ctx); err != nil {
			return s, err
		}
	}
	cost, err := meterDaemon(pid, func() error {
		if argv == nil {
			return listAPI(ctx, ls.lf.socket, &s)
		}
		return ls.runCounted(ctx, argv, &s)
	})
	if err != nil {
		return s, err
	}
	if scrape {
		alloc1, err := ls.goAlloc(ctx)
		if err != nil {
			return s, err
		}
		cost.Alloc = max(0, alloc1-alloc0-ls.allocOverhead)
	}
	if pid != 0 {
		s.Daemon = &cost
	}
	return s, nil
}

// runCounted runs argv with its output counted (lines, bytes), as a pipe
// into wc(1) would, and records its wall time and, with GNU time, its peak
// RSS.
//
// The peak RSS comes from GNU time, not from evpnbench's own wait4: Go
// starts commands with vfork, and at exec Linux folds the high-water mark
// of the image being left, evpnbench's, into the child's ru_maxrss
// (exec_mmap, setmax_mm_hiwater_rss), so that ru_maxrss would be
// evpnbench's own peak whenever it is larger. GNU time forks from its own
// image of under 1 MB.
func (ls *lister) runCounted(ctx context.Context, argv []string, s *listSample) error {
	rssFile := ""
	if ls.gnuTime != "" {
		f, err := os.CreateTemp(ls.l.WorkDir(), "maxrss-")
		if err != nil {
			return err
		}
		f.Close()
		rssFile = f.Name()
		defer os.Remove(rssFile)
		argv = append([]string{ls.gnuTime, "-f", "%M", "-o", rssFile}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// No pager, whatever the caller's environment says.
	cmd.Env = append(os.Environ(), "VTYSH_PAGER=", "PAGER=cat")
	var out lineCounter
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	s.Wall = time.Since(start)
	s.Rows, s.Bytes = out.lines, out.bytes
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, bytes.TrimSpace(errb.Bytes()))
	}
	if rssFile != "" {
		data, err := os.ReadFile(rssFile)
		if err != nil {
			return err
		}
		// The last line; GNU time puts a note about a failed command
		// before it.
		f := strings.Fields(string(data))
		if len(f) == 0 {
			return fmt.Errorf("GNU time wrote no peak RSS for %s", strings.Join(argv, " "))
		}
		kb, err := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err != nil {
			return fmt.Errorf("GNU time's peak RSS %q: %w", f[len(f)-1], err)
		}
		s.ClientRSS = kb * 1024
	}
	return nil
}

// lineCounter is an io.Writer that counts bytes and lines.
type lineCounter struct {
	lines int
	bytes int64
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.lines += bytes.Count(p, []byte{'\n'})
	c.bytes += int64(len(p))
	return len(p), nil
}

// listAPI reads the whole MAC table with ListMACs over evpnd's socket, as
// a Go client of the API would: connect, one call, every page. The clock
// runs from the connect to the last page.
func listAPI(ctx context.Context, socket string, s *listSample) error {
	var read atomic.Int64
	dial := func(ctx context.Context, _ string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", socket)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, read: &read}, nil
	}
	start := time.Now()
	cc, err := grpc.NewClient("unix://"+socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithContextDialer(dial))
	if err != nil {
		return fmt.Errorf("evpnd's API at %s: %w", socket, err)
	}
	defer cc.Close()
	stream, err := evpndv1.NewEvpndServiceClient(cc).ListMACs(ctx, &evpndv1.ListMACsRequest{})
	if err != nil {
		return fmt.Errorf("ListMACs: %w", err)
	}
	for {
		page, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("ListMACs after %d rows: %w", s.Rows, err)
		}
		n := len(page.GetMacs())
		s.Rows += n
		s.Pages++
		s.MaxPage = max(s.MaxPage, n)
	}
	s.Wall = time.Since(start)
	s.Bytes = read.Load()
	return nil
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// netlinkDump times one AF_BRIDGE neighbour dump of dev in node through
// vishvananda/netlink, and returns the unicast entries on dev (a VXLAN
// device's own entries and its bridge's).
func netlinkDump(l *lab.Lab, node, dev string) (int, time.Duration, error) {
	h, err := l.Node(node).Handle()
	if err != nil {
		return 0, 0, err
	}
	defer h.Close()
	lk, err := h.LinkByName(dev)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", node, err)
	}
	start := time.Now()
	ns, err := h.NeighList(lk.Attrs().Index, unix.AF_BRIDGE)
	wall := time.Since(start)
	if err != nil {
		return 0, wall, fmt.Errorf("%s: neighbour dump of %s: %w", node, dev, err)
	}
	n := 0
	for _, x := range ns {
		if len(x.HardwareAddr) == 6 && x.HardwareAddr[0]&1 == 0 && x.LinkIndex == lk.Attrs().Index {
			n++
		}
	}
	return n, wall, nil
}

// daemonCost is what one listing cost the daemon that served it.
type daemonCost struct {
	Before, Peak, After int64         // VmRSS, bytes
	CPU                 time.Duration // utime + stime
	Sys                 time.Duration // stime alone: in the kernel, e.g. dumping its FDB
	Samples             int           // VmRSS samples taken during the listing
	// Alloc is what evpnd's Go heap allocated during the listing, from
	// its /metrics (go_memstats_alloc_bytes_total) before and after, less
	// what a scrape allocates itself; -1 for zebra, which has no such
	// counter.
	Alloc int64
}

// growth is the peak RSS during the listing over the RSS before it.
func (c daemonCost) growth() int64 { return c.Peak - c.Before }

// rssSampleEvery is how often VmRSS is sampled during a listing.
const rssSampleEvery = 10 * time.Millisecond

// meterDaemon runs fn while metering pid (0: none): VmRSS before, after and at its
// peak, and CPU (utime + stime, in ticks of 10 ms). The peak is the larger
// of VmRSS sampled every 10 ms and VmHWM, which is reset to the current
// RSS first (clear_refs 5, proc(5)) so that it is the listing's own peak,
// not the load's.
func meterDaemon(pid int, fn func() error) (daemonCost, error) {
	var c daemonCost
	if pid == 0 {
		return c, fn()
	}
	base := "/proc/" + strconv.Itoa(pid)
	sysTime := func() (time.Duration, error) {
		data, err := os.ReadFile(base + "/stat")
		if err != nil {
			return 0, err
		}
		_, sys, err := parseStatTimes(data)
		return sys, err
	}
	hwmReset := os.WriteFile(filepath.Join(base, "clear_refs"), []byte("5"), 0) == nil
	before, err := sampleProcs(pid)
	if err != nil {
		return c, err
	}
	sys0, err := sysTime()
	if err != nil {
		return c, err
	}
	stop, done := make(chan struct{}), make(chan struct{})
	peak, samples := before.RSS, 0
	go func() {
		defer close(done)
		t := time.NewTicker(rssSampleEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if st, err := os.ReadFile(base + "/status"); err == nil {
				if rss, _, err := parseStatus(st); err == nil {
					peak, samples = max(peak, rss), samples+1
				}
			}
		}
	}()
	ferr := fn()
	close(stop)
	<-done
	after, err := sampleProcs(pid)
	if err != nil {
		return c, errors.Join(ferr, err)
	}
	sys1, err := sysTime()
	if err != nil {
		return c, errors.Join(ferr, err)
	}
	peak = max(peak, after.RSS)
	if hwmReset {
		peak = max(peak, after.HWM)
	}
	return daemonCost{Before: before.RSS, Peak: peak, After: after.RSS, CPU: after.CPU - before.CPU, Sys: sys1 - sys0,
		Samples: samples, Alloc: -1}, ferr
}
