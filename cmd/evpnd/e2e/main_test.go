package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// binDir holds the evpnd and evpnctl binaries built for this test run;
// TestMain removes it at the end.
var binDir string

var build struct {
	once sync.Once
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "evpnd-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binEnv names an evpnd executable to test instead of building
// ./cmd/evpnd, e.g. a release build. An evpnctl beside it is used too;
// without one, ./cmd/evpnctl is built.
const binEnv = "EVPND_E2E_BIN"

// evpndBinDir builds ./cmd/evpnd and ./cmd/evpnctl once per test binary
// (only when a test needs them) and returns the directory that holds both
// executables. Labs put it in front of the nodes' PATH, so a node's cmd
// runs this evpnd and evpnctl in a node (Lab.Exec) is this evpnctl.
func evpndBinDir(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.err = buildBinaries(binDir, os.Getenv(binEnv))
	})
	if build.err != nil {
		t.Fatalf("build evpnd and evpnctl: %v", build.err)
	}
	return binDir
}

// buildBinaries puts evpnd and evpnctl in dir: links to bin and the
// evpnctl beside it when bin is set, else (and for a missing evpnctl)
// fresh builds of the packages.
func buildBinaries(dir, bin string) error {
	pkgs := []string{"github.com/evpnd/evpnd/cmd/evpnd", "github.com/evpnd/evpnd/cmd/evpnctl"}
	if bin != "" {
		// Linked, not copied: the lab looks the binaries up by name.
		abs, err := filepath.Abs(bin)
		if err != nil {
			return err
		}
		if err := os.Symlink(abs, filepath.Join(dir, "evpnd")); err != nil {
			return err
		}
		pkgs = pkgs[1:]
		if ctl := filepath.Join(filepath.Dir(abs), "evpnctl"); fileExists(ctl) {
			return os.Symlink(ctl, filepath.Join(dir, "evpnctl"))
		}
	}
	// "go test" puts its own GOROOT/bin first in the test's PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("no go command to build %s with (set %s to test a built evpnd, with evpnctl beside it): %w", strings.Join(pkgs, " and "), binEnv, err)
	}
	// One build for both: -o with a directory writes each main package
	// under its own name.
	args := append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)
	out, err := exec.Command(goBin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", goBin, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir()
}

// evpndPath returns the built evpnd executable.
func evpndPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(evpndBinDir(t), "evpnd")
}
