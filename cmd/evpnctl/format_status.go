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
	tw.Flush()
	return b.Flush()
}
