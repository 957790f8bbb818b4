package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// tooMany is the error for words after a command's last argument.
func tooMany(cmd *cobra.Command, extra []string) error {
	return fmt.Errorf("%s: unexpected %q (usage: %s)", cmdPath(cmd), strings.Join(extra, " "), cmd.UseLine())
}

// completeVNIs asks evpnd for its VNIs, for shell completion. It gives
// nothing, quickly, when evpnd cannot be reached.
func (a *app) completeVNIs(cmd *cobra.Command) []cobra.Completion {
	return completeFrom(a, cmd, func(ctx context.Context, c *client) (*evpndv1.ListVNIsResponse, error) {
		return c.ListVNIs(ctx, &evpndv1.ListVNIsRequest{})
	}, func(resp *evpndv1.ListVNIsResponse) []cobra.Completion {
		var out []cobra.Completion
		for _, v := range resp.GetVnis() {
			out = append(out, cobra.CompletionWithDesc(u32(v.GetVni()),
				fmt.Sprintf("%s, %d local and %d remote MACs", v.GetVxlanDevice(), v.GetLocalMacs(), v.GetRemoteMacs())))
		}
		return out
	})
}

// completeFrom asks evpnd with call, for shell completion, and turns the
// answer into completions with build. It gives nothing, quickly (two
// seconds at the most), when evpnd cannot be reached or refuses.
func completeFrom[T any](a *app, cmd *cobra.Command, call func(context.Context, *client) (T, error), build func(T) []cobra.Completion) []cobra.Completion {
	c, err := a.dial(cmd)
	if err != nil {
		return nil
	}
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := call(ctx, c)
	if err != nil {
		return nil
	}
	return build(resp)
}

func (a *app) vniKeyword(all bool) keyword {
	k := keyword{name: "vni", value: "a VNI (1-16777215)", help: "only this VNI", complete: a.completeVNIs}
	if all {
		k.value = `a VNI (1-16777215) or "all"`
		k.complete = func(cmd *cobra.Command) []cobra.Completion {
			return append([]cobra.Completion{cobra.CompletionWithDesc("all", "every VNI")}, a.completeVNIs(cmd)...)
		}
	}
	return k
}

// vni reads the "vni" keyword as vniArg does; 0 when it is not given.
func (p parsed) vni(path string, all bool) (uint32, error) {
	if !p.has("vni") {
		return 0, nil
	}
	return vniArg(path, p["vni"], all)
}

// parseVNI parses args with g and reads their "vni" keyword (p.vni).
func (g *grammar) parseVNI(args []string, all bool) (parsed, uint32, error) {
	p, err := g.parse(args)
	if err != nil {
		return nil, 0, err
	}
	vni, err := p.vni(g.path, all)
	return p, vni, err
}

// vniArg reads the value of a "vni" keyword; "all" (where allowed) is 0.
func vniArg(path, s string, all bool) (uint32, error) {
	if all && s == "all" {
		return 0, nil
	}
	n, err := parseVNI(s)
	if err != nil {
		if all {
			err = fmt.Errorf("%q is not a VNI (want 1-%d or all)", s, maxVNI)
		}
		return 0, fmt.Errorf("%s: vni %w", path, err)
	}
	return n, nil
}

