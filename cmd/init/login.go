package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openmifi/openmifi/board"
	"github.com/openmifi/openmifi/internal/usersettings"
)

// The waits after a wrong console password: they make guessing over the
// serial line slow without locking out someone who mistyped.
const (
	loginFirstDelay = 2 * time.Second
	loginMaxDelay   = 30 * time.Second
)

// login asks for the console password, when there is one, before the
// init gives the console a shell.
type login struct {
	hostname string
	// password returns the hash to check, "" for none. It is asked again
	// at each prompt, so that a password set or cleared with hotspotctl
	// counts from the next prompt on.
	password func() string
	// quiet turns the console's echo off, dropping what was typed before
	// the prompt, and returns what restores the console.
	quiet func() (restore func(), err error)
	// sleep waits d, or returns false when ctx ends first.
	sleep func(ctx context.Context, d time.Duration) bool
	delay time.Duration // the wait after the next wrong password; 0 before the first
}

// ask returns nil once the right password was typed, or at once when
// hash is "", the password to ask for first. It returns an error when the
// console fails or ctx ends. A console whose echo cannot be turned off
// gets no shell: the password must not appear on it.
func (l *login) ask(ctx context.Context, con io.ReadWriter, hash string) error {
	for hash != "" {
		// Echo off before the prompt: whatever is typed once it shows
		// must not be echoed, nor discarded by the switch.
		restore, err := l.quiet()
		if err != nil {
			return fmt.Errorf("console echo off: %w", err)
		}
		fmt.Fprintf(con, "\r\n%s login\r\nPassword: ", l.hostname)
		line, err := readLine(con, usersettings.MaxPasswordLen)
		restore()
		io.WriteString(con, "\r\n")
		// An end of file (Ctrl-D, a hang-up) is an empty password: it
		// waits like a wrong one, so a console that keeps returning
		// nothing cannot spin.
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("console: %w", err)
		}
		// A malformed hash cannot come from Load or a valid board; if
		// it did, it matches nothing.
		if ok, _ := usersettings.CheckPassword(hash, line); ok {
			l.delay = 0
			return nil
		}
		if l.delay == 0 {
			l.delay = loginFirstDelay
		} else {
			l.delay = min(2*l.delay, loginMaxDelay)
		}
		io.WriteString(con, "Login incorrect\r\n")
		if !l.sleep(ctx, l.delay) {
			return ctx.Err()
		}
		hash = l.password()
	}
	return nil
}

// readLine reads up to a newline one byte at a time, so that nothing of
// what follows is taken from the shell. Bytes past max are dropped, so a
// longer line never matches; a trailing CR is dropped too.
func readLine(r io.Reader, max int) (string, error) {
	var line []byte
	var b [1]byte
	for {
		n, err := r.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			if len(line) <= max {
				line = append(line, b[0])
			}
			continue
		}
		if err != nil {
			return "", err
		}
	}
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return string(line), nil
}

// consolePassword returns the console password's hash source: the user's
// (from hotspotd's settings file in stateDir), or else the board's
// default. A settings file that is missing or cannot be trusted counts as
// one without a password: hotspotd replaces such a file with defaults,
// which have none, so the init agrees with what the file is about to be.
func consolePassword(stateDir string, b board.Board, log *slog.Logger) func() string {
	path := filepath.Join(stateDir, usersettings.FileName)
	return func() string {
		s, err := usersettings.Load(path)
		if err == nil && s.ConsolePassword != "" {
			return s.ConsolePassword
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			// Load's errors never quote the file's values.
			log.Warn("console password: user settings unusable", "err", err)
		}
		return b.ConsolePassword
	}
}

// ttyQuiet is login.quiet for the terminal fd: echo off, input line
// editing left on so that backspace works.
func ttyQuiet(fd int) func() (func(), error) {
	return func() (func(), error) {
		old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			return nil, err
		}
		t := *old
		t.Lflag &^= unix.ECHO
		// TCSETSF also discards typed-ahead input, which must not be
		// taken for the password.
		if err := unix.IoctlSetTermios(fd, unix.TCSETSF, &t); err != nil {
			return nil, err
		}
		return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
	}
}

// fdConsole reads and writes a file descriptor without the runtime's
// poller, which a terminal the shell inherits must not be put under.
type fdConsole int

func (fd fdConsole) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(fd), p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 && len(p) > 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

func (fd fdConsole) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		n, err := unix.Write(int(fd), p[written:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return written, err
		}
		written += n
	}
	return written, nil
}
