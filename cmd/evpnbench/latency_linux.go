//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/evpnd/evpnd/containerlab/lab"
	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// latencyOptions configure the latency benchmark.
type latencyOptions struct {
	common  commonFlags
	N       int
	Gap     time.Duration
	Timeout time.Duration
}

// latSample is one MAC's journey, from the frame being sent in h1.
type latSample struct {
	MAC    evpn.MAC
	Learn  time.Duration // until leaf1's bridge reported the MAC on its access port
	Remote time.Duration // until leaf2's vxlan100 held it with dst leaf1
}

type latencyResult struct {
	Impl    string
	Samples []latSample
}

// remote returns the sorted remote latencies.
func (r latencyResult) remote() []time.Duration {
	out := make([]time.Duration, len(r.Samples))
	for i, s := range r.Samples {
		out[i] = s.Remote
	}
	slices.Sort(out)
	return out
}

func (r latencyResult) learn() []time.Duration {
	out := make([]time.Duration, len(r.Samples))
	for i, s := range r.Samples {
		out[i] = s.Learn
	}
	slices.Sort(out)
	return out
}

// latencyMAC is the i-th sample's MAC: 02:eb:01:00:xx:xx, apart from the
// burst's MACs.
func latencyMAC(i int) evpn.MAC { return evpn.MAC{0x02, 0xeb, 0x01, 0x00, byte(i >> 8), byte(i)} }

func runLatency(ctx context.Context, o latencyOptions, stdout, stderr io.Writer) error {
	res, err := latency(ctx, o, stderr)
	if len(res) > 0 {
		fmt.Fprint(stdout, latencyReport(o, res, machine()))
	}
	return err
}

// latency runs evpnd's fabric, then FRR's, and returns the results so far.
func latency(ctx context.Context, o latencyOptions, stderr io.Writer) (res []latencyResult, err error) {
	if o.N < 1 || o.N > 60000 {
		return nil, fmt.Errorf("--n %d: want 1-60000", o.N)
	}
	e, err := newEnv(ctx, o.common, stderr)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, e.close(err)) }()
	impls := []string{implEvpnd}
	if o.common.frr {
		impls = append(impls, implFRR)
	}
	for _, impl := range impls {
		fmt.Fprintf(stderr, "evpnbench: latency: %s, %d samples ...\n", impl, o.N)
		r, err := latencyOnce(ctx, e, o, impl)
		if err != nil {
			return res, fmt.Errorf("latency with %s: %w", impl, err)
		}
		res = append(res, r)
	}
	return res, nil
}

