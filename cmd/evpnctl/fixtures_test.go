package main

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// Fixtures: one leaf (10.0.0.1, AS 65000) of a small fabric, with fixed
// times so that outputs are stable.

// t0 is the fixtures' reference time.
var t0 = time.Date(2026, 3, 4, 17, 1, 2, 123_000_000, time.UTC)

func ts(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(t0.Add(d)) }

func fixtureStatus() *evpndv1.GetStatusResponse {
	return &evpndv1.GetStatusResponse{
		Version:          "0.3.0",
		Started:          ts(-(time.Hour + time.Minute + 2*time.Second)),
		Uptime:           durationpb.New(time.Hour + time.Minute + 2*time.Second),
		RouterId:         "10.0.0.1",
		Asn:              65000,
		Role:             evpndv1.Role_ROLE_LEAF,
		VtepIp:           "10.0.0.1",
		KernelInSync:     false,
		BgpSynced:        true,
		FibPending:       2,
		FibErrors:        5,
		L2VniCount:       2,
		PeersEstablished: 2,
		PeersConfigured:  3,
		Restarted:        true,
		VrfCount:         2,
		Vrfs: []*evpndv1.VRFStatus{
			{Name: "blue", L3Vni: 3001, Backend: "netns", KernelInSync: true, Kernel: []*evpndv1.VRFKernelKind{
				{Kind: "rmac", Installed: 0, Wanted: 0}, {Kind: "neigh", Installed: 0, Wanted: 0}, {Kind: "route", Installed: 0, Wanted: 0, Repairs: 2}}},
			{Name: "red", L3Vni: 4001, Backend: "vrf", DevicesPresent: true, LocalHosts: 1, RemoteHosts: 2, HostRoutes: 2,
				PrefixRoutes: 1, RemoteVteps: 1, Uplinks: []string{"ext0", "ext1"}, StaticRoutes: 2,
				Kernel: []*evpndv1.VRFKernelKind{
					{Kind: "rmac", Installed: 1, Wanted: 1}, {Kind: "neigh", Installed: 1, Wanted: 2, Pending: 1, Errors: 3, Repairs: 1},
					{Kind: "route", Installed: 2, Wanted: 3, Pending: 1, Errors: 2}}},
		},
		ConfigFile:         "/etc/evpnd/evpnd.yaml",
		VnisNotInFile:      []uint32{300, 301},
		FileVnisNotRunning: []uint32{200},
		RestartNeeded:      []string{"router-id: 10.0.0.1 -> 10.0.0.9", "bgp.hold-time: 1m30s -> 9s"},
	}
}

// fixtureReload is a reload that applied some changes, failed one and
// names restart-only keys.
func fixtureReload() *evpndv1.ReloadResponse {
	return &evpndv1.ReloadResponse{
		ConfigFile: "/etc/evpnd/evpnd.yaml",
		Applied: []string{"log-level: info -> debug", "mac-mobility: duplicate-moves 5 -> 3, duplicate-window 3m0s -> 1m0s",
			"neighbor 10.0.0.253 AS 65000 added", "l2vni 300 removed", "l2vni 200 changed (removed and added)", "l2vni 400 added"},
		Failed:        []string{`metrics.listen "10.9.9.9:9273": listen tcp 10.9.9.9:9273: bind: cannot assign requested address`},
		RestartNeeded: []string{"router-id: 10.0.0.1 -> 10.0.0.9"},
	}
}

func fixtureVNIs() *evpndv1.ListVNIsResponse {
	return &evpndv1.ListVNIsResponse{Vnis: []*evpndv1.VNI{
		{
			Vni: 100, VxlanDevice: "vxlan100", Bridge: "br100", AccessInterfaces: []string{"eth1", "eth2"},
			Rd: "10.0.0.1:2", ImportRtsAuto: true, ExportRts: []string{"65000:100"},
			LocalMacs: 2, RemoteMacs: 3, DuplicateMacs: 2, FloodVteps: []string{"10.0.0.2", "10.0.0.3"},
			UdpPort: 4789, Mtu: 1500, DevicesPresent: true, LocalVtep: "10.0.0.1",
		},
		{
			Vni: 16777215, VxlanDevice: "vxlan-big", Bridge: "br-big", AccessInterfaces: nil,
			Rd: "10.0.0.1:3", ImportRts: []string{"65000:200", "65001:200"}, ExportRts: []string{"65000:200"},
			RemoteMacs: 1, UdpPort: 4789, Mtu: 9000, DevicesPresent: false,
		},
	}}
}

