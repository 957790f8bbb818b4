package daemon

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// The Daemon serves the API's layer-3 tables.
var _ api.L3Backend = (*Daemon)(nil)

// l3State returns the L3 model's installed state of one VRF (by L3VNI),
// read on the loop. A leaf without the L3 model (no loop runs it) has
// nothing to read.
func (l *leaf) l3State(ctx context.Context, l3vni uint32) (evpn.L3Snapshot, error) {
	var s evpn.L3Snapshot
	if l.l3 == nil {
		return s, nil
	}
	err := l.do(ctx, func(time.Time) []evpn.Effect {
		s = l.l3Snapshot(l3vni)
		return nil
	})
	return s, err
}

// l3Snapshot is l3State in the loop: the L3 model's entries of the VRF
// with L3VNI l3vni (its members' suppression neighbours, its host and
// prefix routes and router MACs). Only that VRF's entries are copied.
func (l *leaf) l3Snapshot(l3vni uint32) evpn.L3Snapshot {
	if l.l3 == nil {
		return evpn.L3Snapshot{}
	}
	s := l.l3.SnapshotVRF(l3vni)
	for _, t := range l.tenantList() {
		if t.v.L3.VNI == l3vni {
			return installedL3(s, func(p netip.Prefix) bool { return local(t, p) })
		}
	}
	return s
}

// installedL3 is one VRF's part of the L3 model's snapshot as the kernel
// holds it: without the type-5 routes to its own SVIs' subnets (local
// reports them), which applyL3 leaves connected, and with the router MACs
// of the routes left only, as fib installs them (one per VTEP a host or
// prefix route goes through), each with the number of those routes. The
// model counts every route received with a router MAC, so without this a
// leaf whose only routes left are type-5 routes to shared subnets would
// still be listed with its router MAC, which no leaf's kernel holds any
// more.
func installedL3(s evpn.L3Snapshot, connected func(netip.Prefix) bool) evpn.L3Snapshot {
	s.Prefixes = slices.DeleteFunc(slices.Clone(s.Prefixes), func(p evpn.PrefixRoute) bool { return connected(p.Prefix) })
	uses := map[netip.Addr]int{}
	for _, h := range s.Hosts {
		uses[h.NextHop.VTEP]++
	}
	for _, p := range s.Prefixes {
		for _, nh := range p.NextHops {
			uses[nh.VTEP]++
		}
	}
	var rmacs []evpn.RouterMAC
	for _, r := range s.RouterMACs {
		if n := uses[r.VTEP]; n > 0 {
			r.Routes = n
			rmacs = append(rmacs, r)
		}
	}
	s.RouterMACs = rmacs
	return s
}

// vrfByL3VNI finds the configured VRF with that L3VNI.
func vrfByL3VNI(c *configs.Config, l3vni uint32) (configs.VRF, bool) {
	for _, v := range c.VRFs {
		if v.L3VNI == l3vni {
			return v, true
		}
	}
	return configs.VRF{}, false
}

// vrfByName finds the configured VRF named name.
func vrfByName(c *configs.Config, name string) (configs.VRF, bool) {
	for _, v := range c.VRFs {
		if v.Name == name {
			return v, true
		}
	}
	return configs.VRF{}, false
}

// vrfOfL2VNI finds the VRF an L2VNI is routed in.
func vrfOfL2VNI(c *configs.Config, vni uint32) (configs.VRF, bool) {
	for _, v := range c.VRFs {
		for _, m := range v.L2VNIs {
			if m.VNI == vni {
				return v, true
			}
		}
	}
	return configs.VRF{}, false
}

// sortedVRFs returns the VRFs sorted by L3VNI.
func sortedVRFs(c *configs.Config) []configs.VRF {
	vs := slices.Clone(c.VRFs)
	slices.SortFunc(vs, func(a, b configs.VRF) int { return cmp.Compare(a.L3VNI, b.L3VNI) })
	return vs
}

