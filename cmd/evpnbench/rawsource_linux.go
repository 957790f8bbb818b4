//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/bgptest"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// The raw source replays pre-encoded UPDATEs as fast as TCP takes them: a
// burst source that costs next to nothing, so that the leaf is the only
// thing measured. Routes are encoded by evpnd's codec (speaker.EncodeUpdate)
// and completed with what a route reflector adds on iBGP (empty AS_PATH,
// LOCAL_PREF 100, ORIGINATOR_ID = the VTEP, CLUSTER_LIST = the reflector).
// By default the type-2 routes of one VTEP, which share every attribute,
// are packed into UPDATEs of up to 4096 bytes as FRR packs them (about 110
// routes each); pack 1 sends one route per UPDATE as GoBGP does.

// bgpAttr is one path attribute.
type bgpAttr struct {
	flags, typ byte
	val        []byte
}

func (a bgpAttr) appendTo(b []byte) []byte {
	if len(a.val) > 255 || a.flags&bgptest.FlagExtLen != 0 {
		b = append(b, a.flags|bgptest.FlagExtLen, a.typ)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.val)))
	} else {
		b = append(b, a.flags, a.typ, byte(len(a.val)))
	}
	return append(b, a.val...)
}

func (a bgpAttr) size() int {
	if len(a.val) > 255 || a.flags&bgptest.FlagExtLen != 0 {
		return 4 + len(a.val)
	}
	return 3 + len(a.val)
}

// splitUpdate returns the path attributes of a whole UPDATE message (no
// withdrawn routes, no IPv4 NLRI, as EncodeUpdate makes them).
func splitUpdate(msg []byte) ([]bgpAttr, error) {
	if len(msg) < bgptest.HeaderLen+4 || msg[18] != bgptest.MsgUpdate {
		return nil, errors.New("not an UPDATE")
	}
	body := msg[bgptest.HeaderLen:]
	if binary.BigEndian.Uint16(body) != 0 {
		return nil, errors.New("UPDATE with withdrawn routes")
	}
	al := int(binary.BigEndian.Uint16(body[2:]))
	p := body[4:]
	if al != len(p) {
		return nil, errors.New("UPDATE with IPv4 NLRI or bad attribute length")
	}
	var out []bgpAttr
	for len(p) > 0 {
		if len(p) < 3 {
			return nil, errors.New("attribute header overrun")
		}
		flags, typ := p[0], p[1]
		hl, l := 3, int(p[2])
		if flags&bgptest.FlagExtLen != 0 {
			if len(p) < 4 {
				return nil, errors.New("attribute header overrun")
			}
			hl, l = 4, int(binary.BigEndian.Uint16(p[2:]))
		}
		if hl+l > len(p) {
			return nil, fmt.Errorf("attribute %d overruns", typ)
		}
		out = append(out, bgpAttr{flags: flags &^ bgptest.FlagExtLen, typ: typ, val: p[hl : hl+l]})
		p = p[hl+l:]
	}
	return out, nil
}

// mpReachParts splits an MP_REACH_NLRI value into its header (AFI, SAFI,
// next hop, reserved octet) and its NLRI bytes.
func mpReachParts(v []byte) (hdr, nlri []byte, err error) {
	if len(v) < 5 {
		return nil, nil, errors.New("short MP_REACH_NLRI")
	}
	n := 4 + int(v[3]) + 1
	if n > len(v) {
		return nil, nil, errors.New("MP_REACH_NLRI next hop overruns")
	}
	return v[:n], v[n:], nil
}

// updateMsg builds an UPDATE from attributes.
func updateMsg(attrs []bgpAttr) []byte {
	body := []byte{0, 0, 0, 0}
	for _, a := range attrs {
		body = a.appendTo(body)
	}
	binary.BigEndian.PutUint16(body[2:], uint16(len(body)-4))
	return bgptest.Message(bgptest.MsgUpdate, body)
}

