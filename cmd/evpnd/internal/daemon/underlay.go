package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sync/errgroup"

	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/vtep"
)

// families maps a neighbour's configured address families.
func families(n configs.Neighbor) []speaker.Family {
	var out []speaker.Family
	for _, f := range n.AddressFamilies {
		switch f {
		case configs.FamilyL2VPNEVPN:
			out = append(out, speaker.FamilyL2VPNEVPN)
		case configs.FamilyIPv4Unicast:
			out = append(out, speaker.FamilyIPv4Unicast)
		}
	}
	return out
}

// linkPeer is the peer of a neighbour given by interface: the other end
// of the interface's IPv4 /31 or /30.
func linkPeer(ifname string) (netip.Addr, error) {
	n, err := vtep.OpenNode("")
	if err != nil {
		return netip.Addr{}, fmt.Errorf("neighbor interface %s: %w", ifname, err)
	}
	defer n.Close()
	addrs, err := n.Addrs(ifname)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("neighbor interface %s: %w", ifname, err)
	}
	for _, a := range addrs {
		if !a.Addr().Is4() {
			continue
		}
		if peer, ok := configs.PeerOnLink(a); ok {
			return peer, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("neighbor interface %s has no IPv4 /31 or /30 address, so its peer is unknown: address the link, or give the neighbor's address instead", ifname)
}

// neighbors returns the configured neighbours, those given by interface
// with their peer's address found on the link.
func (d *Daemon) neighbors() ([]configs.Neighbor, error) {
	out := make([]configs.Neighbor, 0, len(d.cfg.Neighbors))
	var errs []error
	for _, n := range d.cfg.Neighbors {
		if n.Interface != "" {
			a, err := linkPeer(n.Interface)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			n.Address = a
			if n.Description == "" {
				n.Description = n.Interface
			}
		}
		out = append(out, n)
	}
	return out, errors.Join(errs...)
}

// startUnderlay runs the BGP underlay when underlay.enabled is set: it
// advertises underlay.advertise, installs the learned routes through
// fib.Underlay (ECMP, proto fib.UnderlayProtocol) and takes the session of
// an ipv4-unicast neighbour down while no up link connects its address
// (fast external failover: the kernel drops the routes over a dead link at
// once, and the peer's paths leave BGP instead of lingering for the hold
// time); the session comes back when the link does. Call it after
// srv.Start and before the neighbours are added. The goroutines run in g.
func (d *Daemon) startUnderlay(ctx context.Context, g *errgroup.Group, srv *speaker.Server) error {
	u := d.cfg.Underlay
	if !u.Enabled {
		return nil
	}
	if err := srv.AdvertiseUnderlay(ctx, u.Advertise); err != nil {
		return err
	}
	var src netip.Addr
	for _, p := range u.Advertise {
		if p.Bits() == 32 {
			src = p.Addr()
			break
		}
	}
	ns, err := d.neighbors()
	if err != nil {
		return err
	}
	var peers []netip.Addr
	for _, n := range ns {
		if n.HasFamily(configs.FamilyIPv4Unicast) {
			peers = append(peers, n.Address)
		}
	}
	fo := &failover{d: d, srv: srv, peers: peers, down: map[netip.Addr]bool{}}
	rec, err := fib.NewUnderlay(vnetns.None(), fib.UnderlayConfig{
		Logger:  d.log.With("component", "underlay"),
		OnLinks: fo.links,
		OnRepair: func(_ fib.UnderlayOp, kind fib.DriftKind) {
			d.metrics.UnderlayRepaired(kind.String())
		},
	})
	if err != nil {
		return err
	}
	err = srv.WatchUnderlay(ctx, func(rs []speaker.UnderlayRoute) {
		want := make([]fib.UnderlayRoute, 0, len(rs))
		for _, r := range rs {
			want = append(want, fib.UnderlayRoute{Prefix: r.Prefix, NextHops: r.NextHops, Src: src})
		}
		d.log.Debug("underlay routes learned", "routes", len(want))
		rec.Set(want)
	})
	if err != nil {
		rec.Close()
		return fmt.Errorf("underlay: %w", err)
	}
	d.log.Info("BGP underlay on", "advertise", u.Advertise, "peers", peers, "route_protocol", fib.UnderlayProtocol)
	g.Go(func() error {
		defer rec.Close()
		return rec.Run(ctx)
	})
	return nil
}

// failover keeps the sessions of underlay neighbours down while no up link
// connects them. Its links method runs on fib.Underlay's goroutine.
type failover struct {
	d     *Daemon
	srv   *speaker.Server
	peers []netip.Addr
	down  map[netip.Addr]bool
}

func (f *failover) links(connected func(netip.Addr) bool) {
	for _, p := range f.peers {
		down := !connected(p)
		if down == f.down[p] {
			continue
		}
		if err := f.srv.SetNeighborEnabled(context.Background(), p, !down); err != nil {
			f.d.log.Warn("underlay: set session state from link state", "peer", p, "link_down", down, "err", err)
			continue
		}
		f.down[p] = down
		if down {
			f.d.log.Warn("underlay: no up link to the peer: session taken down", "peer", p)
		} else {
			f.d.log.Info("underlay: link to the peer is up again: session enabled", "peer", p)
		}
	}
}
