package api

import (
	"context"
	"fmt"
	"net"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// readOnly lists the calls that change nothing. Every other call, including
// any added later, changes the daemon and needs an authenticated admin:
// deny by default.
var readOnly = map[string]bool{
	evpndv1.EvpndService_GetStatus_FullMethodName:  true,
	evpndv1.EvpndService_ListVNIs_FullMethodName:   true,
	evpndv1.EvpndService_GetVNI_FullMethodName:     true,
	evpndv1.EvpndService_ListMACs_FullMethodName:   true,
	evpndv1.EvpndService_ListRoutes_FullMethodName: true,
	evpndv1.EvpndService_ListPeers_FullMethodName:  true,
	evpndv1.EvpndService_Watch_FullMethodName:      true,
	evpndv1.EvpndService_Check_FullMethodName:      true,
	evpndv1.EvpndService_Trace_FullMethodName:      true,
}

// IsReadOnly reports whether the gRPC method (its full name,
// "/evpnd.v1.EvpndService/ListVNIs") changes nothing.
func IsReadOnly(method string) bool { return readOnly[method] }

// guard decides who may make which calls on one listener.
type guard struct {
	// kind is the listener: guardUnix checks the caller's credentials,
	// guardTCP allows changes only to clients with a verified certificate.
	kind guardKind
	// socketGID and adminGID are api.socket-group and api.admin-group,
	// or -1 when not set.
	socketGID, adminGID int
	// mutualTLS: the TCP listener verifies client certificates.
	mutualTLS bool
}

type guardKind int

const (
	guardUnix guardKind = iota
	guardTCP
)

// check returns nil if the caller of ctx may call method, else a
// PERMISSION_DENIED status that says why and what would be allowed.
func (g guard) check(ctx context.Context, method string) error {
	name := methodName(method)
	switch g.kind {
	case guardTCP:
		if readOnly[method] || g.mutualTLS {
			return nil
		}
		return status.Errorf(codes.PermissionDenied,
			"%s changes the daemon, and this TCP connection is not authenticated (api.listen without api.tls.client-ca serves read-only calls): use the Unix socket as root or as a member of api.admin-group, or set api.tls.client-ca so that clients present a certificate", name)
	default:
		p, ok := peer.FromContext(ctx)
		if !ok {
			return status.Errorf(codes.PermissionDenied, "%s: the caller's credentials are unknown", name)
		}
		cred, ok := p.AuthInfo.(PeerCred)
		if !ok {
			return status.Errorf(codes.PermissionDenied, "%s: the caller's credentials are unknown", name)
		}
		admin := cred.UID == 0 || (g.adminGID >= 0 && cred.InGroup(g.adminGID))
		if admin {
			return nil
		}
		reader := g.socketGID >= 0 && cred.InGroup(g.socketGID)
		switch {
		case reader && readOnly[method]:
			return nil
		case reader:
			return status.Errorf(codes.PermissionDenied,
				"%s changes the daemon: uid %d is in api.socket-group, which may only read; run it as root, or as a member of api.admin-group (set it in the config)", name, cred.UID)
		default:
			return status.Errorf(codes.PermissionDenied,
				"%s: uid %d is neither root nor a member of api.socket-group", name, cred.UID)
		}
	}
}

// methodName is the last element of a full gRPC method name.
func methodName(full string) string {
	for i := len(full) - 1; i >= 0; i-- {
		if full[i] == '/' {
			return full[i+1:]
		}
	}
	return full
}

// authUnary and authStream apply g before the handler, logging refusals.
func (s *Server) authUnary(g guard) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if err := g.check(ctx, info.FullMethod); err != nil {
			s.refused(ctx, info.FullMethod, err)
			return nil, err
		}
		return h(ctx, req)
	}
}

func (s *Server) authStream(g guard) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if err := g.check(ss.Context(), info.FullMethod); err != nil {
			s.refused(ss.Context(), info.FullMethod, err)
			return err
		}
		return h(srv, ss)
	}
}

// logRefused logs a call that changes the daemon if it failed (*err is
// set when the handler returns), so that every refused change leaves a
// line in the log as every accepted one does.
func (s *Server) logRefused(ctx context.Context, method string, err *error, args ...any) {
	if *err != nil {
		s.refused(ctx, method, *err, args...)
	}
}

// refused logs a call that was refused, with who made it.
func (s *Server) refused(ctx context.Context, method string, err error, extra ...any) {
	st := status.Convert(err)
	args := append([]any{"method", methodName(method)}, extra...)
	args = append(args, "code", st.Code().String(), "err", st.Message())
	if p, ok := peer.FromContext(ctx); ok {
		if cred, ok := p.AuthInfo.(PeerCred); ok {
			args = append(args, "uid", cred.UID, "pid", cred.PID)
		} else if p.Addr != nil {
			args = append(args, "client", p.Addr.String())
		}
	}
	s.log.Warn("API call refused", args...)
}

// PeerCred is the AuthInfo of a Unix socket connection: the credentials
// of the process that connected, from SO_PEERCRED and SO_PEERGROUPS (the
// kernel records them at connect(2), so a later setuid or fd passing does
// not change them).
type PeerCred struct {
	PID, UID, GID int
	Groups        []int // supplementary groups
}

// AuthType implements credentials.AuthInfo.
func (PeerCred) AuthType() string { return "unix-peercred" }

// InGroup reports whether gid is the caller's group or one of its
// supplementary groups.
func (c PeerCred) InGroup(gid int) bool { return c.GID == gid || slices.Contains(c.Groups, gid) }

// peerCreds is the credentials.TransportCredentials of the Unix listener:
// no encryption (the kernel carries the bytes), but each connection's
// AuthInfo says who connected.
type peerCreds struct{}

var _ credentials.TransportCredentials = peerCreds{}

func (peerCreds) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, fmt.Errorf("api: peer credentials are server side only")
}

func (peerCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, nil, fmt.Errorf("api: peer credentials need a Unix socket, got %T", c)
	}
	cred, err := peerCredOf(uc)
	if err != nil {
		return nil, nil, fmt.Errorf("api: read the caller's credentials: %w", err)
	}
	return c, cred, nil
}

func (peerCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "unix-peercred"}
}

func (peerCreds) Clone() credentials.TransportCredentials { return peerCreds{} }

func (peerCreds) OverrideServerName(string) error { return nil }
