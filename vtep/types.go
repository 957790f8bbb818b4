package vtep

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// DefaultUDPPort is the IANA VXLAN port (RFC 7348), used when L2VNI.UDPPort
// is zero.
const DefaultUDPPort = 4789

// maxVNI is the largest 24-bit VXLAN network identifier.
const maxVNI = 1<<24 - 1

// OwnerAlias is the interface alias (IFLA_IFALIAS) evpnd sets on the devices
// it creates. Remove deletes only devices carrying it, so devices an
// operator made and evpnd adopted are never deleted, even after a restart.
const OwnerAlias = "evpnd"

// L2VNI describes the Linux devices of one layer-2 VXLAN segment: a VXLAN
// device and the bridge it is a port of, plus the access interfaces
// bridged with it (DESIGN §4).
type L2VNI struct {
	VNI         uint32
	VXLAN       string     // VXLAN device name, e.g. vxlan100
	Bridge      string     // bridge name, e.g. br100
	AccessPorts []string   // interfaces Ensure enslaves to Bridge (learning covers every port of it)
	Local       netip.Addr // VTEP source address (VXLAN "local")
	UDPPort     int        // VXLAN destination port; 0 means DefaultUDPPort
	MTU         int        // MTU of the VXLAN device and bridge; 0 keeps the kernel default
	// DefaultVXLANMTU, when MTU is 0, is the MTU a VXLAN device that
	// Ensure creates gets (see VXLANMTU); 0 keeps the kernel's 1500. An
	// adopted device keeps its MTU, and the bridge follows its ports'.
	DefaultVXLANMTU int
	// NoNeighSuppress leaves neigh_suppress off on the VXLAN port: for an
	// L2VNI without an SVI (routed in no VRF). There no neighbour entries
	// answer ARP/ND, so suppression saves nothing, and it keeps gratuitous
	// ARPs and ARP probes (sender IP 0 or equal to the target) from
	// crossing the fabric (net/bridge/br_arp_nd_proxy.c), which hides a
	// moved host's announcement and a duplicate address from the other
	// leafs. A port found with it on is turned off, as learning is.
	NoNeighSuppress bool
}

// VXLAN encapsulation overhead (RFC 7348): outer IPv4 (20) or IPv6 (40)
// header, UDP (8), VXLAN (8) and the inner Ethernet header (14), which
// the device's MTU does not count.
const (
	VXLANOverheadIPv4 = 50
	VXLANOverheadIPv6 = 70
)

// VXLANMTU is the largest MTU of a VXLAN device with VTEP address local
// whose packets cross an underlay of MTU underlay without fragmentation:
// underlay minus 50 (IPv4) or 70 (IPv6). It returns 0 when that leaves
// less than the IPv4 minimum of 68.
func VXLANMTU(underlay int, local netip.Addr) int {
	o := VXLANOverheadIPv4
	if local.Is6() && !local.Is4In6() {
		o = VXLANOverheadIPv6
	}
	if underlay-o < 68 {
		return 0
	}
	return underlay - o
}

func (v L2VNI) port() int {
	if v.UDPPort == 0 {
		return DefaultUDPPort
	}
	return v.UDPPort
}

// Validate checks one VNI's fields on their own.
func (v L2VNI) Validate() error {
	var errs []error
	if v.VNI == 0 || v.VNI > maxVNI {
		errs = append(errs, fmt.Errorf("l2vni %d: VNI must be 1-%d", v.VNI, maxVNI))
	}
	for _, n := range append([]string{v.VXLAN, v.Bridge}, v.AccessPorts...) {
		if err := validIfName(n); err != nil {
			errs = append(errs, fmt.Errorf("l2vni %d: %w", v.VNI, err))
		}
	}
	if !v.Local.IsValid() || v.Local.IsUnspecified() || v.Local.IsMulticast() {
		errs = append(errs, fmt.Errorf("l2vni %d: local VTEP address %q must be a unicast IP address", v.VNI, v.Local))
	}
	if v.UDPPort < 0 || v.UDPPort > 65535 {
		errs = append(errs, fmt.Errorf("l2vni %d: UDP port %d out of range 1-65535", v.VNI, v.UDPPort))
	}
	if v.MTU < 0 || v.MTU > 65535 {
		errs = append(errs, fmt.Errorf("l2vni %d: MTU %d out of range (0 keeps the kernel default)", v.VNI, v.MTU))
	}
	if v.DefaultVXLANMTU < 0 || v.DefaultVXLANMTU > 65535 {
		errs = append(errs, fmt.Errorf("l2vni %d: default VXLAN MTU %d out of range", v.VNI, v.DefaultVXLANMTU))
	}
	return errors.Join(errs...)
}

// validIfName applies the kernel's dev_valid_name rules.
func validIfName(n string) error {
	switch {
	case n == "":
		return errors.New("empty interface name")
	case len(n) > 15:
		return fmt.Errorf("interface name %q is longer than 15 bytes", n)
	case n == "." || n == "..":
		return fmt.Errorf("interface name %q is reserved", n)
	case strings.ContainsAny(n, "/: \t\n"):
		return fmt.Errorf("interface name %q contains '/', ':' or whitespace", n)
	}
	return nil
}

// ValidateSet checks every VNI and that VNIs and device names are unique
// across the set: a device name may serve one role in one VNI only.
func ValidateSet(vnis []L2VNI) error {
	var errs []error
	seenVNI := map[uint32]bool{}
	owner := map[string]string{} // device name -> "role of l2vni N"
	claim := func(name, role string) {
		if prev, ok := owner[name]; ok {
			errs = append(errs, fmt.Errorf("device %s is configured as %s and as %s: give each its own device", name, prev, role))
			return
		}
		owner[name] = role
	}
	for _, v := range vnis {
		if err := v.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if seenVNI[v.VNI] {
			errs = append(errs, fmt.Errorf("l2vni %d is configured twice", v.VNI))
			continue
		}
		seenVNI[v.VNI] = true
		claim(v.VXLAN, fmt.Sprintf("the VXLAN device of l2vni %d", v.VNI))
		claim(v.Bridge, fmt.Sprintf("the bridge of l2vni %d", v.VNI))
		for _, p := range v.AccessPorts {
			claim(p, fmt.Sprintf("an access port of l2vni %d", v.VNI))
		}
	}
	return errors.Join(errs...)
}

// ConflictError reports a device that exists with parameters evpnd cannot
// adopt, or that is missing. It names the device, the parameter, the value
// evpnd expects and the value found, and what the operator can do.
type ConflictError struct {
	VNI      uint32
	Device   string
	Param    string // kind, vni, local, dstport, learning, group, external, master
	Expected string
	Found    string
	Fix      string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("l2vni %d: device %s: %s is %s, evpnd expects %s: %s",
		e.VNI, e.Device, e.Param, e.Found, e.Expected, e.Fix)
}

// MACEvent is a change of a locally learned MAC: learned (or moved) on an
// access port of the VNI's bridge, or, with Removed, no longer there.
type MACEvent struct {
	VNI     uint32
	MAC     evpn.MAC
	Port    string // access port; for Removed, the port it was on
	Static  bool   // configured (static or sticky) rather than learned; advertise as sticky
	Removed bool
}

// MACKey identifies a local MAC.
type MACKey struct {
	VNI uint32
	MAC evpn.MAC
}

// LocalMAC is where a local MAC lives.
type LocalMAC struct {
	Port   string
	Static bool
}
