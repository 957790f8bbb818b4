package daemon

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/cmd/evpnd/internal/metrics"
	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/speaker/evpn"
)

// loopCostLeaf is a leaf with vnis L2VNIs and macs remote MACs spread over
// them from 10 VTEPs (each VTEP on every flood list), plus one local MAC
// in 100 and a few duplicates: the state a scrape or `show evpn vni` reads.
func loopCostLeaf(tb testing.TB, vnis, macs int) *leaf {
	cfg := &configs.Config{RouterID: netip.MustParseAddr("10.0.0.1"), ASN: 65000, VTEPIP: netip.MustParseAddr("10.0.0.1")}
	for i := range vnis {
		v := uint32(100 + i)
		cfg.L2VNIs = append(cfg.L2VNIs, configs.L2VNI{VNI: v, VXLANDevice: fmt.Sprintf("vxlan%d", v), Bridge: fmt.Sprintf("br%d", v)})
	}
	cfg.ApplyDefaults()
	d := &Daemon{cfg: cfg}
	l := &leaf{d: d}
	l.table = evpn.NewTable(evpn.Options{LocalVTEP: cfg.VTEPIP, RouterID: cfg.RouterID, DupMoves: 2, DupWindow: time.Hour}, d.importRules())
	now := time.Unix(0, 0)
	for i := range macs {
		v := uint32(100 + i%vnis)
		vt := netip.AddrFrom4([4]byte{10, 0, 1, byte(10 + i%10)})
		mac := evpn.MAC{2, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
		l.table.Update(evpn.LocalMACRoute(evpn.RDFromIP(vt, uint16(v)), v, mac, vt, []evpn.RT{evpn.AutoRT(65000, v)}, 0, false), now)
		if i%100 == 0 {
			l.table.LocalAdd(v, mac, false, now) // a local learn of a remote MAC: a move
		}
	}
	for i := range vnis {
		v := uint32(100 + i)
		for j := range 10 {
			vt := netip.AddrFrom4([4]byte{10, 0, 1, byte(10 + j)})
			l.table.Update(&evpn.Route{Key: evpn.Key{Type: evpn.RouteTypeIMET, RD: evpn.RDFromIP(vt, uint16(v)), IP: vt},
				NextHop: vt, RTs: []evpn.RT{evpn.AutoRT(65000, v)}, Encap: evpn.TunnelTypeVXLAN,
				PMSI: &evpn.PMSI{Type: evpn.PMSIIngressReplication, Label: v, Endpoint: vt}}, now)
		}
	}
	return l
}

// vniRowsByWalk is how vniRows counted before the table kept counts: a
// walk of every MAC per call. Kept here as the benchmark's baseline and
// the reference of the equality test.
func (l *leaf) vniRowsByWalk() []api.VNI {
	out := l.vniRows(0)
	rows := map[uint32]*api.VNI{}
	for i := range out {
		out[i].LocalMACs, out[i].RemoteMACs, out[i].DuplicateMACs = 0, 0, 0
		rows[out[i].VNI] = &out[i]
	}
	l.table.MACs(func(mi evpn.MACInfo) bool {
		r := rows[mi.VNI]
		if r == nil {
			return true
		}
		switch {
		case mi.Local:
			r.LocalMACs++
		case mi.VTEP.IsValid():
			r.RemoteMACs++
		}
		if mi.Duplicate {
			r.DuplicateMACs++
		}
		return true
	})
	return out
}

// The VNI rows the API and metrics read agree with a walk of the table.
func TestVNIRowsCountsAgreeWithWalk(t *testing.T) {
	l := loopCostLeaf(t, 7, 5000)
	got, want := l.vniRows(0), l.vniRowsByWalk()
	if len(got) != 7 {
		t.Fatalf("%d rows, want 7", len(got))
	}
	local := 0
	for i := range got {
		g, w := got[i], want[i]
		if g.LocalMACs != w.LocalMACs || g.RemoteMACs != w.RemoteMACs || g.DuplicateMACs != w.DuplicateMACs {
			t.Errorf("vni %d: local/remote/dup %d/%d/%d, a walk gives %d/%d/%d", g.VNI,
				g.LocalMACs, g.RemoteMACs, g.DuplicateMACs, w.LocalMACs, w.RemoteMACs, w.DuplicateMACs)
		}
		local += g.LocalMACs
	}
	if local == 0 {
		t.Fatal("no local MACs counted: the fixture checks too little")
	}
	one := l.vniRows(103)
	if len(one) != 1 || one[0].RemoteMACs != want[3].RemoteMACs || len(one[0].Flood) != 10 {
		t.Fatalf("vniRows(103) = %+v, want the row of 103 with 10 flood VTEPs", one)
	}
}

// BenchmarkLoopCost measures the event-loop time of the two readers issue
// 12 named, at 100k MACs over 10 VNIs: `show evpn vni` (and GetVNI) build
// the VNI rows; a Prometheus scrape runs tableCounts. "walk" is the
// former per-call walk of every MAC, run here as the baseline.
func BenchmarkLoopCost(b *testing.B) {
	l := loopCostLeaf(b, 10, 100_000)
	b.Run("show-vni/walk", func(b *testing.B) {
		for b.Loop() {
			_ = l.vniRowsByWalk()
		}
	})
	b.Run("show-vni/counts", func(b *testing.B) {
		for b.Loop() {
			_ = l.vniRows(0)
		}
	})
	b.Run("scrape/walk", func(b *testing.B) {
		for b.Loop() {
			var s metrics.Snapshot
			for _, r := range l.vniRowsByWalk() {
				s.VNIs = append(s.VNIs, metrics.VNICounts{VNI: r.VNI, Local: r.LocalMACs, Remote: r.RemoteMACs,
					Duplicates: r.DuplicateMACs, FloodVTEPs: len(r.Flood)})
			}
		}
	})
	b.Run("scrape/counts", func(b *testing.B) {
		for b.Loop() {
			var s metrics.Snapshot
			l.tableCounts(&s)
		}
	})
}
