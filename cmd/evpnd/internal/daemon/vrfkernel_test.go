package daemon

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// refusingL3 is an empty kernel that accepts every op but routes, which
// it refuses when refuseRoutes is set.
type refusingL3 struct{ refuseRoutes bool }

func (refusingL3) Dump(context.Context, fib.L3Devices, ...fib.L3Kind) (fib.L3State, error) {
	return fib.L3State{}, nil
}

func (k refusingL3) Apply(_ context.Context, _ fib.L3Devices, ops []fib.L3Op) []error {
	errs := make([]error, len(ops))
	for i, op := range ops {
		if k.refuseRoutes && op.Route != nil {
			errs[i] = errors.New("refused")
		}
	}
	return errs
}

// Status's VRF kernel state: per tenant, sorted by name, whether its L3
// reconciler has the kernel in sync and, per kind, what is installed of
// what is wanted and what waits for a retry.
func TestVRFKernelStatus(t *testing.T) {
	ctx := context.Background()
	l := &leaf{d: &Daemon{}}
	for _, c := range []struct {
		name    string
		l3vni   uint32
		refuse  bool
		wantErr bool
	}{{"red", 4002, true, true}, {"blue", 4001, false, false}} {
		dev := fib.L3Devices{VRF: c.name, L3VNI: c.l3vni, Table: fib.MainTable, SVI: "br", VXLAN: "vx"}
		d := fib.NewL3Desired(dev)
		if err := d.SetHost(netip.MustParseAddr("10.1.0.20"), fib.NextHop{VTEP: netip.MustParseAddr("10.0.0.2"), RouterMAC: evpn.MAC{2, 0, 0, 0, 0, 2}}); err != nil {
			t.Fatal(err)
		}
		r := fib.NewL3Reconciler(d, refusingL3{c.refuse}, nil)
		r.MarkSynced()
		if _, err := r.Sync(ctx); (err != nil) != c.wantErr {
			t.Fatalf("%s: sync: %v", c.name, err)
		}
		l.tenants = append(l.tenants, &tenant{cfg: configs.VRF{Name: c.name, L3VNI: c.l3vni}, l3rec: r})
	}
	l.tenants = append(l.tenants, &tenant{cfg: configs.VRF{Name: "starting"}}) // no reconciler yet: left out

	got := l.vrfKernel()
	if len(got) != 2 || got[0].VRF != "blue" || got[1].VRF != "red" {
		t.Fatalf("vrfKernel() = %+v, want blue then red", got)
	}
	kind := func(v api.VRFKernel, k string) api.VRFKernelKind {
		for _, x := range v.Kinds {
			if x.Kind == k {
				return x
			}
		}
		t.Fatalf("%s: no kind %s in %+v", v.VRF, k, v.Kinds)
		return api.VRFKernelKind{}
	}
	blue, red := got[0], got[1]
	if !blue.InSync || blue.L3VNI != 4001 {
		t.Errorf("blue: %+v, want in sync", blue)
	}
	for _, k := range []string{"rmac", "neigh", "route"} {
		if x := kind(blue, k); x.Installed != 1 || x.Wanted != 1 || x.Pending != 0 || x.Errors != 0 {
			t.Errorf("blue %s: %+v, want 1 of 1 installed", k, x)
		}
	}
	if red.InSync {
		t.Errorf("red: in sync with a refused route")
	}
	if x := kind(red, "route"); x.Installed != 0 || x.Wanted != 1 || x.Pending != 1 || x.Errors < 1 {
		t.Errorf("red route: %+v, want 0 of 1 installed, 1 pending", x)
	}
	if x := kind(red, "rmac"); x.Installed != 1 || x.Pending != 0 {
		t.Errorf("red rmac: %+v, want installed", x)
	}

	// Status's VRFs carry it, each on its own VRF.
	l.d.live.Store(&configs.Config{Role: configs.RoleLeaf, VRFs: []configs.VRF{{Name: "red", L3VNI: 4002}, {Name: "blue", L3VNI: 4001}}})
	l.d.leaf.Store(l)
	states := l.d.vrfStates(ctx, l.d.config())
	if len(states) != 2 {
		t.Fatalf("Status VRFs %+v, want 2", states)
	}
	for _, v := range states {
		want := map[string]bool{"blue": true, "red": false}[v.Name]
		if v.KernelInSync != want || len(v.Kernel) != 3 {
			t.Errorf("Status VRF %s: kernel in sync %v (want %v), kinds %+v", v.Name, v.KernelInSync, want, v.Kernel)
		}
	}
}
