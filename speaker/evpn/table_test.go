package evpn

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	vtep1 = netip.MustParseAddr("10.0.0.1")
	vtep2 = netip.MustParseAddr("10.0.0.2")
	vtep3 = netip.MustParseAddr("10.0.0.3")
	mac1  = MAC{2, 0, 0, 0, 0, 1}
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// step is one input to the table in a scenario.
type step struct {
	at    time.Duration
	op    string // "remote", "withdraw", "local", "localdel", "imet", "imet-withdraw", "clear"
	from  netip.Addr
	seq   uint32
	stick bool
	rt    RT
	want  []string // effects, formatted by fmtEffect, in order
}

func rtAuto(vni uint32) RT { return AutoRT(65000, vni) }

func remoteRoute(vtep netip.Addr, seq uint32, sticky bool, rt RT) *Route {
	return &Route{
		Key:     Key{Type: RouteTypeMACIP, RD: RDFromIP(vtep, 2), MAC: mac1},
		Labels:  []uint32{100},
		NextHop: vtep, RTs: []RT{rt}, Encap: TunnelTypeVXLAN,
		Mobility: seq > 0 || sticky, Seq: seq, Sticky: sticky,
	}
}

func imetRoute(vtep netip.Addr, rt RT) *Route {
	return &Route{
		Key:     Key{Type: RouteTypeIMET, RD: RDFromIP(vtep, 2), IP: vtep},
		NextHop: vtep, RTs: []RT{rt}, Encap: TunnelTypeVXLAN,
		PMSI: &PMSI{Type: PMSIIngressReplication, Label: 100, Endpoint: vtep},
	}
}

func fmtEffect(e Effect) string {
	switch e.Kind {
	case FIBSetMAC:
		return fmt.Sprintf("set %d %s %s", e.VNI, e.MAC, e.VTEP)
	case FIBDelMAC:
		return fmt.Sprintf("del %d %s", e.VNI, e.MAC)
	case FIBAddFlood:
		return fmt.Sprintf("flood+ %d %s", e.VNI, e.VTEP)
	case FIBDelFlood:
		return fmt.Sprintf("flood- %d %s", e.VNI, e.VTEP)
	case Advertise:
		return fmt.Sprintf("adv %d %s seq=%d sticky=%v", e.VNI, e.MAC, e.Seq, e.Sticky)
	case WithdrawLocal:
		return fmt.Sprintf("wdr %d %s", e.VNI, e.MAC)
	case DuplicateDetected:
		if e.Reason == "listed" {
			return e.MAC.String()
		}
		if e.Reason == "listed-moves" {
			return fmt.Sprintf("moves=%d", e.Moves)
		}
		if e.Reason != "" {
			return fmt.Sprintf("dup %d %s moves=%d (%s)", e.VNI, e.MAC, e.Moves, e.Reason)
		}
		return fmt.Sprintf("dup %d %s moves=%d", e.VNI, e.MAC, e.Moves)
	case Rejected:
		if e.Odd != "" {
			return fmt.Sprintf("rejected %s: %s", e.Odd, e.Reason)
		}
		return "rejected: " + e.Reason
	case OddRoute:
		return fmt.Sprintf("odd %s %d %s", e.Odd, e.VNI, e.MAC)
	}
	return "?"
}

