package interop

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// This file decodes the JSON that FRR 8.4's vtysh prints and checks EVPN
// routes in it. It is pure, so golden_test.go runs it on captured FRR
// output without root.

// The hosts of the topologies (see testdata/*.clab.yml).
const (
	mac1, ip1 = "02:00:00:00:01:11", "192.168.100.11"
	mac2, ip2 = "02:00:00:00:01:12", "192.168.100.12"
	mac3, ip3 = "02:00:00:00:01:13", "192.168.100.13"
)

// evpnTable is "show bgp l2vpn evpn route detail json": route by prefix
// ("[2]:[0]:[48]:[02:00:00:00:01:11]") by RD ("10.0.0.1:100").
type evpnTable map[string]map[string]evpnRoute

// evpnRoute is one prefix of one RD.
type evpnRoute struct {
	Prefix    string       `json:"prefix"`
	RD        string       `json:"rd"`
	RouteType int          `json:"routeType"`
	EthTag    uint32       `json:"ethTag"`
	MAC       string       `json:"mac"`
	IP        string       `json:"ip"`
	Paths     [][]evpnPath `json:"paths"` // the detail view nests each path in a list
}

// evpnPath is one path of a route, as the detail view shows it.
type evpnPath struct {
	VNI      string `json:"vni"` // FRR prints it twice, as "VNI" and "vni"
	Valid    bool   `json:"valid"`
	Local    bool   `json:"local"`
	Bestpath *struct {
		Overall bool `json:"overall"`
	} `json:"bestpath"`
	ExtendedCommunity struct {
		String string `json:"string"`
	} `json:"extendedCommunity"`
	OriginatorID string `json:"originatorId"`
	PMSI         *struct {
		TunnelType string `json:"tunnelType"`
		Label      uint32 `json:"label"`
	} `json:"pmsi"`
	Nexthops []struct {
		IP         string `json:"ip"`
		Accessible bool   `json:"accessible"`
	} `json:"nexthops"`
	Peer struct {
		PeerID   string `json:"peerId"`
		RouterID string `json:"routerId"`
	} `json:"peer"`
}

// parseEVPNTable decodes "show bgp l2vpn evpn route detail json". Besides
// the RDs, the top level holds the counters numPrefix and numPaths.
func parseEVPNTable(data []byte) (evpnTable, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("decode EVPN table: %w", err)
	}
	t := evpnTable{}
	for k, raw := range top {
		if k == "numPrefix" || k == "numPaths" {
			continue
		}
		var rd map[string]json.RawMessage
		if err := json.Unmarshal(raw, &rd); err != nil {
			return nil, fmt.Errorf("decode EVPN table: RD %q: %w", k, err)
		}
		t[k] = map[string]evpnRoute{}
		for p, praw := range rd {
			if p == "rd" {
				continue
			}
			var r evpnRoute
			if err := json.Unmarshal(praw, &r); err != nil {
				return nil, fmt.Errorf("decode EVPN table: %s %s: %w", k, p, err)
			}
			t[k][p] = r
		}
	}
	return t, nil
}

// paths returns a route's paths, flattened.
func (r evpnRoute) paths() []evpnPath { return slices.Concat(r.Paths...) }

// ecomms returns the extended communities as FRR prints them ("RT:65000:100",
// "ET:8", "MM:1"), sorted. FRR prints a sticky MAC as "MM:1, sticky MAC".
func (p evpnPath) ecomms() []string {
	s := strings.ReplaceAll(p.ExtendedCommunity.String, ", sticky MAC", "/sticky")
	out := strings.Fields(s)
	slices.Sort(out)
	return out
}

// mobilitySeq returns the MAC mobility sequence number, 0 when the path has
// no MAC mobility community.
func (p evpnPath) mobilitySeq() (uint32, error) {
	for _, c := range p.ecomms() {
		if v, ok := strings.CutPrefix(c, "MM:"); ok {
			n, err := strconv.ParseUint(strings.TrimSuffix(v, "/sticky"), 10, 32)
			return uint32(n), err
		}
	}
	return 0, nil
}

// routesFor returns the RD and route of every prefix in the table whose MAC
// is mac.
func (t evpnTable) routesFor(mac string) map[string]evpnRoute {
	out := map[string]evpnRoute{}
	for rd, prefixes := range t {
		for _, r := range prefixes {
			if r.RouteType == 2 && r.MAC == mac {
				out[rd] = r
			}
		}
	}
	return out
}

// rdsOf returns the RDs of routesFor's result, sorted.
func rdsOf(rs map[string]evpnRoute) []string { return slices.Sorted(maps.Keys(rs)) }

// wantRoute is what an EVPN route originated by a leaf must look like in
// FRR's table (RFC 7432, RFC 8365; DESIGN §3.1-3.2).
type wantRoute struct {
	RD      string
	Prefix  string
	Type    int    // 2 or 3
	MAC     string // type-2
	IP      string // type-3: the originator
	VNI     string // type-2: FRR's "VNI"; "" to skip (FRR omits it where it has no VNI)
	NextHop string // the originating VTEP
	From    string // the BGP peer FRR got it from
	// Originator is the ORIGINATOR_ID a route reflector added (RFC 4456);
	// "" for a route FRR got from its originator.
	Originator string
	Ecomms     []string
	PMSI       uint32 // type-3: ingress replication label, the VNI
}

