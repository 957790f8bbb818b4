//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/evpnd/evpnd/containerlab/lab"
)

// globalFlags are the flags every subcommand shares.
type globalFlags struct {
	topo    string
	prefix  string
	workDir string
	verbose bool
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "evpnlab",
		Short: "Run a containerlab topology on network namespaces",
		Long: `evpnlab deploys a containerlab topology file (.clab.yml) on bare Linux
network namespaces: one namespace per node named <prefix>-<node>, a veth
pair per link, each node's exec commands, then its cmd in the background.
It needs root and iproute2, and no container engine.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&g.topo, "topo", "t", "", "topology file (default: the only *.clab.yml in the current directory)")
	pf.StringVar(&g.prefix, "prefix", "", "namespace name prefix (default: the lab name)")
	pf.StringVar(&g.workDir, "workdir", "", "directory for state and node logs (default "+lab.DefaultRunDir+"/<prefix>)")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log every step")
	root.AddCommand(newDeployCmd(g), newDestroyCmd(g), newExecCmd(g), newInspectCmd(g))
	return root
}

// load reads the topology and builds the lab options the flags select.
func (g *globalFlags) load(stderr io.Writer) (*lab.Topology, lab.Options, error) {
	path := g.topo
	if path == "" {
		var err error
		if path, err = findTopology(); err != nil {
			return nil, lab.Options{}, err
		}
	}
	t, err := lab.Load(path)
	if err != nil {
		return nil, lab.Options{}, err
	}
	level := slog.LevelInfo
	if g.verbose {
		level = slog.LevelDebug
	}
	opts := lab.Options{
		Prefix:  g.prefix,
		WorkDir: g.workDir,
		Logger:  slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	return t, opts, nil
}

func findTopology() (string, error) {
	var found []string
	for _, pat := range []string{"*.clab.yml", "*.clab.yaml"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			return "", err
		}
		found = append(found, m...)
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", errors.New("no topology given (-t) and no *.clab.yml in the current directory")
	default:
		return "", fmt.Errorf("no topology given (-t) and several in the current directory: %v", found)
	}
}
