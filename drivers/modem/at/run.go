package at

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openmifi/openmifi/internal/clock"
)

// Run owns the port until ctx ends: it opens it, syncs with the modem,
// runs the init sequence, serves commands and URCs, and reopens the port
// with back-off (1 s doubling to 30 s) whenever it fails. It returns ctx's
// error, after every goroutine it started has ended; the engine cannot be
// run again.
func (e *Engine) Run(ctx context.Context) error {
	if !e.ran.CompareAndSwap(false, true) {
		return errors.New("at: Run called twice")
	}
	defer e.shutdown()
	backoff := minBackoff
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		port, err := e.cfg.Open()
		if err != nil {
			e.log.Warn("cannot open the modem port", "err", err, "retry_in", backoff)
		} else {
			s := e.newSession(port)
			ready, err := s.run(ctx)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if ready {
				e.emit(Lost, err)
				backoff = minBackoff
			}
			e.log.Warn("modem port lost", "err", err, "reopen_in", backoff)
		}
		if err := e.sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (e *Engine) sleep(ctx context.Context, d time.Duration) error {
	fired := make(chan struct{})
	t := e.clk.AfterFunc(d, func() { close(fired) })
	select {
	case <-fired:
		return nil
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
}

// session is the life of one opened port. Its methods run on Run's
// goroutine, apart from read and write, which it starts and waits for.
type session struct {
	e    *Engine
	port Port

	lines      chan token    // from read
	writes     chan []byte   // to write
	writeErr   chan error    // from write, once
	stop       chan struct{} // closed when the session ends
	wg         sync.WaitGroup
	wantPrompt atomic.Bool // read reports a bare "> "

	wake    chan struct{} // nudged by the timer
	timer   clock.Timer
	timerAt time.Time

	secret     bool      // a secret command is in flight: log no line
	suspect    bool      // a command timed out: probe before the next one
	stale      bool      // a command timed out: its answer may still come
	lastAnswer time.Time // of the last final result code, for the idle probe
}

func (e *Engine) newSession(port Port) *session {
	return &session{
		e:        e,
		port:     port,
		lines:    make(chan token, 64),
		writes:   make(chan []byte, 4),
		writeErr: make(chan error, 1),
		stop:     make(chan struct{}),
		wake:     make(chan struct{}, 1),
	}
}

// run serves the port until it fails or ctx ends. ready reports whether
// the session got as far as Ready.
func (s *session) run(ctx context.Context) (ready bool, err error) {
	s.wg.Add(2)
	go s.read()
	go s.write()
	defer s.close()
	err = s.serve(ctx, &ready)
	if errors.Is(err, ErrHung) && ctx.Err() == nil && s.e.cfg.ResetOnHang {
		s.reset(ctx)
	}
	return ready, err
}

func (s *session) close() {
	if s.timer != nil {
		s.timer.Stop()
	}
	close(s.stop)
	// The port is going away whatever Close says; its error tells nothing
	// more than the one that ended the session.
	_ = s.port.Close()
	s.wg.Wait()
}

// read turns the port's bytes into tokens until the port fails or the
// session ends.
func (s *session) read() {
	defer s.wg.Done()
	var sp splitter
	buf := make([]byte, 1024)
	for {
		n, err := s.port.Read(buf)
		if n > 0 {
			for _, t := range sp.feed(buf[:n], s.wantPrompt.Load()) {
				select {
				case s.lines <- t:
				case <-s.stop:
					return
				}
			}
		}
		if err != nil {
			select {
			case s.lines <- token{err: err}:
			case <-s.stop:
			}
			return
		}
	}
}

// write does the port writes, so that a port that stops taking data (a
// wedged USB endpoint) blocks this goroutine and not the engine, which
// then notices the command timing out.
func (s *session) write() {
	defer s.wg.Done()
	for {
		select {
		case b := <-s.writes:
			if _, err := s.port.Write(b); err != nil {
				s.writeErr <- err
				return
			}
		case <-s.stop:
			return
		}
	}
}

func (s *session) send(b string) error {
	select {
	case s.writes <- []byte(b):
		return nil
	default:
		return errors.New("port does not take writes")
	}
}

// wakeAt arranges for a nudge on s.wake at t. The session waits for one
// thing at a time, so one timer does.
func (s *session) wakeAt(t time.Time) {
	if s.timer != nil {
		if s.timerAt.Equal(t) {
			return
		}
		s.timer.Stop()
	}
	s.timerAt = t
	s.timer = s.e.clk.AfterFunc(t.Sub(s.e.clk.Now()), func() {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	})
}

func (s *session) serve(ctx context.Context, ready *bool) error {
	if err := s.sync(ctx); err != nil {
		return err
	}
	for _, text := range s.e.cfg.Init {
		r := internal(text)
		if err := s.command(ctx, r, 0); err != nil {
			return err
		}
		if res := <-r.done; res.err != nil {
			s.e.log.Warn("modem init command failed", "cmd", text, "err", res.err)
		}
	}
	*ready = true
	s.lastAnswer = s.e.clk.Now()
	s.e.log.Info("modem ready")
	s.e.emit(Ready, nil)
	for {
		if err := s.recover(ctx); err != nil {
			return err
		}
		probeAt := s.lastAnswer.Add(s.e.cfg.ProbeEvery)
		if !s.e.clk.Now().Before(probeAt) {
			r := internal("AT")
			if err := s.command(ctx, r, s.e.cfg.Timeout); err != nil {
				return err
			}
			<-r.done
			continue
		}
		// Lines that have arrived go first: a URC sent just after the
		// last final result code must not be taken for the answer to
		// the next command. Only those already there, so that a modem
		// that never stops talking cannot starve the callers.
		for n := len(s.lines); n > 0; n-- {
			if err := s.idle(<-s.lines); err != nil {
				return err
			}
		}
		s.wakeAt(probeAt)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case r := <-s.e.reqs:
			if err := r.ctx.Err(); err != nil {
				r.reply(Response{}, fmt.Errorf("%s: waiting for the modem: %w", redact(r.cmd), err))
				continue
			}
			if err := s.command(ctx, r, r.cmd.Timeout); err != nil {
				return err
			}
		case t := <-s.lines:
			if err := s.idle(t); err != nil {
				return err
			}
		case err := <-s.writeErr:
			return fmt.Errorf("write: %w", err)
		case <-s.wake:
		}
	}
}

// internal is a request of the engine's own: nobody waits for its answer
// but the engine, which finds it in done.
func internal(text string) *request {
	return &request{ctx: context.Background(), cmd: Command{Text: text}, done: make(chan result, 1)}
}

// sync sends "AT" until the modem answers, for bootGrace at most: right
// after the port opens, the modem may still be booting, and the first
// bytes it gets may be lost.
func (s *session) sync(ctx context.Context) error {
	start := s.e.clk.Now()
	for {
		r := internal("AT")
		timedOut, err := s.exec(ctx, r, syncTimeout)
		if err != nil {
			return err
		}
		<-r.done
		if !timedOut {
			break
		}
		s.stale = true
		if s.e.clk.Now().Sub(start) >= bootGrace {
			s.e.silent = hangAfter
			return fmt.Errorf("%w: no answer to AT for %v after opening the port", ErrHung, bootGrace)
		}
	}
	return s.settle(ctx)
}

// command runs r after the probes that an earlier timeout calls for, and
// counts the commands that go unanswered. It returns an error only when
// the session must end: the port failed, ctx ended, or the modem is hung.
func (s *session) command(ctx context.Context, r *request, timeout time.Duration) error {
	if err := s.recover(ctx); err != nil {
		r.reply(Response{}, fmt.Errorf("%s: %w", redact(r.cmd), err))
		return err
	}
	timedOut, err := s.exec(ctx, r, timeout)
	if err != nil || !timedOut {
		return err
	}
	s.e.silent++
	s.suspect, s.stale = true, true
	if s.e.silent >= hangAfter {
		return fmt.Errorf("%w: %d commands in a row unanswered", ErrHung, s.e.silent)
	}
	return nil
}

// recover probes a modem that let a command time out until it answers
// again (or counts as hung), then lets its late answers drain.
func (s *session) recover(ctx context.Context) error {
	for s.suspect {
		s.suspect = false
		r := internal("AT")
		timedOut, err := s.exec(ctx, r, s.e.cfg.Timeout)
		if err != nil {
			return err
		}
		<-r.done
		if timedOut {
			s.e.silent++
			s.suspect = true
			if s.e.silent >= hangAfter {
				return fmt.Errorf("%w: %d commands in a row unanswered", ErrHung, s.e.silent)
			}
		}
	}
	return s.settle(ctx)
}

// settle waits for settleTime of quiet after a timed-out command, so that
// its late answer arrives now and is dropped instead of being taken for
// the next command's.
func (s *session) settle(ctx context.Context) error {
	if !s.stale {
		return nil
	}
	until := s.e.clk.Now().Add(settleTime)
	for s.e.clk.Now().Before(until) {
		s.wakeAt(until)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case t := <-s.lines:
			if err := s.idle(t); err != nil {
				return err
			}
		case err := <-s.writeErr:
			return fmt.Errorf("write: %w", err)
		case <-s.wake:
		}
	}
	s.stale = false
	return nil
}

