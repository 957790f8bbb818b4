package vtep

import (
	"testing"

	"github.com/vishvananda/netlink"
)

// BenchmarkNeighDeserialize is what the learner did before for every
// notification, the VXLAN port's included: decode it with
// netlink.NeighDeserialize, then classify it. Compare with
// BenchmarkNeighFilter/vxlan-port-dropped.
func BenchmarkNeighDeserialize(b *testing.B) {
	msg := neighMsg(afBridge, 11, 0x02, ntfExtLearned, "02:00:00:00:00:02", 10, 0)
	b.ReportAllocs()
	for b.Loop() {
		n, err := netlink.NeighDeserialize(msg)
		if err != nil {
			b.Fatal(err)
		}
		u := fdbUpdate{Family: n.Family, LinkIndex: n.LinkIndex, MasterIndex: n.MasterIndex, MAC: n.HardwareAddr, State: n.State, Flags: n.Flags, FlagsExt: n.FlagsExt}
		if o, ok := classify(u, fakeResolver{}); !ok || o.Local != nil {
			b.Fatal("remote entry is local")
		}
	}
}
