package fib

import (
	"net"
	"strings"
	"testing"
)

// TestKernelInvalidateAfterLocalTakeover reproduces a remote MAC taken
// over by local learning: a host in its own namespace behind access port
// acc0 sends a frame with the remote MAC as source, and the bridge moves
// its entry from vxlan100 to acc0 and drops extern_learn. fib's cache
// still says the entry is correct, so a coalesced DeleteMAC+SetMAC to the
// same VTEP writes nothing. Invalidate puts the entry back on vxlan100.
func TestKernelInvalidateAfterLocalTakeover(t *testing.T) {
	l := newLab(t, "fibi", 100)
	host := newLab(t, "fibh")
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

	m, busy := mac(t, "02:00:00:00:00:41"), mac(t, "02:00:00:00:00:42")
	remote := []string{
		m.String() + " extern_learn master br100",
		m.String() + " dst 10.0.0.2 self extern_learn permanent",
	}
	checkFDB := func(what string, onVXLAN, onAcc []string) {
		t.Helper()
		if got := linesFor(l.fdbShow(t, "vxlan100"), m.String()); strings.Join(got, "|") != strings.Join(onVXLAN, "|") {
			t.Errorf("%s: vxlan100 has\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(onVXLAN, "\n"))
		}
		if got := linesFor(l.fdbShow(t, "acc0"), m.String()); strings.Join(got, "|") != strings.Join(onAcc, "|") {
			t.Errorf("%s: acc0 has\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(onAcc, "\n"))
		}
	}
	// takeover sends one frame from the host with source m to the
	// bridge's own address (delivered locally, nothing leaves the lab)
	// and waits until the bridge has moved m to acc0.
	takeover := func() {
		t.Helper()
		sendFrame(t, host, host0.Attrs().Index, br.Attrs().HardwareAddr, net.HardwareAddr(m[:]))
		waitFor(t, "local learning on acc0", func() bool {
			return hasLine(linesFor(l.fdbShow(t, "acc0"), m.String()), m.String()+" master br100")
		})
		checkFDB("after local learning", remote[1:], []string{m.String() + " master br100"})
	}

	g := &gatedKernel{Kernel: l.kernel(t)}
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, m, ip("10.0.0.2")))
	r := NewReconciler(d, g, testLogger(t), Config{})
	runReconciler(t, r)
	waitFor(t, "write", func() bool { return settled(d, r) && r.Stats().Writes == 1 })
	checkFDB("installed", remote, nil)

	takeover()
	whileBusy(t, g, d, busy, func() {
		d.DeleteMAC(100, m)
		must(t, d.SetMAC(100, m, ip("10.0.0.2")))
	})
	waitFor(t, "coalesced delete and set", func() bool { return settled(d, r) && r.Stats().Writes == 2 })
	// Without Invalidate the cache matches: skipped, still on acc0.
	if s := r.Stats(); s.Skipped != 1 {
		t.Fatalf("skipped %d, want 1: the coalesced key did not reach the cache check", s.Skipped)
	}
	checkFDB("without Invalidate", remote[1:], []string{m.String() + " master br100"})

	d.Invalidate(100, m)
	waitFor(t, "rewrite", func() bool { return settled(d, r) && r.Stats().Writes == 3 })
	checkFDB("after Invalidate", remote, nil)

	// A remote that stays selected: only Invalidate.
	takeover()
	d.Invalidate(100, m)
	waitFor(t, "rewrite of an unchanged MAC", func() bool { return settled(d, r) && r.Stats().Writes == 4 })
	checkFDB("after Invalidate of an unchanged MAC", remote, nil)

	// Not wanted any more: the VXLAN entry is deleted, the local one
	// stays (the kernel refuses the bridge delete, ENOENT, ignored).
	takeover()
	d.DeleteMAC(100, m)
	d.Invalidate(100, m)
	waitFor(t, "delete", func() bool { return settled(d, r) && r.Stats().Deletes == 1 })
	checkFDB("after DeleteMAC and Invalidate", nil, []string{m.String() + " master br100"})
	if s := r.Stats(); s.Errors != 0 || s.Pending != 0 {
		t.Errorf("errors %d pending %d, want 0", s.Errors, s.Pending)
	}
}
