package speaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/evpnd/evpnd/speaker/evpn"
)

const (
	bgpPort          = 179
	exportPolicyName = "evpnd-export"
	maxRestartTime   = 4095 * time.Second // 12 bits (RFC 4724 §3)

	// selectionDeferral bounds how long a restarting speaker
	// (Config.Restarting) holds its updates back from a peer that came up
	// while some other configured neighbour has not sent its End-of-RIB
	// (RFC 4724 §4.1). GoBGP v4 counts a neighbour that is down as not
	// done, and defaults to 360 s: a leaf restarting while one spine is
	// down would advertise nothing to the other for 6 minutes. GoBGP v3
	// ignored down neighbours; this keeps the wait short.
	selectionDeferral = 5 * time.Second

	// addPathBatch is how many paths one AddPath or DeletePath call
	// carries: GoBGP handles a call in its main loop, which handles
	// nothing else meanwhile.
	addPathBatch = 512
)

var errStopped = errors.New("BGP speaker is stopped")

// Server is an embedded GoBGP instance speaking l2vpn-evpn.
type Server struct {
	cfg Config
	log *slog.Logger
	bgp *server.BgpServer

	life     context.Context // cancelled by Stop: ends every watch
	stopLife context.CancelFunc
	watches  sync.WaitGroup

	// skipExportPolicy leaves GoBGP's next-hop handling alone (tests only:
	// it shows what the export policy is for).
	skipExportPolicy bool

	mu        sync.Mutex
	started   bool
	stopped   bool
	neighbors map[netip.Addr]Neighbor
	dynamic   []DynamicNeighbor

	sessions  *sessionLog   // PeerStatus.LastError, from GoBGP's logs
	listing   chan struct{} // one ListPaths at a time
	malformed malformedLog  // routes the codec rejected (ErrMalformed)

	stuckResets atomic.Uint64 // sessions the OpenConfirm watchdog reset
	ocPolls     atomic.Uint64 // the OpenConfirm watchdog's polls
	ocQueries   atomic.Uint64 // its ListPeer calls
	// reenable holds the neighbours (by GoBGP key) the OpenConfirm
	// watchdog set down and will set up again, unless SetNeighborEnabled
	// decides first. Held while the watchdog calls EnablePeer.
	reenableMu sync.Mutex
	reenable   map[string]int // polls waited for GoBGP to take the down

	recMu  sync.Mutex // never held while calling GoBGP
	apiErr error      // GoBGP's gRPC API could not listen
}

