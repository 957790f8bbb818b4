package daemon

import (
	"context"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// vrfStates are the tenant VRFs of config c for the status, sorted by
// L3VNI: their devices (read in the kernel, each namespace once), their
// border-leaf config (uplinks, static routes) and, on a running leaf,
// what the L3 model holds for them, read in one call on the loop. A leaf
// whose loop does not answer (ctx ends, or it stopped) has the counts left
// at 0: the status still answers.
func (d *Daemon) vrfStates(ctx context.Context, c *configs.Config) []api.VRFStatus {
	vs := sortedVRFs(c)
	if len(vs) == 0 {
		return nil
	}
	out := make([]api.VRFStatus, len(vs))
	p := presence{}
	for i, v := range vs {
		out[i] = api.VRFStatus{Name: v.Name, L3VNI: v.L3VNI, Backend: v.Backend,
			DevicesPresent: p.has(vrfNamespace(v), v.VXLANDevice, v.Bridge), StaticRoutes: len(v.Routes)}
		for _, u := range v.Uplinks {
			out[i].Uplinks = append(out[i].Uplinks, u.Interface)
		}
	}
	l := d.leaf.Load()
	if l == nil {
		return out
	}
	kernel := map[string]api.VRFKernel{}
	for _, k := range l.vrfKernel() {
		kernel[k.VRF] = k
	}
	for i := range out {
		if k, ok := kernel[out[i].Name]; ok {
			out[i].KernelInSync, out[i].Kernel = k.InSync, k.Kinds
		}
	}
	if l.l3 == nil {
		return out
	}
	_ = l.read(ctx, func() {
		for i, v := range vs {
			countL3(&out[i], v.L3VNI, l.l3Snapshot(v.L3VNI), l.l3.Bindings(v.L3VNI, 0))
		}
	})
	return out
}

// countL3 fills st's counts of the L3 model's state of the VRF with
// l3vni: its bindings (local and remote hosts), installed routes and
// remote VTEPs, counted as "show evpn vni L3VNI" counts them.
func countL3(st *api.VRFStatus, l3vni uint32, s evpn.L3Snapshot, bs []evpn.Binding) {
	for _, b := range bs {
		if b.Local {
			st.LocalHosts++
		} else {
			st.RemoteHosts++
		}
	}
	for _, h := range s.Hosts {
		if h.L3VNI == l3vni {
			st.HostRoutes++
		}
	}
	for _, p := range s.Prefixes {
		if p.L3VNI == l3vni {
			st.PrefixRoutes++
		}
	}
	for _, r := range s.RouterMACs {
		if r.L3VNI == l3vni {
			st.RemoteVTEPs++
		}
	}
}
