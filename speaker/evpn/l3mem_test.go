package evpn

import (
	"net/netip"
	"runtime"
	"testing"
)

// TestL3CandidatesByRoute: an IP's candidates are told apart by their
// whole route Key, as when they were a map by Key: the same host from two
// RDs, and in the IPv4-mapped form, are three routes; withdrawing one
// leaves the others selected.
func TestL3CandidatesByRoute(t *testing.T) {
	tab := NewL3Table(l3opts())
	r1 := macIP(vtep2, mac1, hostA, 0, rmac2)
	r2 := macIP(vtep2, mac1, hostA, 0, rmac2)
	r2.RD = RDFromIP(vtep2, 7)
	r3 := macIP(vtep2, mac1, netip.AddrFrom16(hostA.As16()), 0, rmac2)
	expectL3(t, "first", tab.Update(r1),
		"set-neigh 100 192.168.100.10 02:00:00:00:00:01",
		"set-host red/4001 192.168.100.10 via 10.0.0.2 02:aa:00:00:00:02")
	expectL3(t, "second RD", tab.Update(r2))
	expectL3(t, "IPv4-mapped", tab.Update(r3))
	for _, m := range []map[hostKey]*ipState{tab.neighs, tab.hosts} {
		if st := m[hostKey{100, hostA}]; st != nil && len(st.remote) != 3 {
			t.Errorf("neighbour candidates %+v, want 3", st.remote)
		}
		if st := m[hostKey{4001, hostA}]; st != nil && len(st.remote) != 3 {
			t.Errorf("host candidates %+v, want 3", st.remote)
		}
	}
	expectL3(t, "the same route again", tab.Update(r2))
	expectL3(t, "withdraw the first", tab.Withdraw(r1.Key))
	expectL3(t, "withdraw the mapped one", tab.Withdraw(r3.Key))
	expectL3(t, "withdraw the last", tab.Withdraw(r2.Key),
		"del-neigh 100 192.168.100.10 02:00:00:00:00:01",
		"del-host red/4001 192.168.100.10 via 10.0.0.2 02:aa:00:00:00:02")
	if len(tab.neighs)+len(tab.hosts)+len(tab.routes) != 0 {
		t.Errorf("state left: %d %d %d", len(tab.neighs), len(tab.hosts), len(tab.routes))
	}
}

// TestL3TableMemory bounds the live heap the table holds per remote
// MAC+IP route (one neighbour and one host route each). It was about
// 2.9 KB, most of it two maps of candidates by route Key per host.
func TestL3TableMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates tens of MB")
	}
	const n = 20000
	const limit = 1000 // bytes per route
	routes := make([]*Route, n)
	for i := range routes {
		ip := netip.AddrFrom4([4]byte{10, 64, byte(i >> 8), byte(i)})
		mac := MAC{2, 0, 0, 0, byte(i >> 8), byte(i)}
		routes[i] = macIP(vtep2, mac, ip, 0, rmac2)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tab := NewL3Table(l3opts())
	for _, r := range routes {
		tab.Update(r)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("%d bytes of live heap per MAC+IP route", per)
	if len(tab.neighs) != n || len(tab.hosts) != n {
		t.Fatalf("%d neighbours, %d hosts, want %d", len(tab.neighs), len(tab.hosts), n)
	}
	if per > limit {
		t.Errorf("%d bytes per route, want at most %d", per, limit)
	}
	runtime.KeepAlive(tab)
}
