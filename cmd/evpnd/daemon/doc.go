// Package daemon wires evpnd together: it is the one package that knows
// configs, vtep, speaker and fib, and the data flows one way through it.
//
//	vtep.Learner ─┐                        ┌─► fib.Desired ─► fib.Reconciler ─► kernel
//	              ├─► queue ─► loop(Table) ─┤
//	speaker.Watch ┘                        └─► speaker.Announce/Withdraw ─► BGP
//
// GoBGP's callbacks and the FDB learner only push onto an unbounded queue;
// a single loop goroutine owns the pure selection table (speaker/evpn),
// drains the queue in batches (no fixed batching delay), and turns the
// table's effects into fib mutations and BGP announcements. Every loop is a
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
package daemon
