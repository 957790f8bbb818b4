package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/evpnd/evpnd/containerlab/poll"
)

var prefixSeq atomic.Int64

// testPrefix is a namespace prefix no other test or run uses; leftovers
// are recognisable by "evt-lab-".
func testPrefix() string {
	return fmt.Sprintf("evt-lab-%d-%d", os.Getpid(), prefixSeq.Add(1))
}

// deployForTest deploys a topology written to a temporary directory and
// destroys it in t.Cleanup, even when the test fails.
func deployForTest(t *testing.T, dir, file string, opts Options) (*Lab, error) {
	t.Helper()
	netns.RequireLinkKind(t, "veth")
	path := filepath.Join(dir, "t.clab.yml")
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	topo, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Prefix == "" {
		opts.Prefix = testPrefix()
	}
	if opts.WorkDir == "" {
		opts.WorkDir = filepath.Join(dir, "work")
	}
	if opts.StopGrace == 0 {
		opts.StopGrace = 2 * time.Second
	}
	// Cleanups run last-in first-out: Destroy, then the check.
	t.Cleanup(func() { assertNoNamespaces(t, opts.Prefix) })
	l, err := Deploy(context.Background(), topo, opts)
	if err == nil {
		t.Cleanup(func() {
			if err := l.Destroy(); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
	}
	return l, err
}

func assertNoNamespaces(t *testing.T, prefix string) {
	t.Helper()
	ents, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix+"-") {
			t.Errorf("namespace %s left behind", e.Name())
			_ = netns.Delete(e.Name())
		}
	}
}

