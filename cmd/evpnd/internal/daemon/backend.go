package daemon

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	vnetns "github.com/vishvananda/netns"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/evpnd/evpnd/vtep"
)

// The Daemon is the API's Backend.
var _ api.Backend = (*Daemon)(nil)

// routePage is how many BGP paths are annotated by the loop at a time.
const routePage = 1000

func (d *Daemon) leafOrErr() (*leaf, error) {
	if d.config().Role == configs.RoleRouteReflector {
		return nil, api.ErrNotLeaf
	}
	l := d.leaf.Load()
	if l == nil {
		return nil, errStopped
	}
	return l, nil
}

// config returns the configuration in force (it changes with AddVNI and
// DeleteVNI).
func (d *Daemon) config() *configs.Config { return d.live.Load() }

// Status implements api.Backend.
func (d *Daemon) Status(ctx context.Context) (api.Status, error) {
	c := d.config()
	st := api.Status{
		Version: d.opts.Version, Started: d.start, RouterID: c.RouterID, ASN: c.ASN,
		Role: c.Role, L2VNIs: len(c.L2VNIs), Restarted: d.restarted.Load(),
		PeersConfigured: len(c.Neighbors), VRFs: len(c.VRFs), ConfigFile: d.opts.ConfigPath,
	}
	if f := d.file.Load(); f != nil {
		st.VNIsNotInFile, st.FileVNIsNotRunning = vniDrift(c, f)
		st.RestartNeeded = configs.RestartNeeded(c, f)
	}
	if c.Role == configs.RoleLeaf {
		st.VTEP = c.VTEPIP
	}
	if srv := d.srv.Load(); srv != nil {
		if peers, err := srv.Peers(ctx); err == nil {
			st.PeersConfigured = len(peers)
			for _, p := range peers {
				if p.State == speaker.PeerStateEstablished {
					st.PeersEstablished++
				}
			}
		}
	}
	if l := d.leaf.Load(); l != nil {
		fs := l.rec.Stats()
		st.FIBPending, st.FIBErrors = fs.Pending, fs.Errors
		st.BGPSynced = l.synced.Load()
		st.KernelInSync = l.rec.Synced() && fs.Pending == 0 && fs.Stale == 0 && l.desired.Dirty() == 0
	} else if c.Role == configs.RoleRouteReflector {
		st.BGPSynced = true
	}
	return st, nil
}

// vniDrift compares the L2VNIs running (c) with the file's (f): those
// that run but the file lacks or sets otherwise, and those of the file
// that do not run, each sorted.
func vniDrift(c, f *configs.Config) (notInFile, notRunning []uint32) {
	file := map[uint32]configs.L2VNI{}
	for _, v := range f.L2VNIs {
		file[v.VNI] = v
	}
	run := map[uint32]bool{}
	for _, v := range c.L2VNIs {
		run[v.VNI] = true
		if fv, ok := file[v.VNI]; !ok || !configs.SameL2VNI(fv, v) {
			notInFile = append(notInFile, v.VNI)
		}
	}
	for vni := range file {
		if !run[vni] {
			notRunning = append(notRunning, vni)
		}
	}
	slices.Sort(notInFile)
	slices.Sort(notRunning)
	return notInFile, notRunning
}

// VNIs implements api.Backend.
func (d *Daemon) VNIs(ctx context.Context) ([]api.VNI, error) {
	l, err := d.leafOrErr()
	if err != nil {
		if errors.Is(err, api.ErrNotLeaf) {
			return nil, nil
		}
		return nil, err
	}
	var out []api.VNI
	err = l.read(ctx, func() { out = l.vniRows(0) })
	if err != nil {
		return nil, err
	}
	links := linkNames()
	for i := range out {
		out[i].DevicesPresent = links[out[i].VXLAN] && links[out[i].Bridge]
	}
	return out, nil
}

