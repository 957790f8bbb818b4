// Package speaker is evpnd's BGP speaker: the only package that imports
// GoBGP (github.com/osrg/gobgp/v4). It converts between the pure EVPN model
// of package speaker/evpn and GoBGP's packet and API types, and wraps an
// embedded GoBGP server for the l2vpn-evpn address family.
//
// GoBGP is imported by five files only, so that a move to GoBGP v4 touches
// only them: codec.go (model ↔ wire, no server), server.go, watch.go and
// rib.go (the embedded server) and gobgplog.go (its logger). types.go,
// queue.go, sync.go, resync.go, advertiser.go, apilisten.go and the
// graceful-stop helper (dropsessions_linux.go) are GoBGP-free.
//
// # Codec
//
// ToPath/ToNative encode an evpn.Route as RFC 7432/8365/9136 over VXLAN:
// labels carry the VNI raw in 24 bits (VNI 100 is the bytes 00 00 64, as
// FRR sends it), the encapsulation community says VXLAN (8), type-3 routes
// carry a PMSI tunnel attribute of type 6 (ingress replication). FromNative,
// FromPath and DecodeUpdate decode the other way. Route types evpnd does not
// handle (1, 4) decode to an error wrapping ErrUnsupported; the caller logs
// and skips them. Malformed input yields an error, never a panic.
//
// L3 routes (issue 10) use the same types: a type-2 MAC+IP route for
// symmetric IRB has labels [L2VNI, L3VNI] and the Router's MAC community
// (RFC 9135), an anycast gateway's MAC+IP route the Default Gateway
// community (RFC 7432 §7.8), a type-5 one label (the L3VNI), gateway IP 0
// and ESI 0 (RFC 9136). evpn.LocalMACIPRoute, LocalGatewayRoute and
// LocalPrefixRoute build them; the encoder refuses a non-unicast router
// MAC, a type-5 without exactly one non-zero label, and the Default
// Gateway community anywhere but on a MAC/IP route with an IP. Their
// encoding equals FRR 8.4's byte for byte (testdata), but for the MAC
// mobility community at seq 0, which evpnd always sends (DESIGN §4b).
//
// # Server
//
// The caller's duties, in order:
//
//  1. New(cfg), then Start(ctx): the BGP instance runs, no neighbours yet.
//  2. Watch(ctx, fn) before adding neighbours, so that no peer event is
//     missed. fn is called from one goroutine owned by the Server, in order,
//     and must return promptly; route events are coalesced per evpn.Key
//     while fn is busy, so a slow fn costs memory bounded by the number of
//     distinct routes, not by the number of updates.
//  3. After a restart (Config.Restarting), Announce the locally re-learned
//     routes before AddNeighbor: GoBGP sends End-of-RIB right after the
//     table it holds when the session comes up, so routes announced first
//     are part of that table (see Config.Restarting).
//  4. AddNeighbor / AddDynamicNeighbor; Announce and Withdraw as local state
//     changes, or through an Advertiser (NewAdvertiser), which does so on
//     its own goroutine, per key, retrying what GoBGP does not take and
//     reporting MAC routes refused for their sequence number (Outbid).
//  5. Stop(ctx, graceful). graceful=true drops the sessions without a Cease
//     NOTIFICATION so that peers with graceful restart keep our routes
//     (RFC 4724); graceful=false sends Cease and peers flush our routes.
//
// Paths (or ListPaths, which also counts what it skipped) lists the whole
// l2vpn-evpn table, every path of every NLRI, for `show evpn route`;
// Peers lists the neighbours with the reason each last went down and their
// message counters; PeersAdvertised adds the paths advertised to each, a
// count GoBGP recomputes from the whole table (see its cost there).
//
// With Config.GoBGPAPIListen the embedded instance also serves GoBGP's own
// gRPC API on a loopback address from Start to Stop, for GoBGP's CLI.
//
// Route events carry the best path per route key as GoBGP selects it;
// EVPN selection across RDs (MAC mobility) is not done here but in
// speaker/evpn. Routes that this speaker originated, that carry our
// router-id as ORIGINATOR_ID, or whose VTEP is one of Config.LocalVTEPs, are
// never delivered as remote routes.
package speaker
