package api

import (
	"context"
	"errors"
	"net/netip"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/evpnd/evpnd/configs"
	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// L3Backend is what the API reads of the layer-3 tables (issue 10): VRFs,
// their L3VNIs, host bindings, router MACs and routes. The daemon
// implements it beside Backend; a Backend that does not makes the L3 calls
// fail with UNIMPLEMENTED. Without VRFs in the config every list is empty.
//
// Each call costs O(result): it reads the requested VRF's (or L2VNI's)
// entries, never walks the whole table for one of them.
type L3Backend interface {
	// L3VNIs returns every VRF's L3VNI, sorted by L3VNI.
	L3VNIs(ctx context.Context) ([]L3VNI, error)
	// L3VNI returns one; ErrNotFound if no VRF has it.
	L3VNI(ctx context.Context, l3vni uint32) (L3VNI, error)
	// ARPCache calls fn for every MAC+IP binding of a routed L2VNI (vni 0:
	// every one), sorted by L2VNI then IP. ErrNotFound if vni is not an
	// L2VNI routed in a VRF.
	ARPCache(ctx context.Context, vni uint32, fn func(ARPEntry) error) error
	// RouterMACs returns the remote router MACs of an L3VNI (0: every
	// one), sorted by L3VNI then VTEP. ErrNotFound for an unknown L3VNI.
	RouterMACs(ctx context.Context, l3vni uint32) ([]RouterMACEntry, error)
	// L3NextHops returns the VTEPs that routes of an L3VNI (0: every one)
	// go through, sorted by L3VNI then VTEP. ErrNotFound for an unknown
	// L3VNI.
	L3NextHops(ctx context.Context, l3vni uint32) ([]L3NextHop, error)
	// VRFRoutes calls fn for every route evpnd installs in the VRF named
	// vrf, sorted by prefix. ErrNotFound for an unknown VRF.
	VRFRoutes(ctx context.Context, vrf string, fn func(VRFRoute) error) error
}

// L3VNI is a tenant VRF's L3VNI.
type L3VNI struct {
	L3VNI          uint32
	VRF            string
	Backend        configs.Backend
	Table          int
	Namespace      string
	VXLAN, Bridge  string
	RouterMAC      evpn.MAC
	LocalVTEP      netip.Addr
	RD             evpn.RD
	ImportRTs      []evpn.RT
	ExportRTs      []evpn.RT
	L2VNIs         []uint32 // sorted
	RemoteVTEPs    int
	NextHops       int // (VTEP, router MAC) pairs the installed routes use
	HostRoutes     int
	PrefixRoutes   int
	DevicesPresent bool
}

// ARPEntry is one MAC+IP binding of a routed L2VNI: a local host (learned
// from ARP/ND on the SVI) or a remote one (its suppression neighbour),
// one per IP (evpn.L3Table.Bindings).
type ARPEntry struct {
	VNI   uint32
	IP    netip.Addr
	MAC   evpn.MAC
	Local bool
	VTEP  netip.Addr // remote only
	Seq   uint32
	VRF   string
	// Inactive: a local binding not advertised for now (its MAC is at
	// another leaf).
	Inactive bool
}

// RouterMACEntry is the router MAC a remote VTEP uses for an L3VNI.
type RouterMACEntry struct {
	L3VNI     uint32
	VRF       string
	VTEP      netip.Addr
	RouterMAC evpn.MAC
	Routes    int
}

// L3NextHop is a remote VTEP that routes of an L3VNI go through.
type L3NextHop struct {
	L3VNI     uint32
	VRF       string
	VTEP      netip.Addr
	RouterMAC evpn.MAC
	Routes    int
}

// VRFRoute is a route evpnd installs in a VRF: a host route (Host) or a
// type-5 prefix, with one next hop per VTEP, sorted.
type VRFRoute struct {
	VRF      string
	L3VNI    uint32
	Prefix   netip.Prefix
	Host     bool
	NextHops []VRFNextHop
}

// VRFNextHop is one path of a VRFRoute.
type VRFNextHop struct {
	VTEP      netip.Addr
	RouterMAC evpn.MAC
}

// ARPChange is a row of the ARP cache added, changed or gone.
type ARPChange struct {
	Entry ARPEntry
}

// VRFRouteChange is a route of a VRF added or changed (ChangeAdded) or
// removed (ChangeRemoved).
type VRFRouteChange struct {
	Route VRFRoute
}

// l3 returns the L3 side of the backend, or UNIMPLEMENTED.
func (s *Server) l3() (L3Backend, error) {
	if b, ok := s.b.(L3Backend); ok {
		return b, nil
	}
	return nil, status.Error(codes.Unimplemented, "this evpnd serves no layer-3 tables")
}

// needL3VNI checks a required L3VNI field.
func needL3VNI(field string, v uint32) error {
	if v == 0 || v > configs.MaxVNI {
		return invalid(field, "%d is not an L3VNI (want 1-%d)", v, configs.MaxVNI)
	}
	return nil
}

// optL3VNI checks an L3VNI field where 0 means every one.
func optL3VNI(field string, v uint32) error {
	if v > configs.MaxVNI {
		return invalid(field, "%d is not an L3VNI (want 1-%d, or 0 for every L3VNI)", v, configs.MaxVNI)
	}
	return nil
}

// l3Error maps a backend error; ErrNotFound becomes NOT_FOUND with
// notFound as its whole message.
func (s *Server) l3Error(method, notFound string, err error) error {
	if errors.Is(err, ErrNotFound) && notFound != "" {
		return status.Error(codes.NotFound, notFound)
	}
	return s.errorStatus(method, "", err, false)
}

func l3vniNotFound(v uint32) string {
	if v == 0 {
		return ""
	}
	return "L3VNI " + u32s(v) + " is not configured (no VRF has it)"
}

func u32s(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// ListL3VNIs implements EvpndService.ListL3VNIs.
func (s *Server) ListL3VNIs(ctx context.Context, _ *evpndv1.ListL3VNIsRequest) (*evpndv1.ListL3VNIsResponse, error) {
	b, err := s.l3()
	if err != nil {
		return nil, err
	}
	vs, err := b.L3VNIs(ctx)
	if err != nil {
		return nil, s.errorStatus("ListL3VNIs", "", err, false)
	}
	out := &evpndv1.ListL3VNIsResponse{L3Vnis: make([]*evpndv1.L3VNI, 0, len(vs))}
	for _, v := range vs {
		out.L3Vnis = append(out.L3Vnis, toL3VNI(v))
	}
	return out, nil
}

// GetL3VNI implements EvpndService.GetL3VNI.
func (s *Server) GetL3VNI(ctx context.Context, req *evpndv1.GetL3VNIRequest) (*evpndv1.GetL3VNIResponse, error) {
	if err := needL3VNI("l3vni", req.GetL3Vni()); err != nil {
		return nil, err
	}
	b, err := s.l3()
	if err != nil {
		return nil, err
	}
	v, err := b.L3VNI(ctx, req.GetL3Vni())
	if err != nil {
		return nil, s.l3Error("GetL3VNI", l3vniNotFound(req.GetL3Vni()), err)
	}
	return &evpndv1.GetL3VNIResponse{L3Vni: toL3VNI(v)}, nil
}

// ListARPCache implements EvpndService.ListARPCache. An empty table sends
// no message.
func (s *Server) ListARPCache(req *evpndv1.ListARPCacheRequest, stream grpc.ServerStreamingServer[evpndv1.ListARPCacheResponse]) error {
	if err := optVNI("vni", req.GetVni()); err != nil {
		return err
	}
	b, err := s.l3()
	if err != nil {
		return err
	}
	p := pager[*evpndv1.ARPEntry]{send: func(rows []*evpndv1.ARPEntry) error {
		return stream.Send(&evpndv1.ListARPCacheResponse{Entries: rows})
	}}
	err = b.ARPCache(stream.Context(), req.GetVni(), func(e ARPEntry) error { return p.add(toARPEntry(e)) })
	if err == nil {
		err = p.flush()
	}
	if err != nil {
		what := ""
		if req.GetVni() != 0 {
			what = "VNI " + u32s(req.GetVni()) + " is not an L2VNI routed in a VRF"
		}
		return s.l3Error("ListARPCache", what, err)
	}
	return nil
}

// ListRouterMACs implements EvpndService.ListRouterMACs.
func (s *Server) ListRouterMACs(ctx context.Context, req *evpndv1.ListRouterMACsRequest) (*evpndv1.ListRouterMACsResponse, error) {
	if err := optL3VNI("l3vni", req.GetL3Vni()); err != nil {
		return nil, err
	}
	b, err := s.l3()
	if err != nil {
		return nil, err
	}
	rs, err := b.RouterMACs(ctx, req.GetL3Vni())
	if err != nil {
		return nil, s.l3Error("ListRouterMACs", l3vniNotFound(req.GetL3Vni()), err)
	}
	out := &evpndv1.ListRouterMACsResponse{RouterMacs: make([]*evpndv1.RouterMACEntry, 0, len(rs))}
	for _, r := range rs {
		out.RouterMacs = append(out.RouterMacs, &evpndv1.RouterMACEntry{
			L3Vni: r.L3VNI, Vrf: r.VRF, Vtep: addr(r.VTEP), RouterMac: r.RouterMAC.String(), Routes: count(r.Routes),
		})
	}
	return out, nil
}

// ListL3NextHops implements EvpndService.ListL3NextHops.
func (s *Server) ListL3NextHops(ctx context.Context, req *evpndv1.ListL3NextHopsRequest) (*evpndv1.ListL3NextHopsResponse, error) {
	if err := optL3VNI("l3vni", req.GetL3Vni()); err != nil {
		return nil, err
	}
	b, err := s.l3()
	if err != nil {
		return nil, err
	}
	hs, err := b.L3NextHops(ctx, req.GetL3Vni())
	if err != nil {
		return nil, s.l3Error("ListL3NextHops", l3vniNotFound(req.GetL3Vni()), err)
	}
	out := &evpndv1.ListL3NextHopsResponse{NextHops: make([]*evpndv1.L3NextHop, 0, len(hs))}
	for _, h := range hs {
		out.NextHops = append(out.NextHops, &evpndv1.L3NextHop{
			L3Vni: h.L3VNI, Vrf: h.VRF, Vtep: addr(h.VTEP), RouterMac: h.RouterMAC.String(), Routes: count(h.Routes),
		})
	}
	return out, nil
}

// ListVRFRoutes implements EvpndService.ListVRFRoutes. An empty table
// sends no message.
func (s *Server) ListVRFRoutes(req *evpndv1.ListVRFRoutesRequest, stream grpc.ServerStreamingServer[evpndv1.ListVRFRoutesResponse]) error {
	if req.GetVrf() == "" {
		return invalid("vrf", "required: the name of a VRF")
	}
	b, err := s.l3()
	if err != nil {
		return err
	}
	p := pager[*evpndv1.VRFRoute]{send: func(rows []*evpndv1.VRFRoute) error {
		return stream.Send(&evpndv1.ListVRFRoutesResponse{Routes: rows})
	}}
	err = b.VRFRoutes(stream.Context(), req.GetVrf(), func(r VRFRoute) error { return p.add(toVRFRoute(r)) })
	if err == nil {
		err = p.flush()
	}
	if err != nil {
		return s.l3Error("ListVRFRoutes", "VRF "+req.GetVrf()+" is not configured", err)
	}
	return nil
}

// ---- conversions ----

func macText(m evpn.MAC) string {
	if m == (evpn.MAC{}) {
		return ""
	}
	return m.String()
}

func toL3VNI(v L3VNI) *evpndv1.L3VNI {
	return &evpndv1.L3VNI{
		L3Vni:          v.L3VNI,
		Vrf:            v.VRF,
		Backend:        string(v.Backend),
		Table:          count(v.Table),
		Namespace:      v.Namespace,
		VxlanDevice:    v.VXLAN,
		Bridge:         v.Bridge,
		RouterMac:      macText(v.RouterMAC),
		LocalVtep:      addr(v.LocalVTEP),
		Rd:             v.RD.String(),
		ImportRts:      rts(v.ImportRTs),
		ExportRts:      rts(v.ExportRTs),
		L2Vnis:         v.L2VNIs,
		RemoteVteps:    count(v.RemoteVTEPs),
		HostRoutes:     count(v.HostRoutes),
		PrefixRoutes:   count(v.PrefixRoutes),
		DevicesPresent: v.DevicesPresent,
		NextHops:       count(v.NextHops),
	}
}

func toARPEntry(e ARPEntry) *evpndv1.ARPEntry {
	st := evpndv1.ARPState_ARP_STATE_ACTIVE
	if e.Inactive {
		st = evpndv1.ARPState_ARP_STATE_INACTIVE
	}
	return &evpndv1.ARPEntry{
		Vni: e.VNI, Ip: addr(e.IP), Mac: e.MAC.String(), Local: e.Local, Vtep: addr(e.VTEP), Seq: e.Seq, Vrf: e.VRF, State: st,
	}
}

func toVRFRoute(r VRFRoute) *evpndv1.VRFRoute {
	out := &evpndv1.VRFRoute{Vrf: r.VRF, L3Vni: r.L3VNI, Prefix: r.Prefix.String(), Kind: evpndv1.VRFRouteKind_VRF_ROUTE_KIND_PREFIX}
	if r.Host {
		out.Kind = evpndv1.VRFRouteKind_VRF_ROUTE_KIND_HOST
	}
	for _, nh := range r.NextHops {
		out.NextHops = append(out.NextHops, &evpndv1.VRFNextHop{Vtep: addr(nh.VTEP), RouterMac: macText(nh.RouterMAC)})
	}
	return out
}
