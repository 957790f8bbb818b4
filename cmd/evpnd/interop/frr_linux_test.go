package interop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/evpnd/evpnd/containerlab/frr"
	"github.com/evpnd/evpnd/containerlab/lab"
)

// Where an FRR node's topology binds its configs (see the .clab.yml files).
const (
	zebraConfDst = "/etc/frr/zebra.conf"
	bgpdConfDst  = "/etc/frr/bgpd.conf"
)

// frrNode is one FRR instance (containerlab/frr) in a lab node, in a
// directory of its own that stop removes.
type frrNode struct {
	*frr.Instance
	dir string
}

// startFRR starts zebra and bgpd with the configs the node's topology
// binds, in the node's namespace, as u. The caller must call stop, also
// when startFRR fails.
func startFRR(l *lab.Lab, node string, u *user.User) (*frrNode, error) {
	n := l.Topology().Node(node)
	confs := map[string]string{}
	for _, b := range n.Binds {
		confs[b.Dst] = b.Src
	}
	if confs[zebraConfDst] == "" || confs[bgpdConfDst] == "" {
		return nil, fmt.Errorf("FRR node %s: want binds to %s and %s, have %+v", node, zebraConfDst, bgpdConfDst, n.Binds)
	}
	o := frr.Options{User: u, LogLevel: "debug"}
	var err error
	if o.ZebraConf, err = os.ReadFile(confs[zebraConfDst]); err != nil {
		return nil, err
	}
	if o.BGPdConf, err = os.ReadFile(confs[bgpdConfDst]); err != nil {
		return nil, err
	}
	// Not t.TempDir: its parents are mode 0700, and the daemons run as frr.
	dir, err := os.MkdirTemp("", fmt.Sprintf("evt-frr-%d-%s-", os.Getpid(), node))
	if err != nil {
		return nil, err
	}
	f, err := frr.Start(l, node, dir, o)
	if f == nil {
		f = &frr.Instance{Node: node, Dir: dir}
	}
	return &frrNode{Instance: f, dir: dir}, err
}

// stop ends the daemons (see frr.Instance.Stop) and removes the instance
// directory.
func (f *frrNode) stop() error {
	err := f.Stop()
	return errors.Join(err, os.RemoveAll(f.dir))
}

// bgpdPID returns the PID of bgpd while it runs, else 0.
func (f *frrNode) bgpdPID() int {
	for _, d := range f.Daemons {
		if gone, _ := d.Exited(); d.Name == "bgpd" && !gone {
			return d.PID()
		}
	}
	return 0
}

// vtysh runs one command against this instance only.
func (f *frrNode) vtysh(command string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return f.Vtysh(ctx, command)
}

// vtyJSON runs a "... json" command and decodes its output into v.
func (f *frrNode) vtyJSON(command string, v any) error {
	out, err := f.vtysh(command)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("vtysh on %s: %q: decode: %w\n%s", f.Node, command, err, out)
	}
	return nil
}
