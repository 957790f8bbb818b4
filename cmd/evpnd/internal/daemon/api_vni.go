package daemon

import (
	"cmp"
	"context"
	"errors"
	"net/netip"
	"slices"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/vtep"
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
	c, links := d.config(), presence{}
	for i := range out {
		out[i].DevicesPresent = links.has(vniNamespace(c, out[i].VNI), out[i].VXLAN, out[i].Bridge)
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

// vniNamespace names the namespace holding the devices of L2VNI vni: its
// VRF's on the netns backend, "" (the underlay's) otherwise.
func vniNamespace(c *configs.Config, vni uint32) string {
	if f, ok := vrfOf(c, vni); ok {
		return vrfNamespace(f)
	}
	return ""
}

// vrfNamespace names the namespace holding VRF f's devices: its own on
// the netns backend, "" (the underlay's) otherwise.
func vrfNamespace(f configs.VRF) string {
	if f.Backend == configs.BackendNetns {
		return f.Namespace
	}
	return ""
}

// presence holds the link names of the namespaces read so far (by name,
// "" the underlay's), each read once, through vtep.Node.
type presence map[string]map[string]bool

// has reports whether every one of names is a link of namespace ns. A
// namespace that cannot be read has none.
func (p presence) has(ns string, names ...string) bool {
	links, ok := p[ns]
	if !ok {
		if n, err := vtep.OpenNode(ns); err == nil {
			links, _ = n.LinkNames()
			n.Close()
		}
		p[ns] = links
	}
	for _, n := range names {
		if !links[n] {
			return false
		}
	}
	return true
}