// vniRows builds the VNI rows (all, or only vni) from the loop's state.
// The MAC counts are the table's, kept as MACs change: a call costs
// O(VNIs + flood entries), not a walk of every MAC.
func (l *leaf) vniRows(only uint32) []api.VNI {
	c := l.d.cfg
	var out []api.VNI
	var floods map[uint32][]netip.Addr
	if only == 0 {
		floods = l.table.FloodLists()
	}
	for _, v := range c.L2VNIs {
		if only != 0 && v.VNI != only {
			continue
		}
		imp, auto := c.ImportRTs(v)
		var flood []netip.Addr
		if only == 0 {
			flood = floods[v.VNI]
		} else {
			flood = l.table.FloodList(v.VNI)
		}
		slices.SortFunc(flood, netip.Addr.Compare)
		n := l.table.Counts(v.VNI)
		out = append(out, api.VNI{
			VNI: v.VNI, VXLAN: v.VXLANDevice, Bridge: v.Bridge, AccessPorts: slices.Clone(v.AccessInterfaces),
			RD: c.L2VNIRD(v), ImportRTs: imp, ImportAuto: auto, ExportRTs: c.ExportRTs(v),
			Flood: flood, UDPPort: v.UDPPort, MTU: v.MTU, LocalVTEP: c.VTEPIP,
			LocalMACs: n.Local, RemoteMACs: n.Remote, DuplicateMACs: n.Duplicates,
		})
	}
	slices.SortFunc(out, func(a, b api.VNI) int { return cmp.Compare(a.VNI, b.VNI) })
	return out
}

func devicesPresent(names ...string) bool {
	links := linkNames()
	for _, n := range names {
		if !links[n] {
			return false
		}
	}
	return true
}

// linkNames returns the names of this node's links, read once.
func linkNames() map[string]bool {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	out := make(map[string]bool, len(ifs))
	for _, i := range ifs {
		out[i.Name] = true
	}
	return out
}

// MACs implements api.Backend. The rows (with each local MAC's port) are
// copied out of the loop in one call and sorted; InKernel then comes from
// fib's record of the kernel, or, with VerifyKernel, from reading the
// kernel's FDB (seconds at 100k entries); then the rows are streamed.
func (d *Daemon) MACs(ctx context.Context, f api.MACFilter, fn func(api.MAC) error) error {
	l, err := d.leafOrErr()
	if err != nil {
		if errors.Is(err, api.ErrNotLeaf) {
			return nil
		}
		return err
	}
	var rows []api.MAC
	wants := map[fib.Key]fib.FDBEntry{} // what fib installs for each remote row
	var devs []fib.VNIDevices
	var vnis []vtep.L2VNI
	local := d.config().VTEPIP
	err = l.read(ctx, func() {
		add := func(mi evpn.MACInfo) {
			if !macMatches(mi, f) {
				return
			}
			r := api.MAC{VNI: mi.VNI, MAC: mi.MAC, Local: mi.Local, VTEP: mi.VTEP, Seq: mi.Seq,
				Sticky: mi.Sticky, Duplicate: mi.Duplicate, Others: mi.Others}
			if mi.Local {
				r.VTEP = local
				r.Port = l.ports[evpn.MACKey{VNI: mi.VNI, MAC: mi.MAC}]
			} else if w, ok := l.desired.WantMAC(mi.VNI, mi.MAC); ok {
				wants[fib.MACKey(mi.VNI, mi.MAC)] = w
			}
			rows = append(rows, r)
		}
		if f.VNI != 0 && f.MAC != nil {
			if mi, ok := l.table.Lookup(f.VNI, *f.MAC); ok {
				add(mi)
			}
		} else {
			l.table.MACs(func(mi evpn.MACInfo) bool { add(mi); return true })
		}
		if !f.VerifyKernel {
			return
		}
		for _, v := range l.desired.VNIs() {
			if f.VNI == 0 || v.VNI == f.VNI {
				devs = append(devs, v)
			}
		}
		for _, v := range l.d.vtepVNIs() {
			if f.VNI == 0 || v.VNI == f.VNI {
				vnis = append(vnis, v)
			}
		}
	})
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	slices.SortFunc(rows, func(a, b api.MAC) int {
		if c := cmp.Compare(a.VNI, b.VNI); c != 0 {
			return c
		}
		return bytes.Compare(a.MAC[:], b.MAC[:])
	})
	if f.VerifyKernel {
		d.verifyKernel(ctx, l, rows, wants, devs, vnis, f.Source)
	} else {
		// A remote MAC is in the kernel when fib's record of it holds
		// what fib installs for it; a local one is in the table only
		// while the bridge holds it (the learner follows the bridge's
		// FDB events).
		err := l.rec.Installed(ctx, func(inst map[fib.Key]fib.Installed) {
			markInKernel(rows, wants, inst)
			for i := range rows {
				if rows[i].Local {
					rows[i].InKernel = true
				}
			}
		})
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			return fmt.Errorf("%w (%v)", errStopped, err) // fib not running yet, or any more
		}
	}
	for i := range rows {
		if err := fn(rows[i]); err != nil {
			return err
		}
	}
	return nil
}

