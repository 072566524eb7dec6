package dhcp

import (
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/openmifi/openmifi/internal/clock"
)

// logEvery is the most often one kind of event is logged. A flood of bad
// or surplus packets costs one line per kind per interval, which says how
// many were left out.
const logEvery = 10 * time.Second

// macValue logs a hardware address in its usual form, formatted only when
// the line is written.
type macValue []byte

func (m macValue) LogValue() slog.Value { return slog.StringValue(net.HardwareAddr(m).String()) }

// rateLog logs at most one line per kind of event per logEvery.
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

// warn logs msg unless a line of the same kind was logged less than
// logEvery ago, in which case it only counts it.
func (r *rateLog) warn(kind, msg string, args ...any) {
	if n, ok := r.allow(kind); ok {
		r.emit(n, msg, args...)
	}
}

// allow reports whether a line of this kind may be logged now, and how
// many were left out since the last one; if not, it counts this one. Hot
// paths call it before building the line's arguments.
func (r *rateLog) allow(kind string) (suppressed int, ok bool) {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.kinds[kind]
	if e == nil {
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

func (r *rateLog) emit(suppressed int, msg string, args ...any) {
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	r.log.Warn(msg, args...)
}
