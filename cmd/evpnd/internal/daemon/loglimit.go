package daemon

import "time"

// logInterval is how often a rate-limited kind of log line may be
// written.
const logInterval = 10 * time.Second

// logLimit lets one log line of a kind through per logInterval and
// counts the others, so that a peer sending thousands of odd routes costs
// a line every few seconds. The zero value is ready; it is not safe for
// concurrent use (the leaf loop owns it).
type logLimit struct {
	next       time.Time
	suppressed int
}

// allow reports whether a line may be logged at now and, if so, how many
// were held back since the last one.
func (l *logLimit) allow(now time.Time) (bool, int) {
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.next, l.suppressed = now.Add(logInterval), 0
	return true, n
}
