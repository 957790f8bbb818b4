package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/evpnd/evpnd/containerlab/poll"
	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// fakeServer is an in-process EvpndService serving the fixtures, for pure
// unit tests of the CLI. It records every request.
type fakeServer struct {
	evpndv1.UnimplementedEvpndServiceServer

	pageSize int
	// reload is Reload's answer; nil = fixtureReload().
	reload *evpndv1.ReloadResponse
	// macs is the MAC table; nil = fixtureMACs(). macCount with macGen
	// generates a large table on the fly instead.
	macs     []*evpndv1.MAC
	macCount int
	macGen   func(i int) *evpndv1.MAC
	check    *evpndv1.CheckResponse
	watch    []*evpndv1.WatchResponse
	// watchCutOnce makes the first Watch end with RESOURCE_EXHAUSTED after
	// sending its events, as evpnd does to a client that fell behind.
	watchCutOnce bool
	watchCalls   int
	// beforePage, if set, runs before each page but the first is sent.
	beforePage func(page int)
	// block makes unary calls and streams (after their first page) wait
	// until the client gives up, to test --timeout.
	block bool

	mu   sync.Mutex
	reqs []proto.Message
}

func (f *fakeServer) record(m proto.Message) {
	f.mu.Lock()
	f.reqs = append(f.reqs, proto.Clone(m))
	f.mu.Unlock()
}

// requests returns the requests received so far.
func (f *fakeServer) requests() []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

