//go:build linux

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/evpnd/evpnd/containerlab/lab"
	"github.com/evpnd/evpnd/containerlab/netns"
)

func newDeployCmd(g *globalFlags) *cobra.Command {
	var (
		paths   []string
		noStart bool
		detach  bool
		grace   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Deploy the lab and keep it until Ctrl-C or SIGTERM",
		Long: `deploy creates the lab's namespaces and links, runs every node's exec
commands and starts each node's cmd, then waits. Ctrl-C or SIGTERM destroys
the lab. With --detach it returns at once and the lab stays until
"evpnlab destroy". Node logs and the state file are in the work directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, opts, err := g.load(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			for _, w := range t.Warnings {
				opts.Logger.Warn("topology: " + w)
			}
			for _, p := range paths {
				abs, err := filepath.Abs(p)
				if err != nil {
					return err
				}
				opts.Path = append(opts.Path, abs)
			}
			opts.NoStart, opts.StopGrace = noStart, grace
			ctx := cmd.Context()
			l, err := lab.Deploy(ctx, t, opts)
			if err != nil {
				return err
			}
			if err := printStatus(cmd.OutOrStdout(), l); err != nil {
				opts.Logger.Warn("inspect", "err", err)
			}
			out := cmd.OutOrStdout()
			if detach {
				fmt.Fprintf(out, "lab %s deployed; remove it with: evpnlab destroy -t %s --prefix %s\n", t.Name, t.Path, l.Prefix())
				return nil
			}
			fmt.Fprintf(out, "lab %s running (logs in %s); Ctrl-C destroys it\n", t.Name, l.WorkDir())
			waitLab(ctx, l, opts)
			// Destroy must finish even though ctx is cancelled by now.
			return l.Destroy()
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&paths, "path", nil, "directory to put in front of PATH for nodes and for exec (e.g. where fresh evpnd and evpnctl are built); repeatable")
	f.BoolVar(&noStart, "no-start", false, "set up namespaces, links and exec commands but start no cmd")
	f.BoolVar(&detach, "detach", false, "return after deploying and leave the lab running")
	f.DurationVar(&grace, "grace", 5*time.Second, "how long to wait after SIGTERM before SIGKILL when stopping nodes")
	return cmd
}

// waitLab returns when ctx is done or the lab's namespaces are all gone
// ("evpnlab destroy" from another terminal). It logs each node whose cmd
// exits on its own.
func waitLab(ctx context.Context, l *lab.Lab, opts lab.Options) {
	reported := map[string]bool{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		gone := true
		for _, n := range l.Topology().Nodes {
			if netns.Exists(l.Namespace(n.Name)) {
				gone = false
			}
		}
		if gone {
			opts.Logger.Info("lab namespaces removed by someone else; exiting")
			return
		}
		for _, n := range l.Topology().Nodes {
			if exited, err := l.Exited(n.Name); exited && !reported[n.Name] {
				reported[n.Name] = true
				opts.Logger.Warn("node cmd exited", "node", n.Name, "err", err, "log", l.LogPath(n.Name))
			}
		}
	}
}
