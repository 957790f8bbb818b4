package daemon

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// stuckKernel holds a fixed FDB and refuses every write, so fib's record
// of it stays what it read: the drift stays in place.
type stuckKernel struct {
	dump    []fib.KernelEntry
	applied atomic.Int32
}

func (k *stuckKernel) Dump(context.Context, []fib.VNIDevices) ([]fib.KernelEntry, error) {
	return k.dump, nil
}

func (k *stuckKernel) Apply(_ context.Context, ops []fib.Op) []error {
	errs := make([]error, len(ops))
	for i := range errs {
		errs[i] = errors.New("refused")
	}
	k.applied.Add(1)
	return errs
}

// `show evpn mac` answers InKernel from fib's record of the kernel, and
// with verify from a fresh kernel read: with drift in the kernel, both
// answer the same for every remote MAC, by fib's one definition.
func TestInKernelShowAndVerifyAgree(t *testing.T) {
	const vni = 100
	dev := fib.VNIDevices{VNI: vni, VXLAN: "vxlan100", Bridge: "br100"}
	vtepA, vtepB := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	mac := func(b byte) evpn.MAC { return evpn.MAC{2, 0, 0, 0, 0, b} }
	self := func(m evpn.MAC, v netip.Addr) fib.KernelEntry {
		return fib.KernelEntry{VNI: vni, Dev: dev.VXLAN, MAC: m, VTEP: v, Self: true, ExternLearn: true}
	}
	master := func(m evpn.MAC, extern, sticky bool) fib.KernelEntry {
		return fib.KernelEntry{VNI: vni, Dev: dev.VXLAN, MAC: m, ExternLearn: extern, Sticky: sticky}
	}
	cases := []struct {
		name   string
		mac    evpn.MAC
		sticky bool
		kernel []fib.KernelEntry
		want   bool
	}{
		{"both entries as fib writes them", mac(1), false, []fib.KernelEntry{self(mac(1), vtepA), master(mac(1), true, false)}, true},
		{"wrong VTEP", mac(2), false, []fib.KernelEntry{self(mac(2), vtepB), master(mac(2), true, false)}, false},
		{"bridge entry missing", mac(3), false, []fib.KernelEntry{self(mac(3), vtepA)}, false},
		{"bridge entry not extern_learn", mac(4), false, []fib.KernelEntry{self(mac(4), vtepA), master(mac(4), false, false)}, false},
		{"two remotes", mac(5), false, []fib.KernelEntry{self(mac(5), vtepA), self(mac(5), vtepB), master(mac(5), true, false)}, false},
		{"movable where sticky is wanted", mac(6), true, []fib.KernelEntry{self(mac(6), vtepA), master(mac(6), true, false)}, false},
		{"missing", mac(7), false, nil, false},
	}
	desired := fib.NewDesired()
	if err := desired.SetVNI(dev); err != nil {
		t.Fatal(err)
	}
	k := &stuckKernel{dump: []fib.KernelEntry{{VNI: vni, Dev: dev.VXLAN, Device: true}}}
	var rows []api.MAC
	wants := map[fib.Key]fib.FDBEntry{}
	for _, c := range cases {
		if err := desired.SetMACSticky(vni, c.mac, vtepA, c.sticky); err != nil {
			t.Fatal(err)
		}
		w, ok := desired.WantMAC(vni, c.mac)
		if !ok {
			t.Fatalf("%s: fib wants nothing for the MAC", c.name)
		}
		wants[fib.MACKey(vni, c.mac)] = w
		rows = append(rows, api.MAC{VNI: vni, MAC: c.mac, VTEP: vtepA, Sticky: c.sticky})
		k.dump = append(k.dump, c.kernel...)
	}

	rec := fib.NewReconciler(desired, k, testLog(), fib.Config{MinBackoff: time.Hour, MaxBackoff: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// Once fib has tried (and failed) to write, its record is the kernel
	// it read.
	if !waitFor(t, "fib's first pass", 10*time.Second, func() bool { return k.applied.Load() > 0 }) {
		t.Fatal("fib never tried to write the MACs")
	}
	shown := append([]api.MAC(nil), rows...)
	if err := rec.Installed(ctx, func(inst map[fib.Key]fib.Installed) { markInKernel(shown, wants, inst) }); err != nil {
		t.Fatal(err)
	}
	verified := append([]api.MAC(nil), rows...)
	markInKernel(verified, wants, fib.InstalledFrom(k.dump))
	for i, c := range cases {
		if shown[i].InKernel != verified[i].InKernel || shown[i].InKernel != c.want {
			t.Errorf("%s: show says in kernel %v, verify %v; want %v from both", c.name, shown[i].InKernel, verified[i].InKernel, c.want)
		}
	}
}
