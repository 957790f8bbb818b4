package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/evpnd/evpnd/configs"
	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// pageSize is the most rows one message of ListMACs or ListRoutes holds. A
// 1000-route page is a few hundred kilobytes, well below gRPC's default
// 4 MiB message limit, and a client never holds a whole table at once.
const pageSize = 1000

// Server is the gRPC server of EvpndService on top of a Backend. The
// daemon:
//
//  1. creates it with NewServer;
//  2. calls Listen at startup, so that a socket in use or a bad address
//     fails the start with a clear error (configs.Validate checks the
//     same rules earlier, for evpnd validate; CheckListen is the pure part
//     of Listen's checks);
//  3. runs Serve(ctx) beside its other loops; it returns when ctx ends,
//     after a bounded graceful stop, with the socket file removed;
//  4. calls Close instead if it fails before Serve runs.
type Server struct {
	evpndv1.UnimplementedEvpndServiceServer

	b   Backend
	log *slog.Logger

	// stop is closed when the server shuts down; it ends Watch streams,
	// which would otherwise hold GracefulStop until its deadline.
	stop     chan struct{}
	stopOnce sync.Once

	mu      sync.Mutex
	bound   []*binding
	serving bool
	closed  bool
	socket  *socketFile // nil without a Unix listener
}

var _ evpndv1.EvpndServiceServer = (*Server)(nil)

// NewServer returns a Server answering from b and logging to log (nil:
// discard).
func NewServer(b Backend, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{b: b, log: log, stop: make(chan struct{})}
}

// ---- request validation ----

// invalid is an INVALID_ARGUMENT error whose message starts with the
// request field at fault.
func invalid(field, format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, "%s: %s", field, fmt.Sprintf(format, args...))
}

// needVNI checks a required VNI field.
func needVNI(field string, v uint32) error {
	if v == 0 || v > configs.MaxVNI {
		return invalid(field, "%d is not a VNI (want 1-%d)", v, configs.MaxVNI)
	}
	return nil
}

// optVNI checks a VNI field where 0 means every VNI.
func optVNI(field string, v uint32) error {
	if v > configs.MaxVNI {
		return invalid(field, "%d is not a VNI (want 1-%d, or 0 for every VNI)", v, configs.MaxVNI)
	}
	return nil
}

// parseMAC parses a MAC field; "" yields nil.
func parseMAC(field, s string) (*evpn.MAC, error) {
	if s == "" {
		return nil, nil
	}
	m, err := evpn.ParseMAC(s)
	if err != nil {
		return nil, invalid(field, "%q is not a MAC address (want e.g. 02:00:00:00:00:01)", s)
	}
	return &m, nil
}

// ---- error mapping ----

// errorStatus maps a Backend error to a gRPC status. what names the
// operation for the bare sentinel errors ("vni 100"); change marks calls
// that change state, whose other errors are refusals (FAILED_PRECONDITION)
// rather than faults (INTERNAL).
func (s *Server) errorStatus(method, what string, err error, change bool) error {
	msg := err.Error()
	if what != "" && (err == ErrNotFound || err == ErrNotLeaf || err == ErrSlowConsumer) {
		msg = what + ": " + msg
	}
	var ve *configs.ValidationError
	switch {
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, msg)
	case errors.Is(err, ErrNotLeaf):
		return status.Error(codes.FailedPrecondition, msg)
	case errors.Is(err, ErrSlowConsumer), errors.Is(err, ErrTooManyWatchers):
		return status.Error(codes.ResourceExhausted, msg)
	case errors.Is(err, ErrUnavailable):
		return status.Error(codes.Unavailable, msg)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, msg)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, msg)
	case errors.As(err, &ve):
		return status.Error(codes.InvalidArgument, specProblems(ve))
	}
	if _, ok := status.FromError(err); ok {
		// Already a status: a failed Send, as the client went away.
		return err
	}
	if change {
		return status.Error(codes.FailedPrecondition, msg)
	}
	s.log.Warn("api call failed", "method", method, "err", err)
	return status.Error(codes.Internal, msg)
}

// specProblems words a validation error of an AddVNI request in terms of
// the request: the config file's key path of the added entry,
// "l2vnis[2].vxlan-device", becomes "vni.vxlan_device". Problems of the rest
// of the configuration keep their paths.
func specProblems(ve *configs.ValidationError) string {
	msgs := make([]string, 0, len(ve.Problems))
	for i, p := range ve.Problems {
		if i == configs.MaxProblemsShown {
			msgs = append(msgs, fmt.Sprintf("and %d more problems", len(ve.Problems)+ve.Omitted-i))
			break
		}
		p.Path = requestPath(p.Path)
		p.Line = 0 // a line of no file the client wrote
		msgs = append(msgs, p.Error())
	}
	if len(msgs) == 0 {
		return ve.Error()
	}
	return strings.Join(msgs, "; ")
}

