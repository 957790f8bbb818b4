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

// binDir holds the evpnd binary built for this test run; TestMain removes
// it at the end.
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
// ./cmd/evpnd, e.g. a release build.
const binEnv = "EVPND_E2E_BIN"

// evpndBinDir builds ./cmd/evpnd once per test binary (only when a test
// needs it) and returns the directory that holds the evpnd executable.
func evpndBinDir(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		if bin := os.Getenv(binEnv); bin != "" {
			// Linked, not copied: the lab looks evpnd up by name.
			abs, err := filepath.Abs(bin)
			if err == nil {
				err = os.Symlink(abs, filepath.Join(binDir, "evpnd"))
			}
			build.err = err
			return
		}
		build.err = buildEvpnd(binDir)
	})
	if build.err != nil {
		t.Fatalf("build evpnd: %v", build.err)
	}
	return binDir
}

func buildEvpnd(dir string) error {
	// "go test" puts its own GOROOT/bin first in the test's PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("no go command to build evpnd with (set %s to test a built binary): %w", binEnv, err)
	}
	// The package directory is cmd/evpnd/e2e, so ".." is cmd/evpnd.
	out, err := exec.Command(goBin, "build", "-o", filepath.Join(dir, "evpnd"), "..").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s build ./cmd/evpnd: %w: %s", goBin, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// evpndPath returns the built evpnd executable.
func evpndPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(evpndBinDir(t), "evpnd")
}
