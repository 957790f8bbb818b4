package interop

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/lab"
	"github.com/evpnd/evpnd/containerlab/netns"
)

// Names of what a run creates carry the test binary's PID, so that what a
// killed run left behind (go test -timeout, SIGKILL: no cleanup runs) is
// recognisable: namespaces evt-iop-<pid>-<n>-<node>, FRR directories
// <tmp>/evt-frr-<pid>-<node>-* and the evpnd build <tmp>/evt-iop-bin-<pid>-*.
var (
	leftoverNS  = regexp.MustCompile(`^(evt-iop-(\d+)-\d+)-`)
	leftoverDir = regexp.MustCompile(`^evt-(?:frr|iop-bin)-(\d+)-`)
	sweepOnce   sync.Once
)

// gone reports whether no process has the PID any more.
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// sweepLeftovers removes, once per test binary, what earlier runs whose
// process is gone left behind. Processes still running inside their
// namespaces are stopped by lab.Destroy, by PID and only while inside.
func sweepLeftovers(t *testing.T) {
	t.Helper()
	sweepOnce.Do(func() {
		ents, err := os.ReadDir("/run/netns")
		if err != nil && !os.IsNotExist(err) {
			t.Logf("sweep: %v", err)
		}
		prefixes := map[string]bool{}
		for _, e := range ents {
			m := leftoverNS.FindStringSubmatch(e.Name())
			if m == nil {
				continue
			}
			if pid, _ := strconv.Atoi(m[2]); pid != os.Getpid() && gone(pid) {
				prefixes[m[1]] = true
			}
		}
		for prefix := range prefixes {
			if err := sweepLab(prefix); err != nil {
				t.Logf("sweep %s: %v", prefix, err)
			}
			for _, e := range ents {
				if m := leftoverNS.FindStringSubmatch(e.Name()); m != nil && m[1] == prefix {
					_ = netns.Delete(e.Name()) // a node of no current topology
				}
			}
			t.Logf("removed the leftovers of an earlier run: namespaces %s-*", prefix)
		}
		dirs, _ := os.ReadDir(os.TempDir())
		for _, e := range dirs {
			m := leftoverDir.FindStringSubmatch(e.Name())
			if m == nil {
				continue
			}
			if pid, _ := strconv.Atoi(m[1]); pid != os.Getpid() && gone(pid) {
				_ = os.RemoveAll(filepath.Join(os.TempDir(), e.Name()))
			}
		}
	})
}

// sweepLab destroys the lab of every interop topology under prefix.
func sweepLab(prefix string) error {
	files, err := filepath.Glob(filepath.Join("testdata", "*.clab.yml"))
	if err != nil {
		return err
	}
	var errs []error
	for _, file := range files {
		topo, err := lab.Load(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		l, err := lab.Open(topo, lab.Options{Prefix: prefix, WorkDir: filepath.Join(os.TempDir(), prefix+"-sweep"), StopGrace: time.Second})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := l.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
		}
	}
	return errors.Join(errs...)
}
