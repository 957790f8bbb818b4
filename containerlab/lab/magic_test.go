package lab

import (
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

const magicTopo = `name: magic
topology:
  defaults:
    kind: linux
    binds:
      - __clabNodeDir__/run:/run/evpnd
      - cfg/__clabNodeName__.yaml:/etc/evpnd/evpnd.yaml:ro
    env:
      EVPND_SOCKET: /run/evpnd/evpnd.sock
    exec:
      - echo __clabNodeName__ in __clabLabName__ at __clabNodeDir__
  nodes:
    leaf1: {}
    leaf2:
      binds:
        - __clabDir__/shared:/shared:ro
        - __clabNodeDir__:/var/lib/x
`

// TestMagicVariables checks containerlab's magic variables: the node name
// at parse time, the lab and node directories once the work directory is
// known, in bind sources and exec commands only.
func TestMagicVariables(t *testing.T) {
	topo, err := Parse([]byte(magicTopo), "/topo")
	if err != nil {
		t.Fatal(err)
	}
	// Parsed: node names expanded, directory variables kept for later.
	l1 := topo.Node("leaf1")
	wantParsed := []Bind{
		{Src: "__clabNodeDir__/run", Dst: "/run/evpnd", InLabDir: true},
		{Src: "/topo/cfg/leaf1.yaml", Dst: "/etc/evpnd/evpnd.yaml", ReadOnly: true},
	}
	if !reflect.DeepEqual(l1.Binds, wantParsed) {
		t.Errorf("parsed leaf1 binds = %+v, want %+v", l1.Binds, wantParsed)
	}
	if want := []string{"echo leaf1 in __clabLabName__ at __clabNodeDir__"}; !slices.Equal(l1.Exec, want) {
		t.Errorf("parsed leaf1 exec = %q, want %q", l1.Exec, want)
	}
	if got := topo.Node("leaf2").Exec[0]; got != "echo leaf2 in __clabLabName__ at __clabNodeDir__" {
		t.Errorf("parsed leaf2 exec = %q: the node name of the default exec must be per node", got)
	}
	if l1.Dir != "" {
		t.Errorf("parsed leaf1 Dir = %q, want empty until resolved", l1.Dir)
	}

	work := "/run/evpnlab/p1"
	r := topo.ForWorkDir(work)
	for _, tt := range []struct {
		node  string
		binds []Bind
	}{
		{"leaf1", []Bind{
			{Src: "/run/evpnlab/p1/leaf1/run", Dst: "/run/evpnd", InLabDir: true},
			{Src: "/topo/cfg/leaf1.yaml", Dst: "/etc/evpnd/evpnd.yaml", ReadOnly: true},
		}},
		{"leaf2", []Bind{
			{Src: "/run/evpnlab/p1/leaf2/run", Dst: "/run/evpnd", InLabDir: true},
			{Src: "/topo/cfg/leaf2.yaml", Dst: "/etc/evpnd/evpnd.yaml", ReadOnly: true},
			{Src: "/run/evpnlab/p1/shared", Dst: "/shared", ReadOnly: true, InLabDir: true},
			{Src: "/run/evpnlab/p1/leaf2", Dst: "/var/lib/x", InLabDir: true},
		}},
	} {
		n := r.Node(tt.node)
		if !reflect.DeepEqual(n.Binds, tt.binds) {
			t.Errorf("%s binds = %+v, want %+v", tt.node, n.Binds, tt.binds)
		}
		if want := filepath.Join(work, tt.node); n.Dir != want {
			t.Errorf("%s Dir = %q, want %q", tt.node, n.Dir, want)
		}
		if want := "echo " + tt.node + " in p1 at " + filepath.Join(work, tt.node); n.Exec[0] != want {
			t.Errorf("%s exec = %q, want %q", tt.node, n.Exec[0], want)
		}
		// Each node's socket is its own; env values are rewritten by the
		// bind, not by magic variables.
		if got, want := n.HostPath(n.Env["EVPND_SOCKET"]), filepath.Join(work, tt.node, "run/evpnd.sock"); got != want {
			t.Errorf("%s EVPND_SOCKET on the host = %q, want %q", tt.node, got, want)
		}
	}
	// The parsed topology is untouched, and resolving again changes nothing.
	if !reflect.DeepEqual(topo.Node("leaf1").Binds, wantParsed) {
		t.Errorf("ForWorkDir changed the parsed topology: %+v", topo.Node("leaf1").Binds)
	}
	if again := r.ForWorkDir(work); !reflect.DeepEqual(again, r) {
		t.Errorf("ForWorkDir is not idempotent:\n%+v\n%+v", again.Nodes[1], r.Nodes[1])
	}
	// A relative work directory is made absolute, like every bind source.
	t.Chdir(t.TempDir())
	rel := topo.ForWorkDir("work").Node("leaf1")
	if !filepath.IsAbs(rel.Dir) || !filepath.IsAbs(rel.Binds[0].Src) {
		t.Errorf("relative work dir: Dir %q, bind %q: want absolute paths", rel.Dir, rel.Binds[0].Src)
	}
}

// TestMagicVariablesNotInCmd: containerlab leaves cmd and env alone, so
// evpnlab does too; a topology that relied on it would break there.
func TestMagicVariablesNotInCmd(t *testing.T) {
	file := "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      cmd: run __clabNodeName__\n      env: {N: __clabNodeName__}\n"
	topo, err := Parse([]byte(file), "/lab")
	if err != nil {
		t.Fatal(err)
	}
	a := topo.ForWorkDir("/w").Node("a")
	if a.Cmd != "run __clabNodeName__" || a.Env["N"] != "__clabNodeName__" {
		t.Errorf("cmd %q env %q: want them as written", a.Cmd, a.Env["N"])
	}
}