func latencyOnce(ctx context.Context, e *env, o latencyOptions, impl string) (r latencyResult, err error) {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	r.Impl = impl
	leaf1, leaf2 := leafLoopback(1), leafLoopback(2)
	var extra [2][]string
	if impl == implFRR {
		extra = [2][]string{frrDevices(leaf1, "eth2"), frrDevices(leaf2)}
	}
	l, err := e.deploy(ctx, "l"+impl[:1], latencyTopology("latency-"+impl, extra))
	if err != nil {
		return r, err
	}
	defer func() {
		if terr := e.teardown(l, "leaf1", "leaf2"); terr != nil && err == nil {
			err = terr
		}
	}()

	// The fabric: reflector first, so the leafs' first connection succeeds.
	switch impl {
	case implEvpnd:
		cfg := filepath.Join(l.WorkDir(), "rr.yaml")
		if err := os.WriteFile(cfg, []byte(evpndReflectorConfig()), 0o644); err != nil {
			return r, err
		}
		if _, err := e.start(l, "rr", l.LogPath("rr"), []string{e.evpnd, "run", "--config", cfg, "--cease-on-exit", "--api-socket", apiSocketFor(l.LogPath("rr"))}, e.evEnv); err != nil {
			return r, err
		}
		if err := waitListen(ctx, l, "rr"); err != nil {
			return r, err
		}
		for n, access := range [][]string{{"eth2"}, nil} {
			node := fmt.Sprintf("leaf%d", n+1)
			cfg := filepath.Join(l.WorkDir(), node+".yaml")
			if err := os.WriteFile(cfg, []byte(evpndLeafConfig(leafLoopback(n+1), access)), 0o644); err != nil {
				return r, err
			}
			if _, err := e.start(l, node, l.LogPath(node), []string{e.evpnd, "run", "--config", cfg, "--cease-on-exit", "--api-socket", apiSocketFor(l.LogPath(node))}, e.evEnv); err != nil {
				return r, err
			}
		}
	case implFRR:
		conf := frrBGPConf("rr", benchASN, rrAddr, []netip.Addr{leaf1, leaf2}, true)
		if _, err := e.startFRR(ctx, l, "rr", conf); err != nil {
			return r, err
		}
		for n := 1; n <= 2; n++ {
			node := fmt.Sprintf("leaf%d", n)
			conf := frrBGPConf(node, benchASN, leafLoopback(n), []netip.Addr{rrAddr}, false)
			if _, err := e.startFRR(ctx, l, node, conf); err != nil {
				return r, err
			}
		}
	}
	// Converged: each leaf floods VNI 100 to the other (type-3 both ways).
	if err := waitFlood(ctx, l, "leaf2", leaf1); err != nil {
		return r, err
	}
	if err := waitFlood(ctx, l, "leaf1", leaf2); err != nil {
		return r, err
	}

	remote, err := newMACWaiter(l, "leaf2", "vxlan100", false, leaf1)
	if err != nil {
		return r, err
	}
	defer remote.close()
	learned, err := newMACWaiter(l, "leaf1", "eth2", true, netip.Addr{})
	if err != nil {
		return r, err
	}
	defer learned.close()
	tx, err := newFrameSender(l.Node("h1"), "eth1")
	if err != nil {
		return r, err
	}
	defer tx.close()

	// Sample 0 warms the path up (first UPDATE, first netlink write) and
	// is not reported.
	for i := 0; i <= o.N; i++ {
		mac := latencyMAC(i)
		rc, lc := remote.expect(mac), learned.expect(mac)
		t0 := time.Now()
		if err := tx.send(mac); err != nil {
			return r, err
		}
		var s latSample
		s.MAC = mac
		select {
		case at := <-rc:
			s.Remote = at.Sub(t0)
		case err := <-remote.errc:
			return r, fmt.Errorf("leaf2 subscription: %w", err)
		case <-time.After(10 * time.Second):
			return r, fmt.Errorf("%v did not reach leaf2's FDB within 10 s (see the logs in %s)", mac, l.WorkDir())
		case <-ctx.Done():
			return r, ctx.Err()
		}
		select {
		case at := <-lc:
			s.Learn = at.Sub(t0)
		case <-time.After(time.Second):
			s.Learn = -1 // the learn event was missed; keep the sample
		}
		if i > 0 {
			r.Samples = append(r.Samples, s)
		}
		gap := time.Duration(float64(o.Gap) * (0.5 + rand.Float64()))
		select {
		case <-time.After(gap):
		case <-ctx.Done():
			return r, ctx.Err()
		}
	}
	return r, nil
}

// waitListen waits until node listens on TCP port 179.
func waitListen(ctx context.Context, l *lab.Lab, node string) error {
	return waitFor(ctx, 20*time.Second, 20*time.Millisecond, node+" to listen on port 179", func() (bool, error) {
		out, err := l.Exec(ctx, node, "ss", "-Hltn", "sport = :179")
		return err == nil && strings.TrimSpace(out) != "", nil
	})
}

// waitFlood waits until node's vxlan100 floods to vtep.
func waitFlood(ctx context.Context, l *lab.Lab, node string, vtep netip.Addr) error {
	return waitFor(ctx, 60*time.Second, 50*time.Millisecond, fmt.Sprintf("%s to flood VNI 100 to %s", node, vtep), func() (bool, error) {
		out, err := l.Exec(ctx, node, "bridge", "fdb", "show", "dev", "vxlan100")
		if err != nil {
			return false, nil // the device may not exist yet
		}
		return strings.Contains(out, "00:00:00:00:00:00 dst "+vtep.String()+" "), nil
	})
}

// macWaiter reports when given MACs appear on one device of a namespace.
type macWaiter struct {
	w       *fdbWatch
	ifindex int32
	master  bool       // wait for the bridge's entry, else the device's own
	dst     netip.Addr // required remote of a self entry, when valid
	cancel  context.CancelFunc
	errc    chan error
	done    chan struct{}

	mu      sync.Mutex
	pending map[evpn.MAC]chan time.Time
}

