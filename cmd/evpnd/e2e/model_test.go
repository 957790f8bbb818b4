package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/evpnd/evpnd/configs"
	"github.com/evpnd/evpnd/containerlab/lab"
)

// topologyFile is the fabric every privileged test deploys.
const topologyFile = "testdata/fabric.clab.yml"

const zeroMAC = "00:00:00:00:00:00"

// model is what the topology file and the evpnd configs it binds say about
// the fabric: the leafs with their VTEPs and VNIs, and the hosts with
// their VNI, addresses and the leaf ports they are wired to. The expected
// kernel state of every leaf is computed from it.
type model struct {
	Spine     string
	SpineAddr netip.Addr // router ID (loopback) of the route reflector
	Leafs     []*leafNode
	Hosts     []*host
}

type leafNode struct {
	Name string
	VTEP netip.Addr
	VNIs map[uint32]configs.L2VNI
}

// attach is a leaf access port a host is plugged into.
type attach struct{ Leaf, Port string }

func (a attach) String() string { return a.Leaf + ":" + a.Port }

type host struct {
	Name  string
	VNI   uint32
	IP    netip.Addr // address of the active link
	MAC   string     // MAC of the active link: a moving host keeps it
	Links []hostLink
}

type hostLink struct {
	Iface  string
	MAC    string // as configured at deploy
	Active bool   // up with the host's address at deploy
	At     attach // the leaf port at the other end
}

// placement says where each host currently is; a host missing from it is
// detached (its link down or gone).
type placement map[string]attach

var (
	reLinkMAC  = regexp.MustCompile(`^ip link set (\S+) address (\S+)$`)
	reAddr     = regexp.MustCompile(`^ip addr add (\S+) dev (\S+)$`)
	reLinkDown = regexp.MustCompile(`^ip link set (\S+) down$`)
)

