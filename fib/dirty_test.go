package fib

import (
	"testing"

	"github.com/evpnd/evpnd/speaker/evpn"
)

func dirtyKey(i int) Key {
	return Key{VNI: 100, MAC: evpn.MAC{0x02, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}}
}

func takeAll(s *dirtySet, max int) []Key {
	var out []Key
	s.take(max, func(k Key) { out = append(out, k) })
	return out
}

// A key marked behind a large backlog is served by the next take, not after
// the backlog (a MAC that moves during a 100k burst).
func TestDirtySetNewKeyNextTake(t *testing.T) {
	s := newDirtySet()
	for i := range 10000 {
		s.add(dirtyKey(i))
	}
	for range 3 {
		if got := takeAll(&s, 100); len(got) != 100 {
			t.Fatalf("took %d keys, want 100", len(got))
		}
	}
	fresh := dirtyKey(1 << 20)
	s.add(fresh)
	found := false
	for _, k := range takeAll(&s, 100) {
		found = found || k == fresh
	}
	if !found {
		t.Fatalf("a key marked after a backlog of %d was not in the next take", s.len())
	}
}

// The oldest keys progress at every take, however fast new keys come.
func TestDirtySetOldestProgress(t *testing.T) {
	s := newDirtySet()
	old := map[Key]bool{}
	for i := range 1000 {
		s.add(dirtyKey(i))
		old[dirtyKey(i)] = true
	}
	next := 1000
	for round := 1; len(old) > 0; round++ {
		if round > 21 { // 50 old keys per take of 100: 20 takes
			t.Fatalf("after %d takes %d of the first 1000 keys are still waiting", round-1, len(old))
		}
		for range 100 { // more new keys than a take serves
			s.add(dirtyKey(next))
			next++
		}
		for _, k := range takeAll(&s, 100) {
			delete(old, k)
		}
	}
}

// Every key is taken once, whatever how often and when it was marked, and
// the set empties completely.
func TestDirtySetEachKeyOnce(t *testing.T) {
	s := newDirtySet()
	seen := map[Key]int{}
	for round := range 50 {
		for i := range 40 {
			s.add(dirtyKey((round*7 + i) % 120)) // re-marks across generations
		}
		for _, k := range takeAll(&s, 25) {
			seen[k]++
		}
		if s.len() > 120 {
			t.Fatalf("%d keys dirty, at most 120 distinct ones were marked", s.len())
		}
	}
	for s.len() > 0 {
		for _, k := range takeAll(&s, 25) {
			seen[k]++
		}
	}
	if s.gens != nil {
		t.Errorf("empty set still holds %d generations", len(s.gens))
	}
	// Now each key pending at one time was taken once: mark every key once
	// more and take them all.
	clear(seen)
	for i := range 120 {
		s.add(dirtyKey(i))
		s.add(dirtyKey(i))
	}
	for s.len() > 0 {
		for _, k := range takeAll(&s, 7) {
			seen[k]++
		}
	}
	if len(seen) != 120 {
		t.Fatalf("took %d distinct keys, want 120", len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%v taken %d times, want once", k, n)
		}
	}
}
