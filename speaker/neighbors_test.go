package speaker

import (
	"context"
	"testing"
)

// DeleteNeighbor ends the session and withdraws what the peer sent;
// deleting it again, or a peer never added, is not an error; adding it
// back brings the session and its routes back.
func TestDeleteNeighbor(t *testing.T) {
	ctx := context.Background()
	a := newSpeaker(t, "127.0.0.31", 65000, nil)
	b := newSpeaker(t, "127.0.0.32", 65000, nil)
	a.peerWith(b, 65000, nil)
	b.peerWith(a, 65000, nil)
	routes := leafRoutes("10.0.0.1", "10.0.0.1", 1)
	if err := a.Announce(ctx, routes); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "B to receive A's routes", func() bool { return b.rec.count() == len(routes) }, b.rec)

	if err := b.DeleteNeighbor(ctx, a.addr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, settle, "A's routes withdrawn on B", func() bool { return b.rec.count() == 0 }, b.rec)
	if ps, err := b.Peers(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("B's peers after the delete: %v %v", ps, err)
	}
	if err := b.DeleteNeighbor(ctx, a.addr); err != nil {
		t.Errorf("second delete: %v", err)
	}
	b.peerWith(a, 65000, nil)
	waitFor(t, settle, "A's routes back on B", func() bool { return b.rec.count() == len(routes) }, b.rec)
}
