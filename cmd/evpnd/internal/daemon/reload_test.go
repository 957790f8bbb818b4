package daemon

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
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

// reloadNeighbors removes, adds and re-adds (changed) static neighbours
// on a real speaker, and says so.
func TestReloadNeighbors(t *testing.T) {
	a := startSpeaker(t, "127.0.0.161", netip.MustParseAddr("10.0.0.1"))
	ctx := context.Background()
	d := &Daemon{log: testLog()}
	d.srv.Store(a.srv)
	n := func(addr, desc string) configs.Neighbor {
		return configs.Neighbor{Address: netip.MustParseAddr(addr), ASN: 65000, Port: 1179, Description: desc}
	}
	cur := &configs.Config{ASN: 65000, Neighbors: []configs.Neighbor{n("127.0.0.171", "x"), n("127.0.0.172", "gone")}}
	for _, nb := range cur.Neighbors {
		if err := a.srv.AddNeighbor(ctx, d.speakerNeighbor(cur, nb)); err != nil {
			t.Fatal(err)
		}
	}
	target := &configs.Config{ASN: 65000, Neighbors: []configs.Neighbor{n("127.0.0.173", "new"), n("127.0.0.171", "y")}}
	var applied, failed []string
	got := d.reloadNeighbors(ctx, cur, target,
		func(f string, a ...any) { applied = append(applied, fmt.Sprintf(f, a...)) },
		func(f string, a ...any) { failed = append(failed, fmt.Sprintf(f, a...)) })
	want := []string{"neighbor 127.0.0.172 removed", "neighbor 127.0.0.173 AS 65000 added", "neighbor 127.0.0.171 AS 65000 changed (session reset)"}
	if !slices.Equal(applied, want) || len(failed) > 0 {
		t.Errorf("applied %q failed %q, want %q", applied, failed, want)
	}
	if len(got) != 2 || got[0].Address != target.Neighbors[0].Address || got[1].Description != "y" {
		t.Errorf("neighbours in force: %+v, want target's, in its order", got)
	}
	ps, err := a.srv.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	descs := map[string]string{}
	for _, p := range ps {
		descs[p.Address.String()] = p.Description
	}
	if len(ps) != 2 || descs["127.0.0.171"] != "y" || descs["127.0.0.173"] != "new" {
		t.Errorf("speaker's peers after the reload: %v", descs)
	}
}
