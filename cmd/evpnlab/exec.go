//go:build linux

package main

import (
	"context"
	"errors"
	"os"
	"os/exec"

	"github.com/spf13/cobra"

	"github.com/evpnd/evpnd/containerlab/lab"
)

func newExecCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exec NODE -- CMD [ARG...]",
		Short: "Run a command inside a node",
		Long: `exec runs a command in a node's namespace with the node's environment,
connected to this terminal, and exits with its status. The command gets what
the node's cmd gets: the node's env, and the deploy's --path directories in
front of PATH, so evpnd and evpnctl are the binaries the lab runs. Paths
under a bind's destination are rewritten to the bind's source in the
arguments and in env values, as in the node's exec commands: EVPND_SOCKET
names the node's own API socket.`,
		Example: `  evpnlab exec -t evpn-l2.clab.yml h1 -- ping -c1 192.168.100.12
  evpnlab exec -t evpn-l2.clab.yml leaf1 -- evpnctl show evpn mac
  evpnlab exec -t evpn-l2.clab.yml leaf1 -- bridge fdb show dev vxlan100`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Flag parsing stops at NODE, so a "--" after it arrives here.
			if args[1] == "--" {
				args = append(args[:1:1], args[2:]...)
			}
			if len(args) < 2 {
				return errors.New("exec: no command given after the node")
			}
			t, opts, err := g.load(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			l, err := lab.Open(t, opts)
			if err != nil {
				return err
			}
			// Not cancelled by Ctrl-C: the terminal delivers it to the
			// command itself, as with docker exec.
			ctx := context.WithoutCancel(cmd.Context())
			c, err := l.Command(ctx, args[0], args[1:]...)
			if err != nil {
				return err
			}
			c.Stdin, c.Stdout, c.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
			err = c.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() > 0 {
				return exitCodeError(ee.ExitCode())
			}
			return err
		},
	}
	// Everything after NODE belongs to the command, "--" or not.
	cmd.Flags().SetInterspersed(false)
	return cmd
}
