// Package evpn is evpnd's pure EVPN model: route identities and contents
// (RFC 7432 type-2 and type-3, RFC 9136 type-5 as carried over VXLAN per
// RFC 8365), RD and RT derivation, import by route target, and MAC
// selection with mobility and duplicate detection (RFC 7432 §15).
//
// L3Table is the L3 side (RFC 9135 symmetric IRB, RFC 9136 type-5): from
// received MAC+IP and type-5 routes it selects the ARP/ND suppression
// neighbours (Neigh, per L2VNI and IP), the host routes (HostRoute, per
// VRF and IP, towards a VTEP with its router MAC), the type-5 routes
// (PrefixRoute, an ECMP set of VTEPs) and the remote router MACs per
// (VTEP, L3VNI); from local ARP/ND hosts it originates MAC+IP routes with
// their MAC's mobility sequence. The caller's duties:
//
//  1. Feed every received route to both Table and L3Table: a MAC+IP
//     route's MAC part is the Table's (it installs the MAC), its IP part
//     the L3Table's. MAC-only and MAC+IP routes for one host coexist.
//  2. Give L3Table.LocalHost the sequence the Table advertises for the
//     host's MAC, call LocalMACSeq on every Advertise effect of the Table
//     and LocalMACAway on every WithdrawLocal, so the MAC+IP routes follow
//     their MAC (RFC 7432 §15).
//  3. Call LocalHostGone when the kernel deletes the neighbour or it turns
//     FAILED, not when it turns STALE.
//  4. Apply the effects in order (fib's L3 desired state takes Neigh,
//     HostRoute and PrefixRoute as they are); on a resync, Snapshot.
//
// With no VRFs configured the L3Table imports and originates nothing.
//
// Nothing here does IO, starts goroutines or reads the clock: time is passed
// in by the caller. The GoBGP adapter in package speaker converts between
// these types and the wire; vtep/ and fib/ consume them.
package evpn
