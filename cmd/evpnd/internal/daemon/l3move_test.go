package daemon

import (
	"net/netip"
	"testing"
	"time"

	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/evpnd/evpnd/vtep"
)

// A VM leaves this leaf (its MAC leaves the access port) and, in the same
// loop batch, the kernel refreshes its neighbour on the SVI (the entry
// outlives the host): its MAC+IP route must end withdrawn, not advertised
// again (at sequence 0, which BGP refuses against the MAC's own routes and
// the advertiser then retried for ever, while the other leafs kept a host
// route to this leaf). And a neighbour heard before its MAC is learned is
// advertised only once the MAC is, with the MAC's sequence number.
func TestMovedHostNeighbourRefreshNotAdvertised(t *testing.T) {
	l, _ := gatewayLeaf(t, evpn.MAC{0, 0, 0x5e, 0, 1, 1})
	vm := evpn.MAC{2, 0, 0, 0, 1, 0x50}
	ip := netip.MustParseAddr("10.1.0.50")
	vtep2 := netip.MustParseAddr("10.0.0.2")
	rts := []evpn.RT{evpn.AutoRT(65000, 100), evpn.AutoRT(65000, 4001)}
	key := evpn.Key{Type: evpn.RouteTypeMACIP, RD: l.d.cfg.L2VNIRD(l.vnis[100]), MAC: vm, IP: ip}
	host := func(removed bool) event {
		return event{host: &hostEvent{vrf: "red", ev: vtep.HostEvent{Key: vtep.HostKey{VNI: 100, IP: ip}, MAC: vm, Removed: removed}}}
	}
	port := func(removed bool) event {
		return event{local: &vtep.MACEvent{VNI: 100, MAC: vm, Port: "eth1", Removed: removed}}
	}
	batch := func(evs ...event) *effBuf {
		now := time.Now()
		var eff []evpn.Effect
		for i := range evs {
			eff = l.handle(&evs[i], eff, now)
		}
		b := l.apply(eff, &effBuf{})
		l.applyL3(l.l3eff, b)
		l.l3eff = l.l3eff[:0]
		return b
	}

	// The VM is at leaf 10.0.0.2 with sequence 2.
	r := evpn.LocalMACIPRoute(evpn.RDFromIP(vtep2, 2), 100, 4001, vm, ip, vtep2, rts, evpn.MAC{2, 0xaa, 0, 0, 0, 2}, 2, false)
	batch(event{bgp: &speaker.Event{Type: speaker.EventRoute, Route: r, Peer: vtep2}})

	// It arrives here: its ARP first, then its MAC on the port.
	b := batch(host(false))
	if got, ok := b.l3final[key]; ok && got != nil {
		t.Fatalf("neighbour of a MAC not local here advertised: %+v", got)
	}
	b = batch(port(false))
	if got := b.l3final[key]; got == nil || got.Seq != 3 {
		t.Fatalf("once its MAC is learned (bid 3): MAC+IP route %+v, want advertised at sequence 3", got)
	}
	// The other leaf, outbid, withdraws.
	batch(event{bgp: &speaker.Event{Type: speaker.EventRoute, Route: &evpn.Route{Key: r.Key}, Withdraw: true, Peer: vtep2}})

	// It leaves; the kernel refreshes the neighbour in the same batch.
	b = batch(port(true), host(false))
	if got, ok := b.l3final[key]; !ok || got != nil {
		t.Fatalf("after the VM left: MAC+IP route %+v (in batch: %v), want withdrawn", got, ok)
	}
	// A later refresh advertises nothing either.
	b = batch(host(false))
	if got, ok := b.l3final[key]; ok && got != nil {
		t.Fatalf("refresh of a host that left advertised: %+v", got)
	}
}

// A MAC+IP route BGP refused for its sequence number (its RIB holds a path
// for the MAC at least as high, one the tables may never see) makes the
// MAC bid above that path, and its MAC+IP routes follow; a refusal of a
// route the MAC has moved on from does nothing. (Such a refusal used to
// be ignored and the route retried for ever.)
func TestRefusedMACIPRouteBidsTheMACAgain(t *testing.T) {
	l, _ := gatewayLeaf(t, evpn.MAC{0, 0, 0x5e, 0, 1, 1})
	vm := evpn.MAC{2, 0, 0, 0, 1, 0x51}
	ip := netip.MustParseAddr("10.1.0.51")
	key := evpn.Key{Type: evpn.RouteTypeMACIP, RD: l.d.cfg.L2VNIRD(l.vnis[100]), MAC: vm, IP: ip}
	batch := func(evs ...event) *effBuf {
		now := time.Now()
		var eff []evpn.Effect
		for i := range evs {
			eff = l.handle(&evs[i], eff, now)
		}
		b := l.apply(eff, &effBuf{})
		l.applyL3(l.l3eff, b)
		l.l3eff = l.l3eff[:0]
		return b
	}
	b := batch(event{local: &vtep.MACEvent{VNI: 100, MAC: vm, Port: "eth1"}},
		event{host: &hostEvent{vrf: "red", ev: vtep.HostEvent{Key: vtep.HostKey{VNI: 100, IP: ip}, MAC: vm}}})
	refused := b.l3final[key]
	if refused == nil || refused.Seq != 0 {
		t.Fatalf("MAC+IP route %+v, want advertised at sequence 0", refused)
	}
	b = batch(event{outbid: &speaker.Outbid{Route: refused, Seq: 4}})
	if got := b.l3final[key]; got == nil || got.Seq != 5 {
		t.Fatalf("after the refusal: MAC+IP route %+v, want advertised at sequence 5", got)
	}
	if mi, _ := l.table.Lookup(100, vm); !mi.Local || mi.Seq != 5 {
		t.Fatalf("MAC %+v, want local at sequence 5", mi)
	}
	// The old refusal, reported late: the MAC has moved on.
	if b = batch(event{outbid: &speaker.Outbid{Route: refused, Seq: 4}}); len(b.l3final) != 0 || len(b.final) != 0 {
		t.Fatalf("a stale refusal changed routes: %v %v", b.final, b.l3final)
	}
}
