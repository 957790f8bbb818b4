package metrics

import (
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Source gives the daemon's current state at scrape time. The daemon
// implements it. Snapshot may be called concurrently.
type Source interface {
	Snapshot() Snapshot
}

// SourceFunc adapts a function to Source.
type SourceFunc func() Snapshot

// Snapshot calls f.
func (f SourceFunc) Snapshot() Snapshot { return f() }

// Snapshot is the state exported at one scrape.
type Snapshot struct {
	Peers []Peer
	VNIs  []VNICounts
	// RoutesByType counts the EVPN routes in the daemon's table per route
	// type (2, 3, 5). Types 2, 3 and 5 are always exported, as 0 if absent.
	RoutesByType map[uint8]int
	FIB          FIBStats
	KernelInSync bool
	// StuckSessionResets counts the BGP sessions the speaker reset after
	// they stayed stuck in OpenConfirm (speaker.Server.StuckSessionResets).
	StuckSessionResets uint64
	// VRFs is each tenant VRF's kernel L3 state (fib's L3 reconciler).
	VRFs []VRFKernel
}

// VRFKernel is one tenant VRF's kernel L3 state.
type VRFKernel struct {
	VRF    string
	InSync bool
	Kinds  []VRFKernelKind
}

// VRFKernelKind is one kind ("rmac", "neigh", "route") of a VRF's kernel
// L3 objects.
type VRFKernelKind struct {
	Kind               string
	Installed, Pending int
	Errors, Repairs    uint64
}

// Peer is one BGP neighbour's share of a scrape.
type Peer struct {
	Address netip.Addr
	ASN     uint32
	// State is the session's state as RFC 4271 §8.2.2 numbers it, the
	// value of evpnd_bgp_peer_state: 0 unknown, 1 idle, 2 connect,
	// 3 active, 4 opensent, 5 openconfirm, 6 (PeerEstablished)
	// established.
	State    uint8
	Received uint64 // l2vpn-evpn paths received
	Accepted uint64 // of those, accepted by policy
}

// PeerEstablished is Peer.State of an established session.
const PeerEstablished = 6

// VNICounts are one L2VNI's table sizes.
type VNICounts struct {
	VNI        uint32
	Local      int // MACs learned on access ports
	Remote     int // MACs selected from remote VTEPs
	Duplicates int // MACs currently flagged duplicate
	FloodVTEPs int // remote VTEPs in the flood list
}

// FIBStats are the fib reconciler's sizes and counters. The counters only
// grow while the daemon runs.
type FIBStats struct {
	Installed int // entries the kernel holds as desired
	Pending   int // entries waiting for a retry after an error
	Writes    uint64
	Deletes   uint64
	Errors    uint64
	Resyncs   uint64 // full comparisons with the kernel
}

// reconcileBuckets span a pass that writes one entry (~100µs) to a
// 100k-entry resync that the kernel makes slow (~10s), in 1-2.5-5 steps.
var reconcileBuckets = []float64{
	0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05,
	0.1, 0.25, 0.5,
	1, 2.5, 5,
	10,
}

// Metrics is evpnd's set of Prometheus metrics and their registry. Its
// methods are safe for concurrent use; on a nil *Metrics the event methods
// do nothing.
type Metrics struct {
	version string
	reg     *prometheus.Registry
	handler http.Handler

	moves, duplicates  *prometheus.CounterVec
	oddRoutes          *prometheus.CounterVec
	gatewayConflicts   *prometheus.CounterVec
	deviceRepairs      *prometheus.CounterVec
	deviceRepairFails  *prometheus.CounterVec
	reconcile          prometheus.Histogram
	reconcileOps       prometheus.Counter
	reconcileOpsFailed prometheus.Counter
	repairs            *prometheus.CounterVec
	underlayRepairs    *prometheus.CounterVec
	reloads            *prometheus.CounterVec
}

// counterVec is a counter with the given name, help and label names.
func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

// New returns the metrics of a daemon running the given version, reading
// state from src at each scrape. src may be nil (nothing but the event
// counters, build info and the Go and process metrics is exported then).
func New(src Source, version string) *Metrics {
	m := &Metrics{
		version: version,
		reg:     prometheus.NewRegistry(),
		moves: counterVec("evpnd_mac_moves_total",
			"MAC moves (RFC 7432 §15): a MAC selected at a new location, local or remote, per L2VNI.",
			"vni"),
		duplicates: counterVec("evpnd_mac_duplicates_detected_total",
			"MACs flagged duplicate for moving too often (RFC 7432 §15.1), per L2VNI.",
			"vni"),
		oddRoutes: counterVec("evpnd_odd_routes_total",
			"Received EVPN routes that are odd (label 0, a downstream-assigned VNI, a type-3 without ingress replication, an IPv6 next hop, an ESI without an A-D route, a sequence number at its maximum), per kind.",
			"kind"),
		gatewayConflicts: counterVec("evpnd_gateway_mac_conflicts_total",
			"Received MAC+IP routes for an anycast gateway address of a local routed L2VNI, or with the Default Gateway community, whose MAC differs from this leaf's gateway MAC: another leaf has another gateway-mac. Not installed. Per L2VNI.",
			"vni"),
		deviceRepairs: counterVec("evpnd_device_repairs_total",
			"Changes evpnd made to put an L2VNI's devices back as configured after someone else changed them (a deleted device rebuilt, a released port enslaved again, VXLAN port learning turned off again, a device re-created by someone else adopted: adopt_recreated), per L2VNI and action.",
			"vni", "action"),
		deviceRepairFails: counterVec("evpnd_device_repair_failures_total",
			"Changes to an L2VNI's devices that evpnd could not repair (a device re-created with a conflicting identity, or the kernel refused the repair), per L2VNI.",
			"vni"),
		reconcile: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "evpnd_fib_reconcile_duration_seconds",
			Help:    "Time taken by one fib reconcile pass that had kernel work to do.",
			Buckets: reconcileBuckets,
		}),
		reconcileOps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "evpnd_fib_reconcile_operations_total",
			Help: "Kernel operations (writes and deletes) attempted by fib reconcile passes.",
		}),
		reconcileOpsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "evpnd_fib_reconcile_failed_operations_total",
			Help: "Kernel operations of fib reconcile passes that failed and will be retried.",
		}),
		repairs: counterVec("evpnd_fib_drift_repairs_total",
			"Kernel entries fib repaired after someone else changed a managed VXLAN device's FDB, "+
				"by table (mac: the VXLAN entry, bridge: the bridge entry, flood: a flood-list entry) and drift (missing, extra, wrong).",
			"table", "drift"),
		underlayRepairs: counterVec("evpnd_underlay_drift_repairs_total",
			"Underlay routes (proto 183) fib repaired after someone else changed the main table, by drift: missing (a route put back), wrong (a route rewritten), extra (a marked route someone added, deleted).",
			"drift"),
		reloads: counterVec("evpnd_config_reloads_total",
			"Config reloads (SIGHUP, evpnctl reload) by result: applied (all of the file's live changes), partial (some failed), refused (bad file: nothing changed).",
			"result"),
	}
	for _, r := range []string{ReloadApplied, ReloadPartial, ReloadRefused} {
		m.reloads.WithLabelValues(r) // exported as 0 before the first reload
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "evpnd_build_info",
		Help:        "Always 1; the version label is the running evpnd's version.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
		m.moves, m.duplicates, m.oddRoutes, m.gatewayConflicts,
		m.deviceRepairs, m.deviceRepairFails,
		m.reconcile, m.reconcileOps, m.reconcileOpsFailed, m.repairs, m.underlayRepairs, m.reloads,
	)
	if src != nil {
		m.reg.MustRegister(newStateCollector(src))
	}
	// InstrumentMetricHandler registers promhttp's own request counters,
	// so the handler is built exactly once.
	m.handler = promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry: m.reg,
		// A collector error (such as a duplicate VNI in a Snapshot) drops
		// that series and counts in promhttp_metric_handler_errors_total,
		// rather than failing the whole scrape.
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             30 * time.Second,
	}))
	return m
}

