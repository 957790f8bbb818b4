package daemon

import (
	"net/netip"
	"slices"
	"time"

	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/evpnd/evpnd/vtep"
)

// l3Options describes the tenant VRFs to the L3 model.
func (d *Daemon) l3Options() evpn.L3Options {
	opts := evpn.L3Options{LocalVTEP: d.cfg.VTEPIP, RouterID: d.cfg.RouterID}
	for _, f := range d.cfg.VRFs {
		opts.VRFs = append(opts.VRFs, l3VRF(d.cfg, f))
	}
	return opts
}

// localPrefixRoutes are the type-5 routes the VRFs originate: their
// connected subnets, configured prefixes and, on a border leaf, the
// default routes.
func (l *leaf) localPrefixRoutes() []*evpn.Route {
	var out []*evpn.Route
	for _, t := range l.tenants {
		out = append(out, l.l3.LocalPrefixRoutes(t.cfg.L3VNI, t.advertise)...)
	}
	return out
}

// tenantOf returns the tenant with the VRF name, or the one routing L2VNI
// vni when name is "".
func (l *leaf) tenantOf(name string, vni uint32) *tenant {
	for _, t := range l.tenants {
		if name != "" && t.cfg.Name == name {
			return t
		}
		if name == "" && slices.ContainsFunc(t.v.Members, func(m vtep.SVI) bool { return m.L2.VNI == vni }) {
			return t
		}
	}
	return nil
}

// applyL3 turns the L3 model's effects into fib's L3 desired state of each
// VRF and the batch's MAC+IP announcements and withdrawals (the last
// decision per route key counts; flush hands it to the Advertiser).
func (l *leaf) applyL3(effects []evpn.L3Effect, b *effBuf) {
	log := l.d.log
	now := time.Now()
	for _, e := range effects {
		if e.Kind == evpn.L3SetPrefix || e.Kind == evpn.L3DelPrefix {
			if t := l.tenantOf(e.Prefix.VRF, 0); t != nil && local(t, e.Prefix.Prefix) {
				// Not installed (see below): no route change for watchers.
				continue
			}
		}
		l.observeL3(e, now)
		var err error
		switch e.Kind {
		case evpn.L3SetNeigh, evpn.L3DelNeigh, evpn.L3ProbeNeigh:
			t := l.tenantOf("", e.Neigh.L2VNI)
			if t == nil {
				continue
			}
			svi := ""
			for _, m := range t.v.Members {
				if m.L2.VNI == e.Neigh.L2VNI {
					svi = m.L2.Bridge
				}
			}
			switch e.Kind {
			case evpn.L3SetNeigh:
				err = t.l3.SetNeigh(svi, e.Neigh.IP, e.Neigh.MAC)
			case evpn.L3ProbeNeigh:
				// The host moved here: the kernel takes the entry over
				// and probes it; its answer is a local host report.
				err = t.l3.HandOverNeigh(svi, e.Neigh.IP, e.Neigh.MAC)
			default:
				t.l3.DeleteNeigh(svi, e.Neigh.IP)
			}
		case evpn.L3SetHost, evpn.L3DelHost:
			t := l.tenantOf(e.Host.VRF, 0)
			if t == nil {
				continue
			}
			if e.Kind == evpn.L3SetHost {
				err = t.l3.SetHost(e.Host.IP, fib.NextHop(e.Host.NextHop))
			} else {
				t.l3.DeleteHost(e.Host.IP)
			}
		case evpn.L3SetPrefix, evpn.L3DelPrefix:
			t := l.tenantOf(e.Prefix.VRF, 0)
			if t == nil || local(t, e.Prefix.Prefix) {
				// A subnet of the VRF's own SVIs or uplinks stays
				// connected here, as zebra prefers the connected route to
				// the same prefix from BGP: replacing it would send local
				// hosts' traffic to another leaf. A static route of the
				// VRF wins likewise (zebra: distance 1 against iBGP's
				// 200): a border leaf keeps its own default route to the
				// outside when another border leaf advertises one.
				continue
			}
			if e.Kind == evpn.L3DelPrefix {
				for _, nh := range e.Prefix.NextHops {
					t.l3.DeletePath(e.Prefix.Prefix, nh.VTEP)
				}
				continue
			}
			// A PrefixRoute carries the whole ECMP set.
			for vtep := range t.l3.Snapshot().Paths[e.Prefix.Prefix] {
				if !slices.ContainsFunc(e.Prefix.NextHops, func(n evpn.NextHop) bool { return n.VTEP == vtep }) {
					t.l3.DeletePath(e.Prefix.Prefix, vtep)
				}
			}
			for _, nh := range e.Prefix.NextHops {
				if err = t.l3.AddPath(e.Prefix.Prefix, fib.NextHop(nh)); err != nil {
					break
				}
			}
		case evpn.L3Advertise:
			b.setL3(e.Route.Key, e.Route)
		case evpn.L3Withdraw:
			b.setL3(e.Route.Key, nil)
		case evpn.L3GatewayConflict:
			l.gatewayConflict(e)
		case evpn.L3Rejected:
			log.Debug("l3 route not used", "reason", e.Reason)
		}
		if err != nil {
			log.Warn("l3 entry not installed", "effect", e.Kind.String(), "err", err)
		}
	}
	l.observeARP(effects, now)
}

// local reports whether p is the subnet of one of t's SVIs or uplinks,
// or the prefix of one of its static routes.
func local(t *tenant, p netip.Prefix) bool {
	for _, m := range t.v.Members {
		for _, g := range m.GatewayIPs {
			if g.Masked() == p.Masked() {
				return true
			}
		}
	}
	for _, u := range t.v.Uplinks {
		for _, a := range u.Addrs {
			if a.Masked() == p.Masked() {
				return true
			}
		}
	}
	for _, r := range t.cfg.Routes {
		if r.Prefix.Masked() == p.Masked() {
			return true
		}
	}
	return false
}