func newMACWaiter(l *lab.Lab, node, dev string, master bool, dst netip.Addr) (*macWaiter, error) {
	ns := l.Node(node)
	h, err := ns.Handle()
	if err != nil {
		return nil, err
	}
	lk, err := h.LinkByName(dev)
	h.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", node, dev, err)
	}
	w, err := watchFDB(ns, 8<<20)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &macWaiter{w: w, ifindex: int32(lk.Attrs().Index), master: master, dst: dst, cancel: cancel,
		errc: make(chan error, 1), done: make(chan struct{}), pending: map[evpn.MAC]chan time.Time{}}
	go func() {
		defer close(m.done)
		if err := w.Run(ctx, m.event); err != nil {
			m.errc <- err
		}
	}()
	return m, nil
}

func (m *macWaiter) event(ev *fdbEvent, at time.Time) {
	if ev.Del || ev.Ifindex != m.ifindex || ev.Master != m.master {
		return
	}
	if !m.master && m.dst.IsValid() && ev.Dst != m.dst {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if ch, ok := m.pending[ev.MAC]; ok {
		delete(m.pending, ev.MAC)
		ch <- at
	}
}

// expect registers mac; the channel receives the time it appears.
func (m *macWaiter) expect(mac evpn.MAC) <-chan time.Time {
	ch := make(chan time.Time, 1)
	m.mu.Lock()
	m.pending[mac] = ch
	m.mu.Unlock()
	return ch
}

func (m *macWaiter) close() {
	m.cancel()
	<-m.done
	m.w.Close()
}

// frameSender sends raw Ethernet frames out of one interface.
type frameSender struct {
	fd      int
	ifindex int
}

func newFrameSender(ns *netns.NS, dev string) (*frameSender, error) {
	h, err := ns.Handle()
	if err != nil {
		return nil, err
	}
	lk, err := h.LinkByName(dev)
	h.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", ns.Name, dev, err)
	}
	fd := -1
	err = ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0) // 0: send only
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("packet socket in %s: %w", ns.Name, err)
	}
	return &frameSender{fd: fd, ifindex: lk.Attrs().Index}, nil
}

// send sends one broadcast frame from src (EtherType 0x88b5, IEEE local
// experimental): the leaf's bridge learns src on its access port.
func (f *frameSender) send(src evpn.MAC) error {
	frame := learnFrame(src)
	sa := &unix.SockaddrLinklayer{Ifindex: f.ifindex, Halen: 6}
	copy(sa.Addr[:], frame[:6])
	if err := unix.Sendto(f.fd, frame, 0, sa); err != nil {
		return fmt.Errorf("send frame from %v: %w", src, err)
	}
	return nil
}

// learnFrame is a minimum-size broadcast Ethernet frame from src.
func learnFrame(src evpn.MAC) []byte {
	f := make([]byte, 60)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], src[:])
	f[12], f[13] = 0x88, 0xb5
	copy(f[14:], "evpnbench latency probe")
	return f
}

func (f *frameSender) close() { unix.Close(f.fd) }

func latencyReport(o latencyOptions, res []latencyResult, host string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nlatency: one MAC learned on leaf1 until it is in leaf2's FDB through the route reflector (%d samples each)\n", o.N)
	fmt.Fprintf(&b, "machine: %s\n", host)
	b.WriteString("clock: from h1 sending a frame from a new source MAC to leaf2's vxlan100 holding the MAC with dst leaf1\n" +
		"(learn: to leaf1's bridge reporting the MAC on eth2, the kernel's part).\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "fabric\tmin\tp50\tp90\tmax\tlearn p50\t")
	for _, r := range res {
		rem, lrn := r.remote(), r.learn()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Impl, msf(rem[0]), msf(percentile(rem, 50)),
			msf(percentile(rem, 90)), msf(rem[len(rem)-1]), msf(percentile(lrn, 50)))
	}
	tw.Flush()
	if len(res) == 2 {
		e, f := res[0].remote(), res[1].remote()
		fmt.Fprintf(&b, "\nevpnd/FRR: p50 %.3fx, p90 %.3fx\n",
			percentile(e, 50).Seconds()/percentile(f, 50).Seconds(), percentile(e, 90).Seconds()/percentile(f, 90).Seconds())
	}
	return b.String()
}

func msf(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