func vniLabel(vni uint32) string { return strconv.FormatUint(uint64(vni), 10) }

// MACMove counts one MAC move in vni (evpnd_mac_moves_total).
func (m *Metrics) MACMove(vni uint32) {
	if m == nil {
		return
	}
	m.moves.WithLabelValues(vniLabel(vni)).Inc()
}

// DuplicateDetected counts one MAC of vni flagged duplicate
// (evpnd_mac_duplicates_detected_total).
func (m *Metrics) DuplicateDetected(vni uint32) {
	if m == nil {
		return
	}
	m.duplicates.WithLabelValues(vniLabel(vni)).Inc()
}

// OddRoute counts one odd received route of the given kind
// (evpnd_odd_routes_total).
func (m *Metrics) OddRoute(kind string) {
	if m == nil {
		return
	}
	m.oddRoutes.WithLabelValues(kind).Inc()
}

// GatewayMACConflict counts one received route whose anycast gateway MAC
// on vni differs from this leaf's (evpnd_gateway_mac_conflicts_total).
func (m *Metrics) GatewayMACConflict(vni uint32) {
	if m == nil {
		return
	}
	m.gatewayConflicts.WithLabelValues(vniLabel(vni)).Inc()
}

// ReconcilePass records one fib reconcile pass that took d and attempted
// ops kernel operations, of which errors failed. Call it for passes that
// had work to do, so that idle wake-ups do not swamp the latency
// histogram.
func (m *Metrics) ReconcilePass(d time.Duration, ops, errors int) {
	if m == nil {
		return
	}
	m.reconcile.Observe(d.Seconds())
	if ops > 0 {
		m.reconcileOps.Add(float64(ops))
	}
	if errors > 0 {
		m.reconcileOpsFailed.Add(float64(errors))
	}
}

