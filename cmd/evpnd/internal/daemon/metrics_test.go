package daemon

import (
	"testing"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/cmd/evpnd/internal/metrics"
)

func TestMetricPeersState(t *testing.T) {
	// evpnd_bgp_peer_state is RFC 4271's numbering: the API's states
	// convert to it one for one.
	want := map[api.PeerState]uint8{api.PeerUnknown: 0, api.PeerIdle: 1, api.PeerConnect: 2, api.PeerActive: 3,
		api.PeerOpenSent: 4, api.PeerOpenConfirm: 5, api.PeerEstablished: metrics.PeerEstablished}
	for st, n := range want {
		got := metricPeers([]api.Peer{{State: st, ASN: 65000, Received: 3, Accepted: 2}})
		if got[0].State != n || got[0].ASN != 65000 || got[0].Received != 3 || got[0].Accepted != 2 {
			t.Errorf("state %d: got %+v, want State %d", st, got[0], n)
		}
	}
}
