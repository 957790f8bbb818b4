package speaker

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"sync"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// gobgpLogger passes GoBGP's logs to slog. GoBGP's field names ("Topic",
// "Key", ...) become snake_case keys.
//
// It is also where the Server learns two things GoBGP v3.37's API does not
// tell: why a session went down (the API's peer state and watch events
// drop the FSM's reason and the NOTIFICATION) and whether the gRPC API
// failed to listen.
type gobgpLogger struct {
	l        *slog.Logger
	sessions *sessionLog // may be nil
	// apiFailed, if set, takes GoBGP's gRPC listen error instead of a
	// panic (see Fatal).
	apiFailed func(error)
}

// Messages of GoBGP v3.37 the logger acts on (pkg/server/fsm.go,
// server.go NewBgpServer).
const (
	gobgpStateChanged    = "state changed"         // every FSM transition, at debug whatever the level
	gobgpNotifSent       = "sent notification"     // warn
	gobgpNotifReceived   = "received notification" // warn
	gobgpGrpcListenError = "failed to listen grpc port"
)

// sessionLog keeps, per neighbour address, why its session last went to
// Idle (PeerStatus.LastError). GoBGP's logger feeds it from GoBGP's main
// loop and FSM goroutines: it only takes its own lock.
//
// A NOTIFICATION sent or received is the reason of the next transition to
// Idle: GoBGP's own reason for it is vaguer in OpenSent and OpenConfirm
// ("invalid-msg"). Without one, the FSM's reason is kept as GoBGP words
// it ("hold-timer-expired", "read-failed", ...). Entries are never
// removed: GoBGP runs sessions only for configured neighbours and the
// addresses of dynamic ranges, which bounds them.
type sessionLog struct {
	mu    sync.Mutex
	peers map[netip.Addr]*sessionRecord
}

type sessionRecord struct {
	notification string // seen since the last transition to Idle
	last         string
}

func newSessionLog() *sessionLog { return &sessionLog{peers: make(map[netip.Addr]*sessionRecord)} }

// lastError returns the reason recorded for peer, "" if none.
func (l *sessionLog) lastError(peer netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.peers[peer]; r != nil {
		return r.last
	}
	return ""
}

func (l *sessionLog) record(f gobgplog.Fields) *sessionRecord {
	key, _ := f["Key"].(string)
	peer := parseAddr(key)
	if f["Topic"] != "Peer" || !peer.IsValid() {
		return nil
	}
	r := l.peers[peer]
	if r == nil {
		r = &sessionRecord{}
		l.peers[peer] = r
	}
	return r
}

func (l *sessionLog) notification(dir string, f gobgplog.Fields) {
	text := notificationText(dir, f)
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.record(f); r != nil && text != "" {
		r.notification = text
	}
}

func (l *sessionLog) stateChanged(f gobgplog.Fields) {
	idle := bgp.BGP_FSM_IDLE.String()
	if f["new"] != idle || f["old"] == idle {
		return
	}
	reason := reasonText(f["reason"])
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.record(f)
	if r == nil {
		return
	}
	switch {
	case r.notification != "":
		r.last = r.notification
	case reason != "":
		r.last = reason
	}
	r.notification = ""
}

// notificationText renders a NOTIFICATION GoBGP logged, its code in
// GoBGP's words: "notification sent: code 2(open) subcode 2(bad peer as)
// (as number mismatch expected 65009, received 65000)", "notification
// received: code 6(cease) subcode 2(administrative shutdown): <the peer's
// message>" (RFC 9003).
func notificationText(dir string, f gobgplog.Fields) string {
	var text string
	if e, ok := f["Data"].(*bgp.MessageError); ok && e != nil {
		text = bgp.NewNotificationErrorCode(e.TypeCode, e.SubTypeCode).String()
		if e.Message != "" {
			text += " (" + e.Message + ")"
		}
	} else {
		code, ok1 := f["Code"].(uint8)
		sub, ok2 := f["Subcode"].(uint8)
		if !ok1 || !ok2 {
			return ""
		}
		text = bgp.NewNotificationErrorCode(code, sub).String()
		if c, _ := f["Communicated-Reason"].(string); c != "" {
			text += ": " + c
		}
	}
	return "notification " + dir + ": " + text
}

// reasonText renders GoBGP's FSM reason (an *fsmStateReason); "" if there
// is none. Its String method assumes a well-formed reason: never let it
// panic GoBGP's main loop.
func reasonText(v any) (s string) {
	defer func() {
		if recover() != nil {
			s = ""
		}
	}()
	st, ok := v.(fmt.Stringer)
	if !ok {
		return ""
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return ""
	}
	return st.String()
}

func (g *gobgpLogger) log(level slog.Level, msg string, f gobgplog.Fields) {
	ctx := context.Background()
	if !g.l.Enabled(ctx, level) {
		return
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(strings.ToLower(k), f[k]))
	}
	g.l.LogAttrs(ctx, level, msg, attrs...)
}

// Panic and Fatal must not return; GoBGP calls them on invariants it cannot
// recover from. They panic rather than exit, so the daemon's stack shows.
func (g *gobgpLogger) Panic(msg string, f gobgplog.Fields) {
	g.log(slog.LevelError, msg, f)
	panic("gobgp: " + msg)
}

func (g *gobgpLogger) Fatal(msg string, f gobgplog.Fields) {
	g.log(slog.LevelError, msg, f)
	if msg == gobgpGrpcListenError && g.apiFailed != nil {
		// NOTE: GoBGP calls this from the goroutine that serves its gRPC
		// API, which then ends; nothing else depends on it, so it need
		// not take the daemon down. Start reports it.
		err, ok := f["Err"].(error)
		if !ok {
			err = fmt.Errorf("%v", f["Err"])
		}
		g.apiFailed(err)
		return
	}
	panic("gobgp: fatal: " + msg)
}

func (g *gobgpLogger) Error(msg string, f gobgplog.Fields) { g.log(slog.LevelError, msg, f) }
func (g *gobgpLogger) Warn(msg string, f gobgplog.Fields) {
	if g.sessions != nil {
		switch msg {
		case gobgpNotifSent:
			g.sessions.notification("sent", f)
		case gobgpNotifReceived:
			g.sessions.notification("received", f)
		}
	}
	g.log(slog.LevelWarn, msg, f)
}

func (g *gobgpLogger) Info(msg string, f gobgplog.Fields) { g.log(slog.LevelInfo, msg, f) }
func (g *gobgpLogger) Debug(msg string, f gobgplog.Fields) {
	if msg == gobgpStateChanged && g.sessions != nil {
		g.sessions.stateChanged(f)
	}
	g.log(slog.LevelDebug, msg, f)
}

// SetLevel is ignored: the slog handler decides.
func (g *gobgpLogger) SetLevel(gobgplog.LogLevel) {}

// GetLevel lets GoBGP skip building debug messages nobody will see.
func (g *gobgpLogger) GetLevel() gobgplog.LogLevel {
	if g.l.Enabled(context.Background(), slog.LevelDebug) {
		return gobgplog.DebugLevel
	}
	return gobgplog.InfoLevel
}
