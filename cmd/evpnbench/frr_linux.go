//go:build linux

package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/evpnd/evpnd/containerlab/lab"
)

const (
	frrZebra = "/usr/lib/frr/zebra"
	frrBGPd  = "/usr/lib/frr/bgpd"
)

// frrNode is one FRR instance (zebra + bgpd) in a lab node. Each runs as
// user frr with its own config, pid, zserv and vty socket paths in dir, and
// no vty TCP port.
type frrNode struct {
	node  string
	dir   string
	zebra *child
	bgpd  *child
}

// frrBGPConf is a bgpd config for the iBGP l2vpn-evpn fabric of the
// benchmarks: router-id = VTEP = the node's lo address; peers are sourced
// from it; a leaf advertises all its VNIs; a reflector has its peers as
// clients. Connect retry 1 s (the default 120 s would stall a session whose
// first attempt met a peer not yet listening).
func frrBGPConf(hostname string, asn uint32, id netip.Addr, peers []netip.Addr, reflector bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hostname %s\n!\nrouter bgp %d\n bgp router-id %s\n no bgp default ipv4-unicast\n", hostname, asn, id)
	if reflector {
		fmt.Fprintf(&b, " bgp cluster-id %s\n", id)
	}
	for _, p := range peers {
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n neighbor %s update-source %s\n neighbor %s timers connect 1\n", p, asn, p, id, p)
	}
	b.WriteString(" !\n address-family l2vpn evpn\n")
	for _, p := range peers {
		fmt.Fprintf(&b, "  neighbor %s activate\n", p)
		if reflector {
			fmt.Fprintf(&b, "  neighbor %s route-reflector-client\n", p)
		}
	}
	if !reflector {
		b.WriteString("  advertise-all-vni\n")
	}
	b.WriteString(" exit-address-family\n!\n")
	return b.String()
}

// startFRR writes the configs and starts zebra then bgpd in node. zebra
// gets the netlink buffer Debian's /etc/frr/daemons gives it (-s 90000000).
func (e *env) startFRR(ctx context.Context, l *lab.Lab, node, bgpConf string) (*frrNode, error) {
	dir := filepath.Join(l.WorkDir(), "frr-"+node)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "zebra.conf"), []byte("hostname "+node+"\n!\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "bgpd.conf"), []byte(bgpConf), 0o644); err != nil {
		return nil, err
	}
	if err := chownFRR(dir); err != nil {
		return nil, err
	}
	f := &frrNode{node: node, dir: dir}
	common := func(d string) []string {
		return []string{
			"-f", filepath.Join(dir, d+".conf"), "-i", filepath.Join(dir, d+".pid"),
			"-z", filepath.Join(dir, "zserv.api"), "--vty_socket", dir, "-P", "0",
			"-u", "frr", "-g", "frr", "--log", "file:" + filepath.Join(dir, d+".log"),
		}
	}
	var err error
	f.zebra, err = e.start(l, node, filepath.Join(dir, "zebra.out"), append(append([]string{frrZebra}, common("zebra")...), "-s", "90000000"), nil)
	if err != nil {
		return nil, err
	}
	zserv := filepath.Join(dir, "zserv.api")
	if err := waitFor(ctx, 20*time.Second, 10*time.Millisecond, "zebra "+node+" to listen", func() (bool, error) {
		if f.zebra.exited() {
			return false, fmt.Errorf("zebra exited: %v (see %s)", f.zebra.err, filepath.Join(dir, "zebra.log"))
		}
		_, err := os.Stat(zserv)
		return err == nil, nil
	}); err != nil {
		return nil, err
	}
	f.bgpd, err = e.start(l, node, filepath.Join(dir, "bgpd.out"), append([]string{frrBGPd}, common("bgpd")...), nil)
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, 20*time.Second, 20*time.Millisecond, "bgpd "+node+" to take commands", func() (bool, error) {
		if f.bgpd.exited() {
			return false, fmt.Errorf("bgpd exited: %v (see %s)", f.bgpd.err, filepath.Join(dir, "bgpd.log"))
		}
		_, err := f.vtysh(ctx, l, "show bgp summary")
		return err == nil, nil
	}); err != nil {
		return nil, err
	}
	return f, nil
}

// vtysh runs one show command against this instance.
func (f *frrNode) vtysh(ctx context.Context, l *lab.Lab, command string) (string, error) {
	return l.Exec(ctx, f.node, "vtysh", "--vty_socket", f.dir, "-c", command)
}

func (f *frrNode) pids() []int { return []int{f.bgpd.pid(), f.zebra.pid()} }

// chownFRR gives dir and its files to user frr.
func chownFRR(dir string) error {
	u, err := user.Lookup("frr")
	if err != nil {
		return fmt.Errorf("FRR's user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	})
}

// frrDevices are the commands that create, in an FRR leaf, what evpnd
// creates itself (DESIGN §4): vxlan100 (local VTEP, no learning) in br100,
// with learning off and ARP/ND suppression on the VXLAN port, and the
// access ports.
func frrDevices(vtep netip.Addr, access ...string) []string {
	cmds := []string{
		"ip link add br100 type bridge",
		"ip link set br100 addrgenmode none",
		"ip link add vxlan100 type vxlan id 100 local " + vtep.String() + " dstport 4789 nolearning",
		"ip link set vxlan100 master br100 addrgenmode none",
		"bridge link set dev vxlan100 learning off neigh_suppress on",
	}
	for _, a := range access {
		cmds = append(cmds, "ip link set "+a+" master br100")
	}
	return append(cmds, "ip link set vxlan100 up", "ip link set br100 up")
}
