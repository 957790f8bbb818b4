//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/evpnd/evpnd/speaker/bgptest"
)

// The source-only run replaces the leaf by a minimal BGP receiver that
// accepts the session, then only counts the EVPN NLRIs it receives: the
// time it takes is what the burst source itself needs, the floor under
// every leaf's figure. It implements just enough of RFC 4271: OPEN with the
// multiprotocol (l2vpn-evpn) and 4-octet-AS capabilities, KEEPALIVE, and
// the parsing of UPDATE's MP_REACH_NLRI.

// countEVPNReach counts the type-2 routes in an UPDATE body's MP_REACH_NLRI
// (AFI 25, SAFI 70). An End-of-RIB or an update of another family counts 0.
func countEVPNReach(body []byte) (int, error) { return countEVPNRoutes(body, 2) }

// countEVPNRoutes counts the EVPN routes of type routeType in an UPDATE
// body's MP_REACH_NLRI.
func countEVPNRoutes(body []byte, routeType byte) (int, error) {
	if len(body) < 2 {
		return 0, errors.New("short UPDATE")
	}
	wl := int(binary.BigEndian.Uint16(body))
	if len(body) < 2+wl+2 {
		return 0, errors.New("UPDATE withdrawn routes overrun")
	}
	p := body[2+wl:]
	al := int(binary.BigEndian.Uint16(p))
	p = p[2:]
	if al > len(p) {
		return 0, errors.New("UPDATE attributes overrun")
	}
	attrs := p[:al]
	n := 0
	for len(attrs) >= 3 {
		flags, typ := attrs[0], attrs[1]
		hl, l := 3, int(attrs[2])
		if flags&0x10 != 0 { // extended length
			if len(attrs) < 4 {
				return 0, errors.New("attribute header overrun")
			}
			hl, l = 4, int(binary.BigEndian.Uint16(attrs[2:]))
		}
		if hl+l > len(attrs) {
			return 0, fmt.Errorf("attribute %d overruns", typ)
		}
		v := attrs[hl : hl+l]
		attrs = attrs[hl+l:]
		if typ != bgptest.AttrMPReach {
			continue
		}
		if len(v) < 5 || binary.BigEndian.Uint16(v) != bgptest.AFIL2VPN || v[2] != bgptest.SAFIEVPN {
			continue
		}
		nhl := int(v[3])
		if len(v) < 4+nhl+1 {
			return 0, errors.New("MP_REACH next hop overruns")
		}
		for r := v[4+nhl+1:]; len(r) > 0; {
			if len(r) < 2 || 2+int(r[1]) > len(r) {
				return 0, errors.New("EVPN NLRI overruns")
			}
			if r[0] == routeType {
				n++
			}
			r = r[2+int(r[1]):]
		}
	}
	return n, nil
}

// bgpSink is the minimal receiver.
type bgpSink struct {
	ln        net.Listener
	want      int
	routeType byte // the EVPN route type counted: 2 (MAC/IP), or 3 (IMET)

	mu    sync.Mutex
	got   int
	first time.Time
	last  time.Time
	prog  progress
	full  chan struct{}
}

// listenSink listens on addr:179 inside ns.
func listenSink(ns *netns.NS, addr netip.Addr, want int) (*bgpSink, error) {
	var ln net.Listener
	err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 179).String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("BGP receiver in %s: %w", ns.Name, err)
	}
	return &bgpSink{ln: ln, want: want, routeType: 2, prog: progress{want: want}, full: make(chan struct{})}, nil
}

// Run accepts one session from a peer in AS asn and counts until ctx ends.
func (s *bgpSink) Run(ctx context.Context, asn uint32, id netip.Addr) error {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	c, err := s.ln.Accept()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("BGP receiver: accept: %w", err)
	}
	defer c.Close()
	context.AfterFunc(ctx, func() { c.Close() })
	var wmu sync.Mutex
	write := func(m []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		_, err := c.Write(m)
		return err
	}
	if err := write(append(bgptest.Open(asn, id, 90), bgptest.Message(bgptest.MsgKeepalive, nil)...)); err != nil {
		return fmt.Errorf("BGP receiver: send OPEN: %w", err)
	}
	go func() { // keepalives well within the 90 s hold time
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if write(bgptest.Message(bgptest.MsgKeepalive, nil)) != nil {
					return
				}
			}
		}
	}()
	r := bufio.NewReaderSize(c, 1<<20)
	hdr := make([]byte, bgptest.HeaderLen)
	body := make([]byte, 65535)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("BGP receiver: read: %w", err)
		}
		l := int(binary.BigEndian.Uint16(hdr[16:]))
		if l < bgptest.HeaderLen || l > 65535 {
			return fmt.Errorf("BGP receiver: bad message length %d", l)
		}
		b := body[:l-bgptest.HeaderLen]
		if _, err := io.ReadFull(r, b); err != nil {
			return fmt.Errorf("BGP receiver: read: %w", err)
		}
		switch hdr[18] {
		case bgptest.MsgNotification:
			return fmt.Errorf("BGP receiver: NOTIFICATION from the source: % x", b)
		case bgptest.MsgUpdate:
			n, err := countEVPNRoutes(b, s.routeType)
			if err != nil {
				return fmt.Errorf("BGP receiver: %w", err)
			}
			if n > 0 {
				s.count(n, time.Now())
			}
		}
	}
}

func (s *bgpSink) count(n int, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got == 0 {
		s.first = at
	}
	s.got += n
	s.prog.update(s.got, at)
	if s.got >= s.want && s.last.IsZero() {
		s.last = at
		close(s.full)
	}
}

func (s *bgpSink) result() (got int, first time.Time, marks [3]time.Time, last time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got, s.first, s.prog.at, s.last
}
