package modemsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// errHungUp ends a session's writer once the modem dropped the port and
// everything queued before has been written.
var errHungUp = errors.New("hung up")

// hangupGrace bounds how long a dropped session waits for its peer to
// read what was queued before the drop (the OK of AT+CFUN=1,1). It is
// real time: it is about I/O, not about the scenario.
const hangupGrace = time.Second

// session is one stream the modem serves. Output goes through a queue
// drained by the session's writer, so that nothing that produces output
// (a scenario step inside clock.Fake.Advance, a command) ever blocks on
// a peer that does not read.
type session struct {
	m *Modem

	mu     sync.Mutex
	out    [][]byte
	hungUp bool
	wake   chan struct{}
	dead   chan struct{} // closed at hang-up, to stop a slow command
	once   sync.Once

	// Guarded by m.mu: what the running command line causes after its
	// final result code.
	after      []string
	resetAfter time.Duration

	// Used by the serving goroutine only.
	wait     func(ctx context.Context, d time.Duration) bool // a slow command's delay
	line     []byte
	overflow bool
	last     string // the previous command line, for A/
}

func newSession(m *Modem) *session {
	s := &session{m: m, wake: make(chan struct{}, 1), dead: make(chan struct{})}
	s.wait = s.sleep
	return s
}

// send queues b for the peer, unless the session is hung up.
func (s *session) send(b []byte) {
	s.mu.Lock()
	if !s.hungUp {
		s.out = append(s.out, b)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// hangUp ends the session once what is queued, and last, have been
// written.
func (s *session) hangUp(last []byte) {
	s.mu.Lock()
	if last != nil && !s.hungUp {
		s.out = append(s.out, last)
	}
	s.hungUp = true
	s.mu.Unlock()
	s.once.Do(func() { close(s.dead) })
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *session) writeLoop(ctx context.Context, w io.Writer) error {
	for {
		s.mu.Lock()
		out, hungUp := s.out, s.hungUp
		s.out = nil
		s.mu.Unlock()
		for _, b := range out {
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		if hungUp {
			return errHungUp
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return nil
		}
	}
}

func (s *session) readLoop(ctx context.Context, r io.Reader, chunks chan<- []byte) error {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			select {
			case chunks <- append([]byte(nil), buf[:n]...):
			case <-ctx.Done():
				return nil
			}
		}
		if err != nil {
			return err
		}
	}
}

// Serve runs one AT session over rw (a pty master, a net.Conn, one end of
// a net.Pipe) until ctx ends (nil), the modem drops its port (ErrPortGone)
// or rw fails. If rw is an io.Closer, Serve closes it when it returns:
// that is how the peer learns the port is gone, and how Serve stops its
// reader and writer; with any other rw they end at their next Read and
// Write.
func (m *Modem) Serve(ctx context.Context, rw io.ReadWriter) error {
	closer, closable := rw.(io.Closer)
	closeRW := func() {
		if closable {
			closer.Close()
		}
	}
	s := newSession(m)
	if !m.attach(s) {
		closeRW()
		return ErrPortGone
	}
	defer m.detach(s)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	writeErr := make(chan error, 1)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		writeErr <- s.writeLoop(ctx, rw)
	}()
	chunks := make(chan []byte)
	readErr := make(chan error, 1)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		readErr <- s.readLoop(ctx, rw, chunks)
	}()

	var err error
	var grace <-chan time.Time
	dead := s.dead
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-dead:
			dead = nil
			grace = time.After(hangupGrace)
		case <-grace:
			err = ErrPortGone
			break loop
		case e := <-writeErr:
			switch {
			case errors.Is(e, errHungUp):
				err = ErrPortGone
				if d, ok := rw.(drainer); ok {
					waitDrained(d, grace)
				}
			case e != nil:
				err = fmt.Errorf("write: %w", e)
			}
			break loop
		case e := <-readErr:
			if ctx.Err() == nil {
				err = fmt.Errorf("read: %w", e)
			}
			break loop
		case b := <-chunks:
			s.input(ctx, b)
		}
	}
	cancel()
	closeRW()
	if closable {
		<-writerDone
		<-readerDone
	}
	return err
}

// drainer is a stream that can tell whether its peer has read all that
// was written (a pty). Closing a pty master throws away what the slave
// has not read yet, and the last words before a reset (the OK of
// AT+CFUN=1,1) are the ones a host needs.
type drainer interface {
	drained() bool
}

// waitDrained waits, in real time, until d is drained or grace fires.
func waitDrained(d drainer, grace <-chan time.Time) {
	if grace == nil {
		grace = time.After(hangupGrace)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-grace:
			return
		case <-tick.C:
			// Data written to the master reaches the slave's queue
			// asynchronously; look only after a tick.
			if d.drained() {
				return
			}
		}
	}
}

func (m *Modem) attach(s *session) bool {
	m.mu.Lock()
	defer m.unlock()
	if m.gone {
		return false
	}
	m.sessions[s] = true
	for _, u := range m.boot {
		s.send(m.urcBytes(u))
	}
	m.boot = nil
	return true
}

func (m *Modem) detach(s *session) {
	m.mu.Lock()
	defer m.unlock()
	delete(m.sessions, s)
}

