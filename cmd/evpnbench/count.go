//go:build linux

package main

import (
	"sync"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// macCounter counts the remote MACs installed on one VXLAN device from FDB
// notifications: a MAC counts once both its VXLAN entry (self, with a
// remote) and its bridge entry (master) are present. It is safe for
// concurrent use: events come from the watch goroutine.
type macCounter struct {
	mu      sync.Mutex
	ifindex int32
	want    int
	self    map[evpn.MAC]struct{}
	master  map[evpn.MAC]struct{}
	events  int
	first   time.Time // first entry seen
	last    time.Time // the entry that completed the count
	prog    progress
	full    chan struct{}
	closed  bool
}

// progress records when a count of want first reached 10, 50 and 90%.
type progress struct {
	want int
	at   [3]time.Time
}

var progressMarks = [3]int{10, 50, 90}

func (p *progress) update(n int, at time.Time) {
	for i, pct := range progressMarks {
		if p.at[i].IsZero() && n*100 >= p.want*pct {
			p.at[i] = at
		}
	}
}

func newMACCounter(ifindex int32, want int) *macCounter {
	return &macCounter{
		ifindex: ifindex, want: want,
		self:   make(map[evpn.MAC]struct{}, want),
		master: make(map[evpn.MAC]struct{}, want),
		prog:   progress{want: want},
		full:   make(chan struct{}),
	}
}

// add records one event.
func (c *macCounter) add(ev *fdbEvent, at time.Time) {
	if ev.Ifindex != c.ifindex || !ev.MAC.IsUnicast() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events++
	set := c.self
	if ev.Master {
		set = c.master
	} else if !ev.Dst.IsValid() {
		return
	}
	if ev.Del {
		delete(set, ev.MAC)
		return
	}
	if c.first.IsZero() {
		c.first = at
	}
	set[ev.MAC] = struct{}{}
	c.prog.update(min(len(c.self), len(c.master)), at)
	if !c.closed && len(c.self) >= c.want && len(c.master) >= c.want {
		c.last, c.closed = at, true
		close(c.full)
	}
}

// counts returns the VXLAN and bridge entries counted so far.
func (c *macCounter) counts() (self, master, events int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.self), len(c.master), c.events
}

// times returns when the first entry, the progress marks and the
// completing entry were seen.
func (c *macCounter) times() (first time.Time, marks [3]time.Time, last time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first, c.prog.at, c.last
}
