package fib

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TestKernelInstallsZebraShapedEntries writes MACs and flood entries and
// reads both halves of every MAC back, with iproute2 and with netlink.
func TestKernelInstallsZebraShapedEntries(t *testing.T) {
	l := newLab(t, "fibw", 100)
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	macs := []string{"02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"}
	for i, m := range macs {
		must(t, d.SetMAC(100, mac(t, m), ip("10.0.0."+strconv.Itoa(2+i))))
	}
	must(t, d.AddFlood(100, ip("10.0.0.2")))
	must(t, d.AddFlood(100, ip("10.0.0.3")))
	r := NewReconciler(d, l.kernel(t), testLogger(t), Config{})
	runReconciler(t, r)
	waitFor(t, "reconcile", func() bool { return settled(d, r) && r.Stats().Writes == 5 })

	lines := l.fdbShow(t, "vxlan100")
	for i, m := range macs {
		dst := "10.0.0." + strconv.Itoa(2+i)
		for _, want := range []string{
			m + " dst " + dst + " self extern_learn permanent",
			m + " extern_learn master br100",
		} {
			if !hasLine(lines, want) {
				t.Errorf("bridge fdb show lacks %q; have:\n%s", want, strings.Join(lines, "\n"))
			}
		}
	}
	for _, dst := range []string{"10.0.0.2", "10.0.0.3"} {
		if !hasLine(lines, "00:00:00:00:00:00 dst "+dst+" self extern_learn permanent") {
			t.Errorf("flood entry to %s missing; have:\n%s", dst, strings.Join(lines, "\n"))
		}
	}

	// The same through netlink: per MAC one self entry with NDA_DST and
	// one master entry, both NTF_EXT_LEARNED.
	type seen struct{ self, master bool }
	got := map[string]*seen{}
	for _, n := range l.neighs(t, "vxlan100") {
		m := n.HardwareAddr.String()
		if got[m] == nil {
			got[m] = &seen{}
		}
		ext := n.Flags&netlink.NTF_EXT_LEARNED != 0
		switch {
		case n.Flags&netlink.NTF_SELF != 0 && ext && n.IP != nil:
			got[m].self = true
		case n.Flags&netlink.NTF_SELF == 0 && n.MasterIndex != 0 && ext: // bridge side: NDA_MASTER, no NTF_MASTER in dumps
			got[m].master = true
		}
	}
	for _, m := range macs {
		if s := got[m]; s == nil || !s.self || !s.master {
			t.Errorf("netlink read-back of %s: %+v, want self and master extern_learn", m, s)
		}
	}
}

