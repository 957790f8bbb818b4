package vtep

import (
	"net/netip"
	"testing"

	"github.com/evpnd/evpnd/speaker/evpn"
)

func TestHostTable(t *testing.T) {
	m1, m2 := evpn.MAC{2, 0, 0, 0, 0, 1}, evpn.MAC{2, 0, 0, 0, 0, 2}
	ip := netip.MustParseAddr("10.1.0.10")
	ip6 := netip.MustParseAddr("2001:db8:1::10")
	tab := NewHostTable(map[uint32][]netip.Addr{100: {netip.MustParseAddr("10.1.0.1")}})
	steps := []struct {
		name string
		u    NeighUpdate
		want *HostEvent
	}{
		{"learned", NeighUpdate{VNI: 100, IP: ip, MAC: m1, State: nudReachable}, &HostEvent{Key: HostKey{100, ip}, MAC: m1}},
		{"stale stays", NeighUpdate{VNI: 100, IP: ip, MAC: m1, State: nudStale}, nil},
		{"probe stays", NeighUpdate{VNI: 100, IP: ip, MAC: m1, State: nudProbe}, nil},
		{"new MAC", NeighUpdate{VNI: 100, IP: ip, MAC: m2, State: nudReachable}, &HostEvent{Key: HostKey{100, ip}, MAC: m2}},
		{"failed withdraws", NeighUpdate{VNI: 100, IP: ip, State: nudFailed}, &HostEvent{Key: HostKey{100, ip}, MAC: m2, Removed: true}},
		{"failed again: nothing", NeighUpdate{VNI: 100, IP: ip, State: nudFailed}, nil},
		{"IPv6 learned", NeighUpdate{VNI: 100, IP: ip6, MAC: m1, State: nudDelay}, &HostEvent{Key: HostKey{100, ip6}, MAC: m1}},
		{"deleted withdraws", NeighUpdate{Deleted: true, VNI: 100, IP: ip6, MAC: m1, State: nudStale}, &HostEvent{Key: HostKey{100, ip6}, MAC: m1, Removed: true}},
		{"fib's remote entry is no host", NeighUpdate{VNI: 100, IP: ip, MAC: m1, State: nudNoARP, Flags: ntfExtLearned}, nil},
		{"link-local ignored", NeighUpdate{VNI: 100, IP: netip.MustParseAddr("fe80::1"), MAC: m1, State: nudReachable}, nil},
		{"gateway ignored", NeighUpdate{VNI: 100, IP: netip.MustParseAddr("10.1.0.1"), MAC: m1, State: nudReachable}, nil},
		{"incomplete: nothing", NeighUpdate{VNI: 100, IP: ip, State: nudIncomplete}, nil},
		{"learned again", NeighUpdate{VNI: 100, IP: ip, MAC: m1, State: nudReachable}, &HostEvent{Key: HostKey{100, ip}, MAC: m1}},
		{"moved away: fib's entry replaces it", NeighUpdate{VNI: 100, IP: ip, MAC: m1, State: nudNoARP, Flags: ntfExtLearned}, &HostEvent{Key: HostKey{100, ip}, MAC: m1, Removed: true}},
	}
	for _, s := range steps {
		ev, ok := tab.Update(s.u)
		switch {
		case s.want == nil && ok:
			t.Errorf("%s: unexpected event %+v", s.name, ev)
		case s.want != nil && (!ok || ev != *s.want):
			t.Errorf("%s: got %+v %v, want %+v", s.name, ev, ok, *s.want)
		}
	}
	if len(tab.Hosts()) != 0 {
		t.Errorf("left: %v", tab.Hosts())
	}
}

// Resync reports how a full dump differs from the table: new and changed
// bindings, and bindings the dump does not hold (withdrawn); fib's
// extern_learn entries stay out.
func TestHostTableResync(t *testing.T) {
	mac := func(b byte) evpn.MAC { return evpn.MAC{2, 0, 0, 0, 0, b} }
	ip := netip.MustParseAddr
	tab := NewHostTable(nil)
	for _, u := range []NeighUpdate{
		{VNI: 100, IP: ip("10.1.0.10"), MAC: mac(10), State: nudReachable},
		{VNI: 100, IP: ip("10.1.0.11"), MAC: mac(11), State: nudStale},
		{VNI: 100, IP: ip("10.1.0.12"), MAC: mac(12), State: nudReachable},
	} {
		if _, ok := tab.Update(u); !ok {
			t.Fatalf("%+v not learned", u)
		}
	}
	evs := tab.Resync([]NeighUpdate{
		{VNI: 100, IP: ip("10.1.0.10"), MAC: mac(10), State: nudStale},                   // unchanged
		{VNI: 100, IP: ip("10.1.0.11"), MAC: mac(99), State: nudReachable},               // moved MAC
		{VNI: 100, IP: ip("10.1.0.13"), MAC: mac(13), State: nudReachable},               // new
		{VNI: 100, IP: ip("10.1.0.14"), MAC: mac(14), State: 0x40, Flags: ntfExtLearned}, // fib's
	})
	want := map[HostKey]HostEvent{
		{100, ip("10.1.0.11")}: {Key: HostKey{100, ip("10.1.0.11")}, MAC: mac(99)},
		{100, ip("10.1.0.12")}: {Key: HostKey{100, ip("10.1.0.12")}, MAC: mac(12), Removed: true},
		{100, ip("10.1.0.13")}: {Key: HostKey{100, ip("10.1.0.13")}, MAC: mac(13)},
	}
	if len(evs) != len(want) {
		t.Fatalf("events %+v, want %+v", evs, want)
	}
	for _, e := range evs {
		if want[e.Key] != e {
			t.Errorf("event %+v, want %+v", e, want[e.Key])
		}
	}
	if got := tab.Hosts(); len(got) != 3 || got[HostKey{100, ip("10.1.0.11")}] != mac(99) {
		t.Errorf("hosts after resync: %v", got)
	}
}
