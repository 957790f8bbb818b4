package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/lab"
	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/evpnd/evpnd/containerlab/poll"
)

// Deadlines of the waits. They are generous for a loaded 2-core machine;
// a healthy fabric meets them in a fraction of the time (the tests log the
// figures).
const (
	convergeTimeout = 30 * time.Second // first BGP sessions and full tables
	changeTimeout   = 15 * time.Second // one change to reach every leaf
	pollInterval    = 50 * time.Millisecond
)

// fabric is one deployed lab of testdata/fabric.clab.yml with evpnd on
// every evpnd node.
type fabric struct {
	t   *testing.T
	lab *lab.Lab
	m   *model
	// at is where the hosts are now; tests update it when they move or
	// remove one.
	at placement
}

var labSeq atomic.Int32

// requireKernel skips the test unless it runs as root on a kernel with
// every link kind the fabric needs.
func requireKernel(t *testing.T) {
	t.Helper()
	netns.RequireRoot(t)
	for _, kind := range []string{"veth", "bridge", "vxlan"} {
		netns.RequireLinkKind(t, kind)
	}
	for _, tool := range []string{"ping", "bridge", "sysctl", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s on PATH: %v", tool, err)
		}
	}
}

// deployFabric deploys its own lab for the test and destroys it in
// t.Cleanup; if the test failed, the cleanup first logs every node's
// evpnd output and every leaf's FDB.
func deployFabric(t *testing.T) *fabric {
	t.Helper()
	return deployFabricFrom(t, topologyFile)
}

// deployFabricFrom is deployFabric with the topology file at path (a copy
// of testdata's, whose node configs a test may edit).
func deployFabricFrom(t *testing.T, path string) *fabric {
	t.Helper()
	topo, err := lab.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return deployTopology(t, topo)
}

