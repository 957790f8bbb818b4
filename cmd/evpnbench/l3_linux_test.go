//go:build linux

package main

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// TestL3Smoke runs the l3 benchmark at a small size so that it keeps
// working: 2,000 MAC+IP routes into an evpnd leaf and (if installed) an
// FRR leaf, each until every suppression neighbour and host route is in
// its kernel and a dump agrees, then withdrawn until none is left. It
// asserts no timing.
func TestL3Smoke(t *testing.T) {
	requireRoot(t)
	if testing.Short() {
		t.Skip("-short: the l3 smoke test builds evpnd and loads a leaf")
	}
	o := l3Options{
		common:   commonFlags{frr: withFRR(t)},
		Routes:   2000,
		VTEPs:    3,
		Rounds:   1,
		Withdraw: true,
		Timeout:  2 * time.Minute,
	}
	var progress bytes.Buffer
	res, err := l3Bench(t.Context(), o, &progress)
	t.Log(progress.String())
	if err != nil {
		t.Fatal(err)
	}
	want := leafOrder(0, o.common.frr)
	if len(res) != len(want) {
		t.Fatalf("%d results, want one per implementation %v", len(res), want)
	}
	for i, r := range res {
		// l3Once fails unless every entry arrived and went; these check
		// that the figures were filled in.
		if r.Impl != want[i] || r.Total <= 0 || r.WTotal <= 0 || r.Before.RSS <= 0 || r.After.CPU < r.Before.CPU {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	rep := l3Report(o, res, "test")
	if o.common.frr && !strings.Contains(rep, "evpnd/FRR") {
		t.Errorf("report lacks the ratios:\n%s", rep)
	}
	t.Log(rep)
}

func TestL3Routes(t *testing.T) {
	c := feederConfig{ASN: 65000, Routes: 500, VTEPs: 3, FirstVTEP: netip.MustParseAddr("10.0.0.10"), VNI: 100}
	routes := l3Routes(c)
	raw, n, err := rawUpdatesFor(routes, rrAddr, 0)
	if err != nil {
		t.Fatal(err)
	}
	msgs := splitMessages(t, raw)
	if len(msgs) != n {
		t.Fatalf("%d messages, reported %d", len(msgs), n)
	}
	ips, macs := map[netip.Addr]bool{}, map[evpn.MAC]bool{}
	type2 := 0
	for _, m := range msgs {
		ups, err := speaker.DecodeUpdate(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range ups {
			r := u.Route
			if r.Type != evpn.RouteTypeMACIP {
				continue
			}
			type2++
			v := int(r.NextHop.As4()[3]) - 10
			if !slices.Equal(r.Labels, []uint32{100, 4001}) || !r.HasRMAC || r.RouterMAC != l3RouterMAC(v) ||
				!slices.Equal(r.RTs, []evpn.RT{evpn.AutoRT(65000, 100), evpn.AutoRT(65000, 4001)}) || !l3Hosts.Contains(r.IP) || r.IP == l3Gateway.Addr() {
				t.Fatalf("%s: labels %v, router MAC %v (%v), RTs %v, IP %s", r.Key, r.Labels, r.RouterMAC, r.HasRMAC, r.RTs, r.IP)
			}
			ips[r.IP], macs[r.MAC] = true, true
		}
	}
	if type2 != 500 || len(ips) != 500 || len(macs) != 500 {
		t.Fatalf("%d MAC+IP routes, %d addresses, %d MACs; want 500 distinct", type2, len(ips), len(macs))
	}

	wd, wn, err := rawWithdraws(routes[c.VTEPs:], 0)
	if err != nil {
		t.Fatal(err)
	}
	wmsgs := splitMessages(t, wd)
	if len(wmsgs) != wn || wn > 500/90+1 {
		t.Fatalf("%d withdraw messages, reported %d", len(wmsgs), wn)
	}
	gone := map[evpn.Key]bool{}
	for _, m := range wmsgs {
		ups, err := speaker.DecodeUpdate(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range ups {
			if !u.Withdraw || u.Route.Type != evpn.RouteTypeMACIP {
				t.Fatalf("not a MAC+IP withdrawal: %+v", u)
			}
			gone[u.Route.Key] = true
		}
	}
	for _, r := range routes[c.VTEPs:] {
		if !gone[r.Key] {
			t.Fatalf("%s not withdrawn", r.Key)
		}
	}
	if len(gone) != 500 {
		t.Fatalf("%d withdrawn, want 500", len(gone))
	}
}

// routeMsg builds one rtnetlink IPv4 route message.
func routeMsg(typ uint16, dst netip.Addr, bits uint8, table uint32, rtype uint8) []byte {
	b := make([]byte, unix.SizeofNlMsghdr+rtmsgLen)
	binary.NativeEndian.PutUint16(b[4:], typ)
	rm := b[unix.SizeofNlMsghdr:]
	rm[0], rm[1], rm[4], rm[7] = unix.AF_INET, bits, byte(min(table, 252)), rtype
	for _, a := range []struct {
		t uint16
		v []byte
	}{{unix.RTA_TABLE, binary.NativeEndian.AppendUint32(nil, table)}, {unix.RTA_DST, dst.AsSlice()}} {
		b = binary.NativeEndian.AppendUint16(b, uint16(4+len(a.v)))
		b = binary.NativeEndian.AppendUint16(b, a.t)
		b = append(b, a.v...)
	}
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	return b
}

func TestL3Counter(t *testing.T) {
	const idx = 9
	h := func(i int) netip.Addr { return l3Host(i) }
	var buf []byte
	add := func(m []byte) { buf = append(buf, m...) }
	mac := []byte{2, 0xeb, 0, 0, 0, 1}
	add(neighMsg(unix.RTM_NEWNEIGH, unix.AF_INET, idx, unix.NTF_EXT_LEARNED, mac, h(0), 0))
	add(neighMsg(unix.RTM_NEWNEIGH, unix.AF_INET, idx, 0, mac, h(1), 0))                           // not extern_learn
	add(neighMsg(unix.RTM_NEWNEIGH, unix.AF_INET, idx+1, unix.NTF_EXT_LEARNED, mac, h(1), 0))      // another device
	add(neighMsg(unix.RTM_NEWNEIGH, unix.AF_BRIDGE, idx, unix.NTF_EXT_LEARNED, mac, h(1), 0))      // FDB
	add(neighMsg(unix.RTM_NEWNEIGH, unix.AF_INET, idx, unix.NTF_EXT_LEARNED, mac, firstRemote, 0)) // not a host
	add(routeMsg(unix.RTM_NEWROUTE, h(0), 32, mainTbl, unix.RTN_UNICAST))
	add(routeMsg(unix.RTM_NEWROUTE, h(1), 32, 1001, unix.RTN_UNICAST))              // another table
	add(routeMsg(unix.RTM_NEWROUTE, h(1), 24, mainTbl, unix.RTN_UNICAST))           // not a host route
	add(routeMsg(unix.RTM_NEWROUTE, h(1), 32, unix.RT_TABLE_LOCAL, unix.RTN_LOCAL)) // local
	c := newL3Counter(idx, mainTbl, l3Hosts, 2)
	done := c.expect(2)
	t0 := time.Unix(1000, 0)
	feed := func(b []byte, at time.Time) {
		t.Helper()
		if err := parseL3Events(b, func(ev *l3Event) { c.add(ev, at) }); err != nil {
			t.Fatal(err)
		}
	}
	isDone := func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
	feed(buf, t0)
	if n, r := c.counts(); n != 1 || r != 1 || isDone() {
		t.Fatalf("counts %d, %d (done %v); want 1, 1, not done", n, r, isDone())
	}
	feed(neighMsg(unix.RTM_NEWNEIGH, unix.AF_INET, idx, unix.NTF_EXT_LEARNED, mac, h(1), 0), t0.Add(time.Millisecond))
	if isDone() {
		t.Fatal("done with a host route missing")
	}
	feed(routeMsg(unix.RTM_NEWROUTE, h(1), 32, mainTbl, unix.RTN_UNICAST), t0.Add(2*time.Millisecond))
	if !isDone() {
		t.Fatal("not done with both entries of both hosts")
	}
	if first, marks, last := c.times(); !first.Equal(t0) || !last.Equal(t0.Add(2*time.Millisecond)) || !marks[1].Equal(t0) {
		t.Errorf("times %v %v %v", first, marks, last)
	}
	// The withdrawal: done when both counts are 0.
	done = c.expect(0)
	feed(routeMsg(unix.RTM_DELROUTE, h(0), 32, mainTbl, unix.RTN_UNICAST), t0.Add(3*time.Millisecond))
	feed(neighMsg(unix.RTM_DELNEIGH, unix.AF_INET, idx, 0, mac, h(0), 0), t0.Add(4*time.Millisecond))
	feed(routeMsg(unix.RTM_DELROUTE, h(1), 32, mainTbl, unix.RTN_UNICAST), t0.Add(5*time.Millisecond))
	if isDone() {
		t.Fatal("withdrawn with a neighbour left")
	}
	feed(neighMsg(unix.RTM_DELNEIGH, unix.AF_INET, idx, unix.NTF_EXT_LEARNED, mac, h(1), 0), t0.Add(6*time.Millisecond))
	if !isDone() {
		t.Fatal("not withdrawn with nothing left")
	}
	if first, _, last := c.times(); !first.Equal(t0.Add(3*time.Millisecond)) || !last.Equal(t0.Add(6*time.Millisecond)) {
		t.Errorf("withdraw times %v %v", first, last)
	}
	if err := parseL3Events(buf[:len(buf)-3], func(*l3Event) {}); err == nil {
		t.Error("truncated buffer: no error")
	}
}

func TestFRRKnowsVNIs(t *testing.T) {
	out := `Advertise Gateway Macip: Disabled
Advertise SVI Macip: Disabled
Advertise All VNI flag: Enabled
BUM flooding: Head-end replication
Number of L2 VNIs: 1
Number of L3 VNIs: 1
Flags: * - Kernel
  VNI        Type RD                    Import RT                 Export RT                 Tenant VRF                           
* 100        L2   10.0.0.1:2            65000:100                 65000:100                default                              
* 4001       L3   10.0.0.1:1            65000:4001                65000:4001                default                              
`
	if !frrKnowsVNIs(out) {
		t.Error("both VNIs listed: not found")
	}
	if frrKnowsVNIs(strings.Replace(out, "* 4001       L3", "", 1)) {
		t.Error("without the L3VNI: found")
	}
}

func TestL3Pairs(t *testing.T) {
	res := []l3Result{
		{Impl: implEvpnd, Round: 1, Total: 4 * time.Second},
		{Impl: implFRR, Round: 1, Total: 2 * time.Second},
		{Impl: implFRR, Round: 2, Total: time.Second},
		{Impl: implEvpnd, Round: 2, Total: 3 * time.Second},
		{Impl: implEvpnd, Round: 3, Total: time.Second}, // no FRR in round 3
	}
	p := l3Pairs(res)
	if len(p) != 2 || p[0][0].Round != 1 || p[0][1].Total != 2*time.Second || p[1][0].Total != 3*time.Second || p[1][1].Round != 2 {
		t.Fatalf("pairs %+v", p)
	}
}