// New validates cfg and creates the server. Nothing runs until Start.
func New(cfg Config) (*Server, error) {
	if !cfg.RouterID.Is4() {
		return nil, fmt.Errorf("speaker: router-id %v must be an IPv4 address", cfg.RouterID)
	}
	if cfg.ASN == 0 {
		return nil, errors.New("speaker: the local ASN must not be 0")
	}
	if cfg.ListenPort < -1 || cfg.ListenPort > 65535 {
		return nil, fmt.Errorf("speaker: listen port %d: want 1-65535, 0 for 179 or -1 not to listen", cfg.ListenPort)
	}
	if cfg.ListenPort == 0 {
		cfg.ListenPort = bgpPort
	}
	if cfg.ConnectRetry < 0 || cfg.HoldTime < 0 || (cfg.HoldTime > 0 && cfg.HoldTime < 3*time.Second) {
		return nil, fmt.Errorf("speaker: timers: connect retry %v, hold time %v: want positive values, a hold time of at least 3 s (RFC 4271 §4.2)", cfg.ConnectRetry, cfg.HoldTime)
	}
	if cfg.RestartTime < 0 || cfg.RestartTime > maxRestartTime {
		return nil, fmt.Errorf("speaker: graceful restart time %v: at most %v", cfg.RestartTime, maxRestartTime)
	}
	if !cfg.ClusterID.IsValid() {
		cfg.ClusterID = cfg.RouterID
	}
	if !cfg.ClusterID.Is4() {
		return nil, fmt.Errorf("speaker: cluster-id %v must be an IPv4 address", cfg.ClusterID)
	}
	if cfg.GoBGPAPIListen != "" {
		if err := checkAPIListen(cfg.GoBGPAPIListen); err != nil {
			return nil, err
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	vteps := make([]netip.Addr, 0, len(cfg.LocalVTEPs))
	for _, v := range cfg.LocalVTEPs {
		vteps = append(vteps, v.Unmap())
	}
	cfg.LocalVTEPs = vteps
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		neighbors: make(map[netip.Addr]Neighbor),
		sessions:  newSessionLog(),
		listing:   make(chan struct{}, 1),
		reenable:  make(map[string]int),
	}
	s.life, s.stopLife = context.WithCancel(context.Background())
	return s, nil
}

// Start runs the BGP instance and installs evpnd's export policy, and
// serves GoBGP's API if Config.GoBGPAPIListen asks for it.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errStopped
	}
	if s.started {
		return errors.New("speaker: already started")
	}
	// The GoBGP instance is made here rather than in New: with
	// GoBGPAPIListen it starts listening as soon as it exists.
	logger := newGobgpLogger(s.cfg.Logger.With("component", "gobgp"), s.sessions, s.recordAPIFailure)
	level := new(slog.LevelVar)
	level.Set(slog.LevelDebug) // the handler decides (see gobgpHandler.Enabled)
	opts := []server.ServerOption{server.LoggerOption(logger, level)}
	if s.cfg.GoBGPAPIListen != "" {
		// GoBGP listens in a goroutine of its own and cannot return an
		// error: try the address first so that the common failure (port
		// in use) is Start's error.
		l, err := net.Listen("tcp", s.cfg.GoBGPAPIListen)
		if err != nil {
			return fmt.Errorf("speaker: GoBGP API (api.gobgp-listen): %w", err)
		}
		_ = l.Close()
		opts = append(opts, server.GrpcListenAddress(s.cfg.GoBGPAPIListen))
	}
	s.bgp = server.NewBgpServer(opts...)
	// GoBGP v4's Serve returns after StopBgp.
	go s.bgp.Serve()
	if s.cfg.GoBGPAPIListen != "" {
		if err := s.waitAPI(ctx); err != nil {
			s.bgp.Stop()
			return err
		}
	}
	g := &api.Global{
		Asn:             s.cfg.ASN,
		RouterId:        s.cfg.RouterID.String(),
		ListenPort:      s.cfg.ListenPort,
		ListenAddresses: s.cfg.ListenAddresses,
	}
	if err := s.bgp.StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		s.bgp.Stop() // the API, if any
		return fmt.Errorf("speaker: start BGP (AS %d, router-id %s, port %d): %w", s.cfg.ASN, s.cfg.RouterID, s.cfg.ListenPort, err)
	}
	if !s.skipExportPolicy {
		if err := s.installExportPolicy(ctx); err != nil {
			s.bgp.Stop() // StopBgp, and the API if any
			return err
		}
	}
	s.started = true
	s.watches.Add(1)
	go func() {
		defer s.watches.Done()
		s.watchOpenConfirm(s.life)
	}()
	s.log.Info("BGP speaker started", "asn", s.cfg.ASN, "router_id", s.cfg.RouterID,
		"listen_port", s.cfg.ListenPort, "graceful_restart", s.cfg.GracefulRestart, "restarting", s.cfg.Restarting,
		"gobgp_api", s.cfg.GoBGPAPIListen)
	return nil
}

// installExportPolicy keeps EVPN next hops unchanged towards every peer.
// GoBGP rewrites the next hop of routes it did not originate to its own
// session address on eBGP (internal/pkg/table/path.go UpdatePathAttrs);
// for EVPN the next hop is the VTEP and must survive a spine or an eBGP
// hop. On iBGP (reflection) and for locally originated routes with an
// explicit next hop the action changes nothing. The condition on the
// address family leaves room for an ipv4-unicast underlay with next-hop
// self.
func (s *Server) installExportPolicy(ctx context.Context) error {
	p := &api.Policy{
		Name: exportPolicyName,
		Statements: []*api.Statement{{
			Name:       exportPolicyName + "-evpn-nexthop-unchanged",
			Conditions: &api.Conditions{AfiSafiIn: []*api.Family{FamilyL2VPNEVPN.api()}},
			Actions: &api.Actions{
				RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT,
				Nexthop:     &api.NexthopAction{Unchanged: true},
			},
		}},
	}
	if err := s.bgp.AddPolicy(ctx, &api.AddPolicyRequest{Policy: p}); err != nil {
		return fmt.Errorf("speaker: add export policy: %w", err)
	}
	a := &api.PolicyAssignment{
		Name:          "global",
		Direction:     api.PolicyDirection_POLICY_DIRECTION_EXPORT,
		Policies:      []*api.Policy{{Name: exportPolicyName}},
		DefaultAction: api.RouteAction_ROUTE_ACTION_ACCEPT,
	}
	if err := s.bgp.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: a}); err != nil {
		return fmt.Errorf("speaker: assign export policy: %w", err)
	}
	return nil
}

