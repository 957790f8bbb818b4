package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// peerStates are the FSM states as BGP operators spell them (RFC 4271
// section 8.2.2).
var peerStates = map[evpndv1.PeerState]string{
	evpndv1.PeerState_PEER_STATE_IDLE:         "Idle",
	evpndv1.PeerState_PEER_STATE_CONNECT:      "Connect",
	evpndv1.PeerState_PEER_STATE_ACTIVE:       "Active",
	evpndv1.PeerState_PEER_STATE_OPEN_SENT:    "OpenSent",
	evpndv1.PeerState_PEER_STATE_OPEN_CONFIRM: "OpenConfirm",
	evpndv1.PeerState_PEER_STATE_ESTABLISHED:  "Established",
}

func peerState(s evpndv1.PeerState) string {
	if n, ok := peerStates[s]; ok {
		return n
	}
	return enumWord(s.String(), "PEER_STATE_")
}

func roleName(r evpndv1.Role) string {
	switch r {
	case evpndv1.Role_ROLE_LEAF:
		return "leaf"
	case evpndv1.Role_ROLE_ROUTE_REFLECTOR:
		return "route reflector"
	}
	return enumWord(r.String(), "ROLE_")
}

// writeBGPSummary prints the local BGP identity and a row per neighbour
// (cf. vtysh's "show bgp l2vpn evpn summary"): FRR's columns but TblVer,
// InQ and OutQ, which GoBGP does not report, then evpnd's own. The path
// counts (State/PfxRcd, Accepted, PfxSnt) are those of the current
// session, so a peer that is not established shows its state and dashes;
// MsgRcvd and MsgSent add up over every session, as in FRR.
func writeBGPSummary(w io.Writer, st *evpndv1.GetStatusResponse, resp *evpndv1.ListPeersResponse, withSent bool) error {
	b := bufio.NewWriter(w)
	peers := resp.GetPeers()
	fmt.Fprintf(b, "BGP router identifier %s, local AS number %d, %s\n", dash(st.GetRouterId()), st.GetAsn(), roleName(st.GetRole()))
	synced := "End-of-RIB received from every established peer"
	if !st.GetBgpSynced() {
		synced = "waiting for End-of-RIB"
	}
	fmt.Fprintf(b, "Peers: %d established of %d configured; %s\n\n", st.GetPeersEstablished(), st.GetPeersConfigured(), synced)
	if len(peers) == 0 {
		io.WriteString(b, "No BGP neighbors.\n")
		return b.Flush()
	}
	var flagged bool
	tw := newTab(b)
	// PfxSnt only when counted (--sent): each count costs evpnd a pass
	// over its BGP table.
	cols := func(c ...string) []string {
		if !withSent {
			c = append(c[:8], c[9:]...)
		}
		return c
	}
	tabLine(tw, cols("Neighbor", "V", "AS", "MsgRcvd", "MsgSent", "Up/Down", "State/PfxRcd", "Accepted", "PfxSnt", "EoR", "Flags", "Desc", "Last error")...)
	for _, p := range peers {
		state := peerState(p.GetState())
		upDown, accepted, sent, eor := "-", "-", "-", "-"
		if p.GetState() == evpndv1.PeerState_PEER_STATE_ESTABLISHED {
			state = fmt.Sprint(p.GetReceived())
			upDown = fmtUpDown(p.GetUptime())
			accepted = fmt.Sprint(p.GetAccepted())
			sent = fmt.Sprint(p.GetAdvertised())
			eor = yesNo(p.GetEorReceived())
		}
		var flags []string
		if p.GetDynamic() {
			flags = append(flags, "dyn")
		}
		if p.GetRouteReflectorClient() {
			flags = append(flags, "rrc")
		}
		if p.GetGracefulRestart() {
			flags = append(flags, "gr")
		}
		if p.GetPeerRestarting() {
			flags = append(flags, "restarting")
		}
		flagged = flagged || len(flags) > 0
		tabLine(tw, cols(p.GetAddress(), "4", u32(p.GetAsn()), fmt.Sprint(p.GetMessagesReceived()), fmt.Sprint(p.GetMessagesSent()),
			upDown, state, accepted, sent, eor,
			dash(strings.Join(flags, ",")), dash(p.GetDescription()), dash(p.GetLastError()))...)
	}
	tw.Flush()
	fmt.Fprintf(b, "\nTotal number of neighbors %d\n", len(peers))
	if flagged {
		io.WriteString(b, "Flags: dyn dynamic neighbor, rrc route-reflector client, gr graceful restart,\n")
		io.WriteString(b, "       restarting the peer is restarting (its routes are kept, marked stale)\n")
	}
	return b.Flush()
}

