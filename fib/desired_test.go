package fib

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/evpnd/evpnd/speaker/evpn"
)

func TestDesiredValidates(t *testing.T) {
	d := NewDesired()
	for name, err := range map[string]error{
		"zero MAC":       d.SetMAC(100, evpn.MAC{}, ip("10.0.0.2")),
		"multicast MAC":  d.SetMAC(100, mac(t, "01:00:5e:00:00:01"), ip("10.0.0.2")),
		"no VTEP":        d.SetMAC(100, macN(1), netip.Addr{}),
		"unspecified":    d.AddFlood(100, ip("0.0.0.0")),
		"multicast VTEP": d.AddFlood(100, ip("239.1.1.1")),
		// FRR's martian next hops: never a VTEP.
		"VTEP in 0/8":           d.SetMAC(100, macN(2), ip("0.1.2.3")),
		"loopback VTEP":         d.SetMAC(100, macN(2), ip("127.0.0.2")),
		"link-local VTEP":       d.SetMAC(100, macN(2), ip("169.254.0.2")),
		"VTEP in 240/4":         d.SetMAC(100, macN(2), ip("240.0.0.2")),
		"broadcast VTEP":        d.AddFlood(100, ip("255.255.255.255")),
		"mapped martian VTEP":   d.AddFlood(100, ip("::ffff:169.254.0.9")),
		"link-local flood VTEP": d.AddFlood(100, ip("169.254.1.1")),
		"IPv6 link-local VTEP":  d.SetMAC(100, macN(2), ip("fe80::1")),
		"IPv6 loopback VTEP":    d.AddFlood(100, ip("::1")),
		"VNI 0":                 d.SetVNI(VNIDevices{VNI: 0, VXLAN: "v", Bridge: "b"}),
		"VNI too large":         d.SetVNI(VNIDevices{VNI: 1 << 24, VXLAN: "v", Bridge: "b"}),
		"no bridge":             d.SetVNI(VNIDevices{VNI: 100, VXLAN: "v"}),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if n := d.Dirty(); n != 0 {
		t.Errorf("rejected input left %d dirty keys", n)
	}
	// An IPv4-mapped IPv6 VTEP is stored as IPv4.
	must(t, d.SetMAC(100, macN(1), ip("::ffff:10.0.0.2")))
	if got := d.Snapshot().MACs[MACKey(100, macN(1))]; got != ip("10.0.0.2") {
		t.Errorf("mapped VTEP stored as %v", got)
	}
}

func TestDesiredDirtySet(t *testing.T) {
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	if !d.devicesPending() {
		t.Error("SetVNI did not flag a device change")
	}
	must(t, d.SetMAC(100, macN(1), ip("10.0.0.2")))
	must(t, d.SetMAC(100, macN(1), ip("10.0.0.2"))) // same: no-op
	must(t, d.SetMAC(100, macN(2), ip("10.0.0.2")))
	must(t, d.SetMAC(100, macN(2), ip("10.0.0.3"))) // moved before the reconciler looked
	d.DeleteMAC(100, macN(3))                       // unknown: no-op
	must(t, d.AddFlood(100, ip("10.0.0.2")))
	must(t, d.AddFlood(100, ip("10.0.0.2")))
	must(t, d.SetMAC(200, macN(1), ip("10.0.0.2"))) // VNI without devices
	if n := d.Dirty(); n != 4 {
		t.Fatalf("dirty = %d, want 4", n)
	}
	got := map[Key]want{}
	for _, w := range d.takeDirty(100, nil) {
		got[w.Key] = w
	}
	if d.Dirty() != 0 {
		t.Errorf("takeDirty left %d", d.Dirty())
	}
	check := func(k Key, ok bool, vtep string) {
		t.Helper()
		w, found := got[k]
		if !found {
			t.Errorf("%v not taken", k)
			return
		}
		if w.OK != ok || (ok && w.Entry.VTEP != ip(vtep)) || (ok && w.Entry.Dev != "vxlan100") {
			t.Errorf("%v: got %+v, want ok=%v vtep %s on vxlan100", k, w, ok, vtep)
		}
	}
	check(MACKey(100, macN(1)), true, "10.0.0.2")
	check(MACKey(100, macN(2)), true, "10.0.0.3") // the latest value, once
	check(FloodKey(100, ip("10.0.0.2")), true, "10.0.0.2")
	check(MACKey(200, macN(1)), false, "") // no devices: not installed

	// Set then delete before the reconciler looks: one dirty key wanting
	// nothing.
	must(t, d.SetMAC(100, macN(9), ip("10.0.0.2")))
	d.DeleteMAC(100, macN(9))
	ws := d.takeDirty(100, nil)
	if len(ws) != 1 || ws[0].OK {
		t.Errorf("set+delete: %+v, want one key wanting nothing", ws)
	}
}

func TestDesiredBatchesAndWake(t *testing.T) {
	d := NewDesired()
	must(t, d.SetVNI(vniDevs(100)))
	<-d.wakeC()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 250 {
				must(t, d.SetMAC(100, macN(g*1000+n), ip("10.0.0.2")))
			}
		}()
	}
	wg.Wait()
	// 1000 mutations, one buffered wake-up.
	select {
	case <-d.wakeC():
	default:
		t.Fatal("no wake-up after mutations")
	}
	select {
	case <-d.wakeC():
		t.Fatal("wake-ups did not coalesce")
	default:
	}
	seen := map[Key]bool{}
	var batches []int
	for {
		b := d.takeDirty(300, nil)
		if len(b) == 0 {
			break
		}
		batches = append(batches, len(b))
		for _, w := range b {
			if seen[w.Key] {
				t.Fatalf("%v taken twice", w.Key)
			}
			seen[w.Key] = true
		}
	}
	if len(seen) != 1000 || len(batches) != 4 || batches[0] != 300 || batches[3] != 100 {
		t.Errorf("batches %v over %d keys, want [300 300 300 100] over 1000", batches, len(seen))
	}
}
