package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openmifi/openmifi/board"
	"github.com/openmifi/openmifi/internal/usersettings"
)

// fakeConsole is a console with its input typed in advance. It fails the
// test when input is read with echo on.
type fakeConsole struct {
	t       *testing.T
	in      *strings.Reader
	out     bytes.Buffer
	quiet   int  // times echo was turned off
	echoOff bool // echo is off now
}

func (c *fakeConsole) Read(p []byte) (int, error) {
	if !c.echoOff {
		c.t.Error("console read with echo on")
	}
	return c.in.Read(p)
}

func (c *fakeConsole) Write(p []byte) (int, error) {
	// A password typed as soon as the prompt shows must not be echoed.
	if bytes.Contains(p, []byte("Password: ")) && !c.echoOff {
		c.t.Error("password prompt written with echo on")
	}
	return c.out.Write(p)
}

func (c *fakeConsole) quietFn() (func(), error) {
	c.quiet++
	c.echoOff = true
	return func() { c.echoOff = false }, nil
}

type fakeSleep struct {
	slept  []time.Duration
	cancel func() // when set, called on the limit-th sleep
	limit  int
}

func (s *fakeSleep) sleep(ctx context.Context, d time.Duration) bool {
	s.slept = append(s.slept, d)
	if s.cancel != nil && len(s.slept) >= s.limit {
		s.cancel()
	}
	return ctx.Err() == nil
}

func hashOf(t *testing.T, pw string) string {
	t.Helper()
	h, err := usersettings.HashPassword(nil, pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func newLogin(t *testing.T, input, hash string) (*login, *fakeConsole, *fakeSleep) {
	con := &fakeConsole{t: t, in: strings.NewReader(input)}
	sl := &fakeSleep{}
	return &login{
		hostname: "openmifi",
		password: func() string { return hash },
		quiet:    con.quietFn,
		sleep:    sl.sleep,
	}, con, sl
}

func TestLoginNoPassword(t *testing.T) {
	lg, con, sl := newLogin(t, "ls\n", "")
	if err := lg.ask(context.Background(), con, ""); err != nil {
		t.Fatal(err)
	}
	if con.out.Len() != 0 || con.in.Len() != 3 || con.quiet != 0 || len(sl.slept) != 0 {
		t.Errorf("without a password: wrote %q, left %d bytes of input, echo off %d times, slept %v",
			con.out.String(), con.in.Len(), con.quiet, sl.slept)
	}
}

func TestLoginRightPassword(t *testing.T) {
	h := hashOf(t, "open sesame")
	for _, input := range []string{"open sesame\necho hi\n", "open sesame\r\necho hi\n"} {
		lg, con, sl := newLogin(t, input, h)
		if err := lg.ask(context.Background(), con, h); err != nil {
			t.Fatal(err)
		}
		if out := con.out.String(); !strings.Contains(out, "openmifi login\r\nPassword: ") || strings.Contains(out, "sesame") {
			t.Errorf("console shows %q", out)
		}
		if con.quiet != 1 || con.echoOff {
			t.Errorf("echo turned off %d times, off at the end: %v", con.quiet, con.echoOff)
		}
		if len(sl.slept) != 0 {
			t.Errorf("slept %v after the right password", sl.slept)
		}
		// What follows the password is the shell's.
		if rest, _ := io.ReadAll(con.in); string(rest) != "echo hi\n" {
			t.Errorf("left %q for the shell", rest)
		}
	}
}

func TestLoginWrongPasswordsBackOff(t *testing.T) {
	h := hashOf(t, "pw")
	lg, con, sl := newLogin(t, "a\nb\n\nPW\npw \nf\nxpw\npw\n", h)
	if err := lg.ask(context.Background(), con, h); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{2, 4, 8, 16, 30, 30, 30}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(sl.slept, want) {
		t.Errorf("waits %v, want %v", sl.slept, want)
	}
	if n := strings.Count(con.out.String(), "Login incorrect"); n != 7 {
		t.Errorf("%d times Login incorrect, want 7", n)
	}
	if n := strings.Count(con.out.String(), "Password: "); n != 8 || con.quiet != 8 {
		t.Errorf("%d prompts, echo off %d times; want 8", n, con.quiet)
	}

	// A shell that exits asks again, and the wait starts over.
	con.in = strings.NewReader("nope\npw\n")
	sl.slept = nil
	if err := lg.ask(context.Background(), con, h); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sl.slept, []time.Duration{2 * time.Second}) {
		t.Errorf("after a login, waits %v, want [2s]", sl.slept)
	}
}

func TestLoginLongLineNeverMatches(t *testing.T) {
	pw := strings.Repeat("p", usersettings.MaxPasswordLen)
	h := hashOf(t, pw)
	lg, con, sl := newLogin(t, pw+"p\n"+pw+"\n", h)
	if err := lg.ask(context.Background(), con, h); err != nil {
		t.Fatal(err)
	}
	if len(sl.slept) != 1 {
		t.Errorf("waits %v; the longer line must be wrong, the exact one right", sl.slept)
	}
}

func TestLoginEOFWaitsUntilCancelled(t *testing.T) {
	h := hashOf(t, "pw")
	lg, con, sl := newLogin(t, "", h)
	ctx, cancel := context.WithCancel(context.Background())
	sl.cancel, sl.limit = cancel, 3
	err := lg.ask(ctx, con, h)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ask = %v, want context.Canceled", err)
	}
	if len(sl.slept) != 3 {
		t.Errorf("waits %v: an empty console must wait like a wrong password", sl.slept)
	}
}

