package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/cmd/evpnd/internal/trace"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/evpnd/evpnd/vtep"
)

// The API rows built from the L3 model's state keep to the requested VRF
// and L2VNI, sort as documented and count routes per next hop.
func TestL3Rows(t *testing.T) {
	mac := func(s string) evpn.MAC {
		m, err := evpn.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a := netip.MustParseAddr
	red := configs.VRF{Name: "red", L3VNI: 4001, L2VNIs: []configs.VRFMember{{VNI: 200}, {VNI: 100}}}
	r2, r3, rb := mac("3e:00:00:00:00:02"), mac("3e:00:00:00:00:03"), mac("3e:00:00:00:00:99")
	nh2, nh3 := evpn.NextHop{VTEP: a("10.0.0.2"), RouterMAC: r2}, evpn.NextHop{VTEP: a("10.0.0.3"), RouterMAC: r3}
	s := evpn.L3Snapshot{
		Neighs: []evpn.Neigh{
			{L2VNI: 100, IP: a("192.168.100.2"), MAC: mac("02:00:00:00:00:02")},
			{L2VNI: 200, IP: a("192.168.200.3"), MAC: mac("02:00:00:00:00:03")},
			{L2VNI: 300, IP: a("192.168.30.9"), MAC: mac("02:00:00:00:00:09")}, // blue's member
		},
		Hosts: []evpn.HostRoute{
			{VRF: "red", L3VNI: 4001, IP: a("192.168.100.2"), NextHop: nh2},
			{VRF: "blue", L3VNI: 4002, IP: a("192.168.30.9"), NextHop: evpn.NextHop{VTEP: a("10.0.0.9"), RouterMAC: rb}},
		},
		Prefixes: []evpn.PrefixRoute{
			{VRF: "red", L3VNI: 4001, Prefix: netip.MustParsePrefix("0.0.0.0/0"), NextHops: []evpn.NextHop{nh2, nh3}},
			{VRF: "blue", L3VNI: 4002, Prefix: netip.MustParsePrefix("10.9.0.0/16"), NextHops: []evpn.NextHop{nh2}},
		},
		RouterMACs: []evpn.RouterMAC{
			{VRF: "red", L3VNI: 4001, VTEP: a("10.0.0.3"), MAC: r3, Routes: 1},
			{VRF: "red", L3VNI: 4001, VTEP: a("10.0.0.2"), MAC: r2, Routes: 2},
			{VRF: "blue", L3VNI: 4002, VTEP: a("10.0.0.9"), MAC: rb, Routes: 1},
		},
	}

	binds := []evpn.Binding{
		{L2VNI: 100, IP: a("192.168.100.1"), MAC: mac("02:00:00:00:00:01"), Local: true, Seq: 2, Active: true},
		{L2VNI: 100, IP: a("192.168.100.2"), MAC: mac("02:00:00:00:00:02"), VTEP: a("10.0.0.2"), Seq: 1, Active: true},
		{L2VNI: 200, IP: a("192.168.200.4"), MAC: mac("02:00:00:00:00:04"), Local: true},
	}
	wantARP := []api.ARPEntry{
		{VNI: 100, IP: a("192.168.100.1"), MAC: mac("02:00:00:00:00:01"), Local: true, Seq: 2, VRF: "red"},
		{VNI: 100, IP: a("192.168.100.2"), MAC: mac("02:00:00:00:00:02"), VTEP: a("10.0.0.2"), Seq: 1, VRF: "red"},
		{VNI: 200, IP: a("192.168.200.4"), MAC: mac("02:00:00:00:00:04"), Local: true, VRF: "red", Inactive: true},
	}
	if arp := arpRows(red, binds); !reflect.DeepEqual(arp, wantARP) {
		t.Errorf("arpRows:\ngot  %+v\nwant %+v", arp, wantARP)
	}

	wantRM := []api.RouterMACEntry{
		{L3VNI: 4001, VRF: "red", VTEP: a("10.0.0.2"), RouterMAC: r2, Routes: 2},
		{L3VNI: 4001, VRF: "red", VTEP: a("10.0.0.3"), RouterMAC: r3, Routes: 1},
	}
	if got := rmacRows(red, s); !reflect.DeepEqual(got, wantRM) {
		t.Errorf("rmacRows:\ngot  %+v\nwant %+v", got, wantRM)
	}

	wantNH := []api.L3NextHop{
		{L3VNI: 4001, VRF: "red", VTEP: a("10.0.0.2"), RouterMAC: r2, Routes: 2},
		{L3VNI: 4001, VRF: "red", VTEP: a("10.0.0.3"), RouterMAC: r3, Routes: 1},
	}
	if got := nextHopRows(red, s); !reflect.DeepEqual(got, wantNH) {
		t.Errorf("nextHopRows:\ngot  %+v\nwant %+v", got, wantNH)
	}

	wantRoutes := []api.VRFRoute{
		{VRF: "red", L3VNI: 4001, Prefix: netip.MustParsePrefix("0.0.0.0/0"),
			NextHops: []api.VRFNextHop{{VTEP: a("10.0.0.2"), RouterMAC: r2}, {VTEP: a("10.0.0.3"), RouterMAC: r3}}},
		{VRF: "red", L3VNI: 4001, Prefix: netip.MustParsePrefix("192.168.100.2/32"), Host: true,
			NextHops: []api.VRFNextHop{{VTEP: a("10.0.0.2"), RouterMAC: r2}}},
	}
	if got := vrfRouteRows(red, s); !reflect.DeepEqual(got, wantRoutes) {
		t.Errorf("vrfRouteRows:\ngot  %+v\nwant %+v", got, wantRoutes)
	}

	// A border leaf's own default route wins over the other border
	// leaf's: not installed, so not listed, and not counted.
	border := &tenant{cfg: red, v: vtep.VRF{L3: vtep.L2VNI{VNI: 4001}}}
	border.cfg.Routes = []configs.StaticRoute{{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Via: a("192.0.2.2")}}
	bs := installedL3(s, func(p netip.Prefix) bool { return local(border, p) })
	if got := vrfRouteRows(red, bs); !reflect.DeepEqual(got, wantRoutes[1:]) {
		t.Errorf("vrfRouteRows of a border leaf:\ngot  %+v\nwant %+v", got, wantRoutes[1:])
	}
	if got := nextHopRows(red, bs); !reflect.DeepEqual(got, []api.L3NextHop{{L3VNI: 4001, VRF: "red", VTEP: a("10.0.0.2"), RouterMAC: r2, Routes: 1}}) {
		t.Errorf("nextHopRows of a border leaf: %+v", got)
	}

	c := &configs.Config{VRFs: []configs.VRF{{Name: "blue", L3VNI: 4002}, red}}
	if v, ok := vrfOfL2VNI(c, 200); !ok || v.Name != "red" {
		t.Errorf("vrfOfL2VNI(200) = %v %v", v.Name, ok)
	}
	if _, ok := vrfOfL2VNI(c, 999); ok {
		t.Error("vrfOfL2VNI(999) found a VRF")
	}
	if vs := sortedVRFs(c); vs[0].L3VNI != 4001 || vs[1].L3VNI != 4002 {
		t.Errorf("sortedVRFs: %v", vs)
	}
	// The L3VNI's counts: router MACs, next hops (10.0.0.2 for a host and
	// the default route, 10.0.0.3 for the default route), routes.
	c.RouterID, c.ASN = a("10.0.0.1"), 65000
	if row := l3vniRow(c, red, s); row.RemoteVTEPs != 2 || row.NextHops != 2 || row.HostRoutes != 1 || row.PrefixRoutes != 1 {
		t.Errorf("l3vniRow counts: %d router MACs, %d next hops, %d host, %d prefix; want 2, 2, 1, 1",
			row.RemoteVTEPs, row.NextHops, row.HostRoutes, row.PrefixRoutes)
	}
}

// An L3 check's writes become drift rows naming the VRF and the entry,
// with the repair command.
func TestL3Drifts(t *testing.T) {
	a := netip.MustParseAddr
	m, _ := evpn.ParseMAC("3e:00:00:00:00:02")
	dev := fib.L3Devices{VRF: "red", L3VNI: 4001, Table: 4001, SVI: "br4001", VXLAN: "vxlan4001"}
	ops := []fib.L3Op{
		{Kind: fib.L3Replace, RMAC: &fib.RMACEntry{MAC: m, VTEP: a("10.0.0.2")}},
		{Kind: fib.L3Replace, Neigh: &fib.NeighEntry{Dev: "br100", IP: a("192.168.100.2"), MAC: m}},
		{Kind: fib.L3Replace, Route: &fib.RouteEntry{Prefix: netip.MustParsePrefix("172.16.2.0/24"), VTEPs: []netip.Addr{a("10.0.0.2")}}},
		{Kind: fib.L3Delete, Route: &fib.RouteEntry{Prefix: netip.MustParsePrefix("10.9.0.0/16"), VTEPs: []netip.Addr{a("10.0.0.9")}}},
	}
	got := l3Drifts(dev, ops)
	want := []api.Drift{
		{Kind: api.DriftMissing, VRF: "red", Table: "rmac", Entry: "3e:00:00:00:00:02", Device: "vxlan4001", WantVTEP: a("10.0.0.2"), Detail: ops[0].String(dev)},
		{Kind: api.DriftMissing, VRF: "red", Table: "neigh", Entry: "192.168.100.2", Device: "br100", Detail: ops[1].String(dev)},
		{Kind: api.DriftMissing, VRF: "red", Table: "route", Entry: "172.16.2.0/24", Device: "br4001", WantVTEP: a("10.0.0.2"), Detail: ops[2].String(dev)},
		{Kind: api.DriftExtra, VRF: "red", Table: "route", Entry: "10.9.0.0/16", Device: "br4001", Detail: ops[3].String(dev)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("l3Drifts:\ngot  %+v\nwant %+v", got, want)
	}
	if !strings.HasPrefix(got[3].Detail, "ip route del 10.9.0.0/16") {
		t.Errorf("detail %q", got[3].Detail)
	}
}

// The Daemon's L3 calls answer from the config's VRFs: the L3VNI's row,
// empty tables for a VRF with nothing learned yet, ErrNotFound for an
// unknown L3VNI, VRF or an L2VNI routed in no VRF, and nothing at all
// without VRFs.
func TestDaemonL3Calls(t *testing.T) {
	cfg := &configs.Config{Role: configs.RoleLeaf, ASN: 65000, RouterID: netip.MustParseAddr("10.0.0.1"),
		VTEPIP: netip.MustParseAddr("10.0.0.1"),
		L2VNIs: []configs.L2VNI{{VNI: 100}, {VNI: 200}, {VNI: 300}},
		VRFs: []configs.VRF{{Name: "red", L3VNI: 4001, Backend: configs.BackendVRF, Table: 4001, VXLANDevice: "vxlan4001x",
			Bridge: "br4001x", RD: "10.0.0.1:4", RouterMAC: "32:42:95:bd:fd:8d",
			L2VNIs: []configs.VRFMember{{VNI: 200}, {VNI: 100}}}}}
	d := &Daemon{}
	d.live.Store(cfg)
	d.leaf.Store(&leaf{d: d})
	ctx := t.Context()

	v, err := d.L3VNI(ctx, 4001)
	if err != nil {
		t.Fatal(err)
	}
	if v.VRF != "red" || v.RD.String() != "10.0.0.1:4" || v.RouterMAC.String() != "32:42:95:bd:fd:8d" ||
		!reflect.DeepEqual(v.L2VNIs, []uint32{100, 200}) || v.LocalVTEP != cfg.VTEPIP || v.DevicesPresent ||
		len(v.ImportRTs) != 1 || v.ImportRTs[0].String() != "65000:4001" {
		t.Errorf("L3VNI(4001) = %+v", v)
	}
	if vs, err := d.L3VNIs(ctx); err != nil || len(vs) != 1 || vs[0].L3VNI != 4001 {
		t.Errorf("L3VNIs = %+v, %v", vs, err)
	}
	none := func(api.ARPEntry) error { t.Error("a row from an empty table"); return nil }
	if err := d.ARPCache(ctx, 100, none); err != nil {
		t.Errorf("ARPCache(100): %v", err)
	}
	if rs, err := d.RouterMACs(ctx, 4001); err != nil || len(rs) != 0 {
		t.Errorf("RouterMACs(4001) = %v, %v", rs, err)
	}
	if err := d.VRFRoutes(ctx, "red", func(api.VRFRoute) error { t.Error("a route from an empty table"); return nil }); err != nil {
		t.Errorf("VRFRoutes(red): %v", err)
	}
	for what, err := range map[string]error{
		"L3VNI(100)":      func() error { _, err := d.L3VNI(ctx, 100); return err }(),
		"ARPCache(300)":   d.ARPCache(ctx, 300, none),
		"RouterMACs(9)":   func() error { _, err := d.RouterMACs(ctx, 9); return err }(),
		"L3NextHops(9)":   func() error { _, err := d.L3NextHops(ctx, 9); return err }(),
		"VRFRoutes(blue)": d.VRFRoutes(ctx, "blue", nil),
	} {
		if err != api.ErrNotFound {
			t.Errorf("%s: %v, want ErrNotFound", what, err)
		}
	}

	d.leaf.Store(nil)
	if st, err := d.Status(ctx); err != nil || st.VRFs != 1 {
		t.Errorf("Status VRFs = %d, %v", st.VRFs, err)
	}
	d.leaf.Store(&leaf{d: d})
	d.live.Store(&configs.Config{Role: configs.RoleLeaf, L2VNIs: cfg.L2VNIs})
	if vs, err := d.L3VNIs(ctx); err != nil || len(vs) != 0 {
		t.Errorf("without VRFs: L3VNIs = %v, %v", vs, err)
	}
	if err := d.ARPCache(ctx, 0, none); err != nil {
		t.Errorf("without VRFs: ARPCache(0): %v", err)
	}
	if hs, err := d.L3NextHops(ctx, 0); err != nil || len(hs) != 0 {
		t.Errorf("without VRFs: L3NextHops(0) = %v, %v", hs, err)
	}
	d.leaf.Store(nil) // Status reads a running leaf's reconciler
	if st, err := d.Status(ctx); err != nil || st.VRFs != 0 {
		t.Errorf("without VRFs: Status VRFs = %d, %v", st.VRFs, err)
	}
}

// L3 model effects become VRF route changes for watch; others none.
func TestVRFRouteChange(t *testing.T) {
	a := netip.MustParseAddr
	m, _ := evpn.ParseMAC("3e:00:00:00:00:02")
	nh := evpn.NextHop{VTEP: a("10.0.0.2"), RouterMAC: m}
	now := time.Unix(100, 0)
	for _, c := range []struct {
		e    evpn.L3Effect
		kind api.ChangeKind
		want api.VRFRoute
	}{
		{evpn.L3Effect{Kind: evpn.L3SetHost, Host: evpn.HostRoute{VRF: "red", L3VNI: 4001, IP: a("2001:db8::5"), NextHop: nh}}, api.ChangeAdded,
			api.VRFRoute{VRF: "red", L3VNI: 4001, Prefix: netip.MustParsePrefix("2001:db8::5/128"), Host: true, NextHops: []api.VRFNextHop{{VTEP: nh.VTEP, RouterMAC: m}}}},
		{evpn.L3Effect{Kind: evpn.L3DelHost, Host: evpn.HostRoute{VRF: "red", L3VNI: 4001, IP: a("192.168.1.5"), NextHop: nh}}, api.ChangeRemoved,
			api.VRFRoute{VRF: "red", L3VNI: 4001, Prefix: netip.MustParsePrefix("192.168.1.5/32"), Host: true, NextHops: []api.VRFNextHop{{VTEP: nh.VTEP, RouterMAC: m}}}},
		{evpn.L3Effect{Kind: evpn.L3SetPrefix, Prefix: evpn.PrefixRoute{VRF: "red", L3VNI: 4001, Prefix: netip.MustParsePrefix("0.0.0.0/0"), NextHops: []evpn.NextHop{nh, {VTEP: a("10.0.0.3")}}}}, api.ChangeAdded,
			api.VRFRoute{VRF: "red", L3VNI: 4001, Prefix: netip.MustParsePrefix("0.0.0.0/0"), NextHops: []api.VRFNextHop{{VTEP: nh.VTEP, RouterMAC: m}, {VTEP: a("10.0.0.3")}}}},
		{evpn.L3Effect{Kind: evpn.L3DelPrefix, Prefix: evpn.PrefixRoute{VRF: "red", L3VNI: 4001, Prefix: netip.MustParsePrefix("10.0.0.0/8")}}, api.ChangeRemoved,
			api.VRFRoute{VRF: "red", L3VNI: 4001, Prefix: netip.MustParsePrefix("10.0.0.0/8")}},
	} {
		got, ok := vrfRouteChange(c.e, now)
		if !ok || got.Kind != c.kind || !got.Time.Equal(now) || got.VRFRoute == nil || !reflect.DeepEqual(got.VRFRoute.Route, c.want) {
			t.Errorf("%v: got %+v (%v), want %v %+v", c.e.Kind, got, ok, c.kind, c.want)
		}
	}
	for _, k := range []evpn.L3EffectKind{evpn.L3SetNeigh, evpn.L3DelNeigh, evpn.L3Advertise, evpn.L3Withdraw, evpn.L3Rejected} {
		if _, ok := vrfRouteChange(evpn.L3Effect{Kind: k}, now); ok {
			t.Errorf("%v: a VRF route change", k)
		}
	}
}

// fib's L3 writes go into the trace under the MACs they concern: a
// suppression neighbour under its host MAC in its L2VNI, a route under
// the router MAC of its VTEP in the L3VNI, a repair saying so.
func TestL3ApplyTrace(t *testing.T) {
	a := netip.MustParseAddr
	d := &Daemon{trace: trace.New(0, 0)}
	host, rmac := evpn.MAC{2, 0, 0, 0, 0, 9}, evpn.MAC{0x3e, 0, 0, 0, 0, 2}
	dev := fib.L3Devices{VRF: "red", L3VNI: 4001, SVI: "br4001", VXLAN: "vxlan4001", MemberSVIs: []string{"br100"}, MemberVNIs: []uint32{100}}
	d.onL3Apply(fib.L3ApplyEvent{Dev: dev, Op: fib.L3Op{Kind: fib.L3Replace, Neigh: &fib.NeighEntry{Dev: "br100", IP: a("10.1.0.9"), MAC: host}}})
	d.onL3Apply(fib.L3ApplyEvent{Dev: dev, Repair: true, RouterMACs: []evpn.MAC{rmac},
		Op: fib.L3Op{Kind: fib.L3Replace, Route: &fib.RouteEntry{Prefix: netip.MustParsePrefix("10.1.0.9/32"), VTEPs: []netip.Addr{a("10.0.0.2")}}}})
	k, ok := d.trace.Get(100, host)
	if !ok || len(k.Events) != 1 || k.Events[0].Kind != trace.KernelWritten || !strings.Contains(k.Events[0].Detail, "ip neigh replace 10.1.0.9") {
		t.Errorf("host trace %+v", k)
	}
	k, ok = d.trace.Get(4001, rmac)
	if !ok || len(k.Events) != 1 || k.Events[0].VTEP != a("10.0.0.2") || !strings.HasPrefix(k.Events[0].Detail, "repair of a change made behind evpnd's back: ip route replace 10.1.0.9/32") {
		t.Errorf("router MAC trace %+v", k)
	}
}

// The API's view of a VRF is what its kernel holds: type-5 routes to the
// VRF's own subnets (left connected) are not in it, and a router MAC is
// listed only while a host or prefix route left goes through its VTEP,
// with those routes counted. Here 10.0.0.3 advertises only the shared
// subnet: its router MAC, which the model still counts, is not listed.
func TestInstalledL3(t *testing.T) {
	a, p := netip.MustParseAddr, netip.MustParsePrefix
	r2, r3, r4 := evpn.MAC{0x02, 0xee, 0, 0, 0, 2}, evpn.MAC{0x02, 0xee, 0, 0, 0, 3}, evpn.MAC{0x02, 0xee, 0, 0, 0, 4}
	nh2, nh3, nh4 := evpn.NextHop{VTEP: a("10.0.0.2"), RouterMAC: r2}, evpn.NextHop{VTEP: a("10.0.0.3"), RouterMAC: r3}, evpn.NextHop{VTEP: a("10.0.0.4"), RouterMAC: r4}
	s := evpn.L3Snapshot{
		Hosts: []evpn.HostRoute{{VRF: "ta", L3VNI: 4001, IP: a("10.1.0.12"), NextHop: nh2}},
		Prefixes: []evpn.PrefixRoute{
			{VRF: "ta", L3VNI: 4001, Prefix: p("10.1.0.0/24"), NextHops: []evpn.NextHop{nh2, nh3}},
			{VRF: "ta", L3VNI: 4001, Prefix: p("10.9.0.0/16"), NextHops: []evpn.NextHop{nh2, nh4}},
		},
		RouterMACs: []evpn.RouterMAC{
			{VRF: "ta", L3VNI: 4001, VTEP: a("10.0.0.2"), MAC: r2, Routes: 4},
			{VRF: "ta", L3VNI: 4001, VTEP: a("10.0.0.3"), MAC: r3, Routes: 1},
			{VRF: "ta", L3VNI: 4001, VTEP: a("10.0.0.4"), MAC: r4, Routes: 1},
		},
	}
	orig := slices.Clone(s.Prefixes)
	got := installedL3(s, func(q netip.Prefix) bool { return q == p("10.1.0.0/24") })
	want := evpn.L3Snapshot{
		Hosts:    s.Hosts,
		Prefixes: []evpn.PrefixRoute{s.Prefixes[1]},
		RouterMACs: []evpn.RouterMAC{
			{VRF: "ta", L3VNI: 4001, VTEP: a("10.0.0.2"), MAC: r2, Routes: 2},
			{VRF: "ta", L3VNI: 4001, VTEP: a("10.0.0.4"), MAC: r4, Routes: 1},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("installedL3 =\n%+v\nwant\n%+v", got, want)
	}
	if !reflect.DeepEqual(s.Prefixes, orig) {
		t.Errorf("installedL3 changed its argument's prefixes: %+v", s.Prefixes)
	}
	rows := rmacRows(configs.VRF{Name: "ta", L3VNI: 4001}, got)
	if len(rows) != 2 || rows[0].VTEP != a("10.0.0.2") || rows[0].Routes != 2 || rows[1].VTEP != a("10.0.0.4") {
		t.Errorf("rmac rows = %+v", rows)
	}
}

// "check vni L3VNI" checks that VRF's L3 state alone (no L2 FDB check,
// which knows no L3VNI); a VNI that is neither an L2VNI nor an L3VNI is
// not found.
func TestCheckL3VNI(t *testing.T) {
	l, _ := gatewayLeaf(t, evpn.MAC{0, 0, 0x5e, 0, 1, 1})
	d := l.d
	d.leaf.Store(l)
	rep, err := d.Check(t.Context(), 4001)
	if err != nil || len(rep.Drifts) != 0 || rep.CheckedMACs != 0 {
		t.Errorf("check vni 4001: %+v %v, want an empty report", rep, err)
	}
	if _, err := d.Check(t.Context(), 4009); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("check vni 4009: %v, want not found", err)
	}
}

// serveCalls runs the API's calls queued on l (l.do) until the test ends,
// as the loop does, without its kernel and BGP sides.
func serveCalls(t *testing.T, l *leaf) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-l.q.wake:
			}
			for _, ev := range l.q.drain(nil) {
				l.handle(&ev, nil, time.Now())
			}
			for _, c := range l.calls {
				close(c.done)
			}
			l.calls = l.calls[:0]
		}
	}()
}

