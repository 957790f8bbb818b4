package fib

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// labNS is a namespace with one bridge+VXLAN pair per VNI, as vtep/ would
// build them (DESIGN §4).
type labNS struct {
	ns *netns.NS
	h  *netlink.Handle
}

func newLab(tb testing.TB, prefix string, vnis ...uint32) *labNS {
	tb.Helper()
	netns.RequireLinkKind(tb, "vxlan")
	ns := netns.ForTest(tb, prefix)
	h, err := ns.Handle()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.Close)
	l := &labNS{ns: ns, h: h}
	for _, v := range vnis {
		l.addVNI(tb, v)
	}
	return l
}

func (l *labNS) addVNI(tb testing.TB, vni uint32) {
	tb.Helper()
	d := vniDevs(vni)
	l.run(tb,
		[]string{"ip", "link", "add", d.Bridge, "type", "bridge"},
		[]string{"ip", "link", "add", d.VXLAN, "type", "vxlan", "id", fmt.Sprint(vni), "local", "10.0.0.1", "dstport", "4789", "nolearning"},
		[]string{"ip", "link", "set", d.VXLAN, "master", d.Bridge},
		[]string{"bridge", "link", "set", "dev", d.VXLAN, "learning", "off"},
		[]string{"ip", "link", "set", d.Bridge, "up"},
		[]string{"ip", "link", "set", d.VXLAN, "up"},
	)
}

func (l *labNS) run(tb testing.TB, cmds ...[]string) string {
	tb.Helper()
	var out strings.Builder
	for _, c := range cmds {
		o, err := l.ns.Exec(context.Background(), c...)
		if err != nil {
			tb.Fatal(err)
		}
		out.WriteString(o)
	}
	return out.String()
}

func (l *labNS) kernel(tb testing.TB) *NetlinkKernel {
	tb.Helper()
	nsh, err := vnetns.GetFromPath(l.ns.Path())
	if err != nil {
		tb.Fatal(err)
	}
	defer nsh.Close()
	k, err := NewNetlinkKernel(nsh)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { k.Close() })
	return k
}

// fdbShow returns `bridge fdb show dev DEV` as trimmed lines.
func (l *labNS) fdbShow(tb testing.TB, dev string) []string {
	tb.Helper()
	out := l.run(tb, []string{"bridge", "fdb", "show", "dev", dev})
	var lines []string
	for _, s := range strings.Split(out, "\n") {
		if s = strings.TrimSpace(s); s != "" {
			lines = append(lines, s)
		}
	}
	return lines
}

func hasLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func linesFor(lines []string, mac string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, mac+" ") {
			out = append(out, l)
		}
	}
	return out
}

// neighs reads the bridge FDB of dev through netlink.
func (l *labNS) neighs(tb testing.TB, dev string) []netlink.Neigh {
	tb.Helper()
	link, err := l.h.LinkByName(dev)
	if err != nil {
		tb.Fatal(err)
	}
	var ns []netlink.Neigh
	for range 5 {
		ns, err = l.h.NeighList(link.Attrs().Index, unix.AF_BRIDGE)
		if err == nil {
			return ns
		}
	}
	tb.Fatalf("neigh list %s: %v", dev, err)
	return nil
}

func testLogger(tb testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
