package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// The layer-3 commands (issue 10).

// completeL3VNIs asks evpnd for its L3VNIs, for shell completion.
func (a *app) completeL3VNIs(cmd *cobra.Command) []cobra.Completion {
	return completeFrom(a, cmd, listL3VNIs, func(resp *evpndv1.ListL3VNIsResponse) []cobra.Completion {
		out := []cobra.Completion{cobra.CompletionWithDesc("all", "every L3VNI")}
		for _, v := range resp.GetL3Vnis() {
			out = append(out, cobra.CompletionWithDesc(u32(v.GetL3Vni()), "VRF "+v.GetVrf()))
		}
		return out
	})
}

// completeVRFs asks evpnd for its VRFs' names, for shell completion.
func (a *app) completeVRFs(cmd *cobra.Command) []cobra.Completion {
	return completeFrom(a, cmd, listL3VNIs, func(resp *evpndv1.ListL3VNIsResponse) []cobra.Completion {
		var out []cobra.Completion
		for _, v := range resp.GetL3Vnis() {
			out = append(out, cobra.CompletionWithDesc(v.GetVrf(), fmt.Sprintf("L3VNI %d", v.GetL3Vni())))
		}
		return out
	})
}

func listL3VNIs(ctx context.Context, c *client) (*evpndv1.ListL3VNIsResponse, error) {
	return c.ListL3VNIs(ctx, &evpndv1.ListL3VNIsRequest{})
}

func (a *app) l3vniKeyword() keyword {
	return keyword{name: "vni", value: `an L3VNI (1-16777215) or "all"`, help: "only this L3VNI", complete: a.completeL3VNIs}
}

func (a *app) newShowARPCacheCmd() *cobra.Command {
	g := &grammar{path: "show evpn arp-cache", words: []keyword{a.vniKeyword(true)}}
	return &cobra.Command{
		Use:   "arp-cache [vni VNI|all]",
		Short: "Show the MAC+IP bindings (ARP/ND) of the routed L2VNIs",
		Long: `Show the MAC+IP bindings of the L2VNIs routed in a VRF, local hosts and
remote ones (the ARP/ND suppression entries), sorted by VNI then IP. It
streams: rows print as they arrive.`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: g.completion(0, nil),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, vni, err := g.parseVNI(args, true)
			if err != nil {
				return err
			}
			req := &evpndv1.ListARPCacheRequest{Vni: vni}
			return list(a, cmd, func(ctx context.Context, c *client) (pageStream[evpndv1.ListARPCacheResponse], error) {
				return c.ListARPCache(ctx, req)
			}, (*evpndv1.ListARPCacheResponse).GetEntries, "entries", func(*client) (pager[*evpndv1.ARPEntry], error) {
				return newARPTable(a.stdout), nil
			})
		},
	}
}

// l3vniArgs reads "vni L|all" of rmac and next-hops; 0 is every L3VNI.
func l3vniArgs(g *grammar, args []string) (uint32, error) {
	p, err := g.parse(args)
	if err != nil {
		return 0, err
	}
	if !p.has("vni") || p["vni"] == "all" {
		return 0, nil
	}
	n, err := parseVNI(p["vni"])
	if err != nil {
		return 0, fmt.Errorf("%s: vni %q is not an L3VNI (want 1-%d or all)", g.path, p["vni"], maxVNI)
	}
	return n, nil
}

func (a *app) newShowRMACCmd() *cobra.Command {
	return newShowL3VNICmd(a, "rmac", "Show the router MACs of the remote VTEPs of the L3VNIs",
		func(ctx context.Context, c *client, l3vni uint32) (*evpndv1.ListRouterMACsResponse, error) {
			return c.ListRouterMACs(ctx, &evpndv1.ListRouterMACsRequest{L3Vni: l3vni})
		}, writeRMACs)
}

