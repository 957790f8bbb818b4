package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/netns"
)

// unitCapabilities reads CapabilityBoundingSet from the shipped systemd
// unit, as setpriv names them: "CAP_NET_ADMIN" becomes "net_admin".
func unitCapabilities(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../../configs/evpnd.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapabilityBoundingSet="); ok {
			var caps []string
			for _, c := range strings.Fields(v) {
				caps = append(caps, strings.ToLower(strings.TrimPrefix(c, "CAP_")))
			}
			return caps
		}
	}
	t.Fatal("configs/evpnd.service has no CapabilityBoundingSet")
	return nil
}

// TestRunWithUnitCapabilities runs a leaf as configs/evpnd.service does:
// root with only the unit's capabilities (the bounding set, which for root
// is what it keeps across exec) and no_new_privs. It must create its
// devices, listen for BGP on port 179 and give its API socket to
// api.socket-group. Each capability is needed: without any one of them
// the same start fails.
func TestRunWithUnitCapabilities(t *testing.T) {
	netns.RequireLinkKind(t, "vxlan")
	netns.RequireLinkKind(t, "bridge")
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) not installed: cannot limit capabilities")
	}
	bin := evpndPath(t)
	caps := unitCapabilities(t)
	const config = `router-id: 10.0.0.9
asn: 65000
bgp:
  listen-addresses: [10.0.0.9]
neighbors:
  - address: 10.0.0.254
    asn: 65000
api:
  socket-group: "65534"
l2vnis:
  - vni: 100
    access-interfaces: [eth1]
`
	start := func(t *testing.T, caps []string) (*exec.Cmd, <-chan struct{}, *bytes.Buffer, *netns.NS, string) {
		ns := netns.ForTest(t, "e2ecap")
		for _, c := range []string{"ip addr add 10.0.0.9/32 dev lo", "ip link add eth1 type veth peer name eth1p", "ip link set eth1 up"} {
			if _, err := ns.Exec(t.Context(), strings.Fields(c)...); err != nil {
				t.Fatal(err)
			}
		}
		dir := t.TempDir()
		cfg := filepath.Join(dir, "evpnd.yaml")
		if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(dir, "run", "evpnd.sock")
		bounding := "-all"
		for _, c := range caps {
			bounding += ",+" + c
		}
		cmd := ns.Command(context.Background(), "setpriv", "--no-new-privs", "--bounding-set", bounding, "--",
			bin, "run", "--config", cfg, "--api-socket", sock)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			// ip netns exec and setpriv exec evpnd: the PID is evpnd's.
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		})
		return cmd, exited, &out, ns, sock
	}

	t.Run("unit's set", func(t *testing.T) {
		t.Logf("bounding set: %v", caps)
		_, exited, out, ns, sock := start(t, caps)
		eventually(t, 30*time.Second, "devices, BGP listener and API socket", func() error {
			select {
			case <-exited:
				t.Fatalf("evpnd exited:\n%s", out)
			default:
			}
			if _, err := ns.Exec(t.Context(), "ip", "link", "show", "vxlan100"); err != nil {
				return err
			}
			if o, err := ns.Exec(t.Context(), "ip", "-d", "link", "show", "eth1"); err != nil || !strings.Contains(o, "master br100") {
				return fmt.Errorf("eth1 not in br100: %s %v", o, err)
			}
			if o, err := ns.Exec(t.Context(), "ss", "-Hltn", "sport = :179"); err != nil || !strings.Contains(o, "10.0.0.9:179") {
				return fmt.Errorf("no BGP listener: %q %v", o, err)
			}
			fi, err := os.Stat(sock)
			if err != nil {
				return err
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Gid != 65534 || fi.Mode().Perm() != 0o660 {
				return fmt.Errorf("socket gid %d mode %v, want 65534 and 0660", st.Gid, fi.Mode().Perm())
			}
			return nil
		})
		if strings.Contains(out.String(), "level=ERROR") || strings.Contains(out.String(), "not permitted") {
			t.Errorf("errors logged with the unit's capabilities:\n%s", out)
		} else {
			t.Logf("output:\n%s", out)
		}
	})

	for _, drop := range caps {
		t.Run("without "+drop, func(t *testing.T) {
			var fewer []string
			for _, c := range caps {
				if c != drop {
					fewer = append(fewer, c)
				}
			}
			cmd, exited, out, _, _ := start(t, fewer)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				t.Fatalf("evpnd still runs 30s after starting without %s:\n%s", drop, out)
			}
			if cmd.ProcessState.Success() {
				t.Errorf("evpnd exited 0 without %s:\n%s", drop, out)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			t.Logf("without %s: %s", drop, lines[len(lines)-1])
		})
	}
}
