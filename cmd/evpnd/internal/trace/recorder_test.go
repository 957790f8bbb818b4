package trace

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func mac(i int) evpn.MAC {
	return evpn.MAC{0x02, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

// ev returns a distinct event whose Seq identifies it.
func ev(seq uint32) Event {
	return Event{
		Time: t0.Add(time.Duration(seq) * time.Millisecond),
		Kind: RouteReceived,
		Peer: netip.MustParseAddr("192.0.2.1"),
		VTEP: netip.MustParseAddr("198.51.100.7"),
		Seq:  seq,
	}
}

func seqs(k Key) []uint32 {
	var out []uint32
	for _, e := range k.Events {
		out = append(out, e.Seq)
	}
	return out
}

// check walks every internal structure and fails if they disagree: the LRU
// list, the key map, the per-VNI and per-MAC lists and the event count.
func check(t *testing.T, r *Recorder) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.keys) > r.maxKeys {
		t.Fatalf("%d keys, want at most %d", len(r.keys), r.maxKeys)
	}
	n, events := 0, 0
	for e := r.lru.lru.next; e != &r.lru; e = e.lru.next {
		if e.lru.next.lru.prev != e {
			t.Fatalf("LRU list broken after %v", e.key)
		}
		if r.keys[e.key] != e {
			t.Fatalf("LRU entry %v not in the key map", e.key)
		}
		if len(e.events) > r.perKey || (e.start != 0 && len(e.events) != r.perKey) {
			t.Fatalf("%v: ring len %d start %d, perKey %d", e.key, len(e.events), e.start, r.perKey)
		}
		n++
		events += len(e.events)
	}
	if n != len(r.keys) || events != r.events {
		t.Fatalf("LRU has %d keys %d events; map %d keys, count %d events", n, events, len(r.keys), r.events)
	}
	n = 0
	for vni, head := range r.vnis {
		if head == nil || head.byVNI.prev != nil {
			t.Fatalf("VNI %d: bad list head", vni)
		}
		for e := head; e != nil; e = e.byVNI.next {
			if e.key.vni != vni || r.keys[e.key] != e || (e.byVNI.next != nil && e.byVNI.next.byVNI.prev != e) {
				t.Fatalf("VNI %d list broken at %v", vni, e.key)
			}
			n++
		}
	}
	if n != len(r.keys) {
		t.Fatalf("VNI lists hold %d keys, want %d", n, len(r.keys))
	}
	n = 0
	for m, head := range r.macs {
		if head == nil || head.byMAC.prev != nil {
			t.Fatalf("MAC %v: bad list head", m)
		}
		for e := head; e != nil; e = e.byMAC.next {
			if e.key.mac != m || r.keys[e.key] != e || (e.byMAC.next != nil && e.byMAC.next.byMAC.prev != e) {
				t.Fatalf("MAC %v list broken at %v", m, e.key)
			}
			n++
		}
	}
	if n != len(r.keys) {
		t.Fatalf("MAC lists hold %d keys, want %d", n, len(r.keys))
	}
}

func TestOrderAndCopy(t *testing.T) {
	r := New(8, 10)
	m := mac(1)
	for s := uint32(1); s <= 5; s++ {
		r.Record(100, m, ev(s))
	}
	got, ok := r.Get(100, m)
	if !ok {
		t.Fatal("Get: no history for a recorded MAC")
	}
	if want := []uint32{1, 2, 3, 4, 5}; !slices.Equal(seqs(got), want) || got.Truncated {
		t.Fatalf("Get = seqs %v truncated %v, want %v untruncated", seqs(got), got.Truncated, want)
	}
	if got.VNI != 100 || got.MAC != m || got.Events[0] != ev(1) {
		t.Fatalf("Get = %+v, want VNI 100, MAC %v, first event intact", got, m)
	}
	// The result is a copy.
	got.Events[0].Seq = 999
	again, _ := r.Get(100, m)
	if again.Events[0].Seq != 1 {
		t.Fatal("modifying Get's result changed the recorder")
	}
	if _, ok := r.Get(101, m); ok {
		t.Fatal("Get found history in a VNI never recorded")
	}
	if k, e := r.Len(); k != 1 || e != 5 {
		t.Fatalf("Len = %d keys %d events, want 1, 5", k, e)
	}
	check(t, r)
}

