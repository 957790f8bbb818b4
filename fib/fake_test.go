package fib

import (
	"context"
	"errors"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/poll"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// fakeKernel models the parts of the Linux bridge/VXLAN FDB that fib relies
// on, in memory: a VXLAN entry per (dev, MAC) with a list of remotes and a
// flag, and a bridge entry per MAC with its port and flag.
type fakeKernel struct {
	mu      sync.Mutex
	devs    map[string]bool // existing VXLAN devices
	vxlan   map[devMAC]*fakeVXLAN
	bridge  map[evpn.MAC]fakeBridge
	failSet map[evpn.MAC]int // remaining failures for sets of a MAC
	dumpErr int              // remaining Dump failures
	log     []string         // applied ops
	dumps   [][]string       // devices asked for, per Dump
}

type devMAC struct {
	dev string
	mac evpn.MAC
}

type fakeVXLAN struct {
	dsts []netip.Addr
	ext  bool
}

type fakeBridge struct {
	port   string
	ext    bool
	sticky bool
}

func newFakeKernel(devs ...string) *fakeKernel {
	k := &fakeKernel{
		devs:    map[string]bool{},
		vxlan:   map[devMAC]*fakeVXLAN{},
		bridge:  map[evpn.MAC]fakeBridge{},
		failSet: map[evpn.MAC]int{},
	}
	for _, d := range devs {
		k.devs[d] = true
	}
	return k
}

var errFake = errors.New("fake: injected failure")

func (k *fakeKernel) Dump(_ context.Context, vnis []VNIDevices) ([]KernelEntry, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var names []string
	for _, v := range vnis {
		names = append(names, v.VXLAN)
	}
	sort.Strings(names)
	k.dumps = append(k.dumps, names)
	if k.dumpErr > 0 {
		k.dumpErr--
		return nil, errFake
	}
	var out []KernelEntry
	for _, v := range vnis {
		if k.devs[v.VXLAN] {
			out = append(out, KernelEntry{VNI: v.VNI, Dev: v.VXLAN, Device: true})
		}
		for dm, e := range k.vxlan {
			if dm.dev != v.VXLAN {
				continue
			}
			for _, d := range e.dsts {
				out = append(out, KernelEntry{VNI: v.VNI, Dev: dm.dev, MAC: dm.mac, VTEP: d, Self: true, ExternLearn: e.ext})
			}
		}
		for m, b := range k.bridge {
			switch {
			case b.port == v.VXLAN:
				out = append(out, KernelEntry{VNI: v.VNI, Dev: b.port, MAC: m, ExternLearn: b.ext, Sticky: b.sticky})
			case !b.ext && !k.devs[b.port]:
				// learned on an access port (of every VNI's bridge:
				// the fake has one bridge)
				out = append(out, KernelEntry{VNI: v.VNI, Dev: v.VXLAN, MAC: m, Access: true})
			}
		}
	}
	return out, nil
}

func (k *fakeKernel) Apply(_ context.Context, ops []Op) []error {
	k.mu.Lock()
	defer k.mu.Unlock()
	errs := make([]error, len(ops))
	for i, op := range ops {
		e := op.Entry
		if !k.devs[e.Dev] {
			if op.Kind == OpSet {
				errs[i] = errors.New("fake: no such device " + e.Dev)
			}
			continue
		}
		dm := devMAC{e.Dev, e.MAC}
		switch {
		case op.Kind == OpSet && k.failSet[e.MAC] > 0:
			k.failSet[e.MAC]--
			errs[i] = errFake
			continue
		case op.Kind == OpSet && e.IsFlood():
			v := k.vxlan[dm]
			if v == nil {
				v = &fakeVXLAN{ext: true}
				k.vxlan[dm] = v
			}
			if !containsAddr(v.dsts, e.VTEP) {
				v.dsts = append(v.dsts, e.VTEP)
			}
		case op.Kind == OpSet:
			k.bridge[e.MAC] = fakeBridge{port: e.Dev, ext: true, sticky: e.Sticky}
			v := k.vxlan[dm]
			if v == nil || len(v.dsts) == 0 {
				k.vxlan[dm] = &fakeVXLAN{dsts: []netip.Addr{e.VTEP}, ext: true}
			} else {
				v.dsts[0], v.ext = e.VTEP, true
			}
		case op.Kind == OpDelete:
			if op.Master && !e.IsFlood() {
				if b, ok := k.bridge[e.MAC]; ok && b.port == e.Dev {
					delete(k.bridge, e.MAC)
				}
			}
			if v := k.vxlan[dm]; v != nil && (op.Self || e.IsFlood()) {
				if !e.VTEP.IsValid() {
					delete(k.vxlan, dm)
				} else if j := indexAddr(v.dsts, e.VTEP); j >= 0 {
					v.dsts = append(v.dsts[:j], v.dsts[j+1:]...)
					if len(v.dsts) == 0 {
						delete(k.vxlan, dm)
					}
				}
			}
		}
		k.log = append(k.log, op.String())
	}
	return errs
}

func containsAddr(s []netip.Addr, a netip.Addr) bool { return indexAddr(s, a) >= 0 }

func indexAddr(s []netip.Addr, a netip.Addr) int {
	for i, x := range s {
		if x == a {
			return i
		}
	}
	return -1
}

// put installs entries by hand, as an earlier run or an operator would.
func (k *fakeKernel) putMAC(dev string, m evpn.MAC, vtep netip.Addr, ext bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.vxlan[devMAC{dev, m}] = &fakeVXLAN{dsts: []netip.Addr{vtep}, ext: ext}
	k.bridge[m] = fakeBridge{port: dev, ext: ext}
}

// learnLocal does what the bridge does when a frame from m arrives on an
// access port: its entry for m moves to that port and loses extern_learn.
// The VXLAN entry is not touched.
func (k *fakeKernel) learnLocal(m evpn.MAC, port string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.bridge[m] = fakeBridge{port: port}
}

func (k *fakeKernel) putFlood(dev string, vtep netip.Addr) {
	k.mu.Lock()
	defer k.mu.Unlock()
	dm := devMAC{dev, evpn.MAC{}}
	if k.vxlan[dm] == nil {
		k.vxlan[dm] = &fakeVXLAN{}
	}
	k.vxlan[dm].dsts = append(k.vxlan[dm].dsts, vtep)
}

// state renders the fake's FDB like `bridge fdb show`, sorted.
func (k *fakeKernel) state() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var lines []string
	for dm, v := range k.vxlan {
		for _, d := range v.dsts {
			l := dm.mac.String() + " dev " + dm.dev + " dst " + d.String() + " self"
			if v.ext {
				l += " extern_learn"
			}
			lines = append(lines, l)
		}
	}
	for m, b := range k.bridge {
		l := m.String() + " dev " + b.port + " master"
		if b.ext {
			l += " extern_learn"
		}
		lines = append(lines, l)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func (k *fakeKernel) applied() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.log...)
}

