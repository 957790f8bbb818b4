package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/evpnd/evpnd/configs"
	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

func TestWatch(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	mac := MAC{VNI: 100, MAC: mustMAC(t, "02:00:00:00:01:0b"), VTEP: ip("10.0.0.2"), Seq: 1}
	changes := []Change{
		{Time: t0, Kind: ChangeAdded, Initial: true, MAC: &MACChange{MAC: mac}},
		{Time: t0, Kind: ChangeAdded, Initial: true, VTEP: &VTEPChange{VNI: 100, VTEP: ip("10.0.0.3")}},
		{Time: t0, Kind: ChangeUp, Initial: true, Peer: &PeerChange{Address: ip("10.1.1.0"), State: PeerEstablished}},
		{Time: t0, Kind: ChangeSynced, Initial: true},
		{Time: t0.Add(time.Second), Kind: ChangeMoved, MAC: &MACChange{MAC: mac, PreviousLocal: true}},
		{Time: t0.Add(2 * time.Second), Kind: ChangeMoved, MAC: &MACChange{MAC: mac, PreviousVTEP: ip("10.0.0.3")}},
		{Time: t0.Add(3 * time.Second), Kind: ChangeDuplicate, MAC: &MACChange{MAC: mac}},
		{Time: t0.Add(4 * time.Second), Kind: ChangeRemoved, VTEP: &VTEPChange{VNI: 100, VTEP: ip("10.0.0.3")}},
		{Time: t0.Add(5 * time.Second), Kind: ChangeDown, Peer: &PeerChange{Address: ip("10.1.1.0"), State: PeerIdle}},
	}
	fb := &fakeBackend{watch: func(ctx context.Context, fn func(Change) error) error {
		for _, c := range changes {
			if err := fn(c); err != nil {
				return err
			}
		}
		return ErrSlowConsumer
	}}
	c, _ := serveUnix(t, fb)
	st, err := c.Watch(ctxT(t), &evpndv1.WatchRequest{InitialState: true})
	if err != nil {
		t.Fatal(err)
	}
	pmac := &evpndv1.MAC{Vni: 100, Mac: "02:00:00:00:01:0b", Source: evpndv1.MACSource_MAC_SOURCE_REMOTE, Vtep: "10.0.0.2", Seq: 1}
	ts := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(t0.Add(d)) }
	want := []*evpndv1.WatchResponse{
		{Time: ts(0), Kind: evpndv1.ChangeKind_CHANGE_KIND_ADDED, Initial: true, Change: &evpndv1.WatchResponse_Mac{Mac: &evpndv1.MACChange{Mac: pmac}}},
		{Time: ts(0), Kind: evpndv1.ChangeKind_CHANGE_KIND_ADDED, Initial: true, Change: &evpndv1.WatchResponse_Vtep{Vtep: &evpndv1.VTEPChange{Vni: 100, Vtep: "10.0.0.3"}}},
		{Time: ts(0), Kind: evpndv1.ChangeKind_CHANGE_KIND_UP, Initial: true, Change: &evpndv1.WatchResponse_Peer{Peer: &evpndv1.PeerChange{Address: "10.1.1.0", State: evpndv1.PeerState_PEER_STATE_ESTABLISHED}}},
		{Time: ts(0), Kind: evpndv1.ChangeKind_CHANGE_KIND_SYNCED, Initial: true},
		{Time: ts(time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_MOVED, Change: &evpndv1.WatchResponse_Mac{Mac: &evpndv1.MACChange{Mac: pmac, Previous: "local"}}},
		{Time: ts(2 * time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_MOVED, Change: &evpndv1.WatchResponse_Mac{Mac: &evpndv1.MACChange{Mac: pmac, Previous: "10.0.0.3"}}},
		{Time: ts(3 * time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_DUPLICATE, Change: &evpndv1.WatchResponse_Mac{Mac: &evpndv1.MACChange{Mac: pmac}}},
		{Time: ts(4 * time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_REMOVED, Change: &evpndv1.WatchResponse_Vtep{Vtep: &evpndv1.VTEPChange{Vni: 100, Vtep: "10.0.0.3"}}},
		{Time: ts(5 * time.Second), Kind: evpndv1.ChangeKind_CHANGE_KIND_DOWN, Change: &evpndv1.WatchResponse_Peer{Peer: &evpndv1.PeerChange{Address: "10.1.1.0", State: evpndv1.PeerState_PEER_STATE_IDLE}}},
	}
	for i, w := range want {
		got, err := st.Recv()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		checkProto(t, fmt.Sprintf("event %d", i), got, w)
	}
	_, err = st.Recv()
	wantCode(t, err, codes.ResourceExhausted, "watch again")

	fb.mu.Lock()
	initial := fb.watchInitial
	fb.mu.Unlock()
	if !initial {
		t.Error("backend Watch got initial=false for initial_state=true")
	}
}

// TestWatchClientGone checks that a client cancelling its Watch ends the
// backend's Watch.
func TestWatchClientGone(t *testing.T) {
	ended := make(chan error, 1)
	fb := &fakeBackend{watch: func(ctx context.Context, fn func(Change) error) error {
		if err := fn(Change{Kind: ChangeSynced}); err != nil {
			return err
		}
		<-ctx.Done()
		ended <- ctx.Err()
		return ctx.Err()
	}}
	c, _ := serveUnix(t, fb)
	ctx, cancel := context.WithCancel(ctxT(t))
	st, err := c.Watch(ctx, &evpndv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-ended:
	case <-ctxT(t).Done():
		t.Fatal("backend Watch still running after the client cancelled")
	}
}

func TestCheck(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fb := &fakeBackend{check: CheckReport{
		Drifts: []Drift{
			{Kind: DriftMissing, VNI: 100, Table: "mac", MAC: mustMAC(t, "02:00:00:00:01:0b"), WantVTEP: ip("10.0.0.2"), Device: "vxlan100", Detail: "bridge fdb show dev vxlan100 | grep 02:00:00:00:01:0b"},
			{Kind: DriftWrong, VNI: 100, Table: "mac", MAC: mustMAC(t, "02:00:00:00:01:0c"), WantVTEP: ip("10.0.0.2"), KernelVTEP: ip("10.0.0.3")},
			{Kind: DriftExtra, VNI: 100, Table: "flood", KernelVTEP: ip("10.0.0.9"), Device: "vxlan100"},
		},
		CheckedMACs: 12, CheckedFloods: 3, Time: t0, InFlight: 2,
	}}
	c, _ := serveUnix(t, fb)
	got, err := c.Check(ctxT(t), &evpndv1.CheckRequest{Vni: 100})
	if err != nil {
		t.Fatal(err)
	}
	checkProto(t, "Check", got, &evpndv1.CheckResponse{
		Drifts: []*evpndv1.Drift{
			{Kind: evpndv1.DriftKind_DRIFT_KIND_MISSING, Vni: 100, Table: "mac", Mac: "02:00:00:00:01:0b", WantVtep: "10.0.0.2", Device: "vxlan100", Detail: "bridge fdb show dev vxlan100 | grep 02:00:00:00:01:0b"},
			{Kind: evpndv1.DriftKind_DRIFT_KIND_WRONG, Vni: 100, Table: "mac", Mac: "02:00:00:00:01:0c", WantVtep: "10.0.0.2", KernelVtep: "10.0.0.3"},
			{Kind: evpndv1.DriftKind_DRIFT_KIND_EXTRA, Vni: 100, Table: "flood", KernelVtep: "10.0.0.9", Device: "vxlan100"},
		},
		CheckedMacs: 12, CheckedFloods: 3, Time: timestamppb.New(t0), InFlight: 2,
	})
	fb.mu.Lock()
	vni := fb.checkVNI
	fb.mu.Unlock()
	if vni != 100 {
		t.Errorf("backend Check got vni %d, want 100", vni)
	}
}

func TestTrace(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	mac := mustMAC(t, "02:00:00:00:01:0b")
	fb := &fakeBackend{trace: []TraceKey{{
		VNI: 100, MAC: mac, Truncated: true,
		Events: []TraceEvent{
			{Time: t0, Kind: TraceLocalLearned, Local: true, VTEP: ip("10.0.0.1"), Detail: "port eth1"},
			{Time: t0.Add(time.Second), Kind: TraceRouteReceived, Peer: ip("10.1.1.0"), VTEP: ip("10.0.0.2"), Seq: 1, RD: mustRD(t, "10.0.0.2:100"), HasRD: true},
			{Time: t0.Add(2 * time.Second), Kind: TraceKernelError, VTEP: ip("10.0.0.2"), Detail: "no such device"},
		},
	}, {VNI: 200, MAC: mac}}}
	c, _ := serveUnix(t, fb)
	got, err := c.Trace(ctxT(t), &evpndv1.TraceRequest{Mac: "02:00:00:00:01:0B"})
	if err != nil {
		t.Fatal(err)
	}
	checkProto(t, "Trace", got, &evpndv1.TraceResponse{Keys: []*evpndv1.TraceKey{{
		Vni: 100, Mac: "02:00:00:00:01:0b", Truncated: true,
		Events: []*evpndv1.TraceEvent{
			{Time: timestamppb.New(t0), Kind: evpndv1.TraceKind_TRACE_KIND_LOCAL_LEARNED, Vtep: "local", Detail: "port eth1"},
			{Time: timestamppb.New(t0.Add(time.Second)), Kind: evpndv1.TraceKind_TRACE_KIND_ROUTE_RECEIVED, Peer: "10.1.1.0", Vtep: "10.0.0.2", Seq: 1, Rd: "10.0.0.2:100"},
			{Time: timestamppb.New(t0.Add(2 * time.Second)), Kind: evpndv1.TraceKind_TRACE_KIND_KERNEL_ERROR, Vtep: "10.0.0.2", Detail: "no such device"},
		},
	}, {Vni: 200, Mac: "02:00:00:00:01:0b", Events: []*evpndv1.TraceEvent{}}}})
	fb.mu.Lock()
	vni, gotMAC := fb.traceVNI, fb.traceMAC
	fb.mu.Unlock()
	if vni != 0 || gotMAC != mac {
		t.Errorf("backend Trace got vni %d mac %s, want 0 and %s", vni, gotMAC, mac)
	}
}

func TestTraceKinds(t *testing.T) {
	// Every TraceKind has a proto kind of the same name.
	names := map[TraceKind]string{
		TraceLocalLearned: "LOCAL_LEARNED", TraceLocalRemoved: "LOCAL_REMOVED", TraceAdvertised: "ADVERTISED",
		TraceWithdrawn: "WITHDRAWN", TraceRouteReceived: "ROUTE_RECEIVED", TraceRouteWithdrawn: "ROUTE_WITHDRAWN",
		TraceSelected: "SELECTED", TraceRejected: "REJECTED", TraceKernelWritten: "KERNEL_WRITTEN",
		TraceKernelRemoved: "KERNEL_REMOVED", TraceKernelError: "KERNEL_ERROR", TraceDuplicate: "DUPLICATE",
	}
	for k, name := range names {
		if got := traceKinds[k].String(); got != "TRACE_KIND_"+name {
			t.Errorf("TraceKind %d maps to %s, want TRACE_KIND_%s", k, got, name)
		}
	}
	if len(traceKinds) != len(names) {
		t.Errorf("traceKinds has %d kinds, want %d", len(traceKinds), len(names))
	}
}

func TestAddVNI(t *testing.T) {
	fb := &fakeBackend{addVNI: func(v configs.L2VNI) (VNI, error) {
		return VNI{VNI: v.VNI, VXLAN: v.VXLANDevice, Bridge: v.Bridge, RD: mustRD(t, v.RD), UDPPort: v.UDPPort}, nil
	}}
	c, _ := serveUnix(t, fb)
	got, err := c.AddVNI(ctxT(t), &evpndv1.AddVNIRequest{Vni: &evpndv1.L2VNISpec{
		Vni: 300, VxlanDevice: "vx300", Bridge: "br300", AccessInterfaces: []string{"eth3", "eth4"},
		Rd: "10.0.0.1:300", ImportRts: []string{"65000:300", "65000:301"}, ExportRts: []string{"65000:300"},
		UdpPort: 4790, Mtu: 9000,
	}})
	if err != nil {
		t.Fatal(err)
	}
	checkProto(t, "AddVNI", got, &evpndv1.AddVNIResponse{Vni: &evpndv1.VNI{
		Vni: 300, VxlanDevice: "vx300", Bridge: "br300", Rd: "10.0.0.1:300", UdpPort: 4790,
	}})
	fb.mu.Lock()
	added := fb.added
	fb.mu.Unlock()
	want := []configs.L2VNI{{
		VNI: 300, VXLANDevice: "vx300", Bridge: "br300", AccessInterfaces: []string{"eth3", "eth4"},
		RD: "10.0.0.1:300", ImportRTs: []string{"65000:300", "65000:301"}, ExportRTs: []string{"65000:300"},
		UDPPort: 4790, MTU: 9000,
	}}
	if !reflect.DeepEqual(added, want) {
		t.Errorf("backend AddVNI got %+v\nwant %+v", added, want)
	}

	// Empty fields stay empty: the backend applies the config defaults.
	fb.mu.Lock()
	fb.added = nil
	fb.addVNI = func(v configs.L2VNI) (VNI, error) { return VNI{VNI: v.VNI}, nil }
	fb.mu.Unlock()
	if _, err := c.AddVNI(ctxT(t), &evpndv1.AddVNIRequest{Vni: &evpndv1.L2VNISpec{Vni: 7}}); err != nil {
		t.Fatal(err)
	}
	fb.mu.Lock()
	added = fb.added
	fb.mu.Unlock()
	if !reflect.DeepEqual(added, []configs.L2VNI{{VNI: 7}}) {
		t.Errorf("backend AddVNI got %+v, want only vni 7", added)
	}
}

func TestAddVNIErrors(t *testing.T) {
	fb := &fakeBackend{}
	c, _ := serveUnix(t, fb)
	ctx := ctxT(t)

	// Rejected before the backend.
	_, err := c.AddVNI(ctx, &evpndv1.AddVNIRequest{})
	wantCode(t, err, codes.InvalidArgument, "vni: missing")
	_, err = c.AddVNI(ctx, &evpndv1.AddVNIRequest{Vni: &evpndv1.L2VNISpec{VxlanDevice: "vx1"}})
	wantCode(t, err, codes.InvalidArgument, "vni.vni: 0 is not a VNI (want 1-16777215)")
	_, err = c.AddVNI(ctx, &evpndv1.AddVNIRequest{Vni: &evpndv1.L2VNISpec{Vni: 1 << 24}})
	wantCode(t, err, codes.InvalidArgument, "vni.vni: 16777216 is not a VNI")
	if n := fb.totalCalls(); n != 0 {
		t.Fatalf("rejected AddVNI requests reached the backend (%d calls)", n)
	}

	// The backend's validation, in the request's terms.
	fb.mu.Lock()
	fb.addVNI = func(configs.L2VNI) (VNI, error) {
		return VNI{}, fmt.Errorf("add vni: %w", &configs.ValidationError{Problems: []configs.Problem{
			{Path: "router-id", Reason: "missing: set router-id"},
			{Path: "l2vnis[2].vxlan-device", Line: 12, Value: `"vx/1"`, Reason: "invalid character"},
			{Path: "l2vnis[2].import-rts[1]", Value: `"x"`, Reason: "invalid route target"},
			{Path: "l2vnis[2].access-interfaces[0]", Value: `"eth1"`, Reason: "already used by l2vnis[0].access-interfaces[0]"},
			{Path: "l2vnis[2]", Reason: "whole entry"},
		}})
	}
	fb.mu.Unlock()
	_, err = c.AddVNI(ctx, &evpndv1.AddVNIRequest{Vni: &evpndv1.L2VNISpec{Vni: 5, VxlanDevice: "vx/1"}})
	wantCode(t, err, codes.InvalidArgument,
		"router-id: missing: set router-id",
		`vni.vxlan_device: "vx/1": invalid character`,
		`vni.import_rts[1]: "x": invalid route target`,
		`vni.access_interfaces[0]: "eth1": already used`,
		"vni: whole entry")
	if st := status.Convert(err); strings.Contains(st.Message(), "l2vnis[2]") || strings.Contains(st.Message(), "line 12") {
		t.Errorf("message %q speaks of the config file, not the request", st.Message())
	}

	for _, tc := range []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{ErrNotLeaf, codes.FailedPrecondition, "add vni 5: not available on a route reflector"},
		{errors.New("vxlan5: file exists"), codes.FailedPrecondition, "vxlan5: file exists"},
		{context.DeadlineExceeded, codes.DeadlineExceeded, "deadline"},
	} {
		fb.mu.Lock()
		fb.addVNI = func(configs.L2VNI) (VNI, error) { return VNI{}, tc.err }
		fb.mu.Unlock()
		_, err = c.AddVNI(ctx, &evpndv1.AddVNIRequest{Vni: &evpndv1.L2VNISpec{Vni: 5}})
		wantCode(t, err, tc.code, tc.msg)
	}
}

func TestDeleteVNI(t *testing.T) {
	fb := &fakeBackend{}
	c, _ := serveUnix(t, fb)
	ctx := ctxT(t)
	if _, err := c.DeleteVNI(ctx, &evpndv1.DeleteVNIRequest{Vni: 100}); err != nil {
		t.Fatal(err)
	}
	fb.mu.Lock()
	deleted := fb.deleted
	fb.mu.Unlock()
	if !reflect.DeepEqual(deleted, []uint32{100}) {
		t.Errorf("backend DeleteVNI got %v, want [100]", deleted)
	}

	for _, tc := range []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{ErrNotFound, codes.NotFound, "delete vni 100: not found"},
		{fmt.Errorf("vni 100 is not configured: %w", ErrNotFound), codes.NotFound, "vni 100 is not configured: not found"},
		{errors.New("vni 100 is in the config file; remove it there"), codes.FailedPrecondition, "remove it there"},
	} {
		fb.mu.Lock()
		fb.deleteErr = tc.err
		fb.mu.Unlock()
		_, err := c.DeleteVNI(ctx, &evpndv1.DeleteVNIRequest{Vni: 100})
		wantCode(t, err, tc.code, tc.msg)
	}
}

func TestClearDuplicate(t *testing.T) {
	fb := &fakeBackend{clearN: 3}
	c, _ := serveUnix(t, fb)
	ctx := ctxT(t)
	got, err := c.ClearDuplicate(ctx, &evpndv1.ClearDuplicateRequest{Vni: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetCleared() != 3 {
		t.Errorf("cleared %d, want 3", got.GetCleared())
	}
	fb.mu.Lock()
	vni, mac := fb.clearVNI, fb.clearMAC
	fb.mu.Unlock()
	if vni != 100 || mac != nil {
		t.Errorf("backend got vni %d mac %v, want 100 and nil (every MAC)", vni, mac)
	}

	if _, err := c.ClearDuplicate(ctx, &evpndv1.ClearDuplicateRequest{Vni: 100, Mac: "02:00:00:00:01:0b"}); err != nil {
		t.Fatal(err)
	}
	fb.mu.Lock()
	mac = fb.clearMAC
	fb.mu.Unlock()
	if mac == nil || *mac != mustMAC(t, "02:00:00:00:01:0b") {
		t.Errorf("backend got mac %v, want 02:00:00:00:01:0b", mac)
	}

	fb.mu.Lock()
	fb.clearErr = fmt.Errorf("vni 100: %w", ErrNotFound)
	fb.mu.Unlock()
	_, err = c.ClearDuplicate(ctx, &evpndv1.ClearDuplicateRequest{Vni: 100})
	wantCode(t, err, codes.NotFound, "vni 100")
}

// TestInvalidArguments checks that every bad request fails with
// INVALID_ARGUMENT naming the field, before it reaches the backend.
func TestInvalidArguments(t *testing.T) {
	fb := &fakeBackend{}
	c, _ := serveUnix(t, fb)
	ctx := ctxT(t)
	macs := func(req *evpndv1.ListMACsRequest) error {
		st, err := c.ListMACs(ctx, req)
		if err != nil {
			return err
		}
		_, err = st.Recv()
		return err
	}
	routes := func(req *evpndv1.ListRoutesRequest) error {
		st, err := c.ListRoutes(ctx, req)
		if err != nil {
			return err
		}
		_, err = st.Recv()
		return err
	}
	for _, tc := range []struct {
		name string
		call func() error
		msg  string
	}{
		{"GetVNI 0", func() error { _, err := c.GetVNI(ctx, &evpndv1.GetVNIRequest{}); return err },
			"vni: 0 is not a VNI (want 1-16777215)"},
		{"GetVNI too big", func() error { _, err := c.GetVNI(ctx, &evpndv1.GetVNIRequest{Vni: 1 << 24}); return err },
			"vni: 16777216 is not a VNI (want 1-16777215)"},
		{"DeleteVNI 0", func() error { _, err := c.DeleteVNI(ctx, &evpndv1.DeleteVNIRequest{}); return err },
			"vni: 0 is not a VNI"},
		{"ClearDuplicate 0", func() error {
			_, err := c.ClearDuplicate(ctx, &evpndv1.ClearDuplicateRequest{Mac: "02:00:00:00:00:01"})
			return err
		}, "vni: 0 is not a VNI"},
		{"ClearDuplicate mac", func() error {
			_, err := c.ClearDuplicate(ctx, &evpndv1.ClearDuplicateRequest{Vni: 100, Mac: "zz"})
			return err
		}, `mac: "zz" is not a MAC address (want e.g. 02:00:00:00:00:01)`},
		{"ListMACs mac", func() error { return macs(&evpndv1.ListMACsRequest{Mac: "02:00:00:00:00"}) },
			`mac: "02:00:00:00:00" is not a MAC address`},
		{"ListMACs vni", func() error { return macs(&evpndv1.ListMACsRequest{Vni: 1 << 24}) },
			"vni: 16777216 is not a VNI (want 1-16777215, or 0 for every VNI)"},
		{"ListMACs source", func() error { return macs(&evpndv1.ListMACsRequest{Source: 9}) },
			"source: 9 is not a MAC source"},
		{"ListRoutes type", func() error { return routes(&evpndv1.ListRoutesRequest{RouteType: 4}) },
			"route_type: 4 is not supported (want 2, 3 or 5"},
		{"ListRoutes rd", func() error { return routes(&evpndv1.ListRoutesRequest{Rd: "10.0.0.1"}) },
			`rd: "10.0.0.1" is not a route distinguisher (want ASN:N or A.B.C.D:N`},
		{"ListRoutes vni", func() error { return routes(&evpndv1.ListRoutesRequest{Vni: 1 << 30}) },
			"vni: 1073741824 is not a VNI"},
		{"Check vni", func() error { _, err := c.Check(ctx, &evpndv1.CheckRequest{Vni: 1 << 24}); return err },
			"vni: 16777216 is not a VNI"},
		{"Trace no mac", func() error { _, err := c.Trace(ctx, &evpndv1.TraceRequest{Vni: 100}); return err },
			"mac: missing"},
		{"Trace bad mac", func() error { _, err := c.Trace(ctx, &evpndv1.TraceRequest{Mac: "02-00"}); return err },
			`mac: "02-00" is not a MAC address`},
		{"Trace vni", func() error {
			_, err := c.Trace(ctx, &evpndv1.TraceRequest{Vni: 1 << 24, Mac: "02:00:00:00:00:01"})
			return err
		}, "vni: 16777216 is not a VNI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.call(), codes.InvalidArgument, tc.msg)
		})
	}
	if n := fb.totalCalls(); n != 0 {
		t.Errorf("invalid requests reached the backend (%d calls)", n)
	}
}

func TestErrorCodes(t *testing.T) {
	fb := &fakeBackend{}
	c, _ := serveUnix(t, fb)
	for _, tc := range []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{errors.New("speaker: boom"), codes.Internal, "speaker: boom"},
		{fmt.Errorf("status: %w", context.Canceled), codes.Canceled, "status: context canceled"},
		{context.DeadlineExceeded, codes.DeadlineExceeded, "deadline exceeded"},
		{fmt.Errorf("x: %w", ErrNotLeaf), codes.FailedPrecondition, "route reflector"},
		{ErrNotFound, codes.NotFound, "not found"},
	} {
		fb.mu.Lock()
		fb.statusErr = tc.err
		fb.mu.Unlock()
		_, err := c.GetStatus(ctxT(t), &evpndv1.GetStatusRequest{})
		wantCode(t, err, tc.code, tc.msg)
	}
}

// TestPanic checks that a panicking handler fails its call and the server
// lives on.
func TestPanic(t *testing.T) {
	fb := &fakeBackend{panicking: true}
	c, _ := serveUnix(t, fb)
	_, err := c.GetStatus(ctxT(t), &evpndv1.GetStatusRequest{})
	wantCode(t, err, codes.Internal, "GetStatus", "fake backend panics")
	fb.mu.Lock()
	fb.panicking = false
	fb.mu.Unlock()
	if _, err := c.GetStatus(ctxT(t), &evpndv1.GetStatusRequest{}); err != nil {
		t.Fatalf("after a panic: %v", err)
	}
}

func TestRequestPath(t *testing.T) {
	for in, want := range map[string]string{
		"l2vnis[2].vxlan-device":     "vni.vxlan_device",
		"l2vnis[0].import-rts[3]":    "vni.import_rts[3]",
		"l2vnis[12]":                 "vni",
		"l2vnis":                     "l2vnis",
		"router-id":                  "router-id",
		"neighbors[0].address":       "neighbors[0].address",
		"l2vnis[x].vni":              "l2vnis[x].vni",
		"graceful-restart.eor-timer": "graceful-restart.eor-timer",
	} {
		if got := requestPath(in); got != want {
			t.Errorf("requestPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// lockedBuffer is a bytes.Buffer a logger writes to from the server's
// goroutines while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRefusedChangesLogged: a refused vni add (or del, or clear) leaves a
// line in evpnd's log with the VNI, the code and the reason, as an
// accepted one does.
func TestRefusedChangesLogged(t *testing.T) {
	var logs lockedBuffer
	fb := &fakeBackend{deleteErr: ErrNotFound}
	fb.addVNI = func(configs.L2VNI) (VNI, error) {
		return VNI{}, &configs.ValidationError{Problems: []configs.Problem{
			{Path: "l2vnis[2].bridge", Value: `"br100"`, Reason: "is already used by l2vnis[0].bridge"},
		}}
	}
	s := NewServer(fb, slog.New(slog.NewTextHandler(&logs, nil)))
	path := filepath.Join(t.TempDir(), "api.sock")
	if err := s.Listen(ListenConfig{Socket: path}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	c := dialUnix(t, path)

	c.AddVNI(ctxT(t), &evpndv1.AddVNIRequest{Vni: &evpndv1.L2VNISpec{Vni: 1 << 24}})
	c.AddVNI(ctxT(t), &evpndv1.AddVNIRequest{Vni: &evpndv1.L2VNISpec{Vni: 300, Bridge: "br100"}})
	c.DeleteVNI(ctxT(t), &evpndv1.DeleteVNIRequest{Vni: 400})
	for _, want := range []string{
		`msg="API call refused" method=AddVNI vni=16777216 code=InvalidArgument err="vni.vni: 16777216 is not a VNI`,
		`msg="API call refused" method=AddVNI vni=300 code=InvalidArgument err="vni.bridge: \"br100\": is already used by l2vnis[0].bridge"`,
		`msg="API call refused" method=DeleteVNI vni=400 code=NotFound`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}

// TestSpecProblemsCapped: an AddVNI refusal lists at most
// configs.MaxProblemsShown problems and counts the rest.
func TestSpecProblemsCapped(t *testing.T) {
	ve := &configs.ValidationError{Omitted: 5}
	for i := range 60 {
		ve.Problems = append(ve.Problems, configs.Problem{Path: fmt.Sprintf("l2vnis[3].access-interfaces[%d]", i), Reason: "taken"})
	}
	msg := specProblems(ve)
	parts := strings.Split(msg, "; ")
	if len(parts) != configs.MaxProblemsShown+1 || parts[len(parts)-1] != "and 15 more problems" || parts[0] != "vni.access_interfaces[0]: taken" {
		t.Errorf("%d parts, first %q, last %q", len(parts), parts[0], parts[len(parts)-1])
	}
}

// Reload returns the backend's result; a refused file maps to
// INVALID_ARGUMENT with every problem, other refusals to
// FAILED_PRECONDITION; and Reload is a mutating call.
func TestReload(t *testing.T) {
	fb := &fakeBackend{reload: ReloadResult{File: "/etc/evpnd/evpnd.yaml", Applied: []string{"l2vni 300 added"},
		RestartNeeded: []string{"router-id: 10.0.0.1 -> 10.0.0.9"}, Failed: []string{"neighbor 10.0.0.7: add: x"}}}
	c, _ := serveUnix(t, fb)
	ctx := ctxT(t)
	got, err := c.Reload(ctx, &evpndv1.ReloadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetConfigFile() != "/etc/evpnd/evpnd.yaml" || !slices.Equal(got.GetApplied(), fb.reload.Applied) ||
		!slices.Equal(got.GetRestartNeeded(), fb.reload.RestartNeeded) || !slices.Equal(got.GetFailed(), fb.reload.Failed) {
		t.Errorf("Reload = %v, want %+v", got, fb.reload)
	}
	for _, tc := range []struct {
		err  error
		code codes.Code
		msg  []string
	}{
		{fmt.Errorf("%w: %w", ErrConfigRefused, &configs.ValidationError{Source: "/etc/evpnd/evpnd.yaml", Problems: []configs.Problem{
			{Path: "l2vnis[1].vni", Value: "0", Reason: "must be 1-16777215"},
			{Path: "asn", Value: "0", Reason: "must be 1-4294967295"},
		}}), codes.InvalidArgument, []string{"nothing changed", "2 problems", "l2vnis[1].vni", "asn"}},
		{fmt.Errorf("%w: %w", ErrConfigRefused, errors.New("open /etc/evpnd/evpnd.yaml: no such file or directory")),
			codes.FailedPrecondition, []string{"nothing changed", "no such file"}},
		{ErrUnavailable, codes.Unavailable, nil},
	} {
		fb.mu.Lock()
		fb.reloadErr = tc.err
		fb.mu.Unlock()
		_, err := c.Reload(ctx, &evpndv1.ReloadRequest{})
		wantCode(t, err, tc.code, tc.msg...)
	}
	if IsReadOnly(evpndv1.EvpndService_Reload_FullMethodName) {
		t.Error("Reload is listed as read-only")
	}
}

// One Watch stream too many is RESOURCE_EXHAUSTED, saying what to do.
func TestWatchTooMany(t *testing.T) {
	fb := &fakeBackend{watch: func(ctx context.Context, fn func(Change) error) error { return ErrTooManyWatchers }}
	c, _ := serveUnix(t, fb)
	st, err := c.Watch(ctxT(t), &evpndv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Recv()
	wantCode(t, err, codes.ResourceExhausted, "too many watch streams", "close one")
}
