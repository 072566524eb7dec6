package ap

import (
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/openmifi/openmifi/internal/clock"
)

// logEvery is the most often one kind of event is logged: a flood of
// hostile frames costs one line per kind per interval.
const logEvery = 10 * time.Second

// macValue logs a hardware address, formatted only when the line is written.
type macValue []byte

func (m macValue) LogValue() slog.Value { return slog.StringValue(net.HardwareAddr(m).String()) }

// rateLog logs at most one line per kind of event per logEvery and counts
// the rest.
type rateLog struct {
	log   *slog.Logger
	clock clock.Clock

	mu    sync.Mutex
	kinds map[string]*rateEntry
}

type rateEntry struct {
	last       time.Time
	suppressed int
}

func newRateLog(log *slog.Logger, c clock.Clock) *rateLog {
	return &rateLog{log: log, clock: c, kinds: map[string]*rateEntry{}}
}

func (r *rateLog) debug(kind, msg string, args ...any) {
	if n, ok := r.allow(kind); ok {
		if n > 0 {
			args = append(args, "suppressed", n)
		}
		r.log.Debug(msg, args...)
	}
}

// allow reports whether a line of this kind may be written now, and how
// many were left out since the last one.
func (r *rateLog) allow(kind string) (suppressed int, ok bool) {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.kinds[kind]
	if e == nil {
		if len(r.kinds) > 64 {
			clear(r.kinds) // kinds are a fixed set of strings; bound anyway
		}
		e = &rateEntry{}
		r.kinds[kind] = e
	} else if now.Sub(e.last) < logEvery {
		e.suppressed++
		return 0, false
	}
	suppressed = e.suppressed
	e.last, e.suppressed = now, 0
	return suppressed, true
}

// limiter allows at most n events per interval: it bounds how many frames
// we send in answer to frames anyone can send.
type limiter struct {
	n        int
	interval time.Duration
	start    time.Time
	count    int
}

func (l *limiter) allow(now time.Time) bool {
	if now.Sub(l.start) >= l.interval || now.Before(l.start) {
		l.start, l.count = now, 0
	}
	if l.count >= l.n {
		return false
	}
	l.count++
	return true
}
