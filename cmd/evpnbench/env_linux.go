//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/evpnd/evpnd/containerlab/lab"
)

// env is one evpnbench invocation: its work directory, the evpnd binary,
// and everything it started, torn down by close.
type env struct {
	log     *slog.Logger
	stderr  io.Writer
	work    string
	evpnd   string
	evpnctl string   // only when commonFlags.needCtl
	evEnv   []string // extra environment for evpnd
	// leafPprof: evpnd leafs serve Go's profiles on leafPprof (--pprof).
	leafPprof bool
	keep      bool
	labs      []*lab.Lab
	kids      []*child
	seq       int
}

func newEnv(ctx context.Context, c commonFlags, stderr io.Writer) (*env, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, errors.New("needs iproute2 (ip) on PATH")
	}
	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelDebug
	}
	e := &env{
		log:    slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		stderr: stderr,
		keep:   c.keep,
		evEnv:  c.env,
	}
	for _, kv := range c.env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("--evpnd-env %q: want KEY=VALUE", kv)
		}
	}
	if c.frr {
		for _, bin := range []string{frrZebra, frrBGPd, "vtysh"} {
			if _, err := exec.LookPath(bin); err != nil {
				return nil, fmt.Errorf("--frr needs FRR 8.4 (apt-get install frr): %w", err)
			}
		}
	}
	var err error
	if c.workDir != "" {
		e.work, err = filepath.Abs(c.workDir)
		if err == nil {
			err = os.MkdirAll(e.work, 0o755)
		}
	} else {
		e.work, err = os.MkdirTemp("", "evpnbench-")
	}
	if err != nil {
		return nil, fmt.Errorf("work directory: %w", err)
	}
	// FRR's daemons run as user frr and must reach their files in here.
	if err := os.Chmod(e.work, 0o755); err != nil {
		return nil, err
	}
	// The binaries not given are built, in one go build.
	bins := []struct {
		name, flag string
		want       bool
		path       *string
	}{
		{"evpnd", c.evpnd, true, &e.evpnd},
		{"evpnctl", c.evpnctl, c.needCtl, &e.evpnctl},
	}
	var build []string
	for _, b := range bins {
		switch {
		case !b.want:
		case b.flag == "":
			build = append(build, b.name)
			*b.path = filepath.Join(e.work, b.name)
		default:
			if *b.path, err = filepath.Abs(b.flag); err != nil {
				return nil, err
			}
		}
	}
	if len(build) > 0 {
		if err := buildCmds(ctx, e.work, build...); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// buildCmds builds ./cmd/NAME of the module evpnbench runs in, for each
// name, into dir.
func buildCmds(ctx context.Context, dir string, names ...string) error {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return fmt.Errorf("cannot find the evpnd module to build %s: run from the repository or pass --%s PATH",
			strings.Join(names, " and "), names[0])
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, "github.com/evpnd/evpnd/cmd/"+n)
	}
	c := exec.CommandContext(ctx, "go", args...)
	c.Dir = filepath.Dir(mod)
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w: %s", strings.Join(names, ", "), err, bytes.TrimSpace(out))
	}
	return nil
}

// deploy brings a topology up with every node's namespace named
// evb-<pid>-<name>-<node>, and starts no cmd.
func (e *env) deploy(ctx context.Context, name, topo string) (*lab.Lab, error) {
	e.seq++
	name = fmt.Sprintf("%s%d", name, e.seq)
	dir := filepath.Join(e.work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	t, err := lab.Parse([]byte(topo), dir)
	if err != nil {
		return nil, fmt.Errorf("topology %s: %w", name, err)
	}
	l, err := lab.Deploy(ctx, t, lab.Options{
		Prefix:    fmt.Sprintf("evb-%d-%s", os.Getpid(), name),
		WorkDir:   dir,
		NoStart:   true,
		StopGrace: 3 * time.Second,
		Logger:    e.log,
	})
	if err != nil {
		return nil, err
	}
	e.labs = append(e.labs, l)
	return l, nil
}

// child is a process evpnbench started inside a lab node.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// start runs argv in node's namespace in its own session (a terminal's
// Ctrl-C reaches evpnbench only, which then stops everything in order),
// with output appended to log.
func (e *env) start(l *lab.Lab, node, log string, argv []string, extraEnv []string) (*child, error) {
	c, err := l.Command(context.Background(), node, argv...)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c.Stdout, c.Stderr = f, f
	c.Env = append(c.Env, extraEnv...)
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return e.run(node+":"+filepath.Base(argv[0]), c)
}

// run starts c and tracks it for close.
func (e *env) run(name string, c *exec.Cmd) (*child, error) {
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	k := &child{name: name, cmd: c, done: make(chan struct{})}
	go func() { k.err = c.Wait(); close(k.done) }()
	e.kids = append(e.kids, k)
	e.log.Debug("started", "proc", name, "pid", c.Process.Pid)
	return k, nil
}

func (k *child) pid() int { return k.cmd.Process.Pid }

func (k *child) exited() bool {
	select {
	case <-k.done:
		return true
	default:
		return false
	}
}

// stop ends the process by PID: SIGTERM, SIGKILL after grace.
func (k *child) stop(grace time.Duration) {
	if k.exited() {
		return
	}
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.done:
		return
	case <-time.After(grace):
	}
	_ = k.cmd.Process.Kill()
	<-k.done
}

// stopKids stops every child still running, newest first.
func (e *env) stopKids() {
	for i := len(e.kids) - 1; i >= 0; i-- {
		e.kids[i].stop(3 * time.Second)
	}
	e.kids = nil
}

// teardown stops the children and a lab's cmds, deletes the VXLAN and
// bridge devices (the L2VNI's and the L3VNI's) of the given nodes first (this flushes their FDBs at once,
// instead of in the kernel's deferred namespace cleanup, which would
// compete with the next measurement), then destroys the lab.
func (e *env) teardown(l *lab.Lab, devNodes ...string) error {
	e.stopKids()
	var errs []error
	for _, n := range l.Topology().Nodes {
		if err := l.Stop(n.Name, syscall.SIGTERM); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range devNodes {
		if ns := l.Node(n); ns != nil {
			for _, dev := range []string{"vxlan100", "br100", l3VXLAN, l3SVI} {
				_, _ = ns.Exec(context.Background(), "ip", "link", "del", dev)
			}
		}
	}
	if err := l.Destroy(); err != nil {
		errs = append(errs, err)
	}
	for i, x := range e.labs {
		if x == l {
			e.labs = append(e.labs[:i], e.labs[i+1:]...)
			break
		}
	}
	return errors.Join(errs...)
}

// close tears everything down; it keeps the work directory when asked to
// or when the run failed, and says where it is.
func (e *env) close(runErr error) error {
	e.stopKids()
	var errs []error
	for len(e.labs) > 0 {
		if err := e.teardown(e.labs[len(e.labs)-1]); err != nil {
			errs = append(errs, err)
		}
	}
	if e.keep || runErr != nil {
		fmt.Fprintf(e.stderr, "evpnbench: configs and logs kept in %s\n", e.work)
	} else if err := os.RemoveAll(e.work); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// waitFor polls cond every interval until it is true, it fails, or ctx or
// the timeout ends.
func waitFor(ctx context.Context, timeout, interval time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// apiSocketFor returns a per-node API socket path next to the node's log,
// so that the evpnd nodes of one host never share the default socket.
func apiSocketFor(logPath string) string {
	return strings.TrimSuffix(logPath, ".log") + ".sock"
}
