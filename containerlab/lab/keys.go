package lab

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Containerlab's schema has many keys evpnlab does not use. They are
// tolerated so that one file serves both tools; a key that neither knows is
// most likely a typo ("exce:") and is reported as a warning, because
// silently dropping a node's commands would be worse than a noisy parse.

var topKeys = keySet("name", "prefix", "mgmt", "settings", "topology", "debug")

var topologyKeys = keySet("defaults", "kinds", "nodes", "links", "groups")

// nodeKeys are the node-level keys of containerlab's schema (also valid in
// defaults, kinds and groups).
var nodeKeys = keySet(
	"kind", "type", "group", "image", "image-pull-policy", "license",
	"position", "entrypoint", "cmd", "exec", "binds", "ports", "env",
	"env-files", "labels", "user", "startup-config", "startup-delay",
	"enforce-startup-config", "suppress-startup-config", "auto-remove",
	"restart-policy", "mgmt-ipv4", "mgmt-ipv6", "mgmt_ipv4", "mgmt_ipv6",
	"publish", "network-mode", "runtime", "cpu", "cpu-set", "memory",
	"shm-size", "sandbox", "kernel", "extras", "config", "wait-for", "dns",
	"certificate", "healthcheck", "sysctls", "stages", "aliases", "devices",
	"cap-add", "components", "SANs", "status", "port", "ipv4", "ipv6",
)

// ignoredNodeKeys are containerlab settings that change what runs in a
// container but have no equivalent on a bare namespace; using one deserves
// a warning because the lab may behave differently under evpnlab.
var ignoredNodeKeys = keySet("entrypoint", "user", "sysctls", "env-files", "network-mode", "stages")

var linkKeys = keySet("type", "endpoints", "endpoint", "mtu", "vars", "labels",
	"host-interface", "mode", "remote", "vni", "udp-port", "parent-interface")

var endpointKeys = keySet("node", "interface", "mac", "vars")

func keySet(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// warnUnknown walks the document and reports unknown or ignored keys.
func warnUnknown(root *yaml.Node) []string {
	var w []string
	unknown := func(n *yaml.Node, where string, known map[string]bool) {
		for _, k := range mappingKeys(n) {
			if !known[k.Value] {
				w = append(w, fmt.Sprintf("line %d: %s: unknown key %q ignored", k.Line, where, k.Value))
			}
		}
	}
	nodeLevel := func(n *yaml.Node, where string) {
		unknown(n, where, nodeKeys)
		for _, k := range mappingKeys(n) {
			if ignoredNodeKeys[k.Value] {
				w = append(w, fmt.Sprintf("line %d: %s: %q has no effect in evpnlab", k.Line, where, k.Value))
			}
		}
	}
	unknown(root, "top level", topKeys)
	topo := lookup(root, "topology")
	unknown(topo, "topology", topologyKeys)
	nodeLevel(lookup(topo, "defaults"), "topology.defaults")
	if kinds := lookup(topo, "kinds"); kinds != nil && kinds.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(kinds.Content); i += 2 {
			nodeLevel(kinds.Content[i+1], "kind "+kinds.Content[i].Value)
		}
	}
	if nodes := lookup(topo, "nodes"); nodes != nil && nodes.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(nodes.Content); i += 2 {
			nodeLevel(nodes.Content[i+1], "node "+nodes.Content[i].Value)
		}
	}
	if links := lookup(topo, "links"); links != nil && links.Kind == yaml.SequenceNode {
		for i, l := range links.Content {
			where := fmt.Sprintf("link %d", i+1)
			unknown(l, where, linkKeys)
			if eps := lookup(l, "endpoints"); eps != nil && eps.Kind == yaml.SequenceNode {
				for _, ep := range eps.Content {
					unknown(ep, where+" endpoint", endpointKeys)
				}
			}
		}
	}
	return w
}

// mappingKeys returns the key nodes of a mapping, or nil for anything else.
func mappingKeys(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	keys := make([]*yaml.Node, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i])
	}
	return keys
}

// lookup returns the value of key in mapping n, or nil.
func lookup(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
