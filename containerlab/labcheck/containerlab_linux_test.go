package labcheck

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evpnd/evpnd/containerlab/lab"
	"github.com/evpnd/evpnd/containerlab/netns"
)

// docker runs commands in the containers of a containerlab lab, named
// clab-<lab>-<node>.
type docker struct{ lab string }

func (d docker) container(node string) string { return "clab-" + d.lab + "-" + node }

func (d docker) Command(ctx context.Context, node string, argv ...string) (*exec.Cmd, error) {
	return exec.CommandContext(ctx, "docker", append([]string{"exec", d.container(node)}, argv...)...), nil
}

func (d docker) Exec(ctx context.Context, node string, argv ...string) (string, error) {
	c, _ := d.Command(ctx, node, argv...)
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %s: %w: %s", node, strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// run runs a command and returns its combined output, the error naming
// the command and its output.
func run(env []string, name string, args ...string) (string, error) {
	c := exec.Command(name, args...)
	c.Env = append(os.Environ(), env...)
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// requireContainerlab skips the test unless docker and containerlab work.
func requireContainerlab(t *testing.T) {
	t.Helper()
	netns.RequireRoot(t)
	if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
		t.Skipf("skipping the real containerlab deploy: Docker does not work here (docker info: %v: %s)", err, firstLine(string(out)))
	}
	if out, err := exec.Command("containerlab", "version").CombinedOutput(); err != nil {
		t.Skipf("skipping the real containerlab deploy: containerlab does not work here (containerlab version: %v: %s)", err, firstLine(string(out)))
	}
}

// hostLinks lists the interface names of the host's network namespace.
func hostLinks(t *testing.T) []string {
	t.Helper()
	out, err := run(nil, "ip", "-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.SplitN(line, ": ", 3); len(f) == 3 {
			names = append(names, strings.SplitN(f[1], "@", 2)[0])
		}
	}
	return names
}

