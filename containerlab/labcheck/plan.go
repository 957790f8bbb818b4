// Package labcheck knows what a deployed EVPN topology under containerlab/
// must do, and checks it through any runner: evpnlab's namespaces
// (lab.Lab) or containers (docker exec). The expectations come from the
// topology file itself, so a new topology is checked without new code:
//
//   - hosts are the nodes with the label evpnd.vni; each has one link, eth1,
//     to a leaf, with a fixed MAC (mac: on the link endpoint) and an
//     address set by "ip addr add A/LEN dev eth1" in exec;
//   - a routed host also has an IPv6 address ("ip addr add A/LEN dev eth1
//     nodad") and routes via its anycast gateway ("ip route add P via GW",
//     "ip -6 route add P via GW"): it must reach the hosts of the other
//     subnets its routes cover, in both families it has;
//   - leafs are the nodes with the label evpnd.role: leaf; a leaf's VTEP is
//     its loopback, "ip addr add V/32 dev lo" in exec, and it serves the
//     VNIs of its hosts;
//   - spines are the nodes the leafs' fabric links lead to.
//
// Hosts in the same VNI must reach each other; hosts in different VNIs
// must not at layer 2, and reach each other routed where both have routes
// to each other (see Matrix). Every leaf must list exactly the
// MACs of the hosts in its VNIs, local or remote at the right VTEP, and no
// other (see CheckMACs).
package labcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"

	"github.com/evpnd/evpnd/containerlab/lab"
)

// Runner runs a command in a lab node and returns its combined output. A
// non-zero exit is an error.
type Runner interface {
	Exec(ctx context.Context, node string, argv ...string) (string, error)
}

// Host is an end host of the fabric.
type Host struct {
	Name    string
	VNI     uint32
	Prefix  netip.Prefix // the address on eth1
	Prefix6 netip.Prefix // its IPv6 address on eth1, if any
	Routes  []Route      // its routes via a gateway
	MAC     net.HardwareAddr
	Leaf    string // the leaf its eth1 is wired to
	Port    string // that leaf's interface
}

// Route is a host's route to Dst via its gateway Via.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

// Addr is the host's address.
func (h Host) Addr() netip.Addr { return h.Prefix.Addr() }

// RoutesTo reports whether h has a route via a gateway to a.
func (h Host) RoutesTo(a netip.Addr) bool {
	return slices.ContainsFunc(h.Routes, func(r Route) bool { return r.Dst.Contains(a) })
}

// Leaf is an evpnd leaf (VTEP).
type Leaf struct {
	Name string
	VTEP netip.Addr
	VNIs []uint32 // sorted
}

// Plan is what a topology promises.
type Plan struct {
	Lab    string
	Hosts  []Host // in file order
	Leafs  []Leaf // in file order
	Spines []string
}

var (
	hostAddrRE  = regexp.MustCompile(`^ip addr add (\S+) dev eth1( nodad)?$`)
	hostRouteRE = regexp.MustCompile(`^ip (?:-6 )?route add (\S+) via (\S+)$`)
	loopRE      = regexp.MustCompile(`^ip addr add (\S+)/32 dev lo$`)
)

