package lab

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const fullTopo = `
name: t1
mgmt:
  network: custom            # containerlab key, unused here
topology:
  defaults:
    kind: linux
    env:
      A: default
      B: default
    binds:
      - shared:/shared:ro
      - /etc/hosts:/etc/hosts
    exec:
      - echo default
  kinds:
    linux:
      image: img:1
      env:
        B: kind
      labels:
        tier: kind
  nodes:
    n1:
      cmd: daemon --config /etc/d/d.yaml --data=/shared/x "two words"
      env:
        A: node
        N: 3
      binds:
        - cfg/n1:/etc/d
        - /srv/other:/shared
      exec:
        - ip addr add 10.0.0.1/32 dev lo
        - cat /etc/d/d.yaml
      labels:
        role: leaf
      startup-delay: 3         # containerlab key, unused here
      mgmt-ipv4: 172.20.20.2
    n2:
      image: img:2
    n3: {}
  links:
    - endpoints: ["n1:eth1", "n2:eth1"]
    - endpoints: [n1:eth2, n3:e1-1]
      mtu: 1500
    - type: veth
      endpoints:
        - node: n2
          interface: eth2
          mac: 02:00:00:00:00:02
        - {node: n3, interface: eth2}
`

func TestParseFull(t *testing.T) {
	topo, err := Parse([]byte(fullTopo), "/lab")
	if err != nil {
		t.Fatal(err)
	}
	if topo.Name != "t1" || topo.Dir != "/lab" {
		t.Errorf("name/dir = %q %q", topo.Name, topo.Dir)
	}
	var names []string
	for _, n := range topo.Nodes {
		names = append(names, n.Name)
	}
	if want := []string{"n1", "n2", "n3"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("nodes = %v, want file order %v", names, want)
	}
	if len(topo.Warnings) != 0 {
		t.Errorf("warnings for containerlab keys: %v", topo.Warnings)
	}

	n1 := topo.Node("n1")
	want := &Node{
		Name:  "n1",
		Kind:  "linux",
		Image: "img:1",
		Cmd:   `daemon --config /etc/d/d.yaml --data=/shared/x "two words"`,
		Exec:  []string{"ip addr add 10.0.0.1/32 dev lo", "cat /etc/d/d.yaml"},
		Binds: []Bind{
			{Src: "/srv/other", Dst: "/shared"}, // node overrides defaults, same place
			{Src: "/etc/hosts", Dst: "/etc/hosts"},
			{Src: "/lab/cfg/n1", Dst: "/etc/d"}, // relative to the topology dir
		},
		Env:    map[string]string{"A": "node", "B": "kind", "N": "3"},
		Labels: map[string]string{"tier": "kind", "role": "leaf"},
	}
	if !reflect.DeepEqual(n1, want) {
		t.Errorf("n1 =\n%+v\nwant\n%+v", n1, want)
	}
	n2 := topo.Node("n2")
	if n2.Image != "img:2" || !reflect.DeepEqual(n2.Exec, []string{"echo default"}) || n2.Cmd != "" {
		t.Errorf("n2 = %+v: want own image, default exec, no cmd", n2)
	}
	if b := n2.Binds[0]; b != (Bind{Src: "/lab/shared", Dst: "/shared", ReadOnly: true}) {
		t.Errorf("n2 default bind = %+v", b)
	}

	if len(topo.Links) != 3 {
		t.Fatalf("links = %d", len(topo.Links))
	}
	l0, l1, l2 := topo.Links[0], topo.Links[1], topo.Links[2]
	if l0.A.String() != "n1:eth1" || l0.B.String() != "n2:eth1" || l0.MTU != 0 {
		t.Errorf("link 1 = %+v", l0)
	}
	if l1.B.String() != "n3:e1-1" || l1.MTU != 1500 {
		t.Errorf("link 2 = %+v", l1)
	}
	if l2.A.MAC.String() != "02:00:00:00:00:02" || l2.B.MAC != nil || l2.B.String() != "n3:eth2" {
		t.Errorf("link 3 = %+v", l2)
	}
}

