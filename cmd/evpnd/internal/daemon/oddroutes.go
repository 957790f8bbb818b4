package daemon

import (
	"sync"
	"time"

	"github.com/evpnd/evpnd/speaker/evpn"
)

// Odd routes are logged at most oddLogBurst times per kind in each
// oddLogPeriod; the rest are counted and summed up in the next line of that
// kind. Every one is counted in evpnd_odd_routes_total.
const (
	oddLogBurst  = 5
	oddLogPeriod = time.Minute
)

// oddLimiter rate-limits the log lines of odd routes, per kind.
type oddLimiter struct {
	mu    sync.Mutex
	kinds map[evpn.Oddity]*oddWindow
}

type oddWindow struct {
	start      time.Time
	logged     int
	suppressed int
}

// allow reports whether an odd route of kind may be logged at now, and how
// many of the kind were suppressed since the last line logged.
func (o *oddLimiter) allow(kind evpn.Oddity, now time.Time) (bool, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.kinds == nil {
		o.kinds = map[evpn.Oddity]*oddWindow{}
	}
	w := o.kinds[kind]
	if w == nil {
		w = &oddWindow{start: now}
		o.kinds[kind] = w
	}
	if now.Sub(w.start) >= oddLogPeriod {
		w.start, w.logged = now, 0
	}
	if w.logged >= oddLogBurst {
		w.suppressed++
		return false, 0
	}
	w.logged++
	n := w.suppressed
	w.suppressed = 0
	return true, n
}

// oddRoute logs (rate-limited) and counts one odd route.
func (d *Daemon) oddRoute(e *evpn.Effect, msg string) {
	d.metrics.OddRoute(string(e.Odd))
	ok, suppressed := d.odd.allow(e.Odd, time.Now())
	if !ok {
		return
	}
	args := []any{"kind", string(e.Odd), "reason", e.Reason}
	if e.VNI != 0 {
		args = append(args, "vni", e.VNI)
	}
	if !e.MAC.IsZero() {
		args = append(args, "mac", e.MAC)
	}
	if e.VTEP.IsValid() {
		args = append(args, "vtep", e.VTEP)
	}
	if e.Odd == evpn.OddSeqMax {
		args = append(args, "seq", e.Seq)
	}
	if suppressed > 0 {
		args = append(args, "suppressed_since_last", suppressed)
	}
	d.log.Warn(msg, args...)
}
