package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/evpnd/evpnd/configs"
	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// ping checks that c answers GetStatus.
func ping(t *testing.T, c evpndv1.EvpndServiceClient) {
	t.Helper()
	if _, err := c.GetStatus(ctxT(t), &evpndv1.GetStatusRequest{}); err != nil {
		t.Fatalf("GetStatus: %v", err)
	}
}

// pingFails checks that c cannot complete GetStatus.
func pingFails(t *testing.T, c evpndv1.EvpndServiceClient, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := c.GetStatus(ctx, &evpndv1.GetStatusRequest{}); err == nil {
		t.Fatalf("GetStatus succeeded: %s", why)
	} else {
		t.Logf("refused as expected (%s): %v", why, err)
	}
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

func TestSocketRootOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "evpnd") // created by Listen
	path := filepath.Join(dir, "api.sock")
	s := serve(t, &fakeBackend{}, ListenConfig{Socket: path})
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("%s is %v, want a socket", path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode %v, want 0600", perm)
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o755 {
		t.Errorf("parent directory: %v, %v; want it created with mode 0755", di.Mode(), err)
	}
	// No temporary directory of the bind is left behind.
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%s holds %d entries, want only the socket", dir, len(ents))
	}
	if addrs := s.Addrs(); len(addrs) != 1 || addrs[0].Network() != "unix" || addrs[0].String() != path {
		t.Errorf("Addrs() = %v, want [unix %s]", addrs, path)
	}
	ping(t, dialUnix(t, path))
}

func TestSocketGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the socket to group root")
	}
	for _, group := range []string{"root", "0"} {
		t.Run(group, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "api.sock")
			serve(t, &fakeBackend{}, ListenConfig{Socket: path, SocketGroup: group})
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm != 0o660 {
				t.Errorf("socket mode %v, want 0660", perm)
			}
			if gid := fi.Sys().(*syscall.Stat_t).Gid; gid != 0 {
				t.Errorf("socket group %d, want 0", gid)
			}
			ping(t, dialUnix(t, path))
		})
	}
}

func TestSocketGroupUnknown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	s := NewServer(&fakeBackend{}, testLogger(t))
	err := s.Listen(ListenConfig{Socket: path, SocketGroup: "evpnd-no-such-group"})
	wantErr(t, err, "api.socket-group", "evpnd-no-such-group")
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after a failed Listen: %v", err)
	}
	if len(s.Addrs()) != 0 {
		t.Errorf("Addrs() = %v after a failed Listen", s.Addrs())
	}
}

// TestSocketInUse checks that a second server refuses a socket another one
// serves, and leaves it working.
func TestSocketInUse(t *testing.T) {
	c, path := serveUnix(t, &fakeBackend{})
	before, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}

	s2 := NewServer(&fakeBackend{}, testLogger(t))
	err = s2.Listen(ListenConfig{Socket: path})
	wantErr(t, err, "another process is serving the API on "+path, "set api.socket to another path")

	after, err := os.Lstat(path)
	if err != nil || !os.SameFile(before, after) {
		t.Fatalf("the first server's socket was replaced or removed: %v", err)
	}
	ping(t, c)
	// A fresh connection still reaches the first server.
	ping(t, dialUnix(t, path))
}

func TestSocketStale(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	// A socket file nobody listens on, as a killed daemon leaves it.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Net: "unix", Name: path})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := net.Dial("unix", path); err == nil {
		t.Fatal("the stale socket accepts connections")
	}
	serve(t, &fakeBackend{}, ListenConfig{Socket: path})
	ping(t, dialUnix(t, path))
}

func TestSocketNotASocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	if err := os.WriteFile(path, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := NewServer(&fakeBackend{}, testLogger(t)).Listen(ListenConfig{Socket: path})
	wantErr(t, err, path, "not a socket")
	if b, err := os.ReadFile(path); err != nil || string(b) != "keep me" {
		t.Errorf("the file was changed: %q, %v", b, err)
	}
}

func TestSocketRemovedOnStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	s := NewServer(&fakeBackend{}, testLogger(t))
	if err := s.Listen(ListenConfig{Socket: path}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	ping(t, dialUnix(t, path))
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after Serve returned: %v", err)
	}
	if err := s.Serve(t.Context()); err == nil {
		t.Error("Serve after a stop succeeded")
	}
}