// reset restarts a hung modem. It may well not answer; the port is closed
// and reopened afterwards either way.
func (s *session) reset(ctx context.Context) {
	s.e.log.Warn("modem hung, restarting it with AT+CFUN=1,1")
	r := internal("AT+CFUN=1,1")
	if _, err := s.exec(ctx, r, s.e.cfg.Timeout); err != nil {
		return
	}
	if res := <-r.done; res.err != nil {
		s.e.log.Warn("modem reset", "err", res.err)
	}
	s.e.silent = 0
	s.e.emit(Reset, nil)
}

// exec sends r's command and waits for its final result code or its
// timeout (0: the command's default), and answers r in every case. When r's
// caller gives up, r is answered at once and the command runs on
// unattended: nothing else is sent to the modem before it has finished.
// timedOut reports the timeout; err is for the session: the port failed or
// ctx ended.
func (s *session) exec(ctx context.Context, r *request, timeout time.Duration) (timedOut bool, err error) {
	x := newExchange(r.cmd, s.e.isURC)
	if timeout <= 0 {
		timeout = x.timeout(s.e.cfg.Timeout)
	}
	name := redact(r.cmd)
	deadline := s.e.clk.Now().Add(timeout)
	s.secret = r.cmd.Secret
	defer func() { s.secret = false }()
	if r.cmd.Prompt != "" {
		s.wantPrompt.Store(true)
		defer s.wantPrompt.Store(false)
	}
	// The timer runs before the command leaves, so that the deadline
	// holds even if the answer is quicker than this goroutine.
	s.wakeAt(deadline)
	s.e.log.Debug("AT send", "cmd", name)
	if err := s.send(r.cmd.Text + "\r"); err != nil {
		r.reply(Response{}, fmt.Errorf("%s: %w: %w", name, ErrPortLost, err))
		return false, err
	}
	caller := r.ctx.Done()
	prompted, gaveUp := false, false
	for {
		s.wakeAt(deadline)
		select {
		case <-ctx.Done():
			r.reply(x.response(), fmt.Errorf("%s: %w", name, ErrClosed))
			return false, ctx.Err()

		case <-caller:
			caller, gaveUp = nil, true
			r.reply(x.response(), fmt.Errorf("%s: %w", name, r.ctx.Err()))
			s.e.log.Debug("AT caller gave up, waiting for the modem to finish", "cmd", name)
			if x.abortable() {
				// V.250 §5.6.1: any character aborts a dial or a
				// network scan, and the modem then sends its final
				// result code.
				if err := s.send("\r"); err != nil {
					return false, err
				}
			}

		case t := <-s.lines:
			switch {
			case t.err != nil:
				r.reply(x.response(), fmt.Errorf("%s: %w: %w", name, ErrPortLost, t.err))
				return false, fmt.Errorf("read: %w", t.err)
			case t.overlong:
				x.overlong = true
				s.e.log.Warn("modem sent an overlong line, dropped", "max", MaxLine, "cmd", name)
			case t.prompt:
				if x.prompt != "" && !prompted {
					prompted = true
					// Ctrl-Z sends the data; ESC cancels the command
					// (27.005 §3.5.1) when the caller has gone.
					data := x.prompt + "\x1a"
					if gaveUp {
						data = "\x1b"
					}
					if err := s.send(data); err != nil {
						r.reply(x.response(), fmt.Errorf("%s: %w: %w", name, ErrPortLost, err))
						return false, err
					}
				}
			default:
				s.take(x, t.text)
				if !x.done {
					continue
				}
				s.e.silent = 0
				s.lastAnswer = s.e.clk.Now()
				if x.err != nil {
					r.reply(x.response(), fmt.Errorf("%s: %w", name, x.err))
				} else {
					r.reply(x.response(), nil)
				}
				return false, nil
			}

		case err := <-s.writeErr:
			r.reply(x.response(), fmt.Errorf("%s: %w: %w", name, ErrPortLost, err))
			return false, fmt.Errorf("write: %w", err)

		case <-s.wake:
			if s.e.clk.Now().Before(deadline) {
				continue
			}
			r.reply(x.response(), fmt.Errorf("%s: %w (%v)", name, ErrTimeout, timeout))
			s.e.log.Warn("AT command timed out", "cmd", name, "timeout", timeout)
			return true, nil
		}
	}
}

