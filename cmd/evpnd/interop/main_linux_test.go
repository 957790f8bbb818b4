package interop

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sync"
	"testing"

	"github.com/evpnd/evpnd/containerlab/netns"
)

// FRR's binaries as Debian 12 installs them.
const (
	frrDir = "/usr/lib/frr"
	zebra  = frrDir + "/zebra"
	bgpd   = frrDir + "/bgpd"
	frrUsr = "frr"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/frr-8.4-*.json from the live FRR instances")

// evpnd and evpnctl are built once per test binary, on first use, so
// that a skipped run builds nothing.
var build struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// evpndBinDir returns the directory holding freshly built evpnd and
// evpnctl binaries; the labs put it in front of the nodes' PATH.
func evpndBinDir(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", fmt.Sprintf("evt-iop-bin-%d-", os.Getpid()))
		if build.err != nil {
			return
		}
		// go test puts its own GOROOT/bin first in PATH.
		goBin, err := exec.LookPath("go")
		if err != nil {
			build.err = fmt.Errorf("build evpnd and evpnctl: %w", err)
			return
		}
		// -o with a directory writes each main package under its name.
		cmd := exec.Command(goBin, "build", "-o", build.dir+string(filepath.Separator),
			"github.com/evpnd/evpnd/cmd/evpnd", "github.com/evpnd/evpnd/cmd/evpnctl")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build evpnd evpnctl: %w: %s", err, bytes.TrimSpace(out))
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.dir
}

// requireFRR skips the test unless it runs as root on a kernel with the
// links the topologies use, with FRR installed.
func requireFRR(t *testing.T) *user.User {
	t.Helper()
	netns.RequireRoot(t)
	for _, p := range []string{bgpd, zebra} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("FRR is not installed (%s: %v); apt-get install frr, or run containerlab/scripts/deps.sh", p, err)
		}
	}
	if _, err := exec.LookPath("vtysh"); err != nil {
		t.Skipf("FRR's vtysh is not on PATH: %v", err)
	}
	u, err := user.Lookup(frrUsr)
	if err != nil {
		t.Skipf("FRR's user %q does not exist: %v", frrUsr, err)
	}
	for _, kind := range []string{"veth", "bridge", "vxlan"} {
		netns.RequireLinkKind(t, kind)
	}
	return u
}
