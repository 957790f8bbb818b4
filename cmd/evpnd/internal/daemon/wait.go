package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/vtep"
)

// waitForNode waits until the addresses the configuration refers to exist
// on this node: the VTEP and BGP listen addresses on some interface.
// containerlab starts a node's command before it adds the node's links and
// runs its exec commands, so evpnd started there must wait for them
// (evpnd run --wait). It returns an error naming what is still missing
// when ctx ends or timeout passes. Access interfaces are not waited for:
// vtep warns about each one absent and enslaves it when it appears.
func (d *Daemon) waitForNode(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var lastLog time.Time // log at once, then every 5 s
	for {
		missing := d.missing()
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still missing after waiting %s: %s; create them or fix the configuration", timeout, strings.Join(missing, ", "))
		}
		if time.Since(lastLog) >= 5*time.Second {
			d.log.Info("waiting for interfaces and addresses", "missing", strings.Join(missing, ", "))
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// missing lists the configured addresses absent here, which evpnd cannot
// start without.
func (d *Daemon) missing() []string {
	var out []string
	have := map[netip.Addr]bool{}
	if n, err := vtep.OpenNode(""); err == nil {
		if addrs, err := n.AllAddrs(); err == nil {
			for _, a := range addrs {
				have[a.Addr().Unmap()] = true
			}
		}
		n.Close()
	}
	want := append([]netip.Addr(nil), d.cfg.BGP.ListenAddresses...)
	if d.cfg.Role != configs.RoleRouteReflector && d.cfg.VTEPIP.IsValid() {
		want = append(want, d.cfg.VTEPIP)
	}
	// The underlay installs its routes with the advertised /32 (the
	// loopback) as source, which the kernel refuses while it is not local.
	for _, p := range d.cfg.Underlay.Advertise {
		if p.Bits() == 32 && !slices.Contains(want, p.Addr()) {
			want = append(want, p.Addr())
		}
	}
	for _, a := range want {
		if !have[a] {
			out = append(out, "address "+a.String())
		}
	}
	for _, n := range d.cfg.Neighbors {
		if n.Interface != "" {
			if _, err := linkPeer(n.Interface); err != nil {
				out = append(out, "an IPv4 /31 or /30 address on "+n.Interface+" (neighbor by interface)")
			}
		}
	}
	return out
}
