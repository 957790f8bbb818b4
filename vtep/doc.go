// Package vtep creates or adopts the Linux devices of each L2VNI and
// watches the MACs learned locally on their access ports (DESIGN §2, §4).
//
// # Devices
//
// Per L2VNI, Manager.Ensure makes the kernel hold:
//
//	ip link add brV type bridge                                             # IPv6 off (below)
//	ip link add vxlanV master brV type vxlan id V local VTEP dstport 4789 nolearning   # no remote/group
//	bridge link set dev vxlanV learning off neigh_suppress on
//	ip link set PORT master brV; ip link set PORT up                        # each access port
//	ip link set vxlanV up; ip link set brV up
//
// New bridges and VXLAN devices have IPv6 turned off
// (net.ipv6.conf.DEV.disable_ipv6=1, written while they are still down):
// an L2-only VNI carries no addresses, and IPv6 on thousands of devices
// dominates the cost of bringing them up (a link-local address, MLD state
// and an ff00::/8 route each, all of those routes in one list whose
// insertion cost grows with its length). IPv6 is turned off per device,
// not through net.ipv6.conf.default, which would turn it off on whatever
// interface another program creates meanwhile. Access ports keep their
// own setting, and the bridge forwards IPv6 frames all the same. An SVI
// that needs IPv6 will turn it back on. A device the kernel gives no IPv6
// state (an MTU below 1280, or a host booted with ipv6.disable=1) has
// nothing to turn off.
//
// Devices are created in batches: many netlink requests per write, the
// VXLAN device enslaved in its creation request, its port flags, alias
// and admin state in one more, so a VNI costs four requests.
// EnsureInBatches sets many VNIs up on a running leaf a batch at a time,
// handing each batch to the caller before the next, so that the caller's
// event loop is never held for the whole set. Ensure of a few hundred
// VNIs (the runtime path) looks their links up by name rather than
// listing every link of the namespace.
//
// The contract of Ensure:
//
//  1. It is declarative and idempotent: it takes the whole wanted set of
//     VNIs, and a kernel that already matches is left untouched (no
//     re-creation, no flap; the same ifindexes). It never removes devices of
//     VNIs missing from the set; Remove does that.
//  2. It plans before it changes anything. PlanL2 is a pure function of
//     the wanted VNIs and the observed links. A device that exists with the
//     right identity is adopted. Operational settings evpnd owns are
//     repaired in place: admin state up, MTU when configured, the VXLAN
//     port's learning off and neigh_suppress on, enslaving an unenslaved
//     VXLAN device or access port. A device with a conflicting identity
//     (another kind, another VNI, local address or dstport, learning on, a
//     remote or group, collect_metadata, enslaved to another bridge,
//     another VXLAN device already holding the VNI)
//     is a *ConflictError naming the device, the parameter, the expected
//     and found values, and the fix. Every conflict is reported, joined,
//     and nothing is changed.
//  3. If applying fails midway, everything this call did is undone in
//     reverse order: devices it created are deleted, ports it enslaved are
//     released, states it changed on adopted devices are restored. Adopted
//     devices are never deleted.
//  4. If the kernel refuses neigh_suppress, Ensure logs it and continues:
//     ARP/ND is then flooded, which is correct, only slower.
//
// A configured access port that does not exist is not a conflict: Ensure
// logs a warning and sets up the rest, and Supervise enslaves the port
// (and brings it up) when it appears, as a VM's tap or a containerlab
// link often appears after evpnd starts. (Refusing to start would make
// one absent VM port take a whole leaf's overlay down.)
//
// # Supervision
//
// Supervise keeps the devices of the VNIs Ensure set up in shape until
// its context ends. It follows link events (RTNLGRP_LINK, on a netlink
// socket of its own) and re-applies a changed VNI's plan with
// PlanRepair: the same actions and conflict rules as Ensure, except that
// an access port found in its bridge keeps the admin state an operator
// gave it. A deleted or re-created bridge or VXLAN device is rebuilt or
// adopted, a released port enslaved again, the VXLAN port's learning
// turned off again. A bridge or VXLAN device deleted and re-created with
// the right identity before a repair ran (ifreload) is noticed by its new
// ifindex and reported Recreated. Each repair is logged and reported (Repair); one with
// FDBLost means the VNI's FDB must be written again (the daemon has fib
// resync). A conflict (a device re-created with another identity) changes
// nothing, is logged once, and is retried at the device's next change.
// A change costs in proportion to it: the changed VNI's links are looked
// up by name and its bridge's ports listed with a dump the kernel filters
// on IFLA_MASTER; every link is listed only at (re)subscription.
// Remove takes the VNI out of supervision before deleting its devices.
// Ports of a managed bridge with a larger MTU than its VXLAN device are
// warned about (MTUWarnings), at Ensure and when they change.
//
// A Manager works through the caller's netlink handle for its namespace;
// it is also given that namespace, where it opens a short-lived socket to
// read every bridge port's flags with one dump.
//
// Devices evpnd creates carry the alias OwnerAlias. Remove deletes only
// those (so a restarted evpnd still knows what it owns), after releasing
// the VNI's access ports from the bridge; access ports are never deleted.
//
// # Tenant VRFs (L3)
//
// Manager.EnsureVRF makes the kernel hold one tenant VRF (PlanVRF, pure,
// with the exact operations as data), on one of three backends:
//
//	default: everything in the Manager's namespace and main table
//	netns:   ip netns add NS; vxlanL created in the underlay, then
//	         ip link set vxlanL netns NS (its UDP socket stays in the
//	         underlay, DESIGN §4); bridges, SVIs and access ports in NS
//	vrf:     ip link add NAME type vrf table T; every SVI master NAME
//
// and on each:
//
//	vxlanL (id L3VNI) master brL; brL address ROUTER_MAC          # the L3VNI's SVI
//	vxlanV master brV; bridge link set dev vxlanV learning off neigh_suppress on
//	brV address GATEWAY_MAC; ip addr add GW/len dev brV [nodad]   # anycast gateway SVI
//
// The SVI is the bridge itself: it carries the gateway MAC (zebra's
// model where the SVI MAC is the anycast MAC), so no macvlan is needed,
// and the gateway MAC is the bridge's own local entry, never learned on a
// port and never advertised as a host. A per-leaf SVI MAC next to the
// anycast one (a macvlan, as FRR's VRR) is not built. SVIs keep IPv6
// (address generation eui64; the link-local address then comes from the
// gateway MAC, the same on every leaf); L2-only bridges stay without.
// IPv6 gateway addresses are added nodad: every leaf holds them.
//
// PlanVRF plans the member L2VNIs' own devices too (callers pass only the
// L2VNIs in no VRF to Ensure). Its contract is Ensure's: adopt what
// matches, repair MAC, addresses, IPv6 and port flags in place, report
// every conflict before changing anything (a VRF device of another kind or
// table; on netns, the VNI's VXLAN socket already taken in the underlay),
// and undo everything on a failure, moving back into the underlay what it
// had moved out, then deleting a namespace it created. Extra addresses on
// an SVI are left alone.
//
// HostTable (pure) and WatchHosts (a neighbour subscription in the
// tenant's namespace) turn the ARP/ND neighbours of the routed SVIs into
// local MAC+IP bindings, the source of type-2 MAC+IP routes: learned
// entries only (not fib's extern_learn ones, not the gateway's own
// addresses, not IPv6 link-local), withdrawn when deleted or FAILED, not
// when STALE. Its socket is filtered in the kernel to the SVIs' ARP/ND
// entries; an overrun (a burst of fib's extern_learn entries) is a
// resync from a dump, reporting the difference, not a failure.
//
// An L2VNI without an SVI (routed in no VRF, L2VNI.NoNeighSuppress) gets
// neigh_suppress off: no neighbour entry answers ARP/ND there, and the
// flag would only keep gratuitous ARPs and ARP probes from crossing the
// fabric (net/bridge/br_arp_nd_proxy.c, kernel 6.18).
//
// A Node reads one namespace's links and addresses (OpenNode by namespace
// name, NodeOf an existing handle): the daemon's every read of the node's
// links and addresses goes through one, so that on the netns backend it
// reads the tenant's namespace, not the process's.
//
// RemoveVRF takes a tenant down: access ports released (and moved back to
// the underlay on netns), the devices evpnd created deleted, adopted ones
// left (with the gateway addresses and MAC EnsureVRF gave them), and a
// tenant namespace left with only its loopback deleted. VRF devices are
// not supervised yet (Supervise covers L2VNIs only).
//
// ProbeBackend tells at start whether the kernel provides a backend: for
// vrf it creates a VRF device in a throwaway namespace. On the project's
// kernel (6.18 without CONFIG_NET_VRF) it reports vrf unsupported; the
// vrf backend is covered by plan tests there and its namespace test is
// skipped, saying so.
//
// # Local MAC learning
//
// A Learner reports MACEvents: a MAC learned on an access port of a
// managed bridge (its VNI, MAC and port), and its removal. Every port of
// a managed bridge but a VXLAN device is an access port, whether the
// configuration lists it or another tool enslaved it, before or after
// start (a VM's tap, a containerlab veth), as FRR's zebra learns on any
// bridge port; L2VNI.AccessPorts only names the ports Ensure enslaves. A
// port that leaves the bridge takes its MACs along (the kernel flushes
// its entries), and they are reported Removed. An entry is
// local when it is a bridge FDB entry (not NTF_SELF) of a managed bridge,
// on a port of it that is not a VXLAN device, for a unicast MAC, and is neither
// permanent (the bridge's and ports' own addresses), nor extern_learn
// (installed by evpnd for a remote MAC), nor locked. A remote MAC that the
// bridge then learns on an access port arrives as an update on that port
// without extern_learn: a move to this leaf, reported as an add. A local
// MAC that ages out, is deleted, or is taken over by the VXLAN port is
// reported Removed. Static and sticky entries are reported with Static.
//
// The caller's duties and the Learner's promises:
//
//  1. Dump returns the kernel's current local MACs with a fresh dump, for
//     an initial sync before End-of-RIB. The caller is taken to announce
//     them: Dump records its result as the state the next Run starts from.
//  2. Run(ctx, out) reports, first, how the kernel differs from what the
//     caller was last told (the last Dump's result, or the state reported
//     by a previous Run that returned after it, or nothing): MACs that
//     vanished since are reported Removed, new or changed ones as adds,
//     unchanged ones not at all. Then it reports changes until ctx is
//     done. So a MAC that ages out between Dump and Run is withdrawn.
//     out runs on Run's goroutine and must only enqueue. One Run at a
//     time.
//  3. Events are deduplicated against what was last reported, but the
//     consumer must still be idempotent (a resync may repeat a state).
//  4. On an event socket overrun (ENOBUFS) or any socket failure, Run
//     subscribes again, dumps the FDB of the managed bridges' ports and reports the
//     difference from what it had reported: no change is lost silently.
//     Dumps interrupted by concurrent changes are retried.
//  5. SetVNIs changes the watched VNIs at runtime: added VNIs are dumped
//     and reported, removed ones have their MACs reported Removed.
//  6. Optionally (OnForeignVXLAN, set before Run), it also reports the
//     changes of the managed VXLAN devices' FDB, VXLAN or bridge side,
//     unicast or flood-list, as VXLANChanges, so that fib can repair
//     those it did not make at once. Notifications carry no sender, so
//     evpnd's own writes are reported too, marked ExternLearn, like
//     another program's extern_learn entries: fib tells them apart by
//     its record of what it wrote.
//
// The Learner opens its own netlink sockets in the namespace it is given:
//
//   - FDB dumps go through a socket with strict checking, so that the
//     kernel filters them per access port and the (possibly 100k) remote
//     entries on the VXLAN ports are never read.
//   - Events come from a socket of its own in RTNLGRP_NEIGH (16 MB
//     receive buffer, forced when the process has CAP_NET_ADMIN), read
//     without the runtime's netpoller and at most once a millisecond in a
//     burst. evpnd's own writes of remote MACs cause two notifications per
//     MAC there: a BPF socket filter drops the VXLAN device's entries
//     (NTF_SELF; not with OnForeignVXLAN), and every ARP/ND neighbour,
//     in the kernel; the bridge
//     entries on the VXLAN ports are dropped after a look at their header,
//     unless they take over a MAC that is local now (a move away, reported
//     Removed). Besides those, only notifications on access ports, or on
//     ports not seen yet, are decoded. The socket is connected to the kernel, which then
//     refuses notifications forged by other local sockets.
package vtep