// loadModel reads the model from a parsed topology: nodes labelled
// evpnd.role are evpnd nodes whose one bind is their config; nodes
// labelled evpnd.vni are hosts whose exec commands set their MACs and
// addresses.
func loadModel(topo *lab.Topology) (*model, error) {
	m := &model{}
	// peer[node:iface] = the endpoint at the other end.
	peer := map[string]lab.Endpoint{}
	for _, l := range topo.Links {
		peer[l.A.String()] = l.B
		peer[l.B.String()] = l.A
	}
	for _, n := range topo.Nodes {
		role := n.Labels["evpnd.role"]
		if role == "" {
			continue
		}
		cfgPath := n.HostPath("/etc/evpnd/evpnd.yaml")
		if cfgPath == "/etc/evpnd/evpnd.yaml" {
			return nil, fmt.Errorf("node %s: no bind for its evpnd config /etc/evpnd/evpnd.yaml", n.Name)
		}
		cfg, err := configs.Load(cfgPath)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		switch role {
		case "route-reflector":
			if m.Spine != "" || cfg.Role != configs.RoleRouteReflector {
				return nil, fmt.Errorf("node %s: want exactly one route reflector, with role %s in its config", n.Name, configs.RoleRouteReflector)
			}
			m.Spine, m.SpineAddr = n.Name, cfg.RouterID
		case "leaf":
			if cfg.Role != configs.RoleLeaf {
				return nil, fmt.Errorf("node %s: label says leaf, config says %s", n.Name, cfg.Role)
			}
			lf := &leafNode{Name: n.Name, VTEP: cfg.VTEPIP, VNIs: map[uint32]configs.L2VNI{}}
			for _, v := range cfg.L2VNIs {
				lf.VNIs[v.VNI] = v
			}
			m.Leafs = append(m.Leafs, lf)
		default:
			return nil, fmt.Errorf("node %s: unknown evpnd.role %q", n.Name, role)
		}
	}
	for _, n := range topo.Nodes {
		vni := n.Labels["evpnd.vni"]
		if vni == "" {
			continue
		}
		h := &host{Name: n.Name}
		if _, err := fmt.Sscan(vni, &h.VNI); err != nil {
			return nil, fmt.Errorf("host %s: label evpnd.vni=%q: %w", n.Name, vni, err)
		}
		links := map[string]*hostLink{}
		link := func(iface string) *hostLink {
			if links[iface] == nil {
				links[iface] = &hostLink{Iface: iface}
			}
			return links[iface]
		}
		addrs := map[string]netip.Prefix{}
		down := map[string]bool{}
		for _, c := range n.Exec {
			switch {
			case reLinkMAC.MatchString(c):
				s := reLinkMAC.FindStringSubmatch(c)
				link(s[1]).MAC = strings.ToLower(s[2])
			case reAddr.MatchString(c):
				s := reAddr.FindStringSubmatch(c)
				p, err := netip.ParsePrefix(s[1])
				if err != nil {
					return nil, fmt.Errorf("host %s: %q: %w", n.Name, c, err)
				}
				addrs[s[2]] = p
				link(s[2])
			case reLinkDown.MatchString(c):
				s := reLinkDown.FindStringSubmatch(c)
				down[s[1]] = true
				link(s[1])
			}
		}
		for _, iface := range slices.Sorted(maps.Keys(links)) {
			hl := links[iface]
			p, ok := peer[n.Name+":"+iface]
			if !ok {
				return nil, fmt.Errorf("host %s: %s is not linked", n.Name, iface)
			}
			hl.At = attach{Leaf: p.Node, Port: p.Interface}
			_, hasAddr := addrs[iface]
			hl.Active = hasAddr && !down[iface]
			if hl.MAC == "" {
				return nil, fmt.Errorf("host %s: %s has no fixed MAC", n.Name, iface)
			}
			if hl.Active {
				if h.MAC != "" {
					return nil, fmt.Errorf("host %s: more than one active link", n.Name)
				}
				h.MAC, h.IP = hl.MAC, addrs[iface].Addr()
			}
			h.Links = append(h.Links, *hl)
		}
		if h.MAC == "" {
			return nil, fmt.Errorf("host %s: no active link (up, with an address)", n.Name)
		}
		m.Hosts = append(m.Hosts, h)
	}
	if m.Spine == "" || len(m.Leafs) == 0 || len(m.Hosts) == 0 {
		return nil, fmt.Errorf("topology %s: want a route reflector, leafs and hosts", topo.Name)
	}
	// A MAC is unique within its VNI: hosts of different VNIs (such as
	// two tenants' twins) may share one.
	type vniMAC struct {
		vni uint32
		mac string
	}
	macs := map[vniMAC]string{}
	for _, h := range m.Hosts {
		for _, hl := range h.Links {
			k := vniMAC{h.VNI, hl.MAC}
			if other, dup := macs[k]; dup {
				return nil, fmt.Errorf("host %s %s: MAC %s already used in VNI %d by %s", h.Name, hl.Iface, hl.MAC, h.VNI, other)
			}
			macs[k] = h.Name + " " + hl.Iface
			lf := m.leaf(hl.At.Leaf)
			if lf == nil {
				return nil, fmt.Errorf("host %s: %s goes to %s, which is not a leaf", h.Name, hl.Iface, hl.At)
			}
			v, ok := lf.VNIs[h.VNI]
			if !ok || !slices.Contains(v.AccessInterfaces, hl.At.Port) {
				return nil, fmt.Errorf("host %s (VNI %d): %s is not an access interface of VNI %d", h.Name, h.VNI, hl.At, h.VNI)
			}
		}
	}
	return m, nil
}

func (m *model) leaf(name string) *leafNode {
	for _, l := range m.Leafs {
		if l.Name == name {
			return l
		}
	}
	return nil
}

