package api

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/evpnd/evpnd/configs"
	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// fakeL3 is a fakeBackend that also serves the layer-3 tables: one VRF
// "red", L3VNI 4001, members 100 and 200.
type fakeL3 struct {
	fakeBackend
	vni   L3VNI
	arp   []ARPEntry
	rmacs []RouterMACEntry
	nhs   []L3NextHop
	route []VRFRoute

	arpVNI uint32
	rmacL3 uint32
	nhL3   uint32
	vrf    string
}

var _ L3Backend = (*fakeL3)(nil)

func (f *fakeL3) L3VNIs(context.Context) ([]L3VNI, error) { return []L3VNI{f.vni}, nil }

func (f *fakeL3) L3VNI(_ context.Context, l3vni uint32) (L3VNI, error) {
	if l3vni != f.vni.L3VNI {
		return L3VNI{}, ErrNotFound
	}
	return f.vni, nil
}

func (f *fakeL3) ARPCache(_ context.Context, vni uint32, fn func(ARPEntry) error) error {
	f.mu.Lock()
	f.arpVNI = vni
	f.mu.Unlock()
	if vni != 0 && vni != 100 && vni != 200 {
		return ErrNotFound
	}
	for _, e := range f.arp {
		if vni == 0 || e.VNI == vni {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *fakeL3) RouterMACs(_ context.Context, l3vni uint32) ([]RouterMACEntry, error) {
	f.mu.Lock()
	f.rmacL3 = l3vni
	f.mu.Unlock()
	if l3vni != 0 && l3vni != f.vni.L3VNI {
		return nil, ErrNotFound
	}
	return f.rmacs, nil
}

func (f *fakeL3) L3NextHops(_ context.Context, l3vni uint32) ([]L3NextHop, error) {
	f.mu.Lock()
	f.nhL3 = l3vni
	f.mu.Unlock()
	if l3vni != 0 && l3vni != f.vni.L3VNI {
		return nil, ErrNotFound
	}
	return f.nhs, nil
}

func (f *fakeL3) VRFRoutes(_ context.Context, vrf string, fn func(VRFRoute) error) error {
	f.mu.Lock()
	f.vrf = vrf
	f.mu.Unlock()
	if vrf != f.vni.VRF {
		return ErrNotFound
	}
	for _, r := range f.route {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func newFakeL3(t *testing.T) *fakeL3 {
	rmac2, rmac3 := mustMAC(t, "3e:42:0f:4f:45:81"), mustMAC(t, "3e:42:0f:4f:45:82")
	f := &fakeL3{
		vni: L3VNI{
			L3VNI: 4001, VRF: "red", Backend: configs.BackendVRF, Table: 4001, VXLAN: "vxlan4001", Bridge: "br4001",
			RouterMAC: mustMAC(t, "32:42:95:bd:fd:8d"), LocalVTEP: ip("10.0.0.1"), RD: mustRD(t, "10.0.0.1:4001"),
			ImportRTs: []evpn.RT{mustRT(t, "65000:4001")}, ExportRTs: []evpn.RT{mustRT(t, "65000:4001")},
			L2VNIs: []uint32{100, 200}, RemoteVTEPs: 2, NextHops: 2, HostRoutes: 1, PrefixRoutes: 1, DevicesPresent: true,
		},
		arp: []ARPEntry{
			{VNI: 100, IP: ip("192.168.100.1"), MAC: mustMAC(t, "02:00:00:00:00:01"), Local: true, Seq: 2, VRF: "red"},
			{VNI: 100, IP: ip("192.168.100.2"), MAC: mustMAC(t, "02:00:00:00:00:02"), VTEP: ip("10.0.0.2"), VRF: "red"},
			{VNI: 100, IP: ip("192.168.100.3"), MAC: mustMAC(t, "02:00:00:00:00:04"), Local: true, Seq: 1, VRF: "red", Inactive: true},
			{VNI: 200, IP: ip("2001:db8::2"), MAC: mustMAC(t, "02:00:00:00:00:03"), VTEP: ip("10.0.0.3"), Seq: 1, VRF: "red"},
		},
		rmacs: []RouterMACEntry{
			{L3VNI: 4001, VRF: "red", VTEP: ip("10.0.0.2"), RouterMAC: rmac2, Routes: 2},
			{L3VNI: 4001, VRF: "red", VTEP: ip("10.0.0.3"), RouterMAC: rmac3, Routes: 1},
		},
		nhs: []L3NextHop{{L3VNI: 4001, VRF: "red", VTEP: ip("10.0.0.2"), RouterMAC: rmac2, Routes: 2}},
		route: []VRFRoute{
			{VRF: "red", L3VNI: 4001, Prefix: netip.MustParsePrefix("172.16.2.0/24"),
				NextHops: []VRFNextHop{{VTEP: ip("10.0.0.2"), RouterMAC: rmac2}, {VTEP: ip("10.0.0.3"), RouterMAC: rmac3}}},
			{VRF: "red", L3VNI: 4001, Prefix: netip.MustParsePrefix("192.168.100.2/32"), Host: true,
				NextHops: []VRFNextHop{{VTEP: ip("10.0.0.2"), RouterMAC: rmac2}}},
		},
	}
	return f
}

// recvErr reads every page of a server stream, and its error.
func recvErr[T any](st grpc.ServerStreamingClient[T]) ([]*T, error) {
	var out []*T
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

func TestL3VNIs(t *testing.T) {
	f := newFakeL3(t)
	c, _ := serveUnix(t, f)
	want := &evpndv1.L3VNI{
		L3Vni: 4001, Vrf: "red", Backend: "vrf", Table: 4001, VxlanDevice: "vxlan4001", Bridge: "br4001",
		RouterMac: "32:42:95:bd:fd:8d", LocalVtep: "10.0.0.1", Rd: "10.0.0.1:4001",
		ImportRts: []string{"65000:4001"}, ExportRts: []string{"65000:4001"}, L2Vnis: []uint32{100, 200},
		RemoteVteps: 2, NextHops: 2, HostRoutes: 1, PrefixRoutes: 1, DevicesPresent: true,
	}
	got, err := c.GetL3VNI(ctxT(t), &evpndv1.GetL3VNIRequest{L3Vni: 4001})
	if err != nil {
		t.Fatal(err)
	}
	checkProto(t, "GetL3VNI", got, &evpndv1.GetL3VNIResponse{L3Vni: want})
	list, err := c.ListL3VNIs(ctxT(t), &evpndv1.ListL3VNIsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	checkProto(t, "ListL3VNIs", list, &evpndv1.ListL3VNIsResponse{L3Vnis: []*evpndv1.L3VNI{want}})

	_, err = c.GetL3VNI(ctxT(t), &evpndv1.GetL3VNIRequest{L3Vni: 4002})
	wantCode(t, err, codes.NotFound, "L3VNI 4002 is not configured (no VRF has it)")
	_, err = c.GetL3VNI(ctxT(t), &evpndv1.GetL3VNIRequest{})
	wantCode(t, err, codes.InvalidArgument, "l3vni:")
}

func TestListARPCache(t *testing.T) {
	f := newFakeL3(t)
	c, _ := serveUnix(t, f)
	st, err := c.ListARPCache(ctxT(t), &evpndv1.ListARPCacheRequest{Vni: 100})
	if err != nil {
		t.Fatal(err)
	}
	pages, err := recvErr(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 1 {
		t.Fatalf("%d pages, want 1", len(pages))
	}
	checkProto(t, "ListARPCache", pages[0], &evpndv1.ListARPCacheResponse{Entries: []*evpndv1.ARPEntry{
		{Vni: 100, Ip: "192.168.100.1", Mac: "02:00:00:00:00:01", Local: true, Seq: 2, Vrf: "red", State: evpndv1.ARPState_ARP_STATE_ACTIVE},
		{Vni: 100, Ip: "192.168.100.2", Mac: "02:00:00:00:00:02", Vtep: "10.0.0.2", Vrf: "red", State: evpndv1.ARPState_ARP_STATE_ACTIVE},
		{Vni: 100, Ip: "192.168.100.3", Mac: "02:00:00:00:00:04", Local: true, Seq: 1, Vrf: "red", State: evpndv1.ARPState_ARP_STATE_INACTIVE},
	}})
	f.mu.Lock()
	if f.arpVNI != 100 {
		t.Errorf("backend asked for vni %d, want 100", f.arpVNI)
	}
	f.mu.Unlock()

	st, err = c.ListARPCache(ctxT(t), &evpndv1.ListARPCacheRequest{Vni: 300})
	if err == nil {
		_, err = recvErr(st)
	}
	wantCode(t, err, codes.NotFound, "VNI 300 is not an L2VNI routed in a VRF")

	st, err = c.ListARPCache(ctxT(t), &evpndv1.ListARPCacheRequest{Vni: 1 << 24})
	if err == nil {
		_, err = recvErr(st)
	}
	wantCode(t, err, codes.InvalidArgument, "vni:")
}

func TestListRouterMACsAndNextHops(t *testing.T) {
	f := newFakeL3(t)
	c, _ := serveUnix(t, f)
	rm, err := c.ListRouterMACs(ctxT(t), &evpndv1.ListRouterMACsRequest{L3Vni: 4001})
	if err != nil {
		t.Fatal(err)
	}
	checkProto(t, "ListRouterMACs", rm, &evpndv1.ListRouterMACsResponse{RouterMacs: []*evpndv1.RouterMACEntry{
		{L3Vni: 4001, Vrf: "red", Vtep: "10.0.0.2", RouterMac: "3e:42:0f:4f:45:81", Routes: 2},
		{L3Vni: 4001, Vrf: "red", Vtep: "10.0.0.3", RouterMac: "3e:42:0f:4f:45:82", Routes: 1},
	}})
	nh, err := c.ListL3NextHops(ctxT(t), &evpndv1.ListL3NextHopsRequest{L3Vni: 4001})
	if err != nil {
		t.Fatal(err)
	}
	checkProto(t, "ListL3NextHops", nh, &evpndv1.ListL3NextHopsResponse{NextHops: []*evpndv1.L3NextHop{
		{L3Vni: 4001, Vrf: "red", Vtep: "10.0.0.2", RouterMac: "3e:42:0f:4f:45:81", Routes: 2},
	}})
	_, err = c.ListRouterMACs(ctxT(t), &evpndv1.ListRouterMACsRequest{L3Vni: 100})
	wantCode(t, err, codes.NotFound, "L3VNI 100 is not configured")
	_, err = c.ListL3NextHops(ctxT(t), &evpndv1.ListL3NextHopsRequest{L3Vni: 4002})
	wantCode(t, err, codes.NotFound, "L3VNI 4002 is not configured")
}

func TestListVRFRoutes(t *testing.T) {
	f := newFakeL3(t)
	c, _ := serveUnix(t, f)
	st, err := c.ListVRFRoutes(ctxT(t), &evpndv1.ListVRFRoutesRequest{Vrf: "red"})
	if err != nil {
		t.Fatal(err)
	}
	pages, err := recvErr(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 1 {
		t.Fatalf("%d pages, want 1", len(pages))
	}
	checkProto(t, "ListVRFRoutes", pages[0], &evpndv1.ListVRFRoutesResponse{Routes: []*evpndv1.VRFRoute{
		{Vrf: "red", L3Vni: 4001, Prefix: "172.16.2.0/24", Kind: evpndv1.VRFRouteKind_VRF_ROUTE_KIND_PREFIX, NextHops: []*evpndv1.VRFNextHop{
			{Vtep: "10.0.0.2", RouterMac: "3e:42:0f:4f:45:81"}, {Vtep: "10.0.0.3", RouterMac: "3e:42:0f:4f:45:82"}}},
		{Vrf: "red", L3Vni: 4001, Prefix: "192.168.100.2/32", Kind: evpndv1.VRFRouteKind_VRF_ROUTE_KIND_HOST, NextHops: []*evpndv1.VRFNextHop{
			{Vtep: "10.0.0.2", RouterMac: "3e:42:0f:4f:45:81"}}},
	}})

	st, err = c.ListVRFRoutes(ctxT(t), &evpndv1.ListVRFRoutesRequest{Vrf: "blue"})
	if err == nil {
		_, err = recvErr(st)
	}
	wantCode(t, err, codes.NotFound, "VRF blue is not configured")
	st, err = c.ListVRFRoutes(ctxT(t), &evpndv1.ListVRFRoutesRequest{})
	if err == nil {
		_, err = recvErr(st)
	}
	wantCode(t, err, codes.InvalidArgument, "vrf:")
}

// A Backend without the L3 side answers UNIMPLEMENTED, not a crash.
func TestL3Unimplemented(t *testing.T) {
	c, _ := serveUnix(t, &fakeBackend{})
	_, err := c.ListL3VNIs(ctxT(t), &evpndv1.ListL3VNIsRequest{})
	wantCode(t, err, codes.Unimplemented, "layer-3")
}

// The L3 fields of GetStatus, Check and Watch reach the client.
func TestL3StatusCheckWatchFields(t *testing.T) {
	f := newFakeL3(t)
	f.status = Status{VRFs: 2, VRFStates: []VRFStatus{
		{Name: "blue", L3VNI: 3001, Backend: configs.BackendNetns},
		{Name: "red", L3VNI: 4001, Backend: configs.BackendVRF, DevicesPresent: true, LocalHosts: 1, RemoteHosts: 2,
			HostRoutes: 2, PrefixRoutes: 1, RemoteVTEPs: 1, Uplinks: []string{"ext0"}, StaticRoutes: 2, KernelInSync: true,
			Kernel: []VRFKernelKind{{Kind: "route", Installed: 3, Wanted: 4, Pending: 1, Errors: 2, Repairs: 5}}},
	}}
	f.check = CheckReport{CheckedL3: 5, Drifts: []Drift{{Kind: DriftMissing, Table: "route", VRF: "red", Entry: "172.16.2.0/24",
		WantVTEP: ip("10.0.0.2"), Detail: "ip route add 172.16.2.0/24 vrf red ..."}}}
	r := VRFRoute{VRF: "red", L3VNI: 4001, Prefix: netip.MustParsePrefix("10.9.0.0/16")}
	f.watch = func(_ context.Context, fn func(Change) error) error {
		if err := fn(Change{Kind: ChangeRemoved, VRFRoute: &VRFRouteChange{Route: r}}); err != nil {
			return err
		}
		return fn(Change{Kind: ChangeAdded, ARP: &ARPChange{Entry: ARPEntry{VNI: 100, IP: ip("192.168.100.1"),
			MAC: mustMAC(t, "02:00:00:00:00:01"), Local: true, Seq: 2, VRF: "red"}}})
	}
	c, _ := serveUnix(t, f)
	st, err := c.GetStatus(ctxT(t), &evpndv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetVrfCount() != 2 {
		t.Errorf("vrf_count %d, want 2", st.GetVrfCount())
	}
	checkProto(t, "GetStatus vrfs", &evpndv1.GetStatusResponse{Vrfs: st.GetVrfs()}, &evpndv1.GetStatusResponse{Vrfs: []*evpndv1.VRFStatus{
		{Name: "blue", L3Vni: 3001, Backend: "netns"},
		{Name: "red", L3Vni: 4001, Backend: "vrf", DevicesPresent: true, LocalHosts: 1, RemoteHosts: 2,
			HostRoutes: 2, PrefixRoutes: 1, RemoteVteps: 1, Uplinks: []string{"ext0"}, StaticRoutes: 2, KernelInSync: true,
			Kernel: []*evpndv1.VRFKernelKind{{Kind: "route", Installed: 3, Wanted: 4, Pending: 1, Errors: 2, Repairs: 5}}},
	}})
	ck, err := c.Check(ctxT(t), &evpndv1.CheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if ck.GetCheckedL3() != 5 || len(ck.GetDrifts()) != 1 {
		t.Fatalf("check: %v", ck)
	}
	d := ck.GetDrifts()[0]
	if d.GetVrf() != "red" || d.GetEntry() != "172.16.2.0/24" || d.GetTable() != "route" || d.GetWantVtep() != "10.0.0.2" {
		t.Errorf("drift %v", d)
	}
	w, err := c.Watch(ctxT(t), &evpndv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := w.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.GetVrfRoute().GetRoute(); got.GetVrf() != "red" || got.GetPrefix() != "10.9.0.0/16" || ev.GetKind() != evpndv1.ChangeKind_CHANGE_KIND_REMOVED {
		t.Errorf("watch event %v", ev)
	}
	if ev, err = w.Recv(); err != nil {
		t.Fatal(err)
	}
	checkProto(t, "ARP watch event", &evpndv1.WatchResponse{Kind: ev.GetKind(), Change: ev.GetChange()}, &evpndv1.WatchResponse{
		Kind: evpndv1.ChangeKind_CHANGE_KIND_ADDED, Change: &evpndv1.WatchResponse_Arp{Arp: &evpndv1.ARPChange{Entry: &evpndv1.ARPEntry{
			Vni: 100, Ip: "192.168.100.1", Mac: "02:00:00:00:00:01", Local: true, Seq: 2, Vrf: "red", State: evpndv1.ARPState_ARP_STATE_ACTIVE}}}})
}
