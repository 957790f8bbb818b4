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
	// Repair is set (Kind non-zero) when the operation undoes a change
	// someone else made to the kernel (KernelChanged, or a resync after
	// the first): what was found, in Check's terms, with Detail the
	// iproute2 command(s) applied.
	Repair Drift
}

// IsRepair reports whether e undoes drift made behind fib's back.
func (e ApplyEvent) IsRepair() bool { return e.Repair.Kind != 0 }

// PassEvent describes one reconcile pass that found dirty keys, for
// Config.OnPass: the keys were taken in batches and applied until none
// were left.
type PassEvent struct {
	Duration time.Duration
	Ops      int // kernel operations sent; 0 when every key was already correct
	Errors   int // operations that failed (and will be retried)
}
