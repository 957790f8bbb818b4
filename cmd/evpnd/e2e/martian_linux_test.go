package e2e

import (
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/netns"
	"github.com/evpnd/evpnd/speaker/bgptest"
)

// martianLog is what evpnd logs, rate-limited, for a route naming a VTEP
// no tunnel can reach.
const martianLog = "it names a VTEP no tunnel can reach"

// TestMartianVTEPs: a real evpnd leaf gets, from a raw BGP peer, type-2
// and type-3 routes whose VTEP (next hop, PMSI endpoint) is in 0/8,
// 127/8, 169.254/16, 224/4 or 240/4 (FRR's martian next hops), and a
// valid MAC whose next hop then turns martian. Nothing is installed
// towards any of them (no MAC, no flood entry), the MAC that turned
// martian is removed, and the log says so in a line or two, not one per
// route.
func TestMartianVTEPs(t *testing.T) {
	ns, leaf, s := startRawLeaf(t, "e2emar")
	std := [][]byte{bgptest.Encap(bgptest.TunnelVXLAN), bgptest.RT(65000, 100)} // VXLAN, auto RT of VNI 100
	mac := func(m string) []byte { return rawMACRoute(48, m, nil, 100) }
	send := func(what string, msg []byte) {
		t.Helper()
		if err := s.send(msg); err != nil {
			t.Fatalf("send %s: %v", what, err)
		}
	}

	// A valid MAC, installed; then its route names a martian next hop.
	const turned = "02:00:00:00:bb:fe"
	send("valid "+turned, rawUpdate(mac(turned), oddVTEP, std, nil))
	waitEntry(t, ns, leaf, oddMACKeys(turned)[0], nil)
	send(turned+" via 169.254.0.2", rawUpdate(mac(turned), "169.254.0.2", std, nil))

	martians := []string{"0.1.2.3", "127.0.0.2", "169.254.1.1", "224.0.0.9", "239.255.255.250", "240.0.0.1", "255.255.255.255"}
	start := time.Now()
	const n = 42
	for i := range n {
		nh := martians[i%len(martians)]
		send("type-2 via "+nh, rawUpdate(mac(fmt.Sprintf("02:00:00:00:bb:%02x", i)), nh, std, nil))
	}
	for _, ep := range []string{"169.254.0.9", "240.0.0.9", "0.0.0.9", "127.0.0.9"} {
		nlri := rawIMETRoute(ep)
		send("type-3 for "+ep, rawUpdate(nlri, oddVTEP, std, rawPMSI(ep)))
	}
	const marker = "02:00:00:00:bb:ff"
	send("marker", rawUpdate(mac(marker), oddVTEP, std, nil))
	waitEntry(t, ns, leaf, oddMACKeys(marker)[0], nil)
	took := time.Since(start)
	leaf.check(t)
	s.checkUp(t)

	// Exactly the marker's two entries: no martian MAC, no flood entry,
	// and the MAC whose next hop turned martian is gone.
	want := map[string]bool{}
	for _, k := range oddMACKeys(marker) {
		want[k] = true
	}
	eventually(t, changeTimeout, "only the marker installed", func() error {
		got, err := oddFDB(t.Context(), ns)
		if err != nil {
			return err
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("FDB %q, want %q", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
		return nil
	})

	var lines []string
	eventually(t, changeTimeout, "the martian routes logged", func() error {
		lines = lines[:0]
		for _, l := range strings.Split(leaf.log.String(), "\n") {
			if strings.Contains(l, martianLog) {
				lines = append(lines, l)
			}
		}
		if len(lines) == 0 {
			return errors.New("no log line")
		}
		return nil
	})
	// One line per 10 s at most: the routes went out within took.
	if limit := 1 + int(took/(10*time.Second)); len(lines) > limit+1 {
		t.Errorf("%d log lines for %d martian routes sent in %v, want at most %d:\n%s",
			len(lines), n+5, took, limit+1, strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		t.Log(strings.TrimSpace(l))
	}
}

// oddLeafNS makes a namespace for an evpnd leaf (testdata/odd/leaf.yaml)
// and the raw BGP speakers of a test: the leaf's and the peer's addresses
// (and the bystander's, if bystander) on lo, and the veth eth1. It skips
// the test without veth, bridge or vxlan links or the bridge command.
func oddLeafNS(t *testing.T, prefix string, bystander bool) *netns.NS {
	t.Helper()
	for _, kind := range []string{"veth", "bridge", "vxlan"} {
		netns.RequireLinkKind(t, kind)
	}
	if _, err := exec.LookPath("bridge"); err != nil {
		t.Skipf("needs bridge (iproute2) on PATH: %v", err)
	}
	ns := netns.ForTest(t, prefix)
	addrs := []string{oddLeafAddr, oddPeerAddr}
	if bystander {
		addrs = append(addrs, oddBystander)
	}
	var cmds [][]string
	for _, a := range addrs {
		cmds = append(cmds, []string{"ip", "addr", "add", a + "/32", "dev", "lo"})
	}
	cmds = append(cmds, []string{"ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"})
	for _, c := range cmds {
		if _, err := ns.Exec(t.Context(), c...); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

// startRawLeaf runs an evpnd leaf (testdata/odd/leaf.yaml) in a
// namespace of its own, peered with a raw BGP speaker of the test, and
// returns the established session.
func startRawLeaf(t *testing.T, prefix string) (*netns.NS, *oddLeaf, *rawSession) {
	t.Helper()
	ns := oddLeafNS(t, prefix, true)
	bin := evpndPath(t)
	peer := listenRawPeer(t, ns, oddPeerAddr)
	listenRawPeer(t, ns, oddBystander) // the leaf's other neighbour (testdata/odd/leaf.yaml): up, silent
	leaf := startOddLeaf(t, ns, bin)
	return ns, leaf, peer.next(t, leaf, convergeTimeout)
}

// TestRemoteStickyMACPinned: a type-2 route whose MAC mobility extended
// community has the sticky/static flag (RFC 7432 §7.7) is installed
// pinned, as FRR installs one: its bridge entry on vxlan100 is sticky
// (and still extern_learn, evpnd's mark); a movable MAC's is not.
func TestRemoteStickyMACPinned(t *testing.T) {
	ns, leaf, s := startRawLeaf(t, "e2estk")
	sticky := []byte{0x06, 0x00, 0x01, 0, 0, 0, 0, 0} // MAC mobility, sticky, seq 0
	std := [][]byte{bgptest.Encap(bgptest.TunnelVXLAN), bgptest.RT(65000, 100)}
	const pinned, movable = "02:00:00:00:cc:01", "02:00:00:00:cc:02"
	for _, u := range [][]byte{
		rawUpdate(rawMACRoute(48, pinned, nil, 100), oddVTEP, append(std, sticky), nil),
		rawUpdate(rawMACRoute(48, movable, nil, 100), oddVTEP, std, nil),
	} {
		if err := s.send(u); err != nil {
			t.Fatal(err)
		}
	}
	waitEntry(t, ns, leaf, oddMACKeys(pinned)[1], nil)
	waitEntry(t, ns, leaf, oddMACKeys(movable)[1], nil)
	out, err := ns.Exec(t.Context(), "bridge", "-j", "fdb", "show", "dev", "vxlan100")
	if err != nil {
		t.Fatal(err)
	}
	es, err := parseFDB([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range es {
		if e.Master == "" || (e.MAC != pinned && e.MAC != movable) {
			continue
		}
		seen[e.MAC] = true
		t.Logf("bridge entry: %s %v %s", e.MAC, e.Flags, e.State)
		if got, want := e.has("sticky"), e.MAC == pinned; got != want {
			t.Errorf("bridge entry of %s: sticky %v, want %v (flags %v)", e.MAC, got, want, e.Flags)
		}
		if !e.has("extern_learn") {
			t.Errorf("bridge entry of %s lacks extern_learn: %v", e.MAC, e.Flags)
		}
	}
	if len(seen) != 2 {
		t.Errorf("bridge entries found for %v, want both MACs:\n%s", seen, out)
	}
}

// rawIMETRoute is a type-3 NLRI with RD 10.0.0.2:100, Ethernet tag 0 and
// originating router ip.
func rawIMETRoute(ip string) []byte { return rawIMET(ip) }
