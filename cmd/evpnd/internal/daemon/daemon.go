package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/metrics"
	"github.com/evpnd/evpnd/cmd/evpnd/internal/trace"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// Options are the daemon's settings that do not come from the config file.
type Options struct {
	Logger  *slog.Logger
	Version string
	// Wait, if positive, makes Run wait up to this long for the configured
	// local addresses to appear (containerlab adds them after starting a
	// node's command). Access interfaces are never waited for: an absent
	// one is enslaved when it appears.
	Wait time.Duration
	// CeaseOnExit makes a shutdown send BGP Cease to every peer. By default
	// evpnd exits without it, so graceful-restart peers keep its routes.
	CeaseOnExit bool
	// Restarting overrides the detection of a restart (a leaf whose VXLAN
	// devices hold evpnd's extern_learn FDB entries or owner alias is
	// restarting: restartMark), which sets
	// the BGP graceful-restart Restart State bit.
	Restarting *bool
	// ConfigPath names the config file, for status and reload messages.
	ConfigPath string
	// Load re-reads the config file for a reload (SIGHUP, the API's
	// Reload), as at start: with defaults applied and validated. Nil:
	// reload is refused.
	Load func() (*configs.Config, error)
	// LogLevel, if set, is the level of Logger's handler, which a reload
	// changes to the file's log-level.
	LogLevel *slog.LevelVar
}

// Daemon is one evpnd instance.
type Daemon struct {
	// cfg is the configuration in force. Before the leaf loop starts it is
	// read and written by Run's goroutine only; then only the loop writes
	// it (runtime VNI changes), and other goroutines read live.
	cfg   *configs.Config
	live  atomic.Pointer[configs.Config]
	opts  Options
	log   *slog.Logger
	start time.Time

	leaf      atomic.Pointer[leaf]
	srv       atomic.Pointer[speaker.Server]
	restarted atomic.Bool
	hub       *hub
	trace     *trace.Recorder
	metrics   *metrics.Metrics
	odd       oddLimiter // log lines of odd routes
	vniMu     sync.Mutex // one runtime VNI change or reload at a time
	// vxlanMTU is the MTU of VXLAN devices created for VNIs without one
	// (see defaultVXLANMTU); set before the leaf loop starts.
	vxlanMTU int
	// file is the config file as last read (at start or reload), for
	// status to name what runs otherwise.
	file     atomic.Pointer[configs.Config]
	endpoint metricsEndpoint
}

