//go:build !linux

// Command evpnlab runs a containerlab topology file on Linux network
// namespaces; on other systems it only says so.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "evpnlab: needs Linux network namespaces")
	os.Exit(1)
}
