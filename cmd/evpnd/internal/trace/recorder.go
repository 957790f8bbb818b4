package trace

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// Defaults used by New for a non-positive perKey or maxKeys.
const (
	DefaultPerKey  = 32
	DefaultMaxKeys = 16384
)

// initialRing is the capacity of a new key's ring. Most MACs see a handful
// of events (received, selected, written), so rings start small and double
// up to perKey.
const initialRing = 4

type key struct {
	vni uint32
	mac evpn.MAC
}

// link is one node's place in an intrusive doubly linked list.
type link struct{ prev, next *entry }

// entry is one key's history. It sits on three intrusive lists: the
// recorder's LRU list (a circular list around a sentinel) and the
// NULL-terminated lists of its VNI and of its MAC, whose heads are kept in
// maps so that RemoveVNI and Find touch only the keys concerned.
type entry struct {
	key key
	// events is the ring: it grows by appending until it holds perKey
	// events, then start is the index of the oldest one.
	events    []Event
	start     int
	truncated bool

	lru, byVNI, byMAC link
}

// Recorder is a bounded per-(VNI, MAC) event history. The zero value is not
// usable; call New.
type Recorder struct {
	perKey, maxKeys int

	mu     sync.Mutex
	keys   map[key]*entry
	vnis   map[uint32]*entry   // head of each VNI's list
	macs   map[evpn.MAC]*entry // head of each MAC's list
	lru    entry               // sentinel: lru.next is the most recently recorded
	events int                 // events held over all keys
}

// New returns an empty Recorder keeping at most perKey events for each of
// at most maxKeys (VNI, MAC) keys. A value ≤ 0 selects DefaultPerKey or
// DefaultMaxKeys.
func New(perKey, maxKeys int) *Recorder {
	if perKey <= 0 {
		perKey = DefaultPerKey
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	r := &Recorder{
		perKey:  perKey,
		maxKeys: maxKeys,
		keys:    make(map[key]*entry),
		vnis:    make(map[uint32]*entry),
		macs:    make(map[evpn.MAC]*entry),
	}
	r.lru.lru = link{prev: &r.lru, next: &r.lru}
	return r
}

// Record appends ev to the history of mac in vni, stamping time.Now() if
// ev.Time is zero. If the key is new and the Recorder already holds
// maxKeys keys, the least recently recorded key is evicted first.
func (r *Recorder) Record(vni uint32, mac evpn.MAC, ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	k := key{vni, mac}

	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.keys[k]
	if e == nil {
		e = r.insert(k)
	} else if r.lru.lru.next != e {
		r.lruUnlink(e)
		r.lruPushFront(e)
	}
	r.push(e, ev)
}

// push appends ev to e's ring, overwriting the oldest event when full.
func (r *Recorder) push(e *entry, ev Event) {
	if n := len(e.events); n < r.perKey {
		if n == cap(e.events) {
			grown := make([]Event, n, min(max(2*n, initialRing), r.perKey))
			copy(grown, e.events)
			e.events = grown
		}
		e.events = append(e.events, ev)
		r.events++
		return
	}
	e.events[e.start] = ev
	e.start++
	if e.start == len(e.events) {
		e.start = 0
	}
	e.truncated = true
}

// insert adds an empty entry for k, evicting the least recently recorded
// key if the Recorder is full, and reusing its ring.
func (r *Recorder) insert(k key) *entry {
	var e *entry
	if len(r.keys) >= r.maxKeys {
		e = r.lru.lru.prev
		r.remove(e)
	}
	if e == nil {
		e = &entry{}
	} else {
		clear(e.events) // drop references to old Detail strings
		*e = entry{events: e.events[:0]}
	}
	e.key = k
	r.keys[k] = e
	r.lruPushFront(e)

	e.byVNI = link{next: r.vnis[k.vni]}
	if e.byVNI.next != nil {
		e.byVNI.next.byVNI.prev = e
	}
	r.vnis[k.vni] = e

	e.byMAC = link{next: r.macs[k.mac]}
	if e.byMAC.next != nil {
		e.byMAC.next.byMAC.prev = e
	}
	r.macs[k.mac] = e
	return e
}

// remove unlinks e from every list and map. Its ring is left for the
// caller to reuse.
func (r *Recorder) remove(e *entry) {
	delete(r.keys, e.key)
	r.events -= len(e.events)
	r.lruUnlink(e)

	if p := e.byVNI.prev; p != nil {
		p.byVNI.next = e.byVNI.next
	} else if e.byVNI.next != nil {
		r.vnis[e.key.vni] = e.byVNI.next
	} else {
		delete(r.vnis, e.key.vni)
	}
	if n := e.byVNI.next; n != nil {
		n.byVNI.prev = e.byVNI.prev
	}

	if p := e.byMAC.prev; p != nil {
		p.byMAC.next = e.byMAC.next
	} else if e.byMAC.next != nil {
		r.macs[e.key.mac] = e.byMAC.next
	} else {
		delete(r.macs, e.key.mac)
	}
	if n := e.byMAC.next; n != nil {
		n.byMAC.prev = e.byMAC.prev
	}
}

func (r *Recorder) lruUnlink(e *entry) {
	e.lru.prev.lru.next = e.lru.next
	e.lru.next.lru.prev = e.lru.prev
	e.lru = link{}
}

func (r *Recorder) lruPushFront(e *entry) {
	head := &r.lru
	e.lru = link{prev: head, next: head.lru.next}
	head.lru.next.lru.prev = e
	head.lru.next = e
}

// Get returns a copy of the history of mac in vni, events oldest first,
// and false if there is none (never recorded, evicted or removed).
func (r *Recorder) Get(vni uint32, mac evpn.MAC) (Key, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.keys[key{vni, mac}]
	if e == nil {
		return Key{}, false
	}
	return e.snapshot(), true
}

// snapshot copies e's history, oldest event first.
func (e *entry) snapshot() Key {
	evs := make([]Event, 0, len(e.events))
	evs = append(evs, e.events[e.start:]...)
	evs = append(evs, e.events[:e.start]...)
	return Key{VNI: e.key.vni, MAC: e.key.mac, Events: evs, Truncated: e.truncated}
}

// Find returns a copy of the history of mac in every VNI that has some,
// sorted by VNI; nil if there is none.
func (r *Recorder) Find(mac evpn.MAC) []Key {
	r.mu.Lock()
	var out []Key
	for e := r.macs[mac]; e != nil; e = e.byMAC.next {
		out = append(out, e.snapshot())
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Key) int { return cmp.Compare(a.VNI, b.VNI) })
	return out
}

// RemoveVNI forgets the history of every MAC of vni, as when the VNI is
// deleted. It costs time in proportion to that VNI's keys only.
func (r *Recorder) RemoveVNI(vni uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for e := r.vnis[vni]; e != nil; {
		next := e.byVNI.next
		r.remove(e)
		*e = entry{} // drop the ring; a removed VNI's MACs rarely return
		e = next
	}
}

// Len returns how many keys and how many events in all the Recorder holds.
func (r *Recorder) Len() (keys, events int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys), r.events
}
