package daemon

import (
	"context"
	"slices"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/cmd/evpnd/internal/metrics"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// metricsSnapshot is the metrics Source: read at scrape time, through the
// loop for the table's counts (a bounded wait, so a stuck loop cannot hang
// a scrape).
func (d *Daemon) metricsSnapshot() metrics.Snapshot {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var s metrics.Snapshot
	if peers, err := d.peers(ctx, false); err == nil { // no Advertised: a scrape must not hold GoBGP's loop
		s.Peers = metricPeers(peers)
	}
	if srv := d.srv.Load(); srv != nil {
		s.StuckSessionResets = srv.StuckSessionResets()
	}
	l := d.leaf.Load()
	if l == nil {
		// A route reflector installs nothing: its kernel is trivially in
		// sync (an alert on this gauge must not fire for it).
		s.KernelInSync = d.config().Role == configs.RoleRouteReflector
		return s
	}
	fs := l.rec.Stats()
	s.FIB = metrics.FIBStats{Installed: fs.Installed, Pending: fs.Pending, Writes: fs.Writes,
		Deletes: fs.Deletes, Errors: fs.Errors, Resyncs: fs.Resyncs}
	s.KernelInSync = l.rec.Synced() && fs.Pending == 0 && fs.Stale == 0 && l.desired.Dirty() == 0
	for _, v := range l.vrfKernel() {
		mv := metrics.VRFKernel{VRF: v.VRF, InSync: v.InSync}
		for _, k := range v.Kinds {
			mv.Kinds = append(mv.Kinds, metrics.VRFKernelKind{Kind: k.Kind, Installed: k.Installed, Pending: k.Pending,
				Errors: k.Errors, Repairs: k.Repairs})
		}
		s.VRFs = append(s.VRFs, mv)
	}
	_ = l.read(ctx, func() { l.tableCounts(&s) })
	slices.SortFunc(s.VNIs, func(a, b metrics.VNICounts) int { return int(a.VNI) - int(b.VNI) })
	return s
}

// metricPeers converts the API's peers to the metrics package's. The
// API's PeerState numbers the states as RFC 4271 does, which is the
// metric's value.
func metricPeers(peers []api.Peer) []metrics.Peer {
	out := make([]metrics.Peer, len(peers))
	for i, p := range peers {
		out[i] = metrics.Peer{Address: p.Address, ASN: p.ASN, State: uint8(p.State),
			Received: p.Received, Accepted: p.Accepted}
	}
	return out
}

// tableCounts fills the table's share of a scrape, in the loop: per-VNI
// counts (kept by the table as MACs change) and routes by type, in
// O(VNIs + flood entries).
func (l *leaf) tableCounts(s *metrics.Snapshot) {
	rows := l.vniRows(0)
	s.VNIs = make([]metrics.VNICounts, 0, len(rows))
	for _, r := range rows {
		s.VNIs = append(s.VNIs, metrics.VNICounts{VNI: r.VNI, Local: r.LocalMACs, Remote: r.RemoteMACs,
			Duplicates: r.DuplicateMACs, FloodVTEPs: len(r.Flood)})
	}
	s.RoutesByType = map[uint8]int{
		uint8(evpn.RouteTypeMACIP): l.table.RouteCount(evpn.RouteTypeMACIP),
		uint8(evpn.RouteTypeIMET):  l.table.RouteCount(evpn.RouteTypeIMET),
	}
}
