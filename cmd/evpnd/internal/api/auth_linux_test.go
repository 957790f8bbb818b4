package api

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// dialAs connects to the Unix socket at path as another user: on a
// locked thread whose real, effective and saved UID and GID and whose
// supplementary groups are set with raw syscalls, which change that one
// thread (Go's syscall.Setresuid would change every thread). The kernel
// records the connecting thread's credentials for SO_PEERCRED and
// SO_PEERGROUPS. The thread cannot become root again, so it is never
// unlocked and ends with its goroutine. It returns a client on that
// connection.
func dialAs(t *testing.T, path string, uid, gid int, groups ...int) evpndv1.EvpndServiceClient {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		gs := make([]uint32, len(groups)+1)
		for i, g := range groups {
			gs[i] = uint32(g)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(unsafe.Pointer(&gs[0])), 0); e != 0 {
			done <- result{err: e}
			return
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
			done <- result{err: e}
			return
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
			done <- result{err: e}
			return
		}
		c, err := net.Dial("unix", path)
		done <- result{c, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("connect to %s as uid %d gid %d groups %v: %v", path, uid, gid, groups, r.err)
	}
	used := false
	cc, err := grpc.NewClient("passthrough:///evpnd",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) {
			if used {
				return nil, errors.New("the connection made as another user is gone")
			}
			used = true
			return r.c, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return evpndv1.NewEvpndServiceClient(cc)
}

// openDir makes every directory down to dir traversable by all, so that
// only the socket's own mode decides who connects.
func openDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// wantDenied checks that err is PERMISSION_DENIED containing every part.
func wantDenied(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("%s: %v, want PERMISSION_DENIED", what, err)
		return
	}
	for _, p := range parts {
		if !strings.Contains(status.Convert(err).Message(), p) {
			t.Errorf("%s: %q does not say %q", what, status.Convert(err).Message(), p)
		}
	}
}

// mutations makes every call that changes the daemon and returns their
// errors by name.
func mutations(c evpndv1.EvpndServiceClient, ctx context.Context) map[string]error {
	_, add := c.AddVNI(ctx, &evpndv1.AddVNIRequest{Vni: &evpndv1.L2VNISpec{Vni: 300}})
	_, del := c.DeleteVNI(ctx, &evpndv1.DeleteVNIRequest{Vni: 100})
	_, clr := c.ClearDuplicate(ctx, &evpndv1.ClearDuplicateRequest{Vni: 100})
	return map[string]error{"AddVNI": add, "DeleteVNI": del, "ClearDuplicate": clr}
}

// TestSocketCallerRights: on the Unix socket a member of api.socket-group
// may read but not change anything; a member of api.admin-group and root
// may change things. The callers are other users for the kernel, not just
// for file access.
func TestSocketCallerRights(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as other users")
	}
	const (
		reader   = 65534 // nobody
		readGID  = 65534
		adminUID = 65533
		adminGID = 65532
	)
	path := filepath.Join(openDir(t), "api.sock")
	fb := &fakeBackend{deleteErr: ErrNotFound}
	serve(t, fb, ListenConfig{Socket: path, SocketGroup: strconv.Itoa(readGID), AdminGroup: strconv.Itoa(adminGID)})

	// A reader: reads work, every change is refused before the backend
	// sees it.
	c := dialAs(t, path, reader, readGID)
	ping(t, c)
	if _, err := c.ListVNIs(ctxT(t), &evpndv1.ListVNIsRequest{}); err != nil {
		t.Errorf("ListVNIs as a socket-group member: %v", err)
	}
	before := fb.totalCalls()
	for name, err := range mutations(c, ctxT(t)) {
		wantDenied(t, name+" as a socket-group member", err, name+" changes the daemon", "uid 65534 is in api.socket-group, which may only read", "api.admin-group")
	}
	if n := fb.totalCalls() - before; n != 0 {
		t.Errorf("the backend was called %d times for refused calls", n)
	}

	// A member of admin-group (a supplementary group) may change things.
	// The backend's own answers (not found, no addVNI) show the call got
	// through.
	a := dialAs(t, path, adminUID, readGID, readGID, adminGID)
	for name, err := range mutations(a, ctxT(t)) {
		if status.Code(err) == codes.PermissionDenied {
			t.Errorf("%s as an admin-group member: %v", name, err)
		}
	}
	// Root too.
	r := dialAs(t, path, 0, 0)
	for name, err := range mutations(r, ctxT(t)) {
		if status.Code(err) == codes.PermissionDenied {
			t.Errorf("%s as root: %v", name, err)
		}
	}
	if got := fb.totalCalls() - before; got != 6 {
		t.Errorf("backend calls by admin and root: %d, want 6", got)
	}
}