// reflectedAttrs completes a route's attributes as a reflector sends them
// on iBGP, in type order.
func reflectedAttrs(own []bgpAttr, originator, cluster netip.Addr) []bgpAttr {
	o, c := originator.As4(), cluster.As4()
	out := []bgpAttr{
		{flags: bgptest.FlagTransitive, typ: bgptest.AttrASPath, val: nil},
		{flags: bgptest.FlagTransitive, typ: bgptest.AttrLocalPref, val: []byte{0, 0, 0, 100}},
		{flags: bgptest.FlagOptional, typ: bgptest.AttrOriginator, val: o[:]},
		{flags: bgptest.FlagOptional, typ: bgptest.AttrClusterList, val: c[:]},
	}
	out = append(out, own...)
	// Sort by type (insertion sort: a handful of attributes).
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].typ < out[j-1].typ; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// rawUpdates encodes the burst of c as UPDATE messages, type-3 routes
// first, with up to pack type-2 routes per message (0: as many as fit in
// 4096 bytes), followed by the l2vpn-evpn End-of-RIB. It returns the
// messages concatenated and their number.
func rawUpdates(c feederConfig, cluster netip.Addr, pack int) ([]byte, int, error) {
	return rawUpdatesFor(burstRoutes(c), cluster, pack)
}

// rawUpdatesFor encodes routes as rawUpdates does: every route but the
// type-2s in an UPDATE of its own, in order; the type-2 routes packed per
// next hop (the routes of one next hop must share every other attribute),
// next hops in order of first appearance; then the End-of-RIB.
func rawUpdatesFor(routes []*evpn.Route, cluster netip.Addr, pack int) ([]byte, int, error) {
	type group struct {
		other []bgpAttr // every attribute but MP_REACH
		hdr   []byte    // MP_REACH header (next hop)
		nlri  [][]byte
	}
	var out []byte
	n := 0
	groups := map[netip.Addr]*group{}
	var order []netip.Addr
	for _, r := range routes {
		msg, err := speaker.EncodeUpdate(r, false)
		if err != nil {
			return nil, 0, err
		}
		attrs, err := splitUpdate(msg)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", r.Key, err)
		}
		if r.Type != evpn.RouteTypeMACIP {
			out = append(out, updateMsg(reflectedAttrs(attrs, r.VTEP(), cluster))...)
			n++
			continue
		}
		var other []bgpAttr
		var hdr, nlri []byte
		for _, a := range attrs {
			if a.typ == bgptest.AttrMPReach {
				if hdr, nlri, err = mpReachParts(a.val); err != nil {
					return nil, 0, err
				}
				continue
			}
			other = append(other, a)
		}
		g := groups[r.NextHop]
		if g == nil {
			g = &group{other: reflectedAttrs(other, r.NextHop, cluster), hdr: hdr}
			groups[r.NextHop] = g
			order = append(order, r.NextHop)
		}
		g.nlri = append(g.nlri, nlri)
	}
	for _, vtep := range order {
		g := groups[vtep]
		var err error
		var k int
		if out, k, err = packNLRIs(out, g.other, bgptest.AttrMPReach, g.hdr, g.nlri, pack); err != nil {
			return nil, 0, err
		}
		n += k
	}
	eor := bgpAttr{flags: bgptest.FlagOptional, typ: bgptest.AttrMPUnreach, val: []byte{0, bgptest.AFIL2VPN, bgptest.SAFIEVPN}}
	out = append(out, updateMsg([]bgpAttr{eor})...)
	return out, n + 1, nil
}

// packNLRIs appends to out UPDATEs carrying the attributes other and an
// MP_REACH_NLRI or MP_UNREACH_NLRI (typ) made of hdr followed by up to
// pack of nlris (0: as many as fit in a message), and returns out and the
// number of UPDATEs.
func packNLRIs(out []byte, other []bgpAttr, typ byte, hdr []byte, nlris [][]byte, pack int) ([]byte, int, error) {
	fixed := bgptest.HeaderLen + 4 + 4 + len(hdr)
	for _, a := range other {
		fixed += a.size()
	}
	n := 0
	for len(nlris) > 0 {
		val := append([]byte(nil), hdr...)
		k := 0
		for k < len(nlris) && (pack == 0 || k < pack) && fixed+len(val)-len(hdr)+len(nlris[k]) <= bgptest.MaxMessage {
			val = append(val, nlris[k]...)
			k++
		}
		if k == 0 {
			return nil, 0, errors.New("an NLRI does not fit in a BGP message")
		}
		nlris = nlris[k:]
		attrs := append([]bgpAttr{}, other...)
		attrs = append(attrs, bgpAttr{flags: bgptest.FlagOptional | bgptest.FlagExtLen, typ: typ, val: val})
		for i := len(attrs) - 1; i > 0 && attrs[i].typ < attrs[i-1].typ; i-- {
			attrs[i], attrs[i-1] = attrs[i-1], attrs[i]
		}
		out = append(out, updateMsg(attrs)...)
		n++
	}
	return out, n, nil
}

