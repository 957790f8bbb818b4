package fib

import (
	"context"
	"net"
	"strings"
	"testing"
)

// TestKernelResyncKeepsLocalMove: a wanted remote MAC that the bridge has
// just learned on an access port (a VM arriving here; the learner has not
// reported it yet) is a local move in progress, not drift: a resync (and
// Check) leave it on the access port. The learner's Invalidate, when the
// MAC stays remote, still puts it back on the VXLAN port.
func TestKernelResyncKeepsLocalMove(t *testing.T) {
	l := newLab(t, "fibm", 100)
	host := newLab(t, "fibn")
	l.run(t,
		[]string{"ip", "link", "add", "acc0", "type", "veth", "peer", "name", "host0", "netns", host.ns.Name},
		[]string{"ip", "link", "set", "acc0", "master", "br100"},
		[]string{"ip", "link", "set", "acc0", "up"},
	)
	host.run(t, []string{"ip", "link", "set", "host0", "up"})
	br, err := l.h.LinkByName("br100")
	if err != nil {
		t.Fatal(err)
	}
	host0, err := host.h.LinkByName("host0")
	if err != nil {
		t.Fatal(err)
	}
	m := mac(t, "02:00:00:00:00:51")
	onAcc := []string{m.String() + " master br100"}
	checkAcc := func(what string, want []string) {
		t.Helper()
		if got := linesFor(l.fdbShow(t, "acc0"), m.String()); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: acc0 has\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}

	k := l.kernel(t)
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, m, ip("10.0.0.2")))
	r := NewReconciler(d, k, testLogger(t), Config{})
	runReconciler(t, r)
	waitFor(t, "write", func() bool { return settled(d, r) && r.Stats().Writes == 1 })

	// Sent again until learned: the port forwards once the kernel's link
	// watch has seen the veth's carrier.
	waitFor(t, "local learning on acc0", func() bool {
		sendFrame(t, host, host0.Attrs().Index, br.Attrs().HardwareAddr, net.HardwareAddr(m[:]))
		return hasLine(linesFor(l.fdbShow(t, "acc0"), m.String()), onAcc[0])
	})

	// The dump says where the MAC is.
	es, err := k.Dump(context.Background(), []VNIDevices{vniDevs(100)})
	if err != nil {
		t.Fatal(err)
	}
	if in := InstalledFrom(es)[MACKey(100, m)]; !in.Access || in.Master || !in.Self {
		t.Errorf("kernel read %+v: want the VXLAN entry and Access", in)
	}
	if res, err := r.Check(context.Background(), 0); err != nil || len(res.Drifts) != 0 {
		t.Errorf("Check: %+v %v, want no drift", res, err)
	}
	resyncs := r.Stats().Resyncs
	r.Resync()
	waitFor(t, "resync", func() bool { return r.Stats().Resyncs > resyncs && settled(d, r) })
	if s := r.Stats(); s.Writes != 1 {
		t.Errorf("writes %d after the resync, want 1: it wrote over a local move", s.Writes)
	}
	checkAcc("after a resync", onAcc)

	// The learner reports the MAC and it stays remote (say, sticky
	// there): Invalidate writes it again.
	d.Invalidate(100, m)
	waitFor(t, "rewrite", func() bool { return settled(d, r) && r.Stats().Writes == 2 })
	checkAcc("after Invalidate", nil)
}
