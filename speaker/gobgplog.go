package speaker

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// gobgpHandler is the slog.Handler GoBGP logs through. It passes GoBGP's
// records to evpnd's logger, GoBGP's attribute names ("Topic", "Key", ...)
// as lower-case keys.
//
// It is also where the Server learns two things GoBGP's API does not tell:
// why a session went down (ListPeer drops the FSM's reason and the
// NOTIFICATION) and whether the gRPC API failed to listen. GoBGP's FSM
// logs through logger.With("Topic", "Peer", "Key", <address>), so those
// come through WithAttrs.
type gobgpHandler struct {
	out      slog.Handler
	attrs    []slog.Attr // from WithAttrs, GoBGP's names
	sessions *sessionLog // may be nil
	// apiFailed, if set, takes GoBGP's gRPC listen error.
	apiFailed func(error)
}

// Messages of GoBGP v4.9 the handler acts on (pkg/server/fsm.go,
// server.go NewBgpServer).
const (
	gobgpStateChanged    = "state changed"         // every FSM transition, at debug whatever the level
	gobgpNotifSent       = "sent notification"     // info
	gobgpNotifReceived   = "received notification" // info
	gobgpGrpcListenError = "failed to listen grpc port"
)

func newGobgpLogger(l *slog.Logger, sessions *sessionLog, apiFailed func(error)) *slog.Logger {
	return slog.New(&gobgpHandler{out: l.Handler(), sessions: sessions, apiFailed: apiFailed})
}

// Enabled is true down to debug when sessions are tracked: the FSM's
// "state changed" is a debug record.
func (h *gobgpHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return (h.sessions != nil && level >= slog.LevelDebug) || h.out.Enabled(ctx, level)
}

func (h *gobgpHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

// WithGroup is not used by GoBGP; groups are flattened.
func (h *gobgpHandler) WithGroup(string) slog.Handler { return h }

func (h *gobgpHandler) Handle(ctx context.Context, r slog.Record) error {
	switch r.Message {
	case gobgpStateChanged, gobgpNotifSent, gobgpNotifReceived, gobgpGrpcListenError:
		f := make(logFields, len(h.attrs)+r.NumAttrs())
		for _, a := range h.attrs {
			f[a.Key] = a.Value.Resolve()
		}
		r.Attrs(func(a slog.Attr) bool {
			f[a.Key] = a.Value.Resolve()
			return true
		})
		switch {
		case h.sessions == nil:
		case r.Message == gobgpStateChanged:
			h.sessions.stateChanged(f)
		case r.Message == gobgpNotifSent:
			h.sessions.notification("sent", f)
		case r.Message == gobgpNotifReceived:
			h.sessions.notification("received", f)
		}
		if r.Message == gobgpGrpcListenError && h.apiFailed != nil {
			// NOTE: GoBGP logs this from the goroutine that serves its
			// gRPC API, which then ends; nothing else depends on it.
			// Start reports it.
			h.apiFailed(errors.New(f.str("Error")))
		}
	}
	if !h.out.Enabled(ctx, r.Level) {
		return nil
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	for _, a := range h.attrs {
		out.AddAttrs(slog.Attr{Key: strings.ToLower(a.Key), Value: a.Value})
	}
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(slog.Attr{Key: strings.ToLower(a.Key), Value: a.Value})
		return true
	})
	return h.out.Handle(ctx, out)
}

// logFields are a record's attributes by GoBGP's names.
type logFields map[string]slog.Value

func (f logFields) str(k string) string {
	if v, ok := f[k]; ok {
		return v.String()
	}
	return ""
}

func (f logFields) int(k string) (int64, bool) {
	v, ok := f[k]
	if !ok {
		return 0, false
	}
	switch v.Kind() {
	case slog.KindInt64:
		return v.Int64(), true
	case slog.KindUint64:
		return int64(v.Uint64()), true
	}
	return 0, false
}

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

func (l *sessionLog) record(f logFields) *sessionRecord {
	peer := parseAddr(f.str("Key"))
	if f.str("Topic") != "Peer" || !peer.IsValid() {
		return nil
	}
	r := l.peers[peer]
	if r == nil {
		r = &sessionRecord{}
		l.peers[peer] = r
	}
	return r
}

func (l *sessionLog) notification(dir string, f logFields) {
	text := notificationText(dir, f)
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.record(f); r != nil && text != "" {
		// Also the last error at once: GoBGP v4 does not always log the
		// transition to Idle that follows (a NOTIFICATION sent from
		// Active, on a connection it accepted, is not).
		r.notification, r.last = text, text
	}
}

func (l *sessionLog) stateChanged(f logFields) {
	idle := bgp.BGP_FSM_IDLE.String()
	if f.str("new") != idle || f.str("old") == idle {
		return
	}
	reason := f.str("reason")
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
// GoBGP's words: "notification sent: code 2(open) subcode 2(bad peer as)",
// "notification received: code 6(cease) subcode 2(administrative
// shutdown): <the peer's message>" (RFC 9003).
func notificationText(dir string, f logFields) string {
	code, ok1 := f.int("Code")
	sub, ok2 := f.int("Subcode")
	if !ok1 || !ok2 {
		return ""
	}
	text := bgp.NewNotificationErrorCode(uint8(code), uint8(sub)).String()
	if c := f.str("Communicated-Reason"); c != "" {
		text += ": " + c
	}
	return "notification " + dir + ": " + text
}