func fixtureMACs() []*evpndv1.MAC {
	local, remote := evpndv1.MACSource_MAC_SOURCE_LOCAL, evpndv1.MACSource_MAC_SOURCE_REMOTE
	return []*evpndv1.MAC{
		{Vni: 100, Mac: "02:00:00:00:00:01", Source: local, Vtep: "10.0.0.1", Port: "eth1", InKernel: true},
		{Vni: 100, Mac: "02:00:00:00:00:02", Source: local, Vtep: "10.0.0.1", Seq: 1, Sticky: true, InKernel: true},
		{Vni: 100, Mac: "02:00:00:00:01:0b", Source: remote, Vtep: "10.0.0.2", InKernel: true},
		{Vni: 100, Mac: "02:00:00:00:01:0c", Source: remote, Vtep: "10.0.0.3", Seq: 7, Duplicate: true,
			OtherVteps: []string{"10.0.0.2", "10.0.0.4"}},
		{Vni: 100, Mac: "02:00:00:00:01:0d", Source: remote, Vtep: "fd00:0:0:ffff::1234", Seq: 123456,
			Sticky: true, Duplicate: true, InKernel: true},
		{Vni: 16777215, Mac: "02:00:00:00:02:01", Source: remote, Vtep: "10.0.0.2", InKernel: true},
	}
}

// manyMACs returns n distinct remote MACs in VNI 100.
func manyMACs(n int) []*evpndv1.MAC {
	out := make([]*evpndv1.MAC, n)
	for i := range out {
		out[i] = bigMAC(i)
	}
	return out
}

func bigMAC(i int) *evpndv1.MAC {
	return &evpndv1.MAC{
		Vni: 100 + uint32(i>>16), Mac: fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff),
		Source: evpndv1.MACSource_MAC_SOURCE_REMOTE, Vtep: fmt.Sprintf("10.0.%d.%d", i>>8&0xff, i&0xff), InKernel: true,
	}
}