func (f *fakeServer) wait(ctx context.Context) error {
	if f.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (f *fakeServer) GetStatus(ctx context.Context, req *evpndv1.GetStatusRequest) (*evpndv1.GetStatusResponse, error) {
	f.record(req)
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	return fixtureStatus(), nil
}

func (f *fakeServer) Reload(ctx context.Context, req *evpndv1.ReloadRequest) (*evpndv1.ReloadResponse, error) {
	f.record(req)
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	if f.reload != nil {
		return f.reload, nil
	}
	return fixtureReload(), nil
}

func (f *fakeServer) ListVNIs(ctx context.Context, req *evpndv1.ListVNIsRequest) (*evpndv1.ListVNIsResponse, error) {
	f.record(req)
	return fixtureVNIs(), nil
}

func (f *fakeServer) GetVNI(ctx context.Context, req *evpndv1.GetVNIRequest) (*evpndv1.GetVNIResponse, error) {
	f.record(req)
	v, err := findVNI(req.GetVni())
	if err != nil {
		return nil, err
	}
	return &evpndv1.GetVNIResponse{Vni: v}, nil
}

func findVNI(vni uint32) (*evpndv1.VNI, error) {
	for _, v := range fixtureVNIs().GetVnis() {
		if v.GetVni() == vni {
			return v, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "VNI %d is not configured", vni)
}

func (f *fakeServer) AddVNI(ctx context.Context, req *evpndv1.AddVNIRequest) (*evpndv1.AddVNIResponse, error) {
	f.record(req)
	s := req.GetVni()
	if strings.Count(s.GetRd(), ":") != 1 && s.GetRd() != "" {
		return nil, status.Errorf(codes.InvalidArgument, "vni.rd: %q is not a route distinguisher (want IP:N or ASN:N)", s.GetRd())
	}
	return &evpndv1.AddVNIResponse{Vni: &evpndv1.VNI{
		Vni: s.GetVni(), VxlanDevice: s.GetVxlanDevice(), Bridge: s.GetBridge(), AccessInterfaces: s.GetAccessInterfaces(),
		Rd: s.GetRd(), ImportRts: s.GetImportRts(), ExportRts: s.GetExportRts(), UdpPort: s.GetUdpPort(), Mtu: s.GetMtu(),
		DevicesPresent: true,
	}}, nil
}

func (f *fakeServer) DeleteVNI(ctx context.Context, req *evpndv1.DeleteVNIRequest) (*evpndv1.DeleteVNIResponse, error) {
	f.record(req)
	if _, err := findVNI(req.GetVni()); err != nil {
		return nil, err
	}
	return &evpndv1.DeleteVNIResponse{}, nil
}

func (f *fakeServer) allMACs() (int, func(int) *evpndv1.MAC) {
	if f.macGen != nil {
		return f.macCount, f.macGen
	}
	macs := f.macs
	if macs == nil {
		macs = fixtureMACs()
	}
	return len(macs), func(i int) *evpndv1.MAC { return macs[i] }
}

func (f *fakeServer) ListMACs(req *evpndv1.ListMACsRequest, stream grpc.ServerStreamingServer[evpndv1.ListMACsResponse]) error {
	f.record(req)
	n, get := f.allMACs()
	var page []*evpndv1.MAC
	pages := 0
	send := func() error {
		if pages > 0 {
			if f.beforePage != nil {
				f.beforePage(pages)
			}
			if err := f.wait(stream.Context()); err != nil {
				return err
			}
		}
		pages++
		err := stream.Send(&evpndv1.ListMACsResponse{Macs: page})
		page = page[:0]
		return err
	}
	for i := range n {
		m := get(i)
		if req.GetVni() != 0 && m.GetVni() != req.GetVni() ||
			req.GetSource() != evpndv1.MACSource_MAC_SOURCE_UNSPECIFIED && m.GetSource() != req.GetSource() ||
			req.GetDuplicatesOnly() && !m.GetDuplicate() ||
			req.GetMac() != "" && m.GetMac() != req.GetMac() {
			continue
		}
		page = append(page, m)
		if len(page) == f.pageSize {
			if err := send(); err != nil {
				return err
			}
		}
	}
	if len(page) > 0 {
		return send()
	}
	return nil
}

func (f *fakeServer) ClearDuplicate(ctx context.Context, req *evpndv1.ClearDuplicateRequest) (*evpndv1.ClearDuplicateResponse, error) {
	f.record(req)
	var n uint32
	for _, m := range fixtureMACs() {
		if m.GetVni() == req.GetVni() && m.GetDuplicate() && (req.GetMac() == "" || req.GetMac() == m.GetMac()) {
			n++
		}
	}
	return &evpndv1.ClearDuplicateResponse{Cleared: n}, nil
}

func (f *fakeServer) ListRoutes(req *evpndv1.ListRoutesRequest, stream grpc.ServerStreamingServer[evpndv1.ListRoutesResponse]) error {
	f.record(req)
	var page []*evpndv1.Route
	for _, r := range fixtureRoutes() {
		if req.GetRouteType() != 0 && r.GetRouteType() != req.GetRouteType() ||
			req.GetVni() != 0 && r.GetVni() != req.GetVni() || req.GetRd() != "" && r.GetRd() != req.GetRd() {
			continue
		}
		page = append(page, r)
		if len(page) == f.pageSize {
			if err := stream.Send(&evpndv1.ListRoutesResponse{Routes: page}); err != nil {
				return err
			}
			page = nil
		}
	}
	if len(page) > 0 {
		return stream.Send(&evpndv1.ListRoutesResponse{Routes: page})
	}
	return nil
}

func (f *fakeServer) ListPeers(ctx context.Context, req *evpndv1.ListPeersRequest) (*evpndv1.ListPeersResponse, error) {
	f.record(req)
	return fixturePeers(), nil
}

// Watch sends f.watch, then waits for the client to go.
func (f *fakeServer) Watch(req *evpndv1.WatchRequest, stream grpc.ServerStreamingServer[evpndv1.WatchResponse]) error {
	f.record(req)
	f.mu.Lock()
	f.watchCalls++
	cut := f.watchCutOnce && f.watchCalls == 1
	f.mu.Unlock()
	for _, ev := range f.watch {
		if err := stream.Send(ev); err != nil {
			return err
		}
	}
	if cut {
		return status.Error(codes.ResourceExhausted, "watch client too slow: events were dropped; watch again")
	}
	<-stream.Context().Done()
	return nil
}

func (f *fakeServer) Check(ctx context.Context, req *evpndv1.CheckRequest) (*evpndv1.CheckResponse, error) {
	f.record(req)
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	if f.check != nil {
		return f.check, nil
	}
	return fixtureCheckDrift(), nil
}

func (f *fakeServer) Trace(ctx context.Context, req *evpndv1.TraceRequest) (*evpndv1.TraceResponse, error) {
	f.record(req)
	resp := &evpndv1.TraceResponse{}
	for _, k := range fixtureTrace().GetKeys() {
		if k.GetMac() == req.GetMac() && (req.GetVni() == 0 || req.GetVni() == k.GetVni()) {
			resp.Keys = append(resp.Keys, k)
		}
	}
	return resp, nil
}

// socketPath returns a fresh Unix socket path, short enough for
// sun_path (108 bytes) whatever the test's name.
func socketPath(t testing.TB) string {
	dir, err := os.MkdirTemp("", "evpnctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "evpnd.sock")
}

// serve runs f on lis until the test ends.
func serve(t testing.TB, f *fakeServer, lis net.Listener, opts ...grpc.ServerOption) {
	if f.pageSize == 0 {
		f.pageSize = 2
	}
	srv := grpc.NewServer(opts...)
	evpndv1.RegisterEvpndServiceServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
}

// startFake serves f on a Unix socket and returns its path.
func startFake(t testing.TB, f *fakeServer) string {
	t.Helper()
	path := socketPath(t)
	lis, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, f, lis)
	return path
}

// result is what one evpnctl command line did.
type result struct {
	stdout, stderr string
	code           int
}

// runCLI runs evpnctl in-process with args, printing times in UTC, and
// maps its error to an exit status as main does.
func runCLI(t testing.TB, ctx context.Context, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := runCLITo(ctx, &out, &errb, args...)
	if testing.Verbose() && errb.Len() > 0 {
		t.Logf("evpnctl %s: stderr: %s", strings.Join(args, " "), errb.String())
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func runCLITo(ctx context.Context, stdout, stderr io.Writer, args ...string) int {
	a := newApp(stdout, stderr)
	a.loc = time.UTC
	root := a.rootCmd()
	root.SetArgs(args)
	return exitCode(root.ExecuteContext(ctx), stderr)
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(t testing.TB, what string, cond func() bool) bool {
	t.Helper()
	if _, err := poll.Until(context.Background(), 10*time.Second, 5*time.Millisecond, poll.Bool(cond)); err != nil {
		t.Errorf("gave up waiting for %s: %v", what, err)
		return false
	}
	return true
}
