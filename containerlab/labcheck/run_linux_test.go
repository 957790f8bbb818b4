package labcheck

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/lab"
)

// Timeouts of the checks: the fabric converges within seconds, these are
// generous bounds for a loaded 2-core machine.
const (
	convergeTimeout = 90 * time.Second
	macTimeout      = 30 * time.Second
)

// goBuild builds evpnd and evpnctl into dir, statically (CGO_ENABLED=0)
// so the same binaries run on the host and in the Debian image.
func goBuild(dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("no go command to build evpnd with: %w", err)
	}
	c := exec.Command(goBin, "build", "-o", dir+string(filepath.Separator),
		"github.com/evpnd/evpnd/cmd/evpnd", "github.com/evpnd/evpnd/cmd/evpnctl")
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

var tmpBin struct {
	once sync.Once
	dir  string
	err  error
}

// binDir builds evpnd and evpnctl once per test binary into a temporary
// directory, removed by TestMain.
func binDir(t *testing.T) string {
	t.Helper()
	tmpBin.once.Do(func() {
		tmpBin.dir, tmpBin.err = os.MkdirTemp("", "evt-labcheck-bin-")
		if tmpBin.err == nil {
			tmpBin.err = goBuild(tmpBin.dir)
		}
	})
	if tmpBin.err != nil {
		t.Fatalf("build evpnd and evpnctl: %v", tmpBin.err)
	}
	return tmpBin.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if tmpBin.dir != "" {
		os.RemoveAll(tmpBin.dir)
	}
	os.Exit(code)
}

// usesFRR reports whether a topology runs FRR on some node.
func usesFRR(topo *lab.Topology) bool {
	for _, n := range topo.Nodes {
		if strings.Contains(n.Cmd, "frr-node.sh") {
			return true
		}
	}
	return false
}