// requestPath rewrites "l2vnis[N]<rest>" to "vni<rest>" in the request's
// snake_case; any other path is returned as it is.
func requestPath(path string) string {
	rest, ok := strings.CutPrefix(path, "l2vnis[")
	if !ok {
		return path
	}
	i := strings.IndexByte(rest, ']')
	if i < 0 {
		return path
	}
	if _, err := strconv.Atoi(rest[:i]); err != nil {
		return path
	}
	return "vni" + strings.ReplaceAll(rest[i+1:], "-", "_")
}

// ---- unary calls ----

// GetStatus implements EvpndService.GetStatus.
func (s *Server) GetStatus(ctx context.Context, _ *evpndv1.GetStatusRequest) (*evpndv1.GetStatusResponse, error) {
	st, err := s.b.Status(ctx)
	if err != nil {
		return nil, s.errorStatus("GetStatus", "", err, false)
	}
	return toStatus(st, time.Now()), nil
}

// ListVNIs implements EvpndService.ListVNIs.
func (s *Server) ListVNIs(ctx context.Context, _ *evpndv1.ListVNIsRequest) (*evpndv1.ListVNIsResponse, error) {
	vs, err := s.b.VNIs(ctx)
	if err != nil {
		return nil, s.errorStatus("ListVNIs", "", err, false)
	}
	out := &evpndv1.ListVNIsResponse{Vnis: make([]*evpndv1.VNI, len(vs))}
	for i, v := range vs {
		out.Vnis[i] = toVNI(v)
	}
	return out, nil
}