// "show evpn arp-cache" lists the hosts learned on the VRF's SVIs as local
// (never the anycast gateway MAC) beside the remote hosts of MAC+IP
// routes, with their VTEP and sequence number; a local host outbid by a
// remote route is listed once, as remote, and one whose MAC went to
// another leaf is inactive.
func TestARPCacheLocalAndRemote(t *testing.T) {
	gw := evpn.MAC{0, 0, 0x5e, 0, 1, 1}
	l, _ := gatewayLeaf(t, gw)
	d := l.d
	d.leaf.Store(l)
	a := netip.MustParseAddr
	vtep2 := a("10.0.0.2")
	m1, m2, m3 := evpn.MAC{2, 0, 0, 0, 0, 1}, evpn.MAC{2, 0, 0, 0, 0, 2}, evpn.MAC{2, 0, 0, 0, 0, 3}
	rts := []evpn.RT{evpn.AutoRT(65000, 100), evpn.AutoRT(65000, 4001)}
	rmac := evpn.MAC{2, 0xaa, 0, 0, 0, 2}
	now := time.Now()
	host := func(ip string, mac evpn.MAC) {
		l.handle(&event{host: &hostEvent{vrf: "red", ev: vtep.HostEvent{Key: vtep.HostKey{VNI: 100, IP: a(ip)}, MAC: mac}}}, nil, now)
	}
	remote := func(ip string, mac evpn.MAC, seq uint32) {
		r := evpn.LocalMACIPRoute(evpn.RDFromIP(vtep2, 2), 100, 4001, mac, a(ip), vtep2, rts, rmac, seq, false)
		l.handle(&event{bgp: &speaker.Event{Type: speaker.EventRoute, Route: r, Peer: vtep2}}, nil, now)
	}
	learn(l, m1, now)
	host("10.1.0.10", m1)
	host("10.1.0.11", gw) // a probe answered by another leaf's gateway
	remote("10.1.0.20", m2, 3)
	learn(l, m3, now)
	host("10.1.0.30", m3)
	remote("10.1.0.30", m3, 1) // outbids the local host (seq 0)
	serveCalls(t, l)

	list := func(vni uint32) []api.ARPEntry {
		t.Helper()
		var out []api.ARPEntry
		if err := d.ARPCache(t.Context(), vni, func(e api.ARPEntry) error { out = append(out, e); return nil }); err != nil {
			t.Fatalf("ARPCache(%d): %v", vni, err)
		}
		return out
	}
	want := []api.ARPEntry{
		{VNI: 100, IP: a("10.1.0.10"), MAC: m1, Local: true, VRF: "red"},
		{VNI: 100, IP: a("10.1.0.20"), MAC: m2, VTEP: vtep2, Seq: 3, VRF: "red"},
		{VNI: 100, IP: a("10.1.0.30"), MAC: m3, VTEP: vtep2, Seq: 1, VRF: "red"},
	}
	if got := list(100); !reflect.DeepEqual(got, want) {
		t.Errorf("arp-cache vni 100:\ngot  %+v\nwant %+v", got, want)
	}
	if got := list(0); !reflect.DeepEqual(got, want) {
		t.Errorf("arp-cache vni all:\ngot  %+v\nwant %+v", got, want)
	}

	// The local MAC moves to another leaf (the MAC Table withdraws it):
	// the binding stays, inactive, until its neighbour is gone.
	if err := l.read(t.Context(), func() { l.l3.LocalMACAway(100, m1) }); err != nil {
		t.Fatal(err)
	}
	want[0].Inactive = true
	if got := list(100); !reflect.DeepEqual(got, want) {
		t.Errorf("after the MAC moved away:\ngot  %+v\nwant %+v", got, want)
	}
	if err := l.read(t.Context(), func() {
		l.handle(&event{host: &hostEvent{vrf: "red", ev: vtep.HostEvent{Key: vtep.HostKey{VNI: 100, IP: a("10.1.0.10")}, Removed: true}}}, nil, now)
	}); err != nil {
		t.Fatal(err)
	}
	if got := list(100); !reflect.DeepEqual(got, want[1:]) {
		t.Errorf("after the neighbour is gone:\ngot  %+v\nwant %+v", got, want[1:])
	}
}

