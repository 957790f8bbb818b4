package speaker

import (
	"context"
	"log/slog"
	"sort"
	"strings"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// gobgpLogger passes GoBGP's logs to slog. GoBGP's field names ("Topic",
// "Key", ...) become snake_case keys.
type gobgpLogger struct{ l *slog.Logger }

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
	panic("gobgp: fatal: " + msg)
}

func (g *gobgpLogger) Error(msg string, f gobgplog.Fields) { g.log(slog.LevelError, msg, f) }
func (g *gobgpLogger) Warn(msg string, f gobgplog.Fields)  { g.log(slog.LevelWarn, msg, f) }
func (g *gobgpLogger) Info(msg string, f gobgplog.Fields)  { g.log(slog.LevelInfo, msg, f) }
func (g *gobgpLogger) Debug(msg string, f gobgplog.Fields) { g.log(slog.LevelDebug, msg, f) }

// SetLevel is ignored: the slog handler decides.
func (g *gobgpLogger) SetLevel(gobgplog.LogLevel) {}

// GetLevel lets GoBGP skip building debug messages nobody will see.
func (g *gobgpLogger) GetLevel() gobgplog.LogLevel {
	if g.l.Enabled(context.Background(), slog.LevelDebug) {
		return gobgplog.DebugLevel
	}
	return gobgplog.InfoLevel
}
