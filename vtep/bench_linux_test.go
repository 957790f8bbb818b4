package vtep

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/vishvananda/netlink"
)

// benchVNIs is the number of VNIs of BenchmarkEnsure: 1,024, or
// VTEP_BENCH_VNIS.
func benchVNIs() int {
	if n, err := strconv.Atoi(os.Getenv("VTEP_BENCH_VNIS")); err == nil && n > 0 {
		return n
	}
	return 1024
}

func benchSpecs() []L2VNI {
	vnis := make([]L2VNI, benchVNIs())
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

// BenchmarkEnsure creates the devices of 1,024 L2VNIs (VTEP_BENCH_VNIS;
// bridge + VXLAN, both up, IPv6 off) in a fresh namespace, then runs
// Ensure again over them (adoption: observe, plan, nothing to do), and
// compares with iproute2 -batch doing the same creation, the devices'
// IPv6 either kept with addrgenmode none or off from their creation
// (net.ipv6.conf.default.disable_ipv6=1 in the benchmark's namespace).
// Run with -benchtime=1x.
func BenchmarkEnsure(b *testing.B) {
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
	for _, way := range []string{"addrgenmode-none", "ipv6-off"} {
		b.Run("iproute2-batch-create-"+way, func(b *testing.B) {
			steps := iproute2Steps(b, vnis, way == "ipv6-off")
			for range b.N {
				b.StopTimer()
				ns, _ := benchNS(b)
				b.StartTimer()
				for _, argv := range steps {
					if out, err := ns.Exec(ctx, argv...); err != nil {
						b.Fatalf("%v: %s", err, out)
					}
				}
				b.StopTimer()
			}
		})
	}
}

// iproute2Steps writes the iproute2 -batch files that create vnis' devices
// and returns the commands that run them: with ipv6Off, IPv6 is turned
// off on the devices from their creation (the namespace's default is set
// for the time of the creation), else their address generation is off.
func iproute2Steps(b *testing.B, vnis []L2VNI, ipv6Off bool) [][]string {
	var create, flags, up strings.Builder
	for _, v := range vnis {
		if ipv6Off {
			fmt.Fprintf(&create, "link add %s type bridge\n", v.Bridge)
			fmt.Fprintf(&create, "link add %s type vxlan id %d local %s dstport 4789 nolearning\n", v.VXLAN, v.VNI, v.Local)
		} else {
			fmt.Fprintf(&create, "link add %s type bridge\nlink set %s addrgenmode none\n", v.Bridge, v.Bridge)
			fmt.Fprintf(&create, "link add %s type vxlan id %d local %s dstport 4789 nolearning\nlink set %s addrgenmode none\n", v.VXLAN, v.VNI, v.Local, v.VXLAN)
		}
		fmt.Fprintf(&create, "link set %s master %s\n", v.VXLAN, v.Bridge)
		fmt.Fprintf(&flags, "link set dev %s learning off neigh_suppress on\n", v.VXLAN)
		fmt.Fprintf(&up, "link set %s up\nlink set %s up\n", v.VXLAN, v.Bridge)
	}
	dir := b.TempDir()
	var steps [][]string
	if ipv6Off {
		steps = append(steps, []string{"sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"})
	}
	for _, f := range []struct {
		tool string
		text *strings.Builder
	}{{"ip", &create}, {"bridge", &flags}, {"ip", &up}} {
		file := filepath.Join(dir, fmt.Sprint(len(steps)))
		if err := os.WriteFile(file, []byte(f.text.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		// Port flags go through bridge(8): "ip link set X type
		// bridge_slave ..." costs ~20 ms a call.
		steps = append(steps, []string{f.tool, "-batch", file})
		if ipv6Off && f.tool == "ip" && len(steps) == 2 {
			steps = append(steps, []string{"sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=0"})
		}
	}
	return steps
}
