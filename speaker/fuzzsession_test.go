package speaker

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evpnd/evpnd/speaker/bgptest"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// sessionFuzzer is an in-process speaker that accepts iBGP sessions from
// any address of 127.77.0.0/16 (a dynamic neighbour range), and a record of
// the marker routes its watch delivered. Each session comes from a new
// address: GoBGP deletes a dynamic peer whose session ends, so no idle
// hold time slows the next one down.
type sessionFuzzer struct {
	s    *testSpeaker
	next atomic.Uint32 // source addresses handed out

	mu   sync.Mutex
	seen map[evpn.MAC]netip.Addr // marker MAC -> the peer it came from
}

func newSessionFuzzer(t testing.TB) *sessionFuzzer {
	t.Helper()
	fz := &sessionFuzzer{seen: map[evpn.MAC]netip.Addr{}}
	fz.s = startSpeaker(t, "127.0.0.151", 65000, false, nil)
	if err := fz.s.Watch(context.Background(), func(ev Event) {
		if ev.Type != EventRoute || ev.Withdraw || ev.Route.Type != evpn.RouteTypeMACIP {
			return
		}
		fz.mu.Lock()
		fz.seen[ev.Route.MAC] = ev.Peer
		fz.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	d := DynamicNeighbor{Prefix: netip.MustParsePrefix("127.77.0.0/16"), ASN: 65000}
	if err := fz.s.AddDynamicNeighbor(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return fz
}

// rawConn is one session of a raw peer: what it reads is discarded, and
// done closes when the speaker ends the session.
type rawConn struct {
	c     net.Conn
	local netip.Addr
	done  chan struct{}
	notif atomic.Pointer[[]byte]
}

// dial opens a session from a new source address.
func (fz *sessionFuzzer) dial(t *testing.T) *rawConn {
	t.Helper()
	n := fz.next.Add(1)
	local := netip.AddrFrom4([4]byte{127, 77, byte(n / 250 % 250), byte(n%250 + 1)})
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))}
	var c net.Conn
	var err error
	// A speaker that just reset a session from this process may take a
	// moment to accept again: retry briefly.
	for i := 0; ; i++ {
		if c, err = d.Dial("tcp", netip.AddrPortFrom(fz.s.addr, uint16(fz.s.port)).String()); err == nil {
			break
		}
		if i == 50 {
			t.Fatalf("dial the speaker from %s: %v", local, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r, _, err := bgptest.Handshake(c, bgptest.Open(65000, local, 90), 10*time.Second)
	if err != nil {
		c.Close()
		t.Fatalf("session from %s: %v", local, err)
	}
	rc := &rawConn{c: c, local: local, done: make(chan struct{})}
	go func() {
		defer close(rc.done)
		for {
			typ, body, err := bgptest.Read(r)
			if err != nil {
				return
			}
			if typ == bgptest.MsgNotification {
				rc.notif.Store(&body)
				return
			}
		}
	}()
	return rc
}

func (rc *rawConn) closed() bool {
	select {
	case <-rc.done:
		return true
	default:
		return false
	}
}

// marker is a valid type-2 for a MAC unique to the session, from VTEP
// 10.0.0.9 in VNI 100.
func marker(local netip.Addr) (evpn.MAC, []byte) {
	a := local.As4()
	mac, _ := evpn.ParseMAC(fmt.Sprintf("02:77:00:%02x:%02x:%02x", a[1], a[2], a[3]))
	nlri := bgptest.MACRoute(bgptest.RD(netip.MustParseAddr("10.0.0.9"), 1), 48, mac.String(), nil, 100)
	ecs := [][]byte{bgptest.Encap(bgptest.TunnelVXLAN), bgptest.RT(65000, 100)}
	return mac, bgptest.EVPNUpdate(nlri, netip.MustParseAddr("10.0.0.9"), ecs, nil)
}

// waitMarker waits until the watch delivered mac from rc's address, or
// (if orReset) the speaker ended rc's session.
func (fz *sessionFuzzer) waitMarker(t *testing.T, rc *rawConn, mac evpn.MAC, orReset bool) (delivered bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		fz.mu.Lock()
		from, ok := fz.seen[mac]
		fz.mu.Unlock()
		if ok {
			if from != rc.local {
				t.Fatalf("marker %s delivered from %s, want %s", mac, from, rc.local)
			}
			return true
		}
		if rc.closed() {
			if orReset {
				return false
			}
			t.Fatalf("the speaker ended the session from %s after a valid UPDATE (notification % x)", rc.local, rc.notification())
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("the speaker neither delivered the marker from %s nor ended the session within 20 s: stuck", rc.local)
	return false
}

func (rc *rawConn) notification() []byte {
	if p := rc.notif.Load(); p != nil {
		return *p
	}
	return nil
}

// FuzzSessionUpdate sends a fuzzed UPDATE body from a raw BGP peer over a
// real session to an in-process speaker, through GoBGP's parser and FSM
// into evpnd's decode path, then a valid marker UPDATE. Whatever the body,
// the process must not panic (GoBGP's session goroutines have no recover),
// and the speaker must keep working: either the session stays up and the
// marker after the body reaches the watch, or the speaker ends that
// session (RFC 7606: a reset for what cannot be delimited) and a new
// session's marker reaches it.
func FuzzSessionUpdate(f *testing.F) {
	for _, rec := range loadFRR(f) {
		f.Add(rec.msg[bgptest.HeaderLen:])
	}
	for _, r := range ownRoutes() {
		for _, w := range []bool{false, true} {
			b, err := EncodeUpdate(r, w)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b[bgptest.HeaderLen:])
		}
	}
	rd := bgptest.RD(netip.MustParseAddr("10.0.0.2"), 100)
	nh := netip.MustParseAddr("10.0.0.2")
	ecs := [][]byte{bgptest.Encap(bgptest.TunnelVXLAN), bgptest.RT(65000, 100)}
	good := bgptest.MACRoute(rd, 48, "02:00:00:00:cc:01", nil, 100)
	imet := bgptest.IMETRoute(rd, nh)
	for _, nlri := range [][]byte{
		bgptest.MACRoute(rd, 32, "02:00:00:00:cc:02", nil, 100),
		bgptest.MACRoute(rd, 48, "02:00:00:00:cc:03", nil, 100, 100, 100),
		bgptest.Truncate(good, 24), bgptest.Truncate(good, 5), bgptest.Truncate(imet, 12), bgptest.Truncate(imet, 6),
	} {
		f.Add(bgptest.EVPNUpdate(nlri, nh, ecs, bgptest.PMSI(nh, 100))[bgptest.HeaderLen:])
	}
	f.Add(bgptest.Update(bgptest.MPUnreach(bgptest.Truncate(good, 10)))[bgptest.HeaderLen:])

	fz := newSessionFuzzer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > 65535-bgptest.HeaderLen {
			body = body[:65535-bgptest.HeaderLen]
		}
		rc := fz.dial(t)
		defer rc.c.Close()
		mac, mk := marker(rc.local)
		_ = rc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		// Either write may fail once the speaker has reset the session.
		if _, err := rc.c.Write(bgptest.Message(bgptest.MsgUpdate, body)); err == nil {
			_, _ = rc.c.Write(mk)
		}
		if fz.waitMarker(t, rc, mac, true) {
			return
		}
		// Reset: a new session must work.
		again := fz.dial(t)
		defer again.c.Close()
		mac, mk = marker(again.local)
		if _, err := again.c.Write(mk); err != nil {
			t.Fatalf("marker on a new session after a reset: %v", err)
		}
		fz.waitMarker(t, again, mac, false)
	})
}