// GetVNI implements EvpndService.GetVNI.
func (s *Server) GetVNI(ctx context.Context, req *evpndv1.GetVNIRequest) (*evpndv1.GetVNIResponse, error) {
	if err := needVNI("vni", req.GetVni()); err != nil {
		return nil, err
	}
	vs, err := s.b.VNIs(ctx)
	if err != nil {
		return nil, s.errorStatus("GetVNI", fmt.Sprintf("vni %d", req.GetVni()), err, false)
	}
	for _, v := range vs {
		if v.VNI == req.GetVni() {
			return &evpndv1.GetVNIResponse{Vni: toVNI(v)}, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "vni %d is not configured; ListVNIs shows the configured ones", req.GetVni())
}

// Reload implements EvpndService.Reload.
func (s *Server) Reload(ctx context.Context, _ *evpndv1.ReloadRequest) (_ *evpndv1.ReloadResponse, err error) {
	defer s.logRefused(ctx, evpndv1.EvpndService_Reload_FullMethodName, &err)
	res, err := s.b.Reload(ctx)
	if err != nil {
		var ve *configs.ValidationError
		switch {
		case errors.As(err, &ve):
			return nil, status.Error(codes.InvalidArgument, err.Error())
		case errors.Is(err, ErrConfigRefused):
			return nil, status.Error(codes.FailedPrecondition, err.Error())
		}
		return nil, s.errorStatus("Reload", "reload", err, true)
	}
	return &evpndv1.ReloadResponse{ConfigFile: res.File, Applied: res.Applied,
		RestartNeeded: res.RestartNeeded, Failed: res.Failed}, nil
}

// AddVNI implements EvpndService.AddVNI.
func (s *Server) AddVNI(ctx context.Context, req *evpndv1.AddVNIRequest) (_ *evpndv1.AddVNIResponse, err error) {
	defer s.logRefused(ctx, evpndv1.EvpndService_AddVNI_FullMethodName, &err, "vni", req.GetVni().GetVni())
	spec := req.GetVni()
	if spec == nil {
		return nil, invalid("vni", "missing: set the L2VNI to add, at least vni.vni")
	}
	if err := needVNI("vni.vni", spec.GetVni()); err != nil {
		return nil, err
	}
	v, err := s.b.AddVNI(ctx, fromSpec(spec))
	if err != nil {
		return nil, s.errorStatus("AddVNI", fmt.Sprintf("add vni %d", spec.GetVni()), err, true)
	}
	s.log.Info("L2VNI added through the API; add it to the config file to keep it after a restart",
		"vni", v.VNI, "vxlan", v.VXLAN, "bridge", v.Bridge)
	return &evpndv1.AddVNIResponse{Vni: toVNI(v)}, nil
}

// DeleteVNI implements EvpndService.DeleteVNI.
func (s *Server) DeleteVNI(ctx context.Context, req *evpndv1.DeleteVNIRequest) (_ *evpndv1.DeleteVNIResponse, err error) {
	defer s.logRefused(ctx, evpndv1.EvpndService_DeleteVNI_FullMethodName, &err, "vni", req.GetVni())
	if err := needVNI("vni", req.GetVni()); err != nil {
		return nil, err
	}
	if err := s.b.DeleteVNI(ctx, req.GetVni()); err != nil {
		return nil, s.errorStatus("DeleteVNI", fmt.Sprintf("delete vni %d", req.GetVni()), err, true)
	}
	s.log.Info("L2VNI deleted through the API", "vni", req.GetVni())
	return &evpndv1.DeleteVNIResponse{}, nil
}

// ClearDuplicate implements EvpndService.ClearDuplicate.
func (s *Server) ClearDuplicate(ctx context.Context, req *evpndv1.ClearDuplicateRequest) (_ *evpndv1.ClearDuplicateResponse, err error) {
	defer s.logRefused(ctx, evpndv1.EvpndService_ClearDuplicate_FullMethodName, &err, "vni", req.GetVni(), "mac", req.GetMac())
	if err := needVNI("vni", req.GetVni()); err != nil {
		return nil, err
	}
	mac, err := parseMAC("mac", req.GetMac())
	if err != nil {
		return nil, err
	}
	n, err := s.b.ClearDuplicate(ctx, req.GetVni(), mac)
	if err != nil {
		return nil, s.errorStatus("ClearDuplicate", fmt.Sprintf("clear duplicate in vni %d", req.GetVni()), err, true)
	}
	if n > 0 {
		s.log.Info("duplicate MAC flag cleared through the API", "vni", req.GetVni(), "mac", req.GetMac(), "cleared", n)
	}
	return &evpndv1.ClearDuplicateResponse{Cleared: count(n)}, nil
}

// ListPeers implements EvpndService.ListPeers.
func (s *Server) ListPeers(ctx context.Context, req *evpndv1.ListPeersRequest) (*evpndv1.ListPeersResponse, error) {
	ps, err := s.b.Peers(ctx, req.GetWithAdvertised())
	if err != nil {
		return nil, s.errorStatus("ListPeers", "", err, false)
	}
	out := &evpndv1.ListPeersResponse{Peers: make([]*evpndv1.Peer, len(ps))}
	for i, p := range ps {
		out.Peers[i] = toPeer(p)
	}
	return out, nil
}

// Check implements EvpndService.Check.
func (s *Server) Check(ctx context.Context, req *evpndv1.CheckRequest) (*evpndv1.CheckResponse, error) {
	if err := optVNI("vni", req.GetVni()); err != nil {
		return nil, err
	}
	r, err := s.b.Check(ctx, req.GetVni())
	if err != nil {
		what := "check"
		if req.GetVni() != 0 {
			what = fmt.Sprintf("check vni %d", req.GetVni())
		}
		return nil, s.errorStatus("Check", what, err, false)
	}
	return toCheck(r), nil
}

// Trace implements EvpndService.Trace.
func (s *Server) Trace(ctx context.Context, req *evpndv1.TraceRequest) (*evpndv1.TraceResponse, error) {
	if err := optVNI("vni", req.GetVni()); err != nil {
		return nil, err
	}
	if req.GetMac() == "" {
		return nil, invalid("mac", "missing: set the MAC address to trace (e.g. 02:00:00:00:00:01)")
	}
	mac, err := parseMAC("mac", req.GetMac())
	if err != nil {
		return nil, err
	}
	keys, err := s.b.Trace(ctx, req.GetVni(), *mac)
	if err != nil {
		return nil, s.errorStatus("Trace", "trace "+mac.String(), err, false)
	}
	out := &evpndv1.TraceResponse{Keys: make([]*evpndv1.TraceKey, len(keys))}
	for i, k := range keys {
		out.Keys[i] = toTraceKey(k)
	}
	return out, nil
}

// ---- streams ----

// pager sends rows in messages of at most pageSize, as they come.
type pager[T any] struct {
	rows []T
	send func([]T) error
}

func (p *pager[T]) add(row T) error {
	if p.rows == nil {
		p.rows = make([]T, 0, pageSize)
	}
	p.rows = append(p.rows, row)
	if len(p.rows) == pageSize {
		return p.flush()
	}
	return nil
}

// flush sends the rows not sent yet. A fresh slice follows: gRPC may keep
// a sent message (stats handlers read it lazily).
func (p *pager[T]) flush() error {
	if len(p.rows) == 0 {
		return nil
	}
	rows := p.rows
	p.rows = nil
	return p.send(rows)
}

// ListMACs implements EvpndService.ListMACs. An empty table sends no
// message.
func (s *Server) ListMACs(req *evpndv1.ListMACsRequest, stream grpc.ServerStreamingServer[evpndv1.ListMACsResponse]) error {
	if err := optVNI("vni", req.GetVni()); err != nil {
		return err
	}
	f := MACFilter{VNI: req.GetVni(), DuplicatesOnly: req.GetDuplicatesOnly(), VerifyKernel: req.GetVerifyKernel()}
	switch req.GetSource() {
	case evpndv1.MACSource_MAC_SOURCE_UNSPECIFIED:
		f.Source = MACAny
	case evpndv1.MACSource_MAC_SOURCE_LOCAL:
		f.Source = MACLocal
	case evpndv1.MACSource_MAC_SOURCE_REMOTE:
		f.Source = MACRemote
	default:
		return invalid("source", "%d is not a MAC source (want MAC_SOURCE_LOCAL, MAC_SOURCE_REMOTE, or MAC_SOURCE_UNSPECIFIED for both)", req.GetSource())
	}
	mac, err := parseMAC("mac", req.GetMac())
	if err != nil {
		return err
	}
	f.MAC = mac

	p := pager[*evpndv1.MAC]{send: func(rows []*evpndv1.MAC) error {
		return stream.Send(&evpndv1.ListMACsResponse{Macs: rows})
	}}
	err = s.b.MACs(stream.Context(), f, func(m MAC) error { return p.add(toMAC(m)) })
	if err == nil {
		err = p.flush()
	}
	if err != nil {
		return s.errorStatus("ListMACs", "", err, false)
	}
	return nil
}

// ListRoutes implements EvpndService.ListRoutes. An empty table sends no
// message.
func (s *Server) ListRoutes(req *evpndv1.ListRoutesRequest, stream grpc.ServerStreamingServer[evpndv1.ListRoutesResponse]) error {
	f := RouteFilter{VNI: req.GetVni()}
	switch t := req.GetRouteType(); t {
	case 0, uint32(evpn.RouteTypeMACIP), uint32(evpn.RouteTypeIMET), uint32(evpn.RouteTypeIPPrefix):
		f.Type = evpn.RouteType(t)
	default:
		return invalid("route_type", "%d is not supported (want 2, 3 or 5, or 0 for every type)", t)
	}
	if err := optVNI("vni", req.GetVni()); err != nil {
		return err
	}
	if rd := req.GetRd(); rd != "" {
		parsed, err := evpn.ParseRD(rd)
		if err != nil {
			return invalid("rd", "%q is not a route distinguisher (want ASN:N or A.B.C.D:N, e.g. 10.0.0.1:100)", rd)
		}
		f.RD = &parsed
	}

	p := pager[*evpndv1.Route]{send: func(rows []*evpndv1.Route) error {
		return stream.Send(&evpndv1.ListRoutesResponse{Routes: rows})
	}}
	err := s.b.Routes(stream.Context(), f, func(r RoutePath) error { return p.add(toRoute(r)) })
	if err == nil {
		err = p.flush()
	}
	if err != nil {
		return s.errorStatus("ListRoutes", "", err, false)
	}
	return nil
}

// Watch implements EvpndService.Watch. It ends with UNAVAILABLE when the
// server shuts down.
func (s *Server) Watch(req *evpndv1.WatchRequest, stream grpc.ServerStreamingServer[evpndv1.WatchResponse]) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := s.b.Watch(ctx, req.GetInitialState(), func(c Change) error {
		return stream.Send(toChange(c))
	})
	select {
	case <-s.stop:
		return status.Error(codes.Unavailable, "evpnd is shutting down; watch again once it is back")
	default:
	}
	if err == nil {
		return nil
	}
	return s.errorStatus("Watch", "", err, false)
}

