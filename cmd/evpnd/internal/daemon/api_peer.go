package daemon

import (
	"context"
	"slices"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/speaker"
)

// Peers implements api.Backend. Counting Advertised is a pass over the
// table per established peer in GoBGP's loop (speaker.PeersAdvertised).
func (d *Daemon) Peers(ctx context.Context, advertised bool) ([]api.Peer, error) {
	return d.peers(ctx, advertised)
}

// peers lists the neighbours; advertised=false leaves Advertised at 0 and
// costs next to nothing, for callers that do not show it (metrics, the
// route reflector's initial watch state).
func (d *Daemon) peers(ctx context.Context, advertised bool) ([]api.Peer, error) {
	srv := d.srv.Load()
	if srv == nil {
		return nil, errStopped
	}
	list := srv.Peers
	if advertised {
		list = srv.PeersAdvertised
	}
	ps, err := list(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Peer, 0, len(ps))
	for _, p := range ps {
		out = append(out, api.Peer{
			Address: p.Address, ASN: p.ASN, Description: p.Description, RouterID: p.RouterID,
			State: apiPeerState(p.State), Uptime: p.Uptime, Received: p.Received, Accepted: p.Accepted,
			EORReceived: p.EORReceived, GracefulRestart: p.GracefulRestart, PeerRestarting: p.PeerRestarting,
			LastError: p.LastError, Dynamic: p.Dynamic, RRClient: p.RRClient,
			Advertised: p.Advertised, MessagesReceived: p.MessagesReceived, MessagesSent: p.MessagesSent,
		})
	}
	slices.SortFunc(out, func(a, b api.Peer) int { return a.Address.Compare(b.Address) })
	return out, nil
}

func apiPeerState(s speaker.PeerState) api.PeerState {
	switch s {
	case speaker.PeerStateIdle:
		return api.PeerIdle
	case speaker.PeerStateConnect:
		return api.PeerConnect
	case speaker.PeerStateActive:
		return api.PeerActive
	case speaker.PeerStateOpenSent:
		return api.PeerOpenSent
	case speaker.PeerStateOpenConfirm:
		return api.PeerOpenConfirm
	case speaker.PeerStateEstablished:
		return api.PeerEstablished
	}
	return api.PeerUnknown
}
