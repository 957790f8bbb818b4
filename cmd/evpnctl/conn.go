package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	evpndv1 "github.com/evpnd/evpnd/proto/evpnd/v1"
)

// maxRecvMsg bounds one response. Tables stream in small pages; only a
// Check of a badly drifted leaf can be large.
const maxRecvMsg = 256 << 20

// client is a connection to evpnd. It remembers why the last dial failed,
// so that an UNAVAILABLE RPC error can say why in the operator's words.
type client struct {
	evpndv1.EvpndServiceClient
	cc      *grpc.ClientConn
	where   string // the socket path or host:port, for messages
	tcp     bool
	tls     bool // TLS is on
	tlsCert bool // with a client certificate
	timeout time.Duration

	mu      sync.Mutex
	dialErr error
}

// dial prepares a connection to evpnd as the global flags say. Nothing is
// sent before the first call; that call fails at once if evpnd is not
// there (no wait-for-ready).
func (a *app) dial(cmd *cobra.Command) (*client, error) {
	socketChanged := false
	if f := cmd.Flag("socket"); f != nil {
		socketChanged = f.Changed
	}
	c := &client{timeout: a.timeout}
	var target, network, addr string
	var creds credentials.TransportCredentials
	if a.address == "" {
		if a.tlsCA != "" || a.tlsCert != "" || a.tlsKey != "" {
			return nil, errors.New("--tls-ca, --tls-cert and --tls-key apply to --address only (the Unix socket needs no TLS)")
		}
		path, err := filepath.Abs(a.socket)
		if err != nil {
			return nil, fmt.Errorf("--socket %s: %w", a.socket, err)
		}
		c.where = a.socket
		target, network, addr = "unix://"+path, "unix", path
		creds = insecure.NewCredentials()
	} else {
		if socketChanged {
			return nil, errors.New("give --socket or --address, not both")
		}
		host, _, err := net.SplitHostPort(a.address)
		if err != nil {
			return nil, fmt.Errorf("--address %q: want host:port, e.g. 127.0.0.1:50051", a.address)
		}
		c.where, c.tcp = a.address, true
		target, network, addr = "dns:///"+a.address, "tcp", ""
		if creds, err = a.tlsCreds(host); err != nil {
			return nil, err
		}
		c.tls, c.tlsCert = a.tlsCA != "", a.tlsCert != ""
	}
	dialer := func(ctx context.Context, resolved string) (net.Conn, error) {
		if addr != "" {
			resolved = addr
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, resolved)
		c.mu.Lock()
		c.dialErr = err
		c.mu.Unlock()
		return conn, err
	}
	cc, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(dialer),
		grpc.WithUserAgent("evpnctl/"+version),
		grpc.WithDefaultCallOptions(grpc.WaitForReady(false), grpc.MaxCallRecvMsgSize(maxRecvMsg)),
	)
	if err != nil {
		return nil, fmt.Errorf("evpnd at %s: %w", c.where, err)
	}
	c.cc = cc
	c.EvpndServiceClient = evpndv1.NewEvpndServiceClient(cc)
	return c, nil
}

// tlsCreds returns TLS credentials when --tls-ca is given, and plaintext
// ones for a loopback host.
func (a *app) tlsCreds(host string) (credentials.TransportCredentials, error) {
	if a.tlsCA == "" {
		if a.tlsCert != "" || a.tlsKey != "" {
			return nil, errors.New("--tls-cert and --tls-key need --tls-ca (the CA that signed evpnd's certificate)")
		}
		if !isLoopback(host) {
			return nil, fmt.Errorf("--address %s: plaintext TCP is allowed to loopback only; give --tls-ca (and --tls-cert/--tls-key if evpnd wants a client certificate)", a.address)
		}
		return insecure.NewCredentials(), nil
	}
	pem, err := os.ReadFile(a.tlsCA)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in the file", a.tlsCA)
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
	switch {
	case a.tlsCert != "" && a.tlsKey != "":
		cert, err := tls.LoadX509KeyPair(a.tlsCert, a.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case a.tlsCert != "" || a.tlsKey != "":
		return nil, errors.New("give --tls-cert and --tls-key together")
	}
	return credentials.NewTLS(cfg), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// close releases the connection.
func (c *client) close() { c.cc.Close() }

// ctx returns a context for one unary call, bounded by --timeout.
func (c *client) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, c.timeout)
}

