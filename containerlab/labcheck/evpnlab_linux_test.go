package labcheck

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/evpnd/evpnd/containerlab/lab"
	"github.com/evpnd/evpnd/containerlab/netns"
)

// TestEvpnlab deploys every topology under containerlab/ with evpnlab, on
// network namespaces, runs its connectivity matrix and MAC check, kills a
// spine where there are two, and destroys it, leaving no namespace or
// process behind.
func TestEvpnlab(t *testing.T) {
	netns.RequireRoot(t)
	for i, file := range topologies(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			topo, err := lab.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			p, err := PlanOf(topo)
			if err != nil {
				t.Fatal(err)
			}
			if usesFRR(topo) {
				if _, err := os.Stat("/usr/lib/frr/bgpd"); err != nil {
					t.Skip("needs FRR (/usr/lib/frr/zebra, staticd, bgpd; Debian package frr): containerlab/scripts/deps.sh installs it")
				}
				if _, err := user.Lookup("frr"); err != nil {
					t.Skip("needs the frr user that Debian's frr package creates")
				}
			}
			bin := binDir(t)
			// Not t.TempDir: its parents are mode 0700, and FRR's daemons
			// run as the frr user in their node directory.
			work, err := os.MkdirTemp("", "evt-labcheck-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(work) })
			if err := os.Chmod(work, 0o755); err != nil {
				t.Fatal(err)
			}
			prefix := fmt.Sprintf("evt-lc%d-%d", os.Getpid()%100000, i)
			l, err := lab.Deploy(context.Background(), topo, lab.Options{Prefix: prefix, WorkDir: work, Path: []string{bin}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if t.Failed() {
					for _, n := range topo.Nodes {
						if data, err := os.ReadFile(l.LogPath(n.Name)); err == nil && len(data) > 0 {
							t.Logf("--- %s log (tail)\n%s", n.Name, tail(string(data), 30))
						}
					}
				}
				if len(processesUsing(work)) == 0 {
					t.Error("no node process mentions the work directory: the check for leftovers below would find none either")
				}
				if err := l.Destroy(); err != nil {
					t.Errorf("destroy: %v", err)
				}
				for _, n := range topo.Nodes {
					if netns.Exists(l.Namespace(n.Name)) {
						t.Errorf("namespace %s left behind", l.Namespace(n.Name))
					}
				}
				// Every node process names the work directory in its
				// arguments (FRR) or environment (EVPND_SOCKET).
				if pids := processesUsing(work); len(pids) > 0 {
					t.Errorf("processes left behind that use %s: %v", work, pids)
				}
			})
			checkFabric(t, p, l)
			checkSpineKill(t, topo, p, l, l.Command, l.Kill)
		})
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// processesUsing lists the processes whose command line or environment
// mentions path.
func processesUsing(path string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			data, err := os.ReadFile(filepath.Join("/proc", e.Name(), f))
			if err == nil && strings.Contains(string(data), path) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}