// TestSocketReadOnlyWithoutAdminGroup: with only api.socket-group, its
// members still may not change anything.
func TestSocketReadOnlyWithoutAdminGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as other users")
	}
	path := filepath.Join(openDir(t), "api.sock")
	serve(t, &fakeBackend{}, ListenConfig{Socket: path, SocketGroup: "65534"})
	c := dialAs(t, path, 65534, 65534)
	ping(t, c)
	_, err := c.AddVNI(ctxT(t), &evpndv1.AddVNIRequest{Vni: &evpndv1.L2VNISpec{Vni: 300}})
	wantDenied(t, "AddVNI", err, "may only read")
}

// TestGuardStranger: a caller that got through the socket's mode without
// being root or a group member (CAP_DAC_OVERRIDE) may do nothing.
func TestGuardStranger(t *testing.T) {
	g := guard{kind: guardUnix, socketGID: 100, adminGID: 101}
	for _, m := range []string{evpndv1.EvpndService_GetStatus_FullMethodName, evpndv1.EvpndService_AddVNI_FullMethodName} {
		ctx := peerContext(PeerCred{UID: 1000, GID: 1000, Groups: []int{5, 6}})
		wantDenied(t, m, g.check(ctx, m), "uid 1000 is neither root nor a member of api.socket-group")
		ctx = peerContext(PeerCred{UID: 1000, GID: 1000, Groups: []int{101}})
		if err := g.check(ctx, m); err != nil {
			t.Errorf("%s by an admin-group member: %v", m, err)
		}
	}
	// Calls the allowlist does not know (a future Reload) count as changes.
	ctx := peerContext(PeerCred{UID: 1000, GID: 100})
	wantDenied(t, "an unknown call", g.check(ctx, "/evpnd.v1.EvpndService/Reload"), "Reload changes the daemon")
	if err := g.check(ctx, evpndv1.EvpndService_Watch_FullMethodName); err != nil {
		t.Errorf("Watch by a reader: %v", err)
	}
}

// TestTCPPlainRefusesChanges: plaintext TCP on loopback serves reads and
// refuses every change, naming why.
func TestTCPPlainRefusesChanges(t *testing.T) {
	fb := &fakeBackend{}
	s := serve(t, fb, ListenConfig{TCP: "127.0.0.1:0"})
	c := dial(t, tcpAddr(t, s), grpc.WithTransportCredentials(insecure.NewCredentials()))
	ping(t, c)
	before := fb.totalCalls()
	for name, err := range mutations(c, ctxT(t)) {
		wantDenied(t, name+" over plaintext TCP", err, name+" changes the daemon", "not authenticated", "api.tls.client-ca")
	}
	if n := fb.totalCalls() - before; n != 0 {
		t.Errorf("the backend was called %d times for refused calls", n)
	}
}

// TestTCPMutualTLSAllowsChanges: a client with a certificate the client CA
// signed may change things; TLS without client-ca (loopback only) may not.
func TestTCPMutualTLSAllowsChanges(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "evpnd test CA")
	srv := issue(t, serverTemplate(), ca)
	cert, key := writeFile(t, dir, "cert.pem", srv.pem), writeFile(t, dir, "key.pem", srv.kpem)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)

	fb := &fakeBackend{deleteErr: ErrNotFound}
	s := serve(t, fb, ListenConfig{TCP: "127.0.0.1:0", TLSCert: cert, TLSKey: key, TLSClientCA: writeFile(t, dir, "ca.pem", ca.pem)})
	c := tlsClient(t, tcpAddr(t, s), roots, issue(t, clientTemplate(), ca))
	for name, err := range mutations(c, ctxT(t)) {
		if status.Code(err) == codes.PermissionDenied {
			t.Errorf("%s with a client certificate: %v", name, err)
		}
	}

	s = serve(t, &fakeBackend{}, ListenConfig{TCP: "127.0.0.1:0", TLSCert: cert, TLSKey: key})
	c = tlsClient(t, tcpAddr(t, s), roots, nil)
	ping(t, c)
	for name, err := range mutations(c, ctxT(t)) {
		wantDenied(t, name+" over TLS without client certificates", err, "not authenticated")
	}
}

// peerContext is a call context whose peer has cred.
func peerContext(cred PeerCred) context.Context {
	return peer.NewContext(context.Background(), &peer.Peer{AuthInfo: cred})
}
