package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/evpnd/evpnd/configs"
)

// ListenConfig says where the API listens. The config file's api section
// fills it; error messages name those keys (api.socket, api.socket-group,
// api.admin-group, api.listen, api.tls.cert, api.tls.key,
// api.tls.client-ca).
//
// Who may call what:
//   - Unix socket: the file's mode lets root and SocketGroup connect; the
//     caller's credentials (SO_PEERCRED) then decide per call. Root and
//     members of AdminGroup may make every call; members of SocketGroup
//     only the read-only ones (IsReadOnly).
//   - TCP with client certificates (TLSClientCA): every call.
//   - TCP without them (plaintext on loopback, or TLS alone on loopback):
//     read-only calls; the others get PERMISSION_DENIED.
//   - TCP beyond loopback needs TLS with TLSClientCA, or Listen refuses
//     to start.
type ListenConfig struct {
	// Socket is the Unix socket path; "" = no Unix listener.
	Socket string
	// SocketGroup is a group name or numeric GID allowed to connect to
	// the socket and make read-only calls; "" = root only.
	SocketGroup string
	// AdminGroup is a group name or numeric GID whose members may also
	// make the calls that change the daemon on the socket (they must be
	// able to connect: make them members of SocketGroup too); "" = root
	// only.
	AdminGroup string
	// TCP is an optional host:port. Beyond loopback it needs TLS with
	// client certificates.
	TCP string
	// TLSCert and TLSKey are the server certificate and key (PEM files)
	// for TCP.
	TLSCert, TLSKey string
	// TLSClientCA, if set, is a PEM file of the CAs that sign client
	// certificates: clients must present one (mutual TLS).
	TLSClientCA string
}

// Limits of the listeners.
const (
	// maxSocketPath is the longest Unix socket path: sun_path holds 108
	// bytes with the terminating NUL (unix(7)).
	maxSocketPath = 107
	// stopGrace bounds GracefulStop: calls still running after it are cut.
	stopGrace = 2 * time.Second
)

// CheckListen checks cfg without touching the system: TLS files set both
// or neither, and no TCP listener reachable beyond loopback without TLS
// and client certificates.
// Config validation calls it; Listen calls it first.
func CheckListen(cfg ListenConfig) error {
	var errs []error
	tlsSet := cfg.TLSCert != "" || cfg.TLSKey != ""
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		errs = append(errs, errors.New("api.tls.cert and api.tls.key go together: set both (PEM files of the server certificate and its key) or neither"))
	}
	if cfg.TLSClientCA != "" && !tlsSet {
		errs = append(errs, errors.New("api.tls.client-ca needs api.tls.cert and api.tls.key: mutual TLS needs a server certificate too"))
	}
	if cfg.TCP == "" && (tlsSet || cfg.TLSClientCA != "") {
		errs = append(errs, errors.New("api.tls applies to api.listen only, which is not set: set api.listen (host:port) or remove api.tls"))
	}
	if cfg.SocketGroup != "" && cfg.Socket == "" {
		errs = append(errs, errors.New("api.socket-group needs api.socket: set the socket path or remove the group"))
	}
	if cfg.AdminGroup != "" && cfg.SocketGroup == "" {
		errs = append(errs, errors.New("api.admin-group needs api.socket-group: without it the socket is root's alone (mode 0600) and no group member can reach it; set api.socket-group (admin-group members must be in it too) or remove api.admin-group"))
	}
	if len(cfg.Socket) > maxSocketPath {
		errs = append(errs, fmt.Errorf("api.socket %s is %d bytes long; a Unix socket path has at most %d: choose a shorter path", cfg.Socket, len(cfg.Socket), maxSocketPath))
	}
	if cfg.TCP != "" {
		host, port, err := net.SplitHostPort(cfg.TCP)
		if err != nil {
			errs = append(errs, fmt.Errorf("api.listen %q: want host:port, e.g. 127.0.0.1:50051", cfg.TCP))
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			errs = append(errs, fmt.Errorf("api.listen %q: port %q is not a number 0-65535", cfg.TCP, port))
		} else if cfg.TLSClientCA == "" && !configs.IsLoopbackHost(host) {
			errs = append(errs, fmt.Errorf("api.listen %s is reachable beyond loopback without TLS client certificates: set api.tls.client-ca (the CA that signs the clients' certificates) with api.tls.cert and api.tls.key, or bind 127.0.0.1", cfg.TCP))
		}
	}
	return errors.Join(errs...)
}

// ListenConfigFrom is the ListenConfig of the config file's api section.
func ListenConfigFrom(a configs.API) ListenConfig {
	return ListenConfig{
		Socket:      a.Socket,
		SocketGroup: a.SocketGroup,
		AdminGroup:  a.AdminGroup,
		TCP:         a.Listen,
		TLSCert:     a.TLS.Cert,
		TLSKey:      a.TLS.Key,
		TLSClientCA: a.TLS.ClientCA,
	}
}

