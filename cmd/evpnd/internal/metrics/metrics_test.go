package metrics

import (
	"math"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// fakeSource returns whatever snapshot the test last set.
type fakeSource struct {
	mu sync.Mutex
	s  Snapshot
	n  int // Snapshot calls
}

func (f *fakeSource) Snapshot() Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return f.s
}

func (f *fakeSource) set(s Snapshot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.s = s
}

func (f *fakeSource) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func sampleSnapshot() Snapshot {
	return Snapshot{
		Peers: []Peer{
			{Address: netip.MustParseAddr("10.0.0.1"), ASN: 65000, State: PeerEstablished, Received: 120, Accepted: 100},
			{Address: netip.MustParseAddr("10.0.0.2"), ASN: 65001, State: 3},
		},
		VNIs: []VNICounts{
			{VNI: 100, Local: 3, Remote: 40, Duplicates: 1, FloodVTEPs: 2},
			{VNI: 200, Local: 0, Remote: 7, FloodVTEPs: 1},
		},
		RoutesByType:       map[uint8]int{2: 50, 3: 3},
		FIB:                FIBStats{Installed: 47, Pending: 2, Writes: 60, Deletes: 13, Errors: 4, Resyncs: 1},
		KernelInSync:       false,
		StuckSessionResets: 2,
	}
}

