package fib

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
	vnetns "github.com/vishvananda/netns"
)

// BenchmarkL3Hosts installs 10,000 remote MAC+IP routes (a suppression
// neighbour and a host route each, over 10 VTEPs) in one pass and reports
// hosts per second. Each pass also dumps the VRF's L3 state.
func BenchmarkL3Hosts(b *testing.B) {
	const hosts = 10000
	l := newLab(b, "l3b", 4001, 100)
	l.run(b, []string{"ip", "addr", "add", "10.0.0.1/32", "dev", "lo"})
	nsh, err := vnetns.GetFromName(l.ns.Name)
	if err != nil {
		b.Fatal(err)
	}
	defer nsh.Close()
	k, err := NewL3Netlink(l.h, nsh)
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	dev := L3Devices{VRF: "b", L3VNI: 4001, Table: MainTable, SVI: "br4001", VXLAN: "vxlan4001", MemberSVIs: []string{"br100"}}
	var total time.Duration
	for b.Loop() {
		d := NewL3Desired(dev)
		for i := range hosts {
			ip := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
			mac := evpn.MAC{2, 1, 0, 0, byte(i >> 8), byte(i)}
			vtep := netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + i%10)})
			must(b, d.SetNeigh("br100", ip, mac))
			must(b, d.SetHost(ip, NextHop{vtep, evpn.MAC{2, 0xee, 10, 0, 0, byte(2 + i%10)}}))
		}
		r := NewL3Reconciler(d, k, nil)
		start := time.Now()
		if _, err := r.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		// Withdraw all for the next round (not timed).
		r2 := NewL3Reconciler(NewL3Desired(dev), k, nil)
		r2.MarkSynced()
		if _, err := r2.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(hosts*b.N)/total.Seconds(), "hosts/s")
}
