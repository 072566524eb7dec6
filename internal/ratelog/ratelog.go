// Package ratelog bounds how often one kind of log line is written. The
// drivers that read packets and frames anyone can send (the DHCP server,
// the access point) log what they drop; a flood of hostile or surplus
// input must cost one line per kind per interval, which says how many were
// left out, and not a line per packet.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/openmifi/openmifi/internal/clock"
)

// Every is the most often one kind of line is written.
const Every = 10 * time.Second

// maxKinds bounds the table: kinds are meant to be a fixed set of
// strings, but a caller that builds them from input must not grow it.
const maxKinds = 64

// Logger writes at most one line per kind per Every and counts the rest.
type Logger struct {
	log   *slog.Logger
	clock clock.Clock

	mu    sync.Mutex
	kinds map[string]*entry
}

type entry struct {
	last       time.Time
	suppressed int
}

// New returns a Logger writing to log, with time from c.
func New(log *slog.Logger, c clock.Clock) *Logger {
	return &Logger{log: log, clock: c, kinds: map[string]*entry{}}
}

// Warn writes a warning unless a line of the same kind was written less
// than Every ago, in which case it only counts it.
func (r *Logger) Warn(kind, msg string, args ...any) { r.Log(slog.LevelWarn, kind, msg, args...) }

// Debug is Warn at debug level.
func (r *Logger) Debug(kind, msg string, args ...any) { r.Log(slog.LevelDebug, kind, msg, args...) }

// Log is Warn at any level.
func (r *Logger) Log(level slog.Level, kind, msg string, args ...any) {
	if n, ok := r.Allow(kind); ok {
		r.Emit(level, n, msg, args...)
	}
}

// Allow reports whether a line of this kind may be written now, and how
// many were left out since the last one; if not, it counts this one. Hot
// paths call it before building the line's arguments, then Emit.
func (r *Logger) Allow(kind string) (suppressed int, ok bool) {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.kinds[kind]
	if e == nil {
		if len(r.kinds) >= maxKinds {
			clear(r.kinds)
		}
		e = &entry{}
		r.kinds[kind] = e
	} else if now.Sub(e.last) < Every {
		e.suppressed++
		return 0, false
	}
	suppressed = e.suppressed
	e.last, e.suppressed = now, 0
	return suppressed, true
}

// Emit writes a line Allow allowed, with the count it returned.
func (r *Logger) Emit(level slog.Level, suppressed int, msg string, args ...any) {
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	r.log.Log(context.Background(), level, msg, args...)
}
