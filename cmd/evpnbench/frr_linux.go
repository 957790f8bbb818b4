//go:build linux

package main

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/evpnd/evpnd/containerlab/frr"
	"github.com/evpnd/evpnd/containerlab/lab"
)

const (
	frrZebra = frr.Zebra
	frrBGPd  = frr.BGPd
)

// frrNode is one FRR instance (containerlab/frr) in a lab node. Its
// daemons are the env's children, stopped when the env closes.
type frrNode struct{ *frr.Instance }

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

// startFRR starts zebra then bgpd in node, in a directory of the lab's
// work directory. zebra gets the netlink buffer Debian's /etc/frr/daemons
// gives it (-s 90000000).
func (e *env) startFRR(ctx context.Context, l *lab.Lab, node, bgpConf string) (*frrNode, error) {
	return e.startFRRWith(ctx, l, node, "", bgpConf)
}

// startFRRWith is startFRR with zebraExtra appended to zebra's config
// (l3: the L3VNI of the default VRF).
func (e *env) startFRRWith(ctx context.Context, l *lab.Lab, node, zebraExtra, bgpConf string) (*frrNode, error) {
	in, err := frr.Start(l, node, filepath.Join(l.WorkDir(), "frr-"+node), frr.Options{
		ZebraConf: []byte("hostname " + node + "\n!\n" + zebraExtra),
		BGPdConf:  []byte(bgpConf),
		ZebraArgs: []string{"-s", "90000000"},
		Wait:      20 * time.Second,
		Run: func(name string, c *exec.Cmd) (frr.Process, error) {
			c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			return e.run(name, c)
		},
	})
	if err != nil {
		return nil, err // what started is the env's to stop
	}
	f := &frrNode{in}
	if err := waitFor(ctx, 20*time.Second, 20*time.Millisecond, "bgpd "+node+" to take commands", func() (bool, error) {
		_, err := f.vtysh(ctx, l, "show bgp summary")
		return err == nil, nil
	}); err != nil {
		return nil, err
	}
	return f, nil
}

// vtysh runs one show command against this instance, in its node.
func (f *frrNode) vtysh(ctx context.Context, l *lab.Lab, command string) (string, error) {
	return l.Exec(ctx, f.Node, "vtysh", "--vty_socket", f.Dir, "-c", command)
}

// pids are bgpd's then zebra's.
func (f *frrNode) pids() []int {
	p := f.PIDs() // in start order: zebra, bgpd
	slices.Reverse(p)
	return p
}

// zebraPID is zebra's PID.
func (f *frrNode) zebraPID() int { return f.PIDs()[0] }

// PID and Exited make a child a frr.Process.
func (k *child) PID() int { return k.pid() }

func (k *child) Exited() (bool, error) {
	if k.exited() {
		return true, k.err
	}
	return false, nil
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
