//go:build linux

package main

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/evpnd/evpnd/fib/nlfdb"
)

// l3Event is one notification the l3 benchmark counts: a neighbour or a
// host route added or deleted.
type l3Event struct {
	Route bool // an RTM_*ROUTE; otherwise an RTM_*NEIGH
	Del   bool
	// Neighbours: the device and NTF_* flags; routes: the table, /32 only.
	Ifindex int32
	Flags   uint8
	Table   uint32
	IP      netip.Addr
}

// rtmsgLen is the size of struct rtmsg, before a route's attributes.
const rtmsgLen = 12

// parseL3Events calls fn for every IPv4 neighbour and every IPv4 unicast
// /32 route (RTM_NEW*, RTM_DEL*) in a buffer read from a netlink socket,
// and skips everything else.
func parseL3Events(b []byte, fn func(*l3Event)) error {
	var ev l3Event
	return nlfdb.Messages(b, func(typ uint16, msg []byte) {
		switch typ {
		case unix.RTM_NEWNEIGH, unix.RTM_DELNEIGH:
			n, _ := nlfdb.Parse(msg)
			if n.Family != unix.AF_INET || !n.Dst.IsValid() {
				return
			}
			ev = l3Event{Del: typ == unix.RTM_DELNEIGH, Ifindex: n.Ifindex, Flags: n.Flags, IP: n.Dst}
			fn(&ev)
		case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
			if len(msg) < rtmsgLen || msg[0] != unix.AF_INET || msg[1] != 32 || msg[7] != unix.RTN_UNICAST {
				return
			}
			ev = l3Event{Route: true, Del: typ == unix.RTM_DELROUTE, Table: uint32(msg[4])}
			walkRtAttrs(msg[rtmsgLen:], func(t uint16, v []byte) {
				switch t {
				case unix.RTA_DST:
					if ip, ok := netip.AddrFromSlice(v); ok {
						ev.IP = ip
					}
				case unix.RTA_TABLE:
					if len(v) >= 4 {
						ev.Table = binary.NativeEndian.Uint32(v)
					}
				}
			})
			if ev.IP.IsValid() {
				fn(&ev)
			}
		}
	})
}

// walkRtAttrs calls fn for each well-formed rtattr of b.
func walkRtAttrs(b []byte, fn func(typ uint16, val []byte)) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < 4 || l > len(b) {
			return
		}
		fn(binary.NativeEndian.Uint16(b[2:4])&^(1<<15|1<<14), b[4:l])
		b = b[min((l+3)&^3, len(b)):]
	}
}

// l3Counter counts, from notifications, the extern_learn neighbours on one
// SVI and the /32 routes in one table whose addresses are in hosts. A goal
// (expect) is reached when both counts are at it: all routes installed, or
// all gone. It is safe for concurrent use.
type l3Counter struct {
	mu      sync.Mutex
	ifindex int32
	table   uint32
	hosts   netip.Prefix
	neigh   map[netip.Addr]struct{}
	route   map[netip.Addr]struct{}

	goal    int
	rising  bool
	from    int // the larger count when the goal was set (withdraw)
	first   time.Time
	last    time.Time
	prog    progress
	reached chan struct{}
}

func newL3Counter(ifindex int32, table uint32, hosts netip.Prefix, size int) *l3Counter {
	return &l3Counter{ifindex: ifindex, table: table, hosts: hosts,
		neigh: make(map[netip.Addr]struct{}, size), route: make(map[netip.Addr]struct{}, size)}
}

// expect sets the goal: both counts at goal. The returned channel is
// closed once they are (at once if they already are). The progress marks
// and times restart.
func (c *l3Counter) expect(goal int) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, r := len(c.neigh), len(c.route)
	c.goal, c.rising, c.from = goal, goal > max(n, r), max(n, r)
	c.first, c.last = time.Time{}, time.Time{}
	c.prog = progress{want: max(goal-min(n, r), c.from-goal, 1)}
	c.reached = make(chan struct{})
	c.check(time.Now())
	return c.reached
}

// add records one event.
func (c *l3Counter) add(ev *l3Event, at time.Time) {
	if !c.hosts.Contains(ev.IP) {
		return
	}
	var set map[netip.Addr]struct{}
	switch {
	case ev.Route && ev.Table == c.table:
		set = c.route
	case !ev.Route && ev.Ifindex == c.ifindex && (ev.Del || ev.Flags&unix.NTF_EXT_LEARNED != 0):
		set = c.neigh
	default:
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, had := set[ev.IP]
	if ev.Del {
		delete(set, ev.IP)
	} else {
		set[ev.IP] = struct{}{}
	}
	if had == !ev.Del || c.reached == nil {
		return
	}
	if c.first.IsZero() {
		c.first = at
	}
	c.check(at)
}

// check closes reached if the goal is met; c.mu held.
func (c *l3Counter) check(at time.Time) {
	select {
	case <-c.reached:
		return
	default:
	}
	n, r := len(c.neigh), len(c.route)
	if c.rising {
		c.prog.update(min(n, r), at)
		if n < c.goal || r < c.goal {
			return
		}
	} else {
		c.prog.update(c.from-max(n, r), at)
		if n > c.goal || r > c.goal {
			return
		}
	}
	c.last = at
	close(c.reached)
}

// counts returns the neighbours and host routes counted now.
func (c *l3Counter) counts() (neigh, route int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.neigh), len(c.route)
}

// times returns, for the current goal, when the first change, the
// progress marks and the change that met it were seen.
func (c *l3Counter) times() (first time.Time, marks [3]time.Time, last time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first, c.prog.at, c.last
}
