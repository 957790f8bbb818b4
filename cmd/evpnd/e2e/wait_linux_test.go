package e2e

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/netns"
)

// lockedBuffer is an output buffer safe to read while a process writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRunWait: containerlab starts a node's command before it adds the
// node's links and addresses. Without --wait evpnd refuses at once, naming
// everything that is missing and touching nothing; with --wait it waits for
// them and then sets up its devices.
func TestRunWait(t *testing.T) {
	netns.RequireLinkKind(t, "vxlan")
	netns.RequireLinkKind(t, "veth")
	bin := evpndPath(t)
	cfg := "testdata/wait/leaf.yaml" // VNI 100 with access interface eth2, VTEP 10.0.0.9

	t.Run("no_wait_fails_naming_the_interface", func(t *testing.T) {
		ns := netns.ForTest(t, "e2ewt")
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		out, err := ns.Command(ctx, bin, "run", "--config", cfg, "--api-socket", filepath.Join(t.TempDir(), "evpnd.sock")).CombinedOutput()
		if err == nil {
			t.Fatalf("evpnd run succeeded without its access interface:\n%s", out)
		}
		// Everything missing is named at once: the access interface and the
		// VTEP/listen address.
		for _, want := range []string{"interface eth2", "address 10.0.0.9", "--wait"} {
			if !strings.Contains(string(out), want) {
				t.Fatalf("error does not say %q:\n%s", want, out)
			}
		}
	})

	t.Run("wait_then_start", func(t *testing.T) {
		ns := netns.ForTest(t, "e2ewt")
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		cmd := ns.Command(ctx, bin, "run", "--config", cfg, "--wait", "30s", "--log-format", "text", "--api-socket", filepath.Join(t.TempDir(), "evpnd.sock"))
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() {
			cancel()
			<-done
		})
		// evpnd must still be waiting, with nothing created, while the
		// interface and address are absent.
		eventually(t, changeTimeout, "evpnd reports it is waiting", func() error {
			if !strings.Contains(out.String(), "waiting for interfaces and addresses") {
				return errors.New("not yet")
			}
			return nil
		})
		if _, err := ns.Exec(t.Context(), "ip", "-o", "link", "show", "vxlan100"); err == nil {
			t.Fatalf("vxlan100 created before the node was ready")
		}
		for _, c := range [][]string{
			{"ip", "addr", "add", "10.0.0.9/32", "dev", "lo"},
			{"ip", "link", "add", "eth2", "type", "veth", "peer", "name", "eth2p"},
		} {
			if _, err := ns.Exec(t.Context(), c...); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, changeTimeout, "devices set up after the wait", func() error {
			select {
			case err := <-done:
				t.Fatalf("evpnd exited: %v\n%s", err, out.String())
			default:
			}
			if _, err := ns.Exec(t.Context(), "ip", "link", "show", "br100"); err != nil {
				return err
			}
			return nil
		})
	})
}
