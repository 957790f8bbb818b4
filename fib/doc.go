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
//   - DesiredEntries, InstalledFrom and Diff are pure functions: the
//     entries a snapshot wants, the entries fib owns in a kernel dump, and
//     the operations between the two.
//   - Reconciler.Run takes dirty keys in batches and applies them through a
//     Kernel. NetlinkKernel (Linux) writes each remote MAC as one
//     RTM_NEWNEIGH with NTF_SELF|NTF_MASTER|NTF_EXT_LEARNED, zebra's
//     message, and sends many messages per sendmsg, reading one ack each.
//
// # Ownership
//
// fib owns, on the VXLAN device of every managed VNI:
//   - unicast MAC entries marked extern_learn, VXLAN (self) or bridge
//     (master) side;
//   - every all-zero-MAC (flood-list) entry. The kernel keeps extern_learn
//     per MAC entry, not per remote, and drops it when anyone appends
//     without it, so it cannot mark flood remotes; fib writes it anyway.
//
// Entries without extern_learn (added by hand, or learned locally) are never
// deleted or pruned; a MAC that the desired state wants is written over
// whatever entry holds it. Deleting a MAC deletes the bridge entry and the VXLAN entry in
// separate messages: if the MAC has since been learned on an access port,
// the kernel refuses the bridge delete (ENOENT, port differs) and the local
// entry stays; the VXLAN entry is deleted only while it points at the VTEP
// fib wrote.
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
//   - FDB dumps list bridge entries with NDA_MASTER but without
//     NTF_MASTER, and resume by skipping what was sent: reading 100k MACs
//     of one device takes about 2 s on a busy 2-core machine. That is the
//     cost of a restart before the first write.
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
//  5. Call Resync when kernel state may have drifted (an event socket
//     overflowed, a VXLAN device was recreated), or set
//     Config.ResyncInterval.
//  6. Watch Stats (Pending, Errors) and Synced; failed entries are retried
//     with exponential backoff (Status tells why one failed).
//  7. Cancel Run's context to stop; Run returns nil then. Close the
//     NetlinkKernel after Run has returned.
//
// Only one Reconciler may consume a Desired.
package fib
