package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("router-id: 10.0.0.1\nasn: 65000\nneighbors: [{address: 10.0.0.254, asn: 65000}]\nl2vnis: [{vni: 100}]\n"), 0o644)
	os.WriteFile(bad, []byte("router-id: 10.0.0.1\nasn: 65000\nneighbours: []\n"), 0o644)
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs([]string{"validate", "--config", good})
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), "valid") {
		t.Fatalf("validate good: %v, %q", err, out.String())
	}
	root = newRootCmd(&out, &errb)
	root.SetArgs([]string{"validate", "--config", bad})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), `did you mean "neighbors"`) {
		t.Fatalf("validate bad: %v", err)
	}
}

// TestValidateWarnsVTEPNotLocal: validate accepts a vtep-ip that is on no
// interface (the file is valid; the node may not be set up yet) but warns
// that run would refuse it; it does not warn when the address is there.
func TestValidateWarnsVTEPNotLocal(t *testing.T) {
	dir := t.TempDir()
	cfg := func(vtep string) string {
		p := filepath.Join(dir, vtep+".yaml")
		os.WriteFile(p, []byte("router-id: 10.0.0.1\nvtep-ip: "+vtep+"\nasn: 65000\nneighbors: [{address: 10.0.0.254, asn: 65000}]\n"), 0o644)
		return p
	}
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs([]string{"validate", "--config", cfg("192.0.2.77")})
	if err := root.Execute(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	want := "evpnd: warning: vtep-ip 192.0.2.77 is on no interface of this node: evpnd run refuses to start until it is"
	if !strings.Contains(errb.String(), want) || !strings.Contains(out.String(), "valid") {
		t.Errorf("stdout %q, stderr %q; want %q on stderr", out.String(), errb.String(), want)
	}

	// Control: an address this node has.
	local := ""
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, ok := a.(*net.IPNet); ok && p.IP.To4() != nil && !p.IP.IsLoopback() {
			local = p.IP.String()
			break
		}
	}
	if local == "" {
		t.Skip("no non-loopback IPv4 address on this node for the control")
	}
	out.Reset()
	errb.Reset()
	root = newRootCmd(&out, &errb)
	root.SetArgs([]string{"validate", "--config", cfg(local)})
	if err := root.Execute(); err != nil || errb.Len() != 0 {
		t.Errorf("validate with vtep-ip %s (local): %v, stderr %q", local, err, errb.String())
	}
}

func TestPprofRefusesNonLoopback(t *testing.T) {
	for _, a := range []string{"0.0.0.0:6060", "10.0.0.1:6060", "localhost"} {
		if err := startPprof(a, nil); err == nil {
			t.Errorf("startPprof(%q) accepted", a)
		}
	}
}

// A config with tenant VRFs validates, with its warnings (evpnd run
// programs it; cmd/evpnd/e2e's TestTenantVRF runs one).
func TestVRFsValidated(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vrf.yaml")
	os.WriteFile(p, []byte(`router-id: 10.0.0.1
asn: 65000
neighbors: [{address: 10.0.0.254, asn: 65000}]
l2vnis: [{vni: 100}, {vni: 200}]
vrfs:
  - {name: t1, l3vni: 4001, backend: netns, gateway-mac: "00:00:5e:00:01:01", l2vnis: [{vni: 100, gateway-ips: [10.1.0.1/24]}]}
`), 0o644)
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs([]string{"validate", "--config", p})
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), "2 L2VNIs, 1 VRFs") {
		t.Fatalf("validate: %v, %q", err, out.String())
	}
	if !strings.Contains(errb.String(), "l2vnis[1]: 200: in no VRF: neigh_suppress") {
		t.Errorf("no neigh_suppress warning on stderr: %q", errb.String())
	}
}
