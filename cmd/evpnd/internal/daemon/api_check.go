package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/fib"
)

// Check implements api.Backend.
func (d *Daemon) Check(ctx context.Context, vni uint32) (api.CheckReport, error) {
	l, err := d.leafOrErr()
	if err != nil {
		return api.CheckReport{}, err
	}
	// An L3VNI names its VRF: its L3 state alone, no FDB of an L2VNI.
	_, l3vni := vrfByL3VNI(d.config(), vni)
	if vni != 0 && !l3vni && !d.hasVNI(vni) {
		return api.CheckReport{}, fmt.Errorf("vni %d is not configured (neither an L2VNI nor a VRF's L3VNI): %w", vni, api.ErrNotFound)
	}
	rep := api.CheckReport{Time: time.Now()}
	if !l3vni {
		res, err := l.rec.Check(ctx, vni)
		if err != nil {
			return api.CheckReport{}, err
		}
		rep.CheckedMACs, rep.CheckedFloods, rep.InFlight = res.CheckedMACs, res.CheckedFloods, res.InFlight
		for _, dr := range res.Drifts {
			rep.Drifts = append(rep.Drifts, api.Drift{
				Kind: apiDriftKind(dr.Kind), VNI: dr.VNI, Table: dr.Table, MAC: dr.MAC,
				WantVTEP: dr.Want, KernelVTEP: dr.Have, Device: dr.Device, Detail: dr.Detail,
			})
		}
	}
	for _, c := range l.l3Checks(vni) {
		ops, err := c.check(ctx)
		if err != nil {
			return api.CheckReport{}, fmt.Errorf("vrf %s: %w", c.dev.VRF, err)
		}
		rep.CheckedL3 += c.wanted
		rep.Drifts = append(rep.Drifts, l3Drifts(c.dev, ops)...)
	}
	// The VRFs' static routes (proto 242), as their reconciler sees them.
	for _, t := range l.tenants {
		if t.statics == nil || (vni != 0 && !tenantHasVNI(t, vni)) {
			continue
		}
		wanted, drifts, err := t.statics.Check()
		if err != nil {
			return api.CheckReport{}, fmt.Errorf("vrf %s: static routes: %w", t.cfg.Name, err)
		}
		rep.CheckedL3 += wanted
		for _, dr := range drifts {
			rep.Drifts = append(rep.Drifts, api.Drift{Kind: apiDriftKind(dr.Kind), VRF: t.cfg.Name, Table: "static-route",
				Entry: dr.Op.Route.Prefix.String(), Detail: dr.Op.String()})
		}
	}
	return rep, nil
}

func apiDriftKind(k fib.DriftKind) api.DriftKind {
	switch k {
	case fib.DriftMissing:
		return api.DriftMissing
	case fib.DriftExtra:
		return api.DriftExtra
	}
	return api.DriftWrong
}
