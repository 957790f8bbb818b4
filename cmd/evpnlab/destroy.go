//go:build linux

package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/evpnd/evpnd/containerlab/lab"
)

func newDestroyCmd(g *globalFlags) *cobra.Command {
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Remove a deployed lab or its leftovers",
		Long: `destroy stops every process running inside the lab's namespaces (by PID,
SIGTERM then SIGKILL after --grace) and deletes the namespaces, whether the
lab is still deployed by "evpnlab deploy" or left over from a crash. It
touches nothing outside the namespaces named <prefix>-<node>. Node logs
stay in the work directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, opts, err := g.load(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			opts.StopGrace = grace
			l, err := lab.Open(t, opts)
			if err != nil {
				return err
			}
			n := 0
			for _, node := range t.Nodes {
				if l.Node(node.Name) != nil {
					n++
				}
			}
			if err := l.Destroy(); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if n == 0 {
				fmt.Fprintf(out, "lab %s (prefix %s): nothing deployed\n", t.Name, l.Prefix())
				return nil
			}
			fmt.Fprintf(out, "lab %s (prefix %s): removed %d namespaces; logs kept in %s\n", t.Name, l.Prefix(), n, l.WorkDir())
			return nil
		},
	}
	cmd.Flags().DurationVar(&grace, "grace", 5*time.Second, "how long to wait after SIGTERM before SIGKILL")
	return cmd
}