func fixtureRoutes() []*evpndv1.Route {
	return []*evpndv1.Route{
		{
			RouteType: 5, Rd: "10.0.0.1:1", Prefix: "[5]:[0]:[24]:[172.16.1.0]", IpPrefix: "172.16.1.0/24",
			Labels: []uint32{4001}, NextHop: "10.0.0.1", RouteTargets: []string{"65000:4001"},
			ExtendedCommunities: []string{"ET:8", "Rmac:32:42:95:bd:fd:8d"}, LocalPref: 100, Origin: "i",
			Local: true, Best: true, Selected: true, Age: durationpb.New(time.Hour),
		},
		{
			RouteType: 2, Rd: "10.0.0.1:2", Prefix: "[2]:[0]:[48]:[02:00:00:00:00:01]", Mac: "02:00:00:00:00:01",
			Labels: []uint32{100}, NextHop: "10.0.0.1", RouteTargets: []string{"65000:100"},
			ExtendedCommunities: []string{"ET:8"}, LocalPref: 100, Origin: "i", Local: true, Best: true, Selected: true, Vni: 100,
		},
		{
			RouteType: 3, Rd: "10.0.0.1:2", Prefix: "[3]:[0]:[32]:[10.0.0.1]", Originator: "10.0.0.1",
			NextHop: "10.0.0.1", RouteTargets: []string{"65000:100"}, ExtendedCommunities: []string{"ET:8"},
			PmsiTunnelType: "ingress-replication", PmsiLabel: 100, PmsiEndpoint: "10.0.0.1",
			LocalPref: 100, Origin: "i", Local: true, Best: true, Selected: true, Vni: 100,
		},
		{
			RouteType: 2, Rd: "10.0.0.2:2", Prefix: "[2]:[0]:[48]:[02:00:00:00:01:0b]", Mac: "02:00:00:00:01:0b",
			Labels: []uint32{100}, NextHop: "10.0.0.2", RouteTargets: []string{"65000:100"},
			ExtendedCommunities: []string{"ET:8", "MM:3"}, MacMobilitySeq: 3, LocalPref: 100, Origin: "i",
			Peer: "10.1.1.0", Best: true, Selected: true, Vni: 100, OriginatorId: "10.0.0.2", ClusterList: []string{"10.1.1.0"},
		},
		{
			RouteType: 2, Rd: "10.0.0.2:2", Prefix: "[2]:[0]:[48]:[02:00:00:00:01:0b]", Mac: "02:00:00:00:01:0b",
			Labels: []uint32{100}, NextHop: "10.0.0.2", RouteTargets: []string{"65000:100"},
			ExtendedCommunities: []string{"ET:8", "MM:3"}, MacMobilitySeq: 3, LocalPref: 100, Origin: "i",
			Peer: "10.1.1.1", Vni: 100, OriginatorId: "10.0.0.2", ClusterList: []string{"10.1.1.1"},
		},
		{
			RouteType: 2, Rd: "10.0.0.2:2", Prefix: "[2]:[0]:[48]:[02:00:00:00:01:0b]:[32]:[192.168.100.2]",
			Mac: "02:00:00:00:01:0b", Ip: "192.168.100.2", Labels: []uint32{100, 4001}, NextHop: "10.0.0.2",
			RouteTargets: []string{"65000:100", "65000:4001"}, ExtendedCommunities: []string{"ET:8", "Rmac:3e:42:0f:4f:45:81"},
			LocalPref: 100, Origin: "i", Peer: "10.1.1.0", Best: true, Vni: 100,
		},
		{
			RouteType: 3, Rd: "10.0.0.2:2", Prefix: "[3]:[0]:[32]:[10.0.0.2]", Originator: "10.0.0.2",
			NextHop: "10.0.0.2", RouteTargets: []string{"65000:100"}, ExtendedCommunities: []string{"ET:8"},
			PmsiTunnelType: "ingress-replication", PmsiLabel: 100, PmsiEndpoint: "10.0.0.2",
			LocalPref: 100, Origin: "i", Peer: "10.1.1.0", Best: true, Selected: true, Vni: 100,
		},
		{
			RouteType: 5, Rd: "192.0.2.9:65535", Prefix: "[5]:[0]:[16]:[172.31.0.0]", IpPrefix: "172.31.0.0/16",
			GatewayIp: "0.0.0.0", Labels: []uint32{4001}, NextHop: "2001:db8:ffff:ffff::9",
			RouteTargets: []string{"65100:4001"}, AsPath: []uint32{65100, 65200}, Origin: "e",
			Peer: "2001:db8::2", Best: true, Stale: true,
		},
	}
}

func fixturePeers() *evpndv1.ListPeersResponse {
	return &evpndv1.ListPeersResponse{Peers: []*evpndv1.Peer{
		{
			Address: "10.1.1.0", Asn: 65000, Description: "spine1", RouterId: "10.1.1.0",
			State: evpndv1.PeerState_PEER_STATE_ESTABLISHED, Uptime: durationpb.New(7 * time.Second),
			Received: 4, Accepted: 3, EorReceived: true, GracefulRestart: true,
			MessagesReceived: 13, MessagesSent: 9, Advertised: 4,
		},
		{
			Address: "10.1.1.1", Asn: 65000, Description: "spine2", RouterId: "10.1.1.1",
			State: evpndv1.PeerState_PEER_STATE_ESTABLISHED, Uptime: durationpb.New(3*24*time.Hour + 4*time.Hour + 5*time.Minute),
			Received: 1200, Accepted: 1200, GracefulRestart: true, PeerRestarting: true,
			MessagesReceived: 18342, MessagesSent: 18107, Advertised: 17,
		},
		{
			Address: "2001:db8::2", Asn: 65100, Description: "border",
			State: evpndv1.PeerState_PEER_STATE_IDLE, LastError: "hold timer expired (notification 4/0 sent)", Dynamic: true,
			MessagesReceived: 5, MessagesSent: 7,
		},
	}}
}

