package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// The layer-3 views (issue 10), in vtysh's words: "show evpn arp-cache",
// "show evpn rmac", "show evpn next-hops", "show ip route vrf" and an
// L3VNI's "show evpn vni L".

// Column widths of the streamed L3 tables: an IPv4 address is at most 15
// characters, an IPv4 prefix 18; longer IPv6 values push their row right.
const (
	arpColVNI   = 8
	arpColIP    = 15
	arpColType  = 6
	arpColState = 8
	arpColMAC   = 17
	arpColVTEP  = 15
	arpColSeq   = 7

	routeColCode   = 1
	routeColPrefix = 18
)

// arpTable prints the ARP/ND cache as its pages arrive (cf. vtysh's "show
// evpn arp-cache vni all"): the hosts learned on this leaf's SVIs (local)
// and those of other leafs' MAC+IP routes (remote), with FRR's columns.
// "Seq #'s" is FRR's local/remote pair of MAC mobility sequence numbers:
// the one a local host is advertised with, or the one of the remote
// route.
type arpTable struct {
	w                             *bufio.Writer
	r                             row
	rows, local, remote, inactive int
}

func newARPTable(w io.Writer) *arpTable { return &arpTable{w: bufio.NewWriterSize(w, 64<<10)} }

func (t *arpTable) page(es []*evpndv1.ARPEntry) error {
	for _, e := range es {
		if t.rows == 0 {
			t.r.col("VNI", arpColVNI)
			t.r.col("Neighbor", arpColIP)
			t.r.col("Type", arpColType)
			t.r.col("State", arpColState)
			t.r.col("MAC", arpColMAC)
			t.r.col("Remote VTEP", arpColVTEP)
			t.r.col("Seq #'s", arpColSeq)
			t.r.str("VRF")
			if err := t.r.writeTo(t.w); err != nil {
				return err
			}
		}
		t.rows++
		r := &t.r
		r.col(u32(e.GetVni()), arpColVNI)
		r.col(e.GetIp(), arpColIP)
		seq := "0/" + u32(e.GetSeq())
		if e.GetLocal() {
			t.local++
			r.col("local", arpColType)
			seq = u32(e.GetSeq()) + "/0"
		} else {
			t.remote++
			r.col("remote", arpColType)
		}
		if e.GetState() == evpndv1.ARPState_ARP_STATE_INACTIVE {
			t.inactive++
		}
		r.col(arpState(e.GetState()), arpColState)
		r.col(e.GetMac(), arpColMAC)
		r.col(dash(e.GetVtep()), arpColVTEP)
		r.col(seq, arpColSeq)
		r.str(dash(e.GetVrf()))
		if err := r.writeTo(t.w); err != nil {
			return err
		}
	}
	return t.w.Flush()
}

// arpState is the State column: active or inactive ("-" from an evpnd
// that does not say).
func arpState(s evpndv1.ARPState) string {
	if s == evpndv1.ARPState_ARP_STATE_UNSPECIFIED {
		return "-"
	}
	return enumWord(s.String(), "ARP_STATE_")
}

func (t *arpTable) finish() error {
	switch {
	case t.rows == 0:
		io.WriteString(t.w, "No ARP/ND entries.\n")
	case t.inactive > 0:
		fmt.Fprintf(t.w, "\nDisplayed %s: %d local (%d inactive), %d remote\n", plural(t.rows, "neighbor", "neighbors"), t.local, t.inactive, t.remote)
		io.WriteString(t.w, "inactive: a local host whose MAC is at another leaf for now: not advertised, kept until its ARP/ND entry is gone\n")
	default:
		fmt.Fprintf(t.w, "\nDisplayed %s: %d local, %d remote\n", plural(t.rows, "neighbor", "neighbors"), t.local, t.remote)
	}
	return t.w.Flush()
}

