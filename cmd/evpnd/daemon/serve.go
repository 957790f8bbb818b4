package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/evpnd/evpnd/cmd/evpnd/api"
	"github.com/evpnd/evpnd/cmd/evpnd/metrics"
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
	done := make(chan struct{}, 2)
	n := 1
	go func() {
		if err := srv.Serve(ctx); err != nil {
			d.log.Error("management API stopped", "err", err)
		}
		done <- struct{}{}
	}()
	d.log.Info("management API listening", "socket", c.API.Socket, "tcp", c.API.Listen)
	if c.Metrics.Listen != "" {
		ln, err := metrics.Listen(c.Metrics.Listen)
		if err != nil {
			cancel()
			<-done
			srv.Close()
			return nil, err
		}
		n++
		go func() {
			if err := d.metrics.Serve(ctx, ln); err != nil {
				d.log.Error("metrics endpoint stopped", "err", err)
			}
			done <- struct{}{}
		}()
		d.log.Info("metrics endpoint listening", "addr", ln.Addr().String())
	}
	return func() {
		cancel()
		t := time.After(5 * time.Second)
		for range n {
			select {
			case <-done:
			case <-t:
				return
			}
		}
	}, nil
}