// l3vniRow is the API's row of VRF v, counted from its model state.
func l3vniRow(c *configs.Config, v configs.VRF, s evpn.L3Snapshot) api.L3VNI {
	imp, _ := c.VRFImportRTs(v)
	row := api.L3VNI{
		L3VNI: v.L3VNI, VRF: v.Name, Backend: v.Backend, Table: int(v.Table), Namespace: v.Namespace,
		VXLAN: v.VXLANDevice, Bridge: v.Bridge, RouterMAC: c.VRFRouterMAC(v), LocalVTEP: c.VTEPIP,
		RD: c.VRFRD(v), ImportRTs: imp, ExportRTs: c.VRFExportRTs(v),
		DevicesPresent: presence{}.has(vrfNamespace(v), v.VXLANDevice, v.Bridge),
	}
	for _, m := range v.L2VNIs {
		row.L2VNIs = append(row.L2VNIs, m.VNI)
	}
	slices.Sort(row.L2VNIs)
	for _, r := range s.RouterMACs {
		if r.L3VNI == v.L3VNI {
			row.RemoteVTEPs++
		}
	}
	row.NextHops = len(nextHopRows(v, s))
	for _, h := range s.Hosts {
		if h.L3VNI == v.L3VNI {
			row.HostRoutes++
		}
	}
	for _, p := range s.Prefixes {
		if p.L3VNI == v.L3VNI {
			row.PrefixRoutes++
		}
	}
	return row
}

// L3VNIs implements api.L3Backend.
func (d *Daemon) L3VNIs(ctx context.Context) ([]api.L3VNI, error) {
	l, err := d.leafOrErr()
	if err != nil {
		return nil, err
	}
	c := d.config()
	var out []api.L3VNI
	for _, v := range sortedVRFs(c) {
		s, err := l.l3State(ctx, v.L3VNI)
		if err != nil {
			return nil, err
		}
		out = append(out, l3vniRow(c, v, s))
	}
	return out, nil
}

// L3VNI implements api.L3Backend.
func (d *Daemon) L3VNI(ctx context.Context, l3vni uint32) (api.L3VNI, error) {
	l, err := d.leafOrErr()
	if err != nil {
		return api.L3VNI{}, err
	}
	c := d.config()
	v, ok := vrfByL3VNI(c, l3vni)
	if !ok {
		return api.L3VNI{}, api.ErrNotFound
	}
	s, err := l.l3State(ctx, l3vni)
	if err != nil {
		return api.L3VNI{}, err
	}
	return l3vniRow(c, v, s), nil
}

