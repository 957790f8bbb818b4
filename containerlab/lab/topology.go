package lab

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DefaultLinkMTU is the MTU of a link that sets none. It is containerlab's
// default for veth links, so a topology behaves the same under both.
const DefaultLinkMTU = 9500

// KindLinux is the only node kind evpnlab can run on a bare namespace.
const KindLinux = "linux"

// Topology is a parsed containerlab topology file, with the defaults and
// kinds sections already merged into every node.
type Topology struct {
	Name string
	// Path is the absolute path of the file; empty when parsed from bytes.
	Path string
	// Dir is the directory that relative bind sources are resolved against:
	// the directory of the topology file, as in containerlab.
	Dir   string
	Nodes []*Node // in file order
	Links []Link  // in file order
	// Warnings lists what the file says that evpnlab ignores: keys that
	// neither evpnlab nor containerlab know (likely typos) and containerlab
	// settings that have no meaning on a bare namespace.
	Warnings []string
}

// Node is one node of a topology after merging defaults, kinds and the
// node's own settings (node wins over kind, kind over defaults).
type Node struct {
	Name  string
	Kind  string
	Image string // used only by real containerlab
	// Cmd is the node's main process in containerlab's shell form
	// ("evpnd run --config /etc/evpnd/evpnd.yaml"). It is split into words
	// (quotes honoured, no shell) and started after Exec has run.
	Cmd string
	// Exec are commands run in order once the node's links are up. evpnlab
	// runs each through "sh -c"; containerlab splits them into words, so
	// portable files use plain commands without pipes or redirections.
	Exec   []string
	Binds  []Bind
	Env    map[string]string
	Labels map[string]string
	// Dir is the node's directory, containerlab's __clabNodeDir__:
	// "<WorkDir>/<node>" in a topology resolved for a lab (ForWorkDir,
	// Lab.Topology), which Deploy creates; empty in a parsed topology.
	Dir string
}

// Bind is a containerlab bind mount "src:dst[:mode]". A namespace shares the
// host's filesystem, so evpnlab mounts nothing: it rewrites Dst to Src in
// the node's cmd, exec commands, env values and Lab.Exec arguments (see
// HostPath).
type Bind struct {
	// Src is the absolute host path. In a parsed topology a source in the
	// lab directory still starts with __clabNodeDir__ or __clabDir__;
	// ForWorkDir (and so Lab.Topology) replaces them.
	Src      string
	Dst      string // absolute path inside the container
	ReadOnly bool   // not enforced by evpnlab
	// InLabDir marks a source under __clabDir__ or __clabNodeDir__. Deploy
	// creates such a source as a directory when it is missing, as Docker
	// does for a bind; any other missing source is an error, as in
	// containerlab.
	InLabDir bool
}

// Endpoint is one end of a link: an interface of a node.
type Endpoint struct {
	Node      string
	Interface string
	MAC       net.HardwareAddr // nil: kernel's random address
}

func (e Endpoint) String() string { return e.Node + ":" + e.Interface }

// Link is a point-to-point veth link between two node interfaces.
type Link struct {
	A, B Endpoint
	MTU  int // 0: DefaultLinkMTU
}

