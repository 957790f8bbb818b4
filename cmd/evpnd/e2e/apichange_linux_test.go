package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// TestAPIWatchAndTrace watches leaf3 while hm moves from leaf1 to leaf2:
// Watch reports hm's MAC moving to leaf2's VTEP, and leaf3's trace of the
// MAC shows both leafs' routes with their sequence numbers, the selection
// and the kernel write, in order.
func TestAPIWatchAndTrace(t *testing.T) {
	f := deployFabric(t)
	f.converge()
	c := f.client("leaf3")
	hm := f.m.host("hm")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w, err := c.Watch(ctx, &evpndv1.WatchRequest{InitialState: true})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan *evpndv1.WatchResponse, 1024)
	go func() {
		defer close(events)
		for {
			ev, err := w.Recv()
			if err != nil {
				return
			}
			events <- ev
		}
	}()
	// The initial state holds hm at leaf1, then SYNCED.
	var sawHM bool
	waitEvent(t, events, "initial state up to SYNCED", func(ev *evpndv1.WatchResponse) bool {
		if m := ev.GetMac(); m != nil && ev.GetInitial() && m.GetMac().GetMac() == hm.MAC && m.GetMac().GetVtep() == "10.0.0.1" {
			sawHM = true
		}
		return ev.GetKind() == evpndv1.ChangeKind_CHANGE_KIND_SYNCED
	})
	if !sawHM {
		t.Fatal("initial state lacks hm at 10.0.0.1")
	}

	// A move in which leaf2 learns hm while leaf1 still advertises it, so
	// that leaf2 bids a higher sequence number (RFC 7432 §15): hm's old
	// link takes another MAC but stays up, so leaf1's bridge entry for hm
	// stays until leaf1 loses the move; only then does the old link go down.
	from, to := hm.Links[0], hm.Links[1]
	f.exec("hm", "sh", "-ec", "ip addr flush dev "+from.Iface+"\n"+
		"ip link set "+from.Iface+" address "+to.MAC+"\n"+
		"ip link set "+to.Iface+" address "+hm.MAC+"\n"+
		"ip addr add "+hm.IP.String()+"/24 dev "+to.Iface+"\n"+
		"ip link set "+to.Iface+" up\n")
	f.waitPing("hm", f.m.host("h2").IP.String())
	waitEvent(t, events, "hm moved to leaf2", func(ev *evpndv1.WatchResponse) bool {
		m := ev.GetMac()
		return m != nil && !ev.GetInitial() && ev.GetKind() == evpndv1.ChangeKind_CHANGE_KIND_MOVED &&
			m.GetMac().GetMac() == hm.MAC && m.GetMac().GetVtep() == "10.0.0.2" && m.GetPrevious() == "10.0.0.1"
	})
	f.exec("hm", "ip", "link", "set", from.Iface, "down")
	f.at["hm"] = to.At
	f.waitFDB(changeTimeout)

	tr, err := c.Trace(t.Context(), &evpndv1.TraceRequest{Mac: hm.MAC})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.GetKeys()) != 1 || tr.GetKeys()[0].GetVni() != 100 {
		t.Fatalf("trace of hm: want one key in VNI 100, got %v", tr)
	}
	// In order: leaf1's route, selected, written to the kernel; later
	// leaf2's route with a higher sequence, selected, written.
	steps := []struct {
		kind evpndv1.TraceKind
		vtep string
	}{
		{evpndv1.TraceKind_TRACE_KIND_ROUTE_RECEIVED, "10.0.0.1"},
		{evpndv1.TraceKind_TRACE_KIND_SELECTED, "10.0.0.1"},
		{evpndv1.TraceKind_TRACE_KIND_KERNEL_WRITTEN, "10.0.0.1"},
		{evpndv1.TraceKind_TRACE_KIND_ROUTE_RECEIVED, "10.0.0.2"},
		{evpndv1.TraceKind_TRACE_KIND_SELECTED, "10.0.0.2"},
		{evpndv1.TraceKind_TRACE_KIND_KERNEL_WRITTEN, "10.0.0.2"},
	}
	evs := tr.GetKeys()[0].GetEvents()
	var seqs []uint32
	i := 0
	var last time.Time
	for _, ev := range evs {
		if ev.GetTime().AsTime().Before(last) {
			t.Errorf("trace not in time order at %v", ev)
		}
		last = ev.GetTime().AsTime()
		if i < len(steps) && ev.GetKind() == steps[i].kind && ev.GetVtep() == steps[i].vtep {
			if ev.GetKind() == evpndv1.TraceKind_TRACE_KIND_ROUTE_RECEIVED {
				seqs = append(seqs, ev.GetSeq())
				if ev.GetPeer() != "10.0.0.254" {
					t.Errorf("route received from %q, want the spine", ev.GetPeer())
				}
			}
			i++
		}
	}
	if i < len(steps) {
		t.Fatalf("trace of hm on leaf3 lacks step %d (%v from %s) in order:\n%s", i, steps[i].kind, steps[i].vtep, fmtTrace(evs))
	}
	if len(seqs) != 2 || seqs[1] <= seqs[0] {
		t.Errorf("sequence numbers of the two routes: %v; want the second higher", seqs)
	}
	t.Logf("trace of hm on leaf3:\n%s", fmtTrace(evs))

	// evpnctl shows the same timeline.
	out := f.exec("leaf3", "evpnctl", "trace", hm.MAC)
	if !strings.Contains(out, "10.0.0.2") || !strings.Contains(out, "10.0.0.1") {
		t.Errorf("evpnctl trace:\n%s", out)
	}
}