func (a *app) newShowVNICmd() *cobra.Command {
	return &cobra.Command{
		Use:   "vni [VNI|detail]",
		Short: "Show the L2VNIs, or one (or all) in detail",
		Long: `Show the L2VNIs as a table; "show evpn vni VNI" shows one in detail (an
L2VNI, or a VRF's L3VNI: its VRF, router MAC, member L2VNIs and backend),
and "show evpn vni detail" every L2VNI and L3VNI in detail.`,
		Args: cobra.ArbitraryArgs,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return append([]cobra.Completion{cobra.CompletionWithDesc("detail", "every VNI in detail")}, a.completeVNIs(cmd)...),
				cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return tooMany(cmd, args[1:])
			}
			var vni uint32
			detail := false
			if len(args) == 1 {
				if args[0] == "detail" {
					detail = true
				} else {
					n, err := parseVNI(args[0])
					if err != nil {
						return fmt.Errorf("%s: %w, or \"detail\"", cmdPath(cmd), err)
					}
					vni = n
				}
			}
			if vni != 0 {
				return a.showOneVNI(cmd, vni)
			}
			var l3 *evpndv1.ListL3VNIsResponse
			return show(a, cmd, func(ctx context.Context, c *client) (*evpndv1.ListVNIsResponse, error) {
				resp, err := c.ListVNIs(ctx, &evpndv1.ListVNIsRequest{})
				if err != nil || a.json() {
					return resp, err
				}
				// The table and the details list the VRFs' L3VNIs too, as
				// vtysh does; an evpnd without layer 3 has none.
				l3, err = c.ListL3VNIs(ctx, &evpndv1.ListL3VNIsRequest{})
				if status.Code(err) == codes.Unimplemented {
					err = nil
				}
				return resp, err
			}, func(resp *evpndv1.ListVNIsResponse) error {
				if detail {
					return writeVNIDetails(a.stdout, resp.GetVnis(), l3.GetL3Vnis())
				}
				return writeVNIList(a.stdout, resp, l3.GetL3Vnis())
			})
		},
	}
}

func (a *app) newShowMACCmd() *cobra.Command {
	g := &grammar{path: "show evpn mac", words: []keyword{
		a.vniKeyword(true),
		{name: "local", help: "only MACs learned on this leaf", excludes: []string{"remote"}},
		{name: "remote", help: "only MACs behind remote VTEPs", excludes: []string{"local"}},
		{name: "duplicate", help: "only MACs flagged duplicate"},
		{name: "verify", help: "read the kernel's FDB for the Kernel column (slow at 100k MACs)"},
		{name: "mac", value: "a MAC address such as 02:00:00:00:01:0b", help: "only this MAC, in detail (needs vni VNI)"},
	}}
	return &cobra.Command{
		Use:   "mac [vni VNI|all] [local|remote] [duplicate] [verify] [mac MAC]",
		Short: "Show the MAC table",
		Long: `Show the MAC table, local and remote, sorted by VNI then MAC. It streams:
rows print as they arrive, so even 100k MACs start at once.

The Kernel column is evpnd's record of what the kernel acknowledged, kept
current by netlink events. "verify" reads the kernel's FDB instead (seconds
at 100k entries); "evpnctl check" compares everything in full.

"vni VNI mac MAC" shows one MAC in detail; evpnd looks it up directly,
which costs the same at any table size.`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: g.completion(0, nil),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, vni, err := g.parseVNI(args, true)
			if err != nil {
				return err
			}
			req := &evpndv1.ListMACsRequest{Vni: vni, DuplicatesOnly: p.has("duplicate"), VerifyKernel: p.has("verify")}
			if p.has("mac") {
				if req.Vni == 0 {
					return fmt.Errorf("%s: \"mac\" needs one VNI: vni VNI mac MAC", g.path)
				}
				if req.Mac, err = parseMAC(p["mac"]); err != nil {
					return fmt.Errorf("%s: mac: %w", g.path, err)
				}
			}
			switch {
			case p.has("local"):
				req.Source = evpndv1.MACSource_MAC_SOURCE_LOCAL
			case p.has("remote"):
				req.Source = evpndv1.MACSource_MAC_SOURCE_REMOTE
			}
			return list(a, cmd, func(ctx context.Context, c *client) (pageStream[evpndv1.ListMACsResponse], error) {
				return c.ListMACs(ctx, req)
			}, (*evpndv1.ListMACsResponse).GetMacs, "macs", func(*client) (pager[*evpndv1.MAC], error) {
				if req.Mac != "" {
					return &macDetail{w: a.stdout, vni: req.Vni, mac: req.Mac}, nil
				}
				return newMACTable(a.stdout), nil
			})
		},
	}
}

