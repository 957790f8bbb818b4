//go:build linux

package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/evpnd/evpnd/containerlab/lab"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// feederCommand is the hidden first argument that makes evpnbench run as
// the burst source inside the reflector's namespace (a GoBGP server must
// live in one namespace, which only a whole process can guarantee).
const feederCommand = "__feeder"

// feederConfig is the burst source's configuration, passed on its command
// line.
type feederConfig struct {
	ASN       uint32
	RouterID  netip.Addr // also the listen and session source address
	Peer      netip.Addr // the leaf under test
	Routes    int        // type-2 routes
	VTEPs     int        // remote VTEPs, FirstVTEP and up
	FirstVTEP netip.Addr
	VNI       uint32
}

func (c feederConfig) args() []string {
	return []string{
		"-asn", strconv.FormatUint(uint64(c.ASN), 10),
		"-router-id", c.RouterID.String(),
		"-peer", c.Peer.String(),
		"-routes", strconv.Itoa(c.Routes),
		"-vteps", strconv.Itoa(c.VTEPs),
		"-first-vtep", c.FirstVTEP.String(),
		"-vni", strconv.FormatUint(uint64(c.VNI), 10),
	}
}

func parseFeederArgs(args []string) (feederConfig, error) {
	var c feederConfig
	fs := flag.NewFlagSet(feederCommand, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asn := fs.Uint("asn", 65000, "")
	rid := fs.String("router-id", "", "")
	peer := fs.String("peer", "", "")
	fs.IntVar(&c.Routes, "routes", 100_000, "")
	fs.IntVar(&c.VTEPs, "vteps", 10, "")
	first := fs.String("first-vtep", "10.0.0.10", "")
	vni := fs.Uint("vni", 100, "")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var err error
	if c.RouterID, err = netip.ParseAddr(*rid); err != nil {
		return c, fmt.Errorf("-router-id: %w", err)
	}
	if c.Peer, err = netip.ParseAddr(*peer); err != nil {
		return c, fmt.Errorf("-peer: %w", err)
	}
	if c.FirstVTEP, err = netip.ParseAddr(*first); err != nil {
		return c, fmt.Errorf("-first-vtep: %w", err)
	}
	c.ASN, c.VNI = uint32(*asn), uint32(*vni)
	if c.Routes < 1 || c.Routes > 1<<24 || c.VTEPs < 1 || c.VTEPs > 200 || c.VNI == 0 || c.VNI >= 1<<24 {
		return c, fmt.Errorf("want 1-%d routes, 1-200 VTEPs and a VNI of 1-%d", 1<<24, 1<<24-1)
	}
	return c, nil
}

// burstMAC is the i-th MAC of the burst: locally administered unicast
// 02:eb:00:xx:xx:xx, distinct for up to 2^24 routes.
func burstMAC(i int) evpn.MAC {
	return evpn.MAC{0x02, 0xeb, 0x00, byte(i >> 16), byte(i >> 8), byte(i)}
}

// burstVTEP is the v-th remote VTEP.
func burstVTEP(c feederConfig, v int) netip.Addr {
	a := c.FirstVTEP
	for range v {
		a = a.Next()
	}
	return a
}

// burstRoutes are the routes the source announces: c.Routes MAC-only
// type-2 routes round-robin over the VTEPs, each VTEP with its own RD
// (vtep:VNI) as a real leaf would use, auto RT ASN:VNI, VXLAN
// encapsulation; and one type-3 route per VTEP (the flood list).
func burstRoutes(c feederConfig) []*evpn.Route {
	rts := []evpn.RT{evpn.AutoRT(c.ASN, c.VNI)}
	vteps := make([]netip.Addr, c.VTEPs)
	rds := make([]evpn.RD, c.VTEPs)
	for v := range vteps {
		vteps[v] = burstVTEP(c, v)
		rds[v] = evpn.RDFromIP(vteps[v], uint16(c.VNI))
	}
	out := make([]*evpn.Route, 0, c.Routes+c.VTEPs)
	for v := range vteps {
		out = append(out, evpn.LocalIMETRoute(rds[v], c.VNI, vteps[v], rts))
	}
	for i := range c.Routes {
		v := i % c.VTEPs
		out = append(out, evpn.LocalMACRoute(rds[v], c.VNI, burstMAC(i), vteps[v], rts, 0, false))
	}
	return out
}

// feederMain runs the burst source. Protocol with the parent, one line
// each: it prints "ready <routes>" once every route is in its RIB, waits
// for "go" on stdin, adds the leaf as a route-reflector client (it dials
// the leaf every second until the session is up), prints "established
// <unix-nanoseconds>" when the session reaches Established, then runs
// until stdin closes. Errors are printed as "error <text>".
func feederMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stdout, "error %v\n", err)
		return 1
	}
	c, err := parseFeederArgs(args)
	if err != nil {
		return fail(err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	srv, err := speaker.New(speaker.Config{
		RouterID:        c.RouterID,
		ASN:             c.ASN,
		ListenAddresses: []string{c.RouterID.String()},
		RouteReflector:  true,
		ConnectRetry:    time.Second,
		Logger:          log,
	})
	if err != nil {
		return fail(err)
	}
	if err := srv.Start(ctx); err != nil {
		return fail(err)
	}
	defer func() { _ = srv.Stop(ctx, false) }()
	routes := burstRoutes(c)
	t0 := time.Now()
	if err := srv.Announce(ctx, routes); err != nil {
		return fail(err)
	}
	fmt.Fprintf(stderr, "feeder: %d routes in the RIB in %v\n", len(routes), time.Since(t0).Round(time.Millisecond))
	fmt.Fprintf(stdout, "ready %d\n", c.Routes)

	in := bufio.NewScanner(stdin)
	if !in.Scan() || strings.TrimSpace(in.Text()) != "go" {
		return fail(fmt.Errorf("expected \"go\" on stdin"))
	}
	err = srv.AddNeighbor(ctx, speaker.Neighbor{
		Address: c.Peer, ASN: c.ASN, LocalAddress: c.RouterID, RRClient: true, Description: "leaf under test",
	})
	if err != nil {
		return fail(err)
	}
	// Poll the session state: a watch would replay and filter the whole
	// RIB and compete with the burst for the CPU. Polling stops once the
	// session is up.
	for {
		ps, err := srv.Peers(ctx)
		if err != nil {
			return fail(err)
		}
		if len(ps) == 1 && ps[0].State == speaker.PeerStateEstablished {
			fmt.Fprintf(stdout, "established %d\n", time.Now().UnixNano())
			break
		}
		time.Sleep(time.Millisecond)
	}
	for in.Scan() { // until the parent closes stdin or exits
	}
	return 0
}

// feederArgv is how the harness starts the feeder: this executable with
// the hidden command. Tests replace it (the test binary has no cobra root).
var feederArgv = func() ([]string, []string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	return []string{exe, feederCommand}, nil, nil
}

// feeder is the running burst source.
type feeder struct {
	k   *child
	in  io.WriteCloser
	out *bufio.Scanner
}

func (e *env) startFeeder(ctx context.Context, l *lab.Lab, fc feederConfig) (*feeder, error) {
	argv, env, err := feederArgv()
	if err != nil {
		return nil, err
	}
	c, err := l.Command(context.Background(), "rr", append(argv, fc.args()...)...)
	if err != nil {
		return nil, err
	}
	c.Env = append(c.Env, env...)
	logf, err := os.OpenFile(l.LogPath("rr"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	c.Stderr = logf
	in, err := c.StdinPipe()
	if err != nil {
		return nil, err
	}
	outp, err := c.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	k, err := e.run("rr:feeder", c)
	if err != nil {
		return nil, err
	}
	f := &feeder{k: k, in: in, out: bufio.NewScanner(outp)}
	line, err := f.line(ctx)
	if err != nil {
		return nil, err
	}
	if want := fmt.Sprintf("ready %d", fc.Routes); line != want {
		return nil, fmt.Errorf("burst source: %q, want %q", line, want)
	}
	return f, nil
}

// line reads the next line from the feeder, giving up with ctx.
func (f *feeder) line(ctx context.Context) (string, error) {
	ch := make(chan bool, 1)
	go func() { ch <- f.out.Scan() }()
	select {
	case ok := <-ch:
		if !ok {
			return "", fmt.Errorf("burst source exited (%v)", f.out.Err())
		}
		s := f.out.Text()
		if msg, isErr := strings.CutPrefix(s, "error "); isErr {
			return "", fmt.Errorf("burst source: %s", msg)
		}
		return s, nil
	case <-ctx.Done():
		f.k.stop(time.Second) // unblocks the scanner
		<-ch
		return "", fmt.Errorf("burst source: %w", ctx.Err())
	}
}

// start opens the session and returns when it is established.
func (f *feeder) start(ctx context.Context) (time.Time, error) {
	if _, err := io.WriteString(f.in, "go\n"); err != nil {
		return time.Time{}, fmt.Errorf("burst source: %w", err)
	}
	line, err := f.line(ctx)
	if err != nil {
		return time.Time{}, err
	}
	ns, ok := strings.CutPrefix(line, "established ")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil {
		return time.Time{}, fmt.Errorf("burst source: unexpected %q", line)
	}
	return time.Unix(0, n), nil
}

func (f *feeder) failed() <-chan error { return nil }

func (f *feeder) close() {
	_ = f.in.Close()
	f.k.stop(3 * time.Second)
}
