package daemon

import (
	"cmp"
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
)

// VNIs implements api.Backend.
func (d *Daemon) VNIs(ctx context.Context) ([]api.VNI, error) {
	l, err := d.leafOrErr()
	if err != nil {
		if errors.Is(err, api.ErrNotLeaf) {
			return nil, nil
		}
		return nil, err
	}
	var out []api.VNI
	err = l.read(ctx, func() { out = l.vniRows(0) })
	if err != nil {
		return nil, err
	}
	links := linkNames()
	for i := range out {
		out[i].DevicesPresent = links[out[i].VXLAN] && links[out[i].Bridge]
	}
	return out, nil
}

// vniRows builds the VNI rows (all, or only vni) from the loop's state.
// The MAC counts are the table's, kept as MACs change: a call costs
// O(VNIs + flood entries), not a walk of every MAC.
func (l *leaf) vniRows(only uint32) []api.VNI {
	c := l.d.cfg
	var out []api.VNI
	var floods map[uint32][]netip.Addr
	if only == 0 {
		floods = l.table.FloodLists()
	}
	for _, v := range c.L2VNIs {
		if only != 0 && v.VNI != only {
			continue
		}
		imp, auto := c.ImportRTs(v)
		var flood []netip.Addr
		if only == 0 {
			flood = floods[v.VNI]
		} else {
			flood = l.table.FloodList(v.VNI)
		}
		slices.SortFunc(flood, netip.Addr.Compare)
		n := l.table.Counts(v.VNI)
		out = append(out, api.VNI{
			VNI: v.VNI, VXLAN: v.VXLANDevice, Bridge: v.Bridge, AccessPorts: slices.Clone(v.AccessInterfaces),
			RD: c.L2VNIRD(v), ImportRTs: imp, ImportAuto: auto, ExportRTs: c.ExportRTs(v),
			Flood: flood, UDPPort: v.UDPPort, MTU: v.MTU, LocalVTEP: c.VTEPIP,
			LocalMACs: n.Local, RemoteMACs: n.Remote, DuplicateMACs: n.Duplicates,
		})
	}
	slices.SortFunc(out, func(a, b api.VNI) int { return cmp.Compare(a.VNI, b.VNI) })
	return out
}

func devicesPresent(names ...string) bool {
	links := linkNames()
	for _, n := range names {
		if !links[n] {
			return false
		}
	}
	return true
}

// linkNames returns the names of this node's links, read once.
func linkNames() map[string]bool {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	out := make(map[string]bool, len(ifs))
	for _, i := range ifs {
		out[i.Name] = true
	}
	return out
}
