//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/evpnd/evpnd/containerlab/lab"
)

func newInspectCmd(g *globalFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Show the lab's nodes, namespaces, addresses and processes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, opts, err := g.load(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			l, err := lab.Open(t, opts)
			if err != nil {
				return err
			}
			switch output {
			case "json":
				st, err := l.Inspect()
				if err != nil {
					return err
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			case "table", "":
				return printStatus(cmd.OutOrStdout(), l)
			default:
				return fmt.Errorf("unknown output format %q (table or json)", output)
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

// printStatus prints one row per node interface:
//
//	NODE    NAMESPACE         STATE    PID   INTERFACE  ADDRESSES
//	leaf1   evpn-l2-leaf1     running  4242  lo         10.0.0.1/32
//	                                         eth1       10.1.1.1/31
func printStatus(w io.Writer, l *lab.Lab) error {
	st, err := l.Inspect()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tNAMESPACE\tSTATE\tPID\tINTERFACE\tMAC\tADDRESSES")
	for _, s := range st {
		state, pid := "absent", ""
		switch {
		case s.Running:
			state, pid = "running", strconv.Itoa(s.PID)
		case s.Deployed && s.Cmd != "":
			state = "stopped"
		case s.Deployed:
			state = "up"
		}
		if len(s.Interfaces) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\t\t\n", s.Node, s.Namespace, state, pid)
			continue
		}
		for i, ifc := range s.Interfaces {
			name := ifc.Name
			if !ifc.Up {
				name += " (down)"
			}
			if i == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t", s.Node, s.Namespace, state, pid)
			} else {
				fmt.Fprint(tw, "\t\t\t\t")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", name, ifc.MAC, strings.Join(ifc.Addrs, ", "))
		}
	}
	if ferr := tw.Flush(); ferr != nil {
		return ferr
	}
	return err
}
