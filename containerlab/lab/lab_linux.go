package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"github.com/evpnd/evpnd/containerlab/netns"
)

// Lab is a topology deployed on network namespaces, or one found on the
// host by Open. Its methods are safe for concurrent use.
type Lab struct {
	topo *Topology
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	nodes     map[string]*labNode
	deployer  int
	destroyed bool
}

type labNode struct {
	node *Node
	name string    // namespace name
	ns   *netns.NS // nil until created (Deploy) or found (Open)
	proc *proc     // current or last cmd process
}

// newLab resolves t's magic variables for the work directory (see
// ForWorkDir); the Lab only ever sees the resolved topology.
func newLab(t *Topology, opts Options) *Lab {
	opts = opts.withDefaults(t)
	t = t.ForWorkDir(opts.WorkDir)
	l := &Lab{topo: t, opts: opts, log: opts.Logger, nodes: map[string]*labNode{}, deployer: os.Getpid()}
	for _, n := range t.Nodes {
		l.nodes[n.Name] = &labNode{node: n, name: opts.Prefix + "-" + n.Name}
	}
	return l
}

// Deploy creates the lab: the work directory with one directory per node
// ("<WorkDir>/<node>", containerlab's __clabNodeDir__) and any missing bind
// source under them; one namespace per node named "<prefix>-<node>",
// a veth pair per link with the topology's interface names, all brought up;
// then it runs every node's exec commands in order, node by node in file
// order, and finally starts each node's cmd in the background with its
// output in WorkDir/<node>.log. It refuses to touch a namespace that
// already exists. On error it destroys whatever it created (directories
// stay, like the logs), and the error names the node and command that
// failed with its output.
func Deploy(ctx context.Context, t *Topology, opts Options) (_ *Lab, err error) {
	l := newLab(t, opts)
	t = l.topo
	for _, n := range t.Nodes {
		for _, b := range n.Binds {
			if _, err := os.Stat(b.Src); err != nil && !(b.InLabDir && errors.Is(err, fs.ErrNotExist)) {
				return nil, fmt.Errorf("node %s: bind %s:%s: %w", n.Name, b.Src, b.Dst, err)
			}
		}
		if name := l.nodes[n.Name].name; netns.Exists(name) {
			return nil, fmt.Errorf("node %s: namespace %s already exists: destroy the old lab first (evpnlab destroy) or use another prefix", n.Name, name)
		}
	}
	if err := l.makeDirs(); err != nil {
		return nil, fmt.Errorf("deploy %s: %w", t.Name, err)
	}
	defer func() {
		if err != nil {
			if derr := l.Destroy(); derr != nil {
				err = errors.Join(err, fmt.Errorf("cleanup after failed deploy: %w", derr))
			}
		}
	}()
	for _, n := range t.Nodes {
		ln := l.nodes[n.Name]
		ns, err := netns.Create(ln.name)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		l.mu.Lock()
		ln.ns = ns
		l.mu.Unlock()
		l.log.Debug("namespace created", "node", n.Name, "netns", ln.name)
	}
	for _, link := range t.Links {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := l.createLink(link); err != nil {
			return nil, err
		}
	}
	for _, n := range t.Nodes {
		for _, c := range n.Exec {
			if err := l.runExec(ctx, n, c); err != nil {
				return nil, err
			}
		}
	}
	if err := l.saveState(); err != nil {
		return nil, err
	}
	if !l.opts.NoStart {
		for _, n := range t.Nodes {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if n.Cmd == "" {
				continue
			}
			if err := l.Start(n.Name); err != nil {
				return nil, err
			}
		}
	}
	l.log.Info("lab deployed", "lab", t.Name, "prefix", l.opts.Prefix, "nodes", len(t.Nodes), "links", len(t.Links))
	return l, nil
}

