package daemon

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

func TestResyncHold(t *testing.T) {
	rr := netip.MustParseAddr("10.0.0.254")
	other := netip.MustParseAddr("10.0.0.253")
	k1 := evpn.Key{Type: evpn.RouteTypeMACIP, MAC: evpn.MAC{2, 0, 0, 0, 0, 1}}
	k2 := evpn.Key{Type: evpn.RouteTypeMACIP, MAC: evpn.MAC{2, 0, 0, 0, 0, 2}}
	t0 := time.Unix(1000, 0)
	h := newResyncHold(10 * time.Second)

	h.established(rr, t0)
	if h.withdraw(k1, rr) {
		t.Fatal("first session of the run: withdrawals must not be held")
	}
	// The reflector restarts and comes back.
	h.established(rr, t0.Add(time.Minute))
	if !h.withdraw(k1, rr) || !h.withdraw(k2, rr) {
		t.Fatal("withdrawals from a re-established peer must be held")
	}
	if h.withdraw(k1, other) {
		t.Fatal("a peer that did not re-establish is not held")
	}
	h.announced(k1) // k1 came back: its withdrawal is cancelled
	h.endOfRIB(rr, t0.Add(time.Minute+2*time.Second))
	if got := h.expire(t0.Add(time.Minute + 11*time.Second)); len(got) != 0 {
		t.Fatalf("expired before the window after End-of-RIB: %v", got)
	}
	got := h.expire(t0.Add(time.Minute + 12*time.Second))
	if !slices.Equal(got, []evpn.Key{k2}) {
		t.Fatalf("expire = %v, want only k2", got)
	}
	if h.active() || h.withdraw(k1, rr) {
		t.Fatal("after the window, withdrawals apply at once")
	}
}