// explain turns an RPC error into the one line evpnctl prints.
func (c *client) explain(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	c.mu.Lock()
	dialErr := c.dialErr
	c.mu.Unlock()
	switch st.Code() {
	case codes.Unavailable:
		if dialErr != nil {
			return c.unreachable(dialErr)
		}
		return fmt.Errorf("cannot reach evpnd at %s: %s%s", c.where, transportMessage(st.Message()), c.tlsHint(st.Message()))
	case codes.DeadlineExceeded:
		if dialErr != nil {
			return c.unreachable(dialErr)
		}
		return fmt.Errorf("no answer from evpnd at %s within %s (raise --timeout?)", c.where, c.timeout)
	case codes.Canceled:
		if ctx.Err() != nil {
			return errors.New("interrupted")
		}
	case codes.Unimplemented:
		return fmt.Errorf("%s (is evpnd older than this evpnctl?)", st.Message())
	}
	return errors.New(st.Message())
}

// transportMessage strips gRPC's wrapping from a connection error.
func transportMessage(msg string) string {
	if m, ok := strings.CutPrefix(msg, `connection error: desc = "`); ok {
		return strings.TrimSuffix(m, `"`)
	}
	return msg
}

// tlsHint guesses what TLS setting a failed TCP connection lacks.
func (c *client) tlsHint(msg string) string {
	switch {
	case !c.tcp || strings.Contains(msg, "resolver"):
		return ""
	case !c.tls:
		return " (does evpnd use TLS on this address? give --tls-ca)"
	case strings.Contains(msg, "x509") || strings.Contains(msg, "certificate signed by unknown authority"):
		return " (is --tls-ca the CA that signed evpnd's api.tls.cert?)"
	case !c.tlsCert:
		return " (does evpnd want a client certificate, api.tls.client-ca? give --tls-cert and --tls-key)"
	}
	return ""
}

// unreachable is the error for a failed connect: what failed, and what to
// do about it.
func (c *client) unreachable(err error) error {
	reason := err.Error()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		reason = errno.Error()
	}
	var hint string
	switch {
	case !c.tcp && (errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOTSOCK)):
		if fi, serr := os.Stat(c.where); serr == nil && fi.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("cannot reach evpnd at %s: not a socket (point --socket or EVPND_SOCKET at evpnd's api.socket)", c.where)
		}
		hint = `nobody listens on it: evpnd is not running and left it behind; start it with "evpnd run"`
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		hint = "the socket is for root and the members of evpnd's api.socket-group: run evpnctl as one of them"
	case c.tcp:
		hint = "is evpnd running, with api.listen set to this address?"
	default:
		hint = `is evpnd running? start it with "evpnd run", or point --socket or EVPND_SOCKET at its api.socket`
	}
	return fmt.Errorf("cannot reach evpnd at %s: %s (%s)", c.where, reason, hint)
}

// pageStream is a server stream of pages.
type pageStream[T any] interface {
	Recv() (*T, error)
}

// recvPages calls open, then fn for every page of the stream it returns,
// in order. Each page (not the whole stream) must come within --timeout:
// a 100k-row table may take longer than that to print, for instance into
// a pager.
func recvPages[T any](parent context.Context, c *client, open func(context.Context) (pageStream[T], error), fn func(*T) error) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var timedOut bool
	var mu sync.Mutex
	watchdog := time.AfterFunc(c.timeout, func() {
		mu.Lock()
		timedOut = true
		mu.Unlock()
		cancel()
	})
	expired := func(err error) error {
		mu.Lock()
		defer mu.Unlock()
		if timedOut && parent.Err() == nil {
			return c.explain(parent, status.Error(codes.DeadlineExceeded, "timeout"))
		}
		return c.explain(parent, err)
	}
	stream, err := open(ctx)
	if err != nil {
		watchdog.Stop()
		return expired(err)
	}
	for {
		page, err := stream.Recv()
		if !watchdog.Stop() {
			// The watchdog fired while we waited.
			if err == nil {
				err = status.Error(codes.DeadlineExceeded, "timeout")
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return expired(err)
		}
		if err := fn(page); err != nil {
			return err
		}
		watchdog.Reset(c.timeout)
	}
}
