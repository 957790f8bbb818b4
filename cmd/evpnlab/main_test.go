//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evpnd/evpnd/containerlab/netns"
)

const tinyTopo = `name: clitest
topology:
  nodes:
    a:
      kind: linux
      binds:
        - __clabNodeDir__/run:/run/clitest
      env:
        CLITEST_SOCKET: /run/clitest/sock
      exec:
        - ip addr add 10.98.0.1/30 dev eth1
      cmd: sleep 1006
    b:
      kind: linux
      exec:
        - ip addr add 10.98.0.2/30 dev eth1
  links:
    - endpoints: [a:eth1, b:eth1]
`

// run executes evpnlab with args and returns its stdout.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if testing.Verbose() && errOut.Len() > 0 {
		t.Logf("stderr of %v:\n%s", args, errOut.String())
	}
	return out.String(), err
}

func writeTopo(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clitest.clab.yml")
	if err := os.WriteFile(path, []byte(tinyTopo), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestInspectNothingDeployed(t *testing.T) {
	path := writeTopo(t)
	prefix := fmt.Sprintf("evt-cli-%d-none", os.Getpid())
	out, err := run(t, "inspect", "-t", path, "--prefix", prefix, "--workdir", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{prefix + "-a", prefix + "-b", "absent"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	if _, err := run(t, "exec", "-t", path, "--prefix", prefix, "a", "--"); err == nil {
		t.Error("exec without a command succeeded")
	}
}

// TestDeployExecDestroy drives the CLI as an operator would: deploy
// --detach, inspect, exec with an exit status, destroy.
func TestDeployExecDestroy(t *testing.T) {
	netns.RequireLinkKind(t, "veth")
	path := writeTopo(t)
	prefix := fmt.Sprintf("evt-cli-%d", os.Getpid())
	work := t.TempDir()
	common := []string{"-t", path, "--prefix", prefix, "--workdir", work}
	// A tool only deploy --path has, as evpnctl in a fresh build.
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "clitestctl"), []byte("#!/bin/sh\necho \"socket=$CLITEST_SOCKET args=$*\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Also covers a test that failed half-way.
		if _, err := run(t, append([]string{"destroy", "--grace", "1s"}, common...)...); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, n := range []string{"a", "b"} {
			if netns.Exists(prefix + "-" + n) {
				t.Errorf("namespace %s-%s left behind", prefix, n)
			}
		}
	})

	if _, err := run(t, append([]string{"deploy", "--detach", "--path", bin}, common...)...); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, append([]string{"inspect"}, common...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "running") || !strings.Contains(out, "10.98.0.2/30") {
		t.Errorf("inspect after deploy:\n%s", out)
	}
	if _, err := run(t, append([]string{"deploy", "--detach"}, common...)...); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second deploy: %v, want already exists", err)
	}
	out, err = run(t, append(append([]string{"exec"}, common...), "a", "--", "ping", "-c1", "-W2", "10.98.0.2")...)
	if err != nil || !strings.Contains(out, "1 received") {
		t.Errorf("exec ping: %v\n%s", err, out)
	}
	// exec finds the deploy's --path and gives the node's env, with the
	// node's own run directory in it and in the arguments.
	out, err = run(t, append(append([]string{"exec"}, common...), "a", "clitestctl", "/run/clitest/x")...)
	sock := filepath.Join(work, "a", "run")
	if want := "socket=" + sock + "/sock args=" + sock + "/x"; err != nil || strings.TrimSpace(out) != want {
		t.Errorf("exec clitestctl: %v: %q, want %q", err, out, want)
	}
	if fi, err := os.Stat(sock); err != nil || !fi.IsDir() {
		t.Errorf("node a's run directory: %v", err)
	}
	_, err = run(t, append(append([]string{"exec"}, common...), "b", "sh", "-c", "exit 7")...)
	var ec exitCodeError
	if !errors.As(err, &ec) || ec != 7 {
		t.Errorf("exec exit status: %v, want 7", err)
	}
	out, err = run(t, append([]string{"destroy"}, common...)...)
	if err != nil || !strings.Contains(out, "removed 2 namespaces") {
		t.Errorf("destroy: %v\n%s", err, out)
	}
}
