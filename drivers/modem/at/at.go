// Package at talks AT commands (ITU-T V.250, 3GPP TS 27.007 and 27.005) to
// a cellular modem over a serial port.
//
// An Engine owns the port. Run opens it, synchronises with the modem ("AT"
// until it answers), runs the board's init sequence, reports Ready, and
// then serves commands one at a time: Do queues a command behind the one
// in flight and waits for its final result code. Lines the modem sends on
// its own, unsolicited result codes (URCs), go to subscribers whenever they
// arrive, including between a command and its answer.
//
// # Responses and URCs
//
// A command's answer is its information text (the echo of the command
// line, if the modem echoes, is dropped) and a final result code: OK,
// CONNECT [text], ERROR, +CME ERROR, +CMS ERROR, NO CARRIER, BUSY, NO
// ANSWER, NO DIALTONE. Lines end with CR, LF or both; blank lines, NULs,
// control bytes and invalid UTF-8 are dropped; a line longer than MaxLine
// is dropped with a log line and fails the command in flight with
// ErrOverlong.
//
// Whether a line received during a command is part of its answer or a URC
// is decided by name: a line named like a known URC ("+CREG: 1", "RING",
// "+QIND: ...") is a URC unless it is named after the command in flight.
// +CREG is both the URC and the answer to AT+CREG?; the two differ in shape
// ("+CREG: <n>,<stat>,..." answers, "+CREG: <stat>[,<lac>,...]" is the URC)
// and the shape decides, so that a registration change reported in the
// middle of AT+CREG? still reaches the subscribers. After a set command
// (AT+CREG=2, AT+CPIN=...) a line with the command's own name is a URC: set
// commands answer with a final result code only. Where answer and URC look
// alike (+CPIN: READY during AT+CPIN?), the line is taken as the answer, so
// the answer may hold one line more than asked for; the last one is the
// newest. The details are at exchange.take. Vendor URCs that the built-in
// list lacks are added with Config.URCPrefixes; when no command is in
// flight, every line that is not a final result code is a URC, listed or
// not, except for lines shaped like the answer to a read command, which
// can only be late answers.
//
// CONNECT ends a command like OK does. The engine has no data mode: the
// boards carry data over a network interface of the modem (ECM, raw IP),
// not over the AT port.
//
// # Timeouts, cancellation and a modem that stops answering
//
// Every command has a timeout: Command.Timeout, else the long defaults of
// the commands that wait for the network (+COPS=? 180 s, +CGACT 150 s,
// +CGATT 140 s, +CFUN 60 s, ATD 90 s...), else Config.Timeout. A command
// whose caller gives up (context cancelled) or whose timeout passes returns
// at once, but the engine sends nothing else until the modem has finished
// with it: a cancelled command keeps the port until its final result code
// or its timeout, so that a late answer is never taken for the next
// command's. After a timeout the engine probes with "AT" at once, and once
// the modem answers it waits for a moment of quiet in which a late answer
// to the timed-out command is dropped; it also probes every
// Config.ProbeEvery when idle. When three commands in a row
// go unanswered (probes included), or the modem does not answer "AT" for a
// minute after the port opened, the modem is hung: the engine sends
// AT+CFUN=1,1 if Config.ResetOnHang allows it (and reports Reset), closes
// the port, and reopens it.
//
// # The port
//
// When the port fails (a USB modem resets and its tty vanishes), the
// command in flight fails with ErrPortLost, Lost is reported (if Ready
// was), and Run reopens the port after a back-off of 1 s doubling to 30 s,
// then syncs and runs the init sequence again. Commands queued meanwhile
// wait for Ready.
//
// # Secrets
//
// A command with Secret set (a PIN, a PDP password) is logged and named in
// errors as "AT+CPIN=<hidden>", and no line received while it is in flight
// is logged, because the modem may echo it.
package at

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openmifi/openmifi/internal/clock"
)

// Port is what the engine reads and writes: a serial port, a pty, a
// net.Conn in tests. Close must make a pending Read return, or Read must
// return by itself from time to time, so that the engine can stop.
type Port interface {
	io.ReadWriteCloser
}

// OpenFunc opens the port. The engine calls it again after a loss (a USB
// modem that reset comes back under the same name).
type OpenFunc func() (Port, error)

