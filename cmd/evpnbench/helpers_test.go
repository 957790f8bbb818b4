//go:build linux

package main

import (
	"bytes"
	"encoding/binary"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/containerlab/lab"
	"github.com/evpnd/evpnd/speaker"
	"github.com/evpnd/evpnd/speaker/evpn"

	"github.com/evpnd/evpnd/speaker/bgptest"
)

func TestParseStatus(t *testing.T) {
	ok := "Name:\tevpnd\nVmPeak:\t  900 kB\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t9\n"
	rss, hwm, err := parseStatus([]byte(ok))
	if err != nil || rss != 1024*1024 || hwm != 2048*1024 {
		t.Fatalf("parseStatus = %d, %d, %v; want 1 MiB, 2 MiB", rss, hwm, err)
	}
	for _, bad := range []string{
		"Name:\tkthreadd\nThreads:\t1\n", // kernel thread: no Vm lines
		"VmHWM:\t 1 kB\nVmRSS:\t x kB\n",
		"VmHWM:\t 1 kB\nVmRSS:\t 1 MB\n",
	} {
		if _, _, err := parseStatus([]byte(bad)); err == nil {
			t.Errorf("parseStatus(%q): no error", bad)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// A comm with a space and a ')' must not shift the fields.
	stat := "4242 (evp nd) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 123 456 789\n"
	got, err := parseStatCPU([]byte(stat))
	if want := 3250 * time.Millisecond; err != nil || got != want {
		t.Fatalf("parseStatCPU = %v, %v; want %v", got, err, want)
	}
	if _, err := parseStatCPU([]byte("4242 (evpnd) S 1 2")); err == nil {
		t.Error("short stat: no error")
	}
}

func TestSampleProcsSelf(t *testing.T) {
	u, err := sampleProcs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.RSS <= 0 || u.HWM < u.RSS {
		t.Errorf("own usage %+v: want 0 < RSS <= HWM", u)
	}
}

// neighMsg builds one rtnetlink neighbour message as the kernel sends it.
func neighMsg(typ uint16, family uint8, ifindex int32, flags uint8, mac []byte, dst netip.Addr, master int32) []byte {
	attr := func(b []byte, t uint16, v []byte) []byte {
		l := unix.SizeofRtAttr + len(v)
		b = binary.NativeEndian.AppendUint16(b, uint16(l))
		b = binary.NativeEndian.AppendUint16(b, t)
		b = append(b, v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	b := make([]byte, unix.SizeofNlMsghdr+12)
	binary.NativeEndian.PutUint16(b[4:], typ)
	nd := b[unix.SizeofNlMsghdr:]
	nd[0] = family
	binary.NativeEndian.PutUint32(nd[4:], uint32(ifindex))
	binary.NativeEndian.PutUint16(nd[8:], unix.NUD_NOARP)
	nd[10] = flags
	if mac != nil {
		b = attr(b, unix.NDA_LLADDR, mac)
	}
	if dst.IsValid() {
		b = attr(b, unix.NDA_DST, dst.AsSlice())
	}
	if master != 0 {
		b = attr(b, unix.NDA_MASTER, binary.NativeEndian.AppendUint32(nil, uint32(master)))
	}
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	return b
}

func TestParseFDBEvents(t *testing.T) {
	mac := []byte{2, 0xeb, 0, 0, 0, 1}
	vtep := netip.MustParseAddr("10.0.0.10")
	var buf []byte
	buf = append(buf, neighMsg(unix.RTM_NEWNEIGH, unix.AF_BRIDGE, 7, unix.NTF_SELF|unix.NTF_EXT_LEARNED, mac, vtep, 0)...)
	buf = append(buf, neighMsg(unix.RTM_NEWNEIGH, unix.AF_BRIDGE, 7, unix.NTF_EXT_LEARNED, mac, netip.Addr{}, 5)...)
	buf = append(buf, neighMsg(unix.RTM_NEWNEIGH, unix.AF_INET, 7, 0, mac, vtep, 0)...)   // ARP: skipped
	buf = append(buf, neighMsg(unix.RTM_NEWLINK, unix.AF_BRIDGE, 7, 0, mac, vtep, 0)...)  // not a neighbour
	buf = append(buf, neighMsg(unix.RTM_NEWNEIGH, unix.AF_BRIDGE, 7, 0, nil, vtep, 0)...) // no MAC: skipped
	buf = append(buf, neighMsg(unix.RTM_DELNEIGH, unix.AF_BRIDGE, 8, unix.NTF_SELF, mac, vtep, 0)...)
	var got []fdbEvent
	if err := parseFDBEvents(buf, func(ev *fdbEvent) { got = append(got, *ev) }); err != nil {
		t.Fatal(err)
	}
	m, _ := evpn.MACFrom(mac)
	want := []fdbEvent{
		{Ifindex: 7, Flags: unix.NTF_SELF | unix.NTF_EXT_LEARNED, State: unix.NUD_NOARP, MAC: m, Dst: vtep},
		{Ifindex: 7, Flags: unix.NTF_EXT_LEARNED, State: unix.NUD_NOARP, MAC: m, Master: true},
		{Del: true, Ifindex: 8, Flags: unix.NTF_SELF, State: unix.NUD_NOARP, MAC: m, Dst: vtep},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events\n got %+v\nwant %+v", got, want)
	}
	if err := parseFDBEvents(buf[:len(buf)-3], func(*fdbEvent) {}); err == nil {
		t.Error("truncated buffer: no error")
	}
}

func TestMACCounter(t *testing.T) {
	const idx = 7
	vtep := netip.MustParseAddr("10.0.0.10")
	c := newMACCounter(idx, 2)
	t0 := time.Unix(1000, 0)
	ev := func(i int, master, del bool, dst netip.Addr) *fdbEvent {
		return &fdbEvent{Ifindex: idx, MAC: burstMAC(i), Master: master, Del: del, Dst: dst}
	}
	full := func() bool {
		select {
		case <-c.full:
			return true
		default:
			return false
		}
	}
	c.add(ev(0, false, false, vtep), t0)
	c.add(ev(0, true, false, netip.Addr{}), t0.Add(1*time.Millisecond))
	c.add(ev(1, false, false, vtep), t0.Add(2*time.Millisecond))
	c.add(&fdbEvent{Ifindex: idx + 1, MAC: burstMAC(1), Master: true}, t0) // another device
	c.add(&fdbEvent{Ifindex: idx, Dst: vtep}, t0)                          // flood entry (zero MAC)
	c.add(ev(2, false, false, netip.Addr{}), t0)                           // self entry without a remote
	if full() {
		t.Fatal("complete with one bridge entry missing")
	}
	c.add(ev(0, true, true, netip.Addr{}), t0.Add(3*time.Millisecond)) // deleted again
	c.add(ev(1, true, false, netip.Addr{}), t0.Add(4*time.Millisecond))
	if full() {
		t.Fatal("complete although MAC 0's bridge entry was deleted")
	}
	c.add(ev(0, true, false, netip.Addr{}), t0.Add(5*time.Millisecond))
	if !full() {
		t.Fatal("not complete with both entries of both MACs")
	}
	first, marks, last := c.times()
	if !first.Equal(t0) || !last.Equal(t0.Add(5*time.Millisecond)) {
		t.Errorf("times = %v, %v; want t0, t0+5ms", first, last)
	}
	// 10% and 50% of 2 MACs: one MAC complete (at +1ms); 90%: both.
	if want := [3]time.Time{t0.Add(time.Millisecond), t0.Add(time.Millisecond), t0.Add(5 * time.Millisecond)}; marks != want {
		t.Errorf("marks = %v, want %v", marks, want)
	}
	c.add(ev(3, false, false, vtep), t0) // after completion: no second close
}

func TestBurstRoutes(t *testing.T) {
	c := feederConfig{ASN: 65000, RouterID: rrAddr, Peer: leafLoopback(1), Routes: 1000, VTEPs: 3,
		FirstVTEP: netip.MustParseAddr("10.0.0.10"), VNI: 100}
	rs := burstRoutes(c)
	if len(rs) != 1003 {
		t.Fatalf("%d routes, want 1000 type-2 + 3 type-3", len(rs))
	}
	macs := map[evpn.MAC]bool{}
	perVTEP := map[netip.Addr]int{}
	for _, r := range rs {
		if r.L2VNI() != 100 || len(r.RTs) != 1 || r.RTs[0] != evpn.AutoRT(65000, 100) || r.Encap != evpn.TunnelTypeVXLAN {
			t.Fatalf("%s: VNI %d, RTs %v, encap %d", r.Key, r.L2VNI(), r.RTs, r.Encap)
		}
		if r.RD != evpn.RDFromIP(r.VTEP(), 100) {
			t.Errorf("%s: RD %s, want the VTEP's", r.Key, r.RD)
		}
		if r.Type == evpn.RouteTypeIMET {
			continue
		}
		if !r.MAC.IsUnicast() || macs[r.MAC] {
			t.Fatalf("MAC %s repeated or not unicast", r.MAC)
		}
		macs[r.MAC] = true
		perVTEP[r.NextHop]++
	}
	want := map[netip.Addr]int{
		netip.MustParseAddr("10.0.0.10"): 334, netip.MustParseAddr("10.0.0.11"): 333, netip.MustParseAddr("10.0.0.12"): 333,
	}
	if !maps.Equal(perVTEP, want) {
		t.Errorf("routes per VTEP %v, want %v", perVTEP, want)
	}
}

func TestFeederArgsRoundTrip(t *testing.T) {
	c := feederConfig{ASN: 65001, RouterID: rrAddr, Peer: leafLoopback(1), Routes: 5, VTEPs: 2,
		FirstVTEP: netip.MustParseAddr("10.0.0.20"), VNI: 200}
	got, err := parseFeederArgs(c.args())
	if err != nil || got != c {
		t.Fatalf("round trip = %+v, %v; want %+v", got, err, c)
	}
	if _, err := parseFeederArgs(append(c.args(), "-routes", "0")); err == nil {
		t.Error("0 routes accepted")
	}
}

// splitMessages splits concatenated BGP messages.
func splitMessages(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		if len(b) < bgptest.HeaderLen {
			t.Fatalf("%d trailing bytes", len(b))
		}
		l := int(binary.BigEndian.Uint16(b[16:]))
		if l < bgptest.HeaderLen || l > len(b) || l > bgptest.MaxMessage {
			t.Fatalf("bad message length %d", l)
		}
		out = append(out, b[:l])
		b = b[l:]
	}
	return out
}

// TestRawUpdates decodes the raw source's messages with evpnd's codec:
// every route once, with its attributes, packed or not, then End-of-RIB.
func TestRawUpdates(t *testing.T) {
	c := feederConfig{ASN: 65000, RouterID: rrAddr, Peer: leafLoopback(1), Routes: 1000, VTEPs: 3,
		FirstVTEP: netip.MustParseAddr("10.0.0.10"), VNI: 100}
	for _, pack := range []int{0, 1, 7} {
		raw, n, err := rawUpdates(c, rrAddr, pack)
		if err != nil {
			t.Fatal(err)
		}
		msgs := splitMessages(t, raw)
		if len(msgs) != n {
			t.Fatalf("pack %d: %d messages, reported %d", pack, len(msgs), n)
		}
		seen := map[evpn.Key]bool{}
		type2 := 0
		for i, m := range msgs {
			ups, err := speaker.DecodeUpdate(m)
			if err != nil {
				t.Fatalf("pack %d, message %d: %v", pack, i, err)
			}
			cnt, err := countEVPNReach(m[bgptest.HeaderLen:])
			if err != nil {
				t.Fatal(err)
			}
			k2 := 0
			for _, u := range ups {
				r := u.Route
				if u.Withdraw || seen[r.Key] {
					t.Fatalf("withdraw or repeated %s", r.Key)
				}
				seen[r.Key] = true
				if r.Originator != r.VTEP() || r.NextHop != r.VTEP() || r.L2VNI() != 100 || r.Encap != evpn.TunnelTypeVXLAN ||
					!slices.Equal(r.RTs, []evpn.RT{evpn.AutoRT(65000, 100)}) {
					t.Fatalf("%s: originator %s next hop %s VNI %d encap %d RTs %v", r.Key, r.Originator, r.NextHop, r.L2VNI(), r.Encap, r.RTs)
				}
				if r.Type == evpn.RouteTypeMACIP {
					k2++
				}
			}
			if k2 != cnt {
				t.Fatalf("countEVPNReach = %d, the codec finds %d type-2 routes", cnt, k2)
			}
			if pack > 0 && k2 > pack {
				t.Fatalf("pack %d: %d routes in one UPDATE", pack, k2)
			}
			type2 += k2
			if i == len(msgs)-1 && (len(ups) != 0 || !bytes.Contains(m, []byte{0x80, bgptest.AttrMPUnreach, 3, 0, bgptest.AFIL2VPN, bgptest.SAFIEVPN})) {
				t.Fatalf("last message is not an l2vpn-evpn End-of-RIB: % x", m)
			}
		}
		if type2 != 1000 || len(seen) != 1003 {
			t.Fatalf("pack %d: %d type-2 routes, %d in all; want 1000 and 1003", pack, type2, len(seen))
		}
		if pack == 0 && n > 3+1000/100+3+1 {
			t.Errorf("packed: %d messages for 1000 routes over 3 VTEPs", n)
		}
	}
}

func TestBGPOpen(t *testing.T) {
	m := bgptest.Open(65000, netip.MustParseAddr("10.0.0.1"), 90)
	want := []byte{
		4, 0xfd, 0xe8, 0, 90, 10, 0, 0, 1, // version, AS, hold, ID
		14, 2, 12, // one capabilities parameter of 12 bytes
		1, 4, 0, 25, 0, 70, // l2vpn-evpn
		65, 4, 0, 0, 0xfd, 0xe8, // 4-octet AS
	}
	if len(m) != bgptest.HeaderLen+len(want) || m[18] != bgptest.MsgOpen || !bytes.Equal(m[bgptest.HeaderLen:], want) ||
		int(binary.BigEndian.Uint16(m[16:])) != len(m) {
		t.Fatalf("OPEN % x", m)
	}
	if m := bgptest.Open(4200000000, netip.MustParseAddr("10.0.0.1"), 90); m[20] != 0x5b || m[21] != 0xa0 {
		t.Errorf("4-octet AS: 2-octet field % x, want AS_TRANS 5b a0", m[20:22])
	}
}

func TestCountEVPNReachMalformed(t *testing.T) {
	for _, b := range [][]byte{
		{0},
		{0, 5, 0, 0},           // withdrawn routes overrun
		{0, 0, 0, 9, 0x90, 14}, // attributes overrun
		{0, 0, 0, 8, 0x80, 14, 5, 0, 25, 70, 4, 0},         // next hop overrun
		{0, 0, 0, 10, 0x80, 14, 7, 0, 25, 70, 0, 0, 2, 40}, // NLRI overrun
	} {
		if _, err := countEVPNReach(b); err == nil {
			t.Errorf("countEVPNReach(% x): no error", b)
		}
	}
}

func TestTopologiesParse(t *testing.T) {
	for name, topo := range map[string]string{
		"burst":        burstTopology("burst-evpnd", frrDevices(leafLoopback(1))),
		"latency":      latencyTopology("latency-frr", [2][]string{frrDevices(leafLoopback(1), "eth2"), nil}),
		"latency-bare": latencyTopology("latency-evpnd", [2][]string{}),
		"l3":           burstTopology("l3-frr", frrL3Devices(leafLoopback(1))),
	} {
		tp, err := lab.Parse([]byte(topo), t.TempDir())
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, topo)
		}
		if len(tp.Warnings) > 0 {
			t.Errorf("%s: warnings %v", name, tp.Warnings)
		}
		for _, n := range tp.Nodes {
			for _, c := range n.Exec {
				if strings.Contains(c, "\"") {
					t.Errorf("%s: node %s exec %q has a quote", name, n.Name, c)
				}
			}
		}
	}
	tp, _ := lab.Parse([]byte(latencyTopology("x", [2][]string{})), t.TempDir())
	if len(tp.Nodes) != 4 || len(tp.Links) != 3 {
		t.Errorf("latency topology: %d nodes, %d links; want rr, leaf1, leaf2, h1 and 3 links", len(tp.Nodes), len(tp.Links))
	}
}

func TestEvpndConfigsValid(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"leaf.yaml":  evpndLeafConfig(leafLoopback(1), []string{"eth2"}),
		"leaf2.yaml": evpndLeafConfig(leafLoopback(2), nil),
		"rr.yaml":    evpndReflectorConfig(),
		"l3.yaml":    evpndL3LeafConfig(leafLoopback(1)),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := configs.Load(p)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, text)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func TestFRRBGPConf(t *testing.T) {
	leaf := frrBGPConf("leaf1", 65000, leafLoopback(1), []netip.Addr{rrAddr}, false)
	rr := frrBGPConf("rr", 65000, rrAddr, []netip.Addr{leafLoopback(1), leafLoopback(2)}, true)
	for _, c := range []struct {
		conf string
		want []string
		not  []string
	}{
		{leaf, []string{"router bgp 65000\n", " bgp router-id 10.0.0.1\n", " neighbor 10.0.0.254 remote-as 65000\n",
			" neighbor 10.0.0.254 update-source 10.0.0.1\n", "  neighbor 10.0.0.254 activate\n", "  advertise-all-vni\n"},
			[]string{"route-reflector-client", "cluster-id"}},
		{rr, []string{" bgp cluster-id 10.0.0.254\n", "  neighbor 10.0.0.1 route-reflector-client\n",
			"  neighbor 10.0.0.2 route-reflector-client\n", "  neighbor 10.0.0.2 activate\n"},
			[]string{"advertise-all-vni"}},
	} {
		for _, w := range c.want {
			if !strings.Contains(c.conf, w) {
				t.Errorf("config lacks %q:\n%s", w, c.conf)
			}
		}
		for _, n := range c.not {
			if strings.Contains(c.conf, n) {
				t.Errorf("config has %q:\n%s", n, c.conf)
			}
		}
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0, 1}, {50, 5}, {90, 9}, {91, 10}, {100, 10}} {
		if got := percentile(ds, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("empty: not 0")
	}
}

func TestBurstImpls(t *testing.T) {
	o := burstOptions{Rounds: 2, common: commonFlags{frr: true}}
	want := []string{implSource, implEvpnd, implFRR, implSource, implFRR, implEvpnd}
	if got := burstImpls(o); !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	o = burstOptions{Rounds: 1, NoSource: true}
	if got := burstImpls(o); !slices.Equal(got, []string{implEvpnd}) {
		t.Errorf("order %v, want evpnd only", got)
	}
}

func TestLearnFrame(t *testing.T) {
	f := learnFrame(latencyMAC(258))
	if len(f) != 60 || !bytes.Equal(f[:6], []byte{255, 255, 255, 255, 255, 255}) ||
		!bytes.Equal(f[6:12], []byte{2, 0xeb, 1, 0, 1, 2}) || f[12] != 0x88 || f[13] != 0xb5 {
		t.Fatalf("frame % x", f)
	}
	if latencyMAC(1) == burstMAC(1) || !latencyMAC(1).IsUnicast() {
		t.Error("latency MACs must be unicast and apart from the burst's")
	}
}
