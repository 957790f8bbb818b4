package fib

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// A write that fails leaves fib unsure of the kernel: here the VXLAN entry
// was already right and only the bridge entry was missing. The retry must
// write again (the record, which guesses the bridge half stayed, must not
// count as holding the entry), and until it succeeds the entry is not
// installed by Holds.
func TestFailedWriteIsRetried(t *testing.T) {
	m := evpn.MAC{2, 0, 0, 0, 0x77, 1}
	vtep := ip("10.0.0.2")
	k := newFakeKernel("vxlan100")
	k.mu.Lock()
	k.vxlan[devMAC{"vxlan100", m}] = &fakeVXLAN{dsts: []netip.Addr{vtep}, ext: true}
	k.failSet[m] = 1
	k.mu.Unlock()
	d := NewDesired()
	must(t, d.SetVNI(VNIDevices{VNI: 100, VXLAN: "vxlan100", Bridge: "br100"}))
	must(t, d.SetMAC(100, m, vtep))
	r := NewReconciler(d, k, nil, Config{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	runReconciler(t, r)
	waitFor(t, "the bridge entry written by the retry", func() bool {
		return strings.Contains(k.state(), m.String()+" dev vxlan100 master extern_learn")
	})
	waitFor(t, "fib settled", func() bool { return settled(d, r) })
	want, _ := d.WantMAC(100, m)
	var holds bool
	must(t, r.Installed(t.Context(), func(inst map[Key]Installed) { holds = inst[MACKey(100, m)].Holds(want) }))
	if !holds {
		t.Errorf("after the retry fib's record does not hold %+v", want)
	}
}
