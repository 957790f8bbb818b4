package daemon

import (
	"bytes"
	"cmp"
	"context"
	"maps"
	"slices"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// routePage is how many BGP paths are annotated by the loop at a time.
const routePage = 1000

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
	if r.Type == evpn.RouteTypeIPPrefix {
		l.annotatePrefix(p)
		return
	}
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

// annotatePrefix sets VNI (the L3VNI) and Selected of a type-5 path: a
// local one is used while its VRF is configured; a received one when the
// L3 model installs its path for the prefix (not for a subnet of the
// VRF's own SVIs, which stays connected).
func (l *leaf) annotatePrefix(p *api.RoutePath) {
	r := p.Route
	if p.Local {
		p.VNI = r.L3VNI()
		_, p.Selected = vrfByL3VNI(l.d.cfg, p.VNI)
		return
	}
	if l.l3 == nil {
		return
	}
	vni, ok, used := l.l3.PrefixRoute(r.Key)
	if !ok {
		return
	}
	p.VNI = vni
	if t := l.tenantOfL3VNI(vni); used && p.Best && (t == nil || !local(t, r.Prefix)) {
		p.Selected = true
	}
}

// tenantOfL3VNI returns the tenant VRF with L3VNI vni, or nil.
func (l *leaf) tenantOfL3VNI(vni uint32) *tenant {
	for _, t := range l.tenants {
		if t.cfg.L3VNI == vni {
			return t
		}
	}
	return nil
}
