package metrics

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"time"
)

// shutdownTimeout bounds how long Serve waits for scrapes in progress once
// its context ends; then it closes their connections.
const shutdownTimeout = 5 * time.Second

// Listen binds the metrics.listen address (host:port) now, so that a bad or
// busy address stops the daemon at start with an error naming the setting,
// instead of failing later in the background.
func Listen(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, errors.New("metrics.listen is empty: set it to a host:port such as 127.0.0.1:9273, or leave the metrics section out to turn metrics off")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %q: %w: set it to a free host:port on an address of this host, such as 127.0.0.1:9273", addr, err)
	}
	return ln, nil
}

// Serve serves /metrics, and a short page linking to it on /, on ln until
// ctx ends, then shuts down gracefully: it stops accepting, lets scrapes in
// progress finish for up to 5s, and returns nil. It closes ln. It returns
// an error only if serving failed before ctx ended.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	mux.HandleFunc("GET /{$}", m.index)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}

	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("metrics: serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Scrapes still running after the timeout: cut them off.
		srv.Close()
	}
	<-done // http.ErrServerClosed
	return nil
}

// index is the page on /, for a human who opens the port in a browser.
func (m *Metrics) index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!DOCTYPE html>
<html><head><title>evpnd</title></head>
<body><h1>evpnd %s</h1><p><a href="/metrics">Metrics</a></p></body></html>
`, html.EscapeString(m.version))
}
