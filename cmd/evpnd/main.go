// Command evpnd is the EVPN-VXLAN control plane daemon of a Linux leaf
// switch (or of a fabric route reflector).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/daemon"
	"github.com/evpnd/evpnd/configs"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newRootCmd(os.Stdout, os.Stderr).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "evpnd:", err)
		os.Exit(1)
	}
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "evpnd",
		Short:         "EVPN-VXLAN control plane for Linux leaf switches",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newRunCmd(stderr), newValidateCmd(stdout, stderr), newVersionCmd(stdout))
	return root
}

const defaultConfig = "/etc/evpnd/evpnd.yaml"

// socketEnv names the API socket for evpnd and evpnctl alike.
const socketEnv = "EVPND_SOCKET"

func newRunCmd(stderr io.Writer) *cobra.Command {
	var cfgPath, logFormat string
	var ceaseOnExit bool
	var wait time.Duration
	var pprofAddr, apiSocket string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon",
		Long: `Run the daemon with the given configuration.

On SIGTERM or SIGINT evpnd exits without sending a BGP Cease and leaves its
kernel entries in place, so that graceful-restart peers keep its routes and
forwarding continues while it restarts. Use --cease-on-exit to tear the
sessions down instead (peers then withdraw this leaf's routes at once).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if apiSocket == "" {
				apiSocket = os.Getenv(socketEnv)
			}
			if apiSocket != "" && !filepath.IsAbs(apiSocket) {
				return fmt.Errorf("--api-socket (or %s) %q must be an absolute path", socketEnv, apiSocket)
			}
			// load reads the file as at start, for a reload too: the
			// socket given on the command line stays in force.
			load := func() (*configs.Config, error) {
				cfg, err := configs.Load(cfgPath)
				if err != nil {
					return nil, err
				}
				if apiSocket != "" {
					cfg.API.Socket = apiSocket
				}
				return cfg, nil
			}
			cfg, err := load()
			if err != nil {
				return err
			}
			level := new(slog.LevelVar)
			level.Set(cfg.SlogLevel())
			log := newLogger(stderr, level, logFormat)
			if pprofAddr != "" {
				if err := startPprof(pprofAddr, log); err != nil {
					return err
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			d, err := daemon.New(cfg, daemon.Options{Logger: log, Version: version, CeaseOnExit: ceaseOnExit, Wait: wait,
				ConfigPath: cfgPath, Load: load, LogLevel: level})
			if err != nil {
				return err
			}
			defer reloadOnHUP(ctx, d)()
			err = d.Run(ctx)
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", defaultConfig, "configuration file")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for the configured VTEP and listen addresses to appear (containerlab adds them after starting evpnd); 0 = fail at once if one is missing. Absent access interfaces never stop the start: each is enslaved when it appears")
	cmd.Flags().StringVar(&pprofAddr, "pprof", "", "serve Go profiles (net/http/pprof) on this loopback address, e.g. 127.0.0.1:6060")
	cmd.Flags().BoolVar(&ceaseOnExit, "cease-on-exit", false, "send BGP Cease to peers on exit (no graceful restart)")
	cmd.Flags().StringVar(&apiSocket, "api-socket", "", "Unix socket of the management API (evpnctl's); overrides api.socket. Default: $"+socketEnv+", else api.socket, else "+configs.DefaultAPISocket)
	return cmd
}

// reloadOnHUP reloads the config file on each SIGHUP until ctx ends or
// the returned stop is called; the daemon logs each reload and its
// outcome. SIGHUPs that arrive during a reload make one more reload
// after it.
func reloadOnHUP(ctx context.Context, d *daemon.Daemon) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_, _ = d.Reload(ctx) // logged by the daemon
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}

func newLogger(w io.Writer, level slog.Leveler, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func newValidateCmd(stdout, stderr io.Writer) *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a configuration file without touching the kernel",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := configs.Load(cfgPath)
			if err != nil {
				return err
			}
			if w := vtepWarning(cfg); w != "" {
				fmt.Fprintln(stderr, "evpnd: warning:", w)
			}
			for _, w := range cfg.Warnings() {
				fmt.Fprintln(stderr, "evpnd: warning:", w)
			}
			vrfs := ""
			if len(cfg.VRFs) > 0 {
				vrfs = fmt.Sprintf(", %d VRFs", len(cfg.VRFs))
			}
			fmt.Fprintf(stdout, "%s: valid (%s, router-id %s, AS %d, %d neighbors, %d dynamic ranges, %d L2VNIs%s)\n",
				cfgPath, cfg.Role, cfg.RouterID, cfg.ASN, len(cfg.Neighbors), len(cfg.DynamicNeighbors), len(cfg.L2VNIs), vrfs)
			return nil
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", defaultConfig, "configuration file")
	return cmd
}

// vtepWarning says what is wrong if a leaf's vtep-ip is on no interface
// of this node (in validate's network namespace): evpnd run refuses to
// start then, unless --wait sees it appear. "" when it is there, for a
// route reflector, or when the interfaces cannot be read.
func vtepWarning(cfg *configs.Config) string {
	if cfg.Role != configs.RoleLeaf {
		return ""
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if p, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(p.IP); ok && ip.Unmap() == cfg.VTEPIP {
				return ""
			}
		}
	}
	return fmt.Sprintf("vtep-ip %s is on no interface of this node: evpnd run refuses to start until it is (add it, usually to the loopback: ip addr add %s/32 dev lo), or waits for it with --wait", cfg.VTEPIP, cfg.VTEPIP)
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run:   func(*cobra.Command, []string) { fmt.Fprintln(stdout, "evpnd", version) },
	}
}
