package daemon

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/evpnd/evpnd/cmd/evpnd/api"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/evpnd/evpnd/vtep"
)

// AddVNI implements api.Backend. Order, so that a refusal changes nothing:
// validate (as the config file would be), check the access interfaces
// exist, create the devices (vtep rolls back what it created if that
// fails), then start the VNI in the loop: import rules, fib devices, type-3
// announce, learner; last, routes already in BGP's table for it are fed.
func (d *Daemon) AddVNI(ctx context.Context, v configs.L2VNI) (api.VNI, error) {
	d.vniMu.Lock()
	defer d.vniMu.Unlock()
	l, err := d.leafOrErr()
	if err != nil {
		return api.VNI{}, err
	}
	cur := d.config()
	at := fmt.Sprintf("l2vnis[%d]", len(cur.L2VNIs))
	if d.hasVNI(v.VNI) {
		return api.VNI{}, &configs.ValidationError{Problems: []configs.Problem{{Path: at + ".vni", Value: fmt.Sprint(v.VNI),
			Reason: fmt.Sprintf("already configured: to change it, remove it first (evpnctl vni del %d)", v.VNI)}}}
	}
	next, err := cur.WithL2VNI(v)
	if err != nil {
		return api.VNI{}, err
	}
	nv := next.L2VNIs[len(next.L2VNIs)-1]
	if ps := nodeProblems(at, nv); len(ps) > 0 {
		return api.VNI{}, &configs.ValidationError{Problems: ps}
	}
	vv := d.vtepVNI(next, nv)
	if err := l.mgr.Ensure(ctx, []vtep.L2VNI{vv}); err != nil {
		return api.VNI{}, fmt.Errorf("create the devices of l2vni %d: %w", nv.VNI, err)
	}
	// From here on the change completes even if the client goes away: a
	// half-added VNI would black-hole its traffic.
	ctx = context.WithoutCancel(ctx)
	err = l.do(ctx, func(now time.Time) []evpn.Effect {
		l.vnis[nv.VNI] = nv
		d.cfg = next
		d.live.Store(next)
		l.table.SetImportRules(d.importRules())
		l.extra = append(l.extra, evpn.LocalIMETRoute(next.L2VNIRD(nv), nv.VNI, next.VTEPIP, next.ExportRTs(nv)))
		l.learner.SetVNIs(d.vtepVNIs())
		// BGP events from now on import into the VNI; the re-feed below
		// must not replay an older copy of a route they touched.
		l.refeeding[nv.VNI] = map[evpn.Key]struct{}{}
		return nil
	})
	if err != nil {
		// The loop stopped: evpnd is shutting down; the devices stay like
		// every other VNI's.
		return api.VNI{}, err
	}
	d.log.Info("l2vni added at run time (add it to the config file to keep it after a restart)",
		"vni", nv.VNI, "vxlan", nv.VXLANDevice, "bridge", nv.Bridge, "access", nv.AccessInterfaces)
	// Routes for this VNI that BGP already holds were rejected before:
	// feed the best ones again.
	var ferr error
	for attempt := 1; attempt <= 3; attempt++ {
		if ferr = l.refeed(ctx, nv.VNI); ferr == nil {
			break
		}
		d.log.Warn("re-read BGP routes for the new l2vni", "vni", nv.VNI, "attempt", attempt, "err", ferr)
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
	// fib learns the devices last, with the VNI's remote state complete:
	// on devices it adopts, it then never removes an entry the re-feed
	// is about to want.
	_ = l.do(ctx, func(time.Time) []evpn.Effect {
		delete(l.refeeding, nv.VNI)
		if err := l.desired.SetVNI(fib.VNIDevices{VNI: nv.VNI, VXLAN: nv.VXLANDevice, Bridge: nv.Bridge}); err != nil {
			d.log.Error("add l2vni to fib", "vni", nv.VNI, "err", err)
		}
		return nil
	})
	if ferr != nil {
		return api.VNI{}, fmt.Errorf("l2vni %d added, but the routes BGP already held for it could not be read (%v): "+
			"remote MACs and VTEPs arrive only with their next update; delete and add the VNI again to retry", nv.VNI, ferr)
	}
	var row api.VNI
	err = l.read(ctx, func() {
		if rows := l.vniRows(nv.VNI); len(rows) == 1 {
			row = rows[0]
		}
	})
	row.DevicesPresent = devicesPresent(row.VXLAN, row.Bridge)
	return row, err
}

// refeed feeds the table the best remote paths BGP holds for vni.
func (l *leaf) refeed(ctx context.Context, vni uint32) error {
	srv := l.srv
	var routes []*evpn.Route
	err := srv.Paths(ctx, func(p speaker.Path) error {
		if p.Best && !p.Local && p.Route != nil {
			routes = append(routes, p.Route)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return l.do(ctx, func(now time.Time) []evpn.Effect {
		var eff []evpn.Effect
		touched := l.refeeding[vni]
		for _, r := range routes {
			if _, newer := touched[r.Key]; newer {
				continue // BGP sent a newer update or a withdrawal since
			}
			if v, ok := l.table.ImportVNI(r); ok && v == vni {
				eff = append(eff, l.table.Update(r, now)...)
			}
		}
		return eff
	})
}

// DeleteVNI implements api.Backend: withdraw the VNI's routes, remove its
// remote entries and stop learning on it, then delete the devices evpnd
// created (deleting the VXLAN device also drops its FDB entries).
func (d *Daemon) DeleteVNI(ctx context.Context, vni uint32) error {
	d.vniMu.Lock()
	defer d.vniMu.Unlock()
	l, err := d.leafOrErr()
	if err != nil {
		return err
	}
	cur := d.config()
	if f, routed := vrfOf(cur, vni); routed {
		return fmt.Errorf("l2vni %d is routed in vrf %s: VRF members cannot be removed at run time yet; remove it from the VRF in the config file and restart evpnd", vni, f.Name)
	}
	next, ok := cur.WithoutL2VNI(vni)
	if !ok {
		return fmt.Errorf("l2vni %d is not configured: %w", vni, api.ErrNotFound)
	}
	var old configs.L2VNI
	for _, v := range cur.L2VNIs {
		if v.VNI == vni {
			old = v
		}
	}
	ctx = context.WithoutCancel(ctx) // once started, the removal completes
	err = l.do(ctx, func(now time.Time) []evpn.Effect {
		l.publishVNIRemoved(vni, now)
		eff := l.table.RemoveVNI(vni)
		for k := range l.ports {
			if k.VNI == vni {
				delete(l.ports, k)
			}
		}
		delete(l.vnis, vni)
		d.cfg = next
		d.live.Store(next)
		l.table.SetImportRules(d.importRules())
		l.withdrawExtra = append(l.withdrawExtra, evpn.LocalIMETRoute(cur.L2VNIRD(old), vni, cur.VTEPIP, cur.ExportRTs(old)))
		l.learner.SetVNIs(d.vtepVNIs())
		for k := range l.retries {
			if k.VNI == vni {
				delete(l.retries, k)
			}
		}
		return eff
	})
	if err != nil {
		return err
	}
	// The fib deletions of the VNI's entries were queued by the batch;
	// dropping the VNI from fib now makes the reconciler forget them (the
	// device and its entries go away with it).
	l.desired.RemoveVNI(vni)
	// The VNI's history and counters go last: the batch above still
	// recorded its withdrawals.
	defer d.metrics.RemoveVNI(vni)
	defer d.trace.RemoveVNI(vni)
	if err := l.mgr.Remove(ctx, d.vtepVNI(cur, old)); err != nil {
		return fmt.Errorf("l2vni %d stopped, but its devices were not all removed (delete %s and %s by hand if evpnd created them): %w",
			vni, old.VXLANDevice, old.Bridge, err)
	}
	d.log.Info("l2vni removed at run time (remove it from the config file too)", "vni", vni)
	return nil
}

func (d *Daemon) vtepVNI(c *configs.Config, v configs.L2VNI) vtep.L2VNI {
	return vtep.L2VNI{
		VNI: v.VNI, VXLAN: v.VXLANDevice, Bridge: v.Bridge, AccessPorts: v.AccessInterfaces,
		Local: c.VTEPIP, UDPPort: v.UDPPort, MTU: v.MTU, DefaultVXLANMTU: d.vxlanMTU,
	}
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// nodeProblems checks a new L2VNI against this node's links before
// anything is touched: its access interfaces must exist and carry no
// address (an interface with one routes, maybe the underlay: bridging it
// into a VNI would leak the underlay into the overlay), and its device
// names must not belong to links of another kind.
func nodeProblems(at string, v configs.L2VNI) []configs.Problem {
	var ps []configs.Problem
	for i, p := range v.AccessInterfaces {
		path := fmt.Sprintf("%s.access-interfaces[%d]", at, i)
		l, err := netlink.LinkByName(p)
		if err != nil {
			ps = append(ps, configs.Problem{Path: path, Value: p, Reason: "no such interface on this node: create it first, or leave it out"})
			continue
		}
		if a := routedAddr(l); a != "" {
			ps = append(ps, configs.Problem{Path: path, Value: p,
				Reason: "has address " + a + ", so it routes (the underlay?): an access port carries no address; pick the host-facing port"})
		}
	}
	for _, c := range []struct{ key, name, kind string }{{"vxlan-device", v.VXLANDevice, "vxlan"}, {"bridge", v.Bridge, "bridge"}} {
		if l, err := netlink.LinkByName(c.name); err == nil && l.Type() != c.kind {
			ps = append(ps, configs.Problem{Path: at + "." + c.key, Value: c.name,
				Reason: fmt.Sprintf("the name is taken by a %s device on this node: choose another %s name", l.Type(), c.key)})
		}
	}
	return ps
}

// routedAddr returns an address of l other than IPv6 link-local, or "".
func routedAddr(l netlink.Link) string {
	addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if a.IP != nil && !a.IP.IsLinkLocalUnicast() {
			return a.IPNet.String()
		}
	}
	return ""
}