func TestSnapshotValues(t *testing.T) {
	src := &fakeSource{s: sampleSnapshot()}
	m := New(src, "1.2.3")
	const want = `
# HELP evpnd_bgp_peer_state BGP session state of the neighbour (RFC 4271 §8.2.2): 0 unknown, 1 idle, 2 connect, 3 active, 4 opensent, 5 openconfirm, 6 established.
# TYPE evpnd_bgp_peer_state gauge
evpnd_bgp_peer_state{asn="65000",peer="10.0.0.1"} 6
evpnd_bgp_peer_state{asn="65001",peer="10.0.0.2"} 3
# HELP evpnd_bgp_peer_up 1 if the BGP session with the neighbour is established, else 0.
# TYPE evpnd_bgp_peer_up gauge
evpnd_bgp_peer_up{peer="10.0.0.1"} 1
evpnd_bgp_peer_up{peer="10.0.0.2"} 0
# HELP evpnd_bgp_peer_routes_received l2vpn-evpn paths currently held from the neighbour, before import policy.
# TYPE evpnd_bgp_peer_routes_received gauge
evpnd_bgp_peer_routes_received{peer="10.0.0.1"} 120
evpnd_bgp_peer_routes_received{peer="10.0.0.2"} 0
# HELP evpnd_bgp_peer_routes_accepted l2vpn-evpn paths currently held from the neighbour and accepted by import policy.
# TYPE evpnd_bgp_peer_routes_accepted gauge
evpnd_bgp_peer_routes_accepted{peer="10.0.0.1"} 100
evpnd_bgp_peer_routes_accepted{peer="10.0.0.2"} 0
# HELP evpnd_evpn_routes Remote EVPN routes a leaf imported into an L2VNI, per route type (2 MAC/IP, 3 inclusive multicast, 5 IP prefix); 0 on a route reflector.
# TYPE evpnd_evpn_routes gauge
evpnd_evpn_routes{type="2"} 50
evpnd_evpn_routes{type="3"} 3
evpnd_evpn_routes{type="5"} 0
# HELP evpnd_macs MACs per L2VNI: source=local learned on access ports, source=remote selected from remote VTEPs.
# TYPE evpnd_macs gauge
evpnd_macs{source="local",vni="100"} 3
evpnd_macs{source="remote",vni="100"} 40
evpnd_macs{source="local",vni="200"} 0
evpnd_macs{source="remote",vni="200"} 7
# HELP evpnd_mac_duplicates MACs of the L2VNI currently flagged duplicate (RFC 7432 §15.1); clear with evpnctl.
# TYPE evpnd_mac_duplicates gauge
evpnd_mac_duplicates{vni="100"} 1
evpnd_mac_duplicates{vni="200"} 0
# HELP evpnd_flood_vteps Remote VTEPs in the L2VNI's flood list (type-3 routes selected).
# TYPE evpnd_flood_vteps gauge
evpnd_flood_vteps{vni="100"} 2
evpnd_flood_vteps{vni="200"} 1
# HELP evpnd_fib_installed Kernel FDB entries (remote MACs and flood-list VTEPs) fib holds as desired.
# TYPE evpnd_fib_installed gauge
evpnd_fib_installed 47
# HELP evpnd_fib_pending Kernel entries waiting for a retry after a failed write or delete.
# TYPE evpnd_fib_pending gauge
evpnd_fib_pending 2
# HELP evpnd_fib_writes_total Kernel entries written (created or replaced) by the fib reconciler.
# TYPE evpnd_fib_writes_total counter
evpnd_fib_writes_total 60
# HELP evpnd_fib_deletes_total Kernel entries deleted by the fib reconciler.
# TYPE evpnd_fib_deletes_total counter
evpnd_fib_deletes_total 13
# HELP evpnd_fib_errors_total Failed kernel writes and deletes of the fib reconciler; each is retried.
# TYPE evpnd_fib_errors_total counter
evpnd_fib_errors_total 4
# HELP evpnd_fib_resyncs_total Full comparisons of the desired state with the kernel's.
# TYPE evpnd_fib_resyncs_total counter
evpnd_fib_resyncs_total 1
# HELP evpnd_kernel_in_sync 1 if the kernel holds every entry BGP selected and no write waits for a retry, else 0.
# TYPE evpnd_kernel_in_sync gauge
evpnd_kernel_in_sync 0
# HELP evpnd_bgp_stuck_session_resets_total BGP sessions reset after staying in OpenConfirm longer than their hold time (at most 10 s) without the neighbour's KEEPALIVE.
# TYPE evpnd_bgp_stuck_session_resets_total counter
evpnd_bgp_stuck_session_resets_total 2
# HELP evpnd_build_info Always 1; the version label is the running evpnd's version.
# TYPE evpnd_build_info gauge
evpnd_build_info{version="1.2.3"} 1
`
	names := []string{
		"evpnd_bgp_peer_state", "evpnd_bgp_peer_up", "evpnd_bgp_peer_routes_received", "evpnd_bgp_peer_routes_accepted",
		"evpnd_evpn_routes", "evpnd_macs", "evpnd_mac_duplicates", "evpnd_flood_vteps",
		"evpnd_fib_installed", "evpnd_fib_pending",
		"evpnd_fib_writes_total", "evpnd_fib_deletes_total", "evpnd_fib_errors_total", "evpnd_fib_resyncs_total",
		"evpnd_kernel_in_sync", "evpnd_bgp_stuck_session_resets_total", "evpnd_build_info",
	}
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
}