// Listen binds every listener of cfg. It returns once they are bound, so
// that the daemon can report a bad address or a socket in use before it
// goes on; on error nothing stays bound. Call it once, then Serve.
func (s *Server) Listen(cfg ListenConfig) (err error) {
	if err := CheckListen(cfg); err != nil {
		return err
	}
	if cfg.Socket == "" && cfg.TCP == "" {
		return errors.New("api: nothing to listen on: set api.socket, api.listen or both")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bound) > 0 || s.closed {
		return errors.New("api: Listen called twice: a Server listens once")
	}

	// Everything that can fail without side effects comes first.
	gid, adminGID := -1, -1
	if cfg.SocketGroup != "" {
		if gid, err = lookupGroup("api.socket-group", cfg.SocketGroup); err != nil {
			return err
		}
	}
	if cfg.AdminGroup != "" {
		if adminGID, err = lookupGroup("api.admin-group", cfg.AdminGroup); err != nil {
			return err
		}
	}
	var creds credentials.TransportCredentials
	if cfg.TLSCert != "" {
		tc, err := loadTLS(cfg)
		if err != nil {
			return err
		}
		creds = credentials.NewTLS(tc)
	}

	var bound []*binding
	var sock *socketFile
	defer func() {
		if err == nil {
			return
		}
		for _, b := range bound {
			b.l.Close()
		}
		sock.remove()
	}()
	if cfg.Socket != "" {
		l, f, err := listenUnix(cfg.Socket, gid)
		if err != nil {
			return err
		}
		sock = f
		// Who connects is the socket's mode; what each caller may do, its
		// credentials. No TLS on it.
		bound = append(bound, &binding{
			l:    l,
			addr: &net.UnixAddr{Net: "unix", Name: cfg.Socket},
			g:    s.newGRPC(guard{kind: guardUnix, socketGID: gid, adminGID: adminGID}, grpc.Creds(peerCreds{})),
		})
	}
	if cfg.TCP != "" {
		l, err := net.Listen("tcp", cfg.TCP)
		if err != nil {
			return fmt.Errorf("api.listen %s: %w", cfg.TCP, err)
		}
		var opts []grpc.ServerOption
		if creds != nil {
			opts = append(opts, grpc.Creds(creds))
		}
		g := guard{kind: guardTCP, socketGID: -1, adminGID: -1, mutualTLS: cfg.TLSClientCA != ""}
		bound = append(bound, &binding{l: l, addr: l.Addr(), g: s.newGRPC(g, opts...)})
	}
	s.bound, s.socket = bound, sock
	for _, b := range bound {
		s.log.Info("API listening", "addr", b.addr.String(), "tls", b.addr.Network() == "tcp" && creds != nil)
	}
	// Without client certificates TCP serves reads to anyone local.
	if cfg.TCP != "" && cfg.TLSClientCA == "" {
		s.log.Warn("api.listen without api.tls.client-ca: every local user and process can read the API; calls that change the daemon are refused on it", "addr", cfg.TCP)
	}
	return nil
}

// Addrs returns the addresses Listen bound: the Unix socket's path, and the
// TCP address with its actual port.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, len(s.bound))
	for i, b := range s.bound {
		out[i] = b.addr
	}
	return out
}

// Serve serves the listeners of Listen until ctx is done or Close is
// called, then stops: calls still running get stopGrace to finish, Watch
// streams end at once with UNAVAILABLE, and the Unix socket file is
// removed. It returns nil after such a stop, or the error of a listener
// that failed (after stopping the others).
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return errors.New("api: Serve after the server stopped: a Server serves once")
	case len(s.bound) == 0:
		s.mu.Unlock()
		return errors.New("api: Serve before Listen: call Listen first")
	case s.serving:
		s.mu.Unlock()
		return errors.New("api: Serve called twice")
	}
	s.serving = true
	bound := s.bound
	s.mu.Unlock()

	errc := make(chan error, len(bound))
	for _, b := range bound {
		go func() {
			err := b.g.Serve(b.l)
			if errors.Is(err, grpc.ErrServerStopped) {
				err = nil // stopped before it started serving
			}
			if err != nil {
				err = fmt.Errorf("api: serving %s: %w", b.addr, err)
			}
			errc <- err
		}()
	}
	remaining := len(bound)
	var err error
	select {
	case <-ctx.Done():
	case <-s.stop:
	case err = <-errc:
		remaining--
		select {
		case <-s.stop: // Close raced with the select: a normal stop
		default:
			// grpc.Server.Serve returns before Stop only when its
			// listener fails.
			if err == nil {
				err = errors.New("api: a listener stopped unexpectedly")
			}
			s.log.Error("API listener failed; stopping the API", "err", err)
		}
	}
	s.shutdown()
	for range remaining {
		if e := <-errc; e != nil && err == nil {
			err = e
		}
	}
	return err
}

