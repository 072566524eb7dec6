package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
	"time"
)

// Restart policy of supervised services: a service that dies is started
// again after minDelay, the delay doubling with every quick death up to
// maxDelay, so that a crash loop neither floods the log nor keeps the CPU
// busy; once it has run resetAfter, it counts as healthy again.
const (
	minDelay   = time.Second
	maxDelay   = 30 * time.Second
	resetAfter = 60 * time.Second
)

// backoff returns how long to wait before the next start of a service
// that ran for ran, given the delay its last death set, and the delay for
// the death after that.
func backoff(delay, ran time.Duration) (wait, next time.Duration) {
	if ran >= resetAfter || delay < minDelay {
		delay = minDelay
	}
	return delay, min(2*delay, maxDelay)
}

// starter starts one run of a service and returns its pid and exit.
type starter func() (pid int, exit <-chan syscall.WaitStatus, err error)

// service is a supervised long-running program.
type service struct {
	name  string
	start starter
	log   *slog.Logger
	// sleep waits d or until ctx ends, and reports whether it waited.
	sleep func(ctx context.Context, d time.Duration) bool
	now   func() time.Time
}

// run keeps the service running until ctx ends (at shutdown, when the
// init's kill of every process stops the service itself).
func (s *service) run(ctx context.Context) {
	delay := minDelay
	for {
		started := s.now()
		pid, exit, err := s.start()
		how := ""
		if err != nil {
			how = err.Error()
		} else {
			s.log.Info("service started", "service", s.name, "pid", pid)
			select {
			case ws := <-exit:
				how = describe(ws)
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		ran := s.now().Sub(started)
		var wait time.Duration
		wait, delay = backoff(delay, ran)
		s.log.Warn("service died; restarting", "service", s.name, "pid", pid, "how", how,
			"ran", ran.Round(time.Millisecond), "restart_in", wait)
		if !s.sleep(ctx, wait) {
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// daemonStarter starts argv in a session of its own (so that the console's
// job control never signals it), with its output going to the ring log.
// Lines it logs as warnings or errors are shown on the console as well:
// an invalid provisioning must be seen there.
func daemonStarter(p *procs, name string, argv, env []string, ring io.Writer, console io.Writer) starter {
	return func() (int, <-chan syscall.WaitStatus, error) {
		r, w, err := os.Pipe()
		if err != nil {
			return 0, nil, fmt.Errorf("log pipe: %w", err)
		}
		pid, exit, err := p.start(argv[0], argv, &syscall.ProcAttr{
			Env:   env,
			Files: []uintptr{devNull(), w.Fd(), w.Fd()},
			Sys:   &syscall.SysProcAttr{Setsid: true},
		})
		w.Close()
		if err != nil {
			r.Close()
			return 0, nil, err
		}
		go copyLog(r, name, ring, console)
		return pid, exit, nil
	}
}

// copyLog copies a service's output into its ring log line by line until
// the service closes it. It never stops reading before that: a service
// blocked on a full pipe would hang.
func copyLog(r io.ReadCloser, name string, ring io.Writer, console io.Writer) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 16<<10)
	for {
		// A line longer than the buffer comes in pieces, each logged
		// as a line of its own.
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if line[len(line)-1] != '\n' {
				// A full slice, so that append copies instead of
				// writing into the reader's buffer.
				line = append(line[:len(line):len(line)], '\n')
			}
			ring.Write(line)
			if bytes.Contains(line, []byte("level=ERROR")) || bytes.Contains(line, []byte("level=WARN")) {
				fmt.Fprintf(console, "%s: %s", name, line)
			}
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}
