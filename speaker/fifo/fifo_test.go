package fifo

import "testing"

func TestQueueOrderWakeAndReuse(t *testing.T) {
	q := New[int]()
	select {
	case <-q.Wake():
		t.Fatal("an empty queue woke the consumer")
	default:
	}
	q.Push(1)
	q.Push(2)
	select {
	case <-q.Wake():
	default:
		t.Fatal("Push did not wake the consumer")
	}
	if n := q.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
	got := q.Take(nil)
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("Take = %v, want [1 2]", got)
	}
	q.Push(3)
	again := q.Take(got)
	if len(again) != 1 || again[0] != 3 {
		t.Fatalf("second Take = %v, want [3]", again)
	}
	if n := q.Len(); n != 0 {
		t.Fatalf("Len after Take = %d, want 0", n)
	}
}