// markInKernel sets InKernel on the remote rows: true when the kernel
// entries inst records for the MAC hold what fib installs for it (wants),
// by fib's one definition (fib.Installed.Holds). inst is fib's record, or
// a fresh kernel read folded by fib.InstalledFrom: both answer alike.
func markInKernel(rows []api.MAC, wants map[fib.Key]fib.FDBEntry, inst map[fib.Key]fib.Installed) {
	for i := range rows {
		r := &rows[i]
		if r.Local {
			continue
		}
		k := fib.MACKey(r.VNI, r.MAC)
		w, ok := wants[k]
		in, have := inst[k]
		r.InKernel = ok && have && in.Holds(w)
	}
}

// verifyKernel fills InKernel (and local ports) from a fresh kernel read:
// remote entries on the VXLAN devices, local MACs in the bridges. A failed
// read leaves InKernel false, with a log.
func (d *Daemon) verifyKernel(ctx context.Context, l *leaf, rows []api.MAC, wants map[fib.Key]fib.FDBEntry, devs []fib.VNIDevices, vnis []vtep.L2VNI, src api.MACSource) {
	var remote map[fib.Key]fib.Installed
	if src != api.MACLocal {
		if entries, err := l.kern.Dump(ctx, devs); err != nil {
			d.log.Warn("read kernel FDB for the MAC list", "err", err)
		} else {
			remote = fib.InstalledFrom(entries)
		}
	}
	markInKernel(rows, wants, remote)
	var locals map[vtep.MACKey]vtep.LocalMAC
	if src != api.MACRemote && len(vnis) > 0 {
		var err error
		if locals, err = vtep.NewLearner(vnetns.None(), vnis, nil).Dump(ctx); err != nil {
			d.log.Warn("read bridge FDB for the MAC list", "err", err)
		}
	}
	for i := range rows {
		r := &rows[i]
		if r.Local {
			m, ok := locals[vtep.MACKey{VNI: r.VNI, MAC: r.MAC}]
			r.InKernel = ok
			if ok {
				r.Port = m.Port
			}
		}
	}
}

func macMatches(mi evpn.MACInfo, f api.MACFilter) bool {
	if f.VNI != 0 && mi.VNI != f.VNI {
		return false
	}
	if f.MAC != nil && mi.MAC != *f.MAC {
		return false
	}
	if f.DuplicatesOnly && !mi.Duplicate {
		return false
	}
	switch f.Source {
	case api.MACLocal:
		return mi.Local
	case api.MACRemote:
		return !mi.Local && mi.VTEP.IsValid()
	}
	return mi.Local || mi.VTEP.IsValid() || mi.Duplicate
}

// ClearDuplicate implements api.Backend.
func (d *Daemon) ClearDuplicate(ctx context.Context, vni uint32, mac *evpn.MAC) (int, error) {
	l, err := d.leafOrErr()
	if err != nil {
		return 0, err
	}
	if !d.hasVNI(vni) {
		return 0, fmt.Errorf("vni %d is not configured: %w", vni, api.ErrNotFound)
	}
	n := 0
	err = l.do(ctx, func(now time.Time) []evpn.Effect {
		var eff []evpn.Effect
		for _, mi := range l.table.Duplicates() {
			if mi.VNI != vni || (mac != nil && mi.MAC != *mac) {
				continue
			}
			n++
			l.d.log.Info("duplicate flag cleared by the API", "vni", vni, "mac", mi.MAC)
			eff = append(eff, l.table.ClearDuplicate(vni, mi.MAC, now)...)
		}
		return eff
	})
	return n, err
}

func (d *Daemon) hasVNI(vni uint32) bool {
	return slices.ContainsFunc(d.config().L2VNIs, func(v configs.L2VNI) bool { return v.VNI == vni })
}

// routeMemory bounds how many BGP paths (about 1 KB each) a route listing
// holds at once.
const routeMemory = 20_000

