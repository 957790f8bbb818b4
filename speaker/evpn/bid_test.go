package evpn

import (
	"testing"
)

func advertisedSeq(eff []Effect) (uint32, bool) {
	for _, e := range eff {
		if e.Kind == Advertise {
			return e.Seq, true
		}
	}
	return 0, false
}

// Issue 8.4b: BGP refused the local bid because of a path the table never
// held; the bid goes one above that path's sequence number.
func TestOutbidBidsAboveBGP(t *testing.T) {
	tab := NewTable(Options{LocalVTEP: vtep3, RouterID: vtep3}, []ImportRule{{VNI: 100, Auto: true}})
	tab.Update(remoteRoute(vtep1, 2, false, rtAuto(100)), t0)
	if seq, ok := advertisedSeq(tab.LocalAdd(100, mac1, false, t0)); !ok || seq != 3 {
		t.Fatalf("local bid over seq 2: %d %v, want 3", seq, ok)
	}
	// BGP holds a path at 9 (one the import rejected).
	if seq, ok := advertisedSeq(tab.Outbid(100, mac1, 9, t0)); !ok || seq != 10 {
		t.Fatalf("bid after BGP's 9: %d %v, want 10", seq, ok)
	}
	if info, _ := tab.Lookup(100, mac1); !info.Local || info.Seq != 10 {
		t.Fatalf("table: %+v", info)
	}
	// At the maximum: the bid saturates and the MAC is flagged.
	eff := tab.Outbid(100, mac1, MaxSeq, t0)
	if seq, _ := advertisedSeq(eff); seq != MaxSeq {
		t.Fatalf("saturated bid %d", seq)
	}
	if info, _ := tab.Lookup(100, mac1); !info.Duplicate {
		t.Fatalf("a saturated bid is not flagged duplicate: %+v", info)
	}
}

// Issue 8.4h: a restarted leaf learns its local MACs at seq 0 before the
// fabric's routes come in; RebidLocal (at EventSynced) bids above the
// remote routes present, and leaves uncontested MACs alone.
func TestRebidLocalAfterSync(t *testing.T) {
	tab := NewTable(Options{LocalVTEP: vtep3, RouterID: vtep3}, []ImportRule{{VNI: 100, Auto: true}})
	other := MAC{2, 0, 0, 0, 0, 9}
	tab.LocalAdd(100, mac1, false, t0)
	tab.LocalAdd(100, other, false, t0)
	// The initial table: leaf 1 holds mac1 at seq 4 (our previous run had
	// outbid it at 5 before the restart).
	tab.Update(remoteRoute(vtep1, 4, false, rtAuto(100)), t0)
	eff := tab.RebidLocal(t0)
	seq, ok := advertisedSeq(eff)
	if !ok || seq != 5 {
		t.Fatalf("re-bid for the contested MAC: %d %v, want 5 (effects %v)", seq, ok, eff)
	}
	for _, e := range eff {
		if e.MAC == other {
			t.Fatalf("uncontested MAC touched: %v", fmtEffect(e))
		}
	}
	if info, _ := tab.Lookup(100, mac1); !info.Local || info.Seq != 5 {
		t.Fatalf("table: %+v, want local at seq 5", info)
	}
	if eff := tab.RebidLocal(t0); len(eff) != 0 {
		t.Fatalf("second RebidLocal changed something: %v", eff)
	}
}
