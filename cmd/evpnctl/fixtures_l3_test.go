package main

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// Layer-3 fixtures: VRF red, L3VNI 4001 (members 100 and 200), symmetric
// IRB with leafs 10.0.0.2 and 10.0.0.3.

func fixtureL3VNIs() *evpndv1.ListL3VNIsResponse {
	return &evpndv1.ListL3VNIsResponse{L3Vnis: []*evpndv1.L3VNI{{
		L3Vni: 4001, Vrf: "red", Backend: "vrf", Table: 4001, VxlanDevice: "vxlan4001", Bridge: "br4001",
		RouterMac: "32:42:95:bd:fd:8d", LocalVtep: "10.0.0.1", Rd: "10.0.0.1:4", ImportRts: []string{"65000:4001"},
		ExportRts: []string{"65000:4001"}, L2Vnis: []uint32{100, 200}, RemoteVteps: 2, NextHops: 2, HostRoutes: 2, PrefixRoutes: 2,
		DevicesPresent: true,
	}}}
}

func fixtureARP() []*evpndv1.ARPEntry {
	active := evpndv1.ARPState_ARP_STATE_ACTIVE
	return []*evpndv1.ARPEntry{
		{Vni: 100, Ip: "192.168.100.1", Mac: "02:00:00:00:00:01", Local: true, Vrf: "red", State: active},
		{Vni: 100, Ip: "192.168.100.2", Mac: "02:00:00:00:00:02", Vtep: "10.0.0.2", Vrf: "red", State: active},
		{Vni: 100, Ip: "192.168.100.9", Mac: "02:00:00:00:00:09", Local: true, Seq: 2, Vrf: "red", State: evpndv1.ARPState_ARP_STATE_INACTIVE},
		{Vni: 200, Ip: "2001:db8:200::3", Mac: "02:00:00:00:02:03", Vtep: "10.0.0.3", Seq: 3, Vrf: "red", State: active},
	}
}

func fixtureRMACs() *evpndv1.ListRouterMACsResponse {
	return &evpndv1.ListRouterMACsResponse{RouterMacs: []*evpndv1.RouterMACEntry{
		{L3Vni: 4001, Vrf: "red", Vtep: "10.0.0.2", RouterMac: "3e:42:0f:4f:45:81", Routes: 3},
		{L3Vni: 4001, Vrf: "red", Vtep: "10.0.0.3", RouterMac: "3e:42:0f:4f:45:82", Routes: 2},
	}}
}

func fixtureNextHops() *evpndv1.ListL3NextHopsResponse {
	return &evpndv1.ListL3NextHopsResponse{NextHops: []*evpndv1.L3NextHop{
		{L3Vni: 4001, Vrf: "red", Vtep: "10.0.0.2", RouterMac: "3e:42:0f:4f:45:81", Routes: 3},
		{L3Vni: 4001, Vrf: "red", Vtep: "10.0.0.3", RouterMac: "3e:42:0f:4f:45:82", Routes: 2},
	}}
}

func fixtureVRFRoutes() []*evpndv1.VRFRoute {
	host, pref := evpndv1.VRFRouteKind_VRF_ROUTE_KIND_HOST, evpndv1.VRFRouteKind_VRF_ROUTE_KIND_PREFIX
	nh2 := &evpndv1.VRFNextHop{Vtep: "10.0.0.2", RouterMac: "3e:42:0f:4f:45:81"}
	nh3 := &evpndv1.VRFNextHop{Vtep: "10.0.0.3", RouterMac: "3e:42:0f:4f:45:82"}
	return []*evpndv1.VRFRoute{
		{Vrf: "red", L3Vni: 4001, Prefix: "0.0.0.0/0", Kind: pref, NextHops: []*evpndv1.VRFNextHop{nh2, nh3}},
		{Vrf: "red", L3Vni: 4001, Prefix: "172.16.2.0/24", Kind: pref, NextHops: []*evpndv1.VRFNextHop{nh2}},
		{Vrf: "red", L3Vni: 4001, Prefix: "192.168.100.2/32", Kind: host, NextHops: []*evpndv1.VRFNextHop{nh2}},
		{Vrf: "red", L3Vni: 4001, Prefix: "2001:db8:200::3/128", Kind: host, NextHops: []*evpndv1.VRFNextHop{nh3}},
	}
}

