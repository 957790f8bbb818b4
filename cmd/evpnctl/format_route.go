package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// Layout of the route table: a path takes a line with its status and
// NLRI, a line with its next hop and attributes, indented, and a line with
// its communities (cf. vtysh's "show bgp l2vpn evpn").
const (
	routeColStatus  = 4
	routeIndent     = 10
	routeColNextHop = 15
	routeColPeer    = 15
	routeColVNI     = 8
	routeColLocPrf  = 6
)

// routeInfo is what the route table needs beyond the paths: the local
// router ID and AS, and every neighbour's AS to tell iBGP paths.
type routeInfo struct {
	RouterID string
	ASN      uint32
	PeerAS   map[string]uint32
}

// newRouteInfo builds a routeInfo from GetStatus and ListPeers.
func newRouteInfo(st *evpndv1.GetStatusResponse, peers *evpndv1.ListPeersResponse) routeInfo {
	ri := routeInfo{RouterID: st.GetRouterId(), ASN: st.GetAsn(), PeerAS: map[string]uint32{}}
	for _, p := range peers.GetPeers() {
		ri.PeerAS[p.GetAddress()] = p.GetAsn()
	}
	return ri
}

// routeTable prints the BGP table as its pages arrive, grouped by RD.
type routeTable struct {
	w                  *bufio.Writer
	r                  row
	info               routeInfo
	lastRD, lastPrefix string
	prefixes, paths    int
}

func newRouteTable(w io.Writer, info routeInfo) *routeTable {
	return &routeTable{w: bufio.NewWriterSize(w, 64<<10), info: info}
}

func (t *routeTable) header() {
	fmt.Fprintf(t.w, "BGP l2vpn-evpn table, local router ID %s, local AS %d\n", dash(t.info.RouterID), t.info.ASN)
	io.WriteString(t.w, "Status: * valid, > best, i internal (iBGP), L local (originated here), u used by evpnd, S stale\n")
	io.WriteString(t.w, "NLRI:   [2]:[EthTag]:[MAClen]:[MAC]:[IPlen]:[IP]  [3]:[EthTag]:[IPlen]:[OrigIP]  [5]:[EthTag]:[IPlen]:[IP]\n")
	io.WriteString(t.w, "Origin: i IGP, e EGP, ? incomplete\n\n")
	t.r.col("", routeColStatus)
	t.r.str("Network")
	t.r.writeTo(t.w)
	t.r.col("", routeIndent-1)
	t.r.col("Next Hop", routeColNextHop)
	t.r.col("Peer", routeColPeer)
	t.r.col("VNI", routeColVNI)
	t.r.rcol("LocPrf", routeColLocPrf)
	t.r.str("Path")
	t.r.writeTo(t.w)
}

// internal tells an iBGP path: its neighbour is in the local AS.
func (t *routeTable) internal(rt *evpndv1.Route) bool {
	if rt.GetLocal() || rt.GetPeer() == "" {
		return false
	}
	if as, ok := t.info.PeerAS[rt.GetPeer()]; ok {
		return as == t.info.ASN
	}
	return len(rt.GetAsPath()) == 0
}

func (t *routeTable) status(rt *evpndv1.Route) string {
	s := []byte("*   ")
	if rt.GetStale() {
		s[0] = 'S'
	}
	if rt.GetBest() {
		s[1] = '>'
	}
	switch {
	case rt.GetLocal():
		s[2] = 'L'
	case t.internal(rt):
		s[2] = 'i'
	}
	if rt.GetSelected() {
		s[3] = 'u'
	}
	return string(s)
}

// page prints one page of paths and flushes them.
func (t *routeTable) page(routes []*evpndv1.Route) error {
	for _, rt := range routes {
		if t.paths == 0 {
			t.header()
		}
		t.paths++
		if rt.GetRd() != t.lastRD || t.paths == 1 {
			fmt.Fprintf(t.w, "Route Distinguisher: %s\n", dash(rt.GetRd()))
			t.lastRD, t.lastPrefix = rt.GetRd(), ""
		}
		r := &t.r
		if rt.GetPrefix() != t.lastPrefix || t.lastPrefix == "" {
			// The first path of an NLRI: the NLRI on its own line.
			t.prefixes++
			t.lastPrefix = rt.GetPrefix()
			r.col(t.status(rt), routeColStatus)
			r.str(dash(rt.GetPrefix()))
			if err := r.writeTo(t.w); err != nil {
				return err
			}
			r.col("", routeIndent-1)
		} else {
			r.col(t.status(rt), routeIndent-1)
		}
		r.col(dash(rt.GetNextHop()), routeColNextHop)
		peer := rt.GetPeer()
		if rt.GetLocal() {
			peer = "local"
		}
		r.col(dash(peer), routeColPeer)
		vni := "-"
		if rt.GetVni() != 0 {
			vni = u32(rt.GetVni())
		}
		r.col(vni, routeColVNI)
		lp := ""
		if rt.GetLocalPref() != 0 {
			lp = u32(rt.GetLocalPref())
		}
		r.rcol(lp, routeColLocPrf)
		for _, as := range rt.GetAsPath() {
			r.b = strconv.AppendUint(r.b, uint64(as), 10)
			r.str(" ")
		}
		r.str(rt.GetOrigin())
		if err := r.writeTo(t.w); err != nil {
			return err
		}
		if t.communities(rt) {
			if err := r.writeTo(t.w); err != nil {
				return err
			}
		}
	}
	return t.w.Flush()
}

// communities fills t.r with the path's communities line, if it has any.
func (t *routeTable) communities(rt *evpndv1.Route) bool {
	r := &t.r
	r.col("", routeIndent-1)
	n := len(r.b)
	for _, c := range rt.GetRouteTargets() {
		r.str("RT:")
		r.str(c)
		r.str(" ")
	}
	for _, c := range rt.GetExtendedCommunities() {
		r.str(c)
		r.str(" ")
	}
	if rt.GetPmsiTunnelType() != "" {
		r.str("PMSI:")
		r.str(rt.GetPmsiTunnelType())
		r.str(" label ")
		r.b = strconv.AppendUint(r.b, uint64(rt.GetPmsiLabel()), 10)
	}
	if len(r.b) == n {
		r.b = r.b[:0]
		return false
	}
	return true
}

// finish prints the totals.
func (t *routeTable) finish() error {
	if t.paths == 0 {
		io.WriteString(t.w, "No routes.\n")
		return t.w.Flush()
	}
	fmt.Fprintf(t.w, "\nDisplayed %s (%s)\n", plural(t.prefixes, "prefix", "prefixes"), plural(t.paths, "path", "paths"))
	return t.w.Flush()
}
