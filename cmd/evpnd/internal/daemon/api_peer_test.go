package daemon

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// Peers (the API's ListPeers) reports the message counters and the paths
// advertised to each peer from two real speakers over loopback; the cheap
// listing used by metrics leaves Advertised out.
func TestPeersCounters(t *testing.T) {
	va := netip.MustParseAddr("10.0.0.1")
	a := startSpeaker(t, "127.0.0.151", va)
	b := startSpeaker(t, "127.0.0.152", netip.MustParseAddr("10.0.0.2"))
	peerUp(t, a, b)
	ctx := context.Background()
	routes := []*evpn.Route{remoteRoute(va, evpn.MAC{2, 0, 0, 0, 0x51, 1}, 0, false), remoteRoute(va, evpn.MAC{2, 0, 0, 0, 0x51, 2}, 0, false)}
	if err := a.srv.Announce(ctx, routes); err != nil {
		t.Fatal(err)
	}
	if !waitFor(t, "A's routes at B", 10*time.Second, func() bool {
		for _, r := range routes {
			if _, ok := b.rec.get(r.Key); !ok {
				return false
			}
		}
		return true
	}) {
		t.Fatal("A's routes never reached B")
	}
	d := &Daemon{}
	d.srv.Store(a.srv)
	ps, err := d.Peers(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 {
		t.Fatalf("A's peers: %+v, want B only", ps)
	}
	p := ps[0]
	// A sent an OPEN, a KEEPALIVE and at least one UPDATE, and received
	// at least an OPEN and a KEEPALIVE.
	if p.Address != b.addr || p.State != api.PeerEstablished || p.Advertised != uint64(len(routes)) ||
		p.MessagesSent < 3 || p.MessagesReceived < 2 {
		t.Errorf("A's peer: %+v, want B established with %d advertised, at least 3 messages sent and 2 received", p, len(routes))
	}
	cheap, err := d.peers(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(cheap) != 1 || cheap[0].Advertised != 0 || cheap[0].MessagesSent < p.MessagesSent {
		t.Errorf("peers without advertised: %+v, want Advertised 0 and the message counters", cheap)
	}
}