func (s *Server) usable() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errStopped
	}
	if !s.started {
		return errors.New("speaker: not started: call Start first")
	}
	return nil
}

func (f Family) api() *api.Family {
	switch f {
	case FamilyIPv4Unicast:
		return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	default:
		return &api.Family{Afi: api.Family_AFI_L2VPN, Safi: api.Family_SAFI_EVPN}
	}
}

func (s *Server) afiSafis(fams []Family) ([]*api.AfiSafi, error) {
	if len(fams) == 0 {
		fams = []Family{FamilyL2VPNEVPN}
	}
	out := make([]*api.AfiSafi, 0, len(fams))
	seen := map[Family]bool{}
	for _, f := range fams {
		if f != FamilyL2VPNEVPN && f != FamilyIPv4Unicast {
			return nil, fmt.Errorf("address family %d: want l2vpn-evpn or ipv4-unicast", f)
		}
		if seen[f] {
			continue
		}
		seen[f] = true
		out = append(out, &api.AfiSafi{
			Config: &api.AfiSafiConfig{Family: f.api(), Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{
				Config: &api.MpGracefulRestartConfig{Enabled: s.cfg.GracefulRestart},
			},
		})
	}
	return out, nil
}

func (s *Server) gracefulRestart() *api.GracefulRestart {
	if !s.cfg.GracefulRestart {
		return nil
	}
	s.mu.Lock()
	restarting := s.cfg.Restarting
	s.mu.Unlock()
	return &api.GracefulRestart{
		Enabled:         true,
		RestartTime:     uint32(s.cfg.RestartTime / time.Second),
		LocalRestarting: restarting,
		DeferralTime:    uint32(selectionDeferral / time.Second),
	}
}

func (s *Server) timers() *api.Timers {
	if s.cfg.ConnectRetry == 0 && s.cfg.HoldTime == 0 {
		return nil
	}
	secs := func(d time.Duration) uint64 { return uint64((d + time.Second - 1) / time.Second) }
	c := &api.TimersConfig{ConnectRetry: secs(s.cfg.ConnectRetry), HoldTime: secs(s.cfg.HoldTime)}
	c.KeepaliveInterval = c.HoldTime / 3
	return &api.Timers{Config: c}
}

func (s *Server) routeReflector(client bool, peerASN uint32) (*api.RouteReflector, error) {
	if !client {
		return nil, nil
	}
	if !s.cfg.RouteReflector {
		return nil, errors.New("a route-reflector client needs Config.RouteReflector")
	}
	if peerASN != s.cfg.ASN {
		return nil, fmt.Errorf("a route-reflector client must be iBGP: peer AS %d, local AS %d", peerASN, s.cfg.ASN)
	}
	return &api.RouteReflector{RouteReflectorClient: true, RouteReflectorClusterId: s.cfg.ClusterID.String()}, nil
}

// AddNeighbor configures a peer; GoBGP then dials it (unless Passive) and
// accepts its connections.
func (s *Server) AddNeighbor(ctx context.Context, n Neighbor) error {
	if err := s.usable(); err != nil {
		return err
	}
	if !n.Address.IsValid() || n.ASN == 0 {
		return fmt.Errorf("speaker: add neighbor %v: want an address and a non-zero AS", n.Address)
	}
	n.Address = n.Address.Unmap()
	if n.Port == 0 {
		n.Port = bgpPort
	}
	fams, err := s.afiSafis(n.Families)
	if err != nil {
		return fmt.Errorf("speaker: add neighbor %s: %w", n.Address, err)
	}
	rr, err := s.routeReflector(n.RRClient, n.ASN)
	if err != nil {
		return fmt.Errorf("speaker: add neighbor %s: %w", n.Address, err)
	}
	t := &api.Transport{RemotePort: uint32(n.Port), PassiveMode: n.Passive}
	if n.LocalAddress.IsValid() {
		t.LocalAddress = n.LocalAddress.Unmap().String()
	}
	p := &api.Peer{
		Conf:            &api.PeerConf{NeighborAddress: n.Address.String(), PeerAsn: n.ASN, Description: n.Description},
		Transport:       t,
		AfiSafis:        fams,
		GracefulRestart: s.gracefulRestart(),
		RouteReflector:  rr,
		Timers:          s.timers(),
	}
	if n.EBGPMultihop > 0 {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(n.EBGPMultihop)}
	}
	if err := s.bgp.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
		return fmt.Errorf("speaker: add neighbor %s AS %d: %w", n.Address, n.ASN, err)
	}
	s.mu.Lock()
	s.neighbors[n.Address] = n
	s.mu.Unlock()
	s.log.Info("BGP neighbor added", "peer", n.Address, "peer_asn", n.ASN, "rr_client", n.RRClient)
	return nil
}

