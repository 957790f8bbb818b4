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
// member of one errgroup; Run returns when all have stopped.
package daemon
