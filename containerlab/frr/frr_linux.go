// Package frr runs FRR (zebra, then bgpd) in a lab node, for the interop
// tests and evpnbench: one instance per node, with everything it uses in
// its own directory (config copies, PID files, the zserv socket, the vty
// sockets, logs), as user frr, with no vty TCP port, so that vtysh on the
// instance's sockets reaches it and no other FRR on the host.
package frr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/evpnd/evpnd/containerlab/lab"
)

// Where Debian's frr package installs the daemons.
const (
	Zebra = "/usr/lib/frr/zebra"
	BGPd  = "/usr/lib/frr/bgpd"
)

// Options describe one instance.
type Options struct {
	// ZebraConf and BGPdConf are the daemons' configs.
	ZebraConf, BGPdConf []byte
	// ZebraArgs are added to zebra's command line (evpnbench: -s 90000000,
	// the netlink buffer Debian's /etc/frr/daemons gives it).
	ZebraArgs []string
	// LogLevel is passed as --log-level when set.
	LogLevel string
	// User runs the daemons; nil: user frr.
	User *user.User
	// Wait bounds each daemon's start (default 10 s).
	Wait time.Duration
	// Run starts a daemon's command; nil: Start runs it itself. evpnbench
	// passes its own, which tracks the process for its clean-up.
	Run func(name string, cmd *exec.Cmd) (Process, error)

	user, group string // the names of User and its group
}

// Process is one running daemon.
type Process interface {
	PID() int
	// Exited reports whether it has exited, and then its error.
	Exited() (bool, error)
}

// Daemon is one FRR process of an instance.
type Daemon struct {
	Name string // zebra, bgpd
	Process
}

// Instance is one FRR in a lab node.
type Instance struct {
	Node    string
	Dir     string
	Daemons []Daemon // in start order
}

