package speaker

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"
)

func TestUnderlayECMP(t *testing.T) {
	pf := netip.MustParsePrefix
	a := netip.MustParseAddr
	paths := []UnderlayPath{
		// Two spines, equal AS-path length: ECMP, sorted.
		{Prefix: pf("10.0.0.2/32"), NextHop: a("10.2.1.0"), Peer: a("10.2.1.0"), ASPath: 2},
		{Prefix: pf("10.0.0.2/32"), NextHop: a("10.1.1.0"), Peer: a("10.1.1.0"), ASPath: 2},
		// A longer path through another leaf is left out.
		{Prefix: pf("10.0.0.2/32"), NextHop: a("10.3.1.0"), Peer: a("10.3.1.0"), ASPath: 4},
		// A stale path (spine down, graceful restart) is left out while a
		// fresh one exists...
		{Prefix: pf("10.0.0.3/32"), NextHop: a("10.1.1.0"), Peer: a("10.1.1.0"), ASPath: 2, Stale: true},
		{Prefix: pf("10.0.0.3/32"), NextHop: a("10.2.1.0"), Peer: a("10.2.1.0"), ASPath: 3},
		// ...and used when it is all there is.
		{Prefix: pf("10.0.0.4/32"), NextHop: a("10.1.1.0"), Peer: a("10.1.1.0"), ASPath: 2, Stale: true},
		// Our own prefix, coming back or originated, is never installed.
		{Prefix: pf("10.0.0.1/32"), NextHop: a("0.0.0.0"), ASPath: 0},
		{Prefix: pf("10.0.0.1/32"), NextHop: a("10.1.1.0"), Peer: a("10.1.1.0"), ASPath: 3},
		// A spine's own loopback: one path.
		{Prefix: pf("10.0.0.254/32"), NextHop: a("10.1.1.0"), Peer: a("10.1.1.0"), ASPath: 1},
	}
	got := UnderlayECMP(paths)
	want := []UnderlayRoute{
		{Prefix: pf("10.0.0.2/32"), NextHops: []netip.Addr{a("10.1.1.0"), a("10.2.1.0")}},
		{Prefix: pf("10.0.0.3/32"), NextHops: []netip.Addr{a("10.2.1.0")}},
		{Prefix: pf("10.0.0.4/32"), NextHops: []netip.Addr{a("10.1.1.0")}},
		{Prefix: pf("10.0.0.254/32"), NextHops: []netip.Addr{a("10.1.1.0")}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("UnderlayECMP =\n%v\nwant\n%v", got, want)
	}
}

// underlayRec keeps the last set WatchUnderlay delivered.
type underlayRec struct {
	mu   sync.Mutex
	last []UnderlayRoute
}

func (r *underlayRec) set(rs []UnderlayRoute) { r.mu.Lock(); r.last = rs; r.mu.Unlock() }
func (r *underlayRec) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprint(r.last)
}

// TestUnderlayAdvertiseReceive: an eBGP fabric on loopback addresses, two
// spines (AS 65000, no session between them) and two leafs (AS 65101,
// 65102). Leaf 1 learns leaf 2's /32 with ECMP over both spines, with the
// spines' session addresses as next hops (next hop self on eBGP); with one
// spine's session down the route keeps only the other; with both down it
// leaves. The spines learn the leafs' /32s over their one path each.
func TestUnderlayAdvertiseReceive(t *testing.T) {
	ctx := context.Background()
	s1 := newSpeaker(t, "127.0.0.41", 65000, nil)
	s2 := newSpeaker(t, "127.0.0.42", 65000, nil)
	l1 := newSpeaker(t, "127.0.0.43", 65101, nil)
	l2 := newSpeaker(t, "127.0.0.44", 65102, nil)
	v4 := func(n *Neighbor) { n.Families = []Family{FamilyL2VPNEVPN, FamilyIPv4Unicast} }
	for _, s := range []*testSpeaker{s1, s2} {
		s.peerWith(l1, 65101, v4)
		s.peerWith(l2, 65102, v4)
		l1.peerWith(s, 65000, v4)
		l2.peerWith(s, 65000, v4)
	}
	pf := netip.MustParsePrefix
	if err := l1.AdvertiseUnderlay(ctx, []netip.Prefix{pf("10.0.0.1/32")}); err != nil {
		t.Fatal(err)
	}
	if err := l2.AdvertiseUnderlay(ctx, []netip.Prefix{pf("10.0.0.2/32")}); err != nil {
		t.Fatal(err)
	}
	if err := s1.AdvertiseUnderlay(ctx, []netip.Prefix{pf("10.0.0.254/32")}); err != nil {
		t.Fatal(err)
	}
	if err := l1.AdvertiseUnderlay(ctx, []netip.Prefix{pf("2001:db8::1/128")}); err == nil {
		t.Error("an IPv6 underlay prefix was accepted")
	}
	var rec, srec underlayRec
	if err := l1.WatchUnderlay(ctx, rec.set); err != nil {
		t.Fatal(err)
	}
	if err := s2.WatchUnderlay(ctx, srec.set); err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr
	want := func(r *underlayRec, routes ...UnderlayRoute) func() bool {
		return func() bool { return r.String() == fmt.Sprint(routes) }
	}
	both := []UnderlayRoute{
		{Prefix: pf("10.0.0.2/32"), NextHops: []netip.Addr{a("127.0.0.41"), a("127.0.0.42")}},
		{Prefix: pf("10.0.0.254/32"), NextHops: []netip.Addr{a("127.0.0.41")}},
	}
	waitUnderlay(t, "leaf 1 to learn leaf 2 over both spines", want(&rec, both...), &rec)
	waitUnderlay(t, "spine 2 to learn both leafs", want(&srec,
		UnderlayRoute{Prefix: pf("10.0.0.1/32"), NextHops: []netip.Addr{a("127.0.0.43")}},
		UnderlayRoute{Prefix: pf("10.0.0.2/32"), NextHops: []netip.Addr{a("127.0.0.44")}},
		// Spine 1's loopback through a leaf: AS path 65101 65000 holds
		// spine 2's own AS, so it is dropped (RFC 4271 loop detection).
	), &srec)
	if err := l1.SetNeighborEnabled(ctx, s2.addr, false); err != nil {
		t.Fatal(err)
	}
	waitUnderlay(t, "leaf 1 to drop spine 2 from the ECMP set", want(&rec,
		UnderlayRoute{Prefix: pf("10.0.0.2/32"), NextHops: []netip.Addr{a("127.0.0.41")}},
		UnderlayRoute{Prefix: pf("10.0.0.254/32"), NextHops: []netip.Addr{a("127.0.0.41")}},
	), &rec)
	if err := l1.SetNeighborEnabled(ctx, s1.addr, false); err != nil {
		t.Fatal(err)
	}
	waitUnderlay(t, "leaf 1's underlay routes to leave", want(&rec), &rec)
	if err := l1.SetNeighborEnabled(ctx, s1.addr, true); err != nil {
		t.Fatal(err)
	}
	if err := l1.SetNeighborEnabled(ctx, s2.addr, true); err != nil {
		t.Fatal(err)
	}
	waitUnderlay(t, "leaf 1 to learn leaf 2 over both spines again", want(&rec, both...), &rec)
}

func waitUnderlay(t *testing.T, what string, cond func() bool, r *underlayRec) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last delivered: %s", settle, what, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
