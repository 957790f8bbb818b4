// Package fib installs the remote EVPN layer-2 state of a leaf into the
// Linux kernel: per L2VNI, the remote MACs (VXLAN FDB entry to the remote
// VTEP plus the bridge entry that forwards the MAC to the VXLAN port) and
// the flood list (one all-zero-MAC VXLAN entry per remote VTEP, ingress
// replication).
//
// It is built as a desired-state table and a reconciler, in the manner of
// cilium's statedb reconciler:
//
//   - Desired holds what should be installed. Its mutations (SetMAC,
//     DeleteMAC, Invalidate, AddFlood, DeleteFlood, SetVNI, RemoveVNI)
//     only update maps and a dirty set under a mutex and wake the
//     reconciler through a channel with a buffer of one. They never do IO
//     and never block on the kernel, so they may be called from GoBGP
//     watch callbacks.
//   - DesiredEntries, InstalledFrom, Plan and Diff are pure functions: the
//     entries a snapshot wants, the entries fib manages in a kernel dump,
//     the operations between the two, and the same differences as Drift
//     for operators (Reconciler.Check).
//   - Reconciler.Run takes dirty keys in batches and applies them through a
//     Kernel. NetlinkKernel (Linux) writes each remote MAC as one
//     RTM_NEWNEIGH with NTF_SELF|NTF_MASTER|NTF_EXT_LEARNED, zebra's
//     message, and sends many messages per sendmsg, reading one ack each.
//
// Underlay (Linux) reconciles another kind of kernel object, the IPv4
// routes of evpnd's BGP underlay in the main table, marked with
// UnderlayProtocol (183); PlanUnderlay is its pure planner. See Underlay.
// Configured with a table, StaticProtocol (242) and IPv6, the same
// reconciler keeps a tenant VRF's static routes (a border leaf's routes
// to the outside, via its uplinks).
//
// # Ownership
//
// fib owns the FDB of the VXLAN device of every managed VNI:
//   - every unicast MAC's VXLAN (self) entry and its bridge (master) entry
//     on the VXLAN port, marked extern_learn or not: fib's own writes
//     carry extern_learn, but after MarkSynced an entry nobody wants is
//     deleted whoever wrote it (an operator's `bridge fdb add ... static`
//     included), and a wanted one is written over whatever holds it. An
//     operator who needs a static remote MAC must not put it on a managed
//     VXLAN device;
//   - every all-zero-MAC (flood-list) entry. The kernel keeps extern_learn
//     per MAC entry, not per remote, and drops it when anyone appends
//     without it, so it cannot mark flood remotes; fib writes it anyway.
//
// Never touched: local (NUD_PERMANENT) bridge entries, such as the VXLAN
// port's own address; entries on other ports (locally learned MACs on
// access ports); multicast MACs. Until MarkSynced, nothing found in the
// kernel (at start, by a resync, or reported by KernelChanged) is deleted.
//
// Deleting a MAC deletes the bridge entry and the VXLAN entry in separate
// messages: if the MAC has since been learned on an access port, the
// kernel refuses the bridge delete (ENOENT, port differs) and the local
// entry stays; the VXLAN entry is deleted only while it points at the VTEP
// fib knows of.
//
// A wanted MAC is correct when its VXLAN entry has exactly the wanted
// remote (its extern_learn flag does not matter: the kernel never sets it
// again on an entry once written without it) and its bridge entry is on
// the VXLAN port and marked extern_learn (a rewrite marks it).
//
// # Kernel facts relied on (kernel 6.18, checked on the project machines)
//
//   - One RTM_NEWNEIGH with NTF_SELF|NTF_MASTER|NTF_EXT_LEARNED on a VXLAN
//     bridge port writes both entries. The kernel applies the bridge half
//     first; if the VXLAN half then fails (EINVAL, EAFNOSUPPORT) the bridge
//     half stays, so fib remembers it for a later delete.
//   - The VXLAN driver accepts only NUD_PERMANENT or NUD_REACHABLE; fib
//     sends NUD_NOARP|NUD_PERMANENT, what `bridge fdb replace ... self`
//     sends, and never ages out.
//   - NLM_F_REPLACE changes a VXLAN entry's remote in place: a move emits
//     one RTM_NEWNEIGH and no RTM_DELNEIGH. Flood entries cannot be
//     replaced; they are appended (NLM_F_CREATE|NLM_F_APPEND).
//   - A VXLAN delete bound to a remote (NDA_DST) that no longer matches
//     succeeds without deleting.
//   - A unicast VXLAN entry has one remote: NLM_F_APPEND to it succeeds
//     without adding one.
//   - The bridge ignores NTF_STICKY in a message with NTF_EXT_LEARNED
//     (br_fdb.c takes the external-learn path). A remote sticky MAC
//     therefore takes a second, bridge-only message with NTF_STICKY and
//     NUD_NOARP|NUD_REACHABLE (zebra's state for it; NUD_PERMANENT would
//     make the entry local): the entry keeps extern_learn, turns sticky,
//     and the bridge no longer moves it when the MAC is heard on a
//     local port. The same message without NTF_STICKY (NUD_REACHABLE)
//     unpins it; a write with NTF_EXT_LEARNED alone does not.
//   - A write with NTF_EXT_LEARNED never marks a VXLAN entry that was
//     written without it (vxlan_fdb_update_existing: an externally
//     learned entry may not take over one "added by the user", which
//     every netlink add is), though it does change its remote; it does
//     mark a bridge entry. Notifications carry no sender, so evpnd's own
//     writes are told from others' by extern_learn alone.
//   - FDB dumps list bridge entries with NDA_MASTER but without
//     NTF_MASTER, and resume by skipping what was sent: reading 100k MACs
//     of one device takes about 2 s on a busy 2-core machine. That is the
//     cost of a restart before the first write.
//
// # Tenant VRFs (L3)
//
// Per tenant VRF, fib keeps a second desired state, L3Desired, reconciled
// by an L3Reconciler through an L3Kernel (L3Netlink, bound to the VRF's
// namespace: the underlay's for the default and vrf backends, the
// tenant's for netns). It writes, all marked as fib's:
//
//	ip neigh replace HOST lladdr MAC dev brV nud noarp extern_learn        # ARP/ND suppression (IPv4, IPv6)
//	ip route replace HOST/32 via VTEP dev brL onlink table T proto 241     # symmetric IRB host route
//	ip route replace PFX nexthop via VTEP dev brL onlink nexthop ...      # type-5, ECMP across VTEPs
//	ip neigh replace VTEP lladdr RMAC dev brL nud noarp extern_learn       # next hop's router MAC
//	bridge fdb replace RMAC dev vxlanL dst VTEP self master extern_learn   # one message, zebra's
//
// IPv6 routes go via the VTEP's IPv4-mapped address (::ffff:VTEP), with a
// neighbour for it, as zebra installs them: the kernel refuses an IPv4
// gateway (RTA_VIA) in an IPv6 route. Routes carry RouteProtocol (241,
// not FRR's 186-199 nor the kernel's; configs/evpnd.rt_protos.conf names
// it), neighbours extern_learn; fib owns every unicast remote entry of the
// L3VNI's VXLAN device (nothing is learned there) and the extern_learn
// neighbours of the VRF's SVIs.
//
// WantL3 (pure) derives the kernel state: router MACs are counted per VTEP
// of the VRF's L3VNI and go with the last route using them; a host route
// and a type-5 route of the same /32 are the host's; covering prefixes
// coexist with host routes (longest match picks the host); in a table
// that also routes the underlay (the default backend) no route holding a
// VTEP address is installed, a default route excepted (refusals are
// logged once), which goes in with LastResortMetric, next to the node's
// own default route, never over it. PlanL3 (pure) is the same comparison
// over whole states, which Check (for operators) uses.
//
// # The engine: one kind of kernel object, one table
//
// engine.go is fib's generic reconcile engine, after cilium's statedb
// reconciler. Each kind of kernel object is a table[K, V] (desired value
// per key, fib's entries the kernel holds as fib knows them, dirty keys,
// failed keys with their retry time) with its kernel operations
// (objectOps: dump what is marked, apply a batch of upserts and deletes,
// compare one entry). One loop runs a list of kinds: per pass it reads the
// kernel of the kinds that need it (at start, after a resync), takes a
// batch of dirty keys from each, writes the upserts in the kinds' order
// and the deletes in reverse order. A key is planned alone: written when
// wanted and absent or different, deleted when not wanted and fib's, but
// before markSynced only if this run wrote it. A kernel event marks its
// one key (observed): fib's own writes, read back, cost a map lookup; a
// deleted or changed entry is written again in the next pass and counted
// as a repair. A failed write is retried per key with backoff (100 ms to
// 5 s), a failed dump per kind.
//
// An L3Reconciler runs three kinds on one loop, in this order: router MAC
// FDB entries (MAC → VTEP), neighbours ((SVI, IP) → MAC) and routes
// (prefix → VTEPs), so a next hop is written before the routes that use
// it and deleted after them. Their desired state is WantL3 of the
// L3Desired, derived again (in memory, O(VRF) CPU, rate-limited while a
// burst drains) when the L3Desired changed; only keys whose wanted value
// changed become dirty. WatchL3 reports each route, neighbour and FDB
// change of the namespace as an L3Change of one key, and each link that
// comes, goes, is renamed or set up or down as a resync of that link:
// the kernel drops IPv4 routes with their device without a report, so a
// change of one of the VRF's devices makes its reconciler read the kernel
// again (dumps are per device, filtered in the kernel). A single drift or
// a single change therefore costs one write and no dump
// (TestL3SingleDriftCost). While a burst drains, the loop takes the
// kernel's reports between its passes, so a drift is not held behind the
// burst. L3Config.OnApply sees every op's
// outcome, repairs marked, with the (VNI, MAC) histories it belongs to
// (L3ApplyEvent.TraceKeys), for the daemon's trace and metrics.
//
// The caller: builds one L3Desired per VRF once vtep has its devices;
// feeds SetNeigh/SetHost (the selected location of each remote MAC+IP)
// and AddPath/DeletePath (each remote type-5); runs L3Reconciler.Run with
// WatchL3's channel, so drift (a deleted route, neighbour or router-MAC
// entry) is repaired at the kernel's report; and calls MarkSynced after
// BGP has re-synced. Until then nothing found in the kernel is deleted
// but what this run wrote and then withdrew.
//
// The L2 FDB Reconciler below predates the engine and has the same
// design (dirty keys, batches, retries, KernelChanged) in its own code;
// moving it onto the engine is the next step.
//
// # Contract
//
// The caller (the daemon) must:
//
//  1. Create one Desired, call SetVNI for every configured L2VNI, and only
//     then start Reconciler.Run in its own goroutine (an errgroup member).
//     Run reads the kernel before its first write; a VNI added later makes
//     it read the kernel again, which is correct but costs a dump.
//  2. Feed the selected remote state: SetMAC/DeleteMAC for the winner of
//     EVPN MAC selection per (VNI, MAC), AddFlood/DeleteFlood per remote
//     type-3 route. A MAC that moves is a SetMAC with the new VTEP: fib
//     replaces the entry in place, never delete-then-add. Never call
//     DeleteMAC for a move.
//  3. Call Invalidate(vni, mac) whenever local learning reports mac on an
//     access port of vni's bridge, after feeding the selection that the
//     local MAC leads to (step 2), if any. The bridge moves its entry for
//     a MAC it hears on a port to that port and clears extern_learn, so
//     fib's record of what it wrote is then wrong; without Invalidate a
//     MAC that stays remote with the same VTEP (sticky, frozen duplicate,
//     or a DeleteMAC and SetMAC that met before the reconciler looked) is
//     found "already correct" and the bridge forwards it to the access
//     port until the next resync. Invalidate makes the next pass write a
//     wanted MAC again, or delete the VXLAN entry of a MAC no longer
//     wanted (the local bridge entry stays; entries of an earlier run
//     wait for MarkSynced as always). It is as cheap as SetMAC.
//  4. Call MarkSynced once BGP has re-synced: End-of-RIB from every
//     established peer, or a timeout. Until then fib deletes nothing it
//     found in the kernel at start (entries of an earlier run), so a
//     restart leaves forwarding untouched; entries already correct are not
//     rewritten (Stats.Skipped counts them). Entries set and then deleted
//     within this run are deleted at once.
//  5. Feed KernelChanged, at once, with the changes of the managed VXLAN
//     devices' FDB (vtep's Learner.OnForeignVXLAN reports them, fib's own
//     included, with KernelEvent.ExternLearn set for marked entries): the
//     reconciler then repairs drift within a pass, not at the next resync,
//     and reports each repair in ApplyEvent.Repair and Stats.Repairs, and
//     in its log. Its own writes and deletes, reported back, cost a map
//     lookup and cannot start a loop (see KernelChanged).
//  6. Call Resync when kernel state may have drifted unseen (an event
//     socket overflowed, a VXLAN device was recreated), and set
//     Config.ResyncInterval as a backstop.
//  7. Watch Stats (Pending, Errors) and Synced, or set Config.OnApply and
//     Config.OnPass; failed entries are retried with exponential backoff
//     (Status tells why one failed). Check compares the kernel with the
//     desired state on demand, from any goroutine.
//  8. Cancel Run's context to stop; Run returns nil then. Close the
//     NetlinkKernel after Run (and any Check) has returned.
//
// Only one Reconciler may consume a Desired.
package fib
