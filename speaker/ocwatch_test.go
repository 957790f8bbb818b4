package speaker

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/evpnd/evpnd/speaker/bgptest"
)

// TestOpenConfirmWatchdog: a raw peer exchanges OPENs with the speaker but
// never confirms the speaker's OPEN with a KEEPALIVE. GoBGP v4.9.0 arms no
// hold timer in OpenConfirm on a neighbour's first session, so without
// the watchdog the session stays there for ever; with it, the speaker
// drops the session once the hold time has passed, and a well-behaved
// attempt from the same peer then establishes.
func TestOpenConfirmWatchdog(t *testing.T) {
	const hold = 3 * time.Second
	// Detection: up to one poll to see the state, the hold time, one poll
	// past it; the rest is room for a loaded machine.
	const margin = 7 * time.Second
	s := startSpeaker(t, "127.0.0.191", 65000, false, func(c *Config) { c.HoldTime = hold })
	peer := netip.MustParseAddr("127.0.0.192")
	ctx := context.Background()
	if err := s.AddNeighbor(ctx, Neighbor{Address: peer, ASN: 65000, Passive: true}); err != nil {
		t.Fatal(err)
	}
	state := func() PeerState {
		ps, err := s.Peers(ctx)
		if err != nil || len(ps) != 1 {
			t.Fatalf("peers: %v %v", ps, err)
		}
		return ps[0].State
	}
	// GoBGP closes connections that come while the neighbour is Idle.
	dial := func(what string) net.Conn {
		t.Helper()
		waitFor(t, 30*time.Second, "the neighbour to be Active before "+what, func() bool { return state() == PeerStateActive })
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(peer, 0))}
		c, err := d.Dial("tcp", netip.AddrPortFrom(s.addr, uint16(s.port)).String())
		if err != nil {
			t.Fatalf("%s: dial: %v", what, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	// The stuck attempt: OPEN, read the speaker's OPEN and KEEPALIVE, stay silent.
	c := dial("the silent attempt")
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(bgptest.Open(65000, peer, uint16(hold/time.Second))); err != nil {
		t.Fatal(err)
	}
	for got := map[byte]bool{}; !got[bgptest.MsgOpen] || !got[bgptest.MsgKeepalive]; {
		typ, body, err := bgptest.Read(c)
		if err != nil {
			t.Fatalf("read the speaker's OPEN and KEEPALIVE: %v", err)
		}
		if typ == bgptest.MsgNotification {
			t.Fatalf("NOTIFICATION % x", body)
		}
		got[typ] = true
	}
	start := time.Now()
	_ = c.SetDeadline(time.Time{})
	// GoBGP sends its KEEPALIVE before it records the new state.
	waitFor(t, 5*time.Second, "the session to be in OpenConfirm", func() bool { return state() == PeerStateOpenConfirm })
	closed := make(chan time.Time, 1)
	go func() {
		for {
			if _, _, err := bgptest.Read(c); err != nil {
				closed <- time.Now()
				return
			}
		}
	}()
	select {
	case at := <-closed:
		took := at.Sub(start)
		t.Logf("the speaker dropped the unconfirmed session %v after the OPEN exchange (hold time %v)", took.Round(10*time.Millisecond), hold)
		if took < hold {
			t.Errorf("dropped after %v, before the hold time %v", took, hold)
		}
	case <-time.After(hold + margin):
		t.Fatalf("the session is still %v %v after the OPEN exchange: no hold timer in OpenConfirm (hold time %v)", state(), hold+margin, hold)
	}
	if n := s.StuckSessionResets(); n != 1 {
		t.Errorf("StuckSessionResets = %d, want 1", n)
	}

	// A well-behaved attempt establishes.
	c2 := dial("the second attempt")
	if _, _, err := bgptest.Handshake(c2, bgptest.Open(65000, peer, uint16(hold/time.Second)), 10*time.Second); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // keep the session up: the hold time is short
		tk := time.NewTicker(hold / 3)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if _, err := c2.Write(bgptest.Keepalive()); err != nil {
					return
				}
			}
		}
	}()
	waitFor(t, 10*time.Second, "the second attempt to be established", func() bool { return state() == PeerStateEstablished })
	if n := s.StuckSessionResets(); n != 1 {
		t.Errorf("StuckSessionResets = %d after the second attempt, want 1", n)
	}
}

