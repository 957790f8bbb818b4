package api

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/evpnd/evpnd/configs"
	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// This file converts the Backend's types to their protobuf messages. Every
// conversion is a pure function: the handlers in server.go call them and
// nothing else touches protobuf types.

// addr is an address as text, or "" when it is not set (netip.Addr's
// String says "invalid IP", which a client should never see).
func addr(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func addrs(as []netip.Addr) []string {
	if len(as) == 0 {
		return nil
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = addr(a)
	}
	return out
}

func rts(rs []evpn.RT) []string {
	if len(rs) == 0 {
		return nil
	}
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

// timestamp is t as a Timestamp, or nil for the zero time.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func toRole(r configs.Role) evpndv1.Role {
	switch r {
	case configs.RoleLeaf:
		return evpndv1.Role_ROLE_LEAF
	case configs.RoleRouteReflector:
		return evpndv1.Role_ROLE_ROUTE_REFLECTOR
	}
	return evpndv1.Role_ROLE_UNSPECIFIED
}

func toStatus(st Status, now time.Time) *evpndv1.GetStatusResponse {
	out := &evpndv1.GetStatusResponse{
		Version:            st.Version,
		Started:            timestamp(st.Started),
		RouterId:           addr(st.RouterID),
		Asn:                st.ASN,
		Role:               toRole(st.Role),
		VtepIp:             addr(st.VTEP),
		KernelInSync:       st.KernelInSync,
		BgpSynced:          st.BGPSynced,
		FibPending:         count(st.FIBPending),
		FibErrors:          st.FIBErrors,
		L2VniCount:         count(st.L2VNIs),
		PeersEstablished:   count(st.PeersEstablished),
		PeersConfigured:    count(st.PeersConfigured),
		Restarted:          st.Restarted,
		VrfCount:           count(st.VRFs),
		ConfigFile:         st.ConfigFile,
		VnisNotInFile:      st.VNIsNotInFile,
		FileVnisNotRunning: st.FileVNIsNotRunning,
		RestartNeeded:      st.RestartNeeded,
	}
	if !st.Started.IsZero() {
		out.Uptime = durationpb.New(now.Sub(st.Started))
	}
	for _, v := range st.VRFStates {
		out.Vrfs = append(out.Vrfs, &evpndv1.VRFStatus{
			Name: v.Name, L3Vni: v.L3VNI, Backend: string(v.Backend), DevicesPresent: v.DevicesPresent,
			LocalHosts: count(v.LocalHosts), RemoteHosts: count(v.RemoteHosts),
			HostRoutes: count(v.HostRoutes), PrefixRoutes: count(v.PrefixRoutes), RemoteVteps: count(v.RemoteVTEPs),
			Uplinks: v.Uplinks, StaticRoutes: count(v.StaticRoutes), KernelInSync: v.KernelInSync,
		})
		pv := out.Vrfs[len(out.Vrfs)-1]
		for _, k := range v.Kernel {
			pv.Kernel = append(pv.Kernel, &evpndv1.VRFKernelKind{Kind: k.Kind, Installed: count(k.Installed), Wanted: count(k.Wanted),
				Pending: count(k.Pending), Errors: k.Errors, Repairs: k.Repairs})
		}
	}
	return out
}

// count converts a non-negative int to a proto uint32, clamping instead of
// wrapping.
func count(n int) uint32 {
	switch {
	case n < 0:
		return 0
	case uint64(n) > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(n)
}

func toVNI(v VNI) *evpndv1.VNI {
	return &evpndv1.VNI{
		Vni:              v.VNI,
		VxlanDevice:      v.VXLAN,
		Bridge:           v.Bridge,
		AccessInterfaces: v.AccessPorts,
		Rd:               v.RD.String(),
		ImportRts:        rts(v.ImportRTs),
		ImportRtsAuto:    v.ImportAuto,
		ExportRts:        rts(v.ExportRTs),
		LocalMacs:        count(v.LocalMACs),
		RemoteMacs:       count(v.RemoteMACs),
		FloodVteps:       addrs(v.Flood),
		UdpPort:          count(v.UDPPort),
		Mtu:              count(v.MTU),
		DuplicateMacs:    count(v.DuplicateMACs),
		DevicesPresent:   v.DevicesPresent,
		LocalVtep:        addr(v.LocalVTEP),
	}
}

// fromSpec is the config file's l2vnis[] entry that spec spells. It only
// copies: configs.Validate (run by Backend.AddVNI) judges every value.
func fromSpec(spec *evpndv1.L2VNISpec) configs.L2VNI {
	return configs.L2VNI{
		VNI:              spec.GetVni(),
		VXLANDevice:      spec.GetVxlanDevice(),
		Bridge:           spec.GetBridge(),
		AccessInterfaces: spec.GetAccessInterfaces(),
		RD:               spec.GetRd(),
		ImportRTs:        spec.GetImportRts(),
		ExportRTs:        spec.GetExportRts(),
		UDPPort:          int(spec.GetUdpPort()),
		MTU:              int(spec.GetMtu()),
	}
}

func toMACSource(local bool) evpndv1.MACSource {
	if local {
		return evpndv1.MACSource_MAC_SOURCE_LOCAL
	}
	return evpndv1.MACSource_MAC_SOURCE_REMOTE
}

func toMAC(m MAC) *evpndv1.MAC {
	return &evpndv1.MAC{
		Vni:        m.VNI,
		Mac:        m.MAC.String(),
		Source:     toMACSource(m.Local),
		Vtep:       addr(m.VTEP),
		Seq:        m.Seq,
		Sticky:     m.Sticky,
		Duplicate:  m.Duplicate,
		InKernel:   m.InKernel,
		OtherVteps: addrs(m.Others),
		Port:       m.Port,
	}
}

func toPeerState(s PeerState) evpndv1.PeerState {
	switch s {
	case PeerIdle:
		return evpndv1.PeerState_PEER_STATE_IDLE
	case PeerConnect:
		return evpndv1.PeerState_PEER_STATE_CONNECT
	case PeerActive:
		return evpndv1.PeerState_PEER_STATE_ACTIVE
	case PeerOpenSent:
		return evpndv1.PeerState_PEER_STATE_OPEN_SENT
	case PeerOpenConfirm:
		return evpndv1.PeerState_PEER_STATE_OPEN_CONFIRM
	case PeerEstablished:
		return evpndv1.PeerState_PEER_STATE_ESTABLISHED
	}
	return evpndv1.PeerState_PEER_STATE_UNSPECIFIED
}

func toPeer(p Peer) *evpndv1.Peer {
	return &evpndv1.Peer{
		Address:              addr(p.Address),
		Asn:                  p.ASN,
		Description:          p.Description,
		RouterId:             addr(p.RouterID),
		State:                toPeerState(p.State),
		Uptime:               durationpb.New(p.Uptime),
		Received:             p.Received,
		Accepted:             p.Accepted,
		Advertised:           p.Advertised,
		MessagesReceived:     p.MessagesReceived,
		MessagesSent:         p.MessagesSent,
		EorReceived:          p.EORReceived,
		GracefulRestart:      p.GracefulRestart,
		PeerRestarting:       p.PeerRestarting,
		LastError:            p.LastError,
		Dynamic:              p.Dynamic,
		RouteReflectorClient: p.RRClient,
	}
}

// routePrefix is the NLRI of r in FRR's bracket notation, as "show bgp
// l2vpn evpn" prints it:
//
//	[2]:[EthTag]:[48]:[MAC]  or  [2]:[EthTag]:[48]:[MAC]:[IPlen]:[IP]
//	[3]:[EthTag]:[IPlen]:[OrigIP]
//	[5]:[EthTag]:[IPlen]:[IP]
//
// Other route types, which evpnd does not decode, are "[N]".
func routePrefix(k evpn.Key) string {
	switch k.Type {
	case evpn.RouteTypeMACIP:
		s := fmt.Sprintf("[2]:[%d]:[48]:[%s]", k.EthTag, k.MAC)
		if k.IP.IsValid() {
			s += fmt.Sprintf(":[%d]:[%s]", k.IP.BitLen(), k.IP)
		}
		return s
	case evpn.RouteTypeIMET:
		return fmt.Sprintf("[3]:[%d]:[%d]:[%s]", k.EthTag, k.IP.BitLen(), addr(k.IP))
	case evpn.RouteTypeIPPrefix:
		p := ""
		if k.Prefix.IsValid() {
			p = k.Prefix.Addr().String()
		}
		return fmt.Sprintf("[5]:[%d]:[%d]:[%s]", k.EthTag, k.Prefix.Bits(), p)
	}
	return fmt.Sprintf("[%d]", k.Type)
}

// pmsiTunnelTypes names the PMSI tunnel types of RFC 6514 §5 (IANA "P-Multicast
// Service Interface Tunnel (PMSI Tunnel) Tunnel Types").
var pmsiTunnelTypes = map[uint8]string{
	0: "no-tunnel-info",
	1: "rsvp-te-p2mp",
	2: "mldp-p2mp",
	3: "pim-ssm",
	4: "pim-sm",
	5: "bidir-pim",
	6: "ingress-replication",
	7: "mldp-mp2mp",
}

func pmsiTunnelType(t uint8) string {
	if s, ok := pmsiTunnelTypes[t]; ok {
		return s
	}
	return fmt.Sprintf("type-%d", t)
}

func toRoute(p RoutePath) *evpndv1.Route {
	out := &evpndv1.Route{
		ExtendedCommunities: p.ExtCommunities,
		AsPath:              p.ASPath,
		LocalPref:           p.LocalPref,
		Origin:              p.Origin,
		Local:               p.Local,
		Best:                p.Best,
		Selected:            p.Selected,
		Vni:                 p.VNI,
		Age:                 durationpb.New(p.Age),
		Stale:               p.Stale,
		ClusterList:         addrs(p.ClusterList),
	}
	if !p.Local {
		out.Peer = addr(p.Peer)
	}
	r := p.Route
	if r == nil {
		return out
	}
	out.RouteType = uint32(r.Type)
	out.Rd = r.RD.String()
	out.Prefix = routePrefix(r.Key)
	out.EthernetTag = r.EthTag
	out.Labels = r.Labels
	out.NextHop = addr(r.NextHop)
	out.RouteTargets = rts(r.RTs)
	out.MacMobilitySeq = r.Seq
	out.Sticky = r.Sticky
	out.OriginatorId = addr(r.Originator)
	switch r.Type {
	case evpn.RouteTypeMACIP:
		out.Mac = r.MAC.String()
		out.Ip = addr(r.IP)
		out.Esi = toESI(r.ESI)
	case evpn.RouteTypeIMET:
		out.Originator = addr(r.IP)
	case evpn.RouteTypeIPPrefix:
		if r.Prefix.IsValid() {
			out.IpPrefix = r.Prefix.String()
		}
		out.GatewayIp = addr(r.GatewayIP)
		out.Esi = toESI(r.ESI)
	}
	if r.PMSI != nil {
		out.PmsiTunnelType = pmsiTunnelType(r.PMSI.Type)
		out.PmsiLabel = r.PMSI.Label
		out.PmsiEndpoint = addr(r.PMSI.Endpoint)
	}
	return out
}

// toESI splits an ESI into its type octet and the nine value octets in hex
// (RFC 7432 §5).
func toESI(e evpn.ESI) *evpndv1.EthernetSegment {
	return &evpndv1.EthernetSegment{Type: uint32(e[0]), Value: hex.EncodeToString(e[1:])}
}

func toChangeKind(k ChangeKind) evpndv1.ChangeKind {
	switch k {
	case ChangeAdded:
		return evpndv1.ChangeKind_CHANGE_KIND_ADDED
	case ChangeMoved:
		return evpndv1.ChangeKind_CHANGE_KIND_MOVED
	case ChangeRemoved:
		return evpndv1.ChangeKind_CHANGE_KIND_REMOVED
	case ChangeUp:
		return evpndv1.ChangeKind_CHANGE_KIND_UP
	case ChangeDown:
		return evpndv1.ChangeKind_CHANGE_KIND_DOWN
	case ChangeSynced:
		return evpndv1.ChangeKind_CHANGE_KIND_SYNCED
	case ChangeDuplicate:
		return evpndv1.ChangeKind_CHANGE_KIND_DUPLICATE
	}
	return evpndv1.ChangeKind_CHANGE_KIND_UNSPECIFIED
}

// vtepLocal is how the API spells this leaf's own VTEP where a location
// can be local or remote (MACChange.previous, TraceEvent.vtep).
const vtepLocal = "local"

func toChange(c Change) *evpndv1.WatchResponse {
	out := &evpndv1.WatchResponse{
		Time:    timestamp(c.Time),
		Kind:    toChangeKind(c.Kind),
		Initial: c.Initial,
	}
	switch {
	case c.MAC != nil:
		mc := &evpndv1.MACChange{Mac: toMAC(c.MAC.MAC)}
		switch {
		case c.MAC.PreviousLocal:
			mc.Previous = vtepLocal
		case c.MAC.PreviousVTEP.IsValid():
			mc.Previous = c.MAC.PreviousVTEP.String()
		case c.Kind == ChangeMoved:
			// Backend.MACChange: an invalid previous VTEP is local.
			mc.Previous = vtepLocal
		}
		out.Change = &evpndv1.WatchResponse_Mac{Mac: mc}
	case c.VTEP != nil:
		out.Change = &evpndv1.WatchResponse_Vtep{Vtep: &evpndv1.VTEPChange{
			Vni:  c.VTEP.VNI,
			Vtep: addr(c.VTEP.VTEP),
		}}
	case c.Peer != nil:
		out.Change = &evpndv1.WatchResponse_Peer{Peer: &evpndv1.PeerChange{
			Address: addr(c.Peer.Address),
			State:   toPeerState(c.Peer.State),
		}}
	case c.VRFRoute != nil:
		out.Change = &evpndv1.WatchResponse_VrfRoute{VrfRoute: &evpndv1.VRFRouteChange{Route: toVRFRoute(c.VRFRoute.Route)}}
	case c.ARP != nil:
		out.Change = &evpndv1.WatchResponse_Arp{Arp: &evpndv1.ARPChange{Entry: toARPEntry(c.ARP.Entry)}}
	}
	return out
}

func toDriftKind(k DriftKind) evpndv1.DriftKind {
	switch k {
	case DriftMissing:
		return evpndv1.DriftKind_DRIFT_KIND_MISSING
	case DriftExtra:
		return evpndv1.DriftKind_DRIFT_KIND_EXTRA
	case DriftWrong:
		return evpndv1.DriftKind_DRIFT_KIND_WRONG
	}
	return evpndv1.DriftKind_DRIFT_KIND_UNSPECIFIED
}

func toCheck(r CheckReport) *evpndv1.CheckResponse {
	out := &evpndv1.CheckResponse{
		CheckedMacs:   count(r.CheckedMACs),
		CheckedFloods: count(r.CheckedFloods),
		Time:          timestamp(r.Time),
		InFlight:      count(r.InFlight),
		CheckedL3:     count(r.CheckedL3),
	}
	for _, d := range r.Drifts {
		pd := &evpndv1.Drift{
			Kind:       toDriftKind(d.Kind),
			Vni:        d.VNI,
			Table:      d.Table,
			WantVtep:   addr(d.WantVTEP),
			KernelVtep: addr(d.KernelVTEP),
			Device:     d.Device,
			Detail:     d.Detail,
			Vrf:        d.VRF,
			Entry:      d.Entry,
		}
		// Flood and device drifts concern no MAC.
		if !d.MAC.IsZero() {
			pd.Mac = d.MAC.String()
		}
		out.Drifts = append(out.Drifts, pd)
	}
	return out
}

var traceKinds = map[TraceKind]evpndv1.TraceKind{
	TraceLocalLearned:   evpndv1.TraceKind_TRACE_KIND_LOCAL_LEARNED,
	TraceLocalRemoved:   evpndv1.TraceKind_TRACE_KIND_LOCAL_REMOVED,
	TraceAdvertised:     evpndv1.TraceKind_TRACE_KIND_ADVERTISED,
	TraceWithdrawn:      evpndv1.TraceKind_TRACE_KIND_WITHDRAWN,
	TraceRouteReceived:  evpndv1.TraceKind_TRACE_KIND_ROUTE_RECEIVED,
	TraceRouteWithdrawn: evpndv1.TraceKind_TRACE_KIND_ROUTE_WITHDRAWN,
	TraceSelected:       evpndv1.TraceKind_TRACE_KIND_SELECTED,
	TraceRejected:       evpndv1.TraceKind_TRACE_KIND_REJECTED,
	TraceKernelWritten:  evpndv1.TraceKind_TRACE_KIND_KERNEL_WRITTEN,
	TraceKernelRemoved:  evpndv1.TraceKind_TRACE_KIND_KERNEL_REMOVED,
	TraceKernelError:    evpndv1.TraceKind_TRACE_KIND_KERNEL_ERROR,
	TraceDuplicate:      evpndv1.TraceKind_TRACE_KIND_DUPLICATE,
}

func toTraceKey(k TraceKey) *evpndv1.TraceKey {
	out := &evpndv1.TraceKey{
		Vni:       k.VNI,
		Mac:       k.MAC.String(),
		Truncated: k.Truncated,
		Events:    make([]*evpndv1.TraceEvent, 0, len(k.Events)),
	}
	for _, e := range k.Events {
		pe := &evpndv1.TraceEvent{
			Time:   timestamp(e.Time),
			Kind:   traceKinds[e.Kind], // UNSPECIFIED for an unknown kind
			Peer:   addr(e.Peer),
			Vtep:   addr(e.VTEP),
			Seq:    e.Seq,
			Detail: e.Detail,
		}
		if e.Local {
			pe.Vtep = vtepLocal
		}
		if e.HasRD {
			pe.Rd = e.RD.String()
		}
		out.Events = append(out.Events, pe)
	}
	return out
}