// makeDirs creates the work directory, every node's directory and the
// missing bind sources in them, as directories the way Docker creates a
// missing bind source.
func (l *Lab) makeDirs() error {
	dirs := []string{l.opts.WorkDir}
	for _, n := range l.topo.Nodes {
		dirs = append(dirs, n.Dir)
		for _, b := range n.Binds {
			if b.InLabDir {
				dirs = append(dirs, b.Src)
			}
		}
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// Open returns the lab of topology t as deployed on the host with the same
// options, by another process or an earlier run: the namespaces that exist,
// and the cmd PIDs recorded in the state file. Without Options.Path it
// takes the Path recorded at deploy. Destroy on it removes those
// leftovers. Open never fails because nothing is deployed.
func Open(t *Topology, opts Options) (*Lab, error) {
	l := newLab(t, opts)
	st, err := ReadState(l.opts.WorkDir)
	if err != nil {
		return nil, err
	}
	if st != nil {
		l.deployer = st.DeployerPID
		// Commands run with the PATH the nodes got at deploy, so that
		// "evpnlab exec NODE evpnctl" finds the binaries the cmds use.
		if len(l.opts.Path) == 0 {
			l.opts.Path = st.Path
		}
	}
	for _, ln := range l.nodes {
		if netns.Exists(ln.name) {
			ln.ns = &netns.NS{Name: ln.name}
		}
		if st == nil || ln.ns == nil {
			continue
		}
		if ns, ok := st.Nodes[ln.node.Name]; ok && ns.PID > 0 && ns.Namespace == ln.name {
			ln.proc = &proc{pid: ns.PID, argv: ns.Cmd, started: ns.Started, nsPath: ln.ns.Path()}
		}
	}
	return l, nil
}

// Topology returns the lab's topology, resolved for its work directory
// (see Topology.ForWorkDir): bind sources are real host paths, so
// Node.HostPath gives the host path of any file a node sees.
func (l *Lab) Topology() *Topology { return l.topo }

// WorkDir returns the directory with the state file and node logs.
func (l *Lab) WorkDir() string { return l.opts.WorkDir }

// Prefix returns the namespace name prefix.
func (l *Lab) Prefix() string { return l.opts.Prefix }

// Namespace returns the namespace name of a node (whether or not it
// exists), or "" for an unknown node.
func (l *Lab) Namespace(node string) string {
	if ln := l.nodes[node]; ln != nil {
		return ln.name
	}
	return ""
}

// Node returns a node's namespace, or nil when the node is unknown or its
// namespace was not created.
func (l *Lab) Node(name string) *netns.NS {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ln := l.nodes[name]; ln != nil {
		return ln.ns
	}
	return nil
}

// LogPath returns the file a node's cmd writes its stdout and stderr to.
func (l *Lab) LogPath(node string) string {
	return filepath.Join(l.opts.WorkDir, node+".log")
}

func (l *Lab) lookup(node string) (*labNode, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln := l.nodes[node]
	if ln == nil {
		return nil, fmt.Errorf("lab %s: no node %q", l.topo.Name, node)
	}
	if ln.ns == nil {
		return nil, fmt.Errorf("node %s: namespace %s not deployed", node, ln.name)
	}
	return ln, nil
}

// Command returns an exec.Cmd running argv in a node's namespace with the
// node's environment, as the node's cmd gets it (env values rewritten,
// Options.Path in front of PATH). Container paths in argv are rewritten to
// host paths (Node.HostPath), and argv[0] is looked up in that PATH, as
// for the cmd.
func (l *Lab) Command(ctx context.Context, node string, argv ...string) (*exec.Cmd, error) {
	ln, err := l.lookup(node)
	if err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, errors.New("exec: empty command")
	}
	args := make([]string, len(argv))
	for i, a := range argv {
		args[i] = ln.node.HostPath(a)
	}
	env := l.env(ln.node)
	if args[0], err = lookPath(args[0], env); err != nil {
		return nil, fmt.Errorf("node %s: %w", node, err)
	}
	c := ln.ns.Command(ctx, args...)
	c.Env = env
	return c, nil
}

// Exec runs argv in a node's namespace (see Command) and returns its
// combined output. A failure's error names the node and includes the
// output.
func (l *Lab) Exec(ctx context.Context, node string, argv ...string) (string, error) {
	c, err := l.Command(ctx, node, argv...)
	if err != nil {
		return "", err
	}
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("node %s: %s: %w: %s", node, strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// runExec runs one of a node's exec commands through sh -c.
func (l *Lab) runExec(ctx context.Context, n *Node, command string) error {
	ln, err := l.lookup(n.Name)
	if err != nil {
		return err
	}
	c := ln.ns.Command(ctx, "sh", "-c", n.HostPath(command))
	c.Env = l.env(n)
	c.Dir = l.opts.WorkDir
	// A command that leaves a background process holding the output pipe
	// must not hang the deploy; Destroy kills such processes with the
	// namespace.
	c.WaitDelay = 2 * time.Second
	out, err := c.CombinedOutput()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("node %s: exec %q: %w: %s", n.Name, command, err, strings.TrimSpace(string(out)))
	}
	l.log.Debug("exec done", "node", n.Name, "cmd", command)
	return nil
}

// env is the host environment plus the node's env (bind destinations in
// values rewritten, see Node.HostPath), with Options.Path in front of PATH.
func (l *Lab) env(n *Node) []string {
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			set(k, v)
		}
	}
	for k, v := range n.Env {
		set(k, n.HostPath(v))
	}
	if len(l.opts.Path) > 0 {
		path := vars["PATH"]
		if path == "" {
			path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		}
		set("PATH", strings.Join(l.opts.Path, ":")+":"+path)
	}
	env := make([]string, 0, len(order))
	for _, k := range order {
		env = append(env, k+"="+vars[k])
	}
	return env
}