// Routes implements api.Backend: GoBGP's table, filtered, sorted by RD
// then NLRI (so that a reader sees each RD once), and annotated by the
// loop, a page at a time, with the VNI each path imports into and whether
// evpnd uses it.
//
// Sorting needs the paths of a window in memory, never the whole table:
// the first pass over GoBGP's table keeps the matching paths while there
// are at most routeMemory of them (then it is the only pass, as for most
// listings), and counts them per RD. Past that, it drops what it kept,
// and each further pass keeps only the paths of a window of consecutive
// RDs holding at most routeMemory paths (an RD with more is a window of
// its own), sorts and sends them. A listing then costs GoBGP one table
// walk per window; and as the table changes between passes, it is no
// snapshot (it never is: GoBGP's own listing is not either).
func (d *Daemon) Routes(ctx context.Context, f api.RouteFilter, fn func(api.RoutePath) error) error {
	_, err := d.routes(ctx, f, fn, routeMemory)
	return err
}

// routes is Routes with the memory bound given; it returns the most paths
// it held at once.
func (d *Daemon) routes(ctx context.Context, f api.RouteFilter, fn func(api.RoutePath) error, limit int) (peak int, err error) {
	srv := d.srv.Load()
	if srv == nil {
		return 0, errStopped
	}
	var all []api.RoutePath
	perRD := map[evpn.RD]int{}
	over := false
	err = srv.Paths(ctx, func(p speaker.Path) error {
		if p.Route == nil {
			return nil
		}
		rp := routePath(p)
		if !pathMatches(rp, f, false) {
			return nil
		}
		perRD[rp.Route.RD]++
		if !over {
			all = append(all, rp)
			peak = max(peak, len(all))
			if len(all) > limit {
				over, all = true, nil
			}
		}
		return nil
	})
	if err != nil {
		return peak, err
	}
	if !over {
		return peak, d.sendRoutes(ctx, all, f, fn)
	}
	rds := slices.SortedFunc(maps.Keys(perRD), compareRD)
	for i := 0; i < len(rds); {
		j, n := i, 0
		for j < len(rds) && (j == i || n+perRD[rds[j]] <= limit) {
			n += perRD[rds[j]]
			j++
		}
		lo, hi := rds[i], rds[j-1]
		var win []api.RoutePath
		err := srv.Paths(ctx, func(p speaker.Path) error {
			if p.Route == nil || compareRD(p.Route.RD, lo) < 0 || compareRD(p.Route.RD, hi) > 0 {
				return nil
			}
			if rp := routePath(p); pathMatches(rp, f, false) {
				win = append(win, rp)
				peak = max(peak, len(win))
			}
			return nil
		})
		if err != nil {
			return peak, err
		}
		if err := d.sendRoutes(ctx, win, f, fn); err != nil {
			return peak, err
		}
		i = j
	}
	return peak, nil
}

func routePath(p speaker.Path) api.RoutePath {
	return api.RoutePath{
		Route: p.Route, Peer: p.Peer, Local: p.Local, Best: p.Best, Stale: p.Stale, Age: p.Age,
		ExtCommunities: p.ExtCommunities, ASPath: p.ASPath, LocalPref: p.LocalPref, Origin: p.Origin,
		ClusterList: p.ClusterList,
	}
}

// sendRoutes sorts paths, has the loop annotate them a page at a time,
// and sends those that match f.
func (d *Daemon) sendRoutes(ctx context.Context, all []api.RoutePath, f api.RouteFilter, fn func(api.RoutePath) error) error {
	sortPaths(all)
	l := d.leaf.Load()
	for start := 0; start < len(all); start += routePage {
		page := all[start:min(start+routePage, len(all))]
		if l != nil {
			if err := l.read(ctx, func() {
				for i := range page {
					l.annotate(&page[i])
				}
			}); err != nil {
				return err
			}
		}
		for _, p := range page {
			if !pathMatches(p, f, true) {
				continue
			}
			if err := fn(p); err != nil {
				return err
			}
		}
		clear(page) // let the sent paths go
	}
	return nil
}

// compareRD orders RDs as comparePaths does.
func compareRD(x, y evpn.RD) int {
	if c := cmp.Compare(x.Type, y.Type); c != 0 {
		return c
	}
	if c := cmp.Compare(x.Admin, y.Admin); c != 0 {
		return c
	}
	return cmp.Compare(x.Number, y.Number)
}

// sortPaths sorts paths with comparePaths, keeping BGP's order (best
// first) among the paths of one NLRI.
func sortPaths(paths []api.RoutePath) { slices.SortStableFunc(paths, comparePaths) }

