package evpn

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// walkCounts counts every VNI's MACs by a full walk, as the API did before
// the table kept counts.
func walkCounts(t *Table) map[uint32]VNICounts {
	out := map[uint32]VNICounts{}
	t.MACs(func(mi MACInfo) bool {
		c := out[mi.VNI]
		switch {
		case mi.Local:
			c.Local++
		case mi.VTEP.IsValid():
			c.Remote++
		}
		if mi.Duplicate {
			c.Duplicates++
		}
		out[mi.VNI] = c
		return true
	})
	for v, c := range out {
		if c == (VNICounts{}) {
			delete(out, v)
		}
	}
	return out
}

// TestCountsMatchWalk drives a table with random remote updates (moves
// between VTEPs, sequence numbers, sticky), withdrawals, local learns and
// deletes, duplicate clears, expiry and VNI removal, with and without
// freezing, and checks after every step that the kept counts equal a full
// walk of the MACs.
func TestCountsMatchWalk(t *testing.T) {
	for _, freeze := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(1, uint64(map[bool]int{false: 2, true: 3}[freeze])))
		local := netip.MustParseAddr("10.0.0.9")
		vnis := []uint32{100, 200, 300}
		var rules []ImportRule
		for _, v := range vnis {
			rules = append(rules, ImportRule{VNI: v, Auto: true})
		}
		tb := NewTable(Options{LocalVTEP: local, DupMoves: 3, DupWindow: time.Minute, Freeze: freeze}, rules)
		now := t0
		vteps := []netip.Addr{vtep1, vtep2, vtep3}
		maxSeq := map[MACKey]uint32{}
		sawDup, sawLocal, sawRemote := false, false, false
		for i := range 20_000 {
			now = now.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
			vni := vnis[rng.IntN(len(vnis))]
			mac := MAC{2, 0, 0, 0, 0, byte(rng.IntN(16))}
			mk := MACKey{vni, mac}
			vt := vteps[rng.IntN(len(vteps))]
			key := Key{Type: RouteTypeMACIP, RD: RDFromIP(vt, uint16(vni)), MAC: mac}
			switch op := rng.IntN(10); {
			case op < 4:
				seq := maxSeq[mk] + uint32(rng.IntN(2))
				maxSeq[mk] = seq
				r := LocalMACRoute(key.RD, vni, mac, vt, []RT{AutoRT(65000, vni)}, seq, rng.IntN(20) == 0)
				tb.Update(r, now)
			case op < 6:
				tb.Withdraw(key, now)
			case op < 8:
				tb.LocalAdd(vni, mac, rng.IntN(20) == 0, now)
			case op < 9:
				tb.LocalDel(vni, mac, now)
			default:
				switch rng.IntN(20) {
				case 0:
					tb.RemoveVNI(vni)
				case 3:
					tb.RemoveVNIs(map[uint32]bool{vni: true, vnis[rng.IntN(len(vnis))]: true})
				case 1, 2:
					tb.Expire(now)
				default:
					tb.ClearDuplicate(vni, mac, now)
				}
			}
			want := walkCounts(tb)
			for _, v := range vnis {
				sawDup = sawDup || want[v].Duplicates > 0
				sawLocal = sawLocal || want[v].Local > 0
				sawRemote = sawRemote || want[v].Remote > 0
				if got := tb.Counts(v); got != want[v] {
					t.Fatalf("freeze=%v step %d: counts of vni %d = %+v, a walk gives %+v", freeze, i, v, got, want[v])
				}
			}
			if len(tb.counts) != len(want) {
				t.Fatalf("freeze=%v step %d: %d VNIs counted, a walk finds %d", freeze, i, len(tb.counts), len(want))
			}
		}
		if !sawDup || !sawLocal || !sawRemote {
			t.Fatalf("freeze=%v: the run never had duplicate (%v), local (%v) and remote (%v) MACs; it checks too little", freeze, sawDup, sawLocal, sawRemote)
		}
	}
}

// New duplicate-detection settings apply to the next moves.
func TestSetDuplicateDetection(t *testing.T) {
	tb := NewTable(Options{LocalVTEP: vtep3}, []ImportRule{{VNI: 100, Auto: true}})
	now := t0
	move := func(i int) []Effect {
		from := []netip.Addr{vtep1, vtep2}[i%2]
		return tb.Update(remoteRoute(from, uint32(i), false, rtAuto(100)), now)
	}
	move(0)
	move(1) // 1 move: below the default 5
	tb.SetDuplicateDetection(2, time.Minute, true)
	var dup bool
	for _, e := range move(2) { // the second move
		dup = dup || e.Kind == DuplicateDetected
	}
	if !dup {
		t.Fatal("2 moves with duplicate-moves 2: not flagged")
	}
	if mi, _ := tb.Lookup(100, mac1); !mi.Frozen {
		t.Error("freeze set by SetDuplicateDetection: the duplicate is not frozen")
	}
}
