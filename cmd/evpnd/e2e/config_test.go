package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestValidateBroken: `evpnd validate` exits non-zero on every broken
// config in testdata/broken and its error names the offending key (each
// file says which in a "# want:" line). The configs of the test fabric,
// as a control, validate.
func TestValidateBroken(t *testing.T) {
	bin := evpndPath(t)
	files, err := filepath.Glob("testdata/broken/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no broken configs in testdata/broken: %v", err)
	}
	wantLine := regexp.MustCompile(`(?m)^# want: (\S+)$`)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			m := wantLine.FindSubmatch(data)
			if m == nil {
				t.Fatalf("%s has no \"# want: <key>\" line", file)
			}
			key := string(m[1])
			stdout, stderr, code := runEvpnd(t, bin, "validate", "--config", file)
			if code == 0 {
				t.Fatalf("exit status 0, want non-zero; stdout: %s", stdout)
			}
			if !strings.Contains(stderr, key+":") {
				t.Errorf("error does not name %s:\n%s", key, stderr)
			}
			if strings.Contains(stdout, "valid") {
				t.Errorf("stdout claims the config is valid: %s", stdout)
			}
		})
	}
	good, _ := filepath.Glob("testdata/fabric/*.yaml")
	vmloop, _ := filepath.Glob("testdata/vmloop/*.yaml")
	for _, file := range append(good, vmloop...) {
		if stdout, stderr, code := runEvpnd(t, bin, "validate", "--config", file); code != 0 || !strings.Contains(stdout, "valid") {
			t.Errorf("control: evpnd validate %s: exit %d: %s%s", file, code, stdout, stderr)
		}
	}
}

// runEvpnd runs the evpnd binary and returns its output and exit status.
func runEvpnd(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	c := exec.CommandContext(t.Context(), bin, args...)
	c.Stdout, c.Stderr = &o, &e
	err := c.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("run %s %v: %v", bin, args, err)
	}
	return o.String(), e.String(), code
}