func TestLoginQuietFails(t *testing.T) {
	h := hashOf(t, "pw")
	lg, con, _ := newLogin(t, "pw\n", h)
	lg.quiet = func() (func(), error) { return nil, errors.New("not a tty") }
	if err := lg.ask(context.Background(), con, h); err == nil {
		t.Fatal("login without echo control succeeded")
	}
	if con.in.Len() != 3 {
		t.Error("password read with echo on")
	}
}

func TestLoginPasswordCleared(t *testing.T) {
	h := hashOf(t, "pw")
	lg, con, sl := newLogin(t, "wrong\n", "")
	// The user cleared the password while the prompt was up: the next
	// round needs none.
	if err := lg.ask(context.Background(), con, h); err != nil {
		t.Fatal(err)
	}
	if len(sl.slept) != 1 {
		t.Errorf("waits %v, want one", sl.slept)
	}
}

func TestReadLine(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		err      bool
	}{
		{"abc\n", "abc", false},
		{"abc\r\nrest", "abc", false},
		{"\n", "", false},
		{"abcdefgh\n", "abcde", false}, // max+1 kept, so it differs from any 4-byte password
		{"abc", "", true},
	} {
		got, err := readLine(strings.NewReader(tt.in), 4)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("readLine(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestConsolePasswordSource(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	boardHash := hashOf(t, "factory")
	noDefault := consolePassword(dir, board.Board{}, log)
	withDefault := consolePassword(dir, board.Board{ConsolePassword: boardHash}, log)

	// No settings file yet: the board's default, or none.
	if got := noDefault(); got != "" {
		t.Errorf("no file, no default: %q", got)
	}
	if got := withDefault(); got != boardHash {
		t.Errorf("no file: %q, want the board's", got)
	}

	// hotspotd's file without a password.
	path := filepath.Join(dir, usersettings.FileName)
	st, err := usersettings.Open(path, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := noDefault(); got != "" {
		t.Errorf("file without password: %q", got)
	}
	if got := withDefault(); got != boardHash {
		t.Errorf("file without password: %q, want the board's", got)
	}

	// The user's password wins over the board's.
	s, err := st.Update(5, func(s *usersettings.Settings) error { return s.Set("console_password", "mine") })
	if err != nil {
		t.Fatal(err)
	}
	if got := withDefault(); got != s.ConsolePassword || got == "" {
		t.Errorf("user's password: %q, want %q", got, s.ConsolePassword)
	}
	if got := noDefault(); got != s.ConsolePassword {
		t.Errorf("user's password: %q, want %q", got, s.ConsolePassword)
	}

	// A file hotspotd is about to replace counts as one without.
	if err := os.WriteFile(path, []byte(`{"version": 1, "console_password": "mine"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := withDefault(); got != boardHash {
		t.Errorf("unusable file: %q, want the board's", got)
	}
	if !strings.Contains(logs.String(), "user settings unusable") || strings.Contains(logs.String(), "mine") {
		t.Errorf("log: %s", logs.String())
	}
}
