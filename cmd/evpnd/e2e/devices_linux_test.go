package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evpnd/evpnd/containerlab/netns"
)

// vmMAC and vmIP are the "VM" that TestDeviceSupervision plugs into
// leaf1's br100 after evpnd started: no configuration names its port.
const (
	vmMAC = "02:00:00:00:01:77"
	vmIP  = "192.168.100.77"
)

// remoteAt reports whether a leaf holds mac as a remote MAC of vxlan100
// pointing at vtep (the VXLAN entry, extern_learn).
func (f *fabric) remoteAt(leaf, mac, vtep string) (bool, error) {
	es, err := f.fdb(f.t.Context(), leaf)
	if err != nil {
		return false, err
	}
	for _, e := range es {
		if e.MAC == mac && e.Ifname == "vxlan100" && e.Dst == vtep && e.has("self") && e.has("extern_learn") {
			return true, nil
		}
	}
	return false, nil
}

// linkLine is `ip -o -d link show dev` of a node's device.
func (f *fabric) linkLine(node, dev string) (string, error) {
	return f.lab.Exec(f.t.Context(), node, "ip", "-o", "-d", "link", "show", "dev", dev)
}

// TestDeviceSupervision: evpnd learns on every port of a VNI's bridge and
// keeps its devices as configured while an operator or another tool
// changes them, on a running fabric:
//   - a veth enslaved to leaf1's br100 after start (a VM's tap): its
//     host's MAC reaches leaf2's kernel, and is withdrawn from it when
//     the port is released;
//   - `ip link del vxlan100` is rebuilt and its FDB (remote MACs, flood
//     list) restored;
//   - `ip link set eth2 nomaster` is re-enslaved;
//   - `bridge link set dev vxlan100 learning on` is turned off again;
//   - the VXLAN MTU comes from the underlay: leaf1's uplink has MTU 9000
//     (vxlan 8950), the others containerlab's 9500 (vxlan 9450).
func TestDeviceSupervision(t *testing.T) {
	f := deployFabric(t)
	f.converge()

	t.Run("vxlan_mtu_from_underlay", func(t *testing.T) {
		for leaf, want := range map[string]string{"leaf1": " mtu 8950 ", "leaf2": " mtu 9450 "} {
			line, err := f.linkLine(leaf, "vxlan100")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(line, want) {
				t.Errorf("%s vxlan100 lacks %q: %s", leaf, want, line)
			}
		}
	})

	t.Run("port_enslaved_after_start", func(t *testing.T) {
		vm := netns.ForTest(t, "e2evm")
		for _, c := range [][]string{
			{"ip", "link", "add", "vm7", "type", "veth", "peer", "name", "vm7h"},
			{"ip", "link", "set", "vm7h", "netns", vm.Name},
		} {
			f.exec("leaf1", c...)
		}
		for _, c := range [][]string{
			{"sysctl", "-qw", "net.ipv6.conf.vm7h.disable_ipv6=1"},
			{"ip", "link", "set", "vm7h", "address", vmMAC, "mtu", "1450"},
			{"ip", "addr", "add", vmIP + "/24", "dev", "vm7h"},
			{"ip", "link", "set", "vm7h", "up"},
		} {
			if out, err := vm.Exec(t.Context(), c...); err != nil {
				t.Fatalf("%v: %v: %s", c, err, out)
			}
		}
		f.exec("leaf1", "ip", "link", "set", "vm7", "master", "br100", "up")
		// The VM talks to h2 on leaf2: leaf1 learns its MAC on vm7 and
		// leaf2 installs it towards leaf1.
		eventually(t, changeTimeout, "VM reaches h2 and leaf2 installs the VM's MAC towards leaf1", func() error {
			if out, err := vm.Exec(t.Context(), "ping", "-n", "-c1", "-W1", "192.168.100.12"); err != nil {
				return fmt.Errorf("ping: %v: %s", err, out)
			}
			ok, err := f.remoteAt("leaf2", vmMAC, "10.0.0.1")
			if err == nil && !ok {
				err = errors.New("not in leaf2's FDB")
			}
			return err
		})
		f.exec("leaf1", "ip", "link", "set", "vm7", "nomaster")
		eventually(t, changeTimeout, "the VM's MAC withdrawn from leaf2 after vm7 left br100", func() error {
			ok, err := f.remoteAt("leaf2", vmMAC, "10.0.0.1")
			if err == nil && ok {
				err = errors.New("still in leaf2's FDB")
			}
			return err
		})
		f.exec("leaf1", "ip", "link", "del", "vm7")
	})

	t.Run("vxlan_deleted_is_rebuilt_with_its_fdb", func(t *testing.T) {
		f.waitFDB(changeTimeout) // the fabric is as the model says first
		before, err := f.linkLine("leaf1", "vxlan100")
		if err != nil {
			t.Fatal(err)
		}
		f.exec("leaf1", "ip", "link", "del", "vxlan100")
		eventually(t, changeTimeout, "vxlan100 re-created in br100", func() error {
			line, err := f.linkLine("leaf1", "vxlan100")
			if err != nil {
				return err
			}
			if line == before || !strings.Contains(line, "master br100") || !strings.Contains(line, "learning off") {
				return errors.New(line)
			}
			return nil
		})
		// Remote MACs and flood list back, and traffic across the fabric.
		took := f.waitFDB(changeTimeout, "leaf1")
		t.Logf("leaf1's FDB restored %v after vxlan100 was rebuilt", took.Round(1e6))
		f.waitPing("h1", "192.168.100.12")
	})

	t.Run("released_port_is_enslaved_again", func(t *testing.T) {
		f.exec("leaf1", "ip", "link", "set", "eth2", "nomaster")
		eventually(t, changeTimeout, "eth2 back in br100", func() error {
			line, err := f.linkLine("leaf1", "eth2")
			if err != nil {
				return err
			}
			if !strings.Contains(line, "master br100") {
				return errors.New(line)
			}
			return nil
		})
		f.waitPing("h1", "192.168.100.12")
		f.waitFDB(changeTimeout)
	})

	t.Run("vxlan_learning_turned_off_again", func(t *testing.T) {
		f.exec("leaf1", "bridge", "link", "set", "dev", "vxlan100", "learning", "on")
		eventually(t, changeTimeout, "learning off on vxlan100 again", func() error {
			line, err := f.linkLine("leaf1", "vxlan100")
			if err != nil {
				return err
			}
			if !strings.Contains(line, "learning off") {
				return errors.New(line)
			}
			return nil
		})
	})

	// Every repair is logged.
	log, err := os.ReadFile(f.lab.LogPath("leaf1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"dev=vxlan100 action=\"ip link add vxlan100", "dev=eth2 action=\"ip link set eth2 master br100\"",
		"dev=vxlan100 action=\"bridge link set dev vxlan100 learning off"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("leaf1's log has no repair line with %s", want)
		}
	}
}