// writeStatus prints the daemon's identity and health.
func writeStatus(w io.Writer, st *evpndv1.GetStatusResponse, loc *time.Location) error {
	b := bufio.NewWriter(w)
	tw := newTab(b)
	line := func(k, v string) { tabLine(tw, k+":", v) }
	started := fmtTime(st.GetStarted(), loc, time.RFC3339)
	line("evpnd", fmt.Sprintf("%s, up %s (started %s)", dash(st.GetVersion()), fmtUptime(st.GetUptime()), started))
	line("Role", roleName(st.GetRole()))
	line("Router ID", dash(st.GetRouterId()))
	line("Local AS", u32(st.GetAsn()))
	if st.GetRole() != evpndv1.Role_ROLE_ROUTE_REFLECTOR {
		line("VTEP", dash(st.GetVtepIp()))
		line("L2VNIs", u32(st.GetL2VniCount()))
		line("VRFs", u32(st.GetVrfCount()))
		// Under the count, in the value column: a VRF's name does not
		// move the other lines' values.
		for _, v := range st.GetVrfs() {
			for i, l := range vrfStatus(v) {
				if i == 0 {
					tabLine(tw, "", "VRF "+v.GetName()+": "+l)
				} else {
					tabLine(tw, "", "  "+l)
				}
			}
		}
	}
	line("BGP peers", fmt.Sprintf("%d established of %d configured", st.GetPeersEstablished(), st.GetPeersConfigured()))
	if st.GetBgpSynced() {
		line("BGP synced", "yes (End-of-RIB from every established peer)")
	} else {
		line("BGP synced", "no (waiting for End-of-RIB)")
	}
	if st.GetRole() != evpndv1.Role_ROLE_ROUTE_REFLECTOR {
		if st.GetKernelInSync() {
			line("Kernel in sync", "yes")
		} else {
			line("Kernel in sync", "no (see \"evpnctl check\")")
		}
		line("Kernel writes", fmt.Sprintf("%d waiting for a retry, %d errors since start", st.GetFibPending(), st.GetFibErrors()))
	}
	if st.GetRestarted() {
		line("Restarted", "yes (took over the kernel state of an earlier run)")
	} else {
		line("Restarted", "no")
	}
	if f := st.GetConfigFile(); f != "" {
		line("Config file", f)
	}
	// What a reload or a restart would change: the operator's changes
	// through the API that the file lacks, and file keys not in force.
	if v := st.GetVnisNotInFile(); len(v) > 0 && st.GetRole() != evpndv1.Role_ROLE_ROUTE_REFLECTOR {
		line("Not in the file", "L2VNI "+vniList(v)+" (added or changed at run time: a reload or restart undoes it)")
	}
	if v := st.GetFileVnisNotRunning(); len(v) > 0 && st.GetRole() != evpndv1.Role_ROLE_ROUTE_REFLECTOR {
		line("Not running", "L2VNI "+vniList(v)+" (in the file: a reload or restart starts it)")
	}
	for i, r := range st.GetRestartNeeded() {
		k := ""
		if i == 0 {
			k = "Restart needed:"
		}
		tabLine(tw, k, r+" (in the file, not in force)")
	}
	tw.Flush()
	return b.Flush()
}