// Config says how to drive the modem.
type Config struct {
	Open OpenFunc
	// Init runs after every (re)open, in order, e.g. "ATE0", "AT+CMEE=2",
	// "AT+CREG=2", "AT+CGREG=2", "AT+CEREG=2", "AT+CGEREP=2,1". A command
	// the modem refuses is logged and skipped, since not every modem
	// knows every command.
	Init []string
	// Timeout is the default time a command may take; 0 means 5 s.
	Timeout time.Duration
	// ProbeEvery is the idle time after which the engine sends "AT" to
	// check that the modem still answers; 0 means 30 s.
	ProbeEvery time.Duration
	// ResetOnHang lets the engine restart a hung modem with AT+CFUN=1,1
	// before reopening the port. Boards whose modem must not be reset
	// behind the daemon's back leave it off.
	ResetOnHang bool
	// URCPrefixes adds vendor URC names ("+QIND", "^SYSSTART", "+XYZ:")
	// to the built-in list.
	URCPrefixes []string
	Clock       clock.Clock  // nil: the wall clock
	Log         *slog.Logger // nil: slog.Default()
}

// Command is one command line.
type Command struct {
	Text    string        // "AT+COPS?"; the engine adds the <CR>
	Timeout time.Duration // 0: the command's default (see the package doc)
	// Secret hides the arguments of the command, and every line received
	// while it is in flight, from logs and errors.
	Secret bool
	// Prompt is data to send at the "> " prompt (AT+CMGS); the engine
	// ends it with Ctrl-Z.
	Prompt string
}

// Response is a command's answer.
type Response struct {
	Lines []string // information text, echo and URCs removed
	Final string   // the final result code: "OK", "CONNECT 150000000", "+CME ERROR: 10"...
}

// URC is an unsolicited result code.
type URC struct {
	Name string    // "+CREG", "RING", "SMS DONE"
	Args string    // the text after the name and ": ", e.g. "1,\"D509\",\"80D413D\",7"
	Line string    // the whole line
	At   time.Time // when it arrived
}

// EventKind is what happened to the port.
type EventKind int

const (
	// Ready: the port is open, the modem answers and the init sequence
	// has run (again, after a loss: whatever the modem was told before is
	// forgotten when it resets).
	Ready EventKind = iota + 1
	// Lost: the port failed or the modem stopped answering after Ready;
	// Event.Err says why. Ready follows when the port is back.
	Lost
	// Reset: the engine sent AT+CFUN=1,1 to a hung modem.
	Reset
)

func (k EventKind) String() string {
	switch k {
	case Ready:
		return "ready"
	case Lost:
		return "lost"
	case Reset:
		return "reset"
	}
	return "unknown"
}

// Event is a change of the port's state.
type Event struct {
	Kind EventKind
	Err  error
	At   time.Time
}

const (
	defaultTimeout    = 5 * time.Second
	defaultProbeEvery = 30 * time.Second
	// hangAfter is how many commands in a row may go unanswered before
	// the modem counts as hung: one lost answer is line noise, three are
	// a modem that stopped.
	hangAfter = 3
	// syncTimeout is how long each "AT" of the sync after opening may
	// take, and bootGrace how long the sync tries: a modem answers "AT"
	// within milliseconds once its AT task runs, but that can be some
	// seconds after its USB port appears.
	syncTimeout = time.Second
	bootGrace   = 60 * time.Second
	// settleTime is the quiet the engine waits for after a command timed
	// out and the modem answered again, to let a late answer to the
	// timed-out command arrive and be dropped.
	settleTime = 250 * time.Millisecond
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
	// subBuffer is each subscriber's backlog. The engine never waits for
	// a subscriber; when the backlog is full the oldest URC is dropped.
	subBuffer = 64
	// eventBuffer is the Events backlog, kept the same way.
	eventBuffer = 16
	// dropLogEvery limits the log lines about a slow subscriber.
	dropLogEvery = 10 * time.Second
)

// Engine runs the AT conversation with one modem. Create it with New and
// start it with Run.
type Engine struct {
	cfg  Config
	log  *slog.Logger
	clk  clock.Clock
	urcs map[string]bool
	reqs chan *request
	done chan struct{} // closed when Run returns
	ran  atomic.Bool

	// silent counts the commands in a row that went unanswered; it
	// survives a reopen, so a modem that is hung from the start is still
	// recognised. Only Run's goroutine uses it.
	silent int

	mu     sync.Mutex
	subs   []*subscriber
	events chan Event
	closed bool
}

type request struct {
	ctx     context.Context
	cmd     Command
	done    chan result // buffered: the engine never waits for the caller
	replied bool
}

type result struct {
	resp Response
	err  error
}

// reply answers the caller, once: a cancelled command is answered when the
// caller gives up and runs on unattended.
func (r *request) reply(resp Response, err error) {
	if r.replied {
		return
	}
	r.replied = true
	r.done <- result{resp: resp, err: err}
}

type subscriber struct {
	names   map[string]bool // nil: every URC
	ch      chan URC
	dropped int       // since the last log line
	lastLog time.Time // of the last log line about drops
}