// TestStopEndsWatch checks that stopping the server ends a Watch with
// UNAVAILABLE rather than waiting for it.
func TestStopEndsWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	fb := &fakeBackend{watch: func(ctx context.Context, fn func(Change) error) error {
		if err := fn(Change{Kind: ChangeSynced, Initial: true}); err != nil {
			return err
		}
		<-ctx.Done()
		return ctx.Err()
	}}
	s := NewServer(fb, testLogger(t))
	if err := s.Listen(ListenConfig{Socket: path}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	st, err := dialUnix(t, path).Watch(ctxT(t), &evpndv1.WatchRequest{InitialState: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	_, err = st.Recv()
	wantCode(t, err, codes.Unavailable, "shutting down")
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestCloseWithoutServe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	s := NewServer(&fakeBackend{}, testLogger(t))
	if err := s.Listen(ListenConfig{Socket: path, TCP: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	addr := tcpAddr(t, s)
	s.Close()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after Close: %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Close", addr)
	}
	if err := s.Serve(t.Context()); err == nil {
		t.Error("Serve after Close succeeded")
	}
}

func TestListenMisuse(t *testing.T) {
	s := NewServer(&fakeBackend{}, testLogger(t))
	wantErr(t, s.Listen(ListenConfig{}), "nothing to listen on")
	wantErr(t, s.Serve(t.Context()), "Listen first")

	s = serve(t, &fakeBackend{}, ListenConfig{TCP: "127.0.0.1:0"})
	// Once it answers, the first Serve runs.
	ping(t, dial(t, tcpAddr(t, s), grpc.WithTransportCredentials(insecure.NewCredentials())))
	wantErr(t, s.Listen(ListenConfig{TCP: "127.0.0.1:0"}), "Listen called twice")
	wantErr(t, s.Serve(t.Context()), "Serve called twice")
	if len(s.Addrs()) != 1 {
		t.Errorf("Addrs() = %v, want the first Listen's address only", s.Addrs())
	}
}

func TestTCPBeyondLoopbackRefused(t *testing.T) {
	for _, tcp := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:50051", "leaf1:50051"} {
		t.Run(tcp, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "api.sock")
			s := NewServer(&fakeBackend{}, testLogger(t))
			err := s.Listen(ListenConfig{Socket: path, TCP: tcp})
			wantErr(t, err, "api.listen "+tcp+" is reachable beyond loopback without TLS client certificates", "set api.tls.client-ca", "127.0.0.1")
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the Unix socket was bound although Listen failed: %v", err)
			}
			if len(s.Addrs()) != 0 {
				t.Errorf("Addrs() = %v after a failed Listen", s.Addrs())
			}
		})
	}
}

func TestTCPLoopbackPlain(t *testing.T) {
	s := serve(t, &fakeBackend{}, ListenConfig{TCP: "127.0.0.1:0"})
	addr := tcpAddr(t, s)
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addrs() has port 0: %s", addr)
	}
	ping(t, dial(t, addr, grpc.WithTransportCredentials(insecure.NewCredentials())))
}

// TestTCPFailureUnbindsSocket checks that a TCP address that cannot be
// bound leaves no Unix socket behind.
func TestTCPFailureUnbindsSocket(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	path := filepath.Join(t.TempDir(), "api.sock")
	err = NewServer(&fakeBackend{}, testLogger(t)).Listen(ListenConfig{Socket: path, TCP: busy.Addr().String()})
	wantErr(t, err, "api.listen "+busy.Addr().String())
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after a failed Listen: %v", err)
	}
	// The path is free for the next try.
	serve(t, &fakeBackend{}, ListenConfig{Socket: path})
}

