package vtep

import (
	"fmt"
	"net"
	"slices"
	"testing"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// fakeResolver: bridge #10 is VNI 100 with access port acc0 #12, a tap
// #13 that no configuration lists, and VXLAN port #11; bridge #20 is VNI
// 200 with access port acc2 #22; #30 is an unmanaged bridge with port #31.
type fakeResolver struct{}

func (fakeResolver) bridgeVNI(idx int) (uint32, bool) {
	switch idx {
	case 10:
		return 100, true
	case 20:
		return 200, true
	}
	return 0, false
}

func (fakeResolver) port(idx int) (string, bool) {
	switch idx {
	case 12:
		return "acc0", true
	case 13:
		return "tap0", true
	case 22:
		return "acc2", true
	case 31:
		return "p31", true
	}
	return "", false
}

func hw(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func emac(s string) evpn.MAC {
	m, err := evpn.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestClassify(t *testing.T) {
	const m1 = "02:00:00:00:00:01"
	key := MACKey{VNI: 100, MAC: emac(m1)}
	base := fdbUpdate{Family: afBridge, LinkIndex: 12, MasterIndex: 10, MAC: hw(m1), State: 0x02 /* NUD_REACHABLE */}
	with := func(f func(*fdbUpdate)) fdbUpdate { u := base; f(&u); return u }
	local := func(port string, idx int, static bool) *localEntry {
		return &localEntry{Port: port, Index: idx, Static: static}
	}
	tests := []struct {
		name  string
		u     fdbUpdate
		ok    bool
		local *localEntry
		del   bool
	}{
		{"learned on access port", base, true, local("acc0", 12, false), false},
		{"stale dynamic entry is still local", with(func(u *fdbUpdate) { u.State = 0x04 }), true, local("acc0", 12, false), false},
		{"static entry", with(func(u *fdbUpdate) { u.State = nudNoARP }), true, local("acc0", 12, true), false},
		{"sticky entry", with(func(u *fdbUpdate) { u.Flags = ntfSticky }), true, local("acc0", 12, true), false},
		{"deleted", with(func(u *fdbUpdate) { u.Deleted = true }), true, nil, true},
		{"port's own address (permanent)", with(func(u *fdbUpdate) { u.State = nudPermanent }), true, nil, false},
		{"extern_learn on access port is evpnd's", with(func(u *fdbUpdate) { u.Flags = ntfExtLearned }), true, nil, false},
		{"locked entry", with(func(u *fdbUpdate) { u.FlagsExt = ntfExtLocked }), true, nil, false},
		{"on the VXLAN port", with(func(u *fdbUpdate) { u.LinkIndex = 11; u.Flags = ntfExtLearned }), true, nil, false},
		{"on the bridge itself", with(func(u *fdbUpdate) { u.LinkIndex = 10; u.State = nudPermanent }), true, nil, false},
		{"a port no configuration lists (a tap enslaved later)", with(func(u *fdbUpdate) { u.LinkIndex = 13 }), true, local("tap0", 13, false), false},
		{"VXLAN self entry (remote VTEP)", with(func(u *fdbUpdate) { u.LinkIndex = 11; u.Flags = ntfSelf | ntfExtLearned; u.MasterIndex = 0 }), false, nil, false},
		{"self entry with a master", with(func(u *fdbUpdate) { u.Flags = ntfSelf }), false, nil, false},
		{"unmanaged bridge", with(func(u *fdbUpdate) { u.MasterIndex = 30; u.LinkIndex = 31 }), false, nil, false},
		{"not AF_BRIDGE (ARP neighbour)", with(func(u *fdbUpdate) { u.Family = 2 }), false, nil, false},
		{"multicast MAC", with(func(u *fdbUpdate) { u.MAC = hw("01:00:5e:00:00:01") }), false, nil, false},
		{"zero MAC", with(func(u *fdbUpdate) { u.MAC = hw("00:00:00:00:00:00") }), false, nil, false},
		{"broadcast MAC", with(func(u *fdbUpdate) { u.MAC = hw("ff:ff:ff:ff:ff:ff") }), false, nil, false},
		{"short address", with(func(u *fdbUpdate) { u.MAC = net.HardwareAddr{1, 2, 3} }), false, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, ok := classify(tc.u, fakeResolver{})
			if ok != tc.ok {
				t.Fatalf("relevant = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if o.Key != key || o.PortIndex != tc.u.LinkIndex || o.Deleted != tc.del {
				t.Errorf("observation %+v", o)
			}
			if fmt.Sprint(o.Local) != fmt.Sprint(tc.local) {
				t.Errorf("local = %+v, want %+v", o.Local, tc.local)
			}
		})
	}
}

// TestStateApply runs a sequence of kernel updates through classify and
// apply and checks the reported events, including the moves of DESIGN
// §3.4: remote → local (a NEWNEIGH on the access port without
// extern_learn) and local → remote.
func TestStateApply(t *testing.T) {
	const m1 = "02:00:00:00:00:01"
	acc := fdbUpdate{Family: afBridge, LinkIndex: 12, MasterIndex: 10, MAC: hw(m1), State: 0x02}
	vx := fdbUpdate{Family: afBridge, LinkIndex: 11, MasterIndex: 10, MAC: hw(m1), Flags: ntfExtLearned}
	del := func(u fdbUpdate) fdbUpdate { u.Deleted = true; return u }
	static := acc
	static.State = nudNoARP
	steps := []struct {
		u    fdbUpdate
		want string // "" for no event
	}{
		{vx, ""},                      // remote: nothing local to report
		{acc, "+100 " + m1 + " acc0"}, // remote MAC learned locally: a move to us
		{acc, ""},                     // refreshed: no repeat
		{static, "+100 " + m1 + " acc0 static"},
		{vx, "-100 " + m1 + " acc0 static"}, // evpnd installed it remote: moved away
		{del(vx), ""},                       // the remote entry goes
		{acc, "+100 " + m1 + " acc0"},       // learned again
		{del(vx), ""},                       // a stale delete for another port
		{del(acc), "-100 " + m1 + " acc0"},
		{del(acc), ""}, // repeated delete
	}
	s := macState{}
	for i, st := range steps {
		o, ok := classify(st.u, fakeResolver{})
		if !ok {
			t.Fatalf("step %d: update not relevant", i)
		}
		ev, ok := s.apply(o)
		got := ""
		if ok {
			got = evString(ev)
		}
		if got != st.want {
			t.Errorf("step %d: event %q, want %q", i, got, st.want)
		}
	}
	if len(s) != 0 {
		t.Errorf("state not empty at the end: %v", s)
	}
}

func evString(ev MACEvent) string {
	sign := "+"
	if ev.Removed {
		sign = "-"
	}
	s := fmt.Sprintf("%s%d %s %s", sign, ev.VNI, ev.MAC, ev.Port)
	if ev.Static {
		s += " static"
	}
	return s
}

func TestResyncDiff(t *testing.T) {
	k := func(vni uint32, m string) MACKey { return MACKey{VNI: vni, MAC: emac(m)} }
	const a, b, c, d = "02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:0c", "02:00:00:00:00:0d"
	reported := func() macState {
		return macState{
			k(100, a): {Port: "acc0", Index: 12},
			k(100, b): {Port: "acc0", Index: 12},
			k(100, c): {Port: "acc0", Index: 12},
			k(200, a): {Port: "acc2", Index: 22},
		}
	}
	snap := macState{
		k(100, b): {Port: "acc0", Index: 12},               // unchanged
		k(100, c): {Port: "acc1", Index: 13},               // moved to another port
		k(100, d): {Port: "acc0", Index: 12, Static: true}, // new
		// k(100, a) and k(200, a) vanished
	}
	tests := []struct {
		name  string
		scope func(uint32) bool
		want  []string
		left  int
	}{
		{"full resync", nil, []string{
			"-100 " + a + " acc0", "-200 " + a + " acc2",
			"+100 " + c + " acc1", "+100 " + d + " acc0 static",
		}, 3},
		{"scoped to VNI 200 leaves VNI 100 alone", func(v uint32) bool { return v == 200 }, []string{
			"-200 " + a + " acc2",
		}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := reported()
			var got []string
			for _, ev := range s.resync(snap, tc.scope) {
				got = append(got, evString(ev))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("events:\n got  %q\n want %q", got, tc.want)
			}
			if len(s) != tc.left {
				t.Errorf("state has %d entries, want %d: %v", len(s), tc.left, s)
			}
			// A second resync with the same dump reports nothing.
			if again := s.resync(snap, tc.scope); len(again) != 0 {
				t.Errorf("repeated resync reported %v", again)
			}
		})
	}
}
