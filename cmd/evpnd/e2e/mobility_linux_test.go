package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestHostMove moves hm, with its MAC and IP, from leaf1 to leaf2, as a
// migrating VM would: its link to leaf1 goes down (leaf1's kernel flushes
// the learned entry), its link to leaf2 comes up with the same MAC and
// address, and it sends traffic. Hosts on every leaf reach it again, and
// every leaf points at the new VTEP: leaf1 and leaf3 install it as remote
// behind 10.0.0.2, leaf2 holds it locally on its access port and nothing
// of it on its VXLAN device. The test logs how long it took.
func TestHostMove(t *testing.T) {
	f := deployFabric(t)
	f.converge()
	hm := f.m.host("hm")
	if len(hm.Links) != 2 || !hm.Links[0].Active || hm.Links[1].Active {
		t.Fatalf("hm: want its first link active and its second down, have %+v", hm.Links)
	}
	from, to := hm.Links[0], hm.Links[1]
	if from.At.Leaf != "leaf1" || to.At.Leaf != "leaf2" {
		t.Fatalf("hm: want it wired to leaf1 then leaf2, have %s and %s", from.At, to.At)
	}

	// Continuous pings from behind each leaf: h1 (leaf1, the old leaf),
	// h5 (leaf3, neither) and h2 (leaf2, the new one) keep probing hm.
	pingers := map[string]*background{}
	for _, src := range []string{"h1", "h2", "h5"} {
		pingers[src] = f.start(src, "ping", "-n", "-D", "-i", "0.01", hm.IP.String())
	}
	// Every pinger must reach hm at its old place first, or the
	// measurement below means nothing.
	eventually(t, changeTimeout, "pings to hm before the move", func() error {
		for src, p := range pingers {
			if r := parseReplies(p.output()); len(r) < 20 {
				return fmt.Errorf("%s: %d replies so far", src, len(r))
			}
		}
		return nil
	})

	moved := f.moveHM(from, to)

	f.waitFDB(changeTimeout)
	fdbDone := time.Since(moved)
	// Every pinger must get answers at the new place.
	eventually(t, changeTimeout, "pings to hm after the move", func() error {
		for src, p := range pingers {
			var after int
			for _, at := range parseReplies(p.output()) {
				if at.After(moved) {
					after++
				}
			}
			if after < 20 {
				return fmt.Errorf("%s: %d replies after the move so far", src, after)
			}
		}
		return nil
	})
	for _, p := range pingers {
		p.stop(t)
	}
	for _, src := range []string{"h1", "h2", "h5"} {
		r, err := parsePing(pingers[src].output())
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		at, _ := r.firstReplyAfter(moved)
		t.Logf("%s (%s) reaches hm again %v after its old link went down (%d of %d echo requests every 10ms unanswered)",
			src, f.at[src].Leaf, at.Sub(moved).Round(time.Millisecond), len(r.lost()), r.Transmitted)
	}
	t.Logf("every leaf's FDB is exact with hm behind leaf2 %v after its old link went down", fdbDone.Round(time.Millisecond))

	// And plain pings work from every leaf, with the fabric staying put.
	for _, src := range []string{"h1", "h2", "h5"} {
		if err := f.ping(t.Context(), src, hm.IP.String(), 3); err != nil {
			t.Errorf("%s -> hm after the move: %v", src, err)
		}
	}
	for _, lf := range f.m.Leafs {
		if err := f.checkFDB(t.Context(), lf.Name); err != nil {
			t.Errorf("after more traffic: %v", err)
		}
	}
}

// moveHM moves hm from one of its links to the other and returns when its
// old link went down. The move is one script, so that the host is gone
// from the old leaf and back on the new one within milliseconds; the old
// link ends with the other MAC. hm then speaks first, as a migrated VM
// does (a gratuitous packet). f.at is updated.
func (f *fabric) moveHM(from, to hostLink) time.Time {
	f.t.Helper()
	hm := f.m.host("hm")
	out := f.exec("hm", "sh", "-ec", "ip link set "+from.Iface+" down\n"+
		"date +%s.%N\n"+
		"ip addr flush dev "+from.Iface+"\n"+
		"ip link set "+from.Iface+" address "+to.MAC+"\n"+
		"ip link set "+to.Iface+" address "+hm.MAC+"\n"+
		"ip addr add "+hm.IP.String()+"/24 dev "+to.Iface+"\n"+
		"ip link set "+to.Iface+" up\n")
	moved, err := parseUnixTime(out)
	if err != nil {
		f.t.Fatalf("move script: %v", err)
	}
	f.waitPing("hm", f.m.host("h2").IP.String())
	f.at["hm"] = to.At
	return moved
}
