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
	// Burst: type-2 routes a raw BGP source sends leaf2 directly while
	// the samples run (0: none).
	Burst int
}

// latSample is one MAC's journey, from the frame being sent in h1.
type latSample struct {
	MAC    evpn.MAC
	Learn  time.Duration // until leaf1's bridge reported the MAC on its access port
	Remote time.Duration // until leaf2's vxlan100 held it with dst leaf1
	// DuringBurst: the frame was sent after the burst's session came up
	// and before leaf2's kernel held every MAC of the burst.
	DuringBurst bool
}

type latencyResult struct {
	Impl    string
	Samples []latSample
	// With --burst: from the burst's session up to leaf2's kernel holding
	// all of it (0: not within the run).
	BurstTime time.Duration
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

// remoteDuringBurst returns the sorted remote latencies of the samples
// sent while the burst ran.
func (r latencyResult) remoteDuringBurst() []time.Duration {
	var out []time.Duration
	for _, s := range r.Samples {
		if s.DuringBurst {
			out = append(out, s.Remote)
		}
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
	var raw []byte
	if o.Burst > 0 {
		c := feederConfig{ASN: benchASN, RouterID: burstSrcAddr, Peer: leafLoopback(2), Routes: o.Burst,
			VTEPs: 10, FirstVTEP: firstRemote, VNI: burstVNI}
		if raw, _, err = rawUpdates(c, burstSrcAddr, 0); err != nil {
			return nil, err
		}
	}
	for _, impl := range impls {
		fmt.Fprintf(stderr, "evpnbench: latency: %s, %d samples, burst %d ...\n", impl, o.N, o.Burst)
		r, err := latencyOnce(ctx, e, o, impl, raw)
		if err != nil {
			return res, fmt.Errorf("latency with %s: %w", impl, err)
		}
		res = append(res, r)
	}
	return res, nil
}

func latencyOnce(ctx context.Context, e *env, o latencyOptions, impl string, raw []byte) (r latencyResult, err error) {
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
			var extra []netip.Addr
			if n == 1 && o.Burst > 0 {
				extra = []netip.Addr{burstSrcAddr}
			}
			if err := os.WriteFile(cfg, []byte(evpndLeafConfig(leafLoopback(n+1), access, extra...)), 0o644); err != nil {
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
			peers := []netip.Addr{rrAddr}
			if n == 2 && o.Burst > 0 {
				peers = append(peers, burstSrcAddr)
			}
			conf := frrBGPConf(node, benchASN, leafLoopback(n), peers, false)
			if n == 2 && o.Burst > 0 {
				// The burst source dials; bgpd must not dial it (the
				// reflector's bgpd listens on every address of rr).
				conf = strings.Replace(conf, " !\n address-family", " neighbor "+burstSrcAddr.String()+" passive\n !\n address-family", 1)
			}
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

	rcvbuf := 8 << 20
	if o.Burst > 0 {
		rcvbuf = 256 << 20 // two notifications per burst MAC
	}
	remote, err := newMACWaiter(l, "leaf2", "vxlan100", false, leaf1, rcvbuf)
	if err != nil {
		return r, err
	}
	defer remote.close()
	learned, err := newMACWaiter(l, "leaf1", "eth2", true, netip.Addr{}, 8<<20)
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
	// is not reported. With a burst, it is sent before the burst starts.
	var burstUp time.Time
	var burstDone <-chan time.Time
	for i := 0; i <= o.N; i++ {
		if i == 1 && o.Burst > 0 {
			burstDone = remote.countOthers(o.Burst)
			src := &rawSource{ns: l.Node("rr"), local: burstSrcAddr, peer: leaf2, asn: benchASN, msgs: raw}
			defer src.close()
			if burstUp, err = src.start(ctx); err != nil {
				return r, fmt.Errorf("burst source: %w", err)
			}
		}
		mac := latencyMAC(i)
		rc, lc := remote.expect(mac), learned.expect(mac)
		t0 := time.Now()
		if err := tx.send(mac); err != nil {
			return r, err
		}
		var s latSample
		s.MAC = mac
		if burstDone != nil && r.BurstTime == 0 {
			select {
			case at := <-burstDone:
				r.BurstTime = at.Sub(burstUp)
			default:
				s.DuringBurst = true
			}
		}
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
		e.log.Debug("latency sample", "i", i, "mac", mac, "remote", s.Remote, "learn", s.Learn, "during_burst", s.DuringBurst)
		if i > 0 {
			r.Samples = append(r.Samples, s)
		}
		if burstDone != nil && r.BurstTime == 0 && i == o.N {
			// The last sample: wait for the burst to end, for its time.
			select {
			case at := <-burstDone:
				r.BurstTime = at.Sub(burstUp)
			case err := <-remote.errc:
				return r, fmt.Errorf("leaf2 subscription: %w", err)
			case <-ctx.Done():
				return r, fmt.Errorf("burst of %d routes not in leaf2's kernel: %w", o.Burst, ctx.Err())
			}
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
	// countOthers: distinct MACs seen with another dst, until want.
	others     map[evpn.MAC]struct{}
	othersWant int
	othersDone chan time.Time
}

// countOthers returns a channel that receives the time the device holds
// want distinct MACs whose dst is not m.dst (a burst's).
func (m *macWaiter) countOthers(want int) <-chan time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.others, m.othersWant, m.othersDone = make(map[evpn.MAC]struct{}, want), want, make(chan time.Time, 1)
	return m.othersDone
}

func newMACWaiter(l *lab.Lab, node, dev string, master bool, dst netip.Addr, rcvbuf int) (*macWaiter, error) {
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
	w, err := watchFDB(ns, rcvbuf)
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
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.others != nil && len(m.others) < m.othersWant {
			m.others[ev.MAC] = struct{}{}
			if len(m.others) == m.othersWant {
				m.othersDone <- at
			}
		}
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
	if o.Burst > 0 {
		fmt.Fprintf(&b, "\nwhile a raw source sent leaf2 %d type-2 routes directly (samples sent after its session came up and\n"+
			"before leaf2's kernel held all of them; burst: its time into leaf2's kernel):\n\n", o.Burst)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "fabric\tsamples\tmin\tp50\tp90\tmax\tburst\t")
		var p50 []time.Duration
		for _, r := range res {
			d := r.remoteDuringBurst()
			if len(d) == 0 {
				fmt.Fprintf(tw, "%s\t0\t-\t-\t-\t-\t%s\t\n", r.Impl, msf(r.BurstTime))
				continue
			}
			p50 = append(p50, percentile(d, 50))
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", r.Impl, len(d), msf(d[0]), msf(percentile(d, 50)),
				msf(percentile(d, 90)), msf(d[len(d)-1]), msf(r.BurstTime))
		}
		tw.Flush()
		if len(p50) == 2 {
			fmt.Fprintf(&b, "\nevpnd/FRR during the burst: p50 %.3fx\n", p50[0].Seconds()/p50[1].Seconds())
		}
	}
	return b.String()
}

func msf(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
