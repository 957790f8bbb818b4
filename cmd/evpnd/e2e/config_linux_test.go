package e2e

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/evpnd/evpnd/containerlab/netns"
)

// TestRunConflict: `evpnd run` with a config the kernel's state conflicts
// with exits non-zero, with an error naming the device, and leaves no
// device of its own behind: when vxlan100 already exists with another VNI
// (refused before any change), and when the kernel refuses an access
// interface half-way through (everything created before is rolled back).
func TestRunConflict(t *testing.T) {
	netns.RequireLinkKind(t, "vxlan")
	netns.RequireLinkKind(t, "bridge")
	bin := evpndPath(t)
	cases := []struct {
		name, config string
		setup        []string // ip commands in the namespace first
		wantErr      []string // words the error must contain
		busySocket   bool     // another process serves the API socket
	}{
		{
			name:    "existing_vxlan_with_other_vni",
			config:  "testdata/conflict/leaf.yaml",
			setup:   []string{"ip link add vxlan100 type vxlan id 999 local 10.0.0.9 dstport 4789 nolearning"},
			wantErr: []string{"vxlan100", "999"},
		},
		{
			name:    "access_port_refused_by_kernel",
			config:  "testdata/conflict/access-lo.yaml",
			wantErr: []string{"lo"},
		},
		{
			name:    "api_tcp_beyond_loopback_without_tls",
			config:  "testdata/conflict/api-tcp.yaml",
			wantErr: []string{"api.listen", "TLS"},
		},
		{
			name:       "api_socket_in_use",
			config:     "testdata/conflict/leaf.yaml",
			busySocket: true,
			wantErr:    []string{"another", "api.socket"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ns := netns.ForTest(t, "e2ecf")
			setup := append([]string{"ip addr add 10.0.0.9/32 dev lo"}, c.setup...)
			for _, s := range setup {
				if _, err := ns.Exec(t.Context(), strings.Fields(s)...); err != nil {
					t.Fatal(err)
				}
			}
			before := linkSnapshot(t, ns)

			sock := filepath.Join(t.TempDir(), "evpnd.sock")
			if c.busySocket {
				ln, err := net.Listen("unix", sock)
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
			}
			out, code, took := runRefused(t, ns, bin, c.config, sock)
			// The last line is the error main prints.
			lines := strings.Split(strings.TrimSpace(out), "\n")
			msg := lines[len(lines)-1]
			for _, w := range c.wantErr {
				if !regexp.MustCompile(`\b` + regexp.QuoteMeta(w) + `\b`).MatchString(msg) {
					t.Errorf("error does not name %q: %s", w, msg)
				}
			}
			t.Logf("exit %d after %v: %s", code, took, msg)
			if after := linkSnapshot(t, ns); after != before {
				t.Errorf("devices changed by a failed start:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// runRefused runs "evpnd run" with config in ns, its API socket at sock,
// (the evpnd binary bin) and wants it to fail: it returns the output (stdout and stderr), the
// exit code and how long it took. It fails the test if evpnd exits 0 or
// runs for 30s.
func runRefused(t *testing.T, ns *netns.NS, bin, config, sock string) (string, int, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := ns.Command(ctx, bin, "run", "--config", config, "--api-socket", sock)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("evpnd run did not exit within 30s (killed); output:\n%.3000s", out.String())
	case err == nil:
		t.Fatalf("evpnd run exited 0, want a failure; output:\n%.3000s", out.String())
	case !errors.As(err, &exit):
		t.Fatal(err)
	}
	return out.String(), exit.ExitCode(), time.Since(start).Round(time.Millisecond)
}

// linkSnapshot describes every link of a namespace: name, kind, VNI,
// master and admin state.
func linkSnapshot(t *testing.T, ns *netns.NS) string {
	t.Helper()
	h, err := ns.Handle()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range links {
		a := l.Attrs()
		b.WriteString(a.Name + " " + l.Type())
		if vx, ok := l.(*netlink.Vxlan); ok {
			b.WriteString(" vni " + strconv.Itoa(vx.VxlanId))
		}
		b.WriteString(" master " + strconv.Itoa(a.MasterIndex) + " flags " + a.Flags.String() + " alias " + a.Alias + "\n")
	}
	return b.String()
}
