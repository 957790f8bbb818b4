//go:build linux

package main

import (
	"os"
	"testing"
)

// feederEnv makes the test binary run as the burst source: the harness
// re-executes the running binary inside the reflector's namespace, and a
// test binary has no "__feeder" command.
const feederEnv = "EVPNBENCH_FEEDER"

func TestMain(m *testing.M) {
	if os.Getenv(feederEnv) == "1" {
		os.Exit(feederMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	feederArgv = func() ([]string, []string, error) {
		return []string{os.Args[0]}, []string{feederEnv + "=1"}, nil
	}
	os.Exit(m.Run())
}