// New returns an engine for cfg. Nothing happens until Run.
func New(cfg Config) *Engine {
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.ProbeEvery <= 0 {
		cfg.ProbeEvery = defaultProbeEvery
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	e := &Engine{
		cfg:    cfg,
		log:    cfg.Log,
		clk:    cfg.Clock,
		urcs:   make(map[string]bool),
		reqs:   make(chan *request),
		done:   make(chan struct{}),
		events: make(chan Event, eventBuffer),
	}
	for _, n := range defaultURCs {
		e.urcs[n] = true
	}
	for _, p := range cfg.URCPrefixes {
		e.urcs[normName(p)] = true
	}
	return e
}

// normName turns a prefix as people write it ("+CREG: ", "+CREG:") into a
// URC name ("+CREG").
func normName(p string) string {
	return strings.TrimRight(strings.TrimSpace(p), ": ")
}

func (e *Engine) isURC(name string) bool { return e.urcs[name] }

// Do sends cmd once the engine is ready and no other command is in flight,
// and returns the modem's answer. The error is nil for OK and CONNECT;
// otherwise it wraps one of the Err values, a *CMEError or *CMSError, or
// ctx's error, and the Response holds what arrived before it. Commands are
// served in the order they were queued.
func (e *Engine) Do(ctx context.Context, cmd Command) (Response, error) {
	if err := validate(cmd); err != nil {
		return Response{}, err
	}
	r := &request{ctx: ctx, cmd: cmd, done: make(chan result, 1)}
	select {
	case e.reqs <- r:
	case <-ctx.Done():
		return Response{}, fmt.Errorf("%s: waiting for the modem: %w", redact(cmd), ctx.Err())
	case <-e.done:
		return Response{}, fmt.Errorf("%s: %w", redact(cmd), ErrClosed)
	}
	// The engine owns the request now and answers it promptly, on
	// cancellation too.
	res := <-r.done
	return res.resp, res.err
}

// Subscribe returns a channel of the URCs with the given names ("+CREG",
// "+CREG:", "RING"; none: all URCs) and a function that ends the
// subscription and closes the channel. The channel is also closed when Run
// returns. A subscriber that does not keep up loses its oldest URCs; the
// losses are counted and logged.
func (e *Engine) Subscribe(prefixes ...string) (<-chan URC, func()) {
	s := &subscriber{ch: make(chan URC, subBuffer)}
	if len(prefixes) > 0 {
		s.names = make(map[string]bool, len(prefixes))
		for _, p := range prefixes {
			s.names[normName(p)] = true
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		close(s.ch)
		return s.ch, func() {}
	}
	e.subs = append(e.subs, s)
	var once sync.Once
	return s.ch, func() {
		once.Do(func() { e.unsubscribe(s) })
	}
}

func (e *Engine) unsubscribe(s *subscriber) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, o := range e.subs {
		if o == s {
			e.subs = append(e.subs[:i], e.subs[i+1:]...)
			close(s.ch)
			if s.dropped > 0 {
				e.log.Warn("URC subscriber was too slow", "dropped", s.dropped)
			}
			return
		}
	}
}

// dispatch hands u to the subscribers without ever waiting: the engine
// must keep reading the port whatever the subscribers do.
func (e *Engine) dispatch(u URC) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.subs {
		if s.names != nil && !s.names[u.Name] {
			continue
		}
		select {
		case s.ch <- u:
			continue
		default:
		}
		// Full: drop the oldest. The subscriber may take one meanwhile,
		// so neither step may block.
		select {
		case <-s.ch:
		default:
		}
		select {
		case s.ch <- u:
		default:
		}
		s.dropped++
		if now := e.clk.Now(); s.lastLog.IsZero() || now.Sub(s.lastLog) >= dropLogEvery {
			e.log.Warn("URC subscriber too slow, dropping its oldest URCs",
				"dropped", s.dropped, "urc", u.Name)
			s.lastLog = now
			s.dropped = 0
		}
	}
}

// Events returns the port's state changes. The channel is closed when Run
// returns; if nobody reads it, the oldest events are dropped.
func (e *Engine) Events() <-chan Event { return e.events }

func (e *Engine) emit(kind EventKind, err error) {
	ev := Event{Kind: kind, Err: err, At: e.clk.Now()}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	select {
	case e.events <- ev:
		return
	default:
	}
	select {
	case <-e.events:
	default:
	}
	select {
	case e.events <- ev:
	default:
	}
}

// shutdown ends what Run started: waiting callers get ErrClosed, and the
// channels handed out are closed so that their readers end too.
func (e *Engine) shutdown() {
	close(e.done)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	close(e.events)
	for _, s := range e.subs {
		close(s.ch)
	}
	e.subs = nil
}
