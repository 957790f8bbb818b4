// Package daemon wires evpnd together: it is the one package that knows
// configs, vtep, speaker and fib, and the data flows one way through it.
//
//	vtep.Learner ─────────┐                        ┌─► fib.Desired ─► fib.Reconciler ─► kernel
//	                      ├─► queue ─► loop(Table) ─┤
//	speaker.WatchBatches ─┘                        └─► speaker.Advertiser ─► BGP
//
// The FDB learner only pushes onto the queue. The speaker's watch hands
// over one batch of events at a time and waits until the loop has handled
// it, so that the speaker coalesces what comes meanwhile per route key
// (memory bounded by routes, not updates). A single loop goroutine owns the
// pure selection table (speaker/evpn), drains the queue in batches (no
// fixed batching delay), and turns the table's effects into fib mutations
// and the routes wanted in BGP. It never calls GoBGP: the Advertiser hands
// those to GoBGP on its own goroutine, keeps what GoBGP did not take
// pending and retries it, and reports a MAC route refused for its sequence
// number (Outbid), which the loop bids again above. The speaker also says
// when the initial table is in (EventSynced: fib may prune) and holds a
// restarted reflector's withdrawals (Config.ResyncWindow). Every loop is a
// member of one errgroup; Run returns when all have stopped. One of them,
// vtep.Manager.Supervise, keeps the VNIs' devices as configured; when it
// rebuilds one, the daemon has fib read the kernel again (Resync), which
// rewrites the VNI's remote MACs and flood list.
//
// Runtime changes (the API's AddVNI and DeleteVNI, and Reload, which
// SIGHUP also triggers) are serialised by one mutex and go through the
// loop as calls, a batch of VNIs per call, so the loop never holds a
// long change. The configuration in force (live) is what runs; file is
// the config file as last read, and status reports how they differ.
//
// Each tenant VRF runs its own goroutines (device supervision, its
// namespace's learner, fib's L3 reconciler, the watch of its hosts) under
// a context of its own, and joins or leaves fib's FDB kernel sides, so
// that a reload adds or removes one VRF without touching the others
// (vrfreload.go: built through vtep's planner as at start, or removed
// after its routes are withdrawn and its kernel state cleaned; a VRF that
// cannot be built is rolled back with the reload's other VRF changes).
package daemon
