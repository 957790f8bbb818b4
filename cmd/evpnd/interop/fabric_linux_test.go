package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/evpnd/evpnd/containerlab/frr"
	"github.com/evpnd/evpnd/containerlab/lab"
	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/evpnd/evpnd/containerlab/poll"
)

var prefixSeq atomic.Int64

// fabric is a deployed interop topology: evpnd runs as the cmd of its
// nodes, FRR is started by the test in the nodes bound to FRR configs.
type fabric struct {
	t   *testing.T
	lab *lab.Lab
	frr map[string]*frrNode
}

// deploy brings up testdata/<file>: namespaces, links and exec commands,
// then the nodes labelled interop.start-first (the route reflector), which
// must listen on port 179 before the others start, then every other node
// in file order. Everything is stopped by PID and removed in t.Cleanup,
// and on failure the logs, FRR's tables and the FDBs are logged first.
func deploy(t *testing.T, file string) *fabric {
	t.Helper()
	u := requireFRR(t)
	sweepLeftovers(t)
	bin := evpndBinDir(t)
	topo, err := lab.Load(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Warnings) > 0 {
		t.Fatalf("%s: %s", file, strings.Join(topo.Warnings, "; "))
	}
	// Leftovers of a crashed run are recognisable by "evt-iop-".
	prefix := fmt.Sprintf("evt-iop-%d-%d", os.Getpid(), prefixSeq.Add(1))
	t.Cleanup(func() { assertNoNamespaces(t, prefix) })
	l, err := lab.Deploy(context.Background(), topo, lab.Options{
		Prefix:    prefix,
		WorkDir:   t.TempDir(),
		Path:      []string{bin},
		NoStart:   true,
		StopGrace: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fabric{t: t, lab: l, frr: map[string]*frrNode{}}
	// Cleanups run last in, first out: dump, stop FRR, destroy the lab
	// (which stops evpnd by PID), check no namespace is left.
	t.Cleanup(func() {
		if err := l.Destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	t.Cleanup(func() {
		for _, fn := range f.frr {
			if err := fn.stop(); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	t.Cleanup(f.dumpOnFailure)

	var first, rest []*lab.Node
	for _, n := range topo.Nodes {
		switch {
		case n.Labels["interop.start-first"] == "true":
			first = append(first, n)
		case n.Cmd != "" || n.Labels["interop.frr"] != "":
			rest = append(rest, n)
		}
	}
	for _, n := range first {
		f.start(n, u)
	}
	for _, n := range first {
		f.waitListening(n.Name, 179)
	}
	for _, n := range rest {
		f.start(n, u)
	}
	return f
}

func (f *fabric) start(n *lab.Node, u *user.User) {
	f.t.Helper()
	if n.Labels["interop.frr"] != "" {
		fn, err := startFRR(f.lab, n.Name, u)
		if fn != nil {
			f.frr[n.Name] = fn
		}
		if err != nil {
			f.t.Fatal(err)
		}
		return
	}
	if err := f.lab.Start(n.Name); err != nil {
		f.t.Fatal(err)
	}
}

// pid returns the PID of the process that owns node's BGP listener: bgpd
// for an FRR node, evpnd otherwise.
func (f *fabric) pid(node string) int {
	if fn := f.frr[node]; fn != nil {
		return fn.bgpdPID()
	}
	return f.lab.PID(node)
}

// waitListening waits until node's BGP speaker listens on TCP port, read
// from /proc/PID/net/tcp, which shows the process's own namespace.
func (f *fabric) waitListening(node string, port int) {
	f.t.Helper()
	want := fmt.Sprintf(":%04X", port)
	waitFor(f.t, 15*time.Second, node+" listening on port "+strconv.Itoa(port), func() (bool, string) {
		pid := f.pid(node)
		if pid == 0 {
			exited, err := f.lab.Exited(node)
			f.t.Fatalf("%s is not running (exited %v: %v)", node, exited, err)
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
		if err != nil {
			return false, err.Error()
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fl := strings.Fields(line)
			// sl local_address rem_address st ...; 0A is TCP_LISTEN.
			if len(fl) > 3 && strings.HasSuffix(fl[1], want) && fl[3] == "0A" {
				return true, ""
			}
		}
		return false, "no listener in /proc/" + strconv.Itoa(pid) + "/net/tcp"
	})
}

// exec runs argv in node and fails the test when it fails.
func (f *fabric) exec(node string, argv ...string) string {
	f.t.Helper()
	out, err := f.lab.Exec(context.Background(), node, argv...)
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// ping waits until one echo request from node to ip is answered.
func (f *fabric) ping(node, ip string) {
	f.t.Helper()
	waitFor(f.t, 20*time.Second, node+" to ping "+ip, func() (bool, string) {
		out, err := f.lab.Exec(context.Background(), node, "ping", "-c1", "-W1", "-n", ip)
		if err != nil {
			return false, strings.TrimSpace(out)
		}
		return true, ""
	})
}

// fdbEntry is one bridge or VXLAN FDB entry on a device, as netlink
// reports it.
type fdbEntry struct {
	MAC    string
	Dst    netip.Addr // the remote VTEP of a VXLAN entry
	Self   bool       // NTF_SELF: the VXLAN device's own table
	Master bool       // the bridge's table
	Extern bool       // NTF_EXT_LEARNED
	Perm   bool       // NUD_PERMANENT
}

func (e fdbEntry) String() string {
	s := e.MAC
	if e.Dst.IsValid() {
		s += " dst " + e.Dst.String()
	}
	for _, fl := range []struct {
		on   bool
		name string
	}{{e.Self, "self"}, {e.Master, "master"}, {e.Extern, "extern_learn"}, {e.Perm, "permanent"}} {
		if fl.on {
			s += " " + fl.name
		}
	}
	return s
}

// fdb lists the FDB entries on dev in node, retrying interrupted dumps.
func (f *fabric) fdb(node, dev string) ([]fdbEntry, error) {
	ns := f.lab.Node(node)
	if ns == nil {
		return nil, fmt.Errorf("no node %s", node)
	}
	h, err := ns.Handle()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	link, err := h.LinkByName(dev)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", node, dev, err)
	}
	var neighs []netlink.Neigh
	for range 5 {
		neighs, err = h.NeighList(link.Attrs().Index, unix.AF_BRIDGE)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: fdb dump of %s: %w", node, dev, err)
	}
	var out []fdbEntry
	for _, n := range neighs {
		e := fdbEntry{
			MAC:  n.HardwareAddr.String(),
			Self: n.Flags&netlink.NTF_SELF != 0,
			// A dump reports the bridge's entries with NDA_MASTER, not
			// with the NTF_MASTER request flag.
			Master: n.MasterIndex != 0 || n.Flags&netlink.NTF_MASTER != 0,
			Extern: n.Flags&netlink.NTF_EXT_LEARNED != 0,
			Perm:   n.State&netlink.NUD_PERMANENT != 0,
		}
		if ip4 := n.IP.To4(); ip4 != nil {
			e.Dst = netip.AddrFrom4([4]byte(ip4))
		}
		out = append(out, e)
	}
	return out, nil
}

// remoteMAC reports whether the entries point mac at vtep as a remote MAC
// is programmed (DESIGN §4): a VXLAN entry with the VTEP and a bridge entry
// for the VXLAN port, both extern_learn.
func remoteMAC(entries []fdbEntry, mac string, vtep netip.Addr) bool {
	var self, master bool
	for _, e := range entries {
		if e.MAC != mac || !e.Extern {
			continue
		}
		self = self || (e.Self && e.Dst == vtep)
		master = master || e.Master
	}
	return self && master
}

// hasMAC reports whether any entry is for mac.
func hasMAC(entries []fdbEntry, mac string) bool {
	for _, e := range entries {
		if e.MAC == mac {
			return true
		}
	}
	return false
}

// floodsTo reports whether the VXLAN device floods BUM traffic to vtep:
// an all-zero MAC entry with that destination.
func floodsTo(entries []fdbEntry, vtep netip.Addr) bool {
	zero := net.HardwareAddr(make([]byte, 6)).String()
	for _, e := range entries {
		if e.MAC == zero && e.Self && e.Dst == vtep {
			return true
		}
	}
	return false
}

func formatFDB(entries []fdbEntry) string {
	var b strings.Builder
	for _, e := range entries {
		b.WriteString("\n\t" + e.String())
	}
	return b.String()
}

// waitFDB waits until cond holds for the FDB of dev in node, and returns
// how long that took.
func (f *fabric) waitFDB(node, dev, what string, cond func([]fdbEntry) bool) time.Duration {
	f.t.Helper()
	return waitFor(f.t, 15*time.Second, node+" "+dev+": "+what, func() (bool, string) {
		es, err := f.fdb(node, dev)
		if err != nil {
			return false, err.Error()
		}
		return cond(es), "fdb:" + formatFDB(es)
	})
}

// waitRoutes waits until check passes on FRR's EVPN table in node
// ("show bgp l2vpn evpn route detail json") and returns that table and its
// JSON.
func (f *fabric) waitRoutes(node, what string, check func(evpnTable) error) (evpnTable, []byte) {
	f.t.Helper()
	fn := f.frr[node]
	var (
		table evpnTable
		raw   []byte
	)
	waitFor(f.t, 15*time.Second, node+": "+what, func() (bool, string) {
		out, err := fn.vtysh("show bgp l2vpn evpn route detail json")
		if err != nil {
			return false, err.Error()
		}
		raw = []byte(out)
		if table, err = parseEVPNTable(raw); err != nil {
			return false, err.Error()
		}
		if err := check(table); err != nil {
			return false, err.Error() + "\n" + out
		}
		return true, ""
	})
	return table, raw
}

// waitPeers waits until FRR's l2vpn-evpn summary in node shows every peer
// Established with prefixes received, and returns the summary's JSON.
func (f *fabric) waitPeers(node string, peers ...string) []byte {
	f.t.Helper()
	var raw []byte
	waitFor(f.t, 15*time.Second, node+": peers "+strings.Join(peers, ", ")+" established", func() (bool, string) {
		out, err := f.frr[node].vtysh("show bgp l2vpn evpn summary json")
		if err != nil {
			return false, err.Error()
		}
		raw = []byte(out)
		var s bgpSummary
		if err := json.Unmarshal(raw, &s); err != nil {
			return false, err.Error() + "\n" + out
		}
		if err := s.checkPeers(peers...); err != nil {
			return false, err.Error() + "\n" + out
		}
		return true, ""
	})
	return raw
}

// zebraMAC returns what FRR's zebra in node knows about mac in VNI 100.
func (f *fabric) zebraMAC(node, mac string) (zebraMAC, error) {
	var m map[string]zebraMAC
	if err := f.frr[node].vtyJSON("show evpn mac vni 100 mac "+mac+" json", &m); err != nil {
		return zebraMAC{}, err
	}
	z, ok := m[mac]
	if !ok {
		return zebraMAC{}, fmt.Errorf("%s: zebra does not know MAC %s", node, mac)
	}
	return z, nil
}

// logShow logs FRR's answer to each command in node.
func (f *fabric) logShow(node string, commands ...string) {
	f.t.Helper()
	for _, c := range commands {
		out, err := f.frr[node].vtysh(c)
		if err != nil {
			out = err.Error()
		}
		f.t.Logf("%s# %s\n%s", node, c, out)
	}
}

// rewriteGolden replaces testdata/name with data when the test runs with
// -rewrite, so that the parser's unit tests follow the installed FRR.
func (f *fabric) rewriteGolden(name string, data []byte) {
	f.t.Helper()
	if !*rewrite {
		return
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, bytes.TrimSpace(data), "", "  "); err != nil {
		f.t.Fatal(err)
	}
	pretty.WriteByte('\n')
	if err := os.WriteFile(filepath.Join("testdata", name), pretty.Bytes(), 0o644); err != nil {
		f.t.Fatal(err)
	}
	f.t.Logf("rewrote testdata/%s", name)
}

// waitFor polls cond every 25 ms until it holds, or fails the test after
// timeout with cond's last description of the state.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	d, err := poll.Until(context.Background(), timeout, 25*time.Millisecond, func() error {
		if ok, state := cond(); !ok {
			return fmt.Errorf("last state: %s", state)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return d
}

// dumpOnFailure logs what a reader needs to see why a test failed:
// FRR's tables and logs, evpnd's logs and every leaf's FDB.
func (f *fabric) dumpOnFailure() {
	t := f.t
	if !t.Failed() {
		return
	}
	for _, n := range f.lab.Topology().Nodes {
		if fn := f.frr[n.Name]; fn != nil {
			for _, c := range []string{
				"show bgp l2vpn evpn summary",
				"show bgp l2vpn evpn",
				"show bgp l2vpn evpn route detail",
				"show evpn vni detail",
				"show evpn mac vni all",
			} {
				out, err := fn.vtysh(c)
				if err != nil {
					out = err.Error()
				}
				t.Logf("%s# %s\n%s", n.Name, c, out)
			}
			for _, d := range fn.Daemons {
				t.Logf("%s", fn.LogTail(d.Name, 150))
			}
		} else if n.Cmd != "" {
			t.Logf("--- %s evpnd log (last 150 lines)\n%s", n.Name, frr.TailFile(f.lab.LogPath(n.Name), 150))
		}
		if f.lab.Node(n.Name) != nil && (n.Cmd != "" || n.Labels["interop.frr"] == "leaf") && n.Labels["evpnd.role"] != "route-reflector" {
			out, err := f.lab.Exec(context.Background(), n.Name, "bridge", "fdb", "show")
			if err != nil {
				out = err.Error()
			}
			t.Logf("%s$ bridge fdb show\n%s", n.Name, out)
		}
	}
}

// assertNoNamespaces fails the test if a namespace of the lab survived
// Destroy, and removes it.
func assertNoNamespaces(t *testing.T, prefix string) {
	t.Helper()
	ents, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Error(err)
		return
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix+"-") {
			t.Errorf("namespace %s left behind", e.Name())
			_ = netns.Delete(e.Name())
		}
	}
}
