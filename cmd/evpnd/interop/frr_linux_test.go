package interop

import (
	"bytes"
	"context"
	"encoding/json"
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

// Where an FRR node's topology binds its configs (see the .clab.yml files).
const (
	zebraConfDst = "/etc/frr/zebra.conf"
	bgpdConfDst  = "/etc/frr/bgpd.conf"
)

// frrNode is one FRR instance, zebra and bgpd, in a lab node's namespace.
// Everything it uses lives in dir: config copies, PID files, the zserv
// socket, the vty sockets and the logs.
type frrNode struct {
	node    string
	dir     string
	daemons []*frrDaemon // in start order
}

// frrDaemon is one FRR process this test started.
type frrDaemon struct {
	name string
	pid  int
	done chan struct{}
	err  error // valid once done is closed
}

func (d *frrDaemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// startFRR starts zebra, then bgpd once zebra's API socket exists, in the
// node's namespace. The caller must call stop, also when startFRR fails.
func startFRR(l *lab.Lab, node string, u *user.User) (*frrNode, error) {
	n := l.Topology().Node(node)
	confs := map[string]string{}
	for _, b := range n.Binds {
		confs[b.Dst] = b.Src
	}
	if confs[zebraConfDst] == "" || confs[bgpdConfDst] == "" {
		return nil, fmt.Errorf("FRR node %s: want binds to %s and %s, have %+v", node, zebraConfDst, bgpdConfDst, n.Binds)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, err
	}
	// Not t.TempDir: its parents are mode 0700, and the daemons run as frr.
	dir, err := os.MkdirTemp("", fmt.Sprintf("evt-frr-%d-%s-", os.Getpid(), node))
	if err != nil {
		return nil, err
	}
	f := &frrNode{node: node, dir: dir}
	if err := os.Chmod(dir, 0o755); err != nil {
		return f, err
	}
	for dst, name := range map[string]string{zebraConfDst: "zebra.conf", bgpdConfDst: "bgpd.conf"} {
		data, err := os.ReadFile(confs[dst])
		if err != nil {
			return f, err
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o640); err != nil {
			return f, err
		}
		if err := os.Chown(p, uid, gid); err != nil {
			return f, err
		}
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return f, err
	}

	zserv := filepath.Join(dir, "zserv.api")
	if err := f.start(l, zebra, "zebra.conf"); err != nil {
		return f, err
	}
	if err := f.waitFiles(10*time.Second, zserv, filepath.Join(dir, "zebra.vty")); err != nil {
		return f, err
	}
	if err := f.start(l, bgpd, "bgpd.conf"); err != nil {
		return f, err
	}
	if err := f.waitFiles(10*time.Second, filepath.Join(dir, "bgpd.vty")); err != nil {
		return f, err
	}
	// The PID files name our processes: vtysh on these sockets reaches this
	// instance, not some other FRR on the host.
	for _, d := range f.daemons {
		b, err := os.ReadFile(filepath.Join(dir, d.name+".pid"))
		if err != nil {
			return f, err
		}
		if got := strings.TrimSpace(string(b)); got != strconv.Itoa(d.pid) {
			return f, fmt.Errorf("FRR %s on %s: PID file says %s, we started %d", d.name, node, got, d.pid)
		}
	}
	return f, nil
}

// start runs one daemon in the foreground as a child of the test, with
// explicit paths for everything FRR would otherwise take from /etc/frr and
// /var/run/frr.
func (f *frrNode) start(l *lab.Lab, bin, conf string) error {
	name := filepath.Base(bin)
	p := func(s string) string { return filepath.Join(f.dir, s) }
	cmd, err := l.Command(context.Background(), f.node, bin,
		"-f", p(conf),
		"-i", p(name+".pid"),
		"-z", p("zserv.api"),
		"--vty_socket", f.dir,
		"-u", frrUsr, "-g", frrUsr,
		"--log", "file:"+p(name+".log"),
		"--log-level", "debug",
		"-P", "0", // no vty TCP port
	)
	if err != nil {
		return err
	}
	out, err := os.Create(p(name + ".out"))
	if err != nil {
		return err
	}
	defer out.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start FRR %s on %s: %w", name, f.node, err)
	}
	d := &frrDaemon{name: name, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	f.daemons = append(f.daemons, d)
	return nil
}

// waitFiles waits until every path exists, failing early when a daemon
// exits.
func (f *frrNode) waitFiles(timeout time.Duration, paths ...string) error {
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
		for _, d := range f.daemons {
			if d.exited() {
				return fmt.Errorf("FRR %s on %s exited at start: %v\n%s", d.name, f.node, d.err, f.logTail(d.name, 40))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("FRR on %s: %s did not appear within %v", f.node, missing, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the daemons by PID, newest first: SIGTERM, SIGKILL after 5 s.
// It reports a daemon that had exited on its own (a crash during the
// test) and config lines FRR rejected, then removes the instance
// directory.
func (f *frrNode) stop() error {
	var errs []error
	for i := len(f.daemons) - 1; i >= 0; i-- {
		d := f.daemons[i]
		if d.exited() {
			errs = append(errs, fmt.Errorf("FRR %s on %s exited during the test: %v\n%s", d.name, f.node, d.err, f.logTail(d.name, 40)))
			continue
		}
		_ = syscall.Kill(d.pid, syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(d.pid, syscall.SIGKILL)
			<-d.done
		}
	}
	// FRR reports a config line it cannot parse in its log and carries on
	// without it; a test must not pass on half its config.
	for _, d := range f.daemons {
		data, _ := os.ReadFile(filepath.Join(f.dir, d.name+".log"))
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "on config line") {
				errs = append(errs, fmt.Errorf("FRR %s on %s rejected its config: %s", d.name, f.node, line))
			}
		}
	}
	if err := os.RemoveAll(f.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// vtysh runs one command against this instance only.
func (f *frrNode) vtysh(command string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "vtysh", "--vty_socket", f.dir, "-c", command).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vtysh on %s: %q: %w: %s", f.node, command, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// vtyJSON runs a "... json" command and decodes its output into v.
func (f *frrNode) vtyJSON(command string, v any) error {
	out, err := f.vtysh(command)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("vtysh on %s: %q: decode: %w\n%s", f.node, command, err, out)
	}
	return nil
}

// logTail returns the last n lines of a daemon's log file and its
// stdout/stderr.
func (f *frrNode) logTail(daemon string, n int) string {
	var b strings.Builder
	for _, name := range []string{daemon + ".log", daemon + ".out"} {
		fmt.Fprintf(&b, "--- %s %s (last %d lines)\n%s", f.node, name, n, tailFile(filepath.Join(f.dir, name), n))
	}
	return b.String()
}

// tailFile returns the last n lines of a file, or the error reading it.
func tailFile(path string, n int) string {
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
