package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// metrics scrapes a node's Prometheus endpoint (127.0.0.1:9273 in the
// fabric's configs) from inside its namespace.
func (f *fabric) metrics(node string) string {
	f.t.Helper()
	// The socket is made inside the namespace (Do locks the thread);
	// HTTP then runs over it from anywhere.
	var conn net.Conn
	err := f.lab.Node(node).Do(func() (err error) {
		conn, err = net.DialTimeout("tcp", "127.0.0.1:9273", 5*time.Second)
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil },
	}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://127.0.0.1:9273/metrics")
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

// metricValue returns the value of the series named exactly name (with
// its labels, as exposed) in a scrape, 0 if absent.
func metricValue(body, name string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return x
			}
		}
	}
	return 0
}

// neighEvent is one bridge-family neighbour notification on the watched
// device, with the time the test received it.
type neighEvent struct {
	at   time.Time
	del  bool
	mac  string
	self bool
	dst  string
}

func (e neighEvent) String() string {
	s := "new"
	if e.del {
		s = "del"
	}
	side := "master"
	if e.self {
		side = "self"
	}
	return fmt.Sprintf("%s %s %s dst %q at %s", s, e.mac, side, e.dst, e.at.Format("15:04:05.000000"))
}

// neighMatch selects notifications: RTM_DELNEIGH or RTM_NEWNEIGH, the
// MAC, the VXLAN (self) or bridge side, and the remote (self only; ""
// matches any).
type neighMatch struct {
	del  bool
	mac  string
	self bool
	dst  string
}

func (m neighMatch) matches(e neighEvent) bool {
	return e.del == m.del && e.mac == m.mac && e.self == m.self && (m.dst == "" || e.dst == m.dst)
}

// neighWatch records a device's FDB notifications in a node's namespace.
type neighWatch struct {
	mu     sync.Mutex
	events []neighEvent
	err    error
	wake   chan struct{}
}

// watchNeigh subscribes to neighbour notifications in node's namespace
// and records those of dev; it stops when the test ends.
func watchNeigh(t *testing.T, f *fabric, node, dev string) *neighWatch {
	t.Helper()
	h, err := f.lab.Node(node).Handle()
	if err != nil {
		t.Fatal(err)
	}
	l, err := h.LinkByName(dev)
	h.Close()
	if err != nil {
		t.Fatal(err)
	}
	idx := l.Attrs().Index
	ns, err := vnetns.GetFromPath(f.lab.Node(node).Path())
	if err != nil {
		t.Fatal(err)
	}
	w := &neighWatch{wake: make(chan struct{}, 1)}
	ch := make(chan netlink.NeighUpdate, 4096)
	done := make(chan struct{})
	err = netlink.NeighSubscribeWithOptions(ch, done, netlink.NeighSubscribeOptions{
		Namespace:         &ns,
		ReceiveBufferSize: 4 << 20,
		ErrorCallback: func(err error) {
			if harmlessNetlinkReport(err) {
				return
			}
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
		},
	})
	if err != nil {
		ns.Close()
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for u := range ch {
			at := time.Now()
			n := u.Neigh
			if n.Family != unix.AF_BRIDGE || n.LinkIndex != idx {
				continue
			}
			e := neighEvent{at: at, del: u.Type == unix.RTM_DELNEIGH, mac: n.HardwareAddr.String(), self: n.Flags&unix.NTF_SELF != 0}
			if n.IP != nil {
				e.dst = n.IP.String()
			}
			w.mu.Lock()
			w.events = append(w.events, e)
			w.mu.Unlock()
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		<-stopped // the subscription closes ch once done is seen
		ns.Close()
	})
	return w
}

// mark returns a position in the record: between looks only at what
// comes after it.
func (w *neighWatch) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

// after waits until a notification matching first and, after it, one
// matching then have been recorded since mark, and returns when the test
// received the second.
func (w *neighWatch) after(mark int, first, then neighMatch, timeout time.Duration) (time.Time, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		evs, err := w.events[mark:], w.err
		seen := false
		for _, e := range evs {
			switch {
			case !seen && first.matches(e):
				seen = true
			case seen && then.matches(e):
				w.mu.Unlock()
				return e.at, nil
			}
		}
		w.mu.Unlock()
		if err != nil {
			return time.Time{}, fmt.Errorf("neighbour subscription: %w", err)
		}
		select {
		case <-w.wake:
		case <-deadline.C:
			var b strings.Builder
			for _, e := range evs {
				fmt.Fprintf(&b, "  %s\n", e)
			}
			return time.Time{}, fmt.Errorf("no %+v followed by %+v within %v; notifications:\n%s", first, then, timeout, b.String())
		}
	}
}
