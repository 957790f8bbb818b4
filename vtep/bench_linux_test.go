package vtep

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/vishvananda/netlink"
)

const benchVNIs = 1024

func benchSpecs() []L2VNI {
	vnis := make([]L2VNI, benchVNIs)
	for i := range vnis {
		vnis[i] = vniSpec(uint32(10000 + i))
	}
	return vnis
}

func benchNS(b *testing.B) (*netns.NS, *netlink.Handle) {
	b.Helper()
	ns := netns.ForTest(b, "vtb")
	h, err := ns.Handle()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.Close)
	return ns, h
}

// BenchmarkEnsure1024 creates the devices of 1,024 L2VNIs (bridge + VXLAN,
// both up, no IPv6 link-local) in a fresh namespace, then runs Ensure again
// over them (adoption: observe, plan, nothing to do), and compares with
// iproute2 -batch doing the same creation. Run with -benchtime=1x.
func BenchmarkEnsure1024(b *testing.B) {
	netns.RequireLinkKind(b, "vxlan")
	netns.RequireLinkKind(b, "bridge")
	vnis := benchSpecs()
	ctx := context.Background()

	b.Run("evpnd-create", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			ns, h := benchNS(b)
			m := NewManager(h, nsHandle(b, ns), nil)
			b.StartTimer()
			if err := m.Ensure(ctx, vnis); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
		}
	})
	b.Run("evpnd-adopt", func(b *testing.B) {
		b.StopTimer()
		ns, h := benchNS(b)
		m := NewManager(h, nsHandle(b, ns), nil)
		if err := m.Ensure(ctx, vnis); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for range b.N {
			if err := m.Ensure(ctx, vnis); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("iproute2-batch-create", func(b *testing.B) {
		var create, flags, up strings.Builder
		for _, v := range vnis {
			fmt.Fprintf(&create, "link add %s type bridge\nlink set %s addrgenmode none\n", v.Bridge, v.Bridge)
			fmt.Fprintf(&create, "link add %s type vxlan id %d local %s dstport 4789 nolearning\nlink set %s addrgenmode none\n", v.VXLAN, v.VNI, v.Local, v.VXLAN)
			fmt.Fprintf(&create, "link set %s master %s\n", v.VXLAN, v.Bridge)
			fmt.Fprintf(&flags, "link set dev %s learning off neigh_suppress on\n", v.VXLAN)
			fmt.Fprintf(&up, "link set %s up\nlink set %s up\n", v.VXLAN, v.Bridge)
		}
		dir := b.TempDir()
		var steps [][]string
		for _, f := range []struct {
			tool string
			text *strings.Builder
		}{{"ip", &create}, {"bridge", &flags}, {"ip", &up}} {
			file := filepath.Join(dir, fmt.Sprint(len(steps)))
			if err := os.WriteFile(file, []byte(f.text.String()), 0o644); err != nil {
				b.Fatal(err)
			}
			steps = append(steps, []string{f.tool, "-batch", file})
		}
		for range b.N {
			b.StopTimer()
			ns, _ := benchNS(b)
			b.StartTimer()
			// Port flags go through bridge(8): "ip link set X type
			// bridge_slave ..." costs ~20 ms a call.
			for _, argv := range steps {
				if out, err := ns.Exec(ctx, argv...); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
			}
			b.StopTimer()
		}
	})
}