func (a *app) newShowRouteCmd() *cobra.Command {
	g := &grammar{path: "show evpn route", words: []keyword{
		{name: "type", value: "2, 3 or 5", help: "only this route type", complete: func(*cobra.Command) []cobra.Completion {
			return []cobra.Completion{
				cobra.CompletionWithDesc("2", "MAC/IP advertisement"),
				cobra.CompletionWithDesc("3", "inclusive multicast (flood list)"),
				cobra.CompletionWithDesc("5", "IP prefix"),
			}
		}},
		a.vniKeyword(false),
		{name: "rd", value: "a route distinguisher such as 10.0.0.2:100", help: "only this RD"},
	}}
	return &cobra.Command{
		Use:   "route [type 2|3|5] [vni VNI] [rd RD]",
		Short: "Show the l2vpn-evpn BGP table",
		Long: `Show the raw l2vpn-evpn BGP table, every path (best or not), grouped by
route distinguisher. "vni" selects the paths that import into that L2VNI.
It streams: rows print as they arrive.`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: g.completion(0, nil),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.parse(args)
			if err != nil {
				return err
			}
			req := &evpndv1.ListRoutesRequest{Rd: p["rd"]}
			if p.has("type") {
				if req.RouteType, err = parseRouteType(p["type"]); err != nil {
					return fmt.Errorf("%s: %w", g.path, err)
				}
			}
			if req.Vni, err = p.vni(g.path, false); err != nil {
				return err
			}
			if p.has("rd") && req.Rd == "" {
				return fmt.Errorf("%s: rd needs a value: %s", g.path, g.words[2].value)
			}
			return list(a, cmd, func(ctx context.Context, c *client) (pageStream[evpndv1.ListRoutesResponse], error) {
				return c.ListRoutes(ctx, req)
			}, (*evpndv1.ListRoutesResponse).GetRoutes, "routes", func(c *client) (pager[*evpndv1.Route], error) {
				// The table's header and its iBGP marks need the local AS
				// and every neighbour's.
				ctx, cancel := c.ctx(cmd.Context())
				defer cancel()
				st, err := c.GetStatus(ctx, &evpndv1.GetStatusRequest{})
				if err != nil {
					return nil, c.explain(ctx, err)
				}
				peers, err := c.ListPeers(ctx, &evpndv1.ListPeersRequest{})
				if err != nil {
					return nil, c.explain(ctx, err)
				}
				return newRouteTable(a.stdout, newRouteInfo(st, peers)), nil
			})
		},
	}
}

func (a *app) newShowBGPSummaryCmd() *cobra.Command {
	var sent bool
	cmd := &cobra.Command{
		Use:   "summary",
		Short: "Show the BGP neighbors and their state",
		Long: `Show the router ID, the local AS and a row per BGP neighbor: the BGP
messages received and sent over all its sessions, how long the session
is up, its state or the paths it sent, the paths accepted, the paths
sent to it, whether End-of-RIB came, and its last error. With -o json:
the ListPeers response (the router ID and AS are in "evpnctl status
-o json").

--sent also counts the paths sent to each neighbor (FRR's PfxSnt). That
takes evpnd a pass over its BGP table per established neighbor (GoBGP
keeps no Adj-RIB-Out), about a second per neighbor at 100k paths, during
which it processes no updates: hence not by default.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return tooMany(cmd, args)
			}
			var st *evpndv1.GetStatusResponse
			return show(a, cmd, func(ctx context.Context, c *client) (_ *evpndv1.ListPeersResponse, err error) {
				if !a.json() { // the table starts with the router ID and AS
					if st, err = c.GetStatus(ctx, &evpndv1.GetStatusRequest{}); err != nil {
						return nil, err
					}
				}
				return c.ListPeers(ctx, &evpndv1.ListPeersRequest{WithAdvertised: sent})
			}, func(peers *evpndv1.ListPeersResponse) error {
				return writeBGPSummary(a.stdout, st, peers, sent)
			})
		},
	}
	cmd.Flags().BoolVar(&sent, "sent", false, "also count the paths sent to each neighbor (PfxSnt; a table pass per neighbor)")
	return cmd
}