// Results of a reload, the result label of evpnd_config_reloads_total.
const (
	ReloadApplied = "applied"
	ReloadPartial = "partial"
	ReloadRefused = "refused"
)

// Reload counts one config reload with its result.
func (m *Metrics) Reload(result string) {
	if m == nil {
		return
	}
	m.reloads.WithLabelValues(result).Inc()
}

// DriftRepaired counts one kernel entry fib repaired
// (evpnd_fib_drift_repairs_total): table is fib's Drift.Table ("mac",
// "bridge", "flood") or a VRF's L3 table ("neigh", "rmac", "route"),
// drift its kind ("missing", "extra", "wrong").
func (m *Metrics) DriftRepaired(table, drift string) {
	if m == nil {
		return
	}
	m.repairs.WithLabelValues(table, drift).Inc()
}

// UnderlayRepaired counts one underlay route fib repaired
// (evpnd_underlay_drift_repairs_total): drift is the fib.DriftKind it
// fixed ("missing", "wrong", "extra").
func (m *Metrics) UnderlayRepaired(drift string) {
	if m == nil {
		return
	}
	m.underlayRepairs.WithLabelValues(drift).Inc()
}

// RemoveVNI drops the event counters of a deleted VNI, so that its series
// stop being exported. Its Source-based series go as soon as Snapshot no
// longer lists it.
func (m *Metrics) RemoveVNI(vni uint32) {
	if m == nil {
		return
	}
	l := vniLabel(vni)
	m.moves.DeleteLabelValues(l)
	m.duplicates.DeleteLabelValues(l)
	m.deviceRepairs.DeletePartialMatch(prometheus.Labels{"vni": l})
	m.deviceRepairFails.DeleteLabelValues(l)
	m.gatewayConflicts.DeleteLabelValues(l)
}

// DeviceRepair counts one repair action on the devices of vni
// (evpnd_device_repairs_total), such as "create_vxlan" or "set_master".
func (m *Metrics) DeviceRepair(vni uint32, action string) {
	if m == nil {
		return
	}
	m.deviceRepairs.WithLabelValues(vniLabel(vni), action).Inc()
}

// DeviceRepairFailed counts one change to the devices of vni that could
// not be repaired (evpnd_device_repair_failures_total).
func (m *Metrics) DeviceRepairFailed(vni uint32) {
	if m == nil {
		return
	}
	m.deviceRepairFails.WithLabelValues(vniLabel(vni)).Inc()
}

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler { return m.handler }