// killForTest SIGKILLs pid in t.Cleanup if it still runs (the same
// process: same start time), so a failing test leaks no process.
func killForTest(t *testing.T, pid int) {
	start := startTime(pid)
	if start == "" {
		return
	}
	t.Cleanup(func() {
		if alive(pid) && startTime(pid) == start {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// startTime returns field 22 of /proc/pid/stat, or "".
func startTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

const twoNodes = `name: tiny
topology:
  nodes:
    a:
      kind: linux
      env:
        OUT: /data/args
      binds:
        - data:/data
      exec:
        - ip addr add 10.99.0.1/30 dev eth1
        - touch /data/from-exec
        - sh -c 'sleep 1001 >/dev/null 2>&1 & echo $! > /data/bg.pid'
      cmd: tinyd --data /data
    b:
      kind: linux
      exec:
        - ip addr add 10.99.0.2/30 dev eth1
  links:
    - endpoints: [a:eth1, b:eth1]
`

// tinyd writes its arguments to $OUT and becomes "sleep 1000", so the test
// sees PATH lookup, bind rewriting, env and the cmd hook at once.
const tinyd = "#!/bin/sh\necho \"$@\" > \"$OUT\"\nexec sleep 1000\n"

func TestDeployExecStartDestroy(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	for _, d := range []string{bin, filepath.Join(dir, "data")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "tinyd"), []byte(tinyd), 0o755); err != nil {
		t.Fatal(err)
	}
	hooked := 0
	l, err := deployForTest(t, dir, twoNodes, Options{
		Path: []string{bin},
		Cmd: func(node string, argv []string) []string {
			hooked++
			return append(argv, "--hooked", node)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := filepath.Join(dir, "data")

	// Exec commands ran inside the node, with the bind rewritten.
	if _, err := os.Stat(filepath.Join(data, "from-exec")); err != nil {
		t.Errorf("exec with bind: %v", err)
	}
	bgPID := readPID(t, filepath.Join(data, "bg.pid"))
	killForTest(t, bgPID)
	if !inNetns(bgPID, l.Node("a").Path()) {
		t.Errorf("background process %d of exec is not in node a", bgPID)
	}

	// The link is up with containerlab's MTU and carries traffic.
	h, err := l.Node("b").Handle()
	if err != nil {
		t.Fatal(err)
	}
	eth1, err := h.LinkByName("eth1")
	h.Close()
	if err != nil {
		t.Fatal(err)
	}
	if eth1.Attrs().MTU != DefaultLinkMTU || eth1.Attrs().OperState.String() != "up" {
		t.Errorf("b:eth1 mtu %d state %s, want %d up", eth1.Attrs().MTU, eth1.Attrs().OperState, DefaultLinkMTU)
	}
	if out, err := l.Exec(ctx, "a", "ping", "-c1", "-W2", "10.99.0.2"); err != nil {
		t.Fatalf("ping a->b: %v\n%s", err, out)
	}
	if _, err := l.Exec(ctx, "a", "ip", "link", "show", "nosuch0"); err == nil || !strings.Contains(err.Error(), "node a") {
		t.Errorf("failing Exec error = %v, want one naming the node", err)
	}

	// The cmd runs in node a, found on Path, with env, rewritten binds and
	// the hook's arguments.
	pid := l.PID("a")
	if pid == 0 || !l.Running("a") || l.Running("b") {
		t.Fatalf("PID(a) = %d, Running(b) = %v", pid, l.Running("b"))
	}
	killForTest(t, pid)
	if !inNetns(pid, l.Node("a").Path()) {
		t.Errorf("cmd pid %d is not in node a's namespace", pid)
	}
	waitFor(t, "tinyd to write its arguments", func() bool {
		b, _ := os.ReadFile(filepath.Join(data, "args"))
		return len(b) > 0
	})
	args, _ := os.ReadFile(filepath.Join(data, "args"))
	if got, want := strings.TrimSpace(string(args)), "--data "+data+" --hooked a"; got != want || hooked != 1 {
		t.Errorf("tinyd args = %q (hook ran %d times), want %q", got, hooked, want)
	}
	if log, err := os.ReadFile(l.LogPath("a")); err != nil || !strings.Contains(string(log), "start "+filepath.Join(bin, "tinyd")) {
		t.Errorf("log %s = %q, %v", l.LogPath("a"), log, err)
	}

	// Another process sees the same lab through the state file.
	other, err := Open(l.Topology(), Options{Prefix: l.Prefix(), WorkDir: l.WorkDir()})
	if err != nil {
		t.Fatal(err)
	}
	if other.PID("a") != pid {
		t.Errorf("Open: PID(a) = %d, want %d", other.PID("a"), pid)
	}
	st, err := other.Inspect()
	if err != nil {
		t.Fatal(err)
	}
	if !st[0].Running || !hasAddr(st[0], "eth1", "10.99.0.1/30") || !hasAddr(st[1], "eth1", "10.99.0.2/30") {
		t.Errorf("Inspect = %+v", st)
	}

	// Restart gives a new process and ends the old one.
	if err := l.Restart("a"); err != nil {
		t.Fatal(err)
	}
	pid2 := l.PID("a")
	killForTest(t, pid2)
	if pid2 == 0 || pid2 == pid || alive(pid) {
		t.Errorf("restart: old pid %d alive=%v, new pid %d", pid, alive(pid), pid2)
	}
	if err := l.Start("a"); err == nil {
		t.Error("Start of a running node succeeded")
	}
	// kill -9 and start again, as a restart test would.
	if err := l.Stop("a", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if exited, err := l.Exited("a"); !exited || err == nil || l.Running("a") {
		t.Errorf("after SIGKILL: exited %v err %v running %v", exited, err, l.Running("a"))
	}
	if err := l.Start("a"); err != nil {
		t.Fatal(err)
	}
	pid3 := l.PID("a")
	killForTest(t, pid3)

	// Destroy ends every process by PID and leaves nothing behind.
	if err := l.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{pid3, bgPID} {
		if alive(p) {
			t.Errorf("pid %d survived Destroy", p)
		}
	}
	for _, n := range []string{"a", "b"} {
		if netns.Exists(l.Namespace(n)) || l.Node(n) != nil {
			t.Errorf("namespace of %s survived Destroy", n)
		}
	}
	if s, err := ReadState(l.WorkDir()); s != nil || err != nil {
		t.Errorf("state after Destroy = %+v, %v", s, err)
	}
	if err := l.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

func TestDeployFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := `name: broken
topology:
  defaults:
    kind: linux
  nodes:
    a:
      binds: [data:/data]
      exec:
        - sh -c 'sleep 1002 >/dev/null 2>&1 & echo $! > /data/bg.pid'
      cmd: sleep 1000
    b:
      exec:
        - ip addr add 10.99.1.2/30 dev eth1
        - ip addr add 10.99.1.6/30 dev nosuch0
        - touch /never
    c: {}
  links:
    - endpoints: [a:eth1, b:eth1]
    - endpoints: [b:eth2, c:eth1]
`
	prefix := testPrefix()
	_, err := deployForTest(t, dir, file, Options{Prefix: prefix})
	if err == nil {
		t.Fatal("deploy succeeded")
	}
	for _, want := range []string{"node b", "ip addr add 10.99.1.6/30 dev nosuch0", "Cannot find device"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	bg := readPID(t, filepath.Join(dir, "data", "bg.pid"))
	if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", bg)); alive(bg) && strings.Contains(string(cmdline), "1002") {
		_ = syscall.Kill(bg, syscall.SIGKILL)
		t.Errorf("exec's background process %d survived the failed deploy", bg)
	}
	assertNoNamespaces(t, prefix)
	if s, _ := ReadState(filepath.Join(dir, "work")); s != nil {
		t.Errorf("state file left: %+v", s)
	}
}

func TestDeployMissingCmdBinary(t *testing.T) {
	file := "name: nobin\ntopology:\n  nodes:\n    a:\n      kind: linux\n      cmd: evpnlab-test-no-such-binary run\n"
	_, err := deployForTest(t, t.TempDir(), file, Options{})
	if err == nil || !strings.Contains(err.Error(), "node a") || !strings.Contains(err.Error(), "not found in PATH") {
		t.Fatalf("error = %v, want node a's binary not found", err)
	}
}

func TestDeployRefusesExistingNamespace(t *testing.T) {
	netns.RequireRoot(t)
	prefix := testPrefix()
	ns, err := netns.Create(prefix + "-b")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Delete() })
	file := "name: busy\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n"
	dir := t.TempDir()
	path := filepath.Join(dir, "t.clab.yml")
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	topo, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Deploy(context.Background(), topo, Options{Prefix: prefix, WorkDir: dir})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("error = %v, want namespace already exists", err)
	}
	if !netns.Exists(prefix+"-b") || netns.Exists(prefix+"-a") {
		t.Error("a refused deploy changed the host's namespaces")
	}
}

func hasAddr(s NodeStatus, iface, addr string) bool {
	for _, i := range s.Interfaces {
		if i.Name == iface {
			for _, a := range i.Addrs {
				if a == addr {
					return true
				}
			}
		}
	}
	return false
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.True(t, 5*time.Second, what, cond)
}

// TestOpenDestroysLeftovers is "evpnlab destroy" after a crashed deploy: a
// second Lab, knowing only the topology and options, finds the namespaces
// and the recorded PIDs and removes everything.
func TestOpenDestroysLeftovers(t *testing.T) {
	file := `name: crash
topology:
  nodes:
    a:
      kind: linux
      cmd: sleep 1003
    b:
      kind: linux
      exec:
        - sh -c 'sleep 1004 >/dev/null 2>&1 &'
      cmd: sh -c 'trap "" TERM; sleep 1005'
  links:
    - endpoints: [a:eth1, b:eth1]
`
	l, err := deployForTest(t, t.TempDir(), file, Options{StopGrace: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := l.PID("a"), l.PID("b")
	killForTest(t, pa)
	killForTest(t, pb)
	nsB := l.Node("b").Name
	// The cmd enters the namespace shortly after Start returns.
	var pids []int
	waitFor(t, "the cmd and the exec's sleep in b", func() bool {
		pids, err = netnsPIDs(nsB)
		return err == nil && len(pids) >= 2
	})
	for _, p := range pids {
		killForTest(t, p)
	}

	other, err := Open(l.Topology(), Options{Prefix: l.Prefix(), WorkDir: l.WorkDir(), StopGrace: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if other.PID("a") != pa || other.PID("b") != pb {
		logA, _ := os.ReadFile(l.LogPath("a"))
		st, _ := os.ReadFile(filepath.Join(l.WorkDir(), StateFile))
		t.Fatalf("Open found PIDs a=%d b=%d, want %d %d (a alive: %v)\na's log:\n%s\nstate:\n%s", other.PID("a"), other.PID("b"), pa, pb, alive(pa), logA, st)
	}
	if err := other.Destroy(); err != nil {
		t.Fatal(err)
	}
	// b's cmd ignores SIGTERM: only SIGKILL after the grace ends it.
	for _, p := range append(pids, pa) {
		if alive(p) {
			t.Errorf("pid %d survived Destroy", p)
		}
	}
	if netns.Exists(l.Namespace("a")) || netns.Exists(nsB) {
		t.Error("namespaces survived Destroy")
	}
	if err := l.Destroy(); err != nil {
		t.Errorf("Destroy of the original after the leftovers were removed: %v", err)
	}
}

// TestKill removes one node as a crash would: its cmd and every other
// process in its namespace die, its namespace and its veths go (the peer
// loses its interface), and the rest of the lab runs on until Destroy.
func TestKill(t *testing.T) {
	dir := t.TempDir()
	l, err := deployForTest(t, dir, `name: kill
topology:
  nodes:
    a:
      kind: linux
      cmd: sleep 300
    b:
      kind: linux
      cmd: sleep 300
    c:
      kind: linux
  links:
    - endpoints: ["a:eth1", "b:eth1"]
    - endpoints: ["b:eth2", "c:eth1"]
`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A second process in a's namespace, not its cmd.
	extra, err := l.Command(ctx, "a", "sleep", "300")
	if err != nil {
		t.Fatal(err)
	}
	if err := extra.Start(); err != nil {
		t.Fatal(err)
	}
	killForTest(t, extra.Process.Pid)
	exited := make(chan error, 1)
	go func() { exited <- extra.Wait() }()
	ns := l.Namespace("a")
	// "ip netns exec" joins the namespace after it starts: wait until the
	// process is in it, or Kill cannot see it yet.
	for deadline := time.Now().Add(10 * time.Second); ; {
		pids, err := netnsPIDs(ns)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(pids, extra.Process.Pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the extra process never joined a's namespace")
		}
		time.Sleep(10 * time.Millisecond)
	}

	if err := l.Kill("a"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("a process in the killed node's namespace still runs")
	}
	if netns.Exists(ns) {
		t.Errorf("namespace %s still exists", ns)
	}
	if l.Node("a") != nil {
		t.Error("Node(a) still returns a namespace")
	}
	// The kernel tears a deleted namespace's devices (and their veth
	// peers) down in the background.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, err := l.Exec(ctx, "b", "ip", "link", "show", "eth1")
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("b's eth1 to the killed node survived: %s", out)
			break
		}
	}
	if _, err := l.Exec(ctx, "b", "ip", "link", "show", "eth2"); err != nil {
		t.Errorf("b's other link went too: %v", err)
	}
	if err := l.Kill("a"); err == nil {
		t.Error("killing a dead node again succeeded")
	}
}