// input takes bytes from the peer: echo, line editing, and the command
// lines they complete.
func (s *session) input(ctx context.Context, b []byte) {
	m := s.m
	m.mu.Lock()
	hung := m.clk.Now().Before(m.hungUntil)
	m.mu.Unlock()
	if hung {
		// A hung modem neither echoes nor answers.
		return
	}
	var echo []byte
	flush := func() {
		if len(echo) == 0 {
			return
		}
		m.mu.Lock()
		if m.echo {
			s.send(echo)
		}
		m.mu.Unlock()
		echo = nil
	}
	for _, c := range b {
		echo = append(echo, c)
		switch {
		case c == '\r' || c == '\n':
			if len(s.line) == 0 && !s.overflow {
				continue
			}
			line, overflow := string(s.line), s.overflow
			s.line, s.overflow = s.line[:0], false
			flush()
			if overflow {
				m.log.Debug("overlong command line")
				s.finish(nil, errPlain)
				continue
			}
			s.commandLine(ctx, line)
		case c == 8 || c == 127:
			// S5, backspace: V.250 lets the user edit the line.
			if len(s.line) > 0 {
				s.line = s.line[:len(s.line)-1]
			}
		case c == '/' && len(s.line) == 1 && upper(s.line[0]) == 'A':
			// A/ repeats the previous command line, without a terminator.
			s.line = s.line[:0]
			flush()
			s.run(ctx, s.last)
		default:
			if len(s.line) >= maxLine {
				s.overflow = true
			} else {
				s.line = append(s.line, c)
			}
		}
	}
	flush()
}

// commandLine runs a line from its "AT" prefix; V.250 has the modem
// ignore what comes before it, and a line without one.
func (s *session) commandLine(ctx context.Context, line string) {
	i := indexAT(line)
	if i < 0 {
		s.m.log.Debug("ignored line without AT", "line", line)
		return
	}
	s.last = line[i+2:]
	s.run(ctx, s.last)
}

// indexAT finds the "AT" prefix in any case, byte by byte (the line can
// hold anything, valid UTF-8 or not).
func indexAT(line string) int {
	for i := 0; i+1 < len(line); i++ {
		if upper(line[i]) == 'A' && upper(line[i+1]) == 'T' {
			return i
		}
	}
	return -1
}

func (s *session) run(ctx context.Context, body string) {
	s.m.execLine(s, body, func(d time.Duration) bool { return s.wait(ctx, d) })
}

// sleep waits d on the modem's clock; false if the session ended first.
func (s *session) sleep(ctx context.Context, d time.Duration) bool {
	done := make(chan struct{})
	t := s.m.clk.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return true
	case <-ctx.Done():
	case <-s.dead:
	}
	t.Stop()
	return false
}

// finish sends the response of a command line and what it caused.
func (s *session) finish(info []string, err error) {
	m := s.m
	m.mu.Lock()
	defer m.unlock()
	if m.gone {
		return
	}
	resp := m.response(info, err)
	if d := s.resetAfter; d > 0 {
		// The modem resets after its OK; what the command caused besides
		// is lost with it.
		s.resetAfter = 0
		s.after = nil
		m.portGone(d, s, resp)
		return
	}
	s.send(resp)
	after := s.after
	s.after = nil
	for _, u := range after {
		m.broadcast(u)
	}
}

// execLine runs one command line (the text after AT) in session s. wait
// sleeps for slow commands; when it returns false the session is ending
// and the line is dropped.
func (m *Modem) execLine(s *session, body string, wait func(time.Duration) bool) {
	m.log.Debug("command line", "line", redact(body))
	cmds, err := parseLine(body)
	if err != nil {
		s.finish(nil, errPlain)
		return
	}
	var info []string
	for _, c := range cmds {
		if d := m.delay(c); d > 0 && !wait(d) {
			return
		}
		m.mu.Lock()
		if m.gone {
			m.unlock()
			return
		}
		m.cur = s
		lines, cerr := m.exec(c)
		m.cur = nil
		m.unlock()
		info = append(info, lines...)
		if cerr != nil {
			err = cerr
			break
		}
	}
	s.finish(info, err)
}

// delay is how long command c takes: the slowest matching scenario rule,
// and the network scan for AT+COPS=?.
func (m *Modem) delay(c command) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := c.key()
	var d time.Duration
	best := -1
	for _, r := range m.slow {
		if strings.HasPrefix(key, r.prefix) && len(r.prefix) > best {
			best, d = len(r.prefix), r.d
		}
	}
	if key == "+COPS=?" {
		d = max(d, m.cfg.ScanTime)
	}
	return d
}

// redact hides what follows the commands that carry secrets, so that a
// PIN or a password never reaches a log.
func redact(line string) string {
	// Byte by byte: the offsets must stay those of line.
	b := []byte(line)
	for i, c := range b {
		b[i] = upper(c)
	}
	u := string(b)
	for _, secret := range []string{"+CPIN=", "+CGAUTH=", "+QICSGP=", "+CPWD=", "+CLCK="} {
		if i := strings.Index(u, secret); i >= 0 {
			return line[:i+len(secret)] + "…"
		}
	}
	return line
}