func (a *app) newShowNextHopsCmd() *cobra.Command {
	return newShowL3VNICmd(a, "next-hops", "Show the remote VTEPs the routes of the L3VNIs go through",
		func(ctx context.Context, c *client, l3vni uint32) (*evpndv1.ListL3NextHopsResponse, error) {
			return c.ListL3NextHops(ctx, &evpndv1.ListL3NextHopsRequest{L3Vni: l3vni})
		}, writeNextHops)
}

// newShowL3VNICmd is "show evpn NAME [vni L3VNI|all]": it asks evpnd with
// call (l3vni 0 is every L3VNI) and writes the answer with write.
func newShowL3VNICmd[T proto.Message](a *app, name, short string, call func(context.Context, *client, uint32) (T, error),
	write func(io.Writer, T) error) *cobra.Command {
	g := &grammar{path: "show evpn " + name, words: []keyword{a.l3vniKeyword()}}
	return &cobra.Command{
		Use:               name + " [vni L3VNI|all]",
		Short:             short,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: g.completion(0, nil),
		RunE: func(cmd *cobra.Command, args []string) error {
			l3vni, err := l3vniArgs(g, args)
			if err != nil {
				return err
			}
			return show(a, cmd, func(ctx context.Context, c *client) (T, error) {
				return call(ctx, c, l3vni)
			}, func(resp T) error { return write(a.stdout, resp) })
		},
	}
}

func (a *app) newShowIPRouteCmd() *cobra.Command {
	g := &grammar{path: "show ip route", words: []keyword{
		{name: "vrf", value: "a VRF's name", help: "the routes of this VRF", complete: a.completeVRFs},
	}}
	return &cobra.Command{
		Use:   "route vrf NAME",
		Short: "Show the routes evpnd installs in a VRF",
		Long: `Show the EVPN routes evpnd installs in a VRF: host routes (type-2 MAC+IP,
symmetric IRB) and type-5 prefixes, each with its next hops (the remote
VTEPs and their router MACs; several for ECMP). Connected and other
routes of the VRF are the kernel's: see "ip route show vrf NAME". It
streams: rows print as they arrive.`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: g.completion(0, nil),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.parse(args)
			if err != nil {
				return err
			}
			if p["vrf"] == "" {
				return fmt.Errorf("%s: which VRF? (usage: %s)", g.path, cmd.UseLine())
			}
			req := &evpndv1.ListVRFRoutesRequest{Vrf: p["vrf"]}
			return list(a, cmd, func(ctx context.Context, c *client) (pageStream[evpndv1.ListVRFRoutesResponse], error) {
				return c.ListVRFRoutes(ctx, req)
			}, (*evpndv1.ListVRFRoutesResponse).GetRoutes, "routes", func(*client) (pager[*evpndv1.VRFRoute], error) {
				return newVRFRouteTable(a.stdout, req.Vrf), nil
			})
		},
	}
}

// showOneVNI shows VNI n: an L2VNI, or else an L3VNI, or says it is
// neither.
func (a *app) showOneVNI(cmd *cobra.Command, n uint32) error {
	return show(a, cmd, func(ctx context.Context, c *client) (proto.Message, error) {
		resp, err := c.GetVNI(ctx, &evpndv1.GetVNIRequest{Vni: n})
		if status.Code(err) != codes.NotFound {
			return resp, err
		}
		l3, err3 := c.GetL3VNI(ctx, &evpndv1.GetL3VNIRequest{L3Vni: n})
		switch status.Code(err3) {
		case codes.OK:
			return l3, nil
		case codes.NotFound, codes.Unimplemented:
			return nil, status.Errorf(codes.NotFound, "VNI %d is not configured (neither an L2VNI nor a VRF's L3VNI)", n)
		}
		return nil, err3
	}, func(m proto.Message) error {
		switch resp := m.(type) {
		case *evpndv1.GetL3VNIResponse:
			return writeL3VNIDetail(a.stdout, resp.GetL3Vni())
		case *evpndv1.GetVNIResponse:
			return writeVNIDetail(a.stdout, resp.GetVni())
		}
		return fmt.Errorf("unexpected response %T", m)
	})
}