func waitEvent(t *testing.T, events <-chan *evpndv1.WatchResponse, what string, match func(*evpndv1.WatchResponse) bool) {
	t.Helper()
	timeout := time.After(changeTimeout)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("watch ended before %s", what)
			}
			if match(ev) {
				return
			}
		case <-timeout:
			t.Fatalf("no watch event for %s within %v", what, changeTimeout)
		}
	}
}

func fmtTrace(evs []*evpndv1.TraceEvent) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s %-28s peer=%s vtep=%s seq=%d %s\n", e.GetTime().AsTime().Format("15:04:05.000000"),
			e.GetKind(), e.GetPeer(), e.GetVtep(), e.GetSeq(), e.GetDetail())
	}
	return b.String()
}

// TestAPICheck changes leaf3's kernel behind evpnd's back in the four
// ways of a drift: h1's VXLAN (self) entry deleted, h2's bridge (master)
// entry deleted, leaf1's flood entry deleted, a stray extern_learn entry
// added. evpnd repairs each at once, so Check no longer gets to see them
// (fib's own tests show Check reporting drift that is not being
// repaired); instead each repair must show where operators look: the
// log, the evpnd_fib_drift_repairs_total metric, and the MAC's trace.
// Check (the API, and evpnctl check with exit status 0) is clean after.
//
// Each repair must also be fast: the test makes each change through
// netlink and times it from just before the change to the receipt of the
// kernel's notification of the repair (a neighbour subscription in
// leaf3's namespace), which must be within 50 ms.
func TestAPICheck(t *testing.T) {
	f := deployFabric(t)
	f.converge()
	c := f.client("leaf3")
	ctx := t.Context()
	checkClean := func(what string) {
		t.Helper()
		eventually(t, changeTimeout, what, func() error {
			res, err := c.Check(ctx, &evpndv1.CheckRequest{})
			if err != nil {
				return err
			}
			if len(res.GetDrifts()) > 0 || res.GetInFlight() > 0 {
				return fmt.Errorf("drifts: %v (in flight %d)", res.GetDrifts(), res.GetInFlight())
			}
			if res.GetCheckedMacs() != 4 { // h1, h2, hm in VNI 100; h4 in VNI 200
				return fmt.Errorf("checked %d MACs, want 4", res.GetCheckedMacs())
			}
			return nil
		})
	}
	checkClean("a clean check")
	// Synced: only then are stray entries removed.
	eventually(t, changeTimeout, "leaf3 in sync", func() error {
		if m := f.metrics("leaf3"); !strings.Contains(m, "evpnd_kernel_in_sync 1\n") {
			return errors.New("evpnd_kernel_in_sync is not 1")
		}
		return nil
	})
	w := watchNeigh(t, f, "leaf3", "vxlan100")

	h1, h2 := f.m.host("h1").MAC, f.m.host("h2").MAC
	const stray = "02:00:00:00:99:99"
	// The changes are made through netlink from the test process, so that
	// the time is taken right before the kernel makes them.
	nh, err := f.lab.Node("leaf3").Handle()
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	vx, err := nh.LinkByName("vxlan100")
	if err != nil {
		t.Fatal(err)
	}
	entry := func(m, dst string, flags int) *netlink.Neigh {
		hw, err := net.ParseMAC(m)
		if err != nil {
			t.Fatal(err)
		}
		n := &netlink.Neigh{LinkIndex: vx.Attrs().Index, Family: unix.AF_BRIDGE, HardwareAddr: hw, Flags: flags,
			State: unix.NUD_NOARP | unix.NUD_PERMANENT}
		if dst != "" {
			n.IP = net.ParseIP(dst)
		}
		return n
	}
	cases := []struct {
		name   string
		change func() error
		seen   neighMatch // the kernel's notification of the change
		repair neighMatch // the kernel's notification of evpnd's repair
		table  string     // the repair's table and drift, as logged and counted
		drift  string
		mac    string // the MAC whose trace shows the repair ("" for flood)
		log    string // in the log line
	}{
		{"self", func() error { return nh.NeighDel(entry(h1, "10.0.0.1", unix.NTF_SELF)) },
			neighMatch{del: true, mac: h1, self: true}, neighMatch{mac: h1, self: true, dst: "10.0.0.1"},
			"mac", "wrong", h1, "mac=" + h1},
		{"master", func() error { return nh.NeighDel(entry(h2, "", unix.NTF_MASTER)) },
			neighMatch{del: true, mac: h2}, neighMatch{mac: h2},
			"bridge", "wrong", h2, "mac=" + h2},
		{"flood", func() error { return nh.NeighDel(entry(zeroMAC, "10.0.0.1", unix.NTF_SELF)) },
			neighMatch{del: true, mac: zeroMAC, self: true, dst: "10.0.0.1"}, neighMatch{mac: zeroMAC, self: true, dst: "10.0.0.1"},
			"flood", "missing", "", "vtep=10.0.0.1"},
		{"stray", func() error { return nh.NeighAdd(entry(stray, "10.9.9.9", unix.NTF_SELF|unix.NTF_EXT_LEARNED)) },
			neighMatch{mac: stray, self: true, dst: "10.9.9.9"}, neighMatch{del: true, mac: stray, self: true, dst: "10.9.9.9"},
			"mac", "extra", stray, "mac=" + stray},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			metric := fmt.Sprintf("evpnd_fib_drift_repairs_total{drift=%q,table=%q}", tc.drift, tc.table)
			before := metricValue(f.metrics("leaf3"), metric)
			logBefore := len(f.lastRunLog("leaf3"))
			mark := w.mark()
			start := time.Now()
			if err := tc.change(); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			// From just before the change to the receipt of the repair's
			// notification: an upper bound of the repair time (receipts
			// of the two notifications alone can be closer than the
			// kernel's events were, when the reader lags).
			at, err := w.after(mark, tc.seen, tc.repair, changeTimeout)
			if err != nil {
				t.Fatal(err)
			}
			took := at.Sub(start)
			t.Logf("%s: repaired within %v of the change", tc.name, took)
			if took > 50*time.Millisecond {
				t.Errorf("%s: repaired %v after the change, want within 50ms", tc.name, took)
			}
			eventually(t, changeTimeout, "the repair counted", func() error {
				if got := metricValue(f.metrics("leaf3"), metric); got != before+1 {
					return fmt.Errorf("%s = %v, want %v", metric, got, before+1)
				}
				return nil
			})
			eventually(t, changeTimeout, "the repair logged", func() error {
				for _, line := range strings.Split(f.lastRunLog("leaf3")[logBefore:], "\n") {
					if strings.Contains(line, "fib: repaired the kernel") && strings.Contains(line, "table="+tc.table) &&
						strings.Contains(line, "drift="+tc.drift) && strings.Contains(line, tc.log) {
						return nil
					}
				}
				return errors.New("no log line")
			})
			if tc.mac == "" {
				return
			}
			tr, err := c.Trace(ctx, &evpndv1.TraceRequest{Mac: tc.mac, Vni: 100})
			if err != nil {
				t.Fatal(err)
			}
			var found bool
			var evs []*evpndv1.TraceEvent
			for _, k := range tr.GetKeys() {
				evs = append(evs, k.GetEvents()...)
				for _, ev := range k.GetEvents() {
					kind := ev.GetKind()
					if (kind == evpndv1.TraceKind_TRACE_KIND_KERNEL_WRITTEN || kind == evpndv1.TraceKind_TRACE_KIND_KERNEL_REMOVED) &&
						strings.HasPrefix(ev.GetDetail(), "repair") && strings.Contains(ev.GetDetail(), tc.table+" "+tc.mac+" "+tc.drift) {
						found = true
					}
				}
			}
			if !found {
				t.Errorf("trace of %s shows no repair:\n%s", tc.mac, fmtTrace(evs))
			}
		})
	}
	checkClean("check reports clean after the repairs")
	if out, err := f.lab.Exec(ctx, "leaf3", "evpnctl", "check"); err != nil {
		t.Errorf("evpnctl check on a repaired leaf: %v\n%s", err, out)
	}
	f.waitFDB(changeTimeout, "leaf3")
}

