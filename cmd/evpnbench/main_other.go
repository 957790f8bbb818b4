//go:build !linux

// Command evpnbench is evpnd's scale harness. It needs Linux network
// namespaces, netlink and root; on other systems it only says so.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "evpnbench: needs Linux (network namespaces, netlink) and root")
	os.Exit(1)
}
