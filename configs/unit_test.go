package configs

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// unitDirectives reads the [Service] section's key=value lines of a
// systemd unit file; a key given twice keeps its values in order.
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is not key=value", path, line)
			}
			out[section+k] = append(out[section+k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSystemdUnit checks what the shipped unit promises: restart on
// failure, exactly the capabilities evpnd needs, and the directory of the
// default API socket.
func TestSystemdUnit(t *testing.T) {
	d := unitDirectives(t, "evpnd.service")
	want := map[string]string{
		"[Service]Restart":               "on-failure",
		"[Service]ExecReload":            "/bin/kill -HUP $MAINPID",
		"[Service]ExecStart":             "/usr/local/sbin/evpnd run --config /etc/evpnd/evpnd.yaml",
		"[Service]RuntimeDirectory":      filepath.Base(filepath.Dir(DefaultAPISocket)),
		"[Service]CapabilityBoundingSet": "CAP_NET_ADMIN CAP_NET_BIND_SERVICE CAP_CHOWN",
		"[Service]NoNewPrivileges":       "yes",
		"[Install]WantedBy":              "multi-user.target",
	}
	for k, v := range want {
		if got := d[k]; !slices.Equal(got, []string{v}) {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if filepath.Dir(filepath.Dir(DefaultAPISocket)) != "/run" {
		t.Errorf("the default socket %s is not in a directory of /run, which RuntimeDirectory creates", DefaultAPISocket)
	}
	for _, k := range []string{"[Service]AmbientCapabilities", "[Service]User"} {
		if v, ok := d[k]; ok {
			t.Errorf("%s = %q: evpnd runs as root limited by CapabilityBoundingSet", k, v)
		}
	}
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit. The
// binary path is pointed at an executable in a temporary directory, as
// verify checks that ExecStart exists; everything else is the shipped file.
// verify exits 0 on many problems it only warns about, so any output fails.
func TestSystemdUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd): cannot verify configs/evpnd.service")
	}
	unit, err := os.ReadFile("evpnd.service")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "evpnd")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const installed = "/usr/local/sbin/evpnd"
	if !strings.Contains(string(unit), installed) {
		t.Fatalf("evpnd.service does not run %s", installed)
	}
	path := filepath.Join(dir, "evpnd.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), installed, bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