// take passes a line to the exchange in flight and handles what is not its
// business.
func (s *session) take(x *exchange, line string) {
	kind := x.take(line)
	if kind == kindURC {
		s.urc(line)
		return
	}
	if s.secret || kind == kindEcho {
		return
	}
	s.e.log.Debug("AT recv", "line", line)
}

// idle handles a token that arrives while no command is in flight.
func (s *session) idle(t token) error {
	switch {
	case t.err != nil:
		return fmt.Errorf("read: %w", t.err)
	case t.overlong:
		s.e.log.Warn("modem sent an overlong line, dropped", "max", MaxLine)
		return nil
	case t.prompt:
		return nil
	}
	line := t.text
	if final, _ := parseFinal(line); final && line != "NO CARRIER" {
		// A late answer to a command that timed out or was cancelled.
		s.e.log.Debug("AT stray final result code dropped", "line", line)
		return nil
	}
	name, args := splitName(line)
	if regNames[name] && isRegAnswer(args) || s.stale && !s.e.isURC(name) {
		s.e.log.Debug("AT stray answer line dropped", "line", line)
		return nil
	}
	s.urc(line)
	return nil
}

func (s *session) urc(line string) {
	u, ok := parseURC(line, s.e.clk.Now())
	if !ok {
		return
	}
	if !s.secret {
		s.e.log.Debug("AT urc", "line", line)
	}
	s.e.dispatch(u)
}