// ---- interceptors ----

// recoverUnary turns a panic in a handler into INTERNAL instead of a crash
// of the daemon; the stack goes to the log.
func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer s.recovered(info.FullMethod, &err)
	return h(ctx, req)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer s.recovered(info.FullMethod, &err)
	return h(srv, ss)
}

func (s *Server) recovered(method string, err *error) {
	if r := recover(); r != nil {
		s.log.Error("api handler panicked", "method", method, "panic", r, "stack", string(debug.Stack()))
		*err = status.Errorf(codes.Internal, "%s failed: internal error (%v); the evpnd log has the details", method, r)
	}
}

// newGRPC returns a grpc.Server serving s with opts, whose calls gd
// authorizes.
func (s *Server) newGRPC(gd guard, opts ...grpc.ServerOption) *grpc.Server {
	opts = append(opts,
		// Ping idle connections so that a Watch of a client that vanished
		// without closing its connection ends; let clients ping as often
		// as every 10 s.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(s.recoverUnary, s.authUnary(gd)),
		grpc.ChainStreamInterceptor(s.recoverStream, s.authStream(gd)),
	)
	g := grpc.NewServer(opts...)
	evpndv1.RegisterEvpndServiceServer(g, s)
	return g
}

// binding is one bound listener and the grpc.Server that serves it.
type binding struct {
	l    net.Listener
	addr net.Addr // the address clients use
	g    *grpc.Server
}

// socketFile is the Unix socket Listen created, to remove at shutdown
// only if it is still the same file.
type socketFile struct {
	path string
	info os.FileInfo
}
