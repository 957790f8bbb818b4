package daemon

import (
	"context"
	"testing"

	vnetns "github.com/vishvananda/netns"

	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/evpnd/evpnd/fib"
	"github.com/evpnd/evpnd/vtep"
)

// Issue 8.4g: a restart is detected on devices evpnd did not create (no
// owner alias), from the extern_learn entries its fib left on them.
func TestRestartDetectedOnAdoptedDevices(t *testing.T) {
	netns.RequireLinkKind(t, "vxlan")
	ns := netns.ForTest(t, "rst")
	ctx := context.Background()
	for _, c := range [][]string{
		{"ip", "link", "add", "br10", "type", "bridge"},
		{"ip", "link", "add", "vx10", "type", "vxlan", "id", "10", "local", "10.0.0.1", "dstport", "4789", "nolearning"},
		{"ip", "link", "set", "vx10", "master", "br10"},
		{"ip", "link", "set", "br10", "up"},
		{"ip", "link", "set", "vx10", "up"},
		// What the bridge or an administrator adds is no mark.
		{"bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx10", "dst", "10.0.0.3", "self"},
		{"bridge", "fdb", "add", "02:00:00:00:00:08", "dev", "vx10", "dst", "10.0.0.3", "self"},
	} {
		if out, err := ns.Exec(ctx, c...); err != nil {
			t.Fatalf("%v: %v: %s", c, err, out)
		}
	}
	h, err := ns.Handle()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nsh, err := vnetns.GetFromPath(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	k, err := fib.NewNetlinkKernel(nsh)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	vnis := []configs.L2VNI{{VNI: 10, VXLANDevice: "vx10", Bridge: "br10"}}

	if ok, why := restartMark(ctx, vtep.NodeOf(h), k, vnis); ok {
		t.Fatalf("fresh adopted devices taken for a restart (%s)", why)
	}
	// An entry evpnd's fib writes: extern_learn, towards a remote VTEP.
	if out, err := ns.Exec(ctx, "bridge", "fdb", "add", "02:00:00:00:00:09", "dev", "vx10", "dst", "10.0.0.2", "self", "extern_learn"); err != nil {
		t.Fatalf("add extern_learn entry: %v: %s", err, out)
	}
	ok, why := restartMark(ctx, vtep.NodeOf(h), k, vnis)
	if !ok {
		t.Fatal("restart not detected on devices without evpnd's owner alias that hold evpnd's extern_learn entries")
	}
	t.Logf("detected: %s", why)
	// A device missing altogether (not created yet) is no restart either.
	if ok, why := restartMark(ctx, vtep.NodeOf(h), k, []configs.L2VNI{{VNI: 20, VXLANDevice: "vx20", Bridge: "br20"}}); ok {
		t.Fatalf("restart on a missing device (%s)", why)
	}
}