// createLink creates a veth pair with one end in each node's namespace,
// sets the MTU (both ends) and MACs, and brings both ends up.
func (l *Lab) createLink(link Link) error {
	a, err := l.lookup(link.A.Node)
	if err != nil {
		return err
	}
	b, err := l.lookup(link.B.Node)
	if err != nil {
		return err
	}
	fail := func(err error) error { return fmt.Errorf("link %s -- %s: %w", link.A, link.B, err) }
	peer, err := vnetns.GetFromName(b.name)
	if err != nil {
		return fail(err)
	}
	defer peer.Close()
	ha, err := a.ns.Handle()
	if err != nil {
		return fail(err)
	}
	defer ha.Close()
	hb, err := b.ns.Handle()
	if err != nil {
		return fail(err)
	}
	defer hb.Close()

	attrs := netlink.NewLinkAttrs()
	attrs.Name = link.A.Interface
	attrs.MTU = link.MTU
	if attrs.MTU == 0 {
		attrs.MTU = DefaultLinkMTU
	}
	attrs.HardwareAddr = link.A.MAC
	veth := &netlink.Veth{
		LinkAttrs:        attrs,
		PeerName:         link.B.Interface,
		PeerHardwareAddr: link.B.MAC,
		PeerNamespace:    netlink.NsFd(int(peer)),
	}
	if err := ha.LinkAdd(veth); err != nil {
		return fail(fmt.Errorf("add veth: %w", err))
	}
	for _, end := range []struct {
		h     *netlink.Handle
		iface string
	}{{ha, link.A.Interface}, {hb, link.B.Interface}} {
		lk, err := end.h.LinkByName(end.iface)
		if err != nil {
			return fail(err)
		}
		if err := end.h.LinkSetUp(lk); err != nil {
			return fail(fmt.Errorf("set %s up: %w", end.iface, err))
		}
	}
	l.log.Debug("link created", "a", link.A.String(), "b", link.B.String())
	return nil
}