// TestRunSmallMTU: a VNI with mtu 1000 (below IPv6's 1280, so its devices
// have no IPv6 state and refuse addrgenmode with EAFNOSUPPORT) comes up:
// br100 and vxlan100 exist, are up and have MTU 1000, and evpnd keeps
// running.
func TestRunSmallMTU(t *testing.T) {
	netns.RequireLinkKind(t, "vxlan")
	netns.RequireLinkKind(t, "bridge")
	bin := evpndPath(t)
	ns := netns.ForTest(t, "e2emtu")
	if _, err := ns.Exec(t.Context(), "ip", "addr", "add", "10.0.0.9/32", "dev", "lo"); err != nil {
		t.Fatal(err)
	}
	out, done := startEvpnd(t, ns, bin, "--config", "testdata/mtu/leaf.yaml", "--log-format", "text")
	eventually(t, changeTimeout, "br100 and vxlan100 up with MTU 1000", func() error {
		select {
		case err := <-done:
			t.Fatalf("evpnd exited: %v\n%s", err, out.String())
		default:
		}
		for _, dev := range []string{"br100", "vxlan100"} {
			line, err := ns.Exec(t.Context(), "ip", "-o", "link", "show", "dev", dev)
			if err != nil {
				return err
			}
			if !strings.Contains(line, " mtu 1000 ") || !strings.Contains(line, ",UP") {
				return fmt.Errorf("%s", line)
			}
		}
		if !strings.Contains(out.String(), "local state announced") {
			return errors.New("evpnd has not finished starting")
		}
		return nil
	})
}

// startEvpnd starts "evpnd run" (the binary bin) in ns with args and an
// API socket in a temporary directory. It returns evpnd's output (stdout
// and stderr) and a channel that gets its exit; a cleanup of the test
// stops it and waits for it.
func startEvpnd(t *testing.T, ns *netns.NS, bin string, args ...string) (*lockedBuffer, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	args = append([]string{bin, "run"}, append(args, "--api-socket", filepath.Join(t.TempDir(), "evpnd.sock"))...)
	cmd := ns.Command(ctx, args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return out, done
}
