package daemon

import (
	"slices"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/configs"
)

// The Daemon is the API's Backend.
var _ api.Backend = (*Daemon)(nil)

func (d *Daemon) leafOrErr() (*leaf, error) {
	if d.config().Role == configs.RoleRouteReflector {
		return nil, api.ErrNotLeaf
	}
	l := d.leaf.Load()
	if l == nil {
		return nil, errStopped
	}
	return l, nil
}

// config returns the configuration in force (it changes with AddVNI and
// DeleteVNI).
func (d *Daemon) config() *configs.Config { return d.live.Load() }

func (d *Daemon) hasVNI(vni uint32) bool {
	return slices.ContainsFunc(d.config().L2VNIs, func(v configs.L2VNI) bool { return v.VNI == vni })
}