func fixtureCheckDrift() *evpndv1.CheckResponse {
	return &evpndv1.CheckResponse{
		Drifts: []*evpndv1.Drift{
			{Kind: evpndv1.DriftKind_DRIFT_KIND_MISSING, Vni: 100, Table: "mac", Mac: "02:00:00:00:01:0b", WantVtep: "10.0.0.2",
				Device: "vxlan100", Detail: "bridge fdb show dev vxlan100 | grep 02:00:00:00:01:0b"},
			{Kind: evpndv1.DriftKind_DRIFT_KIND_WRONG, Vni: 100, Table: "mac", Mac: "02:00:00:00:01:0c", WantVtep: "10.0.0.3",
				KernelVtep: "10.0.0.2", Device: "vxlan100", Detail: "bridge fdb show dev vxlan100 | grep 02:00:00:00:01:0c"},
			{Kind: evpndv1.DriftKind_DRIFT_KIND_EXTRA, Vni: 100, Table: "flood", KernelVtep: "10.0.0.9", Device: "vxlan100",
				Detail: "bridge fdb show dev vxlan100 | grep 00:00:00:00:00:00"},
			{Kind: evpndv1.DriftKind_DRIFT_KIND_MISSING, Vni: 16777215, Table: "device", Device: "vxlan-big",
				Detail: "ip -d link show vxlan-big"},
		},
		CheckedMacs: 1200, CheckedFloods: 4, Time: ts(0), InFlight: 3,
	}
}

func fixtureCheckClean() *evpndv1.CheckResponse {
	return &evpndv1.CheckResponse{CheckedMacs: 1, CheckedFloods: 1, Time: ts(0)}
}

func fixtureTrace() *evpndv1.TraceResponse {
	return &evpndv1.TraceResponse{Keys: []*evpndv1.TraceKey{
		{
			Vni: 100, Mac: "02:00:00:00:01:0b", Truncated: true,
			Events: []*evpndv1.TraceEvent{
				{Time: ts(0), Kind: evpndv1.TraceKind_TRACE_KIND_ROUTE_RECEIVED, Peer: "10.1.1.0", Vtep: "10.0.0.2", Rd: "10.0.0.2:2"},
				{Time: ts(400 * time.Microsecond), Kind: evpndv1.TraceKind_TRACE_KIND_SELECTED, Vtep: "10.0.0.2", Rd: "10.0.0.2:2"},
				{Time: ts(12300 * time.Microsecond), Kind: evpndv1.TraceKind_TRACE_KIND_KERNEL_WRITTEN, Vtep: "10.0.0.2"},
				{Time: ts(2500 * time.Millisecond), Kind: evpndv1.TraceKind_TRACE_KIND_ROUTE_RECEIVED, Peer: "10.1.1.1", Vtep: "10.0.0.3", Seq: 1, Rd: "10.0.0.3:2"},
				{Time: ts(2501 * time.Millisecond), Kind: evpndv1.TraceKind_TRACE_KIND_SELECTED, Vtep: "10.0.0.3", Seq: 1, Rd: "10.0.0.3:2", Detail: "higher sequence number"},
				{Time: ts(time.Minute + 3456*time.Millisecond), Kind: evpndv1.TraceKind_TRACE_KIND_KERNEL_ERROR, Vtep: "10.0.0.3", Seq: 1,
					Detail: "netlink: no such device vxlan100; retrying"},
			},
		},
		{
			Vni: 200, Mac: "02:00:00:00:01:0b",
			Events: []*evpndv1.TraceEvent{
				{Time: ts(time.Second), Kind: evpndv1.TraceKind_TRACE_KIND_LOCAL_LEARNED, Vtep: "local", Detail: "port eth3"},
				{Time: ts(time.Second + 800*time.Microsecond), Kind: evpndv1.TraceKind_TRACE_KIND_ADVERTISED, Vtep: "local", Rd: "10.0.0.1:3"},
			},
		},
	}}
}