// checkFabric runs a deployed topology's connectivity matrix and MAC check.
func checkFabric(t *testing.T, p *Plan, r Runner) {
	t.Helper()
	ctx := context.Background()
	res, err := p.Matrix(ctx, r, convergeTimeout)
	if err != nil {
		t.Fatalf("matrix: %v", err)
	}
	for _, f := range res.Failures {
		t.Error(f)
	}
	t.Logf("matrix: %d ordered pairs reach each other in their VNI, %d pairs in different VNIs routed both ways (%d over IPv6 too), %d pairs stay apart at layer 2 (%v)", len(res.Reached), len(res.Routed), res.Routed6, len(res.Isolated), res.Took.Round(time.Millisecond))
	if t.Failed() {
		t.FailNow()
	}
	if err := p.CheckMACs(ctx, r, macTimeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("MAC tables of %d leafs: exactly the hosts' MACs, none temporary", len(p.Leafs))
}

// checkSpineKill kills the first spine while pings run, reports the loss,
// and checks that the leafs route over the other spines only and that the
// matrix still holds.
func checkSpineKill(t *testing.T, topo *lab.Topology, p *Plan, r Runner, command Commander, kill func(spine string) error) {
	t.Helper()
	if len(p.Spines) < 2 {
		return
	}
	ctx := context.Background()
	dead := p.Spines[0]
	before, err := forwarded(ctx, r, dead)
	if err != nil {
		t.Fatal(err)
	}
	var carried int
	rec := &routeRecorder{}
	flows, err := p.KillDuring(ctx, command, func() error {
		n, err := forwarded(ctx, r, dead)
		if err != nil {
			return err
		}
		carried = n - before
		rec.start(ctx, r, p.Leafs)
		return kill(dead)
	})
	rec.stop()
	// Layer-4 ECMP spreads the streams' directions over both spines; that
	// none crossed the one about to die would mean no ECMP.
	t.Logf("%s forwarded %d packets of the streams before it was killed", dead, carried)
	if carried == 0 {
		t.Errorf("%s forwarded none of the ping streams: the leafs do not spread traffic over both spines", dead)
	}
	slow := false
	for _, f := range flows {
		t.Logf("%s killed: %s", dead, f)
		// The kernel drops the dead spine's nexthop as its link
		// disappears, so a stream normally loses under 1 s (20 requests).
		// A longer gap is reported; a stream that loses half its requests
		// (7.5 s) did not continue. (One leaf pair was once seen to take
		// over 5 s under CI load; the cause is not found yet: 30 spine
		// kills, some with namespace churn beside them, and 3 deletions
		// of all its links at once, under these streams, never lost more
		// than 2 requests, and no leaf lacked a route to another VTEP for
		// over 50 ms. A slow stream now logs every leaf's underlay routes
		// from the kill on.)
		switch {
		case f.Sent == 0 || f.Lost() > flowCount/2:
			t.Errorf("%s killed: %s: traffic did not continue", dead, f)
			slow = true
		case f.Lost() > 20:
			t.Logf("%s killed: %s: SLOW FAILOVER, more than 1 s of loss", dead, f)
			slow = true
		}
	}
	if slow {
		// What the leafs' underlay routes were, to find the cause.
		t.Logf("the leafs' underlay routes (ip -4 route show proto 183) from the kill on, each change:\n%s", rec)
	}
	if err != nil {
		t.Fatalf("spine kill: %v", err)
	}
	// Every leaf routes to every other leaf's VTEP over a surviving spine.
	for _, lf := range p.Leafs {
		var live, gone []string // the leaf's interfaces to live and dead spines
		for _, l := range topo.Links {
			for _, e := range [][2]lab.Endpoint{{l.A, l.B}, {l.B, l.A}} {
				switch {
				case e[0].Node != lf.Name:
				case e[1].Node == dead:
					gone = append(gone, "dev "+e[0].Interface+" ")
				case topo.Node(e[1].Node).Labels["evpnd.vni"] == "":
					live = append(live, "dev "+e[0].Interface+" ")
				}
			}
		}
		for _, other := range p.Leafs {
			if other.Name == lf.Name {
				continue
			}
			out, err := r.Exec(ctx, lf.Name, "ip", "-4", "route", "get", other.VTEP.String(), "from", lf.VTEP.String())
			if err != nil {
				t.Fatal(err)
			}
			out = strings.ReplaceAll(out, "\n", " ") + " "
			ok := false
			for _, l := range live {
				ok = ok || strings.Contains(out, l)
			}
			for _, g := range gone {
				ok = ok && !strings.Contains(out, g)
			}
			if !ok {
				t.Errorf("%s: route to %s's VTEP %s after %s died: %q, want one over %v", lf.Name, other.Name, other.VTEP, dead, out, live)
			}
		}
	}
	res, err := p.Matrix(ctx, r, convergeTimeout)
	if err != nil {
		t.Fatalf("matrix after %s died: %v", dead, err)
	}
	for _, f := range res.Failures {
		t.Errorf("after %s died: %s", dead, f)
	}
	t.Logf("matrix after %s died: %d pairs reach, %d routed (%d over IPv6 too), %d stay apart", dead, len(res.Reached), len(res.Routed), res.Routed6, len(res.Isolated))
}

// forwarded reads how many IPv4 packets a node has forwarded
// (ForwDatagrams in /proc/net/snmp, which is per network namespace).
func forwarded(ctx context.Context, r Runner, node string) (int, error) {
	out, err := r.Exec(ctx, node, "cat", "/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Ip:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "ForwDatagrams" && i < len(f) {
				return strconv.Atoi(f[i])
			}
		}
	}
	return 0, fmt.Errorf("%s: no ForwDatagrams in /proc/net/snmp", node)
}

// routeRecorder polls every leaf's underlay routes (proto 183) from the
// spine kill until stop, keeping each change with its time since the
// kill: the evidence when a stream fails over slowly.
type routeRecorder struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	lines  []string
}

func (rr *routeRecorder) start(ctx context.Context, r Runner, leafs []Leaf) {
	ctx, rr.cancel = context.WithCancel(ctx)
	rr.done = make(chan struct{})
	t0 := time.Now()
	go func() {
		defer close(rr.done)
		last := map[string]string{}
		for ctx.Err() == nil {
			for _, lf := range leafs {
				out, err := r.Exec(ctx, lf.Name, "ip", "-4", "route", "show", "proto", "183")
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					out = "error: " + err.Error()
				}
				out = strings.Join(strings.Fields(strings.ReplaceAll(out, "\n", " ; ")), " ")
				if out != last[lf.Name] {
					last[lf.Name] = out
					rr.mu.Lock()
					rr.lines = append(rr.lines, fmt.Sprintf("%8v %s: %s", time.Since(t0).Round(time.Millisecond), lf.Name, out))
					rr.mu.Unlock()
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
}

func (rr *routeRecorder) stop() {
	if rr.cancel != nil {
		rr.cancel()
		<-rr.done
	}
}

func (rr *routeRecorder) String() string {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return strings.Join(rr.lines, "\n")
}