// TestReadAtScrape checks that each gather reads the Source again, and that
// peers and VNIs that are gone disappear.
func TestReadAtScrape(t *testing.T) {
	src := &fakeSource{s: sampleSnapshot()}
	m := New(src, "dev")
	if src.calls() != 0 {
		t.Fatalf("New called Snapshot %d times; want it read only at scrape", src.calls())
	}
	if n, err := testutil.GatherAndCount(m.reg, "evpnd_bgp_peer_up"); err != nil || n != 2 {
		t.Fatalf("evpnd_bgp_peer_up series = %d (%v), want 2", n, err)
	}
	s := sampleSnapshot()
	s.Peers = s.Peers[:1]
	s.VNIs = s.VNIs[1:]
	s.KernelInSync = true
	s.FIB.Errors = 9
	s.StuckSessionResets = 3
	src.set(s)
	const want = `
# HELP evpnd_bgp_peer_up 1 if the BGP session with the neighbour is established, else 0.
# TYPE evpnd_bgp_peer_up gauge
evpnd_bgp_peer_up{peer="10.0.0.1"} 1
# HELP evpnd_flood_vteps Remote VTEPs in the L2VNI's flood list (type-3 routes selected).
# TYPE evpnd_flood_vteps gauge
evpnd_flood_vteps{vni="200"} 1
# HELP evpnd_kernel_in_sync 1 if the kernel holds every entry BGP selected and no write waits for a retry, else 0.
# TYPE evpnd_kernel_in_sync gauge
evpnd_kernel_in_sync 1
# HELP evpnd_fib_errors_total Failed kernel writes and deletes of the fib reconciler; each is retried.
# TYPE evpnd_fib_errors_total counter
evpnd_fib_errors_total 9
# HELP evpnd_bgp_stuck_session_resets_total BGP sessions reset after staying in OpenConfirm longer than their hold time (at most 10 s) without the neighbour's KEEPALIVE.
# TYPE evpnd_bgp_stuck_session_resets_total counter
evpnd_bgp_stuck_session_resets_total 3
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want),
		"evpnd_bgp_peer_up", "evpnd_flood_vteps", "evpnd_kernel_in_sync", "evpnd_fib_errors_total",
		"evpnd_bgp_stuck_session_resets_total"); err != nil {
		t.Fatal(err)
	}
	if src.calls() != 2 {
		t.Fatalf("Snapshot called %d times for 2 gathers, want 2", src.calls())
	}
}

func TestEventCounters(t *testing.T) {
	m := New(nil, "dev")
	m.MACMove(100)
	m.MACMove(100)
	m.MACMove(200)
	m.DuplicateDetected(100)
	m.GatewayMACConflict(100)
	m.GatewayMACConflict(100)
	if got := testutil.ToFloat64(m.gatewayConflicts.WithLabelValues("100")); got != 2 {
		t.Fatalf("gateway MAC conflicts{vni=100} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.moves.WithLabelValues("100")); got != 2 {
		t.Fatalf("moves{vni=100} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.moves.WithLabelValues("200")); got != 1 {
		t.Fatalf("moves{vni=200} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.duplicates.WithLabelValues("100")); got != 1 {
		t.Fatalf("duplicates detected{vni=100} = %v, want 1", got)
	}

	m.RemoveVNI(100)
	if n := testutil.CollectAndCount(m.moves); n != 1 {
		t.Fatalf("after RemoveVNI(100), %d move series, want 1 (vni 200)", n)
	}
	if n := testutil.CollectAndCount(m.duplicates); n != 0 {
		t.Fatalf("after RemoveVNI(100), %d duplicate series, want 0", n)
	}
	if n := testutil.CollectAndCount(m.gatewayConflicts); n != 0 {
		t.Fatalf("after RemoveVNI(100), %d gateway MAC conflict series, want 0", n)
	}

	m.OddRoute("label-zero")
	m.OddRoute("label-zero")
	m.OddRoute("no-pmsi")
	if got := testutil.ToFloat64(m.oddRoutes.WithLabelValues("label-zero")); got != 2 {
		t.Fatalf("odd routes{kind=label-zero} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.oddRoutes.WithLabelValues("no-pmsi")); got != 1 {
		t.Fatalf("odd routes{kind=no-pmsi} = %v, want 1", got)
	}

	m.UnderlayRepaired("missing")
	m.UnderlayRepaired("missing")
	m.UnderlayRepaired("extra")
	const underlay = `
# HELP evpnd_underlay_drift_repairs_total Underlay routes (proto 183) fib repaired after someone else changed the main table, by drift: missing (a route put back), wrong (a route rewritten), extra (a marked route someone added, deleted).
# TYPE evpnd_underlay_drift_repairs_total counter
evpnd_underlay_drift_repairs_total{drift="extra"} 1
evpnd_underlay_drift_repairs_total{drift="missing"} 2
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(underlay), "evpnd_underlay_drift_repairs_total"); err != nil {
		t.Fatal(err)
	}

	// A nil *Metrics ignores events.
	var off *Metrics
	off.UnderlayRepaired("wrong")
	off.OddRoute("label-zero")
	off.MACMove(1)
	off.DuplicateDetected(1)
	off.GatewayMACConflict(1)
	off.ReconcilePass(time.Second, 1, 1)
	off.RemoveVNI(1)
}

