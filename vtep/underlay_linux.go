package vtep

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Underlay is the interface a VXLAN device's packets leave by, as
// UnderlayMTU found it.
type Underlay struct {
	Dev string
	MTU int    // the smaller of the interface's MTU and its route's mtu metric, if any
	Via string // "address" (the VTEP address is on Dev) or "route to X"
}

// UnderlayMTU finds the underlay interface of the VTEP address local, in
// the namespace of h, and its MTU:
//
//  1. When local is assigned to an interface other than a loopback, that
//     interface carries the tunnel: the VTEP sits on the uplink itself.
//     (The kernel makes the same choice for a VXLAN device given a
//     "dev": its lower device's MTU less the overhead.)
//  2. When local is on a loopback (the usual routed-fabric design, the
//     VTEP a /32 on lo), the uplinks are the interfaces that route from
//     local towards the fabric: for each address of towards (the BGP
//     neighbours, route reflectors or spines, which sit across the
//     underlay) the kernel's route lookup (ip route get X from local)
//     gives one; the smallest MTU wins, with a route's mtu metric taking
//     precedence over its interface's when lower.
//
// It returns an error when local is on no interface, or neither rule
// finds an interface (no neighbour, or no route to any): the caller then
// keeps the kernel's default and says so.
func UnderlayMTU(h *netlink.Handle, local netip.Addr, towards []netip.Addr) (Underlay, error) {
	family := netlink.FAMILY_V4
	if local.Is6() && !local.Is4In6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(nil, family) })
	if err != nil {
		return Underlay{}, fmt.Errorf("list addresses: %w", err)
	}
	onIndex := 0
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == local.Unmap() {
			onIndex = a.LinkIndex
			break
		}
	}
	if onIndex == 0 {
		return Underlay{}, fmt.Errorf("VTEP address %s is on no interface", local)
	}
	l, err := h.LinkByIndex(onIndex)
	if err != nil {
		return Underlay{}, fmt.Errorf("interface of VTEP address %s: %w", local, err)
	}
	if l.Attrs().Flags&net.FlagLoopback == 0 {
		return Underlay{Dev: l.Attrs().Name, MTU: l.Attrs().MTU, Via: "address"}, nil
	}
	var best Underlay
	var errs []error
	for _, dst := range towards {
		if dst.Is4() != local.Unmap().Is4() {
			continue
		}
		routes, err := h.RouteGetWithOptions(net.IP(dst.AsSlice()), &netlink.RouteGetOptions{SrcAddr: net.IP(local.AsSlice())})
		if err != nil {
			errs = append(errs, fmt.Errorf("route to %s: %w", dst, err))
			continue
		}
		for _, r := range routes {
			if r.LinkIndex == 0 || r.Type == unix.RTN_LOCAL {
				continue
			}
			out, err := h.LinkByIndex(r.LinkIndex)
			if err != nil || out.Attrs().Flags&net.FlagLoopback != 0 {
				continue
			}
			mtu := out.Attrs().MTU
			if r.MTU > 0 && r.MTU < mtu {
				mtu = r.MTU
			}
			if best.MTU == 0 || mtu < best.MTU {
				best = Underlay{Dev: out.Attrs().Name, MTU: mtu, Via: "route to " + dst.String()}
			}
		}
	}
	if best.MTU == 0 {
		errs = append(errs, fmt.Errorf("VTEP address %s is on a loopback and no route towards the neighbours leaves by another interface", local))
		return Underlay{}, errors.Join(errs...)
	}
	return best, nil
}