// TestKernelMoveIsOneReplace moves a MAC and checks that the kernel saw one
// RTM_NEWNEIGH and no RTM_DELNEIGH for it: no moment without an entry.
func TestKernelMoveIsOneReplace(t *testing.T) {
	l := newLab(t, "fibm", 100)
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	m := mac(t, "02:00:00:00:00:07")
	must(t, d.SetMAC(100, m, ip("10.0.0.2")))
	r := NewReconciler(d, l.kernel(t), testLogger(t), Config{})
	runReconciler(t, r)
	waitFor(t, "first write", func() bool { return settled(d, r) && r.Stats().Writes == 1 })

	nsh, err := vnetns.GetFromPath(l.ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	ch := make(chan netlink.NeighUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	var subErr error
	var mu sync.Mutex
	if err := netlink.NeighSubscribeWithOptions(ch, done, netlink.NeighSubscribeOptions{
		Namespace: &nsh,
		ErrorCallback: func(err error) {
			mu.Lock()
			subErr = err
			mu.Unlock()
		},
	}); err != nil {
		t.Fatal(err)
	}

	must(t, d.SetMAC(100, m, ip("10.0.0.9")))
	var dels int
	var newDst bool
	waitFor(t, "RTM_NEWNEIGH with the new VTEP", func() bool {
		for {
			select {
			case u := <-ch:
				if u.HardwareAddr.String() != m.String() {
					continue
				}
				if u.Type == unix.RTM_DELNEIGH {
					dels++
				}
				if u.Type == unix.RTM_NEWNEIGH && u.IP != nil && u.IP.String() == "10.0.0.9" {
					newDst = true
				}
			default:
				return newDst
			}
		}
	})
	mu.Lock()
	if subErr != nil {
		t.Fatalf("subscription: %v", subErr)
	}
	mu.Unlock()
	if dels != 0 {
		t.Errorf("the move produced %d RTM_DELNEIGH for %s, want 0", dels, m)
	}
	waitFor(t, "settle", func() bool { return settled(d, r) })
	if s := r.Stats(); s.Writes != 2 || s.Deletes != 0 {
		t.Errorf("stats after move: writes %d deletes %d, want 2 and 0", s.Writes, s.Deletes)
	}
	got := linesFor(l.fdbShow(t, "vxlan100"), m.String())
	want := []string{m.String() + " extern_learn master br100", m.String() + " dst 10.0.0.9 self extern_learn permanent"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("after move:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestKernelDelete deletes MACs and flood entries, and checks that deleting
// missing entries succeeds.
func TestKernelDelete(t *testing.T) {
	l := newLab(t, "fibd", 100)
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	m1, m2 := mac(t, "02:00:00:00:00:11"), mac(t, "02:00:00:00:00:12")
	must(t, d.SetMAC(100, m1, ip("10.0.0.2")))
	must(t, d.SetMAC(100, m2, ip("10.0.0.2")))
	must(t, d.AddFlood(100, ip("10.0.0.2")))
	must(t, d.AddFlood(100, ip("10.0.0.3")))
	k := l.kernel(t)
	r := NewReconciler(d, k, testLogger(t), Config{})
	runReconciler(t, r)
	waitFor(t, "writes", func() bool { return settled(d, r) && r.Stats().Writes == 4 })

	d.DeleteMAC(100, m1)
	d.DeleteFlood(100, ip("10.0.0.2"))
	waitFor(t, "deletes", func() bool { return settled(d, r) && r.Stats().Deletes == 2 })
	lines := l.fdbShow(t, "vxlan100")
	if got := linesFor(lines, m1.String()); len(got) != 0 {
		t.Errorf("deleted MAC still present: %q", got)
	}
	if len(linesFor(lines, m2.String())) != 2 {
		t.Errorf("other MAC damaged: %q", lines)
	}
	if hasLine(lines, "00:00:00:00:00:00 dst 10.0.0.2 self extern_learn permanent") ||
		!hasLine(lines, "00:00:00:00:00:00 dst 10.0.0.3 self extern_learn permanent") {
		t.Errorf("flood list after deleting 10.0.0.2:\n%s", strings.Join(lines, "\n"))
	}

	// Deleting what is not there is success (ENOENT/ESRCH mapped).
	errs := k.Apply(context.Background(), []Op{
		{Kind: OpDelete, Entry: FDBEntry{VNI: 100, Dev: "vxlan100", MAC: m1, VTEP: ip("10.0.0.2")}, Self: true, Master: true},
		{Kind: OpDelete, Entry: FDBEntry{VNI: 100, Dev: "vxlan100", VTEP: ip("10.0.0.77")}, Self: true},
		{Kind: OpDelete, Entry: FDBEntry{VNI: 100, Dev: "nosuchdev", MAC: m1}, Master: true},
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("delete of missing entry %d: %v", i, err)
		}
	}
}

// TestKernelErrorsMapToOps puts failing ops between good ones in one
// chunk, and last, and checks each error lands on its own op.
func TestKernelErrorsMapToOps(t *testing.T) {
	for _, chunk := range []int{256, 3} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) {
			l := newLab(t, "fibe", 100)
			l.run(t, []string{"ip", "link", "add", "vxlan200", "type", "vxlan", "id", "200", "local", "10.0.0.1", "dstport", "4789", "nolearning"})
			k := l.kernel(t)
			k.maxMsg = chunk
			set := func(dev string, n int, vtep string) Op {
				return Op{Kind: OpSet, Entry: FDBEntry{VNI: 100, Dev: dev, MAC: macN(n), VTEP: ip(vtep)}, Self: true, Master: true}
			}
			ops := []Op{
				set("vxlan100", 1, "10.0.0.2"),
				set("vxlan100", 2, "2001:db8::2"), // IPv6 remote on an IPv4 VXLAN device
				set("nosuchdev", 3, "10.0.0.2"),
				set("vxlan200", 4, "10.0.0.2"), // not a bridge port
				set("vxlan100", 5, "10.0.0.2"),
				set("vxlan100", 6, "2001:db8::6"), // fails, last in the chunk
			}
			wantErr := []bool{false, true, true, true, false, true}
			for range 2 { // twice: the second chunk must not see the first one's answers
				errs := k.Apply(context.Background(), ops)
				for i, we := range wantErr {
					if (errs[i] != nil) != we {
						t.Errorf("op %d (%s): err %v, want error %v", i, ops[i], errs[i], we)
					}
				}
				if !errors.Is(errs[1], unix.EAFNOSUPPORT) {
					t.Errorf("op 1: %v, want EAFNOSUPPORT", errs[1])
				}
			}
			lines := l.fdbShow(t, "vxlan100")
			for _, n := range []int{1, 5} {
				if len(linesFor(lines, macN(n).String())) != 2 {
					t.Errorf("MAC %s not installed:\n%s", macN(n), strings.Join(lines, "\n"))
				}
			}
		})
	}
}

// TestKernelRestartSafety pre-installs entries as an earlier run (or an
// operator) would have left them and checks: correct ones are not
// rewritten; unwanted ones, marked or hand-added, stay until MarkSynced
// and go after; local (permanent) bridge entries are never touched.
func TestKernelRestartSafety(t *testing.T) {
	l := newLab(t, "fibr", 100)
	l.run(t,
		// Correct and still wanted.
		[]string{"bridge", "fdb", "replace", "02:00:00:00:00:21", "dev", "vxlan100", "dst", "10.0.0.2", "self", "extern_learn"},
		[]string{"bridge", "fdb", "replace", "02:00:00:00:00:21", "dev", "vxlan100", "master", "extern_learn"},
		[]string{"bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan100", "dst", "10.0.0.2", "self"},
		// Stale: marked, no longer wanted.
		[]string{"bridge", "fdb", "replace", "02:00:00:00:00:22", "dev", "vxlan100", "dst", "10.0.0.3", "self", "extern_learn"},
		[]string{"bridge", "fdb", "replace", "02:00:00:00:00:22", "dev", "vxlan100", "master", "extern_learn"},
		[]string{"bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan100", "dst", "10.0.0.3", "self"},
		// Wanted but pointing at the wrong VTEP.
		[]string{"bridge", "fdb", "replace", "02:00:00:00:00:23", "dev", "vxlan100", "dst", "10.0.0.3", "self", "master", "extern_learn"},
		// Hand-added by an operator, not marked.
		[]string{"bridge", "fdb", "add", "02:00:00:00:00:99", "dev", "vxlan100", "dst", "10.0.0.9", "self", "permanent"},
		[]string{"bridge", "fdb", "add", "02:00:00:00:00:99", "dev", "vxlan100", "master", "static"},
		// A local bridge entry (delivered to the host), as the port's
		// own address is.
		[]string{"bridge", "fdb", "add", "02:00:00:00:00:98", "dev", "vxlan100", "master", "permanent"},
	)
	before := l.fdbShow(t, "vxlan100")
	hand := linesFor(before, "02:00:00:00:00:99")
	if len(hand) != 2 {
		t.Fatalf("setup: hand-added entries: %q", hand)
	}
	localEntry := linesFor(before, "02:00:00:00:00:98")
	if len(localEntry) != 1 {
		t.Fatalf("setup: local entry: %q", localEntry)
	}

	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	must(t, d.SetMAC(100, mac(t, "02:00:00:00:00:21"), ip("10.0.0.2")))
	must(t, d.AddFlood(100, ip("10.0.0.2")))
	must(t, d.SetMAC(100, mac(t, "02:00:00:00:00:23"), ip("10.0.0.2")))
	must(t, d.SetMAC(100, mac(t, "02:00:00:00:00:24"), ip("10.0.0.4"))) // new
	r := NewReconciler(d, l.kernel(t), testLogger(t), Config{})
	runReconciler(t, r)
	waitFor(t, "first sync", func() bool { return settled(d, r) })

	s := r.Stats()
	if s.Writes != 2 || s.Skipped != 2 || s.Deletes != 0 {
		t.Errorf("first sync: writes %d skipped %d deletes %d, want 2 (…23 moved, …24 new), 2 (…21, flood), 0", s.Writes, s.Skipped, s.Deletes)
	}
	if s.Stale != 3 {
		t.Errorf("stale = %d, want 3 (…22, …99 and flood 10.0.0.3)", s.Stale)
	}
	lines := l.fdbShow(t, "vxlan100")
	if len(linesFor(lines, "02:00:00:00:00:22")) != 2 || !hasLine(lines, "00:00:00:00:00:00 dst 10.0.0.3 self permanent") ||
		strings.Join(linesFor(lines, "02:00:00:00:00:99"), "|") != strings.Join(hand, "|") {
		t.Errorf("stale entries changed before MarkSynced:\n%s", strings.Join(lines, "\n"))
	}
	if r.Synced() {
		t.Error("Synced before MarkSynced")
	}

	r.MarkSynced()
	waitFor(t, "Synced", r.Synced)
	lines = l.fdbShow(t, "vxlan100")
	if got := linesFor(lines, "02:00:00:00:00:22"); len(got) != 0 {
		t.Errorf("stale MAC survived MarkSynced: %q", got)
	}
	for _, line := range lines {
		if strings.HasPrefix(line, "00:00:00:00:00:00 dst 10.0.0.3") {
			t.Errorf("stale flood entry survived MarkSynced: %q", line)
		}
	}
	if got := linesFor(lines, "02:00:00:00:00:99"); len(got) != 0 {
		t.Errorf("hand-added entries nobody wants survived MarkSynced: %q", got)
	}
	if got := linesFor(lines, "02:00:00:00:00:98"); strings.Join(got, "|") != strings.Join(localEntry, "|") {
		t.Errorf("local entry changed: %q, was %q", got, localEntry)
	}
	for _, want := range []string{
		"02:00:00:00:00:21 dst 10.0.0.2 self extern_learn permanent",
		"02:00:00:00:00:23 dst 10.0.0.2 self extern_learn permanent",
		"02:00:00:00:00:24 dst 10.0.0.4 self extern_learn permanent",
		"00:00:00:00:00:00 dst 10.0.0.2 self permanent",
	} {
		if !hasLine(lines, want) {
			t.Errorf("missing %q after MarkSynced:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	if s := r.Stats(); s.Deletes != 3 || s.Stale != 0 {
		t.Errorf("after prune: deletes %d stale %d, want 3 and 0", s.Deletes, s.Stale)
	}
}

// TestKernelRestartDoesNotRewrite runs the reconciler twice over the same
// desired state, as a restart of evpnd does: the second run writes nothing
// and the kernel emits no neighbour event at all. 2 VNIs exercise the
// per-device dump, 12 the whole-table dump.
func TestKernelRestartDoesNotRewrite(t *testing.T) {
	for _, nvni := range []int{2, 12} {
		t.Run(strconv.Itoa(nvni)+"vnis", func(t *testing.T) {
			var vnis []uint32
			for i := range nvni {
				vnis = append(vnis, uint32(100+i))
			}
			l := newLab(t, "fibs", vnis...)
			fill := func() *Desired {
				d := NewDesired()
				for _, v := range vnis {
					must(t, d.SetVNI(vniDevs(v)))
					for n := range 200 {
						must(t, d.SetMAC(v, macN(n), ip("10.0.1."+strconv.Itoa(1+n%5))))
					}
					must(t, d.AddFlood(v, ip("10.0.1.1")))
					must(t, d.AddFlood(v, ip("10.0.1.2")))
				}
				return d
			}
			total := uint64(nvni * 202)
			d1 := fill()
			r1 := NewReconciler(d1, l.kernel(t), testLogger(t), Config{})
			stop := runReconciler(t, r1)
			waitFor(t, "first run", func() bool { return settled(d1, r1) && r1.Stats().Writes == total })
			stop()
			before := l.fdbShow(t, "vxlan101")

			events := l.subscribe(t)
			d2 := fill()
			r2 := NewReconciler(d2, l.kernel(t), testLogger(t), Config{})
			runReconciler(t, r2)
			r2.MarkSynced()
			waitFor(t, "second run synced", func() bool { return r2.Synced() && settled(d2, r2) })
			if s := r2.Stats(); s.Writes != 0 || s.Deletes != 0 || s.Skipped != total {
				t.Errorf("restart: writes %d deletes %d skipped %d, want 0, 0, %d", s.Writes, s.Deletes, s.Skipped, total)
			}
			if after := l.fdbShow(t, "vxlan101"); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Errorf("kernel changed across restart")
			}
			// A probe entry proves the subscription works; nothing else may
			// have changed.
			l.run(t, []string{"bridge", "fdb", "add", "02:ff:00:00:00:01", "dev", "vxlan100", "dst", "10.0.9.9", "self"})
			got := events.until(t, "02:ff:00:00:00:01")
			if len(got) != 0 {
				t.Errorf("restart changed the kernel: %d neighbour events, first %q", len(got), got[0])
			}
		})
	}
}

type neighEvents struct {
	ch   chan netlink.NeighUpdate
	errc chan error
}

// subscribe listens to the lab's neighbour events until the test ends.
func (l *labNS) subscribe(t *testing.T) *neighEvents {
	t.Helper()
	nsh, err := vnetns.GetFromPath(l.ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	e := &neighEvents{ch: make(chan netlink.NeighUpdate, 4096), errc: make(chan error, 1)}
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	err = netlink.NeighSubscribeWithOptions(e.ch, done, netlink.NeighSubscribeOptions{
		Namespace:         &nsh,
		ReceiveBufferSize: 4 << 20,
		ErrorCallback: func(err error) {
			select {
			case e.errc <- err:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// until returns the events received before the first one for probe MAC.
func (e *neighEvents) until(t *testing.T, probe string) []string {
	t.Helper()
	var out []string
	found := false
	waitFor(t, "probe event "+probe, func() bool {
		for !found {
			select {
			case err := <-e.errc:
				t.Fatalf("neighbour subscription: %v", err)
			case u := <-e.ch:
				if u.HardwareAddr.String() == probe {
					found = true
					break
				}
				out = append(out, fmt.Sprintf("type %d %s dst %v", u.Type, u.HardwareAddr, u.IP))
			default:
				return false
			}
		}
		return true
	})
	return out
}

// TestKernelLocalTakeoverSurvivesDelete learns a remote MAC locally on an
// access port (a real frame) and checks that deleting the remote MAC keeps
// the local bridge entry.
func TestKernelLocalTakeoverSurvivesDelete(t *testing.T) {
	l := newLab(t, "fibl", 100)
	l.run(t,
		[]string{"ip", "link", "add", "acc0", "type", "veth", "peer", "name", "host0"},
		[]string{"ip", "link", "set", "acc0", "master", "br100"},
		[]string{"ip", "link", "set", "acc0", "up"},
		[]string{"ip", "link", "set", "host0", "up"},
	)
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	m := mac(t, "02:00:00:00:00:31")
	must(t, d.SetMAC(100, m, ip("10.0.0.2")))
	r := NewReconciler(d, l.kernel(t), testLogger(t), Config{})
	runReconciler(t, r)
	waitFor(t, "write", func() bool { return settled(d, r) && r.Stats().Writes == 1 })

	// The host behind acc0 sends one frame with source m to the bridge's
	// own address: the bridge learns m on acc0 and delivers the frame
	// locally, nothing leaves the namespace.
	br, err := l.h.LinkByName("br100")
	if err != nil {
		t.Fatal(err)
	}
	host, err := l.h.LinkByName("host0")
	if err != nil {
		t.Fatal(err)
	}
	// The frame is sent again while waiting: one sent before the veth's
	// carrier is up, on a loaded machine, is dropped and never learned.
	var sent time.Time
	waitFor(t, "local learning on acc0", func() bool {
		if time.Since(sent) > 200*time.Millisecond {
			sendFrame(t, l, host.Attrs().Index, br.Attrs().HardwareAddr, net.HardwareAddr(m[:]))
			sent = time.Now()
		}
		return hasLine(linesFor(l.fdbShow(t, "acc0"), m.String()), m.String()+" master br100")
	})

	d.DeleteMAC(100, m)
	waitFor(t, "delete", func() bool { return settled(d, r) && r.Stats().Deletes == 1 })
	if got := linesFor(l.fdbShow(t, "acc0"), m.String()); len(got) != 1 {
		t.Errorf("local entry on acc0 after deleting the remote MAC: %q, want it kept", got)
	}
	if got := linesFor(l.fdbShow(t, "vxlan100"), m.String()); len(got) != 0 {
		t.Errorf("remote entries left on vxlan100: %q", got)
	}
}

// sendFrame writes one Ethernet frame on ifindex from inside the lab.
func sendFrame(t *testing.T, l *labNS, ifindex int, dst, src net.HardwareAddr) {
	t.Helper()
	const etherType = 0x88b5 // IEEE local experimental
	err := l.ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(etherType)))
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		frame := make([]byte, 60)
		copy(frame, dst)
		copy(frame[6:], src)
		binary.BigEndian.PutUint16(frame[12:], etherType)
		return unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifindex, Protocol: htons(etherType)})
	})
	if err != nil {
		t.Fatalf("send frame: %v", err)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// TestKernelStickyMACPinned: a sticky remote MAC is installed as zebra
// installs one, its bridge entry sticky (and still extern_learn), so that
// a frame from the MAC on an access port does not move it; a resync finds
// it correct; made movable again, the flag goes and the MAC moves.
func TestKernelStickyMACPinned(t *testing.T) {
	l := newLab(t, "fibs", 100)
	l.run(t,
		[]string{"ip", "link", "add", "acc0", "type", "veth", "peer", "name", "host0"},
		[]string{"ip", "link", "set", "acc0", "master", "br100"},
		[]string{"ip", "link", "set", "acc0", "up"},
		[]string{"ip", "link", "set", "host0", "up"},
	)
	br, err := l.h.LinkByName("br100")
	if err != nil {
		t.Fatal(err)
	}
	host, err := l.h.LinkByName("host0")
	if err != nil {
		t.Fatal(err)
	}
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	m := mac(t, "02:00:00:00:00:41")
	must(t, d.SetMACSticky(100, m, ip("10.0.0.2"), true))
	r := NewReconciler(d, l.kernel(t), testLogger(t), Config{})
	runReconciler(t, r)
	r.MarkSynced()
	waitFor(t, "write", func() bool { return settled(d, r) && r.Synced() && r.Stats().Writes == 1 })

	bridgeFlags := func() (int, bool) {
		for _, n := range l.neighs(t, "vxlan100") {
			if n.Flags&unix.NTF_SELF == 0 && n.MasterIndex != 0 && n.HardwareAddr.String() == m.String() {
				return n.Flags, true
			}
		}
		return 0, false
	}
	const ntfSticky = 0x40
	if f, ok := bridgeFlags(); !ok || f&ntfSticky == 0 || f&unix.NTF_EXT_LEARNED == 0 {
		t.Fatalf("bridge entry of the sticky MAC: found %v, flags %#x; want sticky and extern_learn\n%s",
			ok, f, strings.Join(l.fdbShow(t, "vxlan100"), "\n"))
	}
	t.Logf("installed: %q", linesFor(l.fdbShow(t, "vxlan100"), m.String()))
	if res, err := r.Check(t.Context(), 0); err != nil || len(res.Drifts) != 0 {
		t.Fatalf("check: %+v %v", res, err)
	}
	// Re-read: found correct, not rewritten.
	r.Resync()
	waitFor(t, "resync", func() bool { return settled(d, r) && r.Stats().Resyncs == 2 })
	if s := r.Stats(); s.Writes != 1 {
		t.Errorf("a resync rewrote the sticky MAC: %d writes", s.Writes)
	}

	// The MAC is heard on acc0, then a sentinel MAC: once the sentinel is
	// learned, the bridge has seen the first frame too.
	heard := func(src evpn.MAC, sentinel string) {
		t.Helper()
		sendFrame(t, l, host.Attrs().Index, br.Attrs().HardwareAddr, net.HardwareAddr(src[:]))
		s := mac(t, sentinel)
		sendFrame(t, l, host.Attrs().Index, br.Attrs().HardwareAddr, net.HardwareAddr(s[:]))
		waitFor(t, "sentinel learned on acc0", func() bool { return len(linesFor(l.fdbShow(t, "acc0"), sentinel)) == 1 })
	}
	heard(m, "02:00:00:00:00:e1")
	if got := linesFor(l.fdbShow(t, "acc0"), m.String()); len(got) != 0 {
		t.Errorf("the sticky MAC moved to the access port: %q", got)
	}
	if f, ok := bridgeFlags(); !ok || f&ntfSticky == 0 {
		t.Errorf("bridge entry after the MAC was heard locally: found %v, flags %#x", ok, f)
	}

	// No longer sticky: the flag goes, extern_learn stays, the MAC moves.
	must(t, d.SetMAC(100, m, ip("10.0.0.2")))
	waitFor(t, "rewrite", func() bool { return settled(d, r) && r.Stats().Writes == 2 })
	if f, ok := bridgeFlags(); !ok || f&ntfSticky != 0 || f&unix.NTF_EXT_LEARNED == 0 {
		t.Fatalf("bridge entry after unpinning: found %v, flags %#x; want extern_learn, not sticky", ok, f)
	}
	if res, err := r.Check(t.Context(), 0); err != nil || len(res.Drifts) != 0 {
		t.Fatalf("check after unpinning: %+v %v", res, err)
	}
	heard(m, "02:00:00:00:00:e2")
	if got := linesFor(l.fdbShow(t, "acc0"), m.String()); len(got) != 1 {
		t.Errorf("the movable MAC did not move to the access port: %q", got)
	}
}
