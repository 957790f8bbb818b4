package fib

// dirtySet is the set of keys waiting for the reconciler, in generations:
// every take starts a new one. A take serves half its batch from the
// newest generations and the rest from the oldest. During a burst (100k
// keys queued faster than the kernel takes them) a key changed now is
// therefore written within about one batch instead of waiting, in random
// order, behind the whole backlog, and the oldest keys still make progress
// at every take, so none waits forever.
//
// A key re-marked moves to the current generation; its entry in an older
// generation is skipped when reached.
type dirtySet struct {
	gen  uint64
	keys map[Key]uint64 // key → generation of its latest mark
	gens []dirtyGen     // oldest first
}

type dirtyGen struct {
	gen  uint64
	keys []Key
}

func newDirtySet() dirtySet { return dirtySet{keys: make(map[Key]uint64)} }

func (s *dirtySet) len() int { return len(s.keys) }

func (s *dirtySet) has(k Key) bool {
	_, ok := s.keys[k]
	return ok
}

func (s *dirtySet) add(k Key) {
	if g, ok := s.keys[k]; ok && g == s.gen {
		return
	}
	s.keys[k] = s.gen
	n := len(s.gens)
	if n == 0 || s.gens[n-1].gen != s.gen {
		s.gens = append(s.gens, dirtyGen{gen: s.gen})
		n++
	}
	s.gens[n-1].keys = append(s.gens[n-1].keys, k)
}

// take removes up to max keys and calls fn for each: up to half of max
// (rounded up) from the newest generations first, then the oldest.
func (s *dirtySet) take(max int, fn func(Key)) {
	s.gen++
	taken := 0
	for i := len(s.gens) - 1; i >= 0 && taken < (max+1)/2; i-- {
		taken += s.pop(&s.gens[i], (max+1)/2-taken, fn)
	}
	for i := 0; i < len(s.gens) && taken < max; i++ {
		taken += s.pop(&s.gens[i], max-taken, fn)
	}
	// Drop the generations emptied.
	live := s.gens[:0]
	for _, g := range s.gens {
		if len(g.keys) > 0 {
			live = append(live, g)
		}
	}
	clear(s.gens[len(live):])
	s.gens = live
	if len(s.keys) == 0 {
		s.gens = nil // let a burst's storage go
	}
}

// pop takes up to n keys from the end of g that are still due in g.
func (s *dirtySet) pop(g *dirtyGen, n int, fn func(Key)) int {
	taken := 0
	for taken < n && len(g.keys) > 0 {
		k := g.keys[len(g.keys)-1]
		g.keys = g.keys[:len(g.keys)-1]
		if cur, ok := s.keys[k]; ok && cur == g.gen {
			delete(s.keys, k)
			fn(k)
			taken++
		}
	}
	if len(g.keys) == 0 {
		g.keys = nil
	}
	return taken
}