// Node returns the named node, or nil.
func (t *Topology) Node(name string) *Node {
	for _, n := range t.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Load reads and parses a topology file.
func Load(path string) (*Topology, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("topology %s: %w", path, err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	t, err := Parse(data, filepath.Dir(abs))
	if err != nil {
		return nil, fmt.Errorf("topology %s: %w", path, err)
	}
	t.Path = abs
	return t, nil
}

// raw* mirror the subset of containerlab's schema that evpnlab uses. Keys
// they do not list are ignored by the decoder and reported by warnUnknown.
type rawFile struct {
	Name     string       `yaml:"name"`
	Topology *rawTopology `yaml:"topology"`
}

type rawTopology struct {
	Defaults rawNode            `yaml:"defaults"`
	Kinds    map[string]rawNode `yaml:"kinds"`
	Nodes    yaml.Node          `yaml:"nodes"`
	Links    []rawLink          `yaml:"links"`
}

type rawNode struct {
	Kind   string            `yaml:"kind"`
	Image  string            `yaml:"image"`
	Cmd    string            `yaml:"cmd"`
	Exec   []string          `yaml:"exec"`
	Binds  []string          `yaml:"binds"`
	Env    map[string]string `yaml:"env"`
	Labels map[string]string `yaml:"labels"`
}

type rawLink struct {
	Type      string      `yaml:"type"`
	Endpoints []yaml.Node `yaml:"endpoints"`
	MTU       int         `yaml:"mtu"`
}

type rawEndpoint struct {
	Node      string `yaml:"node"`
	Interface string `yaml:"interface"`
	MAC       string `yaml:"mac"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Parse parses a topology. dir is the directory relative bind sources are
// resolved against. It checks everything evpnlab needs to deploy the lab,
// so a topology that parses only fails to deploy for reasons of the host.
func Parse(data []byte, dir string) (*Topology, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("empty file")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: top level must be a mapping with name and topology", root.Line)
	}
	var raw rawFile
	if err := root.Decode(&raw); err != nil {
		return nil, err
	}
	if raw.Name == "" {
		return nil, errors.New("missing lab name (top-level key name)")
	}
	if !nameRE.MatchString(raw.Name) {
		return nil, fmt.Errorf("lab name %q: use letters, digits, '.', '_' and '-'", raw.Name)
	}
	if raw.Topology == nil {
		return nil, errors.New("missing topology section")
	}
	t := &Topology{Name: raw.Name, Dir: dir}
	t.Warnings = warnUnknown(root)

	nodes := &raw.Topology.Nodes
	if nodes.Kind == 0 || (nodes.Kind == yaml.MappingNode && len(nodes.Content) == 0) {
		return nil, errors.New("topology has no nodes")
	}
	if nodes.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: topology.nodes must be a mapping of node name to node", nodes.Line)
	}
	for i := 0; i+1 < len(nodes.Content); i += 2 {
		key, val := nodes.Content[i], nodes.Content[i+1]
		name := key.Value
		if key.Kind != yaml.ScalarNode || !nameRE.MatchString(name) {
			return nil, fmt.Errorf("line %d: node name %q: use letters, digits, '.', '_' and '-'", key.Line, name)
		}
		if t.Node(name) != nil {
			return nil, fmt.Errorf("line %d: node %s defined twice", key.Line, name)
		}
		var rn rawNode
		if err := val.Decode(&rn); err != nil {
			return nil, fmt.Errorf("node %s: %w", name, err)
		}
		n, err := mergeNode(name, raw.Topology.Defaults, raw.Topology.Kinds, rn, dir)
		if err != nil {
			return nil, fmt.Errorf("line %d: node %s: %w", key.Line, name, err)
		}
		t.Nodes = append(t.Nodes, n)
	}

	used := map[string]int{} // "node:iface" -> link number (1-based)
	for i, rl := range raw.Topology.Links {
		l, err := parseLink(rl)
		if err != nil {
			return nil, fmt.Errorf("link %d: %w", i+1, err)
		}
		for _, ep := range []Endpoint{l.A, l.B} {
			if t.Node(ep.Node) == nil {
				if special[ep.Node] {
					return nil, fmt.Errorf("link %d: endpoint %s: containerlab's special %q endpoints are not supported by evpnlab", i+1, ep, ep.Node)
				}
				return nil, fmt.Errorf("link %d: endpoint %s: unknown node %q", i+1, ep, ep.Node)
			}
			if prev, dup := used[ep.String()]; dup {
				return nil, fmt.Errorf("link %d: interface %s already used by link %d", i+1, ep, prev)
			}
			used[ep.String()] = i + 1
		}
		t.Links = append(t.Links, l)
	}
	return t, nil
}

// special are containerlab endpoint names that are not nodes.
var special = map[string]bool{"host": true, "mgmt-net": true, "macvlan": true, "vxlan": true, "vxlan-stitch": true}

func mergeNode(name string, def rawNode, kinds map[string]rawNode, n rawNode, dir string) (*Node, error) {
	kind := first(n.Kind, def.Kind)
	if kind == "" {
		return nil, errors.New("no kind (set kind on the node or in topology.defaults)")
	}
	if kind != KindLinux {
		return nil, fmt.Errorf("kind %q: evpnlab runs only kind %q nodes", kind, KindLinux)
	}
	k := kinds[kind]
	out := &Node{
		Name:   name,
		Kind:   kind,
		Image:  first(n.Image, k.Image, def.Image),
		Cmd:    first(n.Cmd, k.Cmd, def.Cmd),
		Env:    mergeMaps(def.Env, k.Env, n.Env),
		Labels: mergeMaps(def.Labels, k.Labels, n.Labels),
	}
	switch {
	case len(n.Exec) > 0:
		out.Exec = n.Exec
	case len(k.Exec) > 0:
		out.Exec = k.Exec
	default:
		out.Exec = def.Exec
	}
	// Exec may come from defaults or kinds, shared by every node: the
	// node's own copy gets its name. The lab directory variables wait for
	// ForWorkDir.
	out.Exec = slices.Clone(out.Exec)
	for i, e := range out.Exec {
		out.Exec[i] = strings.ReplaceAll(e, varNodeName, name)
	}
	// Binds merge by destination; the most specific level wins.
	var binds []Bind
	for _, level := range [][]string{def.Binds, k.Binds, n.Binds} {
		for _, s := range level {
			b, ok, err := parseBind(s, dir, name)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			replaced := false
			for i := range binds {
				if binds[i].Dst == b.Dst {
					binds[i], replaced = b, true
				}
			}
			if !replaced {
				binds = append(binds, b)
			}
		}
	}
	out.Binds = binds
	if _, err := splitWords(out.Cmd); err != nil {
		return nil, fmt.Errorf("cmd: %w", err)
	}
	return out, nil
}

func parseLink(rl rawLink) (Link, error) {
	if rl.Type != "" && rl.Type != "veth" {
		return Link{}, fmt.Errorf("type %q is not supported by evpnlab (only veth)", rl.Type)
	}
	if len(rl.Endpoints) != 2 {
		return Link{}, fmt.Errorf("needs exactly 2 endpoints, has %d", len(rl.Endpoints))
	}
	if rl.MTU < 0 || rl.MTU > 65535 {
		return Link{}, fmt.Errorf("mtu %d out of range", rl.MTU)
	}
	var eps [2]Endpoint
	for i, en := range rl.Endpoints {
		ep, err := parseEndpoint(&en)
		if err != nil {
			return Link{}, err
		}
		eps[i] = ep
	}
	if eps[0].String() == eps[1].String() {
		return Link{}, fmt.Errorf("both endpoints are %s", eps[0])
	}
	return Link{A: eps[0], B: eps[1], MTU: rl.MTU}, nil
}

// parseEndpoint accepts the brief form "node:iface" and the extended form
// {node, interface, mac}.
func parseEndpoint(n *yaml.Node) (Endpoint, error) {
	var re rawEndpoint
	switch n.Kind {
	case yaml.ScalarNode:
		node, iface, ok := strings.Cut(n.Value, ":")
		if !ok {
			return Endpoint{}, fmt.Errorf("line %d: endpoint %q: want node:interface", n.Line, n.Value)
		}
		re = rawEndpoint{Node: node, Interface: iface}
	case yaml.MappingNode:
		if err := n.Decode(&re); err != nil {
			return Endpoint{}, err
		}
	default:
		return Endpoint{}, fmt.Errorf("line %d: endpoint must be \"node:interface\" or a mapping with node and interface", n.Line)
	}
	ep := Endpoint{Node: re.Node, Interface: re.Interface}
	if ep.Node == "" {
		return Endpoint{}, fmt.Errorf("line %d: endpoint has no node", n.Line)
	}
	if err := checkIfName(ep.Interface); err != nil {
		return Endpoint{}, fmt.Errorf("line %d: endpoint %s: %w", n.Line, ep, err)
	}
	if re.MAC != "" {
		mac, err := net.ParseMAC(re.MAC)
		if err != nil || len(mac) != 6 {
			return Endpoint{}, fmt.Errorf("line %d: endpoint %s: bad mac %q", n.Line, ep, re.MAC)
		}
		ep.MAC = mac
	}
	return ep, nil
}

// checkIfName enforces the kernel's interface name rules (IFNAMSIZ 16 with
// the NUL, no '/', no whitespace) and keeps the names containerlab gives a
// meaning of its own out of links.
func checkIfName(s string) error {
	switch {
	case s == "":
		return errors.New("empty interface name")
	case len(s) > 15:
		return fmt.Errorf("interface name %q longer than 15 characters", s)
	case strings.ContainsAny(s, "/: \t\n"):
		return fmt.Errorf("interface name %q contains '/', ':' or whitespace", s)
	case s == "lo" || s == "." || s == "..":
		return fmt.Errorf("interface name %q is reserved", s)
	case s == "eth0":
		return errors.New("eth0 is containerlab's management interface; start data links at eth1")
	}
	return nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func mergeMaps(levels ...map[string]string) map[string]string {
	var out map[string]string
	for _, m := range levels {
		for k, v := range m {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