// writeRMACs prints the router MACs of remote VTEPs (cf. vtysh's "show
// evpn rmac vni all").
func writeRMACs(w io.Writer, resp *evpndv1.ListRouterMACsResponse) error {
	return writeTotalled(w, resp.GetRouterMacs(), "No remote router MACs.", "router MAC", "router MACs",
		[]string{"L3VNI", "VRF", "RMAC", "Remote VTEP", "Routes"}, func(r *evpndv1.RouterMACEntry) []string {
			return []string{u32(r.GetL3Vni()), dash(r.GetVrf()), r.GetRouterMac(), r.GetVtep(), u32(r.GetRoutes())}
		})
}

// writeNextHops prints the VTEPs the routes of L3VNIs go through (cf.
// vtysh's "show evpn next-hops vni all").
func writeNextHops(w io.Writer, resp *evpndv1.ListL3NextHopsResponse) error {
	return writeTotalled(w, resp.GetNextHops(), "No next hops.", "next hop", "next hops",
		[]string{"L3VNI", "VRF", "IP", "RMAC", "Routes"}, func(h *evpndv1.L3NextHop) []string {
			return []string{u32(h.GetL3Vni()), dash(h.GetVrf()), h.GetVtep(), dash(h.GetRouterMac()), u32(h.GetRoutes())}
		})
}

// writeTotalled prints rows as a table under header, one line a row
// (cells from cells), then "Total N one|many"; with no rows, just none.
func writeTotalled[R any](w io.Writer, rows []R, none, one, many string, header []string, cells func(R) []string) error {
	if len(rows) == 0 {
		_, err := io.WriteString(w, none+"\n")
		return err
	}
	b := bufio.NewWriter(w)
	tw := newTab(b)
	tabLine(tw, header...)
	for _, r := range rows {
		tabLine(tw, cells(r)...)
	}
	tw.Flush()
	fmt.Fprintf(b, "\nTotal %s\n", plural(len(rows), one, many))
	return b.Flush()
}

// vrfRouteTable prints the routes evpnd installs in a VRF as they arrive
// (cf. vtysh's "show ip route vrf NAME"): a code, the prefix, then one
// line per ECMP next hop.
type vrfRouteTable struct {
	w                  *bufio.Writer
	r                  row
	vrf                string
	rows, hosts, prefs int
}

func newVRFRouteTable(w io.Writer, vrf string) *vrfRouteTable {
	return &vrfRouteTable{w: bufio.NewWriterSize(w, 64<<10), vrf: vrf}
}

func (t *vrfRouteTable) page(rs []*evpndv1.VRFRoute) error {
	for _, rt := range rs {
		if t.rows == 0 {
			fmt.Fprintf(t.w, "Codes: H - EVPN host route (type-2 MAC+IP), P - EVPN prefix route (type-5)\n\n")
			fmt.Fprintf(t.w, "VRF %s (L3VNI %d):\n", t.vrf, rt.GetL3Vni())
		}
		t.rows++
		code := "?"
		switch rt.GetKind() {
		case evpndv1.VRFRouteKind_VRF_ROUTE_KIND_HOST:
			code = "H"
			t.hosts++
		case evpndv1.VRFRouteKind_VRF_ROUTE_KIND_PREFIX:
			code = "P"
			t.prefs++
		}
		r := &t.r
		nhs := rt.GetNextHops()
		if len(nhs) == 0 {
			r.col(code, routeColCode)
			r.col(rt.GetPrefix(), routeColPrefix)
			r.str("(no next hop)")
			if err := r.writeTo(t.w); err != nil {
				return err
			}
			continue
		}
		for i, nh := range nhs {
			if i == 0 {
				r.col(code, routeColCode)
				r.col(rt.GetPrefix(), routeColPrefix)
			} else {
				r.col("", routeColCode)
				r.col("", routeColPrefix)
			}
			fmt.Fprintf(&strBuf{r}, "via %s, rmac %s, L3VNI %d", nh.GetVtep(), dash(nh.GetRouterMac()), rt.GetL3Vni())
			if len(nhs) > 1 && i == 0 {
				fmt.Fprintf(&strBuf{r}, " (ECMP, %d paths)", len(nhs))
			}
			if err := r.writeTo(t.w); err != nil {
				return err
			}
		}
	}
	return t.w.Flush()
}