// vrfStatus is one VRF's status lines: its L3VNI, backend and devices;
// what evpnd holds for it (the words of "show evpn arp-cache", "show ip
// route vrf" and "show evpn rmac"); on a border leaf, its uplinks and
// static routes.
func vrfStatus(v *evpndv1.VRFStatus) []string {
	devices := "devices in the kernel"
	if !v.GetDevicesPresent() {
		devices = "devices MISSING"
	}
	out := []string{
		fmt.Sprintf("L3VNI %d, backend %s, %s", v.GetL3Vni(), dash(v.GetBackend()), devices),
		fmt.Sprintf("%d local and %d remote hosts, %s, %s, %s", v.GetLocalHosts(), v.GetRemoteHosts(),
			plural(int(v.GetHostRoutes()), "host route", "host routes"),
			plural(int(v.GetPrefixRoutes()), "prefix route", "prefix routes"),
			plural(int(v.GetRemoteVteps()), "remote VTEP", "remote VTEPs")),
	}
	var border []string
	if u := v.GetUplinks(); len(u) > 0 {
		border = append(border, "uplinks "+strings.Join(u, ", "))
	}
	if n := v.GetStaticRoutes(); n > 0 {
		border = append(border, plural(int(n), "static route", "static routes"))
	}
	if len(border) > 0 {
		out = append(out, strings.Join(border, "; "))
	}
	if len(v.GetKernel()) > 0 {
		out = append(out, vrfKernelLine(v))
	}
	return out
}

// vrfKernelNames are the VRF kernel kinds as the status line names them.
var vrfKernelNames = map[string]string{"rmac": "router MACs", "neigh": "neighbours", "route": "routes"}

// vrfKernelLine sums up a VRF's kernel L3 state: in sync or not, then per
// kind the entries installed of those wanted, then what failed.
func vrfKernelLine(v *evpndv1.VRFStatus) string {
	var b strings.Builder
	if v.GetKernelInSync() {
		b.WriteString("kernel in sync")
	} else {
		b.WriteString("kernel NOT in sync")
	}
	var pending uint32
	var errs, repairs uint64
	var retrying []string
	for i, k := range v.GetKernel() {
		sep := ": "
		if i > 0 {
			sep = ", "
		}
		name := k.GetKind()
		if n, ok := vrfKernelNames[name]; ok {
			name = n
		}
		fmt.Fprintf(&b, "%s%s %d/%d", sep, name, k.GetInstalled(), k.GetWanted())
		pending += k.GetPending()
		errs += k.GetErrors()
		repairs += k.GetRepairs()
		if k.GetPending() > 0 {
			retrying = append(retrying, fmt.Sprintf("%s %d", name, k.GetPending()))
		}
	}
	fmt.Fprintf(&b, " installed; %d waiting for a retry", pending)
	if len(retrying) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(retrying, ", "))
	}
	fmt.Fprintf(&b, ", %d errors and %d repairs since start", errs, repairs)
	return b.String()
}

// writeReload prints what a reload did.
func writeReload(w io.Writer, r *evpndv1.ReloadResponse) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "Reloaded %s.\n", dash(r.GetConfigFile()))
	list := func(title string, items []string) {
		if len(items) == 0 {
			return
		}
		fmt.Fprintf(b, "%s:\n", title)
		for _, it := range items {
			fmt.Fprintf(b, "  %s\n", it)
		}
	}
	if len(r.GetApplied()) == 0 && len(r.GetFailed()) == 0 {
		io.WriteString(b, "Nothing to apply: what runs matches the file.\n")
	}
	list(fmt.Sprintf("Applied (%d)", len(r.GetApplied())), r.GetApplied())
	list(fmt.Sprintf("Failed (%d), the rest was applied", len(r.GetFailed())), r.GetFailed())
	list(fmt.Sprintf("Needs a restart (%d), not applied", len(r.GetRestartNeeded())), r.GetRestartNeeded())
	return b.Flush()
}

// vniList prints VNIs as "100, 200 and 300", at most 20 and a count.
func vniList(v []uint32) string {
	const most = 20
	var s []string
	for i, x := range v {
		if i == most {
			s = append(s, fmt.Sprintf("%d more", len(v)-most))
			break
		}
		s = append(s, u32(x))
	}
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
