package api

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// connectAs connects to a Unix socket with the filesystem identity of
// uid/gid (fsuid/fsgid, which the kernel checks for a socket's write
// permission), on a locked thread so that nothing else runs as them.
func connectAs(t *testing.T, path string, uid, gid int) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread's credentials are changed: never hand it back.
		unix.Setfsgid(gid)
		unix.Setfsuid(uid)
		c, err := net.Dial("unix", path)
		if err == nil {
			c.Close()
		}
		errc <- err
	}()
	return <-errc
}

// TestSocketAccess: another user cannot connect to the default socket
// (mode 0600); a member of api.socket-group can (0660), a non-member
// cannot.
func TestSocketAccess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as other users")
	}
	const nobody = 65534
	// Every directory down to the socket traversable by all, so that only
	// the socket's own mode decides (t.TempDir makes its parent 0700).
	dir := t.TempDir()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Control: a world-writable file that is not a socket is reached
	// (ECONNREFUSED), so EACCES below comes from the socket's mode.
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(probe, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := connectAs(t, probe, nobody, nobody); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("control: connecting to a plain file as uid %d: %v, want connection refused", nobody, err)
	}
	rootOnly := filepath.Join(dir, "root.sock")
	serve(t, &fakeBackend{}, ListenConfig{Socket: rootOnly})
	if err := connectAs(t, rootOnly, 0, 0); err != nil {
		t.Fatalf("root cannot connect: %v", err)
	}
	if err := connectAs(t, rootOnly, nobody, nobody); !errors.Is(err, syscall.EACCES) {
		t.Errorf("uid %d connected to a 0600 root socket: %v", nobody, err)
	}

	grouped := filepath.Join(dir, "group.sock")
	serve(t, &fakeBackend{}, ListenConfig{Socket: grouped, SocketGroup: strconv.Itoa(nobody)})
	if err := connectAs(t, grouped, nobody, nobody); err != nil {
		t.Errorf("a member of the socket group cannot connect: %v", err)
	}
	if err := connectAs(t, grouped, nobody, nobody-1); !errors.Is(err, syscall.EACCES) {
		t.Errorf("a user outside the socket group connected: %v", err)
	}
}
