package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// deployEditableFabric deploys a copy of the fabric (copyFabric) and
// waits for it to converge. It returns the fabric, the path of leaf2's
// config file, which the test may edit, and that file's first content.
func deployEditableFabric(t *testing.T) (*fabric, string, []byte) {
	t.Helper()
	topo := copyFabric(t)
	conf := filepath.Join(filepath.Dir(topo), "fabric", "leaf2.yaml")
	base, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	f := deployFabricFrom(t, topo)
	f.converge()
	return f, conf, base
}

// copyFabric copies the fabric topology and its node configs into a
// directory of the test's, so that the test may edit a node's config
// file, and returns the copied topology's path.
func copyFabric(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "fabric"), 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(filepath.Dir(topologyFile), "fabric", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("node configs of %s: %v", topologyFile, err)
	}
	for _, src := range append(files, topologyFile) {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.Base(src))
		if filepath.Base(filepath.Dir(src)) == "fabric" {
			dst = filepath.Join(dir, "fabric", filepath.Base(src))
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, filepath.Base(topologyFile))
}

// evpnctlIn runs evpnctl in a node and returns its output and exit status.
func (f *fabric) evpnctlIn(node string, args ...string) (string, int) {
	f.t.Helper()
	c, err := f.lab.Command(f.t.Context(), node, append([]string{"evpnctl"}, args...)...)
	if err != nil {
		f.t.Fatal(err)
	}
	out, err := c.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	f.t.Fatalf("%s: evpnctl %v: %v", node, args, err)
	return "", 0
}

