package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// defaultSocket is evpnd's default api.socket (configs.DefaultAPISocket;
// a test keeps the two equal without making evpnctl import the daemon's
// config package).
const defaultSocket = "/run/evpnd/evpnd.sock"

// app holds what every command shares: the output streams and the global
// flags. One app serves one command line.
type app struct {
	stdout, stderr io.Writer
	// loc is the time zone timestamps are printed in.
	loc *time.Location

	socket  string
	address string
	tlsCA   string
	tlsCert string
	tlsKey  string
	output  string
	timeout time.Duration
}

// json reports whether -o json was given.
func (a *app) json() bool { return a.output == "json" }

// newRootCmd builds evpnctl's command tree writing to stdout and stderr.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	return newApp(stdout, stderr).rootCmd()
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{stdout: stdout, stderr: stderr, loc: time.Local}
}

func (a *app) rootCmd() *cobra.Command {
	root := groupCmd("evpnctl", "Show and change a running evpnd", "")
	root.Long = `evpnctl shows a running evpnd's EVPN tables and changes its L2VNIs, through
evpnd's gRPC API: on its Unix socket (api.socket) by default, or on TCP
(api.listen) with --address.

Commands use vtysh's words: "show evpn mac vni 100 remote",
"show evpn route type 2 rd 10.0.0.2:2", "show bgp summary". Every command
can print JSON (-o json) that decodes as the API's response message.

Exit status: 0 on success, 1 when "check" finds drift, 2 on any error.`
	root.Version = version
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SilenceUsage = true
	root.SilenceErrors = true
	root.CompletionOptions.HiddenDefaultCmd = false

	socket := os.Getenv("EVPND_SOCKET")
	if socket == "" {
		socket = defaultSocket
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.socket, "socket", socket, "evpnd's API Unix socket (env EVPND_SOCKET)")
	pf.StringVar(&a.address, "address", "", "reach evpnd on TCP host:port (its api.listen) instead of the socket")
	pf.StringVar(&a.tlsCA, "tls-ca", "", "with --address: use TLS, trusting the CA certificates in this PEM file")
	pf.StringVar(&a.tlsCert, "tls-cert", "", "with --tls-ca: client certificate PEM file (when evpnd sets api.tls.client-ca)")
	pf.StringVar(&a.tlsKey, "tls-key", "", "with --tls-cert: its private key PEM file")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	pf.DurationVar(&a.timeout, "timeout", 10*time.Second, "how long to wait for evpnd's answer (for tables, for each page); not applied to watch")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]cobra.Completion{"table\thuman-readable tables", "json\tprotojson of the API's response"}, cobra.ShellCompDirectiveNoFileComp))
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		switch a.output {
		case "table", "json":
		default:
			return fmt.Errorf("-o/--output: %q is not a format (want table or json)", a.output)
		}
		if a.timeout <= 0 {
			return fmt.Errorf("--timeout %s: want a positive duration, e.g. 10s", a.timeout)
		}
		return nil
	}

	root.AddCommand(
		groupCmd("show", "Show evpnd's tables", "",
			groupCmd("evpn", "Show EVPN tables: VNIs, MACs, BGP routes, L3 bindings and router MACs", "",
				a.newShowVNICmd(), a.newShowMACCmd(), a.newShowRouteCmd(),
				a.newShowARPCacheCmd(), a.newShowRMACCmd(), a.newShowNextHopsCmd()),
			groupCmd("bgp", "Show BGP state", "", a.newShowBGPSummaryCmd()),
			groupCmd("ip", "Show IP state of the VRFs", "", a.newShowIPRouteCmd()),
		),
		a.newStatusCmd(),
		a.newWatchCmd(),
		groupCmd("vni", "Add or delete an L2VNI at runtime", "", a.newVNIAddCmd(), a.newVNIDelCmd()),
		a.newReloadCmd(),
		a.newCheckCmd(),
		a.newTraceCmd(),
		groupCmd("clear", "Clear EVPN state (duplicate MACs)", "",
			groupCmd("evpn", "Clear EVPN state", "", a.newClearDupCmd())),
	)
	return root
}

// groupCmd is a command that only holds subcommands. Alone it prints its
// help; followed by a word that is not one of its subcommands it fails
// naming the words it knows.
func groupCmd(use, short, long string, children ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			var names []string
			for _, c := range cmd.Commands() {
				if c.IsAvailableCommand() && c.Name() != "help" && c.Name() != "completion" {
					names = append(names, c.Name())
				}
			}
			msg := fmt.Sprintf("%q is not a command here (want %s)", args[0], orList(names))
			if cmd.HasParent() {
				msg = cmdPath(cmd) + ": " + msg
			}
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf("; did you mean %q?", s[0])
			}
			return errors.New(msg)
		},
	}
	cmd.SuggestionsMinimumDistance = 2
	cmd.AddCommand(children...)
	return cmd
}

// cmdPath is the command's words without "evpnctl", as messages name it.
func cmdPath(cmd *cobra.Command) string {
	if !cmd.HasParent() {
		return cmd.Name()
	}
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

// orList spells words as "a, b or c".
func orList(words []string) string {
	switch len(words) {
	case 0:
		return "nothing"
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
