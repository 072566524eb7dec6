package modemsim

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openmifi/openmifi/internal/clock"
)

// The tests talk to the simulator the way a host does, with nothing but
// bytes: a line reader, not the AT engine (which is another package and
// is not to be trusted by its own test bench).

// ioTimeout bounds every read, in real time, so that a broken simulator
// fails a test instead of hanging it.
const ioTimeout = 5 * time.Second

type stream interface {
	io.ReadWriter
	SetReadDeadline(time.Time) error
}

type client struct {
	t  *testing.T
	rw stream
	r  *bufio.Reader
}

func newClient(t *testing.T, rw stream) *client {
	return &client{t: t, rw: rw, r: bufio.NewReader(rw)}
}

// line reads the next non-empty line, ended by CR or LF.
func (c *client) line() (string, error) {
	c.rw.SetReadDeadline(time.Now().Add(ioTimeout))
	return c.readLine()
}

func (c *client) readLine() (string, error) {
	var b []byte
	for {
		ch, err := c.r.ReadByte()
		if err != nil {
			return string(b), err
		}
		if ch == '\r' || ch == '\n' {
			if len(b) > 0 {
				return string(b), nil
			}
			continue
		}
		b = append(b, ch)
	}
}

func (c *client) mustLine() string {
	c.t.Helper()
	l, err := c.line()
	if err != nil {
		c.t.Fatalf("read: %v (after %q)", err, l)
	}
	return l
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.rw.Write([]byte(s)); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

func isFinal(l string) bool {
	return l == "OK" || l == "ERROR" || l == "NO CARRIER" || strings.HasPrefix(l, "+CME ERROR:")
}

// cmd sends a command line and returns the lines up to its final result
// code, and that code. An echo of the command is left out.
func (c *client) cmd(line string) ([]string, string) {
	c.t.Helper()
	c.send(line + "\r")
	var lines []string
	for {
		l := c.mustLine()
		if isFinal(l) {
			return lines, l
		}
		if l == line && len(lines) == 0 {
			continue
		}
		lines = append(lines, l)
	}
}

// ok runs a command that must end in OK and returns its lines.
func (c *client) ok(line string) []string {
	c.t.Helper()
	lines, final := c.cmd(line)
	if final != "OK" {
		c.t.Fatalf("%s: %q %s, want OK", line, lines, final)
	}
	return lines
}

// want runs a command and checks its lines and final result code.
func (c *client) want(line string, final string, lines ...string) {
	c.t.Helper()
	got, gotFinal := c.cmd(line)
	if gotFinal != final || !slices.Equal(got, lines) {
		c.t.Errorf("%s:\n got %q %s\nwant %q %s", line, got, gotFinal, lines, final)
	}
}

// expect reads lines until one equals want, failing on a timeout.
func (c *client) expect(want string) {
	c.t.Helper()
	var seen []string
	for {
		l, err := c.line()
		if err != nil {
			c.t.Fatalf("waiting for %q: %v; seen %q", want, err, seen)
		}
		if l == want {
			return
		}
		seen = append(seen, l)
	}
}

// urcs reads what the modem says unsolicited until it has been quiet for
// a moment.
func (c *client) urcs() []string {
	c.t.Helper()
	var lines []string
	for {
		c.rw.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		l, err := c.readLine()
		if errors.Is(err, os.ErrDeadlineExceeded) && l == "" {
			return lines
		}
		if err != nil {
			c.t.Fatalf("read: %v (after %q)", err, l)
		}
		lines = append(lines, l)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// dataLog records DataUp calls.
type dataLog struct {
	mu    sync.Mutex
	calls []string
}

func (d *dataLog) record(cid int, up bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := "down"
	if up {
		s = "up"
	}
	d.calls = append(d.calls, s+" "+string(rune('0'+cid)))
}

func (d *dataLog) take() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls
	d.calls = nil
	return c
}

type rig struct {
	m    *Modem
	c    *client
	clk  *clock.Fake
	data *dataLog
	// served is what Serve returned on the current stream.
	served func() error
}

// start serves a new modem over a net.Pipe on a fake clock, with echo
// turned off (unless echo is kept), and returns the rig.
func start(t *testing.T, cfg Config, opts ...string) *rig {
	t.Helper()
	r := &rig{clk: clock.NewFake(epoch), data: &dataLog{}}
	if cfg.Clock == nil {
		cfg.Clock = r.clk
	}
	if cfg.DataUp == nil {
		cfg.DataUp = r.data.record
	}
	cfg.Logger = testLogger(t)
	r.m = New(cfg)
	t.Cleanup(r.m.Close)
	r.connect(t)
	if !slices.Contains(opts, "echo") {
		r.c.ok("ATE0")
	}
	return r
}

// connect serves the modem on a new pipe, as a host that opens the port
// (again, after it came back).
func (r *rig) connect(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- r.m.Serve(ctx, a) }()
	r.served = sync.OnceValue(func() error { return <-done })
	served := r.served
	t.Cleanup(func() {
		cancel()
		served()
		b.Close()
	})
	r.c = newClient(t, b)
}

// waitTimer waits, in real time, until the fake clock has more than n
// timers armed: a command that sleeps has reached its sleep.
func waitTimer(t *testing.T, clk *clock.Fake, n int) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for clk.Pending() <= n {
		if time.Now().After(deadline) {
			t.Fatalf("no timer armed (pending %d)", clk.Pending())
		}
		time.Sleep(time.Millisecond)
	}
}
