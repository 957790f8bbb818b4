// Package netns manages named Linux network namespaces for evpnlab and for
// evpnd's privileged tests. Namespaces are created with iproute2
// ("ip netns add"), so they are visible to "ip netns exec" and to an
// operator inspecting a lab, and are entered only from goroutines locked to
// their OS thread.
package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
)

// NS is a named network namespace.
type NS struct {
	Name string
}

// Create adds the named namespace with loopback up. A leftover namespace of
// the same name (from a crashed run) is removed first.
func Create(name string) (*NS, error) {
	if Exists(name) {
		_ = Delete(name)
	}
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	ns := &NS{Name: name}
	if _, err := ns.Exec(context.Background(), "ip", "link", "set", "lo", "up"); err != nil {
		_ = Delete(name)
		return nil, err
	}
	return ns, nil
}

// Exists reports whether /run/netns/name exists.
func Exists(name string) bool {
	_, err := os.Stat("/run/netns/" + name)
	return err == nil
}

// Delete removes the named namespace; a missing one is not an error.
func Delete(name string) error {
	if !Exists(name) {
		return nil
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// Delete removes the namespace.
func (n *NS) Delete() error { return Delete(n.Name) }

// Path is the namespace's bind-mount path.
func (n *NS) Path() string { return "/run/netns/" + n.Name }

// Handle opens a netlink handle bound to the namespace. Close it when done.
func (n *NS) Handle() (*netlink.Handle, error) {
	h, err := vnetns.GetFromName(n.Name)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", n.Name, err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", n.Name, err)
	}
	return nh, nil
}

// Do runs fn with the calling goroutine's OS thread inside the namespace.
// If the thread cannot be switched back, it stays locked so that it dies
// with the goroutine instead of leaking the namespace to other goroutines.
func (n *NS) Do(fn func() error) error {
	target, err := vnetns.GetFromName(n.Name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", n.Name, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := vnetns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", n.Name, err)
			return
		}
		ferr := fn()
		if err := vnetns.Set(orig); err != nil {
			// Leave the thread locked: it exits with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("restore netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Command returns an exec.Cmd that runs argv inside the namespace.
func (n *NS) Command(ctx context.Context, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name}, argv...)...)
}

// Exec runs argv inside the namespace and returns its combined output; a
// failure's error includes the output.
func (n *NS) Exec(ctx context.Context, argv ...string) (string, error) {
	out, err := n.Command(ctx, argv...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("[%s] %s: %v: %s", n.Name, strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}
