package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// writeVNIList prints the L2VNIs and the VRFs' L3VNIs as one table, a row
// per VNI (cf. vtysh's "show evpn vni").
func writeVNIList(w io.Writer, resp *evpndv1.ListVNIsResponse, l3 []*evpndv1.L3VNI) error {
	if len(resp.GetVnis()) == 0 && len(l3) == 0 {
		_, err := io.WriteString(w, "No L2VNIs configured.\n")
		return err
	}
	devices := func(ok bool) string {
		if ok {
			return "present"
		}
		return "MISSING"
	}
	vrfOf := map[uint32]string{} // the VRF each routed L2VNI belongs to
	for _, v := range l3 {
		for _, m := range v.GetL2Vnis() {
			vrfOf[m] = v.GetVrf()
		}
	}
	tw := newTab(w)
	tabLine(tw, "VNI", "Type", "VXLAN IF", "Bridge", "RD", "Local MACs", "Remote MACs", "Dup MACs", "Remote VTEPs", "Devices", "Tenant VRF")
	for _, v := range resp.GetVnis() {
		tabLine(tw, u32(v.GetVni()), "L2", dash(v.GetVxlanDevice()), dash(v.GetBridge()), dash(v.GetRd()),
			u32(v.GetLocalMacs()), u32(v.GetRemoteMacs()), u32(v.GetDuplicateMacs()),
			fmt.Sprint(len(v.GetFloodVteps())), devices(v.GetDevicesPresent()), dash(vrfOf[v.GetVni()]))
	}
	for _, v := range l3 {
		tabLine(tw, u32(v.GetL3Vni()), "L3", dash(v.GetVxlanDevice()), dash(v.GetBridge()), dash(v.GetRd()),
			"-", "-", "-", u32(v.GetRemoteVteps()), devices(v.GetDevicesPresent()), dash(v.GetVrf()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	total := plural(len(resp.GetVnis()), "L2VNI", "L2VNIs")
	if len(l3) > 0 {
		total += ", " + plural(len(l3), "L3VNI", "L3VNIs")
	}
	_, err := fmt.Fprintf(w, "\nTotal %s\n", total)
	return err
}

// writeVNIDetails prints every VNI in detail, the L2VNIs then the VRFs'
// L3VNIs (as vtysh's "show evpn vni detail"), a blank line between two.
func writeVNIDetails(w io.Writer, vnis []*evpndv1.VNI, l3 []*evpndv1.L3VNI) error {
	if len(vnis) == 0 && len(l3) == 0 {
		_, err := io.WriteString(w, "No L2VNIs configured.\n")
		return err
	}
	sep := func(i int) error {
		if i == 0 {
			return nil
		}
		_, err := io.WriteString(w, "\n")
		return err
	}
	for i, v := range vnis {
		if err := sep(i); err != nil {
			return err
		}
		if err := writeVNIDetail(w, v); err != nil {
			return err
		}
	}
	for i, v := range l3 {
		if err := sep(len(vnis) + i); err != nil {
			return err
		}
		if err := writeL3VNIDetail(w, v); err != nil {
			return err
		}
	}
	return nil
}

// writeVNIDetail prints one L2VNI with everything the API knows of it
// (cf. vtysh's "show evpn vni detail").
func writeVNIDetail(w io.Writer, v *evpndv1.VNI) error {
	b := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("VNI: %d\n", v.GetVni())
	p(" Type: L2\n")
	p(" Local VTEP: %s\n", dash(v.GetLocalVtep()))
	p(" VXLAN interface: %s\n", dash(v.GetVxlanDevice()))
	if v.GetUdpPort() != 0 {
		p(" UDP port: %d\n", v.GetUdpPort())
	}
	if v.GetMtu() != 0 {
		p(" MTU: %d\n", v.GetMtu())
	}
	p(" Bridge: %s\n", dash(v.GetBridge()))
	p(" Access interfaces: %s\n", joinOr(v.GetAccessInterfaces(), ", ", "none"))
	if v.GetDevicesPresent() {
		p(" Devices in the kernel: yes\n")
	} else {
		p(" Devices in the kernel: NO (the VXLAN device or the bridge is missing; see \"evpnctl check vni %d\")\n", v.GetVni())
	}
	p(" RD: %s\n", dash(v.GetRd()))
	imp := joinOr(v.GetImportRts(), " ", "none")
	if v.GetImportRtsAuto() {
		imp = fmt.Sprintf("auto (any RT ASN:%d)", v.GetVni())
		if len(v.GetImportRts()) > 0 {
			imp = strings.Join(v.GetImportRts(), " ") + " " + imp
		}
	}
	p(" Import RTs: %s\n", imp)
	p(" Export RTs: %s\n", joinOr(v.GetExportRts(), " ", "none"))
	if len(v.GetFloodVteps()) == 0 {
		p(" Remote VTEPs for this VNI: none\n")
	} else {
		p(" Remote VTEPs for this VNI (flood list, head-end replication): %d\n", len(v.GetFloodVteps()))
		for _, t := range v.GetFloodVteps() {
			p("  %s\n", t)
		}
	}
	p(" MACs: %d local, %d remote, %d duplicate\n", v.GetLocalMacs(), v.GetRemoteMacs(), v.GetDuplicateMacs())
	return b.Flush()
}

func joinOr(s []string, sep, none string) string {
	if len(s) == 0 {
		return none
	}
	return strings.Join(s, sep)
}