func (m *model) host(name string) *host {
	for _, h := range m.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// initial is where the hosts are at deploy: on their active link.
func (m *model) initial() placement {
	p := placement{}
	for _, h := range m.Hosts {
		for _, hl := range h.Links {
			if hl.Active {
				p[h.Name] = hl.At
			}
		}
	}
	return p
}

// fdbState is a leaf's FDB as the tests compare it.
type fdbState struct {
	// Owned are the entries evpnd owns: remote MACs (VXLAN entry to the
	// VTEP and bridge entry to the VXLAN port, both extern_learn) and flood
	// entries (all-zero MAC, one per remote VTEP of the VNI).
	Owned map[string]bool
	// Local are MACs the bridge learned on access ports.
	Local map[string]bool
}

// want computes the FDB a leaf must hold with the hosts placed as at.
func (m *model) want(leaf string, at placement) fdbState {
	s := fdbState{Owned: map[string]bool{}, Local: map[string]bool{}}
	lf := m.leaf(leaf)
	for vni, v := range lf.VNIs {
		for _, o := range m.Leafs {
			if _, ok := o.VNIs[vni]; ok && o != lf {
				s.Owned[fdbEntry{MAC: zeroMAC, Ifname: v.VXLANDevice, Dst: o.VTEP.String(), Flags: []string{"self"}}.key()] = true
			}
		}
	}
	for _, h := range m.Hosts {
		a, ok := at[h.Name]
		if !ok {
			continue
		}
		v, ok := lf.VNIs[h.VNI]
		if !ok {
			continue
		}
		if a.Leaf == leaf {
			s.Local[fdbEntry{MAC: h.MAC, Ifname: a.Port, Master: v.Bridge}.key()] = true
			continue
		}
		remote := m.leaf(a.Leaf).VTEP.String()
		s.Owned[fdbEntry{MAC: h.MAC, Ifname: v.VXLANDevice, Dst: remote, Flags: []string{"self", "extern_learn"}}.key()] = true
		s.Owned[fdbEntry{MAC: h.MAC, Ifname: v.VXLANDevice, Master: v.Bridge, Flags: []string{"extern_learn"}}.key()] = true
	}
	return s
}

// vxlanDevices are the VXLAN device names configured on a leaf.
func (lf *leafNode) vxlanDevices() map[string]bool {
	out := map[string]bool{}
	for _, v := range lf.VNIs {
		out[v.VXLANDevice] = true
	}
	return out
}

// fdbEntry is one entry of `bridge -j fdb show`.
type fdbEntry struct {
	MAC    string   `json:"mac"`
	Ifname string   `json:"ifname"`
	Dst    string   `json:"dst"`
	Flags  []string `json:"flags"`
	Master string   `json:"master"`
	State  string   `json:"state"`
}

func (e fdbEntry) has(flag string) bool { return slices.Contains(e.Flags, flag) }

// key renders an entry as compared: device, MAC, VXLAN destination, self
// or master, and extern_learn. Flood entries are compared without
// extern_learn: the kernel keeps that flag per MAC, not per destination,
// so evpnd cannot promise it on them (see package fib).
func (e fdbEntry) key() string {
	var b strings.Builder
	b.WriteString(e.Ifname + " " + e.MAC)
	if e.Dst != "" {
		b.WriteString(" dst " + e.Dst)
	}
	if e.has("self") {
		b.WriteString(" self")
	}
	if e.Master != "" {
		b.WriteString(" master " + e.Master)
	}
	if e.has("extern_learn") && e.MAC != zeroMAC {
		b.WriteString(" extern_learn")
	}
	return b.String()
}

func parseFDB(data []byte) ([]fdbEntry, error) {
	var es []fdbEntry
	if err := json.Unmarshal(data, &es); err != nil {
		return nil, fmt.Errorf("parse bridge -j fdb show: %w", err)
	}
	return es, nil
}

// observed sorts a leaf's FDB dump into the two sets of fdbState. Owned
// collects everything evpnd could have written: every extern_learn entry
// on any device, and every entry on the leaf's VXLAN devices except the
// device's own permanent address in its bridge. Local collects the
// entries learned on access ports (not permanent, not extern_learn).
func observed(entries []fdbEntry, lf *leafNode) fdbState {
	s := fdbState{Owned: map[string]bool{}, Local: map[string]bool{}}
	vx := lf.vxlanDevices()
	ports := map[string]bool{}
	for _, v := range lf.VNIs {
		for _, p := range v.AccessInterfaces {
			ports[p] = true
		}
	}
	for _, e := range entries {
		switch {
		case e.has("extern_learn"):
			s.Owned[e.key()] = true
		case vx[e.Ifname]:
			if e.Master != "" && e.Dst == "" && e.State == "permanent" {
				continue // the VXLAN device's own address
			}
			s.Owned[e.key()] = true
		case ports[e.Ifname] && e.Master != "" && e.State == "":
			s.Local[e.key()] = true
		}
	}
	return s
}

// diff explains how got differs from want: Owned must match exactly, and
// every wanted Local entry must be present. It returns "" when they agree.
func diff(got, want fdbState) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(want.Owned)) {
		if !got.Owned[k] {
			fmt.Fprintf(&b, "\n  missing:    %s", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got.Owned)) {
		if !want.Owned[k] {
			fmt.Fprintf(&b, "\n  unexpected: %s", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want.Local)) {
		if !got.Local[k] {
			fmt.Fprintf(&b, "\n  missing local: %s", k)
		}
	}
	return b.String()
}

// TestTopologyModel checks, without root, that the test topology and its
// configs agree and that the expected FDBs computed from them are right
// for a case worked out by hand: a mistake here would make every fabric
// test compare against the wrong thing.
func TestTopologyModel(t *testing.T) {
	topo, err := lab.Load(topologyFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Warnings) > 0 {
		t.Errorf("topology warnings:\n%s", strings.Join(topo.Warnings, "\n"))
	}
	m, err := loadModel(topo)
	if err != nil {
		t.Fatal(err)
	}
	if m.Spine != "spine1" || m.SpineAddr != netip.MustParseAddr("10.0.0.254") {
		t.Errorf("spine = %s %v", m.Spine, m.SpineAddr)
	}
	at := m.initial()
	wantAt := placement{
		"h1": {"leaf1", "eth2"}, "h2": {"leaf2", "eth2"}, "h3": {"leaf3", "eth2"},
		"h4": {"leaf1", "eth3"}, "h5": {"leaf3", "eth3"}, "hm": {"leaf1", "eth4"},
	}
	if !maps.Equal(at, wantAt) {
		t.Errorf("initial placement = %v, want %v", at, wantAt)
	}
	hm := m.host("hm")
	if hm == nil || len(hm.Links) != 2 || hm.Links[1].At != (attach{"leaf2", "eth4"}) || hm.Links[1].Active || hm.Links[1].MAC == hm.MAC {
		t.Fatalf("hm = %+v: want two links, the second to leaf2:eth4, down, with another MAC", hm)
	}
	if hm.MAC != "02:00:00:00:01:50" || hm.IP != netip.MustParseAddr("192.168.100.50") {
		t.Errorf("hm: %s %s", hm.MAC, hm.IP)
	}

	// leaf2 has VNI 100 only; leaf1 and leaf3 have both.
	got := m.want("leaf2", at)
	want := fdbState{
		Owned: map[string]bool{
			"vxlan100 00:00:00:00:00:00 dst 10.0.0.1 self":              true,
			"vxlan100 00:00:00:00:00:00 dst 10.0.0.3 self":              true,
			"vxlan100 02:00:00:00:01:11 dst 10.0.0.1 self extern_learn": true,
			"vxlan100 02:00:00:00:01:11 master br100 extern_learn":      true,
			"vxlan100 02:00:00:00:01:15 dst 10.0.0.3 self extern_learn": true,
			"vxlan100 02:00:00:00:01:15 master br100 extern_learn":      true,
			"vxlan100 02:00:00:00:01:50 dst 10.0.0.1 self extern_learn": true,
			"vxlan100 02:00:00:00:01:50 master br100 extern_learn":      true,
		},
		Local: map[string]bool{"eth2 02:00:00:00:01:12 master br100": true},
	}
	if d := diff(got, want); d != "" {
		t.Errorf("leaf2 initial:%s", d)
	}
	// hm moved to leaf2: leaf2 has it locally, leaf3 sends it to leaf2.
	at["hm"] = attach{"leaf2", "eth4"}
	if got := m.want("leaf2", at); !got.Local["eth4 02:00:00:00:01:50 master br100"] || got.Owned["vxlan100 02:00:00:00:01:50 master br100 extern_learn"] {
		t.Errorf("leaf2 after the move: %+v", got)
	}
	if got := m.want("leaf3", at); !got.Owned["vxlan100 02:00:00:00:01:50 dst 10.0.0.2 self extern_learn"] {
		t.Errorf("leaf3 after the move: %+v", got)
	}
	// leaf1 after the move: VNI 100 floods to leaf2 and leaf3 and has h2,
	// h5 and hm remote (two entries each); VNI 200 floods to leaf3 and has
	// h3 remote.
	if got := m.want("leaf1", at); len(got.Owned) != 2+3*2+1+2 || len(got.Local) != 2 {
		t.Errorf("leaf1 after the move: %d owned, %d local entries: %+v", len(got.Owned), len(got.Local), got)
	}
}

// TestObservedFDB checks the parsing and sorting of a real `bridge -j fdb
// show` dump (iproute2 6.1, kernel 6.18) from leaf1 of the fabric.
func TestObservedFDB(t *testing.T) {
	dump := `[
{"mac":"33:33:00:00:00:01","ifname":"eth1","flags":["self"],"state":"permanent"},
{"mac":"02:00:00:00:01:11","ifname":"eth2","flags":[],"master":"br100","state":""},
{"mac":"22:cb:30:4d:5e:e4","ifname":"eth2","flags":[],"master":"br100","state":"permanent"},
{"mac":"02:00:00:00:01:15","ifname":"vxlan100","flags":["extern_learn"],"master":"br100","state":""},
{"mac":"d2:b9:fb:87:d7:57","ifname":"vxlan100","flags":[],"master":"br100","state":"permanent"},
{"mac":"02:00:00:00:01:15","ifname":"vxlan100","dst":"10.0.0.3","flags":["self","extern_learn"],"state":"permanent"},
{"mac":"00:00:00:00:00:00","ifname":"vxlan100","dst":"10.0.0.2","flags":["self","extern_learn"],"state":"permanent"},
{"mac":"02:00:00:00:09:99","ifname":"vxlan200","dst":"10.0.0.3","flags":["self"],"state":"permanent"},
{"mac":"02:00:00:00:09:98","ifname":"br200","flags":["extern_learn"],"master":"br200","state":""}
]`
	es, err := parseFDB([]byte(dump))
	if err != nil {
		t.Fatal(err)
	}
	lf := &leafNode{Name: "leaf1", VNIs: map[uint32]configs.L2VNI{
		100: {VNI: 100, VXLANDevice: "vxlan100", Bridge: "br100", AccessInterfaces: []string{"eth2", "eth4"}},
		200: {VNI: 200, VXLANDevice: "vxlan200", Bridge: "br200", AccessInterfaces: []string{"eth3"}},
	}}
	got := observed(es, lf)
	want := fdbState{
		Owned: map[string]bool{
			"vxlan100 02:00:00:00:01:15 master br100 extern_learn":      true,
			"vxlan100 02:00:00:00:01:15 dst 10.0.0.3 self extern_learn": true,
			"vxlan100 00:00:00:00:00:00 dst 10.0.0.2 self":              true,
			// Not evpnd's (no extern_learn), but on its device: reported.
			"vxlan200 02:00:00:00:09:99 dst 10.0.0.3 self": true,
			// extern_learn anywhere is reported.
			"br200 02:00:00:00:09:98 master br200 extern_learn": true,
		},
		Local: map[string]bool{"eth2 02:00:00:00:01:11 master br100": true},
	}
	if d := diff(got, want); d != "" || len(got.Local) != len(want.Local) {
		t.Errorf("observed:%s\nlocal %v", d, got.Local)
	}
}