// TestContainerlab is the real deploy, as a user does it: build evpnd and
// evpnctl into containerlab/bin, build the image from containerlab/ (one
// build for all), then for each topology in turn: containerlab validate
// and deploy, the connectivity matrix and MAC check through docker exec, a
// spine kill (docker kill) where there are two spines, containerlab
// destroy, and a check that no container, host link or lab directory is
// left. It skips, saying so, where Docker or containerlab does not work.
func TestContainerlab(t *testing.T) {
	requireContainerlab(t)
	start := time.Now()
	if err := goBuild(filepath.Join("..", "bin")); err != nil {
		t.Fatal(err)
	}
	// A lab directory beside the topologies, as containerlab makes one,
	// with an API socket in it: .dockerignore must keep it out of the build
	// context (docker cannot add sockets).
	stray := filepath.Join("..", fmt.Sprintf("clab-labcheck-%d", os.Getpid()))
	t.Cleanup(func() { os.RemoveAll(stray) })
	if err := os.MkdirAll(filepath.Join(stray, "leaf1", "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(stray, "leaf1", "run", "evpnd.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// --network host: builds need no container network (some hosts run
	// dockerd without NAT).
	old, _ := run(nil, "docker", "image", "inspect", "-f", "{{.Id}}", "evpnd:latest")
	out, err := run(nil, "docker", "build", "--network", "host", "-t", "evpnd:latest", "..")
	if err != nil {
		t.Fatal(err)
	}
	// The image this build replaced would stay behind untagged, its
	// binaries' layer with it, after every run.
	if now, _ := run(nil, "docker", "image", "inspect", "-f", "{{.Id}}", "evpnd:latest"); strings.TrimSpace(old) != "" && now != old {
		run(nil, "docker", "rmi", strings.TrimSpace(old)) // fails harmlessly while a container uses it
	}
	if strings.Contains(out, "Can't add file") || strings.Contains(out, filepath.Base(stray)) {
		t.Errorf("docker build took the lab directory %s into its context (.dockerignore):\n%s", stray, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "build context") {
			t.Log(strings.TrimSpace(line))
		}
	}
	t.Logf("evpnd and evpnctl built, image evpnd:latest built (%v)", time.Since(start).Round(time.Second))
	for _, file := range topologies(t) {
		t.Run(filepath.Base(file), func(t *testing.T) { deployContainerlab(t, file) })
	}
}

func deployContainerlab(t *testing.T, file string) {
	start := time.Now()
	topo, err := lab.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	p, err := PlanOf(topo)
	if err != nil {
		t.Fatal(err)
	}
	// The lab directory goes to a temporary base, not beside the topology
	// in the source tree.
	base := t.TempDir()
	labDir := filepath.Join(base, "clab-"+topo.Name)
	env := []string{"CLAB_LABDIR_BASE=" + base, "CLAB_VERSION_CHECK=disable"}
	d := docker{lab: topo.Name}
	// A lab of the same name left by an aborted run would make the deploy
	// fail: remove it first.
	if out, err := run(nil, "docker", "ps", "-aq", "--filter", "label=containerlab="+topo.Name); err == nil && strings.TrimSpace(out) != "" {
		t.Logf("removing containers of an earlier %s lab", topo.Name)
		run(env, "containerlab", "destroy", "-t", file, "--cleanup")
	}
	// containerlab refuses missing bind sources: make the run directories.
	mkdirs := func() {
		for _, n := range topo.ForWorkDir(labDir).Nodes {
			for _, b := range n.Binds {
				if b.InLabDir {
					if err := os.MkdirAll(b.Src, 0o755); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	mkdirs()
	if _, err := run(env, "containerlab", "validate", "-t", file); err != nil {
		t.Fatal(err)
	}
	linksBefore := hostLinks(t)
	destroyed := false
	destroy := func() {
		if destroyed {
			return
		}
		destroyed = true
		if t.Failed() {
			for _, n := range topo.Nodes {
				if n.Cmd == "" {
					continue
				}
				if out, err := run(nil, "docker", "logs", "--tail", "30", d.container(n.Name)); err == nil {
					t.Logf("--- %s log (tail)\n%s", n.Name, out)
				}
			}
		}
		if _, err := run(env, "containerlab", "destroy", "-t", file, "--cleanup"); err != nil {
			t.Errorf("destroy: %v", err)
		}
		if out, err := run(nil, "docker", "ps", "-aq", "--filter", "label=containerlab="+topo.Name); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("containers left after destroy: %q %v", out, err)
		}
		if _, err := os.Stat(labDir); !os.IsNotExist(err) {
			t.Errorf("lab directory %s left after destroy (%v)", labDir, err)
		}
		for _, l := range hostLinks(t) {
			if !slices.Contains(linksBefore, l) && (strings.HasPrefix(l, "veth") || strings.HasPrefix(l, "br-") || strings.Contains(l, "clab")) {
				t.Errorf("host link %s left after destroy", l)
			}
		}
	}
	t.Cleanup(destroy)
	out, err := run(env, "containerlab", "deploy", "-t", file)
	if err != nil {
		// containerlab itself sometimes fails to wire a link on a loaded
		// host ("deploy links: Link not found"): one more try from a
		// clean slate, saying so.
		t.Logf("containerlab deploy failed, destroying and deploying once more: %v", err)
		if _, err := run(env, "containerlab", "destroy", "-t", file, "--cleanup"); err != nil {
			t.Fatal(err)
		}
		mkdirs()
		if out, err = run(env, "containerlab", "deploy", "-t", file); err != nil {
			t.Fatal(err)
		}
	}
	// containerlab deploys even when a node's exec command fails, and
	// only logs it.
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "Failed to execute command") || strings.Contains(line, "failed to run exec commands") {
			t.Errorf("containerlab deploy: %s", strings.TrimSpace(line))
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("deployed with containerlab in %v", time.Since(start).Round(time.Second))
	checkFabric(t, p, d)
	checkSpineKill(t, topo, p, d, d.Command, func(spine string) error {
		_, err := run(nil, "docker", "kill", d.container(spine))
		return err
	})
	destroy()
	t.Logf("%s: deployed, checked and destroyed in %v", topo.Name, time.Since(start).Round(time.Second))
}
