package evpn

import (
	"cmp"
	"net/netip"
	"slices"
)

// Binding is one IP of a routed L2VNI as an ARP cache lists it (FRR's
// "show evpn arp-cache vni V"): a local host, learned from ARP/ND on the
// SVI and advertised as a MAC+IP route, or the remote host whose route
// this leaf selected, installed as the ARP/ND suppression neighbour.
type Binding struct {
	L2VNI uint32
	IP    netip.Addr
	MAC   MAC
	Local bool
	// VTEP is the remote VTEP of a remote binding (zero for a local one).
	VTEP netip.Addr
	// Seq and Sticky are the MAC mobility sequence and stickiness: those
	// the local host is (or would be) advertised with, or those of the
	// selected remote route.
	Seq    uint32
	Sticky bool
	// Active is set for a local host that is advertised and for a remote
	// binding (it is installed). A local host that is not advertised (its
	// MAC is at another leaf for now) is inactive, FRR's "inactive".
	Active bool
}

// Bindings returns the bindings of the member L2VNIs of the VRF with
// l3vni (only of l2vni when it is not 0), sorted by L2VNI then IP. There
// is one per IP, as FRR keeps one neighbour per IP: the local host when
// it is advertised, else the remote host installed, else the local host,
// inactive. An unknown l3vni has none.
//
// It walks the local and remote hosts once, as SnapshotVRF does.
func (t *L3Table) Bindings(l3vni, l2vni uint32) []Binding {
	v, ok := t.vrfs[l3vni]
	if !ok {
		return nil
	}
	in := make(map[uint32]bool, len(v.Members))
	for _, m := range v.Members {
		in[m.L2VNI] = l2vni == 0 || m.L2VNI == l2vni
	}
	var out []Binding
	for k, l := range t.local {
		if !in[k.vni] {
			continue
		}
		if st := t.neighs[k]; !l.adv && st != nil && st.installed {
			continue // a remote route outbids it: listed below
		}
		b := Binding{L2VNI: k.vni, IP: k.ip, MAC: l.mac, Local: true, Seq: l.seq, Sticky: l.sticky, Active: l.adv}
		if l.adv {
			b.MAC, b.Seq, b.Sticky = l.advAs.mac, l.advAs.seq, l.advAs.sticky
		}
		out = append(out, b)
	}
	for k, st := range t.neighs {
		if !in[k.vni] || !st.installed {
			continue
		}
		if l, ok := t.local[k]; ok && l.adv {
			continue // the local host holds the IP
		}
		out = append(out, Binding{L2VNI: k.vni, IP: k.ip, MAC: st.inst.mac, VTEP: st.inst.vtep,
			Seq: st.inst.seq, Sticky: st.inst.sticky, Active: true})
	}
	slices.SortFunc(out, func(a, b Binding) int { return cmp.Or(cmp.Compare(a.L2VNI, b.L2VNI), a.IP.Compare(b.IP)) })
	return out
}

// Binding returns the binding of ip in l2vni as Bindings lists it, if
// there is one. It costs O(1): for a watch of the ARP cache, on each
// change.
func (t *L3Table) Binding(l2vni uint32, ip netip.Addr) (Binding, bool) {
	ip = ip.Unmap()
	k := hostKey{l2vni, ip}
	l, hasLocal := t.local[k]
	if hasLocal && l.adv {
		return Binding{L2VNI: l2vni, IP: ip, MAC: l.advAs.mac, Local: true, Seq: l.advAs.seq, Sticky: l.advAs.sticky, Active: true}, true
	}
	if st := t.neighs[k]; st != nil && st.installed {
		return Binding{L2VNI: l2vni, IP: ip, MAC: st.inst.mac, VTEP: st.inst.vtep, Seq: st.inst.seq, Sticky: st.inst.sticky, Active: true}, true
	}
	if hasLocal {
		return Binding{L2VNI: l2vni, IP: ip, MAC: l.mac, Local: true, Seq: l.seq, Sticky: l.sticky}, true
	}
	return Binding{}, false
}

// MemberOfRD returns the member L2VNI whose RD is rd (that of its MAC and
// MAC+IP routes), to place a withdrawn local MAC+IP route's key.
func (t *L3Table) MemberOfRD(rd RD) (uint32, bool) {
	for vni, m := range t.members {
		if m.m.RD == rd {
			return vni, true
		}
	}
	return 0, false
}
