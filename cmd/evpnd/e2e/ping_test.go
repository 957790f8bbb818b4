package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pingRun is the output of `ping -D` (timestamped replies), stopped with
// SIGINT or at its count.
type pingRun struct {
	Transmitted int
	Received    int
	Replies     map[int]time.Time // icmp_seq -> when the reply arrived
}

var (
	rePingReply = regexp.MustCompile(`(?m)^\[(\d+)\.(\d+)\] \d+ bytes from \S+: icmp_seq=(\d+) `) // IPv4 or IPv6
	rePingStats = regexp.MustCompile(`(?m)^(\d+) packets transmitted, (\d+) received`)
)

func parsePing(out string) (pingRun, error) {
	r := pingRun{Replies: map[int]time.Time{}}
	s := rePingStats.FindStringSubmatch(out)
	if s == nil {
		return r, fmt.Errorf("no statistics line in ping output:\n%s", tail(out, 20))
	}
	r.Transmitted, _ = strconv.Atoi(s[1])
	r.Received, _ = strconv.Atoi(s[2])
	r.Replies = parseReplies(out)
	return r, nil
}

// parseReplies returns the replies in `ping -D` output so far, by
// icmp_seq, without duplicates.
func parseReplies(out string) map[int]time.Time {
	replies := map[int]time.Time{}
	for _, m := range rePingReply.FindAllStringSubmatch(out, -1) {
		sec, _ := strconv.ParseInt(m[1], 10, 64)
		frac := m[2]
		for len(frac) < 9 {
			frac += "0"
		}
		nsec, _ := strconv.ParseInt(frac[:9], 10, 64)
		seq, _ := strconv.Atoi(m[3])
		if _, dup := replies[seq]; !dup {
			replies[seq] = time.Unix(sec, nsec)
		}
	}
	return replies
}

// parseUnixTime reads the first line of `date +%s.%N` output.
func parseUnixTime(out string) (time.Time, error) {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	sec, frac, ok := strings.Cut(line, ".")
	s, err1 := strconv.ParseInt(sec, 10, 64)
	ns, err2 := strconv.ParseInt(frac, 10, 64)
	if !ok || err1 != nil || err2 != nil || len(frac) != 9 {
		return time.Time{}, fmt.Errorf("not a date +%%s.%%N line: %q", line)
	}
	return time.Unix(s, ns), nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) <= n {
		return strings.Join(lines, "\n")
	}
	return fmt.Sprintf("[%d earlier lines left out]\n%s", len(lines)-n, strings.Join(lines[len(lines)-n:], "\n"))
}

// lost lists the unanswered sequence numbers, except the last one sent:
// it may have been in flight when ping was interrupted.
func (r pingRun) lost() []int {
	var out []int
	for seq := 1; seq < r.Transmitted; seq++ {
		if _, ok := r.Replies[seq]; !ok {
			out = append(out, seq)
		}
	}
	return out
}

// firstReplyAfter returns when the first reply after t arrived.
func (r pingRun) firstReplyAfter(t time.Time) (time.Time, bool) {
	var first time.Time
	for _, at := range r.Replies {
		if at.After(t) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero()
}

func TestParsePing(t *testing.T) {
	out := `PING 192.168.100.15 (192.168.100.15) 56(84) bytes of data.
[1764087321.100000] 64 bytes from 192.168.100.15: icmp_seq=1 ttl=64 time=0.215 ms
[1764087321.120000] 64 bytes from 192.168.100.15: icmp_seq=2 ttl=64 time=0.2 ms
[1764087321.180500] 64 bytes from 192.168.100.15: icmp_seq=5 ttl=64 time=0.2 ms
[1764087321.180600] 64 bytes from 192.168.100.15: icmp_seq=5 ttl=64 time=0.2 ms (DUP!)

--- 192.168.100.15 ping statistics ---
6 packets transmitted, 3 received, +1 duplicates, 50% packet loss, time 100ms
`
	r, err := parsePing(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Transmitted != 6 || r.Received != 3 || len(r.Replies) != 3 {
		t.Errorf("parsed %+v", r)
	}
	if got := r.lost(); !slices.Equal(got, []int{3, 4}) {
		t.Errorf("lost = %v, want [3 4] (6 may be in flight)", got)
	}
	at, ok := r.firstReplyAfter(time.Unix(1764087321, 150_000_000))
	if !ok || !at.Equal(time.Unix(1764087321, 180_500_000)) {
		t.Errorf("first reply after .150 = %v %v", at, ok)
	}
	out6 := `PING 2001:db8:2::14 (2001:db8:2::14) 56 data bytes
[1764087321.100000] 64 bytes from 2001:db8:2::14: icmp_seq=1 ttl=63 time=0.215 ms
[1764087321.120000] 64 bytes from 2001:db8:2::14: icmp_seq=3 ttl=63 time=0.2 ms

--- 2001:db8:2::14 ping statistics ---
3 packets transmitted, 2 received, 33.3333% packet loss, time 40ms
`
	if r, err := parsePing(out6); err != nil || len(r.Replies) != 2 || !slices.Equal(r.lost(), []int{2}) {
		t.Errorf("IPv6: parsed %+v, %v; want replies 1 and 3, 2 lost", r, err)
	}
	if _, err := parsePing("ping: connect: Network is unreachable\n"); err == nil {
		t.Error("no error for output without statistics")
	}
}