func TestStampsZeroTime(t *testing.T) {
	r := New(4, 4)
	before := time.Now()
	r.Record(1, mac(1), Event{Kind: LocalLearned})
	got, _ := r.Get(1, mac(1))
	if tm := got.Events[0].Time; tm.Before(before) || tm.After(time.Now()) {
		t.Fatalf("zero Time stamped as %v, want about now", tm)
	}
	r.Record(1, mac(1), ev(7))
	got, _ = r.Get(1, mac(1))
	if !got.Events[1].Time.Equal(ev(7).Time) {
		t.Fatalf("explicit Time replaced: %v", got.Events[1].Time)
	}
}

func TestTruncation(t *testing.T) {
	for _, n := range []int{4, 5, 7, 8, 9, 30} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			const perKey = 4
			r := New(perKey, 10)
			for s := 1; s <= n; s++ {
				r.Record(1, mac(1), ev(uint32(s)))
			}
			got, _ := r.Get(1, mac(1))
			var want []uint32
			for s := max(1, n-perKey+1); s <= n; s++ {
				want = append(want, uint32(s))
			}
			if !slices.Equal(seqs(got), want) || got.Truncated != (n > perKey) {
				t.Fatalf("after %d events: seqs %v truncated %v; want %v truncated %v",
					n, seqs(got), got.Truncated, want, n > perKey)
			}
			if _, e := r.Len(); e != min(n, perKey) {
				t.Fatalf("Len events = %d, want %d", e, min(n, perKey))
			}
			check(t, r)
		})
	}
}

func TestLRUEviction(t *testing.T) {
	r := New(4, 3)
	r.Record(1, mac(1), ev(1))
	r.Record(1, mac(2), ev(2))
	r.Record(1, mac(3), ev(3))
	r.Record(1, mac(1), ev(4)) // mac(2) is now the least recently recorded
	r.Record(1, mac(4), ev(5)) // evicts mac(2)
	check(t, r)
	if _, ok := r.Get(1, mac(2)); ok {
		t.Fatal("least recently recorded key not evicted")
	}
	for _, i := range []int{1, 3, 4} {
		if _, ok := r.Get(1, mac(i)); !ok {
			t.Fatalf("key %d evicted, want only key 2 evicted", i)
		}
	}
	// Get does not count as recording: mac(3) stays the oldest.
	r.Get(1, mac(3))
	r.Record(2, mac(2), ev(6)) // evicts mac(3)
	if _, ok := r.Get(1, mac(3)); ok {
		t.Fatal("Get refreshed a key's recency; want only Record to")
	}
	if k, e := r.Len(); k != 3 || e != 4 {
		t.Fatalf("Len = %d keys %d events, want 3 keys 4 events", k, e)
	}
	// An evicted key comes back with only its new events.
	r.Record(1, mac(2), ev(7))
	got, _ := r.Get(1, mac(2))
	if !slices.Equal(seqs(got), []uint32{7}) || got.Truncated {
		t.Fatalf("re-added key has %v truncated %v, want [7] untruncated", seqs(got), got.Truncated)
	}
	check(t, r)
}

func TestEvictionReusesFullRing(t *testing.T) {
	r := New(3, 1)
	for s := uint32(1); s <= 5; s++ {
		r.Record(1, mac(1), ev(s))
	}
	r.Record(1, mac(2), ev(10)) // reuses mac(1)'s full, wrapped ring
	got, _ := r.Get(1, mac(2))
	if !slices.Equal(seqs(got), []uint32{10}) || got.Truncated {
		t.Fatalf("recycled key has %v truncated %v, want [10] untruncated", seqs(got), got.Truncated)
	}
	if k, e := r.Len(); k != 1 || e != 1 {
		t.Fatalf("Len = %d, %d, want 1, 1", k, e)
	}
	check(t, r)
}

func TestFindAndRemoveVNI(t *testing.T) {
	r := New(4, 100)
	m := mac(7)
	for _, vni := range []uint32{30, 10, 20} {
		r.Record(vni, m, ev(vni))
		r.Record(vni, mac(8), ev(vni+1)) // another MAC in the same VNIs
	}
	vnis := func(ks []Key) []uint32 {
		var out []uint32
		for _, k := range ks {
			if k.MAC != m {
				t.Fatalf("Find(%v) returned MAC %v", m, k.MAC)
			}
			if !slices.Equal(seqs(k), []uint32{k.VNI}) {
				t.Fatalf("Find: VNI %d has events %v, want [%d]", k.VNI, seqs(k), k.VNI)
			}
			out = append(out, k.VNI)
		}
		return out
	}
	if got := vnis(r.Find(m)); !slices.Equal(got, []uint32{10, 20, 30}) {
		t.Fatalf("Find VNIs = %v, want [10 20 30]", got)
	}
	if got := r.Find(mac(9)); got != nil {
		t.Fatalf("Find of an unknown MAC = %v, want nil", got)
	}

	r.RemoveVNI(20)
	check(t, r)
	if got := vnis(r.Find(m)); !slices.Equal(got, []uint32{10, 30}) {
		t.Fatalf("after RemoveVNI(20), Find VNIs = %v, want [10 30]", got)
	}
	if _, ok := r.Get(20, mac(8)); ok {
		t.Fatal("RemoveVNI left another MAC of the VNI")
	}
	if k, e := r.Len(); k != 4 || e != 4 {
		t.Fatalf("Len = %d, %d, want 4, 4", k, e)
	}
	r.RemoveVNI(20) // again: nothing to do
	r.RemoveVNI(10)
	r.RemoveVNI(30)
	check(t, r)
	if k, e := r.Len(); k != 0 || e != 0 || r.Find(m) != nil {
		t.Fatalf("after removing every VNI: Len %d, %d, Find %v", k, e, r.Find(m))
	}
}

