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
		return fmt.Sprintf("dup %d %s moves=%d", e.VNI, e.MAC, e.Moves)
	case Rejected:
		return "rejected: " + e.Reason
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
			// a local learn of a duplicate is not advertised
			{at: 60 * time.Second, op: "local", want: []string{"del 100 02:00:00:00:00:01"}},
			{at: 61 * time.Second, op: "clear", want: []string{"adv 100 02:00:00:00:00:01 seq=6 sticky=false"}},
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
			{op: "readvertise", want: []string{"del 100 02:00:00:00:00:01", "adv 100 02:00:00:00:00:01 seq=3 sticky=false"}},
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
			{at: 6 * time.Second, op: "local", want: []string{"del 100 02:00:00:00:00:01"}},
			{at: 100 * time.Second, op: "expire", want: nil}, // moved 94 s ago: still in the window
			{at: 187 * time.Second, op: "expire", want: []string{"adv 100 02:00:00:00:00:01 seq=6 sticky=false"}},
			{at: 188 * time.Second, op: "expire", want: nil},
		}},
		{name: "freeze keeps the location at detection", local: vtep3, freeze: true, steps: []step{
			{op: "remote", from: vtep1, seq: 0, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 1 * time.Second, op: "remote", from: vtep2, seq: 1, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
			{at: 2 * time.Second, op: "remote", from: vtep1, seq: 2, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 3 * time.Second, op: "remote", from: vtep2, seq: 3, want: []string{"set 100 02:00:00:00:00:01 10.0.0.2"}},
			{at: 4 * time.Second, op: "remote", from: vtep1, seq: 4, want: []string{"set 100 02:00:00:00:00:01 10.0.0.1"}},
			{at: 5 * time.Second, op: "remote", from: vtep2, seq: 5, want: []string{"dup 100 02:00:00:00:00:01 moves=5"}},
			{at: 6 * time.Second, op: "remote", from: vtep2, seq: 6, want: nil},
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
				case "readvertise":
					eff = tab.Readvertise(100, mac1, now)
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
