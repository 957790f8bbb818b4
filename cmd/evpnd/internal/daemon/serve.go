package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/internal/api"
	"github.com/evpnd/evpnd/cmd/evpnd/internal/metrics"
)

// startServices binds the management API and, if configured, the metrics
// endpoint, and serves them until the returned stop is called. Binding
// happens before anything else in Run, so a socket in use or a refused
// listener stops evpnd before it touches the kernel or BGP.
func (d *Daemon) startServices() (stop func(), err error) {
	c := d.cfg
	srv := api.NewServer(d, d.log)
	if err = srv.Listen(api.ListenConfigFrom(c.API)); err != nil {
		return nil, fmt.Errorf("management API: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 1)
	go func() {
		if err := srv.Serve(ctx); err != nil {
			d.log.Error("management API stopped", "err", err)
		}
		done <- struct{}{}
	}()
	d.log.Info("management API listening", "socket", c.API.Socket, "tcp", c.API.Listen)
	if err := d.endpoint.start(d, c.Metrics.Listen); err != nil {
		cancel()
		<-done
		srv.Close()
		return nil, err
	}
	return func() {
		cancel()
		t := time.After(5 * time.Second)
		d.endpoint.stop(t)
		select {
		case <-done:
		case <-t:
		}
	}, nil
}

// metricsEndpoint is the metrics HTTP endpoint, which a reload may move
// to another address.
type metricsEndpoint struct {
	mu     sync.Mutex
	addr   string // "" = off
	cancel context.CancelFunc
	done   chan struct{}
}

// start binds addr ("" = off) and serves metrics on it; the endpoint must
// be stopped.
func (e *metricsEndpoint) start(d *Daemon, addr string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.startLocked(d, addr)
}

func (e *metricsEndpoint) startLocked(d *Daemon, addr string) error {
	if addr == "" {
		return nil
	}
	ln, err := metrics.Listen(addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.metrics.Serve(ctx, ln); err != nil {
			d.log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	e.addr, e.cancel, e.done = addr, cancel, done
	d.log.Info("metrics endpoint listening", "addr", ln.Addr().String())
	return nil
}

// stop ends serving and waits for it, or for timeout.
func (e *metricsEndpoint) stop(timeout <-chan time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopLocked(timeout)
}

func (e *metricsEndpoint) stopLocked(timeout <-chan time.Time) {
	if e.cancel == nil {
		return
	}
	e.cancel()
	select {
	case <-e.done:
	case <-timeout:
	}
	e.addr, e.cancel, e.done = "", nil, nil
}

// move serves on addr instead ("" = off). The old listener closes first,
// so that a new address on the same port can bind; if the new one cannot,
// the old one is bound again and the error returned.
func (e *metricsEndpoint) move(d *Daemon, addr string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.addr
	if old == addr {
		return nil
	}
	e.stopLocked(time.After(5 * time.Second))
	if err := e.startLocked(d, addr); err != nil {
		if rerr := e.startLocked(d, old); rerr != nil {
			return fmt.Errorf("%w; and the old address %s could not be bound again: %v", err, old, rerr)
		}
		return err
	}
	return nil
}