// Shared helpers for the pure tests.

func mac(tb testing.TB, s string) evpn.MAC {
	tb.Helper()
	m, err := evpn.ParseMAC(s)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// macN is the n-th test MAC 02:00:xx:xx:xx:xx.
func macN(n int) evpn.MAC {
	return evpn.MAC{0x02, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	if _, err := poll.Until(context.Background(), 10*time.Second, 2*time.Millisecond, poll.Bool(cond)); err != nil {
		tb.Fatalf("waiting for %s: %v", what, err)
	}
}

// runReconciler starts r.Run and stops it in Cleanup, or earlier through
// the returned func, which waits for Run to return.
func runReconciler(tb testing.TB, r *Reconciler) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
	}
	tb.Cleanup(stop)
	return stop
}

// settled reports whether the reconciler has read the kernel and has no
// work left.
func settled(d *Desired, r *Reconciler) bool {
	s := r.Stats()
	r.kevMu.Lock()
	events := len(r.kev)
	r.kevMu.Unlock()
	return r.idle.Load() && s.Resyncs > 0 && d.Dirty() == 0 && s.Pending == 0 && events == 0 &&
		!d.devicesPending() && !r.resyncReq.Load() && (!r.markSynced.Load() || r.Synced())
}

// gatedKernel wraps a Kernel. After hold, the next Apply stops until it is
// released, so that a test can change Desired while the reconciler is busy
// and the changes coalesce as they do under load.
type gatedKernel struct {
	Kernel
	mu      sync.Mutex
	entered chan struct{} // closed when the held Apply starts; nil when not armed
	release chan struct{}
}

func (g *gatedKernel) Apply(ctx context.Context, ops []Op) []error {
	g.mu.Lock()
	entered, release := g.entered, g.release
	g.entered, g.release = nil, nil
	g.mu.Unlock()
	if entered != nil {
		close(entered)
		select {
		case <-release:
		case <-ctx.Done():
		}
	}
	return g.Kernel.Apply(ctx, ops)
}

// whileBusy makes the reconciler busy in Apply with a write of busy (a MAC
// of VNI 100 not otherwise used), runs mutate meanwhile and lets the
// reconciler go on. The keys mutate touches are taken in one later batch,
// with their final value only.
func whileBusy(tb testing.TB, g *gatedKernel, d *Desired, busy evpn.MAC, mutate func()) {
	tb.Helper()
	entered, release := make(chan struct{}), make(chan struct{})
	g.mu.Lock()
	g.entered, g.release = entered, release
	g.mu.Unlock()
	must(tb, d.SetMAC(100, busy, ip("10.0.0.99")))
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		tb.Fatal("timed out waiting for the reconciler to apply")
	}
	mutate()
	close(release)
}
