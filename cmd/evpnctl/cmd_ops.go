package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

func (a *app) newStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show evpnd's identity and health",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return tooMany(cmd, args)
			}
			return show(a, cmd, func(ctx context.Context, c *client) (*evpndv1.GetStatusResponse, error) {
				return c.GetStatus(ctx, &evpndv1.GetStatusRequest{})
			}, func(st *evpndv1.GetStatusResponse) error {
				return writeStatus(a.stdout, st, a.loc)
			})
		},
	}
}

func (a *app) newWatchCmd() *cobra.Command {
	var initial, noResync bool
	cmd := &cobra.Command{
		Use:   "watch [--initial]",
		Short: "Print table changes as they happen",
		Long: `Print every change of evpnd's tables as it happens, one line each: MACs
added, moved, removed or flagged duplicate, flood-list VTEPs, BGP sessions,
and, per VRF, its routes ("show ip route vrf") and its ARP/ND cache rows
("show evpn arp-cache": local and remote hosts).
With --initial, the current state comes first, then a "synced" line.
With -o json, one protojson WatchResponse per line. Stop it with Ctrl-C.

If evpnctl falls so far behind that evpnd drops changes for it, it says so
on stderr and watches again with the current state first (marked initial,
then "synced"), so the picture stays complete; --no-resync exits instead.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return tooMany(cmd, args)
			}
			c, err := a.dial(cmd)
			if err != nil {
				return err
			}
			defer c.close()
			ctx := cmd.Context()
			out := bufio.NewWriter(a.stdout)
			var buf []byte
			req := &evpndv1.WatchRequest{InitialState: initial}
			stream, err := c.Watch(ctx, req)
			if err != nil {
				return watchEnd(ctx, c, err)
			}
			for {
				ev, err := stream.Recv()
				if err != nil && !noResync && ctx.Err() == nil && status.Code(err) == codes.ResourceExhausted {
					fmt.Fprintf(a.stderr, "evpnctl: %s; watching again from the current state\n", status.Convert(err).Message())
					// A pause, so that a client that cannot keep up does not
					// make evpnd rebuild its whole state back to back.
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(time.Second):
					}
					req = &evpndv1.WatchRequest{InitialState: true}
					if stream, err = c.Watch(ctx, req); err == nil {
						continue
					}
				}
				if err != nil {
					return watchEnd(ctx, c, err)
				}
				if a.json() {
					if buf, err = rowOpts.MarshalAppend(buf[:0], ev); err != nil {
						return fmt.Errorf("json: %w", err)
					}
					out.Write(buf)
				} else {
					out.WriteString(watchLine(ev, a.loc))
				}
				out.WriteByte('\n')
				if err := out.Flush(); err != nil {
					return err
				}
			}
		},
	}
	cmd.Flags().BoolVar(&initial, "initial", false, "print the current state first")
	cmd.Flags().BoolVar(&noResync, "no-resync", false, "exit (status 2) instead of watching again when evpnd drops changes for this client")
	return cmd
}

// watchEnd maps the end of a watch to evpnctl's result: Ctrl-C is a clean
// end; RESOURCE_EXHAUSTED (this client fell behind) prints evpnd's message,
// which says to watch again.
func watchEnd(ctx context.Context, c *client, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("evpnd at %s ended the watch (is it stopping?)", c.where)
	}
	return c.explain(ctx, err)
}

// vniOperand reads the one VNI that "vni add" and "vni del" take.
func vniOperand(cmd *cobra.Command, args []string) (uint32, error) {
	if len(args) == 0 {
		return 0, fmt.Errorf("%s: which VNI? (usage: %s)", cmdPath(cmd), cmd.UseLine())
	}
	if len(args) > 1 {
		return 0, tooMany(cmd, args[1:])
	}
	vni, err := parseVNI(args[0])
	if err != nil {
		return 0, fmt.Errorf("%s: %w", cmdPath(cmd), err)
	}
	return vni, nil
}

func (a *app) newVNIAddCmd() *cobra.Command {
	spec := &evpndv1.L2VNISpec{}
	cmd := &cobra.Command{
		Use:   "add VNI",
		Short: "Add an L2VNI at runtime",
		Long: `Add an L2VNI to the running evpnd: the same checks and defaults as an
l2vnis[] entry of the config file, then its devices are created and its
routes announced. On any error nothing changes. The VNI lasts until
evpnd restarts: add it to the config file to keep it.`,
		Example: "  evpnctl vni add 200 --access eth3 --export-rt 65000:200",
		Args:    cobra.ArbitraryArgs,
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			vni, err := vniOperand(cmd, args)
			if err != nil {
				return err
			}
			spec.Vni = vni
			return show(a, cmd, func(ctx context.Context, c *client) (*evpndv1.AddVNIResponse, error) {
				return c.AddVNI(ctx, &evpndv1.AddVNIRequest{Vni: spec})
			}, func(resp *evpndv1.AddVNIResponse) error {
				fmt.Fprintf(a.stdout, "Added L2VNI %d (until evpnd restarts: add it to the config file's l2vnis to keep it).\n\n", vni)
				return writeVNIDetail(a.stdout, resp.GetVni())
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.VxlanDevice, "vxlan-device", "", "VXLAN device name (default: vxlanVNI)")
	f.StringVar(&spec.Bridge, "bridge", "", "bridge name (default: brVNI)")
	f.StringSliceVar(&spec.AccessInterfaces, "access", nil, "access interfaces to enslave to the bridge, comma-separated")
	f.StringVar(&spec.Rd, "rd", "", "route distinguisher (default: ROUTER-ID:N, automatic)")
	f.StringSliceVar(&spec.ImportRts, "import-rt", nil, "import route targets, comma-separated (default: automatic, any ASN:VNI)")
	f.StringSliceVar(&spec.ExportRts, "export-rt", nil, "export route targets, comma-separated (default: ASN:VNI)")
	f.Uint32Var(&spec.UdpPort, "udp-port", 0, "VXLAN UDP port (default 4789)")
	f.Uint32Var(&spec.Mtu, "mtu", 0, "MTU of the VXLAN device and bridge (default: as the config file's default)")
	return cmd
}

func (a *app) newVNIDelCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "del VNI",
		Aliases: []string{"delete"},
		Short:   "Delete an L2VNI at runtime",
		Long: `Withdraw an L2VNI's routes, remove its remote entries and delete the
devices evpnd created for it. If the VNI is in the config file, it comes
back when evpnd restarts.`,
		Args: cobra.ArbitraryArgs,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return a.completeVNIs(cmd), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			vni, err := vniOperand(cmd, args)
			if err != nil {
				return err
			}
			return show(a, cmd, func(ctx context.Context, c *client) (*evpndv1.DeleteVNIResponse, error) {
				return c.DeleteVNI(ctx, &evpndv1.DeleteVNIRequest{Vni: vni})
			}, func(*evpndv1.DeleteVNIResponse) error {
				_, err := fmt.Fprintf(a.stdout, "Deleted L2VNI %d.\n", vni)
				return err
			})
		},
	}
}

func (a *app) newCheckCmd() *cobra.Command {
	g := &grammar{path: "check", words: []keyword{a.vniKeyword(false)}}
	return &cobra.Command{
		Use:   "check [vni VNI]",
		Short: "Compare what BGP selected with what the kernel holds",
		Long: `Compare BGP's selection (remote MACs, flood lists) with the kernel's VXLAN
and bridge FDB, and the VRFs' state (host and prefix routes, router MACs,
ARP/ND suppression neighbours) with their tables, and list every
difference. "vni" takes an L2VNI (its FDB, and its VRF's state) or a
VRF's L3VNI (that VRF's state alone). Exit status: 0 when the kernel
matches, 1 when drift is found, 2 on any error. Entries whose kernel
write is still queued ("in flight") are being repaired already.`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: g.completion(0, nil),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, vni, err := g.parseVNI(args, false)
			if err != nil {
				return err
			}
			req := &evpndv1.CheckRequest{Vni: vni}
			drifts := 0 // in JSON too
			err = show(a, cmd, func(ctx context.Context, c *client) (*evpndv1.CheckResponse, error) {
				resp, err := c.Check(ctx, req)
				drifts = len(resp.GetDrifts())
				return resp, err
			}, func(resp *evpndv1.CheckResponse) error {
				return writeCheck(a.stdout, resp, a.loc)
			})
			if err == nil && drifts > 0 {
				return &exitStatusError{code: exitDrift}
			}
			return err
		},
	}
}

func (a *app) newTraceCmd() *cobra.Command {
	g := &grammar{path: "trace", words: []keyword{a.vniKeyword(false)}}
	return &cobra.Command{
		Use:   "trace MAC [vni VNI]",
		Short: "Show the recent history of a MAC",
		Long: `Show what evpnd saw of a MAC, per VNI: learned, advertised, routes received
and withdrawn, selection, kernel writes, with the time of each event and
its delay since the first. History is kept for recently changed MACs only.`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: g.completion(1, nil),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("trace: which MAC? (usage: %s)", cmd.UseLine())
			}
			mac, err := parseMAC(args[0])
			if err != nil {
				if _, kwErr := g.lookup(args[0]); kwErr == nil {
					return fmt.Errorf("trace: the MAC comes first (usage: %s)", cmd.UseLine())
				}
				return fmt.Errorf("trace: %w", err)
			}
			_, vni, err := g.parseVNI(args[1:], false)
			if err != nil {
				return err
			}
			req := &evpndv1.TraceRequest{Mac: mac, Vni: vni}
			return show(a, cmd, func(ctx context.Context, c *client) (*evpndv1.TraceResponse, error) {
				return c.Trace(ctx, req)
			}, func(resp *evpndv1.TraceResponse) error {
				return writeTrace(a.stdout, req, resp, a.loc)
			})
		},
	}
}

func (a *app) newClearDupCmd() *cobra.Command {
	g := &grammar{path: "clear evpn dup-addr", words: []keyword{
		a.vniKeyword(false),
		{name: "mac", value: "a MAC address such as 02:00:00:00:01:0b", help: "only this MAC (default: every duplicate MAC of the VNI)"},
	}}
	return &cobra.Command{
		Use:   "dup-addr vni VNI [mac MAC]",
		Short: "Clear the duplicate flag of a MAC, or of every MAC of a VNI",
		Long: `Clear the duplicate flag that MAC mobility set on a MAC that moved too
often (RFC 7432 section 15), or on every MAC of the VNI, so that evpnd
selects its location again.`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: g.completion(0, nil),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.parse(args)
			if err != nil {
				return err
			}
			if !p.has("vni") {
				return fmt.Errorf("%s: which VNI? (usage: %s)", g.path, cmd.UseLine())
			}
			req := &evpndv1.ClearDuplicateRequest{}
			if req.Vni, err = vniArg(g.path, p["vni"], false); err != nil {
				return err
			}
			if p.has("mac") {
				if req.Mac, err = parseMAC(p["mac"]); err != nil {
					return fmt.Errorf("%s: mac %w", g.path, err)
				}
			}
			return show(a, cmd, func(ctx context.Context, c *client) (*evpndv1.ClearDuplicateResponse, error) {
				return c.ClearDuplicate(ctx, req)
			}, func(resp *evpndv1.ClearDuplicateResponse) error {
				what := "every MAC"
				if req.Mac != "" {
					what = "MAC " + req.Mac
				}
				_, err := fmt.Fprintf(a.stdout, "Cleared the duplicate flag of %s in VNI %d: %s cleared.\n",
					what, req.Vni, plural(int(resp.GetCleared()), "MAC", "MACs"))
				return err
			})
		},
	}
}

// reloadTimeout is how long evpnctl reload waits by default: evpnd
// answers once every change is applied.
const reloadTimeout = 10 * time.Minute

func (a *app) newReloadCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Re-read evpnd's config file and apply what changed",
		Long: `Make evpnd re-read its config file, as SIGHUP does, and apply its
difference from what runs: L2VNIs added, removed or changed, neighbours
added, removed or changed, duplicate detection, log level and the metrics
address. L2VNIs added or removed with "evpnctl vni" that the file lacks
are undone ("evpnctl status" lists them beforehand).

A file with problems is refused with all of them, and nothing changes.
Keys that only a restart changes (router-id, asn, role, vtep-ip, bgp,
graceful-restart, dynamic-neighbors, api) are named and keep their running
values; the rest of the file is still applied.

A reload that adds or removes thousands of VNIs takes a while: unless
--timeout is given, evpnctl waits up to 10 minutes for the answer.

Exit status: 0 when every change was applied (restart-only keys may be
named), 1 when some change failed (the rest was applied), 2 when the
reload was refused or on any error.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return tooMany(cmd, args)
			}
			if f := cmd.Flag("timeout"); f == nil || !f.Changed {
				a.timeout = reloadTimeout
			}
			failed := 0
			err := show(a, cmd, func(ctx context.Context, c *client) (*evpndv1.ReloadResponse, error) {
				resp, err := c.Reload(ctx, &evpndv1.ReloadRequest{})
				failed = len(resp.GetFailed())
				return resp, err
			}, func(resp *evpndv1.ReloadResponse) error {
				return writeReload(a.stdout, resp)
			})
			if err == nil && failed > 0 {
				return &exitStatusError{code: exitPartial}
			}
			return err
		},
	}
}