// Start writes the configs into dir (made if needed, given to user frr)
// and starts zebra, then bgpd once zebra's API socket exists, in node's
// namespace, and checks that the PID files name the processes it started.
// The caller must call Stop, also when Start fails (the returned Instance
// is then non-nil as soon as anything ran).
func Start(l *lab.Lab, node, dir string, o Options) (*Instance, error) {
	u := o.User
	if u == nil {
		var err error
		if u, err = user.Lookup("frr"); err != nil {
			return nil, fmt.Errorf("FRR's user: %w", err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if o.Wait <= 0 {
		o.Wait = 10 * time.Second
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil { // the daemons run as frr
		return nil, err
	}
	for name, data := range map[string][]byte{"zebra.conf": o.ZebraConf, "bgpd.conf": o.BGPdConf} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o640); err != nil {
			return nil, err
		}
		if err := os.Chown(p, uid, gid); err != nil {
			return nil, err
		}
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return nil, err
	}
	o.user, o.group = u.Username, g.Name
	f := &Instance{Node: node, Dir: dir}
	if err := f.start(l, Zebra, o, o.ZebraArgs...); err != nil {
		return f, err
	}
	if err := f.waitFiles(o.Wait, f.path("zserv.api"), f.path("zebra.vty")); err != nil {
		return f, err
	}
	if err := f.start(l, BGPd, o); err != nil {
		return f, err
	}
	if err := f.waitFiles(o.Wait, f.path("bgpd.vty")); err != nil {
		return f, err
	}
	for _, d := range f.Daemons {
		b, err := os.ReadFile(f.path(d.Name + ".pid"))
		if err != nil {
			return f, err
		}
		if got := strings.TrimSpace(string(b)); got != strconv.Itoa(d.PID()) {
			return f, fmt.Errorf("FRR %s on %s: PID file says %s, we started %d", d.Name, node, got, d.PID())
		}
	}
	return f, nil
}

func (f *Instance) path(name string) string { return filepath.Join(f.Dir, name) }

// start runs one daemon in the foreground, with explicit paths for
// everything FRR would otherwise take from /etc/frr and /var/run/frr.
func (f *Instance) start(l *lab.Lab, bin string, o Options, extra ...string) error {
	name := filepath.Base(bin)
	args := []string{
		"-f", f.path(name + ".conf"),
		"-i", f.path(name + ".pid"),
		"-z", f.path("zserv.api"),
		"--vty_socket", f.Dir,
		"-u", o.user, "-g", o.group,
		"--log", "file:" + f.path(name+".log"),
		"-P", "0", // no vty TCP port
	}
	if o.LogLevel != "" {
		args = append(args, "--log-level", o.LogLevel)
	}
	cmd, err := l.Command(context.Background(), f.Node, append(append([]string{bin}, args...), extra...)...)
	if err != nil {
		return err
	}
	out, err := os.Create(f.path(name + ".out"))
	if err != nil {
		return err
	}
	defer out.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = out, out
	run := o.Run
	if run == nil {
		run = runCmd
	}
	p, err := run(f.Node+":"+name, cmd)
	if err != nil {
		return fmt.Errorf("start FRR %s on %s: %w", name, f.Node, err)
	}
	f.Daemons = append(f.Daemons, Daemon{Name: name, Process: p})
	return nil
}

// proc is a Process Start runs itself.
type proc struct {
	pid  int
	done chan struct{}
	err  error // valid once done is closed
}

func runCmd(_ string, cmd *exec.Cmd) (Process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) PID() int { return p.pid }

func (p *proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// waitFiles waits until every path exists, failing early when a daemon
// exits.
func (f *Instance) waitFiles(timeout time.Duration, paths ...string) error {
	deadline := time.Now().Add(timeout)
	for {
		missing := ""
		for _, p := range paths {
			if _, err := os.Stat(p); err != nil {
				missing = p
				break
			}
		}
		if missing == "" {
			return nil
		}
		for _, d := range f.Daemons {
			if gone, err := d.Exited(); gone {
				return fmt.Errorf("FRR %s on %s exited at start: %v\n%s", d.Name, f.Node, err, f.LogTail(d.Name, 40))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("FRR on %s: %s did not appear within %v", f.Node, missing, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends the daemons by PID, newest first: SIGTERM, SIGKILL after 5 s.
// It reports a daemon that had exited on its own (a crash) and config
// lines FRR rejected: FRR logs a line it cannot parse and carries on
// without it, and a test must not pass on half its config. It leaves Dir.
func (f *Instance) Stop() error {
	if f == nil {
		return nil
	}
	var errs []error
	for i := len(f.Daemons) - 1; i >= 0; i-- {
		d := f.Daemons[i]
		if gone, err := d.Exited(); gone {
			errs = append(errs, fmt.Errorf("FRR %s on %s exited while running: %v\n%s", d.Name, f.Node, err, f.LogTail(d.Name, 40)))
			continue
		}
		_ = syscall.Kill(d.PID(), syscall.SIGTERM)
		deadline := time.Now().Add(5 * time.Second)
		for gone, _ := d.Exited(); !gone; gone, _ = d.Exited() {
			if time.Now().After(deadline) {
				_ = syscall.Kill(d.PID(), syscall.SIGKILL)
				deadline = time.Now().Add(time.Hour)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, d := range f.Daemons {
		data, _ := os.ReadFile(f.path(d.Name + ".log"))
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "on config line") {
				errs = append(errs, fmt.Errorf("FRR %s on %s rejected its config: %s", d.Name, f.Node, line))
			}
		}
	}
	return errors.Join(errs...)
}

// PIDs are the daemons' process IDs.
func (f *Instance) PIDs() []int {
	out := make([]int, len(f.Daemons))
	for i, d := range f.Daemons {
		out[i] = d.PID()
	}
	return out
}

// Vtysh runs one command against this instance only.
func (f *Instance) Vtysh(ctx context.Context, command string) (string, error) {
	out, err := exec.CommandContext(ctx, "vtysh", "--vty_socket", f.Dir, "-c", command).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vtysh on %s: %q: %w: %s", f.Node, command, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// LogTail returns the last n lines of a daemon's log file and of its
// stdout/stderr.
func (f *Instance) LogTail(daemon string, n int) string {
	var b strings.Builder
	for _, name := range []string{daemon + ".log", daemon + ".out"} {
		fmt.Fprintf(&b, "--- %s %s (last %d lines)\n%s", f.Node, name, n, TailFile(f.path(name), n))
	}
	return b.String()
}

// TailFile returns the last n lines of a file, or the error reading it.
func TailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error() + "\n"
	}
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}