func fixtureCheckDriftL3() *evpndv1.CheckResponse {
	return &evpndv1.CheckResponse{
		Drifts: []*evpndv1.Drift{
			{Kind: evpndv1.DriftKind_DRIFT_KIND_MISSING, Vni: 100, Table: "mac", Mac: "02:00:00:00:01:0b", WantVtep: "10.0.0.2",
				Device: "vxlan100", Detail: "bridge fdb show dev vxlan100 | grep 02:00:00:00:01:0b"},
			{Kind: evpndv1.DriftKind_DRIFT_KIND_MISSING, Table: "route", Vrf: "red", Entry: "172.16.2.0/24", WantVtep: "10.0.0.2",
				Device: "br4001", Detail: "ip route show vrf red 172.16.2.0/24"},
			{Kind: evpndv1.DriftKind_DRIFT_KIND_EXTRA, Table: "rmac", Vrf: "red", Entry: "3e:42:0f:4f:45:99", KernelVtep: "10.0.0.9",
				Device: "vxlan4001", Detail: "bridge fdb show dev vxlan4001 | grep 3e:42:0f:4f:45:99"},
		},
		CheckedMacs: 1200, CheckedFloods: 4, CheckedL3: 9, Time: ts(0),
	}
}

func (f *fakeServer) l3vni(n uint32) (*evpndv1.L3VNI, error) {
	for _, v := range fixtureL3VNIs().GetL3Vnis() {
		if v.GetL3Vni() == n {
			return v, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "L3VNI %d is not configured (no VRF has it)", n)
}

func (f *fakeServer) ListL3VNIs(ctx context.Context, req *evpndv1.ListL3VNIsRequest) (*evpndv1.ListL3VNIsResponse, error) {
	f.record(req)
	return fixtureL3VNIs(), nil
}

func (f *fakeServer) GetL3VNI(ctx context.Context, req *evpndv1.GetL3VNIRequest) (*evpndv1.GetL3VNIResponse, error) {
	f.record(req)
	v, err := f.l3vni(req.GetL3Vni())
	if err != nil {
		return nil, err
	}
	return &evpndv1.GetL3VNIResponse{L3Vni: v}, nil
}

func (f *fakeServer) ListARPCache(req *evpndv1.ListARPCacheRequest, stream grpc.ServerStreamingServer[evpndv1.ListARPCacheResponse]) error {
	f.record(req)
	if v := req.GetVni(); v != 0 && v != 100 && v != 200 {
		return status.Errorf(codes.NotFound, "VNI %d is not an L2VNI routed in a VRF", v)
	}
	// One row a page, to show the table does not depend on pages.
	for _, e := range fixtureARP() {
		if req.GetVni() == 0 || e.GetVni() == req.GetVni() {
			if err := stream.Send(&evpndv1.ListARPCacheResponse{Entries: []*evpndv1.ARPEntry{e}}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *fakeServer) ListRouterMACs(ctx context.Context, req *evpndv1.ListRouterMACsRequest) (*evpndv1.ListRouterMACsResponse, error) {
	f.record(req)
	if req.GetL3Vni() != 0 {
		if _, err := f.l3vni(req.GetL3Vni()); err != nil {
			return nil, err
		}
	}
	return fixtureRMACs(), nil
}

func (f *fakeServer) ListL3NextHops(ctx context.Context, req *evpndv1.ListL3NextHopsRequest) (*evpndv1.ListL3NextHopsResponse, error) {
	f.record(req)
	if req.GetL3Vni() != 0 {
		if _, err := f.l3vni(req.GetL3Vni()); err != nil {
			return nil, err
		}
	}
	return fixtureNextHops(), nil
}

func (f *fakeServer) ListVRFRoutes(req *evpndv1.ListVRFRoutesRequest, stream grpc.ServerStreamingServer[evpndv1.ListVRFRoutesResponse]) error {
	f.record(req)
	if req.GetVrf() != "red" {
		return status.Errorf(codes.NotFound, "VRF %s is not configured", req.GetVrf())
	}
	for _, r := range fixtureVRFRoutes() {
		if err := stream.Send(&evpndv1.ListVRFRoutesResponse{Routes: []*evpndv1.VRFRoute{r}}); err != nil {
			return err
		}
	}
	return nil
}
