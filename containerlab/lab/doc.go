// Package lab runs containerlab topology files on bare Linux network
// namespaces, for machines without a container engine. The same
// ".clab.yml" file stays a valid containerlab topology: an operator can
// deploy it with containerlab and an image built from
// containerlab/Dockerfile.
//
// What is used from the file: the lab name; topology.defaults, kinds and
// nodes (kind "linux" only) with image, cmd, exec, binds, env and labels,
// merged as containerlab merges them (node over kind over defaults; binds
// merged by destination, env and labels merged by key, exec and cmd taken
// whole from the most specific level); containerlab's magic variables
// __clabNodeName__, __clabNodeDir__, __clabDir__ and __clabLabName__ in bind
// sources and exec commands, where containerlab expands them (not in cmd or
// env), with the work directory as the lab directory: __clabNodeDir__ is
// "<WorkDir>/<node>" (see Topology.ForWorkDir); and veth links in the brief
// ("node:iface") or extended ({node, interface, mac}) endpoint form, with an
// optional mtu (default 9500, as in containerlab). Other containerlab keys
// are tolerated; keys unknown to containerlab as well, and settings with no
// effect on a namespace, are listed in Topology.Warnings. A malformed file
// (wrong types, a link to an unknown node, an interface used twice, a kind
// other than linux) is an error naming the line or node.
//
// Differences from containerlab that a topology author must know:
//
//  1. Filesystem. A namespace sees the host's files, so nothing is mounted.
//     A bind "src:dst" instead rewrites dst to the absolute src in the
//     node's cmd, its exec commands, its env values and Lab.Exec arguments
//     (Node.HostPath). A node's programs must therefore receive the paths
//     they use on their command line or in env; a path compiled into a
//     program is not redirected. A private directory per node is a bind
//     from __clabNodeDir__, such as "__clabNodeDir__/run:/run/evpnd".
//     ":ro" is not enforced. A missing bind source under __clabNodeDir__
//     or __clabDir__ is created as a directory, as Docker does; any other
//     missing source is an error, as in containerlab, which also wants
//     lab directory sources to exist before it deploys.
//  2. Order. containerlab starts a container's cmd, then wires its links,
//     then runs exec. evpnlab wires links, runs exec, then starts cmd, so
//     addresses and routes from exec exist when the daemon starts. A
//     daemon must still tolerate the containerlab order.
//  3. Exec. evpnlab runs each exec command through "sh -c"; containerlab
//     splits it into words without a shell. Portable files use plain
//     commands: no pipes, redirections, "&&" or "$VAR".
//  4. Environment. Nodes inherit the host environment plus their env, with
//     Options.Path in front of PATH; Lab.Command and Lab.Exec give a
//     command the same environment and look it up in the same PATH.
//     Variable expansion in the topology file (${VAR}) is not implemented.
//  5. Management. There is no eth0 and no management network; links may not
//     use eth0.
//
// The caller's duties:
//
//  1. Load (or Parse) the topology, then Deploy it with a unique
//     Options.Prefix in tests. Deploy refuses existing namespaces and
//     cleans up after itself when it fails.
//  2. Use Exec, Command and Node (the *netns.NS, for a netlink handle) to
//     reach inside nodes; Start, Stop and Restart control a node's cmd.
//  3. Call Destroy when done, also after a failed test (t.Cleanup). It
//     stops processes by PID (SIGTERM, SIGKILL after Options.StopGrace),
//     including anything else running inside the lab's namespaces, then
//     deletes the namespaces. It is idempotent.
//
// Deploy records the namespaces and cmd PIDs in WorkDir/state.json so that
// another process (the evpnlab CLI) can Open the lab to inspect, exec into
// or destroy it.
package lab
