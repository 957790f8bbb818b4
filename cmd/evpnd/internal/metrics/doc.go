// Package metrics exports evpnd's state to Prometheus on /metrics.
//
// Two kinds of values are exported:
//
//   - State the daemon already keeps (peers, MACs per VNI, routes per type,
//     fib counters, kernel sync) is read from a Source at scrape time by a
//     custom collector. Nothing polls in the background, and a scrape always
//     shows the daemon's current view.
//   - Events the daemon does not count itself (MAC moves, duplicates
//     detected, reconcile passes) are counted as they happen, through
//     MACMove, DuplicateDetected and ReconcilePass.
//
// The caller's duties:
//
//  1. Build one Metrics with New. It has its own registry (with the Go and
//     process collectors), never the global one, so tests and several
//     instances do not collide.
//  2. Implement Source. Snapshot may be called from several scrapes at
//     once and must not block for long: it runs on the scrape's goroutine.
//  3. If metrics.listen is set, call Listen at startup, so that a bad or
//     busy address fails the start with a clear error, then run Serve in
//     the daemon's errgroup; it returns nil once its context ends and the
//     server has shut down.
//  4. Call the event methods from any goroutine. A nil *Metrics ignores
//     them, so the daemon need not check whether metrics are on.
package metrics