func (t *vrfRouteTable) finish() error {
	if t.rows == 0 {
		fmt.Fprintf(t.w, "No EVPN routes in VRF %s.\n", t.vrf)
	} else {
		fmt.Fprintf(t.w, "\nDisplayed %s: %d host, %d prefix\n", plural(t.rows, "route", "routes"), t.hosts, t.prefs)
	}
	return t.w.Flush()
}

// strBuf lets fmt write into a row.
type strBuf struct{ r *row }

func (s *strBuf) Write(p []byte) (int, error) { s.r.b = append(s.r.b, p...); return len(p), nil }

// writeL3VNIDetail prints one L3VNI (cf. vtysh's "show evpn vni L" of an
// L3VNI).
func writeL3VNIDetail(w io.Writer, v *evpndv1.L3VNI) error {
	b := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("VNI: %d\n", v.GetL3Vni())
	p(" Type: L3\n")
	p(" Tenant VRF: %s\n", dash(v.GetVrf()))
	backend := dash(v.GetBackend())
	switch v.GetBackend() {
	case "vrf":
		backend += fmt.Sprintf(" (VRF device, table %d)", v.GetTable())
	case "netns":
		backend += fmt.Sprintf(" (namespace %s)", dash(v.GetNamespace()))
	}
	p(" Backend: %s\n", backend)
	p(" Local VTEP: %s\n", dash(v.GetLocalVtep()))
	p(" VXLAN interface: %s\n", dash(v.GetVxlanDevice()))
	p(" SVI interface: %s\n", dash(v.GetBridge()))
	if v.GetDevicesPresent() {
		p(" Devices in the kernel: yes\n")
	} else {
		p(" Devices in the kernel: NO (the VXLAN device or the SVI is missing)\n")
	}
	p(" Router MAC: %s\n", dash(v.GetRouterMac()))
	var l2 []string
	for _, n := range v.GetL2Vnis() {
		l2 = append(l2, u32(n))
	}
	p(" L2 VNIs: %s\n", joinOr(l2, " ", "none"))
	p(" RD: %s\n", dash(v.GetRd()))
	p(" Import RTs: %s\n", joinOr(v.GetImportRts(), " ", "none"))
	p(" Export RTs: %s\n", joinOr(v.GetExportRts(), " ", "none"))
	p(" Remote VTEPs (router MACs): %d\n", v.GetRemoteVteps())
	p(" Next hops: %d\n", v.GetNextHops())
	p(" Routes: %d host, %d prefix\n", v.GetHostRoutes(), v.GetPrefixRoutes())
	return b.Flush()
}

// arpWatch is an ARP cache row change as watch prints it, in the words of
// "show evpn arp-cache".
func arpWatch(kind string, e *evpndv1.ARPEntry) string {
	s := fmt.Sprintf(" neighbor %s vrf %s vni %d %s %s", kind, dash(e.GetVrf()), e.GetVni(), e.GetIp(), e.GetMac())
	if e.GetLocal() {
		s += fmt.Sprintf(" local seq %d", e.GetSeq())
	} else {
		s += fmt.Sprintf(" remote vtep %s seq %d", dash(e.GetVtep()), e.GetSeq())
	}
	if e.GetState() == evpndv1.ARPState_ARP_STATE_INACTIVE {
		s += " inactive"
	}
	return s
}

// vrfRouteWatch is a VRF route change as watch prints it.
func vrfRouteWatch(kind string, r *evpndv1.VRFRoute) string {
	what := "prefix"
	if r.GetKind() == evpndv1.VRFRouteKind_VRF_ROUTE_KIND_HOST {
		what = "host"
	}
	var via []string
	for _, nh := range r.GetNextHops() {
		via = append(via, nh.GetVtep())
	}
	s := fmt.Sprintf(" route %s vrf %s %s %s", kind, r.GetVrf(), r.GetPrefix(), what)
	if len(via) > 0 {
		s += " via " + strings.Join(via, ",")
	}
	return s
}
