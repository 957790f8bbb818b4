package daemon

import (
	"context"
	"slices"
	"strings"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/speaker"
)

// Status implements api.Backend.
func (d *Daemon) Status(ctx context.Context) (api.Status, error) {
	c := d.config()
	st := api.Status{
		Version: d.opts.Version, Started: d.start, RouterID: c.RouterID, ASN: c.ASN,
		Role: c.Role, L2VNIs: len(c.L2VNIs), Restarted: d.restarted.Load(),
		PeersConfigured: len(c.Neighbors), VRFs: len(c.VRFs), ConfigFile: d.opts.ConfigPath,
	}
	st.VRFStates = d.vrfStates(ctx, c)
	if f := d.file.Load(); f != nil {
		st.VNIsNotInFile, st.FileVNIsNotRunning = vniDrift(c, f)
		st.RestartNeeded = configs.RestartNeeded(c, f)
	}
	if c.Role == configs.RoleLeaf {
		st.VTEP = c.VTEPIP
	}
	if srv := d.srv.Load(); srv != nil {
		if peers, err := srv.Peers(ctx); err == nil {
			st.PeersConfigured = len(peers)
			for _, p := range peers {
				if p.State == speaker.PeerStateEstablished {
					st.PeersEstablished++
				}
			}
		}
	}
	if l := d.leaf.Load(); l != nil {
		fs := l.rec.Stats()
		st.FIBPending, st.FIBErrors = fs.Pending, fs.Errors
		st.BGPSynced = l.synced.Load()
		st.KernelInSync = l.rec.Synced() && fs.Pending == 0 && fs.Stale == 0 && l.desired.Dirty() == 0
	} else if c.Role == configs.RoleRouteReflector {
		st.BGPSynced = true
	}
	return st, nil
}

// vniDrift compares the L2VNIs running (c) with the file's (f): those
// that run but the file lacks or sets otherwise, and those of the file
// that do not run, each sorted.
func vniDrift(c, f *configs.Config) (notInFile, notRunning []uint32) {
	file := map[uint32]configs.L2VNI{}
	for _, v := range f.L2VNIs {
		file[v.VNI] = v
	}
	run := map[uint32]bool{}
	for _, v := range c.L2VNIs {
		run[v.VNI] = true
		if fv, ok := file[v.VNI]; !ok || !configs.SameL2VNI(fv, v) {
			notInFile = append(notInFile, v.VNI)
		}
	}
	for vni := range file {
		if !run[vni] {
			notRunning = append(notRunning, vni)
		}
	}
	slices.Sort(notInFile)
	slices.Sort(notRunning)
	return notInFile, notRunning
}

// vrfKernel returns each tenant VRF's kernel L3 state, sorted by name;
// any goroutine may call it.
func (l *leaf) vrfKernel() []api.VRFKernel {
	var out []api.VRFKernel
	for _, t := range l.tenantList() {
		if t.l3rec == nil {
			continue
		}
		ks := t.l3rec.KernelState()
		v := api.VRFKernel{VRF: t.cfg.Name, L3VNI: t.cfg.L3VNI, InSync: ks.InSync}
		for _, k := range ks.Kinds {
			v.Kinds = append(v.Kinds, api.VRFKernelKind{Kind: k.Kind, Installed: k.Installed, Wanted: k.Wanted,
				Pending: k.Pending, Errors: uint64(k.Errors), Repairs: uint64(k.Repairs)})
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b api.VRFKernel) int { return strings.Compare(a.VRF, b.VRF) })
	return out
}