// PlanOf reads a topology's plan; it fails when the topology does not
// follow the conventions above.
func PlanOf(t *lab.Topology) (*Plan, error) {
	p := &Plan{Lab: t.Name}
	peer := map[string]lab.Endpoint{} // "node:iface" -> the other end
	for _, l := range t.Links {
		peer[l.A.String()], peer[l.B.String()] = l.B, l.A
	}
	// macOf returns the MAC of node:iface from its link.
	macOf := func(node, iface string) net.HardwareAddr {
		for _, l := range t.Links {
			for _, e := range []lab.Endpoint{l.A, l.B} {
				if e.Node == node && e.Interface == iface {
					return e.MAC
				}
			}
		}
		return nil
	}
	leafVNIs := map[string][]uint32{}
	for _, n := range t.Nodes {
		v, ok := n.Labels["evpnd.vni"]
		if !ok {
			continue
		}
		vni, err := strconv.ParseUint(v, 10, 32)
		if err != nil || vni == 0 || vni >= 1<<24 {
			return nil, fmt.Errorf("host %s: label evpnd.vni %q is not a VNI", n.Name, v)
		}
		h := Host{Name: n.Name, VNI: uint32(vni), MAC: macOf(n.Name, "eth1")}
		for _, c := range n.Exec {
			if m := hostAddrRE.FindStringSubmatch(c); m != nil {
				a, err := netip.ParsePrefix(m[1])
				switch {
				case err != nil:
					return nil, fmt.Errorf("host %s: %q: %w", n.Name, c, err)
				case a.Addr().Is4():
					h.Prefix = a
				default:
					h.Prefix6 = a
				}
			}
			if m := hostRouteRE.FindStringSubmatch(c); m != nil {
				dst, err1 := netip.ParsePrefix(m[1])
				via, err2 := netip.ParseAddr(m[2])
				if err := errors.Join(err1, err2); err != nil {
					return nil, fmt.Errorf("host %s: %q: %w", n.Name, c, err)
				}
				h.Routes = append(h.Routes, Route{Dst: dst, Via: via})
			}
		}
		if !h.Prefix.IsValid() {
			return nil, fmt.Errorf("host %s: no \"ip addr add A/LEN dev eth1\" in exec", n.Name)
		}
		if h.MAC == nil {
			return nil, fmt.Errorf("host %s: eth1 has no fixed MAC (mac: on its link endpoint)", n.Name)
		}
		up, ok := peer[n.Name+":eth1"]
		if !ok {
			return nil, fmt.Errorf("host %s: eth1 is not linked", n.Name)
		}
		h.Leaf, h.Port = up.Node, up.Interface
		if !slices.Contains(leafVNIs[h.Leaf], h.VNI) {
			leafVNIs[h.Leaf] = append(leafVNIs[h.Leaf], h.VNI)
		}
		p.Hosts = append(p.Hosts, h)
	}
	for _, n := range t.Nodes {
		if n.Labels["evpnd.role"] != "leaf" {
			continue
		}
		lf := Leaf{Name: n.Name, VNIs: leafVNIs[n.Name]}
		slices.Sort(lf.VNIs)
		for _, c := range n.Exec {
			if m := loopRE.FindStringSubmatch(c); m != nil {
				a, err := netip.ParseAddr(m[1])
				if err != nil {
					return nil, fmt.Errorf("leaf %s: %q: %w", n.Name, c, err)
				}
				lf.VTEP = a
			}
		}
		if !lf.VTEP.IsValid() {
			return nil, fmt.Errorf("leaf %s: no \"ip addr add V/32 dev lo\" in exec", n.Name)
		}
		p.Leafs = append(p.Leafs, lf)
	}
	spines := map[string]bool{}
	for _, l := range t.Links {
		for _, e := range [][2]lab.Endpoint{{l.A, l.B}, {l.B, l.A}} {
			if p.Leaf(e[0].Node) != nil && t.Node(e[1].Node).Labels["evpnd.vni"] == "" {
				spines[e[1].Node] = true
			}
		}
	}
	for _, n := range t.Nodes {
		if spines[n.Name] {
			p.Spines = append(p.Spines, n.Name)
		}
	}
	for _, h := range p.Hosts {
		if p.Leaf(h.Leaf) == nil {
			return nil, fmt.Errorf("host %s: eth1 leads to %s, which is no leaf (label evpnd.role: leaf)", h.Name, h.Leaf)
		}
	}
	if len(p.Hosts) == 0 || len(p.Leafs) == 0 {
		return nil, fmt.Errorf("lab %s: no hosts (label evpnd.vni) or no leafs (label evpnd.role: leaf)", t.Name)
	}
	return p, nil
}

// Leaf returns the named leaf, or nil.
func (p *Plan) Leaf(name string) *Leaf {
	for i := range p.Leafs {
		if p.Leafs[i].Name == name {
			return &p.Leafs[i]
		}
	}
	return nil
}

// Host returns the named host, or nil.
func (p *Plan) Host(name string) *Host {
	for i := range p.Hosts {
		if p.Hosts[i].Name == name {
			return &p.Hosts[i]
		}
	}
	return nil
}

// Pairs returns the ordered host pairs that must reach each other (same
// VNI) and the unordered pairs that must not at layer 2 (different VNIs).
func (p *Plan) Pairs() (reach, isolated [][2]Host) {
	for i, a := range p.Hosts {
		for j, b := range p.Hosts {
			switch {
			case i == j:
			case a.VNI == b.VNI:
				reach = append(reach, [2]Host{a, b})
			case i < j:
				isolated = append(isolated, [2]Host{a, b})
			}
		}
	}
	return reach, isolated
}

// Routed returns the unordered pairs of hosts in different VNIs that must
// reach each other routed: each has a route via its gateway to the other.
func (p *Plan) Routed() [][2]Host {
	var routed [][2]Host
	for i, a := range p.Hosts {
		for _, b := range p.Hosts[i+1:] {
			if a.VNI != b.VNI && a.RoutesTo(b.Addr()) && b.RoutesTo(a.Addr()) {
				routed = append(routed, [2]Host{a, b})
			}
		}
	}
	return routed
}

// Routed6 reports whether a pair of Routed must also reach each other over
// IPv6: both have an IPv6 address and a route to the other's.
func Routed6(a, b Host) bool {
	return a.Prefix6.IsValid() && b.Prefix6.IsValid() && a.RoutesTo(b.Prefix6.Addr()) && b.RoutesTo(a.Prefix6.Addr())
}