func TestHostPath(t *testing.T) {
	n := &Node{Binds: []Bind{
		{Src: "/host/cfg/leaf1.yaml", Dst: "/etc/evpnd/evpnd.yaml"},
		{Src: "/host/etc", Dst: "/etc/evpnd"},
		{Src: "/host/data", Dst: "/data"},
	}}
	tests := []struct{ in, want string }{
		{"evpnd run --config /etc/evpnd/evpnd.yaml", "evpnd run --config /host/cfg/leaf1.yaml"},
		{"--config=/etc/evpnd/evpnd.yaml", "--config=/host/cfg/leaf1.yaml"},
		{"/etc/evpnd/other.yaml", "/host/etc/other.yaml"},         // directory bind
		{"/etc/evpnd", "/host/etc"},                               // the directory itself
		{"/etc/evpnd/evpnd.yaml.bak", "/host/etc/evpnd.yaml.bak"}, // not the file bind
		{"/etc/evpnd2/x", "/etc/evpnd2/x"},                        // not a path prefix
		{"/var/etc/evpnd/x", "/var/etc/evpnd/x"},                  // not at a word start
		{"cat '/data/a' \"/data/b\"", "cat '/host/data/a' \"/host/data/b\""},
		{"cp /data/a /data/b;ls /data", "cp /host/data/a /host/data/b;ls /host/data"},
		{"x:/data:y", "x:/host/data:y"},
		{"/datax /dat", "/datax /dat"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := n.HostPath(tt.in); got != tt.want {
			t.Errorf("HostPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := (&Node{}).HostPath("/etc/evpnd/x"); got != "/etc/evpnd/x" {
		t.Errorf("no binds: %q", got)
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{in: "evpnd run --config /c.yaml", want: []string{"evpnd", "run", "--config", "/c.yaml"}},
		{in: "  a\t b  ", want: []string{"a", "b"}},
		{in: `sh -c 'echo $HOME; ls'`, want: []string{"sh", "-c", "echo $HOME; ls"}},
		{in: `a "b \"c\" \$d \x" e\ f`, want: []string{"a", `b "c" $d \x`, "e f"}},
		{in: `a''b ""`, want: []string{"ab", ""}},
		{in: "", want: nil},
		{in: `a 'b`, err: true},
		{in: `a "b`, err: true},
		{in: `a \`, err: true},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("splitWords(%q) err = %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if !tt.err && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitWords(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	const nodes = "topology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n"
	tests := []struct {
		name, file, want string
	}{
		{"empty", "", "empty file"},
		{"not yaml", "name: [x", "yaml"},
		{"top level list", "- a\n- b\n", "top level must be a mapping"},
		{"no name", nodes, "missing lab name"},
		{"bad name", "name: a/b\n" + nodes, "lab name"},
		{"no topology", "name: x\n", "missing topology"},
		{"no nodes", "name: x\ntopology:\n  links: []\n", "no nodes"},
		{"nodes as list", "name: x\ntopology:\n  nodes:\n    - a\n", "must be a mapping"},
		{"exec as string", "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      exec: ip link\n", "node a"},
		{"env as list", "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      env: [A]\n", "node a"},
		{"duplicate node", "name: x\ntopology:\n  nodes:\n    a: {kind: linux}\n    a: {kind: linux}\n", "defined twice"},
		{"bad node name", "name: x\ntopology:\n  nodes:\n    a/b: {kind: linux}\n", "node name"},
		{"no kind", "name: x\ntopology:\n  nodes:\n    a: {}\n", "no kind"},
		{"other kind", "name: x\ntopology:\n  nodes:\n    a: {kind: nokia_srlinux}\n", `only kind "linux"`},
		{"bind relative dst", "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      binds: [src:dst]\n", "absolute"},
		{"bind too many parts", "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      binds: ['a:/b:ro:x']\n", "src:dst"},
		{"bind over root", "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      binds: ['a:/']\n", "over /"},
		{"node dir mid-path", "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      binds: ['cfg/__clabNodeDir__/x:/x']\n", "__clabNodeDir__ must begin the source"},
		{"lab dir glued", "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      binds: ['__clabDir__x:/x']\n", "__clabDir__ must begin the source"},
		{"cmd quote", "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      cmd: \"run 'x\"\n", "unterminated"},
		{"unknown node", "name: x\n" + nodes + "  links:\n    - endpoints: [a:eth1, c:eth1]\n", `unknown node "c"`},
		{"special endpoint", "name: x\n" + nodes + "  links:\n    - endpoints: [a:eth1, host:veth-a]\n", "special"},
		{"duplicate interface", "name: x\n" + nodes + "  links:\n    - endpoints: [a:eth1, b:eth1]\n    - endpoints: [a:eth1, b:eth2]\n", "a:eth1 already used by link 1"},
		{"same endpoint twice", "name: x\n" + nodes + "  links:\n    - endpoints: [a:eth1, a:eth1]\n", "both endpoints"},
		{"three endpoints", "name: x\n" + nodes + "  links:\n    - endpoints: [a:eth1, b:eth1, b:eth2]\n", "exactly 2"},
		{"no colon", "name: x\n" + nodes + "  links:\n    - endpoints: [aeth1, b:eth1]\n", "node:interface"},
		{"long ifname", "name: x\n" + nodes + "  links:\n    - endpoints: [a:eth1234567890123, b:eth1]\n", "longer than 15"},
		{"eth0", "name: x\n" + nodes + "  links:\n    - endpoints: [a:eth0, b:eth1]\n", "management interface"},
		{"endpoint list", "name: x\n" + nodes + "  links:\n    - endpoints: [[a, eth1], b:eth1]\n", "endpoint must be"},
		{"bad mac", "name: x\n" + nodes + "  links:\n    - endpoints: [{node: a, interface: eth1, mac: zz}, b:eth1]\n", "bad mac"},
		{"link type", "name: x\n" + nodes + "  links:\n    - type: macvlan\n      endpoints: [a:eth1, b:eth1]\n", "only veth"},
		{"links as map", "name: x\n" + nodes + "  links:\n    a: b\n", "cannot unmarshal"},
		{"bad mtu", "name: x\n" + nodes + "  links:\n    - endpoints: [a:eth1, b:eth1]\n      mtu: -1\n", "mtu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.file), "/lab")
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseWarnings(t *testing.T) {
	file := `name: w
colour: red
topology:
  defaults:
    sysctls: {net.ipv4.ip_forward: 1}
  nodes:
    a:
      kind: linux
      exce: [ip link]
      ports: ["80:80"]
  links:
    - endpoints: [{node: a, interface: eth1, colour: x}, {node: a, interface: eth2}]
      mtu: 1500
`
	topo, err := Parse([]byte(file), "/")
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(topo.Warnings, "\n")
	for _, want := range []string{
		`line 2: top level: unknown key "colour"`,
		`topology.defaults: "sysctls" has no effect`,
		`node a: unknown key "exce"`,
		`link 1 endpoint: unknown key "colour"`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings lack %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "ports") || strings.Contains(joined, "mtu") {
		t.Errorf("warned about a valid containerlab key:\n%s", joined)
	}
	if len(topo.Warnings) != 4 {
		t.Errorf("got %d warnings, want 4:\n%s", len(topo.Warnings), joined)
	}
}

func TestLoadResolvesBindsAgainstFileDir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.clab.yml")
	file := "name: x\ntopology:\n  nodes:\n    a:\n      kind: linux\n      binds: [conf/a.yaml:/etc/a.yaml]\n"
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir()) // the working directory must not matter
	topo, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if topo.Path != path {
		t.Errorf("Path = %q, want %q", topo.Path, path)
	}
	if got, want := topo.Nodes[0].Binds[0].Src, filepath.Join(dir, "conf/a.yaml"); got != want {
		t.Errorf("bind src = %q, want %q", got, want)
	}
	if _, err := Load(filepath.Join(dir, "missing.clab.yml")); err == nil {
		t.Error("missing file loaded")
	}
}
