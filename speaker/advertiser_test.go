package speaker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// macRoute is a type-2 route for MAC 02:00:00:00:00:42 in VNI 100 from the
// leaf rid, as evpnd builds it, with encapsulation encap.
func macRoute(rid string, seq uint32, encap uint16) *evpn.Route {
	r := evpn.LocalMACRoute(evpn.RDFromIP(mustAddr(rid), 2), 100, evpn.MAC{2, 0, 0, 0, 0, 0x42}, mustAddr(rid),
		[]evpn.RT{evpn.AutoRT(65000, 100)}, seq, false)
	r.Encap = encap
	return r
}

type outbids struct {
	mu  sync.Mutex
	got []Outbid
}

func (o *outbids) add(x Outbid) { o.mu.Lock(); o.got = append(o.got, x); o.mu.Unlock() }
func (o *outbids) list() []Outbid {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Outbid(nil), o.got...)
}

// Issue 8.4b and 8.4c: a MAC route GoBGP refuses (its RIB holds a path for
// the MAC at a higher sequence number, here with MPLS encapsulation, which
// evpnd's selection never imports) is not taken for advertised: it stays
// pending and is retried on the timer, and the Advertiser reports the
// highest sequence number in the RIB so that the caller can bid above it.
func TestAdvertiserRefusedMACRoute(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := newSpeaker(t, "127.0.0.181", 65000, nil)
	b := newSpeaker(t, "127.0.0.182", 65000, nil)
	a.peerWith(b, 65000, nil)
	b.peerWith(a, 65000, nil)
	remote := macRoute("10.0.0.2", 7, 10) // MPLS (RFC 9012 tunnel type 10)
	if err := b.Announce(ctx, []*evpn.Route{remote}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "A to receive B's route", func() bool { _, ok := a.rec.route(remote.Key); return ok }, a.rec)

	var ob outbids
	adv := a.NewAdvertiser(AdvertiserConfig{Retry: 50 * time.Millisecond, OnOutbid: ob.add})
	go adv.Run(ctx)
	low := macRoute("10.0.0.1", 3, evpn.TunnelTypeVXLAN)
	adv.Announce(low)
	waitFor(t, settle, "the outbid report", func() bool { return len(ob.list()) > 0 })
	if got := ob.list()[0]; got.Route != low || got.Seq != 7 {
		t.Fatalf("outbid: got route seq %d, RIB seq %d; want our seq 3 outbid at 7", got.Route.Seq, got.Seq)
	}
	if _, ok := adv.Advertised(low.Key); ok {
		t.Fatal("a refused route is recorded as advertised")
	}
	if adv.Pending() != 1 {
		t.Fatalf("pending %d, want the refused key", adv.Pending())
	}
	// It is retried on the timer while nothing better is wanted, and not
	// reported again.
	n := adv.Failures()
	waitFor(t, settle, "a retry", func() bool { return adv.Failures() > n })
	if got := len(ob.list()); got != 1 {
		t.Fatalf("the same refused route was reported %d times", got)
	}

	// The bid above the RIB's highest sequence number is taken.
	high := macRoute("10.0.0.1", 8, evpn.TunnelTypeVXLAN)
	adv.Announce(high)
	waitFor(t, settle, "the new bid to be taken", func() bool { r, ok := adv.Advertised(high.Key); return ok && r == high && adv.Pending() == 0 })
	waitFor(t, settle, "B to receive it", func() bool { ev, ok := b.rec.route(high.Key); return ok && ev.Route.Seq == 8 }, b.rec)
}

// Issue 8.4c: a route refused now is taken once GoBGP can (the path that
// outbid it is gone), without being announced again by the caller.
func TestAdvertiserRetriesUntilTaken(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := newSpeaker(t, "127.0.0.183", 65000, nil)
	b := newSpeaker(t, "127.0.0.184", 65000, nil)
	a.peerWith(b, 65000, nil)
	b.peerWith(a, 65000, nil)
	remote := macRoute("10.0.0.2", 7, evpn.TunnelTypeVXLAN)
	if err := b.Announce(ctx, []*evpn.Route{remote}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "A to receive B's route", func() bool { _, ok := a.rec.route(remote.Key); return ok }, a.rec)
	adv := a.NewAdvertiser(AdvertiserConfig{Retry: 50 * time.Millisecond})
	go adv.Run(ctx)
	r := macRoute("10.0.0.1", 2, evpn.TunnelTypeVXLAN)
	adv.Announce(r)
	waitFor(t, settle, "the refusal", func() bool { return adv.Failures() > 0 })
	if _, ok := adv.Advertised(r.Key); ok || adv.Pending() != 1 {
		t.Fatalf("refused route: advertised %v, pending %d", ok, adv.Pending())
	}
	if err := b.Withdraw(ctx, []*evpn.Route{remote}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "the retry to be taken", func() bool { _, ok := adv.Advertised(r.Key); return ok && adv.Pending() == 0 })
	waitFor(t, settle, "B to receive it", func() bool { _, ok := b.rec.route(r.Key); return ok }, b.rec)

	// A withdrawal is pending until GoBGP has done it, then forgotten.
	adv.Withdraw(r)
	waitFor(t, settle, "the withdrawal", func() bool { _, ok := adv.Advertised(r.Key); return !ok && adv.Pending() == 0 })
	waitFor(t, settle, "B to lose it", func() bool { _, ok := b.rec.route(r.Key); return !ok }, b.rec)
}

// Issue 8.4h: with HoldMACs, MAC routes wait for Release; others go.
func TestAdvertiserHoldsMACs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := newSpeaker(t, "127.0.0.185", 65000, nil)
	adv := a.NewAdvertiser(AdvertiserConfig{HoldMACs: true})
	rs := leafRoutes("10.0.0.1", "10.0.0.1", 5)
	imet := rs[2]
	adv.Announce(rs[0], imet)
	if !adv.Flush(ctx) {
		t.Fatal("flush failed")
	}
	if _, ok := adv.Advertised(imet.Key); !ok {
		t.Fatal("the type-3 route was held")
	}
	if _, ok := adv.Advertised(rs[0].Key); ok {
		t.Fatal("a MAC route went out before Release")
	}
	adv.Release()
	adv.Flush(ctx)
	if _, ok := adv.Advertised(rs[0].Key); !ok || adv.Pending() != 0 {
		t.Fatalf("after Release: advertised %v, pending %d", ok, adv.Pending())
	}
}