// check returns every difference between the route in t and w.
func (w wantRoute) check(t evpnTable) error {
	r, ok := t[w.RD][w.Prefix]
	if !ok {
		return fmt.Errorf("%s %s: not in the table", w.RD, w.Prefix)
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s %s: "+format, append([]any{w.RD, w.Prefix}, args...)...))
	}
	if r.RouteType != w.Type || r.EthTag != 0 || r.RD != w.RD {
		bad("routeType %d ethTag %d rd %q, want %d, 0, %q", r.RouteType, r.EthTag, r.RD, w.Type, w.RD)
	}
	if w.Type == 2 && r.MAC != w.MAC {
		bad("mac %q, want %q", r.MAC, w.MAC)
	}
	if w.Type == 3 && r.IP != w.IP {
		bad("originator %q, want %q", r.IP, w.IP)
	}
	ps := r.paths()
	if len(ps) != 1 {
		bad("%d paths, want 1", len(ps))
		return errors.Join(errs...)
	}
	p := ps[0]
	if !p.Valid || p.Bestpath == nil || !p.Bestpath.Overall {
		bad("path valid=%v best=%v, want a valid best path", p.Valid, p.Bestpath != nil && p.Bestpath.Overall)
	}
	if w.VNI != "" && p.VNI != w.VNI {
		bad("VNI %q, want %q", p.VNI, w.VNI)
	}
	if len(p.Nexthops) != 1 || p.Nexthops[0].IP != w.NextHop || !p.Nexthops[0].Accessible {
		bad("next hops %+v, want %s, accessible", p.Nexthops, w.NextHop)
	}
	if p.Peer.PeerID != w.From {
		bad("received from %q, want %q", p.Peer.PeerID, w.From)
	}
	if p.OriginatorID != w.Originator {
		bad("originator ID %q, want %q", p.OriginatorID, w.Originator)
	}
	want := slices.Sorted(slices.Values(w.Ecomms))
	if got := p.ecomms(); !slices.Equal(got, want) {
		bad("extended communities %v, want %v", got, want)
	}
	switch {
	case w.Type == 3 && (p.PMSI == nil || p.PMSI.TunnelType != "Ingress Replication" || p.PMSI.Label != w.PMSI):
		bad("PMSI %+v, want Ingress Replication, label %d", p.PMSI, w.PMSI)
	case w.Type != 3 && p.PMSI != nil:
		bad("PMSI %+v on a type-%d route", p.PMSI, w.Type)
	}
	return errors.Join(errs...)
}

// evpndRoutes is what FRR must show for an evpnd leaf with router ID and
// VTEP vtep that has the given local MACs in VNI 100 (auto RD
// vtep:100, auto RT 65000:100), learnt from peer from.
func evpndRoutes(vtep, from string, macs ...string) []wantRoute {
	rd := vtep + ":100"
	ws := []wantRoute{{
		RD: rd, Prefix: "[3]:[0]:[32]:[" + vtep + "]", Type: 3, IP: vtep,
		NextHop: vtep, From: from, Ecomms: []string{"ET:8", "RT:65000:100"}, PMSI: 100,
	}}
	for _, m := range macs {
		// evpnd always sends the MAC mobility community, seq 0 included.
		ws = append(ws, wantRoute{
			RD: rd, Prefix: "[2]:[0]:[48]:[" + m + "]", Type: 2, MAC: m, VNI: "100",
			NextHop: vtep, From: from, Ecomms: []string{"ET:8", "MM:0", "RT:65000:100"},
		})
	}
	return ws
}

// checkRoutes checks every wanted route and that the RDs of the wanted
// routes hold no other prefix: evpnd must not advertise anything else.
func checkRoutes(t evpnTable, ws []wantRoute) error {
	var errs []error
	want := map[string]map[string]bool{}
	for _, w := range ws {
		if want[w.RD] == nil {
			want[w.RD] = map[string]bool{}
		}
		want[w.RD][w.Prefix] = true
		if err := w.check(t); err != nil {
			errs = append(errs, err)
		}
	}
	for rd, prefixes := range want {
		for p := range t[rd] {
			if !prefixes[p] {
				errs = append(errs, fmt.Errorf("%s %s: unexpected route", rd, p))
			}
		}
	}
	return errors.Join(errs...)
}

// bgpSummary is "show bgp l2vpn evpn summary json".
type bgpSummary struct {
	RouterID string               `json:"routerId"`
	AS       uint32               `json:"as"`
	Peers    map[string]bgpPeerSt `json:"peers"`
}

type bgpPeerSt struct {
	State       string `json:"state"`
	PfxRcd      int    `json:"pfxRcd"`
	PfxSnt      int    `json:"pfxSnt"`
	DynamicPeer bool   `json:"dynamicPeer"`
}

// checkPeers checks that every peer is Established and sent FRR at least
// one prefix.
func (s bgpSummary) checkPeers(peers ...string) error {
	var errs []error
	for _, p := range peers {
		st, ok := s.Peers[p]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("peer %s: not in the summary", p))
		case st.State != "Established" || st.PfxRcd == 0:
			errs = append(errs, fmt.Errorf("peer %s: state %q, %d prefixes received; want Established with prefixes", p, st.State, st.PfxRcd))
		}
	}
	return errors.Join(errs...)
}

// zebraMAC is one MAC of "show evpn mac vni V mac M json".
type zebraMAC struct {
	Type           string `json:"type"` // local, remote
	Intf           string `json:"intf"`
	RemoteVTEP     string `json:"remoteVtep"`
	LocalSequence  uint32 `json:"localSequence"`
	RemoteSequence uint32 `json:"remoteSequence"`
	IsDuplicate    bool   `json:"isDuplicate"`
}
