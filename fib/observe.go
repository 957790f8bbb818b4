package fib

import (
	"net/netip"
	"time"
)

// ApplyEvent is the outcome of one kernel operation, for Config.OnApply.
type ApplyEvent struct {
	Key    Key
	VTEP   netip.Addr // the VTEP written, or the remote deleted (unset: the whole VXLAN entry)
	Delete bool       // OpDelete; otherwise a write (MAC replace or flood append)
	Err    error      // nil on success; a failed operation is retried with backoff
	Time   time.Time  // when the batch holding the operation returned from the kernel
}

// PassEvent describes one reconcile pass that found dirty keys, for
// Config.OnPass: the keys were taken in batches and applied until none
// were left.
type PassEvent struct {
	Duration time.Duration
	Ops      int // kernel operations sent; 0 when every key was already correct
	Errors   int // operations that failed (and will be retried)
}