func dynamicGroupName(p netip.Prefix) string {
	return "evpnd-dynamic-" + strings.NewReplacer(".", "-", ":", "-", "/", "_").Replace(p.String())
}

// AddDynamicNeighbor accepts sessions from any address in d.Prefix, through
// a peer group created for it.
func (s *Server) AddDynamicNeighbor(ctx context.Context, d DynamicNeighbor) error {
	if err := s.usable(); err != nil {
		return err
	}
	if !d.Prefix.IsValid() || d.ASN == 0 {
		return fmt.Errorf("speaker: add dynamic neighbor %v: want a prefix and a non-zero AS", d.Prefix)
	}
	if s.cfg.ListenPort < 0 {
		return fmt.Errorf("speaker: add dynamic neighbor %s: the speaker does not listen (ListenPort -1), so no peer can reach it", d.Prefix)
	}
	d.Prefix = d.Prefix.Masked()
	fams, err := s.afiSafis(d.Families)
	if err != nil {
		return fmt.Errorf("speaker: add dynamic neighbor %s: %w", d.Prefix, err)
	}
	rr, err := s.routeReflector(d.RRClient, d.ASN)
	if err != nil {
		return fmt.Errorf("speaker: add dynamic neighbor %s: %w", d.Prefix, err)
	}
	name := dynamicGroupName(d.Prefix)
	g := &api.PeerGroup{
		Conf:            &api.PeerGroupConf{PeerGroupName: name, PeerAsn: d.ASN},
		AfiSafis:        fams,
		GracefulRestart: s.gracefulRestart(),
		RouteReflector:  rr,
		Timers:          s.timers(),
	}
	if err := s.bgp.AddPeerGroup(ctx, &api.AddPeerGroupRequest{PeerGroup: g}); err != nil {
		return fmt.Errorf("speaker: add peer group for %s: %w", d.Prefix, err)
	}
	dn := &api.DynamicNeighbor{Prefix: d.Prefix.String(), PeerGroup: name}
	if err := s.bgp.AddDynamicNeighbor(ctx, &api.AddDynamicNeighborRequest{DynamicNeighbor: dn}); err != nil {
		return fmt.Errorf("speaker: add dynamic neighbor %s: %w", d.Prefix, err)
	}
	s.mu.Lock()
	s.dynamic = append(s.dynamic, d)
	s.mu.Unlock()
	s.log.Info("BGP dynamic neighbors added", "prefix", d.Prefix, "peer_asn", d.ASN, "rr_client", d.RRClient)
	return nil
}

// Announce advertises routes, or replaces the advertisement with the same
// key. Routes go to GoBGP in batches, one call per batch; for routes with
// the same key the last one wins. A failed route does not stop the others;
// the errors are joined, a *RouteError for each route GoBGP refused.
func (s *Server) Announce(ctx context.Context, routes []*evpn.Route) error {
	// When a batch fails GoBGP has added the others but says neither which
	// nor how many failed: inBatches adds them again one by one to know
	// (adding a path GoBGP has again changes nothing).
	return s.inBatches(ctx, routes, "announce", false, func(paths []*apiutil.Path) error {
		_, err := s.bgp.AddPath(apiutil.AddPathRequest{Paths: paths})
		return err
	})
}

// Withdraw withdraws our routes with the keys of routes (other fields are
// ignored). Withdrawing a route not announced is not an error. Paths are
// deleted by value, in batches: GoBGP's deletion by UUID scans the whole
// RIB.
func (s *Server) Withdraw(ctx context.Context, routes []*evpn.Route) error {
	return s.inBatches(ctx, routes, "withdraw", true, func(paths []*apiutil.Path) error {
		// paths is never empty: GoBGP refuses an empty list, and
		// DeleteAll (not set) would delete every local path.
		return s.bgp.DeletePath(apiutil.DeletePathRequest{Paths: paths})
	})
}

