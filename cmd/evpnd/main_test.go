package main

import (
	"bytes"
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

func TestPprofRefusesNonLoopback(t *testing.T) {
	for _, a := range []string{"0.0.0.0:6060", "10.0.0.1:6060", "localhost"} {
		if err := startPprof(a, nil); err == nil {
			t.Errorf("startPprof(%q) accepted", a)
		}
	}
}