// Destroy stops every process the lab runs, by PID: the cmds it started or
// found in the state file, then anything else still inside the lab's
// namespaces (exec commands that left a daemon behind); SIGTERM first,
// SIGKILL after StopGrace. Then it deletes the namespaces, which removes
// the veths, and the state file. It is idempotent and safe after a partial
// deploy: it only touches namespaces this Lab created or found.
func (l *Lab) Destroy() error {
	l.mu.Lock()
	var (
		nodes []*labNode
		procs []*proc
	)
	for _, n := range l.topo.Nodes {
		ln := l.nodes[n.Name]
		if ln.ns == nil {
			continue
		}
		nodes = append(nodes, ln)
		if ln.proc != nil {
			procs = append(procs, ln.proc)
		}
	}
	l.mu.Unlock()

	var errs []error
	if err := stopAll(procs, syscallSIGTERM, l.opts.StopGrace); err != nil {
		errs = append(errs, err)
	}
	// Whatever else runs inside the lab's own namespaces belongs to the lab.
	var rest []*proc
	for _, ln := range nodes {
		if !netns.Exists(ln.name) {
			continue // removed behind our back ("evpnlab destroy")
		}
		pids, err := netnsPIDs(ln.name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, pid := range pids {
			rest = append(rest, &proc{pid: pid, nsPath: ln.ns.Path()})
		}
	}
	if len(rest) > 0 {
		l.log.Debug("killing leftover processes", "count", len(rest))
		if err := stopAll(rest, syscallSIGTERM, l.opts.StopGrace); err != nil {
			errs = append(errs, err)
		}
	}
	l.mu.Lock()
	for _, ln := range nodes {
		if err := ln.ns.Delete(); err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", ln.node.Name, err))
			continue
		}
		ln.ns = nil
	}
	l.destroyed = true
	l.mu.Unlock()
	if err := removeState(l.opts.WorkDir); err != nil {
		errs = append(errs, err)
	}
	if len(nodes) > 0 {
		l.log.Info("lab destroyed", "lab", l.topo.Name, "prefix", l.opts.Prefix, "namespaces", len(nodes))
	}
	return errors.Join(errs...)
}

// Kill removes one node as a crash or "docker kill" of its container
// would: it SIGKILLs every process in the node's namespace, by PID, and
// deletes the namespace, which deletes the node's veth pairs, so its
// neighbours see their interfaces to it disappear. The rest of the lab
// keeps running; Destroy still removes it.
func (l *Lab) Kill(node string) error {
	ln, err := l.lookup(node)
	if err != nil {
		return err
	}
	var procs []*proc
	if ln.proc != nil {
		procs = append(procs, ln.proc)
	}
	pids, err := netnsPIDs(ln.name)
	if err != nil {
		return err
	}
	for _, pid := range pids {
		procs = append(procs, &proc{pid: pid, nsPath: ln.ns.Path()})
	}
	if err := stopAll(procs, syscall.SIGKILL, 0); err != nil {
		return fmt.Errorf("node %s: kill: %w", node, err)
	}
	l.mu.Lock()
	err = ln.ns.Delete()
	if err == nil {
		ln.ns = nil
	}
	l.mu.Unlock()
	if err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	l.log.Info("node killed", "node", node, "netns", ln.name)
	return l.saveState()
}

// saveState writes the state file from the current nodes.
func (l *Lab) saveState() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.destroyed {
		return nil
	}
	st := &State{
		Lab: l.topo.Name, Prefix: l.opts.Prefix, Topology: l.topo.Path,
		WorkDir: l.opts.WorkDir, DeployerPID: l.deployer, Path: l.opts.Path,
		Nodes: map[string]NodeState{},
	}
	for name, ln := range l.nodes {
		ns := NodeState{Namespace: ln.name}
		if ln.node.Cmd != "" {
			ns.Log = l.LogPath(name)
		}
		if p := ln.proc; p != nil && !p.exited() {
			ns.PID, ns.Cmd, ns.Started = p.pid, p.argv, p.started
		}
		st.Nodes[name] = ns
	}
	return writeState(l.opts.WorkDir, st)
}
