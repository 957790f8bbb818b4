package lab

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nodeDirs gives each node a private run directory the way the evpnd
// topologies do: the same container path, a different host directory.
const nodeDirs = `name: dirs
topology:
  defaults:
    kind: linux
    binds:
      - __clabNodeDir__/run:/run/app
    env:
      APP_SOCKET: /run/app/app.sock
  nodes:
    a:
      exec:
        - touch __clabNodeDir__/from-exec
      cmd: appd
    b: {}
    c:
      binds:
        - missing/file.yaml:/etc/app.yaml
`

// appd records the socket path its environment names, next to it, which
// only works when the node's run directory exists.
const (
	appd   = "#!/bin/sh\necho \"$APP_SOCKET\" > \"$APP_SOCKET.cmd\"\nexec sleep 1000\n"
	appctl = "#!/bin/sh\necho \"$APP_SOCKET\" \"$@\"\n"
)

// TestNodeDirs: every node gets <WorkDir>/<node> and its missing bind
// directories; the cmd, exec commands and Lab.Exec see the node's own
// paths through env; a second Lab (evpnlab exec) finds the deploy's PATH.
func TestNodeDirs(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, script := range map[string]string{"appd": appd, "appctl": appctl} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A missing bind source outside the lab directory stays an error.
	_, err := deployForTest(t, dir, nodeDirs, Options{Path: []string{bin}})
	if err == nil || !strings.Contains(err.Error(), "node c") || !strings.Contains(err.Error(), "missing/file.yaml") {
		t.Fatalf("deploy with a missing config: %v, want an error naming node c's bind", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "missing"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "missing", "file.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	l, err := deployForTest(t, dir, nodeDirs, Options{Path: []string{bin}, WorkDir: work})
	if err != nil {
		t.Fatal(err)
	}
	killForTest(t, l.PID("a"))
	for _, n := range []string{"a", "b", "c"} {
		if fi, err := os.Stat(filepath.Join(work, n, "run")); err != nil || !fi.IsDir() {
			t.Errorf("node %s: run directory: %v", n, err)
		}
		if got, want := l.Topology().Node(n).Dir, filepath.Join(work, n); got != want {
			t.Errorf("node %s: Dir = %q, want %q", n, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "a", "from-exec")); err != nil {
		t.Errorf("exec with __clabNodeDir__: %v", err)
	}
	sockA := filepath.Join(work, "a", "run", "app.sock")
	waitFor(t, "appd to record its socket path", func() bool {
		b, _ := os.ReadFile(sockA + ".cmd")
		return len(b) > 0
	})
	if b, _ := os.ReadFile(sockA + ".cmd"); strings.TrimSpace(string(b)) != sockA {
		t.Errorf("cmd of a got APP_SOCKET=%q, want %q", strings.TrimSpace(string(b)), sockA)
	}

	ctx := context.Background()
	out, err := l.Exec(ctx, "b", "appctl", "/run/app/app.sock")
	if err != nil {
		t.Fatal(err)
	}
	sockB := filepath.Join(work, "b", "run", "app.sock")
	if got, want := strings.TrimSpace(out), sockB+" "+sockB; got != want {
		t.Errorf("Exec in b: %q, want env and argument %q", got, want)
	}

	// As "evpnlab exec" does: Open without Path, then run a binary that
	// only the deploy's Path has.
	topo, err := Load(filepath.Join(dir, "t.clab.yml"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := Open(topo, Options{Prefix: l.Prefix(), WorkDir: work})
	if err != nil {
		t.Fatal(err)
	}
	out, err = other.Exec(ctx, "a", "appctl")
	if err != nil {
		t.Fatalf("Exec of a deploy-Path binary after Open: %v", err)
	}
	if strings.TrimSpace(out) != sockA {
		t.Errorf("Exec in a after Open: %q, want %q", strings.TrimSpace(out), sockA)
	}
	if _, err := other.Command(ctx, "a", "evpnlab-test-no-such-binary"); err == nil || !strings.Contains(err.Error(), "node a") || !strings.Contains(err.Error(), bin) {
		t.Errorf("Command of a missing binary: %v, want an error naming the node and the PATH", err)
	}
}
