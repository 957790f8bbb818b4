package speaker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// apiStartTimeout bounds how long Start waits for GoBGP's API to serve.
const apiStartTimeout = 10 * time.Second

// checkAPIListen accepts a loopback IP literal and an explicit port:
// GoBGP's API has no authentication, and GoBGP cannot tell which port it
// picked for port 0.
func checkAPIListen(hostPort string) error {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return fmt.Errorf("speaker: api.gobgp-listen %q: want host:port, for example 127.0.0.1:50051: %w", hostPort, err)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("speaker: api.gobgp-listen %s must be a loopback address: GoBGP's API has no authentication; write the address (127.0.0.1 or ::1), not a name", hostPort)
	}
	if !a.Unmap().IsLoopback() || a.Zone() != "" {
		return fmt.Errorf("speaker: api.gobgp-listen %s must be a loopback address: GoBGP's API has no authentication", hostPort)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("speaker: api.gobgp-listen %s: want a port 1-65535", hostPort)
	}
	return nil
}

// waitAPI returns once GoBGP's gRPC server accepts connections on
// Config.GoBGPAPIListen, so that Stop, which closes its listener, finds it
// registered (a listener not yet handed to grpc's Serve would be closed
// only later, and a restart could not bind the port).
func (s *Server) waitAPI(ctx context.Context) error {
	addr := s.cfg.GoBGPAPIListen
	deadline := time.Now().Add(apiStartTimeout)
	for {
		s.recMu.Lock()
		err := s.apiErr
		s.recMu.Unlock()
		if err != nil {
			return fmt.Errorf("speaker: GoBGP API (api.gobgp-listen %s): %w", addr, err)
		}
		if grpcServing(addr) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("speaker: GoBGP API (api.gobgp-listen %s): not serving after %v", addr, apiStartTimeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("speaker: GoBGP API (api.gobgp-listen %s): %w", addr, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// grpcServing reports whether a gRPC server handles connections on addr:
// it sends its HTTP/2 SETTINGS frame first (RFC 9113 §3.4), before the
// client's preface.
func grpcServing(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	var b [1]byte
	n, _ := c.Read(b[:])
	return n == 1
}

// stopAPI stops GoBGP's gRPC server; its listener is closed on return.
func (s *Server) stopAPI(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		// BgpServer.Stop is StopBgp again (nothing left to stop) and then
		// the gRPC server's Stop, which closes its listeners and
		// connections.
		s.bgp.Stop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("speaker: stop GoBGP API on %s: %w", s.cfg.GoBGPAPIListen, ctx.Err())
	}
}

// recordAPIFailure keeps the error of GoBGP's gRPC listener for waitAPI.
func (s *Server) recordAPIFailure(err error) {
	if err == nil {
		err = errors.New("listen failed")
	}
	s.recMu.Lock()
	s.apiErr = err
	s.recMu.Unlock()
}
