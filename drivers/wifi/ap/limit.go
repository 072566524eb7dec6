package ap

import (
	"log/slog"
	"net"
	"time"
)

// macValue logs a hardware address, formatted only when the line is written.
type macValue []byte

func (m macValue) LogValue() slog.Value { return slog.StringValue(net.HardwareAddr(m).String()) }

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