// inBatches converts routes to paths (withdrawals if withdraw) and hands
// them to send addPathBatch at a time, never an empty batch. When send
// refuses a batch, each of its paths is sent again alone to find the
// routes at fault: a *RouteError (with op) for each. Errors are joined; a
// cancelled ctx stops before the next route.
func (s *Server) inBatches(ctx context.Context, routes []*evpn.Route, op string, withdraw bool, send func([]*apiutil.Path) error) error {
	if err := s.usable(); err != nil {
		return err
	}
	var errs []error
	paths := make([]*apiutil.Path, 0, min(len(routes), addPathBatch))
	batch := make([]*evpn.Route, 0, cap(paths))
	flush := func() {
		if len(paths) == 0 {
			return
		}
		if err := send(paths); err != nil {
			for i, p := range paths {
				if err := send([]*apiutil.Path{p}); err != nil {
					errs = append(errs, &RouteError{Op: op, Route: batch[i], Err: err})
				}
			}
		}
		paths, batch = paths[:0], batch[:0]
	}
	for _, r := range routes {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if r == nil {
			errs = append(errs, errors.New("nil route"))
			continue
		}
		p, err := ToPath(r, withdraw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		paths, batch = append(paths, p), append(batch, r)
		if len(paths) == addPathBatch {
			flush()
		}
	}
	flush()
	return errors.Join(errs...)
}

// MalformedRoutes is how many routes from peers GoBGP accepted but the
// codec rejected as malformed (ErrMalformed) and treated as withdrawn.
func (s *Server) MalformedRoutes() uint64 { return s.malformed.n.Load() }

// Peers reports every configured and dynamic neighbour, without
// Advertised (see PeersAdvertised). It is cheap: GoBGP copies each
// neighbour's state and counters.
func (s *Server) Peers(ctx context.Context) ([]PeerStatus, error) {
	ps, _, err := s.peers(ctx)
	return ps, err
}

// PeersAdvertised is Peers with Advertised counted for every established
// neighbour: the l2vpn-evpn paths GoBGP advertises to it (FRR's PfxSnt).
//
// GoBGP keeps no Adj-RIB-Out (v3; not re-measured on v4). The count is
// GoBGP's Adj-RIB-Out table info, which runs the export rules (split horizon, route reflection,
// policy) over every best path of the table, once per peer, inside GoBGP's
// event loop, which handles no UPDATE meanwhile: about 1 s per peer at
// 100k paths on 2 CPUs, against well under a millisecond for Peers. Each
// peer is a separate call, so GoBGP's loop runs between peers, and ctx is
// checked between them. ListPeer's own Advertised counter
// (EnableAdvertised) is not used: it costs about half as much but counts
// the End-of-RIB marker as a path when graceful restart is negotiated.
func (s *Server) PeersAdvertised(ctx context.Context) ([]PeerStatus, error) {
	ps, keys, err := s.peers(ctx)
	if err != nil {
		return nil, err
	}
	family := FamilyL2VPNEVPN.api()
	for i := range ps {
		if ps[i].State != PeerStateEstablished {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("speaker: count paths advertised to %s: %w", ps[i].Address, err)
		}
		t, err := s.bgp.GetTable(ctx, &api.GetTableRequest{TableType: api.TableType_TABLE_TYPE_ADJ_OUT, Name: keys[i], Family: family})
		if err != nil {
			if !s.hasPeer(ctx, keys[i]) {
				continue // it went away since the listing (a dynamic peer's session ended)
			}
			return nil, fmt.Errorf("speaker: count paths advertised to %s: %w", ps[i].Address, err)
		}
		ps[i].Advertised = t.GetNumPath()
	}
	return ps, nil
}

// hasPeer reports whether GoBGP still has the neighbour it knows by key.
func (s *Server) hasPeer(ctx context.Context, key string) bool {
	found := false
	_ = s.bgp.ListPeer(ctx, &api.ListPeerRequest{Address: key}, func(*api.Peer) { found = true })
	return found
}

// peers lists the neighbours, sorted by address, each with the key GoBGP
// knows it by (its address as GoBGP spells it), for calls about one peer.
func (s *Server) peers(ctx context.Context) ([]PeerStatus, []string, error) {
	if err := s.usable(); err != nil {
		return nil, nil, err
	}
	type entry struct {
		st  PeerStatus
		key string
	}
	var out []entry
	now := time.Now()
	err := s.bgp.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		addr := p.GetState().GetNeighborAddress() // set for dynamic peers too
		if addr == "" {
			addr = p.GetConf().GetNeighborAddress()
		}
		msgs := p.GetState().GetMessages()
		st := PeerStatus{
			Address:          parseAddr(addr),
			ASN:              p.GetState().GetPeerAsn(),
			Description:      p.GetConf().GetDescription(),
			RouterID:         parseAddr(p.GetState().GetRouterId()),
			State:            PeerState(p.GetState().GetSessionState()),
			MessagesReceived: msgs.GetReceived().GetTotal(),
			MessagesSent:     msgs.GetSent().GetTotal(),
		}
		if st.ASN == 0 {
			st.ASN = p.GetConf().GetPeerAsn()
		}
		if st.State == PeerStateEstablished {
			if up := p.GetTimers().GetState().GetUptime(); up != nil {
				st.Uptime = now.Sub(up.AsTime())
			}
		}
		st.PeerRestarting = p.GetGracefulRestart().GetPeerRestarting()
		// A dynamic peer has no configured address, only a state one;
		// GoBGP v4 spells the missing one "invalid IP".
		conf := p.GetConf().GetNeighborAddress()
		st.Dynamic = (conf == "" || !parseAddr(conf).IsValid()) && p.GetConf().GetNeighborInterface() == ""
		st.RRClient = p.GetRouteReflector().GetRouteReflectorClient()
		for _, a := range p.GetAfiSafis() {
			f := a.GetConfig().GetFamily()
			if f.GetAfi() != api.Family_AFI_L2VPN || f.GetSafi() != api.Family_SAFI_EVPN {
				continue
			}
			st.Received, st.Accepted = a.GetState().GetReceived(), a.GetState().GetAccepted()
			gr := a.GetMpGracefulRestart().GetState()
			st.EORReceived = gr.GetEndOfRibReceived()
			st.GracefulRestart = gr.GetEnabled() && gr.GetReceived() && gr.GetAdvertised()
		}
		out = append(out, entry{st, addr})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("speaker: list peers: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].st.Address.Less(out[j].st.Address) })
	ps, keys := make([]PeerStatus, len(out)), make([]string, len(out))
	for i, e := range out {
		ps[i], keys[i] = e.st, e.key
		ps[i].LastError = s.sessions.lastError(e.st.Address)
	}
	return ps, keys, nil
}

// Stop ends every watch and the BGP instance.
//
// graceful=false sends a Cease NOTIFICATION on every session; peers flush
// our routes at once. graceful=true drops the sessions without one (on
// Linux, by shutting their sockets down, which the peer sees as the TCP
// connection closing, exactly as when the process dies): peers that
// negotiated graceful restart keep our routes, marked stale, for our
// restart time (RFC 4724 §4.2). The Server cannot be started again.
func (s *Server) Stop(ctx context.Context, graceful bool) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	started := s.started
	s.mu.Unlock()

	s.stopLife()
	done := make(chan struct{})
	go func() { s.watches.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("speaker: stop: watch callbacks still running: %w", ctx.Err())
	}
	if !started {
		return nil
	}
	var errs []error
	if graceful {
		n, err := dropSessions(s.isSession)
		if err != nil {
			errs = append(errs, fmt.Errorf("speaker: graceful stop: %w; peers will flush our routes", err))
		}
		s.log.Info("BGP sessions dropped without NOTIFICATION for graceful restart", "sessions", n)
	}
	if err := s.bgp.StopBgp(ctx, &api.StopBgpRequest{AllowGracefulRestart: graceful}); err != nil {
		errs = append(errs, fmt.Errorf("speaker: stop BGP: %w", err))
	}
	if s.cfg.GoBGPAPIListen != "" {
		if err := s.stopAPI(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.log.Info("BGP speaker stopped", "graceful", graceful)
	return errors.Join(errs...)
}

// isSession reports whether a TCP connection of this process is one of our
// BGP sessions: to a neighbour's port, or from a neighbour (configured or
// dynamic) to our listening port.
func (s *Server) isSession(local, remote netip.AddrPort) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ra := remote.Addr().Unmap()
	listening := s.cfg.ListenPort > 0 && local.Port() == uint16(s.cfg.ListenPort)
	if n, ok := s.neighbors[ra]; ok && (remote.Port() == n.Port || listening) {
		return true
	}
	if listening {
		for _, d := range s.dynamic {
			if d.Prefix.Contains(ra) {
				return true
			}
		}
	}
	return false
}

func parseAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