func TestSelection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		local  netip.Addr // this leaf's VTEP
		freeze bool
		steps  []step
	}{
		{name: "remote install and withdraw", local: vtep3, steps: []step{
			{op: "remote", from: vtep1, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{op: "remote", from: vtep1, want: nil}, // re-feed is harmless
			{op: "withdraw", from: vtep1, want: []string{"del 100 02:00:00:00:00:01"}},
			{op: "withdraw", from: vtep1, want: nil},
		}},
		{name: "move between remotes replaces in place", local: vtep3, steps: []step{
			{op: "remote", from: vtep1, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{op: "remote", from: vtep2, seq: 1, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
			// the old leaf's withdraw after the move changes nothing
			{op: "withdraw", from: vtep1, want: nil},
			{op: "withdraw", from: vtep2, want: []string{"del 100 02:00:00:00:00:01"}},
		}},
		{name: "withdraw of the loser keeps the winner", local: vtep3, steps: []step{
			{op: "remote", from: vtep2, seq: 1, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
			{op: "remote", from: vtep1, seq: 0, want: nil},
			{op: "withdraw", from: vtep2, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
		}},
		{name: "equal sequence: lowest VTEP wins", local: vtep3, steps: []step{
			{op: "remote", from: vtep2, seq: 4, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
			{op: "remote", from: vtep1, seq: 4, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
		}},
		{name: "withdraw before relearn restarts at seq 0", local: vtep3, steps: []step{
			{op: "remote", from: vtep1, seq: 3, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{op: "withdraw", from: vtep1, want: []string{"del 100 02:00:00:00:00:01"}},
			{op: "remote", from: vtep2, seq: 0, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
		}},
		{name: "sticky never moves", local: vtep3, steps: []step{
			{op: "remote", from: vtep2, stick: true, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
			{op: "remote", from: vtep1, seq: 9, want: nil},
			{op: "local", want: nil}, // a local learn does not beat a sticky remote
		}},
		{name: "local learn beats remote with seq+1, then loses to a higher seq", local: vtep3, steps: []step{
			{op: "remote", from: vtep1, seq: 2, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{op: "local", want: []string{"del 100 02:00:00:00:00:01", "adv 100 02:00:00:00:00:01 seq=3 sticky=false"}},
			{op: "remote", from: vtep2, seq: 4, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2", "wdr 100 02:00:00:00:00:01"}},
			{op: "localdel", want: nil},
		}},
		{name: "local on equal sequence loses to a lower VTEP", local: vtep3, steps: []step{
			{op: "local", want: []string{"adv 100 02:00:00:00:00:01 seq=0 sticky=false"}},
			{op: "remote", from: vtep1, seq: 0, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1", "wdr 100 02:00:00:00:00:01"}},
		}},
		{name: "local on equal sequence beats a higher VTEP", local: vtep1, steps: []step{
			{op: "local", want: []string{"adv 100 02:00:00:00:00:01 seq=0 sticky=false"}},
			{op: "remote", from: vtep2, seq: 0, want: nil},
			{op: "localdel", want: []string{"wdr 100 02:00:00:00:00:01", "set 100 02:00:00:00:00:01 10.0.0.2"}},
		}},
		{name: "own reflected route ignored", local: vtep1, steps: []step{
			{op: "remote", from: vtep1, seq: 5, want: nil},
		}},
		{name: "unknown RT not imported", local: vtep3, steps: []step{
			{op: "remote", from: vtep1, rt: RT{Admin: 65000, Value: 999}, want: []string{"rejected: no route target matches a local VNI"}},
		}},
		{name: "auto RT matches on the VNI whatever the ASN (eBGP)", local: vtep3, steps: []step{
			{op: "remote", from: vtep1, rt: RT{Admin: 65101, Value: 100}, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
		}},
		{name: "flood list refcounted per VTEP", local: vtep3, steps: []step{
			{op: "imet", from: vtep1, want: []string{"flood+ 100 10.0.0.1"}},
			{op: "imet", from: vtep1, want: nil},
			{op: "imet", from: vtep2, want: []string{"flood+ 100 10.0.0.2"}},
			{op: "imet-withdraw", from: vtep1, want: []string{"flood- 100 10.0.0.1"}},
			{op: "imet-withdraw", from: vtep1, want: nil},
		}},
		{name: "duplicate after 5 moves in 180s, forwarding continues", local: vtep3, steps: []step{
			{op: "remote", from: vtep1, seq: 0, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 10 * time.Second, op: "remote", from: vtep2, seq: 1, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
			{at: 20 * time.Second, op: "remote", from: vtep1, seq: 2, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 30 * time.Second, op: "remote", from: vtep2, seq: 3, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
			{at: 40 * time.Second, op: "remote", from: vtep1, seq: 4, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 50 * time.Second, op: "remote", from: vtep2, seq: 5, want: []string{"dup 100 02:00:00:00:00:01 moves=5", "set 100 02:00:00:00:00:01 10.0.0.2"}},
			// a duplicate that is not frozen is still advertised from where it is now
			{at: 60 * time.Second, op: "local", want: []string{"del 100 02:00:00:00:00:01", "adv 100 02:00:00:00:00:01 seq=6 sticky=false"}},
			{at: 61 * time.Second, op: "clear", want: nil},
		}},
		{name: "a MAC back elsewhere right after its withdraw has moved", local: vtep3, steps: []step{
			// the old leaf withdraws before the new one advertises, as when a
			// VM leaves its old leaf first: each reappearance is a move
			{op: "remote", from: vtep1, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 1 * time.Second, op: "withdraw", from: vtep1, want: []string{"del 100 02:00:00:00:00:01"}},
			{at: 1 * time.Second, op: "remote", from: vtep2, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
			{at: 2 * time.Second, op: "withdraw", from: vtep2, want: []string{"del 100 02:00:00:00:00:01"}},
			{at: 2 * time.Second, op: "local", want: []string{"adv 100 02:00:00:00:00:01 seq=1 sticky=false"}},
			{at: 3 * time.Second, op: "localdel", want: []string{"wdr 100 02:00:00:00:00:01"}},
			{at: 3 * time.Second, op: "remote", from: vtep1, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 4 * time.Second, op: "withdraw", from: vtep1, want: []string{"del 100 02:00:00:00:00:01"}},
			{at: 4 * time.Second, op: "remote", from: vtep2, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
			{at: 5 * time.Second, op: "withdraw", from: vtep2, want: []string{"del 100 02:00:00:00:00:01"}},
			{at: 5 * time.Second, op: "remote", from: vtep1, want: []string{"dup 100 02:00:00:00:00:01 moves=5", "set 100 02:00:00:00:00:01 10.0.0.1"}},
		}},
		{name: "a MAC learned right after its withdraw bids above the withdrawn route", local: vtep3, steps: []step{
			// break-before-make: the old leaf withdraws before this one
			// learns the MAC; the move still raises the sequence number,
			// so a late copy of the old route does not tie with ours
			{op: "remote", from: vtep1, seq: 4, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 1 * time.Second, op: "withdraw", from: vtep1, want: []string{"del 100 02:00:00:00:00:01"}},
			{at: 2 * time.Second, op: "local", want: []string{"adv 100 02:00:00:00:00:01 seq=5 sticky=false"}},
			{at: 2 * time.Second, op: "remote", from: vtep1, seq: 4, want: nil},
			{at: 3 * time.Second, op: "withdraw", from: vtep1, want: nil},
			// gone again, and back here: above its own last route
			{at: 4 * time.Second, op: "localdel", want: []string{"wdr 100 02:00:00:00:00:01"}},
			{at: 5 * time.Second, op: "local", want: []string{"adv 100 02:00:00:00:00:01 seq=6 sticky=false"}},
			// long after (moveGap passed): forgotten, back at 0
			{at: 6 * time.Second, op: "localdel", want: []string{"wdr 100 02:00:00:00:00:01"}},
			{at: 12 * time.Second, op: "expire", want: nil},
			{at: 12 * time.Second, op: "local", want: []string{"adv 100 02:00:00:00:00:01 seq=0 sticky=false"}},
		}},
		{name: "a MAC back at the same place, or long after, has not moved", local: vtep3, steps: []step{
			{op: "remote", from: vtep1, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 1 * time.Second, op: "withdraw", from: vtep1, want: []string{"del 100 02:00:00:00:00:01"}},
			{at: 1 * time.Second, op: "remote", from: vtep1, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 2 * time.Second, op: "withdraw", from: vtep1, want: []string{"del 100 02:00:00:00:00:01"}},
			{at: 8 * time.Second, op: "expire", want: nil}, // forgets it: moveGap passed
			{at: 8 * time.Second, op: "remote", from: vtep2, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
			{at: 9 * time.Second, op: "moves", want: []string{"moves=0"}},
		}},
		{name: "moves spread beyond the window are not duplicates", local: vtep3, steps: []step{
			{op: "remote", from: vtep1, seq: 0, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 100 * time.Second, op: "remote", from: vtep2, seq: 1, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
			{at: 200 * time.Second, op: "remote", from: vtep1, seq: 2, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 300 * time.Second, op: "remote", from: vtep2, seq: 3, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
			{at: 400 * time.Second, op: "remote", from: vtep1, seq: 4, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 500 * time.Second, op: "remote", from: vtep2, seq: 5, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
		}},
		{name: "refused local route is bid again above the highest seen", local: vtep3, steps: []step{
			{op: "local", want: []string{"adv 100 02:00:00:00:00:01 seq=0 sticky=false"}},
			// BGP refused seq 0: a remote seq 2 was in its RIB; it arrives now
			{op: "remote", from: vtep1, seq: 2, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1", "wdr 100 02:00:00:00:00:01"}},
			{op: "outbid", want: []string{"del 100 02:00:00:00:00:01", "adv 100 02:00:00:00:00:01 seq=3 sticky=false"}},
		}},
		{name: "a remote at the maximum sequence: the local bid saturates, no wrap to 0", local: vtep1, steps: []step{
			{op: "remote", from: vtep2, seq: MaxSeq, want: []string{
				"odd seq-at-maximum 100 02:00:00:00:00:01",
				"set 100 02:00:00:00:00:01 10.0.0.2",
				"dup 100 02:00:00:00:00:01 moves=0 (a route has the maximum MAC mobility sequence number)"}},
			// equal at the maximum: the lower VTEP (this leaf) wins
			{op: "local", want: []string{"del 100 02:00:00:00:00:01", "adv 100 02:00:00:00:00:01 seq=4294967295 sticky=false"}},
			{op: "dups", want: []string{"02:00:00:00:00:01"}},
			// the alarm lasts while the route sits at the maximum
			{at: time.Hour, op: "expire", want: nil},
			{at: time.Hour, op: "dups", want: []string{"02:00:00:00:00:01"}},
		}},
		{name: "the local bid at the maximum raises the duplicate alarm", local: vtep3, steps: []step{
			{op: "remote", from: vtep1, seq: MaxSeq - 1, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{op: "local", want: []string{"del 100 02:00:00:00:00:01", "adv 100 02:00:00:00:00:01 seq=4294967295 sticky=false"}},
			{op: "localdel", want: []string{"wdr 100 02:00:00:00:00:01", "set 100 02:00:00:00:00:01 10.0.0.1"}},
			{op: "remote", from: vtep2, seq: MaxSeq, want: []string{
				"odd seq-at-maximum 100 02:00:00:00:00:01",
				"set 100 02:00:00:00:00:01 10.0.0.2",
				"dup 100 02:00:00:00:00:01 moves=3 (a route has the maximum MAC mobility sequence number)"}},
			// loses the tie to the lower VTEP: not advertised, but flagged
			{op: "local", want: nil},
			{op: "outbid", want: nil},
			{op: "clear", want: nil},
			{op: "outbid", want: []string{"dup 100 02:00:00:00:00:01 moves=0 (the local bid is at the maximum MAC mobility sequence number)"}},
		}},
		{name: "the bid comes from the routes present now, not a historical maximum", local: vtep3, steps: []step{
			{op: "remote", from: vtep1, seq: 7, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{op: "withdraw", from: vtep1, want: []string{"del 100 02:00:00:00:00:01"}},
			{op: "remote", from: vtep2, seq: 0, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
			{op: "local", want: []string{"del 100 02:00:00:00:00:01", "adv 100 02:00:00:00:00:01 seq=1 sticky=false"}},
			{op: "outbid", want: []string{"adv 100 02:00:00:00:00:01 seq=2 sticky=false"}},
		}},
		{name: "local MAC becoming static is re-advertised sticky", local: vtep3, steps: []step{
			{op: "local", want: []string{"adv 100 02:00:00:00:00:01 seq=0 sticky=false"}},
			{op: "local", stick: true, want: []string{"adv 100 02:00:00:00:00:01 seq=0 sticky=true"}},
			{op: "local", stick: true, want: nil},
		}},
		{name: "martian VTEP refused", local: vtep3, steps: []step{
			{op: "remote", from: netip.MustParseAddr("127.0.0.1"), want: []string{"rejected: " + ReasonUnusableVTEP}},
			{op: "remote", from: netip.MustParseAddr("239.1.1.1"), want: []string{"rejected: " + ReasonUnusableVTEP}},
			{op: "remote", from: netip.MustParseAddr("169.254.0.2"), want: []string{"rejected: " + ReasonUnusableVTEP}},
			{op: "remote", from: netip.MustParseAddr("0.1.2.3"), want: []string{"rejected: " + ReasonUnusableVTEP}},
			{op: "remote", from: netip.MustParseAddr("240.0.0.1"), want: []string{"rejected: " + ReasonUnusableVTEP}},
			{op: "imet", from: netip.MustParseAddr("169.254.0.2"), want: []string{"rejected: " + ReasonUnusableVTEP}},
			{op: "imet", from: netip.MustParseAddr("0.0.0.9"), want: []string{"rejected: " + ReasonUnusableVTEP}},
		}},
		{name: "duplicate recovers after a quiet window", local: vtep3, steps: []step{
			{op: "remote", from: vtep1, seq: 0, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 1 * time.Second, op: "remote", from: vtep2, seq: 1, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
			{at: 2 * time.Second, op: "remote", from: vtep1, seq: 2, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 3 * time.Second, op: "remote", from: vtep2, seq: 3, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
			{at: 4 * time.Second, op: "remote", from: vtep1, seq: 4, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 5 * time.Second, op: "remote", from: vtep2, seq: 5, want: []string{"dup 100 02:00:00:00:00:01 moves=5", "set 100 02:00:00:00:00:01 10.0.0.2"}},
			{at: 6 * time.Second, op: "local", want: []string{"del 100 02:00:00:00:00:01", "adv 100 02:00:00:00:00:01 seq=6 sticky=false"}},
			{at: 100 * time.Second, op: "expire", want: nil}, // moved 94 s ago: still in the window
			{at: 106 * time.Second, op: "dups", want: []string{"02:00:00:00:00:01"}},
			{at: 187 * time.Second, op: "expire", want: nil}, // cleared; it was advertised all along
			{at: 188 * time.Second, op: "dups", want: nil},
		}},
		{name: "freeze keeps the location at detection", local: vtep3, freeze: true, steps: []step{
			{op: "remote", from: vtep1, seq: 0, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 1 * time.Second, op: "remote", from: vtep2, seq: 1, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
			{at: 2 * time.Second, op: "remote", from: vtep1, seq: 2, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 3 * time.Second, op: "remote", from: vtep2, seq: 3, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
			{at: 4 * time.Second, op: "remote", from: vtep1, seq: 4, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 5 * time.Second, op: "remote", from: vtep2, seq: 5, want: []string{"dup 100 02:00:00:00:00:01 moves=5"}},
			{at: 6 * time.Second, op: "remote", from: vtep2, seq: 6, want: nil},
			{at: 6 * time.Second, op: "local", want: nil}, // frozen: a local learn is neither installed nor advertised
			{at: 6 * time.Second, op: "localdel", want: nil},
			{at: 7 * time.Second, op: "clear", want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := NewTable(Options{LocalVTEP: tc.local, RouterID: tc.local, Freeze: tc.freeze},
				[]ImportRule{{VNI: 100, Auto: true}, {VNI: 200, Auto: true}})
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				rt := s.rt
				if rt == (RT{}) {
					rt = rtAuto(100)
				}
				var eff []Effect
				switch s.op {
				case "remote":
					eff = tab.Update(remoteRoute(s.from, s.seq, s.stick, rt), now)
				case "withdraw":
					eff = tab.Withdraw(remoteRoute(s.from, 0, false, rt).Key, now)
				case "local":
					eff = tab.LocalAdd(100, mac1, s.stick, now)
				case "localdel":
					eff = tab.LocalDel(100, mac1, now)
				case "imet":
					eff = tab.Update(imetRoute(s.from, rt), now)
				case "imet-withdraw":
					eff = tab.Withdraw(imetRoute(s.from, rt).Key, now)
				case "clear":
					eff = tab.ClearDuplicate(100, mac1, now)
				case "expire":
					eff = tab.Expire(now)
				case "outbid":
					eff = tab.Outbid(100, mac1, s.seq, now)
				case "moves":
					st := tab.macs[MACKey{100, mac1}]
					eff = append(eff, Effect{Kind: DuplicateDetected, Reason: "listed-moves", Moves: len(st.moves)})
				case "dups":
					for _, mi := range tab.Duplicates() {
						eff = append(eff, Effect{Kind: DuplicateDetected, MAC: mi.MAC, Reason: "listed"})
					}
				default:
					t.Fatalf("bad op %q", s.op)
				}
				var got []string
				for _, e := range eff {
					if e.Kind == Selected {
						continue // checked by TestSelectedEffect
					}
					got = append(got, fmtEffect(e))
				}
				if strings.Join(got, "\n") != strings.Join(s.want, "\n") {
					t.Fatalf("step %d (%s from %s seq %d):\n got: %q\nwant: %q", i, s.op, s.from, s.seq, got, s.want)
				}
			}
		})
	}
}

func TestUsableVTEP(t *testing.T) {
	for a, want := range map[string]bool{
		"10.0.0.1": true, "1.0.0.1": true, "169.253.255.255": true, "169.255.0.1": true, "223.255.255.254": true,
		"126.255.255.255": true, "128.0.0.1": true,
		"0.0.0.0": false, "0.1.2.3": false, "127.0.0.1": false, "127.255.0.1": false, "169.254.0.1": false,
		"169.254.255.255": false, "224.0.0.5": false, "239.1.1.1": false, "240.0.0.1": false,
		"255.255.255.255": false, "2001:db8::1": false, "::ffff:10.0.0.1": false,
	} {
		if got := UsableVTEP(netip.MustParseAddr(a)); got != want {
			t.Errorf("UsableVTEP(%s) = %v, want %v", a, got, want)
		}
	}
}

// A route whose next hop changes to a martian one takes its MAC away.
func TestMartianNextHopWithdrawsRoute(t *testing.T) {
	tab := NewTable(Options{LocalVTEP: vtep3, RouterID: vtep3}, []ImportRule{{VNI: 100, Auto: true}})
	r := remoteRoute(vtep1, 0, false, rtAuto(100))
	if eff := tab.Update(r, t0); !slices.ContainsFunc(eff, func(e Effect) bool { return e.Kind == FIBSetMAC }) {
		t.Fatalf("valid route: %v", eff)
	}
	m := *r
	m.NextHop = netip.MustParseAddr("169.254.1.1")
	var kinds []string
	for _, e := range tab.Update(&m, t0) {
		if e.Kind != Selected {
			kinds = append(kinds, fmtEffect(e))
		}
	}
	want := []string{"del 100 02:00:00:00:00:01", "rejected: " + ReasonUnusableVTEP}
	if strings.Join(kinds, "\n") != strings.Join(want, "\n") {
		t.Fatalf("martian next hop: %q, want %q", kinds, want)
	}
}

func TestImporterPrefersLabel(t *testing.T) {
	im := NewImporter([]ImportRule{
		{VNI: 100, RTs: []RT{{Admin: 1, Value: 1}}},
		{VNI: 200, RTs: []RT{{Admin: 1, Value: 1}}},
		{VNI: 300, Auto: true},
	})
	r := &Route{Key: Key{Type: RouteTypeMACIP}, Labels: []uint32{200}, RTs: []RT{{Admin: 1, Value: 1}}}
	if v, ok := im.VNIFor(r); !ok || v != 200 {
		t.Fatalf("VNIFor = %d,%v want 200", v, ok)
	}
	r.Labels = []uint32{7}
	if v, ok := im.VNIFor(r); !ok || v != 100 {
		t.Fatalf("VNIFor = %d,%v want 100 (first match)", v, ok)
	}
	r.RTs = []RT{{IPv4: true, Admin: 1, Value: 300}}
	if _, ok := im.VNIFor(r); ok {
		t.Fatal("an IPv4-form RT must not match an auto RT")
	}
	r.RTs = []RT{{Admin: 64512, Value: 300}}
	if v, ok := im.VNIFor(r); !ok || v != 300 {
		t.Fatalf("auto RT with another ASN: %d,%v want 300", v, ok)
	}
}

func TestSelectedEffect(t *testing.T) {
	tab := NewTable(Options{LocalVTEP: vtep3, RouterID: vtep3, DupMoves: 5, DupWindow: time.Minute}, []ImportRule{{VNI: 100, Auto: true}})
	sel := func(eff []Effect) []string {
		var out []string
		for _, e := range eff {
			if e.Kind == Selected {
				out = append(out, fmt.Sprintf("%v/%s -> %v/%s seq=%d", e.PrevLocal, e.PrevVTEP, e.Local, e.VTEP, e.Seq))
			}
		}
		return out
	}
	steps := []struct {
		eff  []Effect
		want string
	}{
		{tab.Update(remoteRoute(vtep1, 0, false, rtAuto(100)), t0), "false/invalid IP -> false/10.0.0.1 seq=0"},
		{tab.Update(remoteRoute(vtep2, 1, false, rtAuto(100)), t0), "false/10.0.0.1 -> false/10.0.0.2 seq=1"},
		{tab.LocalAdd(100, mac1, false, t0), "false/10.0.0.2 -> true/invalid IP seq=2"},
		{tab.Update(remoteRoute(vtep2, 1, false, rtAuto(100)), t0), ""}, // no change
		{tab.LocalDel(100, mac1, t0), "true/invalid IP -> false/10.0.0.2 seq=1"},
		{tab.Withdraw(remoteRoute(vtep2, 1, false, rtAuto(100)).Key, t0), "false/10.0.0.2 -> false/10.0.0.1 seq=0"},
		{tab.Withdraw(remoteRoute(vtep1, 0, false, rtAuto(100)).Key, t0), "false/10.0.0.1 -> false/invalid IP seq=0"},
	}
	for i, s := range steps {
		if got := strings.Join(sel(s.eff), ";"); got != s.want {
			t.Errorf("step %d: got %q, want %q", i, got, s.want)
		}
	}
}

func TestLookupOthers(t *testing.T) {
	tab := NewTable(Options{LocalVTEP: vtep3, RouterID: vtep3, DupMoves: 5, DupWindow: time.Minute}, []ImportRule{{VNI: 100, Auto: true}})
	tab.Update(remoteRoute(vtep1, 0, false, rtAuto(100)), t0)
	tab.Update(remoteRoute(vtep2, 0, false, rtAuto(100)), t0)
	mi, ok := tab.Lookup(100, mac1)
	if !ok || mi.VTEP != vtep1 || len(mi.Others) != 1 || mi.Others[0] != vtep2 {
		t.Fatalf("got %+v", mi)
	}
	tab.LocalAdd(100, mac1, false, t0)
	mi, _ = tab.Lookup(100, mac1)
	if !mi.Local || len(mi.Others) != 2 {
		t.Fatalf("local: got %+v", mi)
	}
}

// TestDuplicateKeepsForwarding drives a MAC around three leafs 20 times, as
// seen by the third leaf, with the default detection (5 moves in 180 s):
// every move is followed (kernel or advertisement), the MAC is flagged
// duplicate once, and only Freeze pins it.
func TestDuplicateKeepsForwarding(t *testing.T) {
	for _, freeze := range []bool{false, true} {
		t.Run(fmt.Sprintf("freeze=%v", freeze), func(t *testing.T) {
			tab := NewTable(Options{LocalVTEP: vtep3, RouterID: vtep3, Freeze: freeze}, []ImportRule{{VNI: 100, Auto: true}})
			where := []netip.Addr{vtep3, vtep1, vtep2} // the VM's leaf per move, in turn
			var seq uint32
			var prev netip.Addr
			dups := 0
			var pinned netip.Addr
			for move := 0; move <= 20; move++ {
				now := t0.Add(time.Duration(move) * 2 * time.Second)
				at := where[move%3]
				var eff []Effect
				if at == vtep3 {
					eff = tab.LocalAdd(100, mac1, false, now)
				} else {
					eff = tab.Update(remoteRoute(at, seq, false, rtAuto(100)), now)
				}
				// The old location withdraws once the new one has been seen.
				if prev == vtep3 {
					eff = append(eff, tab.LocalDel(100, mac1, now)...)
				} else if prev.IsValid() {
					eff = append(eff, tab.Withdraw(remoteRoute(prev, 0, false, rtAuto(100)).Key, now)...)
				}
				var adv, set bool
				for _, e := range eff {
					switch e.Kind {
					case DuplicateDetected:
						dups++
						if move != 5 {
							t.Errorf("move %d: duplicate detected, want it at move 5", move)
						}
						if pinned = prev; prev == vtep3 {
							pinned = netip.Addr{}
						}
					case Advertise:
						adv = true
						seq = e.Seq + 1
					case FIBSetMAC:
						set = e.VTEP == at
						seq = e.Seq + 1
					}
				}
				mi, ok := tab.Lookup(100, mac1)
				frozen := freeze && move >= 5
				switch {
				case !frozen && at == vtep3 && !adv && move > 0:
					t.Errorf("move %d to this leaf: not advertised: %v", move, eff)
				case !frozen && at == vtep3 && (!ok || !mi.Local):
					t.Errorf("move %d to this leaf: selected %+v", move, mi)
				case !frozen && at != vtep3 && (!set || !ok || mi.VTEP != at):
					t.Errorf("move %d to %s: kernel not moved: %v, selected %+v", move, at, eff, mi)
				case frozen && (adv || set):
					t.Errorf("move %d: frozen MAC moved: %v", move, eff)
				}
				if ok && mi.Duplicate != (move >= 5) {
					t.Errorf("move %d: duplicate=%v", move, mi.Duplicate)
				}
				if frozen && move > 5 && mi.VTEP != pinned {
					t.Errorf("move %d: frozen MAC at %s, want it pinned at %s", move, mi.VTEP, pinned)
				}
				prev = at
			}
			if dups != 1 {
				t.Errorf("duplicate detected %d times, want once", dups)
			}
		})
	}
}

func TestOddRoutes(t *testing.T) {
	rt := rtAuto(100)
	mk := func(mod func(r *Route)) *Route {
		r := remoteRoute(vtep1, 0, false, rt)
		mod(r)
		return r
	}
	imet := func(mod func(r *Route)) *Route {
		r := imetRoute(vtep1, rt)
		mod(r)
		return r
	}
	for _, tc := range []struct {
		name string
		r    *Route
		want []string
	}{
		{"label 0 is not installed", mk(func(r *Route) { r.Labels = []uint32{0} }),
			[]string{"rejected label-zero: type-2 with label 0: no VNI to send to"}},
		{"downstream VNI is installed with it", mk(func(r *Route) { r.Labels = []uint32{5100} }),
			[]string{"odd downstream-vni 100 02:00:00:00:00:01", "set 100 02:00:00:00:00:01 10.0.0.1 vni 5100"}},
		{"type-3 without PMSI: no flood entry", imet(func(r *Route) { r.PMSI = nil }),
			[]string{"rejected no-pmsi: type-3 without a PMSI tunnel attribute: no flood entry"}},
		{"type-3 with PIM-SM: no flood entry", imet(func(r *Route) { r.PMSI.Type = 3 }),
			[]string{"rejected pmsi-not-ingress-replication: type-3 PMSI tunnel type 3 is not ingress replication (6): no flood entry"}},
		{"IPv6 next hop", mk(func(r *Route) { r.NextHop = netip.MustParseAddr("2001:db8::1") }),
			[]string{"rejected ipv6-next-hop: IPv6 next hop 2001:db8::1 on an IPv4 VTEP fabric"}},
		{"ESI without A-D is installed towards the next hop", mk(func(r *Route) { r.ESI = ESI{0, 1, 2, 3, 4, 5, 6, 7, 8, 9} }),
			[]string{"odd esi-without-ad 100 02:00:00:00:00:01", "set 100 02:00:00:00:00:01 10.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := NewTable(Options{LocalVTEP: vtep3, RouterID: vtep3}, []ImportRule{{VNI: 100, Auto: true}})
			fmtAll := func(eff []Effect) []string {
				var got []string
				for _, e := range eff {
					if e.Kind == Selected {
						continue
					}
					s := fmtEffect(e)
					if e.Kind == FIBSetMAC && e.SendVNI != 0 {
						s += fmt.Sprintf(" vni %d", e.SendVNI)
					}
					got = append(got, s)
				}
				return got
			}
			got := fmtAll(tab.Update(tc.r, t0))
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
			// Re-fed unchanged, an odd route is reported once only.
			for _, s := range fmtAll(tab.Update(tc.r, t0.Add(time.Second))) {
				if strings.HasPrefix(s, "odd ") {
					t.Errorf("reported again on re-feed: %s", s)
				}
			}
		})
	}
}

// A remote sticky MAC is installed pinned; a route that turns sticky (or
// stops being sticky) at the same VTEP is installed again with the flag.
func TestStickyRemoteInstalledPinned(t *testing.T) {
	tab := NewTable(Options{LocalVTEP: vtep3, RouterID: vtep3}, []ImportRule{{VNI: 100, Auto: true}})
	sets := func(eff []Effect) []string {
		var out []string
		for _, e := range eff {
			if e.Kind == FIBSetMAC {
				out = append(out, fmt.Sprintf("%s sticky=%v", e.VTEP, e.Sticky))
			}
		}
		return out
	}
	steps := []struct {
		r    *Route
		want []string
	}{
		{remoteRoute(vtep1, 0, true, rtAuto(100)), []string{"10.0.0.1 sticky=true"}},
		{remoteRoute(vtep1, 0, true, rtAuto(100)), nil},
		{remoteRoute(vtep1, 1, false, rtAuto(100)), []string{"10.0.0.1 sticky=false"}},
		{remoteRoute(vtep1, 1, true, rtAuto(100)), []string{"10.0.0.1 sticky=true"}},
	}
	for i, s := range steps {
		if got := sets(tab.Update(s.r, t0)); !slices.Equal(got, s.want) {
			t.Errorf("step %d: kernel writes %q, want %q", i, got, s.want)
		}
	}
}