// New checks the configuration and returns a daemon ready to Run.
func New(cfg *configs.Config, opts Options) (*Daemon, error) {
	if cfg == nil {
		return nil, errors.New("daemon: nil config")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d := &Daemon{cfg: cfg, opts: opts, log: opts.Logger, hub: newHub(), trace: trace.New(traceEventsPerKey, traceKeys)}
	d.metrics = metrics.New(metrics.SourceFunc(d.metricsSnapshot), opts.Version)
	d.live.Store(cfg)
	d.file.Store(cfg)
	return d, nil
}

// Run runs the daemon until ctx is cancelled or a component fails.
func (d *Daemon) Run(ctx context.Context) error {
	d.start = time.Now()
	d.log.Info("evpnd starting", "version", d.opts.Version, "role", d.cfg.Role,
		"router_id", d.cfg.RouterID, "asn", d.cfg.ASN, "vtep", d.cfg.VTEPIP, "l2vnis", len(d.cfg.L2VNIs))
	stop, err := d.startServices()
	if err != nil {
		return err
	}
	defer stop()
	if d.opts.Wait > 0 {
		if err := d.waitForNode(ctx, d.opts.Wait); err != nil {
			return err
		}
	} else if missing := d.missing(); len(missing) > 0 {
		// Say everything that is missing at once, before touching anything.
		return fmt.Errorf("missing on this node: %s; create them, fix the configuration, or start with --wait to wait for them",
			strings.Join(missing, ", "))
	}
	if d.cfg.Role == configs.RoleRouteReflector {
		return d.runReflector(ctx)
	}
	return d.runLeaf(ctx)
}

func (d *Daemon) speakerConfig(restarting bool) speaker.Config {
	var listen []string
	for _, a := range d.cfg.BGP.ListenAddresses {
		listen = append(listen, a.String())
	}
	if d.opts.Restarting != nil {
		restarting = *d.opts.Restarting
	}
	var vteps []netip.Addr
	if d.cfg.VTEPIP.IsValid() {
		vteps = append(vteps, d.cfg.VTEPIP)
	}
	return speaker.Config{
		RouterID:        d.cfg.RouterID,
		ASN:             d.cfg.ASN,
		ListenPort:      int32(d.cfg.BGP.ListenPort),
		ListenAddresses: listen,
		RouteReflector:  d.cfg.Role == configs.RoleRouteReflector,
		ClusterID:       d.cfg.RouterID,
		GracefulRestart: d.cfg.GracefulRestart.IsEnabled(),
		RestartTime:     d.cfg.GracefulRestart.RestartTime,
		Restarting:      restarting && d.cfg.GracefulRestart.IsEnabled(),
		SyncTimeout:     d.cfg.GracefulRestart.EORTimeout,
		ResyncWindow:    d.resyncWindow(),
		LocalVTEPs:      vteps,
		ConnectRetry:    d.cfg.BGP.ConnectRetry,
		HoldTime:        d.cfg.BGP.HoldTime,
		GoBGPAPIListen:  d.cfg.API.GoBGPListen,
		Logger:          d.log,
	}

}

// addPeers configures every static and dynamic neighbour.
func (d *Daemon) addPeers(ctx context.Context, srv *speaker.Server) error {
	var errs []error
	ns, err := d.neighbors()
	if err != nil {
		return err
	}
	for _, n := range ns {
		if err := srv.AddNeighbor(ctx, d.speakerNeighbor(d.cfg, n)); err != nil {
			errs = append(errs, fmt.Errorf("neighbor %s: %w", n.Address, err))
		}
	}
	for _, dn := range d.cfg.DynamicNeighbors {
		err := srv.AddDynamicNeighbor(ctx, speaker.DynamicNeighbor{
			Prefix: dn.Prefix, ASN: dn.ASN,
			RRClient: d.cfg.Role == configs.RoleRouteReflector && dn.IsRouteReflectorClient(),
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("dynamic neighbors %s: %w", dn.Prefix, err))
		}
	}
	return errors.Join(errs...)
}

// stopSpeaker ends the BGP sessions: gracefully (no Cease, peers keep our
// routes as stale under graceful restart) unless CeaseOnExit is set.
func (d *Daemon) stopSpeaker(srv *speaker.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Stop(ctx, !d.opts.CeaseOnExit); err != nil {
		d.log.Warn("stop BGP", "err", err)
	}
}

// runReflector runs the route-reflector role: l2vpn-evpn reflection with
// next hops unchanged, nothing installed in the kernel. After a restart of
// the reflector, the leafs hold the withdrawals its stale flush causes
// until every leaf has re-sent its routes (speaker.Config.ResyncWindow).
func (d *Daemon) runReflector(ctx context.Context) error {
	srv, err := speaker.New(d.speakerConfig(false))
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer d.stopSpeaker(srv)
	d.srv.Store(srv)
	g, ctx := errgroup.WithContext(ctx)
	if err := d.startUnderlay(ctx, g, srv); err != nil {
		return err
	}
	if err := d.addPeers(ctx, srv); err != nil {
		return err
	}
	g.Go(func() error {
		up := map[netip.Addr]bool{} // watchers hear of transitions only
		return srv.WatchPeers(ctx, func(ev speaker.Event) {
			if ev.Type == speaker.EventPeer {
				d.log.Info("peer state", "peer", ev.Peer, "state", ev.State)
				now := ev.State == speaker.PeerStateEstablished
				if now != up[ev.Peer] {
					d.publishPeer(ev.Peer, now, apiPeerState(ev.State), time.Now())
				}
				up[ev.Peer] = now
			}
		})
	})
	d.log.Info("route reflector running", "neighbors", len(d.cfg.Neighbors), "dynamic_ranges", len(d.cfg.DynamicNeighbors))
	<-ctx.Done()
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (d *Daemon) importRules() []evpn.ImportRule {
	var rules []evpn.ImportRule
	for _, v := range d.cfg.L2VNIs {
		rts, auto := d.cfg.ImportRTs(v)
		rules = append(rules, evpn.ImportRule{VNI: v.VNI, Auto: auto, RTs: rts})
	}
	return rules
}
