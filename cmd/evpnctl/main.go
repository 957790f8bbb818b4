// Command evpnctl is the operator CLI of evpnd. It shows evpnd's EVPN
// tables, watches their changes, checks the kernel against BGP and adds or
// removes L2VNIs at runtime, with words an FRR vtysh user knows
// ("show evpn mac vni 100"). It is a pure client of evpnd's gRPC API
// (proto/evpnd/v1): whatever it shows, a script can read there, or with
// "-o json".
//
// Exit status: 0 on success, 1 when "check" finds drift, 2 on any error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// Exit statuses.
const (
	exitOK    = 0
	exitDrift = 1 // check found drift
	// exitPartial: reload applied some changes, and some failed.
	exitPartial = 1
	exitError   = 2 // anything went wrong
)

// exitStatusError makes evpnctl exit with code. Err, if not nil, is
// printed first.
type exitStatusError struct {
	code int
	err  error
}

func (e *exitStatusError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitStatusError) Unwrap() error { return e.err }

// exitCode prints err, if any, as one line on stderr and returns the exit
// status it maps to.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var se *exitStatusError
	if errors.As(err, &se) {
		if se.err != nil {
			fmt.Fprintln(stderr, "evpnctl:", se.err)
		}
		return se.code
	}
	fmt.Fprintln(stderr, "evpnctl:", err)
	return exitError
}