// TestReload changes leaf2's config file step by step and applies each
// version live, by SIGHUP or evpnctl reload, while h1 pings h2 in VNI 100
// (through leaf2) and h4 pings h3 in VNI 200 (leaf1 to leaf3): none of
// those pings may be lost. In order:
//   - a file with problems, and one naming an access interface leaf2
//     lacks: refused with every problem; links, FDB and peers unchanged;
//   - SIGHUP: VNI 200 added, log level debug, duplicate detection 3 moves;
//   - evpnctl reload: VNI 200 changed (mtu), a neighbour added, the
//     metrics endpoint started;
//   - a VNI added through the API shows in status as not in the file;
//   - evpnctl reload of a file with a restart-only change (hold-time):
//     named, the rest applied (VNI 200, the API's VNI 300 and the extra
//     neighbour removed), and status names the change as needing a restart.
func TestReload(t *testing.T) {
	f, conf, base := deployEditableFabric(t)
	c := f.client("leaf2")
	ctx := t.Context()
	write := func(text string) {
		t.Helper()
		// In place: evpnd reads the path the topology binds.
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edit := func(pairs ...string) string {
		s := string(base)
		for i := 0; i < len(pairs); i += 2 {
			if !strings.Contains(s, pairs[i]) {
				t.Fatalf("leaf2.yaml lacks %q", pairs[i])
			}
			s = strings.Replace(s, pairs[i], pairs[i+1], 1)
		}
		return s
	}
	const vni200 = "\n  - vni: 200\n"

	pings := map[string]*background{
		"h1 -> h2 (VNI 100, through leaf2)": f.start("h1", "ping", "-n", "-D", "-i", "0.05", f.m.host("h2").IP.String()),
		"h4 -> h3 (VNI 200)":                f.start("h4", "ping", "-n", "-D", "-i", "0.05", f.m.host("h3").IP.String()),
	}
	pingsAnswered(t, pings)

	// 1. Refused files change nothing.
	links := f.links("leaf2")
	fdb := f.exec("leaf2", "bridge", "fdb", "show")
	for _, bad := range []struct {
		text string
		want []string
	}{
		{edit("\nasn: 65000\n", "\nasn: 0\nno-such-key: 1\n", "access-interfaces: [eth2, eth4]", "access-interfaces: [eth2, eth4]\n  - vni: 100"),
			[]string{"reload refused, nothing changed", "asn", "no-such-key", "l2vnis[1].vni"}},
		{edit("access-interfaces: [eth2, eth4]", "access-interfaces: [eth2, eth4]"+vni200+"    access-interfaces: [nosuch0]\n"),
			[]string{"reload refused, nothing changed", "l2vnis[1].access-interfaces[0]", "no such interface"}},
	} {
		write(bad.text)
		out, code := f.evpnctlIn("leaf2", "reload")
		if code != 2 {
			t.Errorf("evpnctl reload of a bad file: exit %d, want 2:\n%s", code, out)
		}
		for _, w := range bad.want {
			if !strings.Contains(out, w) {
				t.Errorf("evpnctl reload of a bad file does not say %q:\n%s", w, out)
			}
		}
	}
	if after := f.links("leaf2"); after != links {
		t.Fatalf("refused reloads changed the links:\nbefore:\n%s\nafter:\n%s", links, after)
	}
	if after := f.exec("leaf2", "bridge", "fdb", "show"); after != fdb {
		t.Fatalf("refused reloads changed the FDB:\nbefore:\n%s\nafter:\n%s", fdb, after)
	}
	if ps, err := c.ListPeers(ctx, &evpndv1.ListPeersRequest{}); err != nil || len(ps.GetPeers()) != 1 ||
		ps.GetPeers()[0].GetState() != evpndv1.PeerState_PEER_STATE_ESTABLISHED {
		t.Fatalf("peers after the refused reloads: %v %v", ps, err)
	}

	// 2. SIGHUP: VNI 200 added, log level and duplicate detection.
	write(edit("log-level: info", "log-level: debug",
		"neighbors:", "mac-mobility:\n  duplicate-moves: 3\nneighbors:",
		"access-interfaces: [eth2, eth4]", "access-interfaces: [eth2, eth4]"+vni200))
	if err := f.lab.Signal("leaf2", syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	h4, h3 := f.m.host("h4").MAC, f.m.host("h3").MAC
	vni200Up := func(what string) {
		t.Helper()
		eventually(t, changeTimeout, what, func() error {
			out, err := f.lab.Exec(ctx, "leaf2", "bridge", "fdb", "show", "dev", "vxlan200")
			if err != nil {
				return err // not created yet
			}
			var errs []error
			for _, want := range []string{"00:00:00:00:00:00 dst 10.0.0.1", "00:00:00:00:00:00 dst 10.0.0.3",
				h4 + " dst 10.0.0.1", h3 + " dst 10.0.0.3"} {
				if !strings.Contains(out, want) {
					errs = append(errs, fmt.Errorf("leaf2 vxlan200 lacks %q", want))
				}
			}
			for _, l := range []string{"leaf1", "leaf3"} {
				if out, err := f.lab.Exec(ctx, l, "bridge", "fdb", "show", "dev", "vxlan200"); err != nil || !strings.Contains(out, "00:00:00:00:00:00 dst 10.0.0.2") {
					errs = append(errs, fmt.Errorf("%s does not flood VNI 200 to leaf2", l))
				}
			}
			return errors.Join(errs...)
		})
	}
	vni200Up("VNI 200 on leaf2 after SIGHUP")
	eventually(t, changeTimeout, "the SIGHUP reload logged", func() error {
		log := f.lastRunLog("leaf2")
		for _, want := range []string{`msg="config reloaded"`, "result=applied", `level=DEBUG msg="config reload applied" change="log-level: info -> debug"`,
			`change="l2vni 200 added"`, "duplicate-moves 5 -> 3"} {
			if !strings.Contains(log, want) {
				return fmt.Errorf("leaf2's log lacks %q", want)
			}
		}
		return nil
	})

	// 3. evpnctl reload: VNI 200 changed, a neighbour added, metrics on.
	withMTU := edit("log-level: info", "log-level: debug",
		"neighbors:", "mac-mobility:\n  duplicate-moves: 3\nmetrics:\n  listen: 127.0.0.1:9273\nneighbors:",
		"    description: spine1\n", "    description: spine1\n  - address: 10.0.0.253\n    asn: 65000\n    description: nobody\n",
		"access-interfaces: [eth2, eth4]", "access-interfaces: [eth2, eth4]"+vni200+"    mtu: 1400\n")
	write(withMTU)
	out, code := f.evpnctlIn("leaf2", "reload")
	if code != 0 {
		t.Fatalf("evpnctl reload: exit %d:\n%s", code, out)
	}
	for _, want := range []string{"Applied (3):", `metrics.listen: "" -> "127.0.0.1:9273"`, "neighbor 10.0.0.253 AS 65000 added",
		"l2vni 200 changed (removed and added)"} {
		if !strings.Contains(out, want) {
			t.Errorf("evpnctl reload does not say %q:\n%s", want, out)
		}
	}
	t.Logf("evpnctl reload:\n%s", out)
	if out := f.exec("leaf2", "ip", "-o", "link", "show", "vxlan200"); !strings.Contains(out, "mtu 1400") {
		t.Errorf("vxlan200 after the change: %s", out)
	}
	vni200Up("VNI 200 on leaf2 after its change")
	if ps, err := c.ListPeers(ctx, &evpndv1.ListPeersRequest{}); err != nil || len(ps.GetPeers()) != 2 {
		t.Errorf("peers after adding 10.0.0.253: %v %v", ps, err)
	}
	metrics := f.exec("leaf2", "curl", "-sS", "http://127.0.0.1:9273/metrics")
	if !strings.Contains(metrics, `evpnd_config_reloads_total{result="applied"} 2`) ||
		!strings.Contains(metrics, `evpnd_config_reloads_total{result="refused"} 2`) {
		t.Errorf("metrics after 2 applied and 2 refused reloads:\n%s", grepLines(metrics, "evpnd_config_reloads_total"))
	}
	// The same file again: nothing to do.
	if out, code := f.evpnctlIn("leaf2", "reload"); code != 0 || !strings.Contains(out, "Nothing to apply") {
		t.Errorf("reload of an unchanged file: exit %d:\n%s", code, out)
	}

	// 4. A VNI added through the API is not in the file, and status says so.
	if _, err := c.AddVNI(ctx, &evpndv1.AddVNIRequest{Vni: &evpndv1.L2VNISpec{Vni: 300}}); err != nil {
		t.Fatal(err)
	}
	st, err := c.GetStatus(ctx, &evpndv1.GetStatusRequest{})
	if err != nil || !slices.Equal(st.GetVnisNotInFile(), []uint32{300}) || len(st.GetFileVnisNotRunning()) != 0 ||
		!strings.HasSuffix(st.GetConfigFile(), "leaf2.yaml") {
		t.Errorf("status after vni add 300: %v %v", st, err)
	}
	if out := f.exec("leaf2", "evpnctl", "status"); !strings.Contains(out, "Not in the file:  L2VNI 300") {
		t.Errorf("evpnctl status does not name VNI 300 as not in the file:\n%s", out)
	}

	// 5. A restart-only change is named; the rest is applied, and the
	// API's VNI 300 goes as the file lacks it.
	write(edit("  listen-port: 179\n", "  listen-port: 179\n  hold-time: 9s\n") + "metrics:\n  listen: 127.0.0.1:9273\n")
	out, code = f.evpnctlIn("leaf2", "reload")
	if code != 0 {
		t.Fatalf("evpnctl reload: exit %d:\n%s", code, out)
	}
	t.Logf("evpnctl reload:\n%s", out)
	for _, want := range []string{"log-level: debug -> info", "neighbor 10.0.0.253 removed", "l2vni 200 removed", "l2vni 300 removed",
		"Needs a restart (1), not applied:\n  bgp.hold-time: 1m30s -> 9s"} {
		if !strings.Contains(out, want) {
			t.Errorf("evpnctl reload does not say %q:\n%s", want, out)
		}
	}
	eventually(t, changeTimeout, "VNIs 200 and 300 gone from leaf2", func() error {
		if out := f.exec("leaf2", "ip", "-o", "link", "show"); strings.Contains(out, "vxlan200") || strings.Contains(out, "vxlan300") {
			return fmt.Errorf("leaf2 still has VNI 200's or 300's devices")
		}
		for _, l := range []string{"leaf1", "leaf3"} {
			if out := f.exec(l, "bridge", "fdb", "show", "dev", "vxlan200"); strings.Contains(out, "dst 10.0.0.2") {
				return fmt.Errorf("%s still floods VNI 200 to leaf2", l)
			}
		}
		return nil
	})
	st, err = c.GetStatus(ctx, &evpndv1.GetStatusRequest{})
	if err != nil || len(st.GetVnisNotInFile()) != 0 || !slices.Equal(st.GetRestartNeeded(), []string{"bgp.hold-time: 1m30s -> 9s"}) {
		t.Errorf("status after the reload: %v %v", st, err)
	}
	if ps, err := c.ListPeers(ctx, &evpndv1.ListPeersRequest{}); err != nil || len(ps.GetPeers()) != 1 {
		t.Errorf("peers after removing 10.0.0.253: %v %v", ps, err)
	}

	// 6. The route reflector reloads too: the log level applies, a change
	// of its dynamic neighbours is named as needing a restart, and its
	// sessions stay up.
	spineConf := filepath.Join(filepath.Dir(conf), "spine1.yaml")
	spine, err := os.ReadFile(spineConf)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(strings.Replace(string(spine), "log-level: info", "log-level: debug", 1), "  - prefix: 10.0.0.0/24", "  - prefix: 10.0.0.0/23", 1)
	if err := os.WriteFile(spineConf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = f.evpnctlIn(f.m.Spine, "reload")
	if code != 0 || !strings.Contains(out, "Applied (1):\n  log-level: info -> debug") ||
		!strings.Contains(out, "Needs a restart (1), not applied:\n  dynamic-neighbors: ") {
		t.Errorf("evpnctl reload on %s: exit %d:\n%s", f.m.Spine, code, out)
	}
	if out := f.exec(f.m.Spine, "evpnctl", "status"); !strings.Contains(out, "Restart needed:  dynamic-neighbors") {
		t.Errorf("evpnctl status on %s does not name the dynamic neighbours:\n%s", f.m.Spine, out)
	}

	// Nothing lost on the VNIs the reloads did not change, and the fabric
	// is as the topology implies.
	pingsLoseNothing(t, pings, 10, "across the reloads")
	f.waitFDB(changeTimeout)
	// One MAC looked up: h1 behind leaf1, seen from leaf2.
	h1 := f.m.host("h1").MAC
	if out := f.exec("leaf2", "evpnctl", "show", "evpn", "mac", "vni", "100", "mac", h1); !strings.Contains(out, "MAC: "+h1) ||
		!strings.Contains(out, "Remote VTEP: 10.0.0.1") || !strings.Contains(out, "In the kernel: yes") {
		t.Errorf("evpnctl show evpn mac vni 100 mac %s on leaf2:\n%s", h1, out)
	}
	t.Logf("leaf2's reloads:\n%s", grepLines(f.lastRunLog("leaf2"), "reload"))
}

// links lists a node's links, one per line. iproute2 also prints, on
// stderr, "Error: Peer netns reference is invalid." when a veth's peer
// namespace goes away while it lists (another test's lab being
// destroyed): that line says nothing of this node and is left out.
func (f *fabric) links(node string) string {
	f.t.Helper()
	var keep []string
	for _, l := range strings.Split(f.exec(node, "ip", "-o", "link", "show"), "\n") {
		if !strings.HasPrefix(l, "Error: Peer netns reference is invalid") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestReloadManyVNIs adds 1,000 L2VNIs to leaf2 with one reload (their
// devices created in batches off leaf2's loop, each batch handed to the
// loop in one pass) while h1 pings h2 through leaf2 100 times a second,
// and removes them with another: no ping may be lost, and the route
// reflector must hold all 1,000 new type-3 routes, then none. The
// reloads' durations and the loop's responsiveness meanwhile (GetVNI, a
// call through the loop, timed in a tight cycle) are logged, not
// asserted: times on a shared machine are not a test.
func TestReloadManyVNIs(t *testing.T) {
	const n = 1000
	f, conf, base := deployEditableFabric(t)
	c := f.client("leaf2")
	rr := f.client("spine1")
	ctx := t.Context()

	var many strings.Builder
	many.Write(base)
	for i := range n {
		fmt.Fprintf(&many, "  - vni: %d\n", 1000+i)
	}
	ping := f.start("h1", "ping", "-n", "-D", "-i", "0.01", f.m.host("h2").IP.String())
	eventually(t, changeTimeout, "continuous ping answered", func() error {
		if n := len(parseReplies(ping.output())); n < 5 {
			return fmt.Errorf("%d replies so far", n)
		}
		return nil
	})
	// leaf2's type-3 routes the reflector holds.
	reflected := func() (int, error) {
		routes, err := listRoutes(ctx, rr, &evpndv1.ListRoutesRequest{RouteType: 3})
		if err != nil {
			return 0, err
		}
		rds := map[string]bool{}
		for _, r := range routes {
			if r.GetOriginator() == "10.0.0.2" {
				rds[r.GetRd()] = true
			}
		}
		return len(rds), nil
	}

	probe := func(during func()) (calls int, worst time.Duration) {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				if _, err := c.GetVNI(ctx, &evpndv1.GetVNIRequest{Vni: 100}); err == nil {
					calls++
					worst = max(worst, time.Since(start))
				}
			}
		}()
		during()
		close(stop)
		<-done
		return calls, worst
	}
	for _, step := range []struct {
		name, text string
		want       string
		count      int
	}{
		{"add", many.String(), fmt.Sprintf("Applied (%d):", n), n + 1},
		{"remove", string(base), fmt.Sprintf("Applied (%d):", n), 1},
	} {
		if err := os.WriteFile(conf, []byte(step.text), 0o644); err != nil {
			t.Fatal(err)
		}
		var out string
		var code int
		start := time.Now()
		calls, worst := probe(func() { out, code = f.evpnctlIn("leaf2", "reload") })
		took := time.Since(start)
		if code != 0 || !strings.Contains(out, step.want) {
			t.Fatalf("%s %d VNIs: evpnctl reload exit %d:\n%s", step.name, n, code, tail(out, 10))
		}
		vs, err := c.ListVNIs(ctx, &evpndv1.ListVNIsRequest{})
		if err != nil || len(vs.GetVnis()) != step.count {
			t.Fatalf("after the reload that should %s %d VNIs: %d VNIs, %v", step.name, n, len(vs.GetVnis()), err)
		}
		eventually(t, changeTimeout, fmt.Sprintf("spine1 holds leaf2's %d type-3 routes", step.count), func() error {
			if got, err := reflected(); err != nil || got != step.count {
				return fmt.Errorf("%d (%v)", got, err)
			}
			return nil
		})
		t.Logf("reload to %s %d VNIs took %v (%v until the reflector held leaf2's %d type-3 routes); meanwhile %d GetVNI calls through the loop, the slowest %v",
			step.name, n, took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), step.count, calls, worst.Round(time.Microsecond))
	}
	if out := f.exec("leaf2", "ip", "-o", "link", "show"); strings.Contains(out, "vxlan1000") || strings.Contains(out, "br1999") {
		t.Errorf("leaf2 keeps devices of the removed VNIs")
	}
	counted := len(parseReplies(ping.output()))
	eventually(t, changeTimeout, "ping answered after the reloads", func() error {
		if n := len(parseReplies(ping.output())); n < counted+10 {
			return fmt.Errorf("%d replies since", n-counted)
		}
		return nil
	})
	ping.stop(t)
	r, err := parsePing(ping.output())
	if err != nil {
		t.Fatal(err)
	}
	if lost := r.lost(); len(lost) > 0 {
		t.Errorf("h1 -> h2: %d of %d echo requests unanswered across the reloads (icmp_seq %v)", len(lost), r.Transmitted, lost)
	} else {
		t.Logf("h1 -> h2 through leaf2: %d echo requests every 10ms across both reloads, none lost", r.Transmitted)
	}
	f.waitFDB(changeTimeout)
}

// TestReloadUndoesFailedBatch: a reload adds 300 L2VNIs to leaf2, whose
// devices are created 256 at a time; the second batch cannot be set up
// (a VXLAN device with leaf2's name for VNI 1290 already exists, for
// another VNI), so the first batch, already running, is stopped again and
// its devices removed. The reload reports the failure (exit 1); leaf2
// then runs what it ran before, keeps the foreign device, and the
// reflector holds none of the new VNIs' type-3 routes. h1 keeps pinging h2
// through leaf2 meanwhile.
func TestReloadUndoesFailedBatch(t *testing.T) {
	const n = 300
	topo := copyFabric(t)
	conf := filepath.Join(filepath.Dir(topo), "fabric", "leaf2.yaml")
	base, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	f := deployFabricFrom(t, topo)
	f.converge()
	c := f.client("leaf2")
	rr := f.client("spine1")
	ctx := t.Context()
	f.exec("leaf2", "ip", "link", "add", "vxlan1290", "type", "vxlan", "id", "5", "dstport", "4789", "local", "10.0.0.2", "nolearning")
	links := f.links("leaf2")

	var many strings.Builder
	many.Write(base)
	for i := range n {
		fmt.Fprintf(&many, "  - vni: %d\n", 1000+i)
	}
	if err := os.WriteFile(conf, []byte(many.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ping := f.start("h1", "ping", "-n", "-D", "-i", "0.01", f.m.host("h2").IP.String())
	eventually(t, changeTimeout, "continuous ping answered", func() error {
		if n := len(parseReplies(ping.output())); n < 5 {
			return fmt.Errorf("%d replies so far", n)
		}
		return nil
	})
	start := time.Now()
	out, code := f.evpnctlIn("leaf2", "reload")
	took := time.Since(start)
	if code != 1 || !strings.Contains(out, "l2vni 1000: ") || !strings.Contains(out, "vxlan1290") {
		t.Errorf("evpnctl reload whose second batch fails: exit %d, want 1 with l2vni 1000 failed and vxlan1290 named:\n%s", code, tail(out, 10))
	}
	if strings.Contains(out, "l2vni 1000 added") {
		t.Errorf("evpnctl reload says a VNI of the undone batch was added:\n%s", tail(out, 10))
	}
	vs, err := c.ListVNIs(ctx, &evpndv1.ListVNIsRequest{})
	if err != nil || len(vs.GetVnis()) != 1 || vs.GetVnis()[0].GetVni() != 100 {
		t.Errorf("after the undone reload: VNIs %v (%v), want 100 alone", vs.GetVnis(), err)
	}
	if after := f.links("leaf2"); after != links {
		t.Errorf("leaf2's links after the undone reload:\n%s\nwant, as before:\n%s", after, links)
	}
	eventually(t, changeTimeout, "spine1 holds leaf2's VNI 100 type-3 route alone", func() error {
		routes, err := listRoutes(ctx, rr, &evpndv1.ListRoutesRequest{RouteType: 3})
		if err != nil {
			return err
		}
		var rds []string
		for _, r := range routes {
			if r.GetOriginator() == "10.0.0.2" {
				rds = append(rds, r.GetRd())
			}
		}
		if len(rds) != 1 {
			return fmt.Errorf("%d: %v", len(rds), rds)
		}
		return nil
	})
	t.Logf("reload adding %d VNIs whose second batch failed, undone, took %v", n, took.Round(time.Millisecond))
	counted := len(parseReplies(ping.output()))
	eventually(t, changeTimeout, "ping answered after the reload", func() error {
		if n := len(parseReplies(ping.output())); n < counted+10 {
			return fmt.Errorf("%d replies since", n-counted)
		}
		return nil
	})
	ping.stop(t)
	r, err := parsePing(ping.output())
	if err != nil {
		t.Fatal(err)
	}
	if lost := r.lost(); len(lost) > 0 {
		t.Errorf("h1 -> h2: %d of %d echo requests unanswered across the reload (icmp_seq %v)", len(lost), r.Transmitted, lost)
	}
}