// rawWithdraws encodes the withdrawal of routes as UPDATEs carrying only
// an MP_UNREACH_NLRI, up to pack routes each (0: as many as fit), and
// returns them concatenated and their number.
func rawWithdraws(routes []*evpn.Route, pack int) ([]byte, int, error) {
	var nlris [][]byte
	for _, r := range routes {
		msg, err := speaker.EncodeUpdate(r, true)
		if err != nil {
			return nil, 0, err
		}
		attrs, err := splitUpdate(msg)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", r.Key, err)
		}
		if len(attrs) != 1 || attrs[0].typ != bgptest.AttrMPUnreach || len(attrs[0].val) < 3 {
			return nil, 0, fmt.Errorf("%s: withdrawal is not one MP_UNREACH_NLRI", r.Key)
		}
		nlris = append(nlris, attrs[0].val[3:])
	}
	return packNLRIs(nil, nil, bgptest.AttrMPUnreach, []byte{0, bgptest.AFIL2VPN, bgptest.SAFIEVPN}, nlris, pack)
}

// rawSource is the replaying speaker: it dials the leaf from its address
// inside its namespace.
type rawSource struct {
	ns          *netns.NS // nil: the current one (the in-process benchmark)
	local, peer netip.Addr
	port        uint16     // the peer's; 0 means 179
	id          netip.Addr // BGP identifier; default local
	asn         uint32
	msgs        []byte

	mu   sync.Mutex
	conn net.Conn
	errc chan error
}

// start dials the leaf until a session is established (a daemon that
// just refused a connection may ignore the next ones for a few seconds),
// then sends every message in the background. It returns the time the
// session was established: when the peer's KEEPALIVE confirmed our OPEN.
func (s *rawSource) start(ctx context.Context) (time.Time, error) {
	s.errc = make(chan error, 2)
	var last error
	for ctx.Err() == nil {
		c, r, at, err := s.handshake(ctx)
		if err == nil {
			s.mu.Lock()
			s.conn = c
			s.mu.Unlock()
			go s.send(ctx, c, r)
			return at, nil
		}
		last = err
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return time.Time{}, fmt.Errorf("raw source: no session (%v): %w", last, ctx.Err())
}

func (s *rawSource) handshake(ctx context.Context) (net.Conn, *bufio.Reader, time.Time, error) {
	var c net.Conn
	port, id := s.port, s.id
	if port == 0 {
		port = 179
	}
	if !id.IsValid() {
		id = s.local
	}
	dial := func() error {
		d := net.Dialer{Timeout: time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(s.local, 0))}
		var err error
		c, err = d.DialContext(ctx, "tcp", netip.AddrPortFrom(s.peer, port).String())
		return err
	}
	var err error
	if s.ns != nil {
		err = s.ns.Do(dial)
	} else {
		err = dial()
	}
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	fail := func(err error) (net.Conn, *bufio.Reader, time.Time, error) {
		c.Close()
		return nil, nil, time.Time{}, err
	}
	r, at, err := bgptest.Handshake(c, bgptest.Open(s.asn, id, 90), 5*time.Second)
	if err != nil {
		return fail(err)
	}
	return c, r, at, nil
}

// send writes the burst, then a KEEPALIVE every 10 s; another goroutine
// reads and discards what the peer sends and reports a NOTIFICATION.
func (s *rawSource) send(ctx context.Context, c net.Conn, r *bufio.Reader) {
	context.AfterFunc(ctx, func() { c.Close() })
	go func() {
		for {
			typ, body, err := bgptest.Read(r)
			if err != nil {
				if ctx.Err() == nil {
					s.errc <- fmt.Errorf("raw source: session lost: %w", err)
				}
				return
			}
			if typ == bgptest.MsgNotification {
				s.errc <- fmt.Errorf("raw source: NOTIFICATION from the leaf: % x", body)
				return
			}
		}
	}()
	if _, err := c.Write(s.msgs); err != nil {
		if ctx.Err() == nil {
			s.errc <- fmt.Errorf("raw source: send: %w", err)
		}
		return
	}
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := c.Write(bgptest.Message(bgptest.MsgKeepalive, nil)); err != nil {
				return
			}
		}
	}
}

// write sends more messages (a withdrawal) on the established session;
// the session's own writes are whole messages too, so nothing interleaves.
func (s *rawSource) write(msgs []byte) error {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return errors.New("raw source: no session")
	}
	_, err := c.Write(msgs)
	return err
}

func (s *rawSource) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Close()
	}
}
