package fib

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// UnderlayProtocol is the rtm_protocol (`ip route ... proto 183`) that marks
// the underlay routes evpnd installs from its BGP underlay. fib owns every
// IPv4 route of the main table with this protocol: it adds the wanted ones,
// rewrites any that differ and deletes the others. 183 is in neither
// iproute2's rt_protos nor FRR's (186 bgp .. 199), so routes of an FRR or
// BIRD on the same node are never taken for evpnd's; configs/
// evpnd.rt_protos.conf names it "evpnd-underlay". It differs from
// RouteProtocol (241, tenant routes) because the L3 reconciler owns every
// 241 route of its table, which is the main table on the default backend:
// neither reconciler may take the other's routes for its own.
const UnderlayProtocol = 183

// StaticProtocol is the rtm_protocol of a tenant VRF's static routes (its
// routes key), which an Underlay reconciler of the VRF's table and
// namespace owns (UnderlayConfig.Table, Protocol, IPv6). 242 is used by
// nobody else either; configs/evpnd.rt_protos.conf names it
// "evpnd-static". It differs from RouteProtocol, all of whose routes in
// the VRF's table the L3 reconciler owns, and from UnderlayProtocol,
// which the underlay reconciler owns in the main table (the default
// backend's VRF table too).
const StaticProtocol = 242

// UnderlayRoute is one wanted underlay route: Prefix in the main table over
// the next hops (gateways on connected links), with equal weights (ECMP).
type UnderlayRoute struct {
	Prefix   netip.Prefix
	NextHops []netip.Addr
	// Src is the preferred source address (invalid: none): the node's
	// loopback, so that traffic the node itself starts towards another
	// loopback, such as BGP sessions between loopbacks, uses it.
	Src netip.Addr
}

func (r UnderlayRoute) String() string {
	var b strings.Builder
	b.WriteString(r.Prefix.String())
	for _, h := range r.NextHops {
		b.WriteString(" nexthop via ")
		b.WriteString(h.String())
	}
	if r.Src.IsValid() {
		b.WriteString(" src ")
		b.WriteString(r.Src.String())
	}
	return b.String()
}

func (r UnderlayRoute) equal(o UnderlayRoute) bool {
	return r.Prefix == o.Prefix && r.Src == o.Src && slices.Equal(r.NextHops, o.NextHops)
}

// normal returns r with its next hops sorted and without duplicates.
func (r UnderlayRoute) normal() UnderlayRoute {
	r.Prefix = r.Prefix.Masked()
	r.NextHops = slices.Clone(r.NextHops)
	slices.SortFunc(r.NextHops, func(a, b netip.Addr) int { return a.Compare(b) })
	r.NextHops = slices.Compact(r.NextHops)
	return r
}

// UnderlayOp is one kernel write of PlanUnderlay: replace (add or rewrite)
// the route, or delete the route to its prefix.
type UnderlayOp struct {
	Delete bool
	Route  UnderlayRoute
}

func (o UnderlayOp) String() string {
	if o.Delete {
		return "delete " + o.Route.String()
	}
	return "replace " + o.Route.String()
}

// PlanUnderlay is the pure difference between the wanted underlay routes
// and the UnderlayProtocol routes found in the kernel, in prefix order:
// each wanted route missing or different is replaced; each found route
// not wanted is deleted. usable filters next hops (nil: all usable): a
// wanted route keeps only its usable next hops, and one with none is not
// wanted. A wanted prefix listed twice keeps its last entry.
func PlanUnderlay(want, found []UnderlayRoute, usable func(netip.Addr) bool) []UnderlayOp {
	w := map[netip.Prefix]UnderlayRoute{}
	for _, r := range want {
		r = r.normal()
		if usable != nil {
			r.NextHops = slices.DeleteFunc(r.NextHops, func(a netip.Addr) bool { return !usable(a) })
		}
		if len(r.NextHops) == 0 {
			delete(w, r.Prefix)
			continue
		}
		w[r.Prefix] = r
	}
	f := map[netip.Prefix]UnderlayRoute{}
	for _, r := range found {
		f[r.Prefix.Masked()] = r.normal()
	}
	var ops []UnderlayOp
	for p, r := range w {
		if k, ok := f[p]; !ok || !k.equal(r) {
			ops = append(ops, UnderlayOp{Route: r})
		}
	}
	for p, r := range f {
		if _, ok := w[p]; !ok {
			ops = append(ops, UnderlayOp{Delete: true, Route: r})
		}
	}
	slices.SortFunc(ops, func(a, b UnderlayOp) int {
		if c := a.Route.Prefix.Addr().Compare(b.Route.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Route.Prefix.Bits() - b.Route.Prefix.Bits()
	})
	return ops
}

// underlayDrift is the drift op repairs, given the routes found: a
// delete removes an extra route, a replace puts back a missing one or
// rewrites a wrong one.
func underlayDrift(op UnderlayOp, found []UnderlayRoute) DriftKind {
	if op.Delete {
		return DriftExtra
	}
	p := op.Route.Prefix.Masked()
	if slices.ContainsFunc(found, func(r UnderlayRoute) bool { return r.Prefix.Masked() == p }) {
		return DriftWrong
	}
	return DriftMissing
}

// checkUnderlay refuses what the kernel would not take as an IPv4 route
// (with ipv6, or IPv6 route): next hops of the prefix's family.
func checkUnderlay(r UnderlayRoute, ipv6 bool) error {
	if !r.Prefix.IsValid() || r.Prefix.Addr().Is4In6() || (!r.Prefix.Addr().Is4() && !ipv6) {
		if ipv6 {
			return fmt.Errorf("route %s: want an IPv4 or IPv6 prefix", r.Prefix)
		}
		return fmt.Errorf("underlay route %s: want an IPv4 prefix", r.Prefix)
	}
	for _, h := range r.NextHops {
		if h.Is4() != r.Prefix.Addr().Is4() || h.Is4In6() || h.IsUnspecified() {
			return fmt.Errorf("route %s: next hop %s: want a unicast address of the prefix's family", r.Prefix, h)
		}
	}
	return nil
}
