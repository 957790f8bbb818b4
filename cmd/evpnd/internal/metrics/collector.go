package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// stateCollector exports a Source's Snapshot, read once per scrape. Values
// are const metrics built fresh each time, so a peer or VNI that is gone
// disappears from the next scrape.
type stateCollector struct {
	src Source

	peerState, peerUp, peerReceived, peerAccepted *prometheus.Desc
	routes                                        *prometheus.Desc
	macs, macDuplicates, floodVTEPs               *prometheus.Desc
	fibInstalled, fibPending                      *prometheus.Desc
	fibWrites, fibDeletes, fibErrors, fibResyncs  *prometheus.Desc
	kernelInSync                                  *prometheus.Desc
	stuckResets                                   *prometheus.Desc
	vrfInSync, vrfInstalled, vrfPending           *prometheus.Desc
	vrfErrors, vrfRepairs                         *prometheus.Desc
}

func newStateCollector(src Source) *stateCollector {
	d := prometheus.NewDesc
	return &stateCollector{
		src: src,
		peerState: d("evpnd_bgp_peer_state",
			"BGP session state of the neighbour (RFC 4271 §8.2.2): 0 unknown, 1 idle, 2 connect, 3 active, 4 opensent, 5 openconfirm, 6 established.",
			[]string{"peer", "asn"}, nil),
		peerUp: d("evpnd_bgp_peer_up",
			"1 if the BGP session with the neighbour is established, else 0.",
			[]string{"peer"}, nil),
		peerReceived: d("evpnd_bgp_peer_routes_received",
			"l2vpn-evpn paths currently held from the neighbour, before import policy.",
			[]string{"peer"}, nil),
		peerAccepted: d("evpnd_bgp_peer_routes_accepted",
			"l2vpn-evpn paths currently held from the neighbour and accepted by import policy.",
			[]string{"peer"}, nil),
		routes: d("evpnd_evpn_routes",
			"Remote EVPN routes a leaf imported into an L2VNI, per route type (2 MAC/IP, 3 inclusive multicast, 5 IP prefix); 0 on a route reflector.",
			[]string{"type"}, nil),
		macs: d("evpnd_macs",
			"MACs per L2VNI: source=local learned on access ports, source=remote selected from remote VTEPs.",
			[]string{"vni", "source"}, nil),
		macDuplicates: d("evpnd_mac_duplicates",
			"MACs of the L2VNI currently flagged duplicate (RFC 7432 §15.1); clear with evpnctl.",
			[]string{"vni"}, nil),
		floodVTEPs: d("evpnd_flood_vteps",
			"Remote VTEPs in the L2VNI's flood list (type-3 routes selected).",
			[]string{"vni"}, nil),
		fibInstalled: d("evpnd_fib_installed",
			"Kernel FDB entries (remote MACs and flood-list VTEPs) fib holds as desired.",
			nil, nil),
		fibPending: d("evpnd_fib_pending",
			"Kernel entries waiting for a retry after a failed write or delete.",
			nil, nil),
		fibWrites: d("evpnd_fib_writes_total",
			"Kernel entries written (created or replaced) by the fib reconciler.",
			nil, nil),
		fibDeletes: d("evpnd_fib_deletes_total",
			"Kernel entries deleted by the fib reconciler.",
			nil, nil),
		fibErrors: d("evpnd_fib_errors_total",
			"Failed kernel writes and deletes of the fib reconciler; each is retried.",
			nil, nil),
		fibResyncs: d("evpnd_fib_resyncs_total",
			"Full comparisons of the desired state with the kernel's.",
			nil, nil),
		kernelInSync: d("evpnd_kernel_in_sync",
			"1 if the kernel holds every entry BGP selected and no write waits for a retry, else 0.",
			nil, nil),
		stuckResets: d("evpnd_bgp_stuck_session_resets_total",
			"BGP sessions reset after staying in OpenConfirm longer than their hold time (at most 10 s) without the neighbour's KEEPALIVE.",
			nil, nil),
		vrfInSync: d("evpnd_vrf_kernel_in_sync",
			"1 if the kernel holds the tenant VRF's wanted router MACs, neighbours and routes (BGP synced, no write waiting for a retry), else 0.",
			[]string{"vrf"}, nil),
		vrfInstalled: d("evpnd_vrf_l3_installed",
			"Kernel L3 entries evpnd holds for the tenant VRF, per kind (rmac: router MAC FDB entries, neigh: neighbours, route: routes).",
			[]string{"vrf", "kind"}, nil),
		vrfPending: d("evpnd_vrf_l3_pending",
			"Kernel L3 entries of the tenant VRF waiting for a retry after a failed write or delete, per kind.",
			[]string{"vrf", "kind"}, nil),
		vrfErrors: d("evpnd_vrf_l3_errors_total",
			"Failed kernel L3 writes and deletes of the tenant VRF, per kind; each is retried.",
			[]string{"vrf", "kind"}, nil),
		vrfRepairs: d("evpnd_vrf_l3_repairs_total",
			"Kernel L3 writes of the tenant VRF that undid someone else's change (drift), per kind.",
			[]string{"vrf", "kind"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.peerState, c.peerUp, c.peerReceived, c.peerAccepted,
		c.routes,
		c.macs, c.macDuplicates, c.floodVTEPs,
		c.fibInstalled, c.fibPending,
		c.fibWrites, c.fibDeletes, c.fibErrors, c.fibResyncs,
		c.kernelInSync, c.stuckResets,
		c.vrfInSync, c.vrfInstalled, c.vrfPending, c.vrfErrors, c.vrfRepairs,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}

	for _, p := range s.Peers {
		peer := p.Address.String()
		gauge(c.peerState, float64(p.State), peer, strconv.FormatUint(uint64(p.ASN), 10))
		gauge(c.peerUp, bool01(p.State == PeerEstablished), peer)
		gauge(c.peerReceived, float64(p.Received), peer)
		gauge(c.peerAccepted, float64(p.Accepted), peer)
	}

	for _, t := range []uint8{2, 3, 5} {
		gauge(c.routes, float64(s.RoutesByType[t]), strconv.Itoa(int(t)))
	}
	for t, n := range s.RoutesByType {
		if t != 2 && t != 3 && t != 5 {
			gauge(c.routes, float64(n), strconv.Itoa(int(t)))
		}
	}

	for _, v := range s.VNIs {
		vni := vniLabel(v.VNI)
		gauge(c.macs, float64(v.Local), vni, "local")
		gauge(c.macs, float64(v.Remote), vni, "remote")
		gauge(c.macDuplicates, float64(v.Duplicates), vni)
		gauge(c.floodVTEPs, float64(v.FloodVTEPs), vni)
	}

	gauge(c.fibInstalled, float64(s.FIB.Installed))
	gauge(c.fibPending, float64(s.FIB.Pending))
	counter(c.fibWrites, s.FIB.Writes)
	counter(c.fibDeletes, s.FIB.Deletes)
	counter(c.fibErrors, s.FIB.Errors)
	counter(c.fibResyncs, s.FIB.Resyncs)
	gauge(c.kernelInSync, bool01(s.KernelInSync))
	counter(c.stuckResets, s.StuckSessionResets)

	for _, v := range s.VRFs {
		gauge(c.vrfInSync, bool01(v.InSync), v.VRF)
		for _, k := range v.Kinds {
			gauge(c.vrfInstalled, float64(k.Installed), v.VRF, k.Kind)
			gauge(c.vrfPending, float64(k.Pending), v.VRF, k.Kind)
			counter(c.vrfErrors, k.Errors, v.VRF, k.Kind)
			counter(c.vrfRepairs, k.Repairs, v.VRF, k.Kind)
		}
	}
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