// ARPCache implements api.L3Backend.
func (d *Daemon) ARPCache(ctx context.Context, vni uint32, fn func(api.ARPEntry) error) error {
	l, err := d.leafOrErr()
	if err != nil {
		return err
	}
	c := d.config()
	var vrfs []configs.VRF
	if vni != 0 {
		v, ok := vrfOfL2VNI(c, vni)
		if !ok {
			return api.ErrNotFound
		}
		vrfs = []configs.VRF{v}
	} else {
		vrfs = sortedVRFs(c)
	}
	var rows []api.ARPEntry
	for _, v := range vrfs {
		bs, err := l.bindings(ctx, v.L3VNI, vni)
		if err != nil {
			return err
		}
		rows = append(rows, arpRows(v, bs)...)
	}
	slices.SortFunc(rows, func(a, b api.ARPEntry) int { return cmp.Or(cmp.Compare(a.VNI, b.VNI), a.IP.Compare(b.IP)) })
	for _, r := range rows {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// bindings returns the L3 model's local and remote bindings of the members
// of the VRF with L3VNI l3vni (only L2VNI vni, if not 0), read on the loop.
func (l *leaf) bindings(ctx context.Context, l3vni, vni uint32) ([]evpn.Binding, error) {
	if l.l3 == nil {
		return nil, nil
	}
	var bs []evpn.Binding
	err := l.do(ctx, func(time.Time) []evpn.Effect {
		bs = l.l3.Bindings(l3vni, vni)
		return nil
	})
	return bs, err
}

// arpRows are VRF v's bindings as the API's rows: the hosts learned on
// its SVIs (local, advertised as MAC+IP routes unless their MAC is at
// another leaf for now) and the remote hosts installed as suppression
// neighbours, with the VTEP of the selected route.
func arpRows(v configs.VRF, bs []evpn.Binding) []api.ARPEntry {
	out := make([]api.ARPEntry, 0, len(bs))
	for _, b := range bs {
		out = append(out, api.ARPEntry{VNI: b.L2VNI, IP: b.IP, MAC: b.MAC, Local: b.Local, VTEP: b.VTEP, Seq: b.Seq,
			VRF: v.Name, Inactive: !b.Active})
	}
	return out
}

// RouterMACs implements api.L3Backend.
func (d *Daemon) RouterMACs(ctx context.Context, l3vni uint32) ([]api.RouterMACEntry, error) {
	l, vrfs, err := d.l3Scope(l3vni)
	if err != nil {
		return nil, err
	}
	var out []api.RouterMACEntry
	for _, v := range vrfs {
		s, err := l.l3State(ctx, v.L3VNI)
		if err != nil {
			return nil, err
		}
		out = append(out, rmacRows(v, s)...)
	}
	return out, nil
}

// l3Scope is the VRFs one L3VNI (0: every one) names.
func (d *Daemon) l3Scope(l3vni uint32) (*leaf, []configs.VRF, error) {
	l, err := d.leafOrErr()
	if err != nil {
		return nil, nil, err
	}
	c := d.config()
	if l3vni == 0 {
		return l, sortedVRFs(c), nil
	}
	v, ok := vrfByL3VNI(c, l3vni)
	if !ok {
		return nil, nil, api.ErrNotFound
	}
	return l, []configs.VRF{v}, nil
}

func rmacRows(v configs.VRF, s evpn.L3Snapshot) []api.RouterMACEntry {
	var out []api.RouterMACEntry
	for _, r := range s.RouterMACs {
		if r.L3VNI == v.L3VNI {
			out = append(out, api.RouterMACEntry{L3VNI: r.L3VNI, VRF: v.Name, VTEP: r.VTEP, RouterMAC: r.MAC, Routes: r.Routes})
		}
	}
	slices.SortFunc(out, func(a, b api.RouterMACEntry) int { return a.VTEP.Compare(b.VTEP) })
	return out
}

// L3NextHops implements api.L3Backend.
func (d *Daemon) L3NextHops(ctx context.Context, l3vni uint32) ([]api.L3NextHop, error) {
	l, vrfs, err := d.l3Scope(l3vni)
	if err != nil {
		return nil, err
	}
	var out []api.L3NextHop
	for _, v := range vrfs {
		s, err := l.l3State(ctx, v.L3VNI)
		if err != nil {
			return nil, err
		}
		out = append(out, nextHopRows(v, s)...)
	}
	return out, nil
}

// nextHopRows are the VTEPs VRF v's installed routes go through, with the
// number of routes through each.
func nextHopRows(v configs.VRF, s evpn.L3Snapshot) []api.L3NextHop {
	by := map[evpn.NextHop]int{}
	for _, h := range s.Hosts {
		if h.L3VNI == v.L3VNI {
			by[h.NextHop]++
		}
	}
	for _, p := range s.Prefixes {
		if p.L3VNI == v.L3VNI {
			for _, nh := range p.NextHops {
				by[nh]++
			}
		}
	}
	out := make([]api.L3NextHop, 0, len(by))
	for nh, n := range by {
		out = append(out, api.L3NextHop{L3VNI: v.L3VNI, VRF: v.Name, VTEP: nh.VTEP, RouterMAC: nh.RouterMAC, Routes: n})
	}
	slices.SortFunc(out, func(a, b api.L3NextHop) int {
		return cmp.Or(a.VTEP.Compare(b.VTEP), slices.Compare(a.RouterMAC[:], b.RouterMAC[:]))
	})
	return out
}

// VRFRoutes implements api.L3Backend.
func (d *Daemon) VRFRoutes(ctx context.Context, name string, fn func(api.VRFRoute) error) error {
	l, err := d.leafOrErr()
	if err != nil {
		return err
	}
	v, ok := vrfByName(d.config(), name)
	if !ok {
		return api.ErrNotFound
	}
	s, err := l.l3State(ctx, v.L3VNI)
	if err != nil {
		return err
	}
	for _, r := range vrfRouteRows(v, s) {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// vrfRouteRows are VRF v's host and prefix routes, sorted by prefix (a
// host route and a type-5 /32 of the same address: the host route first).
func vrfRouteRows(v configs.VRF, s evpn.L3Snapshot) []api.VRFRoute {
	var out []api.VRFRoute
	for _, h := range s.Hosts {
		if h.L3VNI == v.L3VNI {
			out = append(out, api.VRFRoute{VRF: v.Name, L3VNI: v.L3VNI, Prefix: netip.PrefixFrom(h.IP, h.IP.BitLen()), Host: true,
				NextHops: []api.VRFNextHop{{VTEP: h.NextHop.VTEP, RouterMAC: h.NextHop.RouterMAC}}})
		}
	}
	for _, p := range s.Prefixes {
		if p.L3VNI == v.L3VNI {
			r := api.VRFRoute{VRF: v.Name, L3VNI: v.L3VNI, Prefix: p.Prefix}
			for _, nh := range p.NextHops {
				r.NextHops = append(r.NextHops, api.VRFNextHop{VTEP: nh.VTEP, RouterMAC: nh.RouterMAC})
			}
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b api.VRFRoute) int {
		return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
	return out
}

// l3Check is one VRF's L3 state as Check compares it: its devices, the
// number of entries it wants, and its reconciler's Check (the writes a
// pass would make).
type l3Check struct {
	dev    fib.L3Devices
	wanted int
	check  func(ctx context.Context) ([]fib.L3Op, error)
}

// l3Checks returns the VRFs' reconcilers for Check, only those of L3VNI
// (or whose member is) vni when not 0.
func (l *leaf) l3Checks(vni uint32) []l3Check {
	var out []l3Check
	for _, t := range l.tenantList() {
		if t.l3rec == nil || (vni != 0 && !tenantHasVNI(t, vni)) {
			continue
		}
		snap := t.l3.Snapshot()
		want, _ := fib.WantL3(snap)
		out = append(out, l3Check{
			dev:    snap.Dev,
			wanted: len(want.Neighs) + len(want.RMACs) + len(want.Routes),
			check:  t.l3rec.Check,
		})
	}
	return out
}

// tenantHasVNI reports whether vni is t's L3VNI or one of its members.
func tenantHasVNI(t *tenant, vni uint32) bool {
	if t.v.L3.VNI == vni {
		return true
	}
	for _, m := range t.v.Members {
		if m.L2.VNI == vni {
			return true
		}
	}
	return false
}

// l3Drifts turns the writes an L3 check found into drift rows: a delete is
// an entry the kernel holds that nothing wants (extra); a replace is one
// the kernel lacks or holds with another value (reported as missing, with
// the command that repairs it).
func l3Drifts(dev fib.L3Devices, ops []fib.L3Op) []api.Drift {
	var out []api.Drift
	for _, op := range ops {
		d := api.Drift{Kind: api.DriftMissing, VRF: dev.VRF, Detail: op.String(dev)}
		if op.Kind == fib.L3Delete {
			d.Kind = api.DriftExtra
		}
		switch {
		case op.Neigh != nil:
			d.Table, d.Entry, d.Device = "neigh", op.Neigh.IP.String(), op.Neigh.Dev
		case op.RMAC != nil:
			d.Table, d.Entry, d.Device = "rmac", op.RMAC.MAC.String(), dev.VXLAN
			if d.Kind == api.DriftExtra {
				d.KernelVTEP = op.RMAC.VTEP
			} else {
				d.WantVTEP = op.RMAC.VTEP
			}
		case op.Route != nil:
			d.Table, d.Entry, d.Device = "route", op.Route.Prefix.String(), dev.SVI
			if d.Kind == api.DriftMissing && len(op.Route.VTEPs) > 0 {
				d.WantVTEP = op.Route.VTEPs[0]
			}
		default:
			continue
		}
		out = append(out, d)
	}
	return out
}

// vrfRouteChange is the watch change of one L3 model effect: a host or
// prefix route installed (added, or changed: added again with its new
// next hops) or removed. Other effects change no VRF route.
func vrfRouteChange(e evpn.L3Effect, now time.Time) (api.Change, bool) {
	c := api.Change{Time: now, Kind: api.ChangeAdded}
	var r api.VRFRoute
	switch e.Kind {
	case evpn.L3SetHost, evpn.L3DelHost:
		h := e.Host
		r = api.VRFRoute{VRF: h.VRF, L3VNI: h.L3VNI, Prefix: netip.PrefixFrom(h.IP, h.IP.BitLen()), Host: true,
			NextHops: []api.VRFNextHop{{VTEP: h.NextHop.VTEP, RouterMAC: h.NextHop.RouterMAC}}}
		if e.Kind == evpn.L3DelHost {
			c.Kind = api.ChangeRemoved
		}
	case evpn.L3SetPrefix, evpn.L3DelPrefix:
		p := e.Prefix
		r = api.VRFRoute{VRF: p.VRF, L3VNI: p.L3VNI, Prefix: p.Prefix}
		for _, nh := range p.NextHops {
			r.NextHops = append(r.NextHops, api.VRFNextHop{VTEP: nh.VTEP, RouterMAC: nh.RouterMAC})
		}
		if e.Kind == evpn.L3DelPrefix {
			c.Kind = api.ChangeRemoved
		}
	default:
		return api.Change{}, false
	}
	c.VRFRoute = &api.VRFRouteChange{Route: r}
	return c, true
}

// observeL3 publishes the VRF route change of an L3 model effect to the
// watchers, if any. It runs in the loop (the VRF wiring calls it for each
// effect), so it stays cheap.
func (l *leaf) observeL3(e evpn.L3Effect, now time.Time) {
	if !l.d.hub.active() {
		return
	}
	if c, ok := vrfRouteChange(e, now); ok {
		l.d.hub.publish(c)
	}
}

// vrfRouteSnapshot is the VRFs' routes as initial Added changes of a
// watch, in the loop.
func (l *leaf) vrfRouteSnapshot(now time.Time) []api.Change {
	var out []api.Change
	for _, v := range sortedVRFs(l.d.config()) {
		for _, r := range vrfRouteRows(v, l.l3Snapshot(v.L3VNI)) {
			out = append(out, api.Change{Time: now, Kind: api.ChangeAdded, Initial: true, VRFRoute: &api.VRFRouteChange{Route: r}})
		}
	}
	return out
}

// observeARP publishes to the watchers, if any, the ARP cache rows that
// a batch of L3 model effects changed: for each (L2VNI, IP) a local
// MAC+IP route was advertised or withdrawn for, or a suppression
// neighbour set or deleted for, its row as the batch left it (added), or
// its last row (removed). It runs in the loop after the batch's effects,
// whose model state is the batch's end. A local host not advertised when
// it goes (its MAC was away) makes no effect, so no removal: "show evpn
// arp-cache" is the reference.
func (l *leaf) observeARP(effects []evpn.L3Effect, now time.Time) {
	if l.l3 == nil || !l.d.hub.active() {
		return
	}
	type key struct {
		vni uint32
		ip  netip.Addr
	}
	last := map[key]api.ARPEntry{}
	var order []key
	for _, e := range effects {
		var row api.ARPEntry
		switch e.Kind {
		case evpn.L3SetNeigh, evpn.L3DelNeigh:
			row = api.ARPEntry{VNI: e.Neigh.L2VNI, IP: e.Neigh.IP, MAC: e.Neigh.MAC}
		case evpn.L3Advertise, evpn.L3Withdraw:
			k := e.Route.Key
			if k.Type != evpn.RouteTypeMACIP || !k.IP.IsValid() {
				continue
			}
			row = api.ARPEntry{VNI: e.Route.L2VNI(), IP: k.IP, MAC: k.MAC, Local: true, Seq: e.Route.Seq}
			if e.Kind == evpn.L3Withdraw {
				vni, ok := l.l3.MemberOfRD(k.RD)
				if !ok {
					continue
				}
				row.VNI = vni
			}
		default:
			continue
		}
		k := key{row.VNI, row.IP.Unmap()}
		if _, seen := last[k]; !seen {
			order = append(order, k)
		}
		last[k] = row
	}
	c := l.d.config()
	for _, k := range order {
		v, _ := vrfOfL2VNI(c, k.vni)
		ch := api.Change{Time: now, Kind: api.ChangeAdded}
		if b, ok := l.l3.Binding(k.vni, k.ip); ok {
			ch.ARP = &api.ARPChange{Entry: arpRows(v, []evpn.Binding{b})[0]}
		} else {
			row := last[k]
			row.VRF = v.Name
			ch.Kind, ch.ARP = api.ChangeRemoved, &api.ARPChange{Entry: row}
		}
		l.d.hub.publish(ch)
	}
}

// arpSnapshot is the VRFs' ARP caches as initial Added changes of a
// watch, in the loop.
func (l *leaf) arpSnapshot(now time.Time) []api.Change {
	if l.l3 == nil {
		return nil
	}
	var out []api.Change
	for _, v := range sortedVRFs(l.d.config()) {
		for _, r := range arpRows(v, l.l3.Bindings(v.L3VNI, 0)) {
			out = append(out, api.Change{Time: now, Kind: api.ChangeAdded, Initial: true, ARP: &api.ARPChange{Entry: r}})
		}
	}
	return out
}