func TestReconcilePass(t *testing.T) {
	m := New(nil, "dev")
	m.ReconcilePass(300*time.Microsecond, 10, 0)
	m.ReconcilePass(2*time.Second, 5, 2)
	m.ReconcilePass(time.Millisecond, 0, -1) // nonsense counts are ignored
	if got := testutil.ToFloat64(m.reconcileOps); got != 15 {
		t.Fatalf("reconcile operations = %v, want 15", got)
	}
	if got := testutil.ToFloat64(m.reconcileOpsFailed); got != 2 {
		t.Fatalf("reconcile failed operations = %v, want 2", got)
	}
	var pb dto.Metric
	if err := m.reconcile.Write(&pb); err != nil {
		t.Fatal(err)
	}
	h := pb.GetHistogram()
	if h.GetSampleCount() != 3 || math.Abs(h.GetSampleSum()-2.0013) > 1e-9 {
		t.Fatalf("histogram count %d sum %v, want 3 and 2.0013", h.GetSampleCount(), h.GetSampleSum())
	}
	b := h.GetBucket()
	if first, last := b[0].GetUpperBound(), b[len(b)-1].GetUpperBound(); first != 0.0001 || last != 10 {
		t.Fatalf("buckets span %v..%v s, want 0.0001..10", first, last)
	}
	for _, bk := range b {
		var want uint64
		for _, v := range []float64{0.0003, 2, 0.001} {
			if v <= bk.GetUpperBound() {
				want++
			}
		}
		if bk.GetCumulativeCount() != want {
			t.Fatalf("bucket le=%v holds %d, want %d", bk.GetUpperBound(), bk.GetCumulativeCount(), want)
		}
	}
}