func TestListenConfigFrom(t *testing.T) {
	got := ListenConfigFrom(configs.API{
		Socket: "/run/evpnd/evpnd.sock", SocketGroup: "evpnd", AdminGroup: "netadmin", Listen: "127.0.0.1:50051",
		TLS: configs.APITLS{Cert: "c.pem", Key: "k.pem", ClientCA: "ca.pem"}, GoBGPListen: "127.0.0.1:50052",
	})
	want := ListenConfig{
		Socket: "/run/evpnd/evpnd.sock", SocketGroup: "evpnd", AdminGroup: "netadmin", TCP: "127.0.0.1:50051",
		TLSCert: "c.pem", TLSKey: "k.pem", TLSClientCA: "ca.pem",
	}
	if got != want {
		t.Errorf("ListenConfigFrom = %+v, want %+v", got, want)
	}
}

func TestCheckListen(t *testing.T) {
	ok := []ListenConfig{
		{},
		{Socket: "/run/evpnd/api.sock"},
		{Socket: "/run/evpnd/api.sock", SocketGroup: "evpnd"},
		{TCP: "127.0.0.1:50051"},
		{TCP: "127.1.2.3:50051"},
		{TCP: "[::1]:50051"},
		{TCP: "[::ffff:127.0.0.1]:50051"},
		{TCP: "localhost:50051"},
		{TCP: "127.0.0.1:50051", TLSCert: "c.pem", TLSKey: "k.pem"},
		{Socket: "/run/evpnd/api.sock", SocketGroup: "evpnd", AdminGroup: "wheel"},
		{TCP: ":50051", TLSCert: "c.pem", TLSKey: "k.pem", TLSClientCA: "ca.pem"},
	}
	for _, cfg := range ok {
		if err := CheckListen(cfg); err != nil {
			t.Errorf("CheckListen(%+v): %v", cfg, err)
		}
	}
	for _, tc := range []struct {
		cfg  ListenConfig
		want string
	}{
		{ListenConfig{TCP: "0.0.0.0:50051"}, "api.listen 0.0.0.0:50051 is reachable beyond loopback without TLS client certificates: set api.tls.client-ca (the CA that signs the clients' certificates) with api.tls.cert and api.tls.key, or bind 127.0.0.1"},
		{ListenConfig{TCP: "0.0.0.0:50051", TLSCert: "c.pem", TLSKey: "k.pem"}, "api.listen 0.0.0.0:50051 is reachable beyond loopback without TLS client certificates: set api.tls.client-ca"},
		{ListenConfig{Socket: "/s", AdminGroup: "wheel"}, "api.admin-group needs api.socket-group"},
		{ListenConfig{TCP: ":50051"}, "api.listen :50051 is reachable beyond loopback"},
		{ListenConfig{TCP: "[::]:50051"}, "beyond loopback"},
		{ListenConfig{TCP: "10.0.0.1:50051"}, "beyond loopback"},
		{ListenConfig{TCP: "0.0.0.0:50051", TLSClientCA: "ca.pem"}, "api.tls.client-ca needs api.tls.cert and api.tls.key"},
		{ListenConfig{TCP: "127.0.0.1:50051", TLSCert: "c.pem"}, "api.tls.cert and api.tls.key go together"},
		{ListenConfig{TCP: "127.0.0.1:50051", TLSKey: "k.pem"}, "api.tls.cert and api.tls.key go together"},
		{ListenConfig{TCP: "127.0.0.1:50051", TLSClientCA: "ca.pem"}, "api.tls.client-ca needs api.tls.cert and api.tls.key"},
		{ListenConfig{Socket: "/s", TLSCert: "c.pem", TLSKey: "k.pem"}, "api.listen"},
		{ListenConfig{SocketGroup: "evpnd"}, "api.socket-group needs api.socket"},
		{ListenConfig{TCP: "127.0.0.1"}, "want host:port"},
		{ListenConfig{TCP: "127.0.0.1:http"}, "not a number"},
		{ListenConfig{TCP: "127.0.0.1:70000"}, "not a number"},
		{ListenConfig{Socket: "/" + strings.Repeat("a", 120)}, "at most 107"},
	} {
		wantErr(t, CheckListen(tc.cfg), tc.want)
	}
}

// ---- TLS ----

type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte // certificate
	kpem []byte // key
}

// issue makes a certificate from tmpl, signed by parent (nil: self-signed).
func issue(t *testing.T, tmpl *x509.Certificate, parent *pki) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(time.Hour)
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &pki{
		cert: cert, key: key,
		pem:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		kpem: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	}
}