func TestDefaults(t *testing.T) {
	r := New(0, -1)
	if r.perKey != DefaultPerKey || r.maxKeys != DefaultMaxKeys {
		t.Fatalf("New(0, -1) = perKey %d maxKeys %d, want the defaults", r.perKey, r.maxKeys)
	}
}

// TestModel drives the recorder with random operations and compares every
// result with a naive model: a slice of keys in recency order, each with all
// of its events.
func TestModel(t *testing.T) {
	const perKey, maxKeys = 5, 8
	type hist struct {
		k   key
		evs []uint32
	}
	r := New(perKey, maxKeys)
	var model []*hist // most recently recorded last
	find := func(k key) int {
		return slices.IndexFunc(model, func(h *hist) bool { return h.k == k })
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 20000 {
		k := key{uint32(rng.IntN(4)), mac(rng.IntN(6))}
		switch op := rng.IntN(100); {
		case op < 80:
			s := uint32(step)
			r.Record(k.vni, k.mac, ev(s))
			i := find(k)
			var h *hist
			if i >= 0 {
				h = model[i]
				model = slices.Delete(model, i, i+1)
			} else {
				if len(model) == maxKeys {
					model = model[1:]
				}
				h = &hist{k: k}
			}
			h.evs = append(h.evs, s)
			model = append(model, h)
		case op < 98:
			got, ok := r.Get(k.vni, k.mac)
			i := find(k)
			if ok != (i >= 0) {
				t.Fatalf("step %d: Get(%v) ok=%v, model has it: %v", step, k, ok, i >= 0)
			}
			if ok {
				h := model[i]
				want := h.evs[max(0, len(h.evs)-perKey):]
				if !slices.Equal(seqs(got), want) || got.Truncated != (len(h.evs) > perKey) {
					t.Fatalf("step %d: Get(%v) = %v truncated %v, want %v", step, k, seqs(got), got.Truncated, want)
				}
			}
			var wantVNIs []uint32
			for _, h := range model {
				if h.k.mac == k.mac {
					wantVNIs = append(wantVNIs, h.k.vni)
				}
			}
			slices.Sort(wantVNIs)
			var gotVNIs []uint32
			for _, f := range r.Find(k.mac) {
				gotVNIs = append(gotVNIs, f.VNI)
			}
			if !slices.Equal(gotVNIs, wantVNIs) {
				t.Fatalf("step %d: Find(%v) VNIs %v, want %v", step, k.mac, gotVNIs, wantVNIs)
			}
		default:
			r.RemoveVNI(k.vni)
			model = slices.DeleteFunc(model, func(h *hist) bool { return h.k.vni == k.vni })
		}
		if step%97 == 0 {
			check(t, r)
		}
	}
	check(t, r)
}

// TestConcurrent records, reads and removes from many goroutines; run it
// with -race. It then checks the structures are consistent.
func TestConcurrent(t *testing.T) {
	r := New(8, 64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 5000 {
				vni := uint32(i % 5)
				m := mac((i * (g + 1)) % 97)
				switch i % 10 {
				case 7:
					r.Get(vni, m)
				case 8:
					for _, k := range r.Find(m) {
						if k.MAC != m || len(k.Events) == 0 {
							t.Errorf("Find(%v) returned %v with %d events", m, k.MAC, len(k.Events))
						}
					}
				case 9:
					if g == 0 && i%100 == 9 {
						r.RemoveVNI(vni)
					}
					r.Len()
				default:
					r.Record(vni, m, ev(uint32(i)))
				}
			}
		})
	}
	wg.Wait()
	check(t, r)
	if k, _ := r.Len(); k == 0 || k > 64 {
		t.Fatalf("Len keys = %d after concurrent use, want 1..64", k)
	}
}
