//go:build linux

// Command evpnlab runs a containerlab topology file on bare network
// namespaces, for hosts without a container engine. See package
// github.com/evpnd/evpnd/containerlab/lab for what it supports.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ec exitCodeError
		if errors.As(err, &ec) {
			os.Exit(int(ec))
		}
		fmt.Fprintln(os.Stderr, "evpnlab:", err)
		os.Exit(1)
	}
}

// exitCodeError carries the exit status of a command run by "evpnlab
// exec", so that evpnlab exits with it and prints nothing more.
type exitCodeError int

func (e exitCodeError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
