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
// the missing address and touching nothing; with --wait it waits for the
// address and then sets up its devices. A missing access interface stops
// neither: evpnd warns and enslaves it when it appears.
func TestRunWait(t *testing.T) {
	netns.RequireLinkKind(t, "vxlan")
	netns.RequireLinkKind(t, "veth")
	bin := evpndPath(t)
	cfg := "testdata/wait/leaf.yaml" // VNI 100 with access interface eth2, VTEP 10.0.0.9

	t.Run("no_wait_fails_naming_the_address", func(t *testing.T) {
		ns := netns.ForTest(t, "e2ewt")
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		out, err := ns.Command(ctx, bin, "run", "--config", cfg, "--api-socket", filepath.Join(t.TempDir(), "evpnd.sock")).CombinedOutput()
		if err == nil {
			t.Fatalf("evpnd run succeeded without its access interface:\n%s", out)
		}
		// The VTEP/listen address is named; the access interface is not
		// a reason to refuse.
		for _, want := range []string{"address 10.0.0.9", "--wait"} {
			if !strings.Contains(string(out), want) {
				t.Fatalf("error does not say %q:\n%s", want, out)
			}
		}
		if strings.Contains(string(out), "interface eth2") {
			t.Fatalf("the absent access interface is named as a reason to refuse:\n%s", out)
		}
	})

	t.Run("wait_then_start", func(t *testing.T) {
		ns := netns.ForTest(t, "e2ewt")
		out, done := startEvpnd(t, ns, bin, "--config", cfg, "--wait", "30s", "--log-format", "text")
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
		if _, err := ns.Exec(t.Context(), "ip", "addr", "add", "10.0.0.9/32", "dev", "lo"); err != nil {
			t.Fatal(err)
		}
		alive := func() {
			select {
			case err := <-done:
				t.Fatalf("evpnd exited: %v\n%s", err, out.String())
			default:
			}
		}
		// The address is enough: the devices come up without eth2, with
		// a warning naming it.
		eventually(t, changeTimeout, "devices set up after the wait, without eth2", func() error {
			alive()
			if _, err := ns.Exec(t.Context(), "ip", "link", "show", "br100"); err != nil {
				return err
			}
			if !strings.Contains(out.String(), "access interface does not exist") || !strings.Contains(out.String(), "port=eth2") {
				return errors.New("no warning about eth2 yet")
			}
			return nil
		})
		// eth2 appears: it is enslaved to br100 and brought up.
		if _, err := ns.Exec(t.Context(), "ip", "link", "add", "eth2", "type", "veth", "peer", "name", "eth2p"); err != nil {
			t.Fatal(err)
		}
		eventually(t, changeTimeout, "eth2 enslaved to br100 once it appears", func() error {
			alive()
			o, err := ns.Exec(t.Context(), "ip", "-o", "link", "show", "eth2")
			if err != nil {
				return err
			}
			if !strings.Contains(o, "master br100") || !strings.Contains(o, ",UP") {
				return errors.New(o)
			}
			return nil
		})
	})
}