// deployTopology is deployFabric for another topology in the fabric's
// style (evpnd.role and evpnd.vni labels, see loadModel).
func deployTopology(t *testing.T, topo *lab.Topology) *fabric {
	t.Helper()
	requireKernel(t)
	bin := evpndBinDir(t)
	m, err := loadModel(topo)
	if err != nil {
		t.Fatal(err)
	}
	// Short: namespace names are "<prefix>-<node>" and an operator sees
	// them in "ip netns".
	prefix := fmt.Sprintf("e2e%d%d", os.Getpid()%1000, labSeq.Add(1))
	start := time.Now()
	l, err := lab.Deploy(t.Context(), topo, lab.Options{
		Prefix:    prefix,
		WorkDir:   t.TempDir(),
		Path:      []string{bin},
		StopGrace: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("deploy %s: %v", topo.Path, err)
	}
	f := &fabric{t: t, lab: l, m: m, at: m.initial()}
	t.Cleanup(func() {
		if t.Failed() {
			f.dump()
		}
		start := time.Now()
		if err := l.Destroy(); err != nil {
			t.Errorf("destroy lab %s: %v", prefix, err)
		}
		t.Logf("lab %s destroyed in %v", prefix, time.Since(start).Round(time.Millisecond))
	})
	t.Logf("lab %s deployed in %v", prefix, time.Since(start).Round(time.Millisecond))
	return f
}

// exec runs argv in a node and returns its output; a failure is fatal.
func (f *fabric) exec(node string, argv ...string) string {
	f.t.Helper()
	out, err := f.lab.Exec(f.t.Context(), node, argv...)
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// sh runs a shell script in a node; a failure is fatal.
func (f *fabric) sh(node, script string) {
	f.t.Helper()
	f.exec(node, "sh", "-ec", script)
}

// fdb reads a leaf's FDB.
func (f *fabric) fdb(ctx context.Context, leaf string) ([]fdbEntry, error) {
	out, err := f.lab.Exec(ctx, leaf, "bridge", "-j", "fdb", "show")
	if err != nil {
		return nil, err
	}
	return parseFDB([]byte(out))
}

// checkFDB compares a leaf's FDB with what the model wants for the current
// placement; it returns nil when they agree.
func (f *fabric) checkFDB(ctx context.Context, leaf string) error {
	es, err := f.fdb(ctx, leaf)
	if err != nil {
		return err
	}
	if d := diff(observed(es, f.m.leaf(leaf)), f.m.want(leaf, f.at)); d != "" {
		return fmt.Errorf("%s FDB:%s", leaf, d)
	}
	return nil
}

// waitFDB waits until every given leaf (all when none) holds exactly the
// FDB the model wants, and returns how long that took.
func (f *fabric) waitFDB(timeout time.Duration, leafs ...string) time.Duration {
	f.t.Helper()
	if len(leafs) == 0 {
		for _, l := range f.m.Leafs {
			leafs = append(leafs, l.Name)
		}
	}
	return eventually(f.t, timeout, "FDB of "+strings.Join(leafs, ", ")+" as the topology implies", func() error {
		var errs []error
		for _, l := range leafs {
			errs = append(errs, f.checkFDB(f.t.Context(), l))
		}
		return errors.Join(errs...)
	})
}

// waitFlood waits until every leaf has its complete flood lists: the BGP
// sessions are up and every leaf's type-3 routes arrived.
func (f *fabric) waitFlood() time.Duration {
	f.t.Helper()
	return eventually(f.t, convergeTimeout, "flood lists on every leaf", func() error {
		var errs []error
		for _, lf := range f.m.Leafs {
			es, err := f.fdb(f.t.Context(), lf.Name)
			if err != nil {
				return err
			}
			got := observed(es, lf)
			for k := range f.m.want(lf.Name, placement{}).Owned {
				if !got.Owned[k] {
					errs = append(errs, fmt.Errorf("%s: missing %s", lf.Name, k))
				}
			}
		}
		return errors.Join(errs...)
	})
}

// converge waits for the flood lists, makes every placed host send
// traffic across the fabric (so that its leaf learns its MAC), and waits
// until every leaf's FDB is exactly what the topology implies.
func (f *fabric) converge() {
	f.t.Helper()
	start := time.Now()
	f.waitFlood()
	for _, h := range f.m.Hosts {
		if peer := f.peerOf(h); peer != nil {
			f.waitPing(h.Name, peer.IP.String())
		}
	}
	f.waitFDB(convergeTimeout)
	f.t.Logf("fabric converged in %v after deploy", time.Since(start).Round(time.Millisecond))
}

// peerOf returns a host in the same VNI behind another leaf, or nil.
func (f *fabric) peerOf(h *host) *host {
	a, ok := f.at[h.Name]
	if !ok {
		return nil
	}
	for _, o := range f.m.Hosts {
		if b, ok := f.at[o.Name]; ok && o.VNI == h.VNI && b.Leaf != a.Leaf {
			return o
		}
	}
	return nil
}

// ping sends count echo requests from a node to ip and returns an error
// unless every one is answered.
func (f *fabric) ping(ctx context.Context, from, ip string, count int) error {
	out, err := f.lab.Exec(ctx, from, "ping", "-n", "-c", fmt.Sprint(count), "-i", "0.2", "-W", "1", ip)
	if err != nil {
		return err
	}
	r, err := parsePing(out)
	if err != nil {
		return err
	}
	if r.Received < count {
		return fmt.Errorf("ping %s -> %s: %d of %d answered", from, ip, r.Received, count)
	}
	return nil
}

// pingUntil pings from a node to ip, one echo request at a time, until
// one is answered or timeout passes. It is safe to call from any
// goroutine.
func (f *fabric) pingUntil(ctx context.Context, from, ip string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f.ping(ctx, from, ip, 1)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %v: %w", timeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// waitPing waits until one ping from a node to ip is answered.
func (f *fabric) waitPing(from, ip string) {
	f.t.Helper()
	if err := f.pingUntil(f.t.Context(), from, ip, changeTimeout); err != nil {
		f.t.Fatalf("ping %s -> %s: %v", from, ip, err)
	}
}

// dump logs what a failed test needs: every node's evpnd output and every
// leaf's FDB (without the multicast entries of the NICs).
func (f *fabric) dump() {
	t := f.t
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range f.lab.Topology().Nodes {
		if n.Cmd == "" {
			continue
		}
		data, err := os.ReadFile(f.lab.LogPath(n.Name))
		if err != nil {
			t.Logf("==== %s log: %v", n.Name, err)
			continue
		}
		t.Logf("==== %s log (%s):\n%s", n.Name, f.lab.LogPath(n.Name), tail(string(data), 300))
	}
	for _, lf := range f.m.Leafs {
		out, err := f.lab.Exec(ctx, lf.Name, "bridge", "fdb", "show")
		if err != nil {
			t.Logf("==== %s bridge fdb show: %v", lf.Name, err)
			continue
		}
		var keep []string
		for _, line := range strings.Split(out, "\n") {
			if line != "" && !strings.HasPrefix(line, "33:33:") && !strings.HasPrefix(line, "01:00:5e:") {
				keep = append(keep, line)
			}
		}
		t.Logf("==== %s bridge fdb show:\n%s", lf.Name, strings.Join(keep, "\n"))
	}
}

// eventually polls cond until it returns nil and returns how long that
// took; after timeout the test fails with cond's last error.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	d, err := poll.Until(t.Context(), timeout, pollInterval, cond)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return d
}

// background is a command running in a lab node while the test does
// something else, such as a continuous ping.
type background struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func (b *background) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

// output returns what the command printed so far.
func (b *background) output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

// start runs argv in a node in the background; t.Cleanup kills it by PID
// if it still runs.
func (f *fabric) start(node string, argv ...string) *background {
	f.t.Helper()
	c, err := f.lab.Command(context.Background(), node, argv...)
	if err != nil {
		f.t.Fatal(err)
	}
	b := &background{cmd: c, done: make(chan struct{})}
	c.Stdout, c.Stderr = b, b
	if err := c.Start(); err != nil {
		f.t.Fatalf("%s: start %v: %v", node, argv, err)
	}
	go func() {
		b.err = c.Wait()
		close(b.done)
	}()
	f.t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			_ = syscall.Kill(c.Process.Pid, syscall.SIGKILL)
			<-b.done
		}
	})
	return b
}

// stop sends SIGINT (ping then prints its statistics) and waits for the
// command to exit.
func (b *background) stop(t *testing.T) {
	t.Helper()
	select {
	case <-b.done:
		return
	default:
	}
	if err := b.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatalf("interrupt pid %d: %v", b.cmd.Process.Pid, err)
	}
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("pid %d did not exit after SIGINT", b.cmd.Process.Pid)
	}
}
