package e2e

import (
	"fmt"
	"testing"
)

// pingsAnswered waits until every ping of pings has had 5 answers.
func pingsAnswered(t *testing.T, pings map[string]*background) {
	t.Helper()
	eventually(t, changeTimeout, "continuous pings answered", func() error {
		for name, p := range pings {
			if n := len(parseReplies(p.output())); n < 5 {
				return fmt.Errorf("%s: %d replies so far", name, n)
			}
		}
		return nil
	})
}

// pingsLoseNothing lets every running ping of pings get more further
// answers (counted, not slept), stops them, and fails the test for any
// echo request left unanswered. across names the event, for the messages
// ("across the reloads").
func pingsLoseNothing(t *testing.T, pings map[string]*background, more int, across string) {
	t.Helper()
	seen := map[string]int{}
	for name, p := range pings {
		seen[name] = len(parseReplies(p.output()))
	}
	eventually(t, changeTimeout, "pings answered "+across, func() error {
		for name, p := range pings {
			if n := len(parseReplies(p.output())); n < seen[name]+more {
				return fmt.Errorf("%s: %d of %d more replies", name, n-seen[name], more)
			}
		}
		return nil
	})
	for name, p := range pings {
		p.stop(t)
		r, err := parsePing(p.output())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if lost := r.lost(); len(lost) > 0 {
			t.Errorf("%s: %d of %d echo requests unanswered %s (icmp_seq %v)", name, len(lost), r.Transmitted, across, lost)
		} else {
			t.Logf("%s: %d echo requests %s, none lost", name, r.Transmitted, across)
		}
	}
}
