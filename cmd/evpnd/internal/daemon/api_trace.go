package daemon

import (
	"context"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// Trace implements api.Backend.
func (d *Daemon) Trace(_ context.Context, vni uint32, mac evpn.MAC) ([]api.TraceKey, error) {
	if d.trace == nil {
		return nil, nil
	}
	if vni != 0 {
		k, ok := d.trace.Get(vni, mac)
		if !ok {
			return nil, nil
		}
		return []api.TraceKey{k}, nil
	}
	return d.trace.Find(mac), nil
}