func newCA(t *testing.T, name string) *pki {
	return issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil)
}

func serverTemplate() *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: "evpnd"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

func clientTemplate() *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: "evpnctl"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func tlsClient(t *testing.T, addr string, roots *x509.CertPool, cert *pki) evpndv1.EvpndServiceClient {
	tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		pair, err := tls.X509KeyPair(cert.pem, cert.kpem)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return dial(t, addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	srv := issue(t, serverTemplate(), nil) // self-signed
	s := serve(t, &fakeBackend{}, ListenConfig{
		TCP:     "127.0.0.1:0",
		TLSCert: writeFile(t, dir, "cert.pem", srv.pem),
		TLSKey:  writeFile(t, dir, "key.pem", srv.kpem),
	})
	addr := tcpAddr(t, s)

	roots := x509.NewCertPool()
	roots.AddCert(srv.cert)
	ping(t, tlsClient(t, addr, roots, nil))

	pingFails(t, dial(t, addr, grpc.WithTransportCredentials(insecure.NewCredentials())), "plaintext client on a TLS listener")
	pingFails(t, tlsClient(t, addr, x509.NewCertPool(), nil), "client that does not trust the server certificate")
}

// TestTLSVersion checks that TLS 1.1 is refused.
func TestTLSVersion(t *testing.T) {
	dir := t.TempDir()
	srv := issue(t, serverTemplate(), nil)
	s := serve(t, &fakeBackend{}, ListenConfig{
		TCP:     "127.0.0.1:0",
		TLSCert: writeFile(t, dir, "cert.pem", srv.pem),
		TLSKey:  writeFile(t, dir, "key.pem", srv.kpem),
	})
	roots := x509.NewCertPool()
	roots.AddCert(srv.cert)
	c, err := tls.Dial("tcp", tcpAddr(t, s), &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		c.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
	t.Logf("TLS 1.1 refused: %v", err)
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "evpnd test CA")
	srv := issue(t, serverTemplate(), ca)
	s := serve(t, &fakeBackend{}, ListenConfig{
		TCP:         "127.0.0.1:0",
		TLSCert:     writeFile(t, dir, "cert.pem", srv.pem),
		TLSKey:      writeFile(t, dir, "key.pem", srv.kpem),
		TLSClientCA: writeFile(t, dir, "ca.pem", ca.pem),
	})
	addr := tcpAddr(t, s)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)

	ping(t, tlsClient(t, addr, roots, issue(t, clientTemplate(), ca)))
	pingFails(t, tlsClient(t, addr, roots, nil), "client without a certificate")
	pingFails(t, tlsClient(t, addr, roots, issue(t, clientTemplate(), newCA(t, "other CA"))), "client certificate of another CA")
}

func TestTLSBadFiles(t *testing.T) {
	dir := t.TempDir()
	srv := issue(t, serverTemplate(), nil)
	cert := writeFile(t, dir, "cert.pem", srv.pem)
	key := writeFile(t, dir, "key.pem", srv.kpem)
	notPEM := writeFile(t, dir, "ca.pem", []byte("not a certificate"))
	path := filepath.Join(dir, "api.sock")
	for _, tc := range []struct {
		cfg  ListenConfig
		want string
	}{
		{ListenConfig{Socket: path, TCP: "127.0.0.1:0", TLSCert: filepath.Join(dir, "missing.pem"), TLSKey: key}, "api.tls.cert"},
		{ListenConfig{Socket: path, TCP: "127.0.0.1:0", TLSCert: key, TLSKey: cert}, "api.tls.cert"},
		{ListenConfig{Socket: path, TCP: "127.0.0.1:0", TLSCert: cert, TLSKey: key, TLSClientCA: notPEM}, "api.tls.client-ca " + notPEM + " holds no PEM certificate"},
		{ListenConfig{Socket: path, TCP: "127.0.0.1:0", TLSCert: cert, TLSKey: key, TLSClientCA: filepath.Join(dir, "nope")}, "api.tls.client-ca"},
	} {
		s := NewServer(&fakeBackend{}, testLogger(t))
		wantErr(t, s.Listen(tc.cfg), tc.want)
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket bound although Listen failed: %v", err)
		}
	}
}
