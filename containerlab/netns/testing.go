package netns

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

var seq atomic.Int64

// ForTest creates a namespace named "evt-<prefix>-<pid>-<n>" for a test and
// removes it in t.Cleanup, even when the test fails. It skips the test when
// not running as root, naming the reason.
func ForTest(t testing.TB, prefix string) *NS {
	t.Helper()
	RequireRoot(t)
	name := fmt.Sprintf("evt-%s-%d-%d", prefix, os.Getpid(), seq.Add(1))
	ns, err := Create(name)
	if err != nil {
		t.Fatalf("create netns: %v", err)
	}
	t.Cleanup(func() {
		if err := ns.Delete(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return ns
}

// RequireRoot skips the test unless it runs as root with iproute2.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN) to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip) on PATH")
	}
}

// RequireLinkKind skips the test when the kernel cannot create a link of the
// given kind (vxlan, bridge, veth, vrf, ...), naming the missing feature.
func RequireLinkKind(t testing.TB, kind string) {
	t.Helper()
	RequireRoot(t)
	ns := ForTest(t, "probe")
	args := []string{"ip", "link", "add", "probe0", "type", kind}
	switch kind {
	case "vxlan":
		args = append(args, "id", "1", "dstport", "4789")
	case "veth":
		args = append(args, "peer", "name", "probe1")
	}
	if out, err := ns.Exec(context.Background(), args...); err != nil {
		if strings.Contains(out, "not supported") || strings.Contains(out, "Unknown device type") {
			t.Skipf("kernel lacks %s links (CONFIG for %q absent): %s", kind, kind, strings.TrimSpace(out))
		}
		t.Fatalf("probe %s link: %v", kind, err)
	}
}
