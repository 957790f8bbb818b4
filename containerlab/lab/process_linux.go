package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const syscallSIGTERM = syscall.SIGTERM

// proc is a node's cmd process, or a process found in a lab namespace.
type proc struct {
	pid     int
	argv    []string
	started time.Time
	// nsPath is the namespace the process must be in to be the lab's: a
	// process found by PID alone (Open, Destroy) is signalled only while it
	// is still there, so a recycled PID is never hit.
	nsPath string
	// done is closed when the process has been reaped; nil for processes
	// that are not this program's children.
	done chan struct{}
	err  error // exit status; valid once done is closed
}

func (p *proc) exited() bool {
	if p.done != nil {
		select {
		case <-p.done:
			return true
		default:
			return false
		}
	}
	return !alive(p.pid) || !inNetns(p.pid, p.nsPath)
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] != 'Z' && s[i+2] != 'X'
}

// inNetns reports whether pid's network namespace is the one bound at
// nsPath, as "ip netns pids" decides it: same device and inode.
func inNetns(pid int, nsPath string) bool {
	var a, b syscall.Stat_t
	if syscall.Stat("/proc/"+strconv.Itoa(pid)+"/ns/net", &a) != nil {
		return false
	}
	if syscall.Stat(nsPath, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// netnsPIDs lists the processes inside a namespace ("ip netns pids"),
// leaving out this process in case one of its threads is visiting.
func netnsPIDs(name string) ([]int, error) {
	out, err := exec.Command("ip", "netns", "pids", name).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ip netns pids %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("ip netns pids %s: unexpected output %q", name, f)
		}
		if pid > 1 && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// stopAll sends sig to every live process, waits up to grace for them to
// exit, then SIGKILLs the rest and waits for those too.
func stopAll(procs []*proc, sig syscall.Signal, grace time.Duration) error {
	var live []*proc
	for _, p := range procs {
		if p.pid <= 1 || p.pid == os.Getpid() || p.exited() {
			continue
		}
		if err := syscall.Kill(p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("signal pid %d: %w", p.pid, err)
		}
		live = append(live, p)
	}
	if sig != syscall.SIGKILL {
		live = waitExit(live, grace)
		for _, p := range live {
			if p.exited() {
				continue
			}
			if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("kill pid %d: %w", p.pid, err)
			}
		}
	}
	if live = waitExit(live, 5*time.Second); len(live) > 0 {
		pids := make([]string, len(live))
		for i, p := range live {
			pids[i] = strconv.Itoa(p.pid)
		}
		return fmt.Errorf("processes %s still running after SIGKILL", strings.Join(pids, ","))
	}
	return nil
}

// waitExit polls until every process has exited or the timeout passes, and
// returns those still running.
func waitExit(procs []*proc, timeout time.Duration) []*proc {
	deadline := time.Now().Add(timeout)
	for {
		var left []*proc
		for _, p := range procs {
			if !p.exited() {
				left = append(left, p)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		procs = left
		time.Sleep(10 * time.Millisecond)
	}
}

// Start starts a node's cmd in its namespace in the background, with
// stdout and stderr appended to LogPath(node). It fails when the cmd is
// already running or its binary cannot be found on the lab's PATH.
func (l *Lab) Start(node string) error {
	ln, err := l.lookup(node)
	if err != nil {
		return err
	}
	l.mu.Lock()
	p, err := l.startLocked(ln)
	l.mu.Unlock()
	if err != nil {
		return err
	}
	if p != nil {
		l.log.Info("node started", "node", node, "pid", p.pid, "cmd", strings.Join(p.argv, " "))
	}
	return l.saveState()
}

func (l *Lab) startLocked(ln *labNode) (*proc, error) {
	n := ln.node
	if ln.proc != nil && !ln.proc.exited() {
		return nil, fmt.Errorf("node %s: already running (pid %d)", n.Name, ln.proc.pid)
	}
	if n.Cmd == "" {
		return nil, fmt.Errorf("node %s: no cmd to start", n.Name)
	}
	argv, err := splitWords(n.Cmd)
	if err != nil {
		return nil, fmt.Errorf("node %s: cmd: %w", n.Name, err)
	}
	for i := range argv {
		argv[i] = n.HostPath(argv[i])
	}
	if l.opts.Cmd != nil {
		argv = l.opts.Cmd(n.Name, argv)
	}
	if len(argv) == 0 {
		return nil, nil
	}
	env := l.env(n)
	bin, err := lookPath(argv[0], env)
	if err != nil {
		return nil, fmt.Errorf("node %s: cmd %q: %w", n.Name, n.Cmd, err)
	}
	argv[0] = bin
	logf, err := os.OpenFile(l.LogPath(n.Name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	defer logf.Close() // the child has its own copy
	fmt.Fprintf(logf, "--- evpnlab %s: start %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	// No context: the process outlives the call; Stop and Destroy end it.
	c := ln.ns.Command(context.Background(), argv...)
	c.Env, c.Dir = env, l.opts.WorkDir
	c.Stdout, c.Stderr = logf, logf
	// Its own session: a terminal's Ctrl-C or hangup reaches evpnlab only,
	// which then stops the nodes itself, and a detached lab outlives the
	// terminal.
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("node %s: start %q: %w", n.Name, n.Cmd, err)
	}
	p := &proc{pid: c.Process.Pid, argv: argv, started: time.Now(), nsPath: ln.ns.Path(), done: make(chan struct{})}
	go func() {
		p.err = c.Wait()
		close(p.done)
	}()
	ln.proc = p
	return p, nil
}

// lookPath resolves a command like execvp would with the PATH in env, so a
// missing binary is reported at Start rather than in the node's log.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		abs, err := filepath.Abs(file)
		if err != nil {
			return "", err
		}
		return abs, executable(abs)
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		cand, err := filepath.Abs(filepath.Join(dir, file))
		if err == nil && executable(cand) == nil {
			return cand, nil
		}
	}
	return "", fmt.Errorf("executable %q not found in PATH %s", file, path)
}

func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// nodeProc returns the process last started for a node's cmd, or nil.
func (l *Lab) nodeProc(node string) (*proc, error) {
	ln, err := l.lookup(node)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return ln.proc, nil
}

// Stop sends sig to a node's cmd and waits for it to exit, sending SIGKILL
// after StopGrace. Stopping a node that is not running is not an error.
func (l *Lab) Stop(node string, sig syscall.Signal) error {
	p, err := l.nodeProc(node)
	if err != nil {
		return err
	}
	if p == nil || p.exited() {
		return nil
	}
	if err := stopAll([]*proc{p}, sig, l.opts.StopGrace); err != nil {
		return fmt.Errorf("node %s: stop: %w", node, err)
	}
	l.log.Info("node stopped", "node", node, "pid", p.pid, "signal", sig.String())
	return l.saveState()
}

// Signal sends sig to a node's running cmd without waiting.
func (l *Lab) Signal(node string, sig syscall.Signal) error {
	p, err := l.nodeProc(node)
	if err != nil {
		return err
	}
	if p == nil || p.exited() {
		return fmt.Errorf("node %s: not running", node)
	}
	if err := syscall.Kill(p.pid, sig); err != nil {
		return fmt.Errorf("node %s: signal pid %d: %w", node, p.pid, err)
	}
	return nil
}

// Restart stops a node's cmd with SIGTERM (SIGKILL after StopGrace) and
// starts it again.
func (l *Lab) Restart(node string) error {
	if err := l.Stop(node, syscall.SIGTERM); err != nil {
		return err
	}
	return l.Start(node)
}

// PID returns the PID of a node's running cmd, or 0.
func (l *Lab) PID(node string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ln := l.nodes[node]; ln != nil && ln.proc != nil && !ln.proc.exited() {
		return ln.proc.pid
	}
	return 0
}

// Running reports whether a node's cmd is running.
func (l *Lab) Running(node string) bool { return l.PID(node) != 0 }

// Exited reports whether a node's last cmd, started by this Lab, has
// exited, and how: err is nil for exit status 0. It is (false, nil) while
// the cmd runs or when this Lab never started it.
func (l *Lab) Exited(node string) (exited bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln := l.nodes[node]
	if ln == nil || ln.proc == nil || ln.proc.done == nil {
		return false, nil
	}
	select {
	case <-ln.proc.done:
		return true, ln.proc.err
	default:
		return false, nil
	}
}