// TestLint runs promlint over everything the registry exports, including
// the Go and process collectors.
func TestLint(t *testing.T) {
	m := New(&fakeSource{s: sampleSnapshot()}, "dev")
	m.MACMove(1)
	m.DuplicateDetected(1)
	m.ReconcilePass(time.Millisecond, 1, 0)
	m.UnderlayRepaired("wrong")
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestNames checks every evpnd metric has the prefix and help text, and
// that the Go, process and promhttp collectors are registered.
func TestNames(t *testing.T) {
	m := New(&fakeSource{s: sampleSnapshot()}, "dev")
	m.MACMove(1)
	m.DuplicateDetected(1)
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range fams {
		seen[f.GetName()] = true
		if strings.HasPrefix(f.GetName(), "go_") || strings.HasPrefix(f.GetName(), "process_") ||
			strings.HasPrefix(f.GetName(), "promhttp_") {
			continue
		}
		if !strings.HasPrefix(f.GetName(), "evpnd_") {
			t.Errorf("metric %s lacks the evpnd_ prefix", f.GetName())
		}
		if len(f.GetHelp()) < 20 {
			t.Errorf("metric %s has help %q, want a description", f.GetName(), f.GetHelp())
		}
	}
	for _, n := range []string{
		"go_goroutines", "process_cpu_seconds_total", "promhttp_metric_handler_requests_total",
		"evpnd_mac_moves_total", "evpnd_mac_duplicates_detected_total",
		"evpnd_fib_reconcile_duration_seconds", "evpnd_build_info", "evpnd_bgp_stuck_session_resets_total",
	} {
		if !seen[n] {
			t.Errorf("metric %s not exported", n)
		}
	}
}

// TestDuplicateSeriesKeepsScrape checks that a Source listing the same VNI
// twice loses that series but not the rest of the scrape.
func TestDuplicateSeriesKeepsScrape(t *testing.T) {
	s := sampleSnapshot()
	s.VNIs = append(s.VNIs, s.VNIs[0])
	m := New(&fakeSource{s: s}, "dev")
	body := scrape(t, m.Handler())
	if !strings.Contains(body, "evpnd_bgp_peer_up{peer=\"10.0.0.1\"} 1") {
		t.Fatalf("scrape lost unrelated series after a duplicate:\n%s", body)
	}
}

func TestDeviceRepairCounters(t *testing.T) {
	m := New(nil, "dev")
	m.DeviceRepair(100, "create_vxlan")
	m.DeviceRepair(100, "set_master")
	m.DeviceRepair(100, "set_master")
	m.DeviceRepair(200, "set_port_flags")
	m.DeviceRepairFailed(100)
	if got := testutil.ToFloat64(m.deviceRepairs.WithLabelValues("100", "set_master")); got != 2 {
		t.Fatalf("device repairs{vni=100,action=set_master} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.deviceRepairFails.WithLabelValues("100")); got != 1 {
		t.Fatalf("device repair failures{vni=100} = %v, want 1", got)
	}
	m.RemoveVNI(100)
	if n := testutil.CollectAndCount(m.deviceRepairs); n != 1 {
		t.Fatalf("after RemoveVNI(100), %d repair series, want 1 (vni 200)", n)
	}
	if n := testutil.CollectAndCount(m.deviceRepairFails); n != 0 {
		t.Fatalf("after RemoveVNI(100), %d repair failure series, want 0", n)
	}
	var off *Metrics
	off.DeviceRepair(1, "set_up")
	off.DeviceRepairFailed(1)
}

// Each tenant VRF's kernel L3 state: in sync or not, and per kind what
// is installed, what waits for a retry, errors and repairs.
func TestVRFKernelMetrics(t *testing.T) {
	s := sampleSnapshot()
	s.VRFs = []VRFKernel{
		{VRF: "blue", InSync: true, Kinds: []VRFKernelKind{{Kind: "route", Installed: 9, Repairs: 1}}},
		{VRF: "red", Kinds: []VRFKernelKind{{Kind: "neigh", Installed: 3, Pending: 1, Errors: 4}}},
	}
	m := New(&fakeSource{s: s}, "dev")
	const want = `
# HELP evpnd_vrf_kernel_in_sync 1 if the kernel holds the tenant VRF's wanted router MACs, neighbours and routes (BGP synced, no write waiting for a retry), else 0.
# TYPE evpnd_vrf_kernel_in_sync gauge
evpnd_vrf_kernel_in_sync{vrf="blue"} 1
evpnd_vrf_kernel_in_sync{vrf="red"} 0
# HELP evpnd_vrf_l3_installed Kernel L3 entries evpnd holds for the tenant VRF, per kind (rmac: router MAC FDB entries, neigh: neighbours, route: routes).
# TYPE evpnd_vrf_l3_installed gauge
evpnd_vrf_l3_installed{kind="neigh",vrf="red"} 3
evpnd_vrf_l3_installed{kind="route",vrf="blue"} 9
# HELP evpnd_vrf_l3_pending Kernel L3 entries of the tenant VRF waiting for a retry after a failed write or delete, per kind.
# TYPE evpnd_vrf_l3_pending gauge
evpnd_vrf_l3_pending{kind="neigh",vrf="red"} 1
evpnd_vrf_l3_pending{kind="route",vrf="blue"} 0
# HELP evpnd_vrf_l3_errors_total Failed kernel L3 writes and deletes of the tenant VRF, per kind; each is retried.
# TYPE evpnd_vrf_l3_errors_total counter
evpnd_vrf_l3_errors_total{kind="neigh",vrf="red"} 4
evpnd_vrf_l3_errors_total{kind="route",vrf="blue"} 0
# HELP evpnd_vrf_l3_repairs_total Kernel L3 writes of the tenant VRF that undid someone else's change (drift), per kind.
# TYPE evpnd_vrf_l3_repairs_total counter
evpnd_vrf_l3_repairs_total{kind="neigh",vrf="red"} 0
evpnd_vrf_l3_repairs_total{kind="route",vrf="blue"} 1
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "evpnd_vrf_kernel_in_sync", "evpnd_vrf_l3_installed",
		"evpnd_vrf_l3_pending", "evpnd_vrf_l3_errors_total", "evpnd_vrf_l3_repairs_total"); err != nil {
		t.Fatal(err)
	}
}