// The status lists each VRF with its backend, devices, border-leaf config
// (uplinks, static routes) and the L3 model's counts: local and remote
// hosts, host and prefix routes, remote VTEPs.
func TestStatusVRFs(t *testing.T) {
	l, _ := gatewayLeaf(t, evpn.MAC{0, 0, 0x5e, 0, 1, 1})
	d := l.d
	a := netip.MustParseAddr
	cfg := d.config()
	cfg.VRFs[0].Backend = configs.BackendDefault
	cfg.VRFs[0].VXLANDevice, cfg.VRFs[0].Bridge = "vxlan4001-nosuch", "br4001-nosuch"
	cfg.VRFs[0].Uplinks = []configs.Uplink{{Interface: "ext0", Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/30")}}}
	cfg.VRFs[0].Routes = []configs.StaticRoute{
		{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Via: a("192.0.2.2")},
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Via: a("192.0.2.2")},
	}
	blue := configs.VRF{Name: "blue", L3VNI: 3001, Backend: configs.BackendNetns, Namespace: "evpnd-test-nosuch"}
	cfg.VRFs = append(cfg.VRFs, blue)

	// Before the leaf runs: the config and the kernel only.
	want := []api.VRFStatus{
		{Name: "blue", L3VNI: 3001, Backend: configs.BackendNetns},
		{Name: "red", L3VNI: 4001, Backend: configs.BackendDefault, Uplinks: []string{"ext0"}, StaticRoutes: 2},
	}
	if got := d.vrfStates(t.Context(), cfg); !reflect.DeepEqual(got, want) {
		t.Errorf("without a leaf:\ngot  %+v\nwant %+v", got, want)
	}

	vtep2 := a("10.0.0.2")
	rmac := evpn.MAC{2, 0xaa, 0, 0, 0, 2}
	rts := []evpn.RT{evpn.AutoRT(65000, 100), evpn.AutoRT(65000, 4001)}
	now := time.Now()
	l.handle(&event{host: &hostEvent{vrf: "red", ev: vtep.HostEvent{Key: vtep.HostKey{VNI: 100, IP: a("10.1.0.10")}, MAC: evpn.MAC{2, 0, 0, 0, 0, 1}}}}, nil, now)
	for _, r := range []*evpn.Route{
		evpn.LocalMACIPRoute(evpn.RDFromIP(vtep2, 2), 100, 4001, evpn.MAC{2, 0, 0, 0, 0, 2}, a("10.1.0.20"), vtep2, rts, rmac, 0, false),
		evpn.LocalMACIPRoute(evpn.RDFromIP(vtep2, 2), 100, 4001, evpn.MAC{2, 0, 0, 0, 0, 3}, a("10.1.0.30"), vtep2, rts, rmac, 0, false),
		evpn.LocalPrefixRoute(evpn.RDFromIP(vtep2, 1), 4001, netip.MustParsePrefix("172.16.2.0/24"), vtep2, []evpn.RT{evpn.AutoRT(65000, 4001)}, rmac),
	} {
		l.handle(&event{bgp: &speaker.Event{Type: speaker.EventRoute, Route: r, Peer: vtep2}}, nil, now)
	}
	d.leaf.Store(l)
	serveCalls(t, l)
	want[1].LocalHosts, want[1].RemoteHosts, want[1].HostRoutes, want[1].PrefixRoutes, want[1].RemoteVTEPs = 1, 2, 2, 1, 1
	if got := d.vrfStates(t.Context(), cfg); !reflect.DeepEqual(got, want) {
		t.Errorf("with the leaf's L3 state:\ngot  %+v\nwant %+v", got, want)
	}
}

// A watch sees the ARP cache change: a local host advertised, a remote
// one installed, a local host outbid by a remote route (one change, the
// row the batch left), a remote one withdrawn (removed, with its last
// row); its initial state lists the cache.
func TestWatchARP(t *testing.T) {
	l, _ := gatewayLeaf(t, evpn.MAC{0, 0, 0x5e, 0, 1, 1})
	w := l.d.hub.subscribe()
	a := netip.MustParseAddr
	vtep2 := a("10.0.0.2")
	m1, m2 := evpn.MAC{2, 0, 0, 0, 0, 1}, evpn.MAC{2, 0, 0, 0, 0, 2}
	rts := []evpn.RT{evpn.AutoRT(65000, 100), evpn.AutoRT(65000, 4001)}
	rmac := evpn.MAC{2, 0xaa, 0, 0, 0, 2}
	route := func(ip string, mac evpn.MAC, seq uint32) *evpn.Route {
		return evpn.LocalMACIPRoute(evpn.RDFromIP(vtep2, 2), 100, 4001, mac, a(ip), vtep2, rts, rmac, seq, false)
	}
	batch := func(evs ...*event) []string {
		t.Helper()
		now := time.Now()
		for _, ev := range evs {
			l.handle(ev, nil, now)
		}
		l.applyL3(l.l3eff, &effBuf{})
		l.l3eff = nil
		var out []string
		for {
			select {
			case c := <-w.ch:
				if c.ARP != nil {
					e := c.ARP.Entry
					out = append(out, fmt.Sprintf("%d %s %s %s local=%v vtep=%v seq=%d inactive=%v", c.Kind, e.VRF, e.IP, e.MAC, e.Local, e.VTEP, e.Seq, e.Inactive))
				}
			default:
				return out
			}
		}
	}
	learn(l, m1, time.Now())
	host := &event{host: &hostEvent{vrf: "red", ev: vtep.HostEvent{Key: vtep.HostKey{VNI: 100, IP: a("10.1.0.10")}, MAC: m1}}}
	bgp := func(r *evpn.Route, withdraw bool) *event {
		return &event{bgp: &speaker.Event{Type: speaker.EventRoute, Route: r, Peer: vtep2, Withdraw: withdraw}}
	}
	added, removed := int(api.ChangeAdded), int(api.ChangeRemoved)
	for _, c := range []struct {
		what string
		evs  []*event
		want []string
	}{
		{"local host", []*event{host}, []string{fmt.Sprintf("%d red 10.1.0.10 %s local=true vtep=invalid IP seq=0 inactive=false", added, m1)}},
		{"remote host", []*event{bgp(route("10.1.0.20", m2, 3), false)},
			[]string{fmt.Sprintf("%d red 10.1.0.20 %s local=false vtep=10.0.0.2 seq=3 inactive=false", added, m2)}},
		{"local host outbid", []*event{bgp(route("10.1.0.10", m1, 1), false)},
			[]string{fmt.Sprintf("%d red 10.1.0.10 %s local=false vtep=10.0.0.2 seq=1 inactive=false", added, m1)}},
		{"remote host withdrawn", []*event{bgp(route("10.1.0.20", m2, 3), true)},
			[]string{fmt.Sprintf("%d red 10.1.0.20 %s local=false vtep=invalid IP seq=0 inactive=false", removed, m2)}},
	} {
		if got := batch(c.evs...); !slices.Equal(got, c.want) {
			t.Errorf("%s: ARP changes\n got %q\nwant %q", c.what, got, c.want)
		}
	}
	snap := l.arpSnapshot(time.Now())
	if len(snap) != 1 || !snap[0].Initial || snap[0].ARP.Entry.IP != a("10.1.0.10") || snap[0].ARP.Entry.VTEP != vtep2 {
		t.Errorf("initial ARP state: %+v", snap)
	}
}

// learn has leaf l learn mac on its access port eth1 of VNI 100, as the
// bridge reports it around the host's first ARP: a neighbour is advertised
// (and active) only while its MAC is local.
func learn(l *leaf, mac evpn.MAC, now time.Time) {
	l.apply(l.handle(&event{local: &vtep.MACEvent{VNI: 100, MAC: mac, Port: "eth1"}}, nil, now), &effBuf{})
}