// TestAPIRuntimeVNI adds VNI 200 to leaf2 (which has none) through the
// API: its devices appear, its flood list and remote MACs are installed,
// and the other leafs flood to leaf2. Bad requests are refused with the
// field named and change nothing. Deleting it removes it all again.
func TestAPIRuntimeVNI(t *testing.T) {
	f := deployFabric(t)
	f.converge()
	c := f.client("leaf2")
	ctx := t.Context()
	before := f.exec("leaf2", "ip", "-o", "link", "show")
	fdbBefore := f.exec("leaf2", "bridge", "fdb", "show")

	bad := []struct {
		spec  *evpndv1.L2VNISpec
		field string
	}{
		{&evpndv1.L2VNISpec{Vni: 0}, "vni"},
		{&evpndv1.L2VNISpec{Vni: 100}, "vni.vni"},                                                   // already configured
		{&evpndv1.L2VNISpec{Vni: 200, Bridge: "br100"}, `vni.bridge: "br100": is already used by`},  // taken by VNI 100; given, not a default
		{&evpndv1.L2VNISpec{Vni: 200, AccessInterfaces: []string{"eth2"}}, "vni.access_interfaces"}, // VNI 100's port
		{&evpndv1.L2VNISpec{Vni: 200, AccessInterfaces: []string{"nosuch0"}}, "vni.access_interfaces"},
		{&evpndv1.L2VNISpec{Vni: 200, AccessInterfaces: []string{"eth1"}}, "vni.access_interfaces"}, // the uplink: it has an address
		{&evpndv1.L2VNISpec{Vni: 200, VxlanDevice: "eth1"}, "vni.vxlan_device"},                     // a veth, not a VXLAN device
		{&evpndv1.L2VNISpec{Vni: 200, Rd: "bad"}, "vni.rd"},
		{&evpndv1.L2VNISpec{Vni: 200, Mtu: 10}, "vni.mtu"},
	}
	for _, b := range bad {
		_, err := c.AddVNI(ctx, &evpndv1.AddVNIRequest{Vni: b.spec})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), b.field) {
			t.Errorf("AddVNI %v: want InvalidArgument naming %s, got %v", b.spec, b.field, err)
		}
	}
	if after := f.exec("leaf2", "ip", "-o", "link", "show"); after != before {
		t.Fatalf("refused requests changed the links:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if after := f.exec("leaf2", "bridge", "fdb", "show"); after != fdbBefore {
		t.Fatalf("refused requests changed the FDB:\nbefore:\n%s\nafter:\n%s", fdbBefore, after)
	}
	f.waitFDB(changeTimeout)

	res, err := c.AddVNI(ctx, &evpndv1.AddVNIRequest{Vni: &evpndv1.L2VNISpec{Vni: 200}})
	if err != nil {
		t.Fatal(err)
	}
	if v := res.GetVni(); v.GetVxlanDevice() != "vxlan200" || v.GetBridge() != "br200" || v.GetRd() != "10.0.0.2:200" || !v.GetDevicesPresent() {
		t.Errorf("added VNI: %v", v)
	}
	h4, h3 := f.m.host("h4").MAC, f.m.host("h3").MAC
	eventually(t, changeTimeout, "VNI 200 on leaf2 and leaf2 in the others' flood lists", func() error {
		out := f.exec("leaf2", "bridge", "fdb", "show", "dev", "vxlan200")
		var errs []error
		for _, want := range []string{"00:00:00:00:00:00 dst 10.0.0.1", "00:00:00:00:00:00 dst 10.0.0.3",
			h4 + " dst 10.0.0.1", h3 + " dst 10.0.0.3"} {
			if !strings.Contains(out, want) {
				errs = append(errs, fmt.Errorf("leaf2 vxlan200 lacks %q", want))
			}
		}
		for _, l := range []string{"leaf1", "leaf3"} {
			if out := f.exec(l, "bridge", "fdb", "show", "dev", "vxlan200"); !strings.Contains(out, "00:00:00:00:00:00 dst 10.0.0.2") {
				errs = append(errs, fmt.Errorf("%s does not flood VNI 200 to leaf2", l))
			}
		}
		return errors.Join(errs...)
	})
	vnis, err := c.ListVNIs(ctx, &evpndv1.ListVNIsRequest{})
	if err != nil || len(vnis.GetVnis()) != 2 || vnis.GetVnis()[1].GetRemoteMacs() != 2 {
		t.Errorf("ListVNIs after the add: %v %v", vnis, err)
	}
	// Adding it again is refused, and changes nothing.
	if _, err := c.AddVNI(ctx, &evpndv1.AddVNIRequest{Vni: &evpndv1.L2VNISpec{Vni: 200}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("second add: %v", err)
	}

	if _, err := c.DeleteVNI(ctx, &evpndv1.DeleteVNIRequest{Vni: 200}); err != nil {
		t.Fatal(err)
	}
	eventually(t, changeTimeout, "VNI 200 gone from leaf2", func() error {
		if out := f.exec("leaf2", "ip", "-o", "link", "show"); strings.Contains(out, "vxlan200") || strings.Contains(out, "br200") {
			return fmt.Errorf("leaf2 still has VNI 200's devices")
		}
		for _, l := range []string{"leaf1", "leaf3"} {
			if out := f.exec(l, "bridge", "fdb", "show", "dev", "vxlan200"); strings.Contains(out, "dst 10.0.0.2") {
				return fmt.Errorf("%s still floods VNI 200 to leaf2", l)
			}
		}
		return nil
	})
	if _, err := c.DeleteVNI(ctx, &evpndv1.DeleteVNIRequest{Vni: 200}); status.Code(err) != codes.NotFound {
		t.Errorf("second delete: want NotFound, got %v", err)
	}
	// The fabric is back to what the topology implies.
	f.waitFDB(changeTimeout)
	vnis, err = c.ListVNIs(ctx, &evpndv1.ListVNIsRequest{})
	if err != nil || len(vnis.GetVnis()) != 1 || !slices.ContainsFunc(vnis.GetVnis(), func(v *evpndv1.VNI) bool { return v.GetVni() == 100 }) {
		t.Errorf("ListVNIs after the delete: %v %v", vnis, err)
	}
	f.waitPing("h2", f.m.host("h1").IP.String())
}