// comparePaths orders paths by RD, route type, then the NLRI's fields;
// the paths of one NLRI keep BGP's order (best first).
func comparePaths(a, b api.RoutePath) int {
	x, y := a.Route, b.Route
	if c := compareRD(x.RD, y.RD); c != 0 {
		return c
	}
	if c := cmp.Compare(x.Type, y.Type); c != 0 {
		return c
	}
	if c := cmp.Compare(x.EthTag, y.EthTag); c != 0 {
		return c
	}
	if c := bytes.Compare(x.MAC[:], y.MAC[:]); c != 0 {
		return c
	}
	if c := x.IP.Compare(y.IP); c != 0 {
		return c
	}
	if c := x.Prefix.Addr().Compare(y.Prefix.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(x.Prefix.Bits(), y.Prefix.Bits())
}

func pathMatches(p api.RoutePath, f api.RouteFilter, annotated bool) bool {
	if f.Type != 0 && p.Route.Type != f.Type {
		return false
	}
	if f.RD != nil && p.Route.RD != *f.RD {
		return false
	}
	if annotated && f.VNI != 0 && p.VNI != f.VNI {
		return false
	}
	return true
}

// annotate sets VNI and Selected of a path from the loop's state.
func (l *leaf) annotate(p *api.RoutePath) {
	r := p.Route
	if p.Local {
		p.VNI = r.L2VNI()
		switch r.Type {
		case evpn.RouteTypeMACIP:
			mi, ok := l.table.Lookup(p.VNI, r.MAC)
			p.Selected = ok && mi.Local
		case evpn.RouteTypeIMET:
			_, p.Selected = l.vnis[p.VNI]
		}
		return
	}
	vni, ok := l.table.ImportVNI(r)
	if !ok {
		return
	}
	p.VNI = vni
	if !p.Best {
		return // evpnd only ever sees BGP's best path of an NLRI
	}
	switch r.Type {
	case evpn.RouteTypeMACIP:
		mi, ok := l.table.Lookup(vni, r.MAC)
		p.Selected = ok && !mi.Local && mi.VTEP == r.VTEP()
	case evpn.RouteTypeIMET:
		p.Selected = l.table.HasFlood(vni, r.VTEP())
	}
}

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

// Watch implements api.Backend. Streams are bounded (see maxWatchers,
// watchBuffer, maxSnapshots): one too many gets api.ErrTooManyWatchers.
func (d *Daemon) Watch(ctx context.Context, initial bool, fn func(api.Change) error) error {
	release, err := d.hub.admit()
	if err != nil {
		return err
	}
	defer release()
	snapshotDone := func() {}
	if initial {
		done, err := d.hub.snapshotTurn(ctx)
		if err != nil {
			return err
		}
		var once sync.Once
		snapshotDone = func() { once.Do(done) }
		defer snapshotDone()
	}
	l := d.leaf.Load()
	if l == nil {
		if d.config().Role != configs.RoleRouteReflector {
			return errStopped
		}
		// A route reflector reports peer changes only.
		w := d.hub.subscribe()
		defer d.hub.unsubscribe(w)
		var init []api.Change
		if initial {
			init = d.peerChanges(ctx)
		}
		return w.serve(ctx, init, initial, fn, snapshotDone)
	}
	var w *watcher
	var init []api.Change
	// Subscribing in the loop makes the snapshot and the stream seamless:
	// every change after the snapshot is in the watcher's buffer.
	err = l.read(ctx, func() {
		w = d.hub.subscribe()
		if initial {
			init = l.snapshotChanges()
		}
	})
	if err != nil {
		if w != nil {
			d.hub.unsubscribe(w)
		}
		return err
	}
	defer d.hub.unsubscribe(w)
	return w.serve(ctx, init, initial, fn, snapshotDone)
}

func (d *Daemon) peerChanges(ctx context.Context) []api.Change {
	var out []api.Change
	peers, err := d.peers(ctx, false)
	if err != nil {
		return nil
	}
	now := time.Now()
	for _, p := range peers {
		if p.State == api.PeerEstablished { // as a leaf's initial state: sessions up
			out = append(out, api.Change{Time: now, Kind: api.ChangeUp, Initial: true, Peer: &api.PeerChange{Address: p.Address, State: p.State}})
		}
	}
	return out
}

// snapshotChanges is the current state as Added/Up changes, in the loop.
func (l *leaf) snapshotChanges() []api.Change {
	now := time.Now()
	var out []api.Change
	peers := make([]netip.Addr, 0, len(l.up))
	for p := range l.up {
		peers = append(peers, p)
	}
	slices.SortFunc(peers, netip.Addr.Compare)
	for _, p := range peers {
		out = append(out, api.Change{Time: now, Kind: api.ChangeUp, Initial: true,
			Peer: &api.PeerChange{Address: p, State: api.PeerEstablished}})
	}
	floods := l.table.FloodLists()
	for _, v := range l.d.cfg.L2VNIs {
		flood := floods[v.VNI]
		slices.SortFunc(flood, netip.Addr.Compare)
		for _, t := range flood {
			out = append(out, api.Change{Time: now, Kind: api.ChangeAdded, Initial: true, VTEP: &api.VTEPChange{VNI: v.VNI, VTEP: t}})
		}
	}
	var macs []api.Change
	l.table.MACs(func(mi evpn.MACInfo) bool {
		if !mi.Local && !mi.VTEP.IsValid() {
			return true
		}
		macs = append(macs, api.Change{Time: now, Kind: api.ChangeAdded, Initial: true, MAC: &api.MACChange{MAC: l.macRow(mi)}})
		return true
	})
	slices.SortFunc(macs, func(a, b api.Change) int {
		if c := cmp.Compare(a.MAC.MAC.VNI, b.MAC.MAC.VNI); c != 0 {
			return c
		}
		return bytes.Compare(a.MAC.MAC.MAC[:], b.MAC.MAC.MAC[:])
	})
	return append(append(out, macs...), l.vrfRouteSnapshot(now)...)
}

func (l *leaf) macRow(mi evpn.MACInfo) api.MAC {
	r := api.MAC{VNI: mi.VNI, MAC: mi.MAC, Local: mi.Local, VTEP: mi.VTEP, Seq: mi.Seq, Sticky: mi.Sticky, Duplicate: mi.Duplicate}
	if mi.Local {
		r.VTEP = l.d.cfg.VTEPIP
		r.Port = l.ports[evpn.MACKey{VNI: mi.VNI, MAC: mi.MAC}]
	}
	return r
}

// Check implements api.Backend.
func (d *Daemon) Check(ctx context.Context, vni uint32) (api.CheckReport, error) {
	l, err := d.leafOrErr()
	if err != nil {
		return api.CheckReport{}, err
	}
	if vni != 0 && !d.hasVNI(vni) {
		return api.CheckReport{}, fmt.Errorf("vni %d is not configured: %w", vni, api.ErrNotFound)
	}
	res, err := l.rec.Check(ctx, vni)
	if err != nil {
		return api.CheckReport{}, err
	}
	rep := api.CheckReport{CheckedMACs: res.CheckedMACs, CheckedFloods: res.CheckedFloods, InFlight: res.InFlight, Time: time.Now()}
	for _, dr := range res.Drifts {
		rep.Drifts = append(rep.Drifts, api.Drift{
			Kind: apiDriftKind(dr.Kind), VNI: dr.VNI, Table: dr.Table, MAC: dr.MAC,
			WantVTEP: dr.Want, KernelVTEP: dr.Have, Device: dr.Device, Detail: dr.Detail,
		})
	}
	for _, c := range l.l3Checks(vni) {
		ops, err := c.check(ctx)
		if err != nil {
			return api.CheckReport{}, fmt.Errorf("vrf %s: %w", c.dev.VRF, err)
		}
		rep.CheckedL3 += c.wanted
		rep.Drifts = append(rep.Drifts, l3Drifts(c.dev, ops)...)
	}
	return rep, nil
}

func apiDriftKind(k fib.DriftKind) api.DriftKind {
	switch k {
	case fib.DriftMissing:
		return api.DriftMissing
	case fib.DriftExtra:
		return api.DriftExtra
	}
	return api.DriftWrong
}

// Trace implements api.Backend.
func (d *Daemon) Trace(_ context.Context, vni uint32, mac evpn.MAC) ([]api.TraceKey, error) {
	if d.trace == nil {
		return nil, nil
	}
	if vni != 0 {
		k, ok := d.trace.Get(vni, mac)
		if !ok {
			return nil, nil
		}
		return []api.TraceKey{k}, nil
	}
	return d.trace.Find(mac), nil
}