func fixtureWatch() []*evpndv1.WatchResponse {
	local, remote := evpndv1.MACSource_MAC_SOURCE_LOCAL, evpndv1.MACSource_MAC_SOURCE_REMOTE
	mac := func(m *evpndv1.MAC, prev string) *evpndv1.WatchResponse_Mac {
		return &evpndv1.WatchResponse_Mac{Mac: &evpndv1.MACChange{Mac: m, Previous: prev}}
	}
	return []*evpndv1.WatchResponse{
		{Time: ts(0), Kind: evpndv1.ChangeKind_CHANGE_KIND_ADDED, Initial: true,
			Change: mac(&evpndv1.MAC{Vni: 100, Mac: "02:00:00:00:00:01", Source: local, Vtep: "10.0.0.1", Port: "eth1", InKernel: true}, "")},
		{Time: ts(0), Kind: evpndv1.ChangeKind_CHANGE_KIND_UP, Initial: true,
			Change: &evpndv1.WatchResponse_Peer{Peer: &evpndv1.PeerChange{Address: "10.1.1.0", State: evpndv1.PeerState_PEER_STATE_ESTABLISHED}}},
		{Time: ts(time.Millisecond), Kind: evpndv1.ChangeKind_CHANGE_KIND_SYNCED},
		{Time: ts(time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_ADDED,
			Change: mac(&evpndv1.MAC{Vni: 100, Mac: "02:00:00:00:01:0b", Source: remote, Vtep: "10.0.0.2", InKernel: true}, "")},
		{Time: ts(2 * time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_MOVED,
			Change: mac(&evpndv1.MAC{Vni: 100, Mac: "02:00:00:00:01:0b", Source: remote, Vtep: "10.0.0.3", Seq: 1, InKernel: true}, "10.0.0.2")},
		{Time: ts(3 * time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_MOVED,
			Change: mac(&evpndv1.MAC{Vni: 100, Mac: "02:00:00:00:01:0b", Source: local, Vtep: "10.0.0.1", Seq: 2, Port: "eth2"}, "10.0.0.3")},
		{Time: ts(4 * time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_DUPLICATE,
			Change: mac(&evpndv1.MAC{Vni: 100, Mac: "02:00:00:00:01:0b", Source: remote, Vtep: "10.0.0.3", Seq: 7, Duplicate: true}, "")},
		{Time: ts(5 * time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_DUPLICATE,
			Change: mac(&evpndv1.MAC{Vni: 100, Mac: "02:00:00:00:01:0b", Source: remote, Vtep: "10.0.0.3", Seq: 7}, "")},
		{Time: ts(6 * time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_REMOVED,
			Change: mac(&evpndv1.MAC{Vni: 100, Mac: "02:00:00:00:01:0b", Source: remote, Vtep: "10.0.0.3", Seq: 7, Sticky: true}, "")},
		{Time: ts(7 * time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_ADDED,
			Change: &evpndv1.WatchResponse_Vtep{Vtep: &evpndv1.VTEPChange{Vni: 100, Vtep: "10.0.0.4"}}},
		{Time: ts(8 * time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_REMOVED,
			Change: &evpndv1.WatchResponse_Vtep{Vtep: &evpndv1.VTEPChange{Vni: 100, Vtep: "10.0.0.4"}}},
		{Time: ts(9 * time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_DOWN,
			Change: &evpndv1.WatchResponse_Peer{Peer: &evpndv1.PeerChange{Address: "10.1.1.0", State: evpndv1.PeerState_PEER_STATE_IDLE}}},
		{Time: ts(10 * time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_ADDED,
			Change: &evpndv1.WatchResponse_VrfRoute{VrfRoute: &evpndv1.VRFRouteChange{Route: fixtureVRFRoutes()[0]}}},
		{Time: ts(11 * time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_REMOVED,
			Change: &evpndv1.WatchResponse_VrfRoute{VrfRoute: &evpndv1.VRFRouteChange{Route: fixtureVRFRoutes()[2]}}},
		{Time: ts(12 * time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_ADDED,
			Change: &evpndv1.WatchResponse_Arp{Arp: &evpndv1.ARPChange{Entry: fixtureARP()[0]}}},
		{Time: ts(13 * time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_ADDED,
			Change: &evpndv1.WatchResponse_Arp{Arp: &evpndv1.ARPChange{Entry: fixtureARP()[2]}}},
		{Time: ts(14 * time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_REMOVED,
			Change: &evpndv1.WatchResponse_Arp{Arp: &evpndv1.ARPChange{Entry: fixtureARP()[3]}}},
	}
}
