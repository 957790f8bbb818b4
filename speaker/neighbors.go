package speaker

import (
	"context"
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v4/api"
)

// DeleteNeighbor removes a static peer added with AddNeighbor: GoBGP ends
// its session with a Cease (RFC 4486 subcode 3, peer de-configured), and
// the routes learnt from it are withdrawn from the table. A peer that is
// not configured is not an error.
func (s *Server) DeleteNeighbor(ctx context.Context, addr netip.Addr) error {
	if err := s.usable(); err != nil {
		return err
	}
	addr = addr.Unmap()
	s.mu.Lock()
	_, known := s.neighbors[addr]
	s.mu.Unlock()
	if !known {
		return nil
	}
	if err := s.bgp.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
		return fmt.Errorf("speaker: delete neighbor %s: %w", addr, err)
	}
	s.mu.Lock()
	delete(s.neighbors, addr)
	s.mu.Unlock()
	s.log.Info("BGP neighbor removed", "peer", addr)
	return nil
}
