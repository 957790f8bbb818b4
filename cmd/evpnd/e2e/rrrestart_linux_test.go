package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
)

// The route reflector is restarted (SIGTERM: no Cease, graceful restart)
// under ping. Every leaf keeps the reflector's routes as stale; the
// restarted reflector must hold its table back until every leaf of the
// previous run has re-sent its routes, or the first leaf to reconnect
// would get an empty table and End-of-RIB and drop its stale routes
// (deleting remote entries until the others reconnect).
func TestRouteReflectorRestart(t *testing.T) {
	f := deployFabric(t)
	f.converge()
	spine := f.m.Spine
	survivors := map[string]map[string]bool{}
	mons := map[string]*fdbMonitor{}
	for _, l := range f.m.Leafs {
		survivors[l.Name] = map[string]bool{}
		for k := range f.m.want(l.Name, f.at).Owned {
			survivors[l.Name][strings.TrimSuffix(k, " extern_learn")] = true
		}
		mons[l.Name] = f.monitorFDB(l.Name, f.linkIndexes(l.Name))
	}
	pings := map[string]*background{
		"h1 -> h5": f.start("h1", "ping", "-n", "-D", "-i", "0.02", f.m.host("h5").IP.String()),
		"h4 -> h3": f.start("h4", "ping", "-n", "-D", "-i", "0.02", f.m.host("h3").IP.String()),
	}
	pingsAnswered(t, pings)
	if err := f.lab.Stop(spine, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, changeTimeout, "leaf1 session closed", func() error {
		out, err := f.lab.Exec(t.Context(), "leaf1", "ss", "-Htn", "state", "established", "( sport = :179 or dport = :179 )")
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) != "" {
			return fmt.Errorf("still: %s", out)
		}
		return nil
	})
	if err := f.lab.Start(spine); err != nil {
		t.Fatal(err)
	}
	eventually(t, convergeTimeout, "all leafs re-established", func() error {
		out, err := f.lab.Exec(t.Context(), spine, "ss", "-Htn", "state", "established", "( sport = :179 )")
		if err != nil {
			return err
		}
		if n := len(strings.Fields(out)) / 4; n < 3 {
			return fmt.Errorf("%d sessions", n)
		}
		return nil
	})
	f.waitFDB(convergeTimeout)
	// Let the pings run on past the re-sync: 50 more replies each.
	pingsLoseNothing(t, pings, 50, "across a graceful RR restart")
	for _, l := range f.m.Leafs {
		evs, _ := mons[l.Name].stop()
		var touched []string
		for _, ev := range evs {
			if ev.del && survivors[l.Name][ev.key] {
				touched = append(touched, ev.String())
			}
		}
		if len(touched) > 0 {
			t.Errorf("%s deleted valid entries during the RR restart:\n  %s", l.Name, strings.Join(touched, "\n  "))
		}
	}
}