// TestOpenConfirmCollision: the connection collision that leaves two GoBGP
// speakers in OpenConfirm, played by a raw peer. The speaker dials the
// peer (Y) and sends its OPEN; before the peer answers on Y, the peer
// dials in (X) and completes its side of the OPEN exchange there, so the
// speaker moves to OpenConfirm on X. The peer's OPEN then arrives on Y:
// GoBGP v4.9.0 leaves Y open and never writes on it, so a GoBGP peer that
// chose Y waits in OpenConfirm for a KEEPALIVE that never comes, and
// never sends one on X. The watchdog must end both connections, with the
// default hold time (90 s) within maxOpenConfirmWait.
func TestOpenConfirmCollision(t *testing.T) {
	peer := netip.MustParseAddr("127.0.0.194")
	l, err := net.Listen("tcp", netip.AddrPortFrom(peer, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := startSpeaker(t, "127.0.0.193", 65000, false, nil)
	ctx := context.Background()
	n := Neighbor{Address: peer, ASN: 65000, Port: uint16(l.Addr().(*net.TCPAddr).Port), LocalAddress: s.addr}
	if err := s.AddNeighbor(ctx, n); err != nil {
		t.Fatal(err)
	}
	state := func() PeerState {
		ps, err := s.Peers(ctx)
		if err != nil || len(ps) != 1 {
			t.Fatalf("peers: %v %v", ps, err)
		}
		return ps[0].State
	}
	readUntil := func(c net.Conn, what string, want ...byte) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		defer func() { _ = c.SetReadDeadline(time.Time{}) }()
		for _, w := range want {
			typ, body, err := bgptest.Read(c)
			if err != nil || typ != w {
				t.Fatalf("%s: got message type %d % x, %v; want type %d", what, typ, body, err, w)
			}
		}
	}

	// Y: the speaker's connection; read its OPEN, answer nothing yet.
	if tl, ok := l.(*net.TCPListener); ok {
		_ = tl.SetDeadline(time.Now().Add(15 * time.Second))
	}
	y, err := l.Accept()
	if err != nil {
		t.Fatalf("the speaker did not dial: %v", err)
	}
	defer y.Close()
	readUntil(y, "OPEN on the speaker's connection", bgptest.MsgOpen)

	// X: the peer's connection; the speaker answers OPEN and KEEPALIVE.
	waitFor(t, 10*time.Second, "the neighbour to be Active", func() bool { return state() == PeerStateActive })
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(peer, 0))}
	x, err := d.Dial("tcp", netip.AddrPortFrom(s.addr, uint16(s.port)).String())
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	open := bgptest.Open(65000, peer, 90)
	if _, err := x.Write(open); err != nil {
		t.Fatal(err)
	}
	readUntil(x, "OPEN exchange on the peer's connection", bgptest.MsgOpen, bgptest.MsgKeepalive)
	start := time.Now()
	// GoBGP sends its KEEPALIVE before it records the new state.
	waitFor(t, 5*time.Second, "the session to be in OpenConfirm", func() bool { return state() == PeerStateOpenConfirm })
	// The collision: the peer's OPEN on Y too.
	if _, err := y.Write(open); err != nil {
		t.Fatal(err)
	}

	ended := func(c net.Conn) <-chan time.Time {
		ch := make(chan time.Time, 1)
		go func() {
			var first byte
			for {
				typ, _, err := bgptest.Read(c)
				if err != nil {
					ch <- time.Now()
					return
				}
				if first == 0 {
					first = typ
					t.Logf("message type %d on %v", typ, c.LocalAddr())
				}
			}
		}()
		return ch
	}
	xEnd, yEnd := ended(x), ended(y)
	limit := time.After(maxOpenConfirmWait + 7*time.Second)
	for xEnd != nil || yEnd != nil {
		select {
		case at := <-xEnd:
			t.Logf("X ended %v after the OPEN exchange", at.Sub(start).Round(10*time.Millisecond))
			xEnd = nil
		case at := <-yEnd:
			t.Logf("Y ended %v after the OPEN exchange", at.Sub(start).Round(10*time.Millisecond))
			yEnd = nil
		case <-limit:
			t.Fatalf("%v after the OPEN exchange: X open %v, Y open %v, session %v", maxOpenConfirmWait+7*time.Second, xEnd != nil, yEnd != nil, state())
		}
	}
	if n := s.StuckSessionResets(); n != 1 {
		t.Errorf("StuckSessionResets = %d, want 1", n)
	}
}

// TestOpenConfirmWatchdogQuiet: with no neighbour in OpenConfirm the
// watchdog asks GoBGP nothing. GoBGP's ListPeer counts an Established
// neighbour's received routes in its main loop, which at 50k routes held
// up the UPDATEs for about 28 ms every poll.
func TestOpenConfirmWatchdogQuiet(t *testing.T) {
	const hold = 3 * time.Second
	s := startSpeaker(t, "127.0.0.195", 65000, false, func(c *Config) { c.HoldTime = hold })
	peer := netip.MustParseAddr("127.0.0.196")
	idle := netip.MustParseAddr("127.0.0.197") // stays Active: nobody dials
	ctx := context.Background()
	for _, a := range []netip.Addr{peer, idle} {
		if err := s.AddNeighbor(ctx, Neighbor{Address: a, ASN: 65000, Passive: true}); err != nil {
			t.Fatal(err)
		}
	}
	state := func(a netip.Addr) PeerState {
		ps, err := s.Peers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.Address == a {
				return p.State
			}
		}
		t.Fatalf("no neighbour %v in %v", a, ps)
		return 0
	}
	waitFor(t, 30*time.Second, "the neighbour to be Active", func() bool { return state(peer) == PeerStateActive })
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(peer, 0))}
	c, err := d.Dial("tcp", netip.AddrPortFrom(s.addr, uint16(s.port)).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := bgptest.Handshake(c, bgptest.Open(65000, peer, uint16(hold/time.Second)), 10*time.Second); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // keep the session up
		tk := time.NewTicker(hold / 3)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if _, err := c.Write(bgptest.Keepalive()); err != nil {
					return
				}
			}
		}
	}()
	waitFor(t, 10*time.Second, "the session to be established", func() bool { return state(peer) == PeerStateEstablished })
	// The OpenConfirm the session went through: one poll may still see it.
	polls := s.ocPolls.Load()
	waitFor(t, 20*time.Second, "two watchdog polls", func() bool { return s.ocPolls.Load() >= polls+2 })
	queries, polls := s.ocQueries.Load(), s.ocPolls.Load()
	waitFor(t, 20*time.Second, "three more watchdog polls", func() bool { return s.ocPolls.Load() >= polls+3 })
	if q := s.ocQueries.Load() - queries; q != 0 {
		t.Errorf("the watchdog listed neighbours %d times in 3 polls with none in OpenConfirm, want 0", q)
	}
	if got := state(peer); got != PeerStateEstablished {
		t.Errorf("session %v, want Established", got)
	}
}
