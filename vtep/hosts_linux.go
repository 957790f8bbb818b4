package vtep

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/evpnd/evpnd/speaker/evpn"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// WatchHosts reports the local MAC+IP bindings (HostTable's rules) of the
// SVIs svis (bridge name → L2VNI) in namespace ns (netns.None() for the
// caller's): first those the kernel holds, then every change, to out,
// until ctx ends (nil) or the subscription fails (an error: the caller
// starts it again, which reports the current bindings afresh). The SVIs'
// indexes are read at start: a re-created SVI needs a restart of the
// watch. gateways are the SVIs' own addresses, never reported.
func WatchHosts(ctx context.Context, ns netns.NsHandle, svis map[string]uint32, gateways map[uint32][]netip.Addr, out func(HostEvent)) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("watch hosts: %w", err)
	}
	vniOf := map[int]uint32{}
	for name, vni := range svis {
		l, err := h.LinkByName(name)
		if err != nil {
			h.Close()
			return fmt.Errorf("watch hosts: SVI %s: %w", name, err)
		}
		vniOf[l.Attrs().Index] = vni
	}
	h.Close()
	ch := make(chan netlink.NeighUpdate, 1024)
	done := make(chan struct{})
	defer close(done)
	// The library reports harmless problems through ErrorCallback too (a
	// message from a sender other than the kernel: "Wrong sender portid")
	// and goes on; a real failure closes ch, handled below. So the
	// callback only logs.
	opts := netlink.NeighSubscribeOptions{ListExisting: true, ErrorCallback: func(err error) {
		slog.Debug("watch hosts: netlink subscription reported a problem and goes on", "err", err)
	}}
	if ns.IsOpen() {
		opts.Namespace = &ns
	}
	if err := netlink.NeighSubscribeWithOptions(ch, done, opts); err != nil {
		return fmt.Errorf("watch hosts: subscribe: %w", err)
	}
	tab := NewHostTable(gateways)
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-ch:
			if !ok {
				return fmt.Errorf("watch hosts: the subscription ended")
			}
			vni, ok := vniOf[u.LinkIndex]
			if !ok || (u.Family != unix.AF_INET && u.Family != unix.AF_INET6) {
				continue
			}
			ip, _ := netip.AddrFromSlice(u.IP)
			mac, _ := evpn.MACFrom(u.HardwareAddr)
			if ev, ok := tab.Update(NeighUpdate{Deleted: u.Type == unix.RTM_DELNEIGH, VNI: vni, IP: ip, MAC: mac, State: u.State, Flags: u.Flags}); ok {
				out(ev)
			}
		}
	}
}
