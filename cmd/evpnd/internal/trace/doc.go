// Package trace keeps a bounded, per-MAC history of what evpnd did with
// each MAC, for `evpnctl trace MAC`: learned locally and advertised, a route
// received (peer, seq), selected or rejected and why, written to or removed
// from the kernel. An operator reads one MAC's timeline to find where a slow
// or lost move got stuck.
//
// A Recorder is safe for concurrent use: the daemon loop and the fib
// reconciler both record into the same one.
//
// Its contract:
//
//  1. Each (VNI, MAC) key keeps at most perKey events in a ring. When the
//     ring is full the oldest event is overwritten and the key is marked
//     Truncated, so the operator knows the timeline does not start at the
//     beginning.
//  2. At most maxKeys keys are kept. Recording a new key when the Recorder
//     is full evicts the key least recently recorded, with its whole
//     history, in O(1); the evicted key's ring is reused for the new key.
//  3. Record does not allocate once a key's ring has grown and while keys
//     are recycled by eviction; rings grow by doubling up to perKey, so a
//     MAC with three events costs three-ish events of memory, not perKey.
//     The worst case is maxKeys × perKey events (about 128 bytes each plus
//     the Detail text): 64 MiB with the defaults. Callers should pass
//     constant Detail strings on hot paths rather than formatting them.
//  4. Get and Find return copies; the caller may keep and modify them.
//
// Nothing here reads configuration or does IO. Record stamps time.Now()
// only when the event's Time is zero.
package trace