// Close stops the server as Serve does when its context ends, and releases
// the listeners of a Listen that Serve never got. It is safe to call more
// than once and concurrently with Serve.
func (s *Server) Close() error {
	s.shutdown()
	return nil
}

// shutdown stops every grpc.Server, closes the listeners and removes the
// socket file, once.
func (s *Server) shutdown() {
	s.stopOnce.Do(func() {
		close(s.stop) // ends Watch streams
		s.mu.Lock()
		s.closed = true
		bound, sock := s.bound, s.socket
		s.mu.Unlock()

		var wg sync.WaitGroup
		for _, b := range bound {
			wg.Go(func() {
				gracefulStop(b.g, stopGrace)
				// Stop closes only the listeners Serve was given.
				b.l.Close()
			})
		}
		wg.Wait()
		sock.remove()
		if len(bound) > 0 {
			s.log.Info("API stopped")
		}
	})
}

// gracefulStop lets running calls finish for up to grace, then cuts them.
func gracefulStop(g *grpc.Server, grace time.Duration) {
	done := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		g.Stop()
		<-done
	}
}

// lookupGroup resolves a group setting (key names it in errors): a
// numeric GID as it is, else a group name from the system's group
// database.
func lookupGroup(key, name string) (int, error) {
	if gid, err := strconv.ParseUint(name, 10, 32); err == nil {
		return int(gid), nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1, fmt.Errorf("%s %q: %w; create the group or give a numeric GID", key, name, err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return -1, fmt.Errorf("%s %q: GID %q is not a number", key, name, g.Gid)
	}
	return gid, nil
}

// loadTLS builds the server's TLS configuration from cfg's files.
func loadTLS(cfg ListenConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("api.tls.cert %s, api.tls.key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
	}
	tc := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
	if cfg.TLSClientCA != "" {
		pem, err := os.ReadFile(cfg.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("api.tls.client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("api.tls.client-ca %s holds no PEM certificate: give the CA that signs client certificates", cfg.TLSClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// listenUnix binds the API's Unix socket at path, accessible to root only
// (gid < 0) or to root and group gid.
//
// The socket is bound inside a fresh 0700 directory next to path, given
// its owner and mode there, and then renamed into place: bind(2) creates
// the file with the process umask, and a socket bound directly at path
// would be open to everyone until the chmod.
func listenUnix(path string, gid int) (_ *net.UnixListener, _ *socketFile, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("api.socket %s: create its directory: %w", path, err)
	}
	if err := clearSocketPath(path); err != nil {
		return nil, nil, err
	}

	tmpDir, err := os.MkdirTemp(dir, ".evpnd-")
	if err != nil {
		return nil, nil, fmt.Errorf("api.socket %s: %w", path, err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	if len(tmp) > maxSocketPath {
		return nil, nil, fmt.Errorf("api.socket %s: the path is too long to bind the socket safely (it is bound as %s, %d bytes, first; at most %d): choose a shorter path", path, tmp, len(tmp), maxSocketPath)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Net: "unix", Name: tmp})
	if err != nil {
		return nil, nil, fmt.Errorf("api.socket %s: %w", path, err)
	}
	// The file is renamed below; Close must not unlink the old name,
	// socketFile.remove deletes the new one.
	l.SetUnlinkOnClose(false)
	defer func() {
		if err != nil {
			l.Close()
		}
	}()

	mode := os.FileMode(0o600)
	if gid >= 0 {
		if err := os.Chown(tmp, -1, gid); err != nil {
			return nil, nil, fmt.Errorf("api.socket-group: give %s to GID %d: %w", path, gid, err)
		}
		mode = 0o660
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return nil, nil, fmt.Errorf("api.socket %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, nil, fmt.Errorf("api.socket %s: %w", path, err)
	}
	info, err := os.Lstat(path)
	if err != nil {
		os.Remove(path)
		return nil, nil, fmt.Errorf("api.socket %s: %w", path, err)
	}
	return l, &socketFile{path: path, info: info}, nil
}

// clearSocketPath makes way for the socket at path: nothing there is fine,
// a stale socket (nobody accepts on it) is removed, and a live socket or
// any other file is an error.
func clearSocketPath(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("api.socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("api.socket %s exists and is not a socket (%s); remove it or set api.socket to another path", path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("another process is serving the API on %s; stop it or set api.socket to another path", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("api.socket %s: cannot tell whether another process serves on it (%w); remove it if no evpnd runs", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("api.socket %s: remove the stale socket: %w", path, err)
	}
	return nil
}

// remove deletes the socket file if it is still the one Listen created:
// a file that has replaced it belongs to someone else.
func (f *socketFile) remove() {
	if f == nil {
		return
	}
	if fi, err := os.Lstat(f.path); err == nil && os.SameFile(fi, f.info) {
		os.Remove(f.path)
	}
}
