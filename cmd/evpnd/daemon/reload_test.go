package daemon

import (
	"maps"
	"slices"
	"testing"

	"github.com/evpnd/evpnd/configs"
)

// planVNIs stops the removed and changed VNIs and starts the new and
// changed ones; an unchanged VNI, listed in another order, is left alone.
func TestPlanVNIs(t *testing.T) {
	cfg := func(vs ...configs.L2VNI) *configs.Config {
		c := &configs.Config{ASN: 65000, L2VNIs: vs}
		c.ApplyDefaults()
		return c
	}
	cur := cfg(configs.L2VNI{VNI: 100, AccessInterfaces: []string{"eth1"}}, configs.L2VNI{VNI: 200}, configs.L2VNI{VNI: 300, MTU: 1450})
	next := cfg(configs.L2VNI{VNI: 300, MTU: 1400}, configs.L2VNI{VNI: 400}, configs.L2VNI{VNI: 100, AccessInterfaces: []string{"eth1"}})
	p := planVNIs(cur, next)
	keys := func(m map[uint32]bool) []uint32 { return slices.Sorted(maps.Keys(m)) }
	if got := keys(p.stop); !slices.Equal(got, []uint32{200, 300}) {
		t.Errorf("stop %v, want 200 (removed) and 300 (changed)", got)
	}
	if got := keys(p.start); !slices.Equal(got, []uint32{300, 400}) {
		t.Errorf("start %v, want 300 (changed) and 400 (new)", got)
	}
	if p := planVNIs(cur, cur); len(p.stop)+len(p.start) != 0 {
		t.Errorf("same config: %+v, want nothing to do", p)
	}
}
