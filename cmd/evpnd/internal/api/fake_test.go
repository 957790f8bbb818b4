package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/evpnd/evpnd/configs"
	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// fakeBackend is a Backend with canned answers that records what it was
// asked. Every field is read under mu.
type fakeBackend struct {
	mu    sync.Mutex
	calls map[string]int

	peersAdvertised bool // the last Peers call asked for Advertised

	status    Status
	statusErr error
	vnis      []VNI
	vnisErr   error

	macs      []MAC
	macsErr   error
	macFilter MACFilter
	// macsGate, if set, is waited for before the row after the first page:
	// the test closes it once it received that page.
	macsGate chan struct{}

	routes      []RoutePath
	routeFilter RouteFilter

	peers []Peer

	watchInitial bool
	watch        func(ctx context.Context, fn func(Change) error) error

	added  []configs.L2VNI
	addVNI func(configs.L2VNI) (VNI, error)

	deleted   []uint32
	deleteErr error

	reload    ReloadResult
	reloadErr error

	clearVNI  uint32
	clearMAC  *evpn.MAC
	clearN    int
	clearErr  error
	checkVNI  uint32
	check     CheckReport
	traceVNI  uint32
	traceMAC  evpn.MAC
	trace     []TraceKey
	panicking bool
}

func (f *fakeBackend) called(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[name]++
}

// totalCalls is how many Backend methods were called.
func (f *fakeBackend) totalCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

func (f *fakeBackend) Status(context.Context) (Status, error) {
	f.called("Status")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicking {
		panic("fake backend panics")
	}
	return f.status, f.statusErr
}

func (f *fakeBackend) VNIs(context.Context) ([]VNI, error) {
	f.called("VNIs")
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vnis, f.vnisErr
}

func (f *fakeBackend) MACs(ctx context.Context, flt MACFilter, fn func(MAC) error) error {
	f.called("MACs")
	f.mu.Lock()
	f.macFilter = flt
	rows, gate, rerr := f.macs, f.macsGate, f.macsErr
	f.mu.Unlock()
	for i, m := range rows {
		if gate != nil && i == pageSize {
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return rerr
}

func (f *fakeBackend) ClearDuplicate(_ context.Context, vni uint32, mac *evpn.MAC) (int, error) {
	f.called("ClearDuplicate")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clearVNI, f.clearMAC = vni, mac
	return f.clearN, f.clearErr
}

func (f *fakeBackend) Routes(_ context.Context, flt RouteFilter, fn func(RoutePath) error) error {
	f.called("Routes")
	f.mu.Lock()
	f.routeFilter = flt
	rows := f.routes
	f.mu.Unlock()
	for _, r := range rows {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeBackend) Peers(_ context.Context, advertised bool) ([]Peer, error) {
	f.called("Peers")
	f.mu.Lock()
	f.peersAdvertised = advertised
	f.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peers, nil
}

func (f *fakeBackend) Watch(ctx context.Context, initial bool, fn func(Change) error) error {
	f.called("Watch")
	f.mu.Lock()
	f.watchInitial = initial
	w := f.watch
	f.mu.Unlock()
	if w == nil {
		<-ctx.Done()
		return ctx.Err()
	}
	return w(ctx, fn)
}

func (f *fakeBackend) AddVNI(_ context.Context, v configs.L2VNI) (VNI, error) {
	f.called("AddVNI")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.added = append(f.added, v)
	if f.addVNI == nil {
		return VNI{}, errors.New("fake: no addVNI")
	}
	return f.addVNI(v)
}

func (f *fakeBackend) DeleteVNI(_ context.Context, vni uint32) error {
	f.called("DeleteVNI")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, vni)
	return f.deleteErr
}

func (f *fakeBackend) Check(_ context.Context, vni uint32) (CheckReport, error) {
	f.called("Check")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checkVNI = vni
	return f.check, nil
}

func (f *fakeBackend) Trace(_ context.Context, vni uint32, mac evpn.MAC) ([]TraceKey, error) {
	f.called("Trace")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.traceVNI, f.traceMAC = vni, mac
	return f.trace, nil
}

func (f *fakeBackend) Reload(context.Context) (ReloadResult, error) {
	f.called("Reload")
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reload, f.reloadErr
}

var _ Backend = (*fakeBackend)(nil)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// serve runs a Server on cfg until the test ends and checks that Serve
// then returns nil.
func serve(t *testing.T, b Backend, cfg ListenConfig) *Server {
	t.Helper()
	s := NewServer(b, testLogger(t))
	if err := s.Listen(cfg); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

// serveUnix serves b on a Unix socket in a temporary directory and returns
// a client connected to it.
func serveUnix(t *testing.T, b Backend) (evpndv1.EvpndServiceClient, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "api.sock")
	serve(t, b, ListenConfig{Socket: path})
	return dialUnix(t, path), path
}

func dialUnix(t *testing.T, path string) evpndv1.EvpndServiceClient {
	t.Helper()
	return dial(t, "unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

func dial(t *testing.T, target string, opts ...grpc.DialOption) evpndv1.EvpndServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(target, opts...)
	if err != nil {
		t.Fatalf("grpc.NewClient(%s): %v", target, err)
	}
	t.Cleanup(func() { cc.Close() })
	return evpndv1.NewEvpndServiceClient(cc)
}

// tcpAddr is the bound TCP address of s.
func tcpAddr(t *testing.T, s *Server) string {
	t.Helper()
	for _, a := range s.Addrs() {
		if a.Network() == "tcp" {
			return a.(*net.TCPAddr).String()
		}
	}
	t.Fatalf("no TCP address in %v", s.Addrs())
	return ""
}
