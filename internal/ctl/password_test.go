package ctl

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/openmifi/openmifi/internal/control"
	"github.com/openmifi/openmifi/internal/sharing"
	"github.com/openmifi/openmifi/internal/usersettings"
)

// settingsBackend keeps the user settings in memory.
type settingsBackend struct {
	mu sync.Mutex
	s  usersettings.Settings
}

func (b *settingsBackend) Status() sharing.Status        { return sharing.Status{State: sharing.Off} }
func (b *settingsBackend) TurnOn(context.Context) error  { return nil }
func (b *settingsBackend) TurnOff(context.Context) error { return nil }
func (b *settingsBackend) Settings() (usersettings.Settings, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.s, nil
}

func (b *settingsBackend) UpdateSettings(_ context.Context, f func(*usersettings.Settings) error) (usersettings.Settings, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.s
	if err := f(&s); err != nil {
		return b.s, err
	}
	if err := s.Validate(5); err != nil {
		return b.s, err
	}
	b.s = s
	return s, nil
}

// TestConsolePasswordNeverShown sets, reads and clears the console
// password through the control socket: no output, log or JSON reply may
// carry the password or its hash.
func TestConsolePasswordNeverShown(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	ln, err := control.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	defs, err := usersettings.Defaults(nil)
	if err != nil {
		t.Fatal(err)
	}
	be := &settingsBackend{s: defs}
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		srv := &control.Server{Backend: be, Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		done <- srv.Serve(ctx, ln)
	}()
	defer func() {
		cancel()
		<-done
		ln.Close()
	}()

	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := Main(append([]string{"-socket", sock}, args...), &out, &errOut); code != ExitOK {
			t.Fatalf("%q: exit %d: %s", args, code, errOut.String())
		}
		return out.String() + errOut.String()
	}
	var seen []string
	seen = append(seen, run("set", "console_password=Sesame Street"))
	cur := func() string { s, _ := be.Settings(); return s.ConsolePassword }
	hash := cur()
	if ok, _ := usersettings.CheckPassword(hash, "Sesame Street"); !ok {
		t.Fatalf("stored %q is not the password's hash", hash)
	}
	if got := run("get", "console_password"); !strings.Contains(got, "(set)") {
		t.Errorf("get console_password = %q", got)
	}
	seen = append(seen, run("get"), run("-json", "get"), run("get", "console_password"))
	if !strings.Contains(seen[1], "(set)") {
		t.Errorf("get shows %q", seen[1])
	}
	seen = append(seen, run("set", "console_password="))
	if cur() != "" {
		t.Error("empty value did not clear the password")
	}
	if got := run("get", "console_password"); !strings.Contains(got, "(not set)") {
		t.Errorf("after clearing: %q", got)
	}
	seen = append(seen, logs.String())
	for _, s := range seen {
		if strings.Contains(s, "Sesame") || strings.Contains(s, hash) || strings.Contains(s, "pbkdf2") {
			t.Errorf("password or hash shown: %s", s)
		}
	}

	// A refused password is not echoed either.
	var out, errOut bytes.Buffer
	if code := Main([]string{"-socket", sock, "set", "console_password=bad\tSesame"}, &out, &errOut); code != ExitRefused {
		t.Errorf("control character: exit %d", code)
	}
	if strings.Contains(out.String()+errOut.String(), "Sesame") {
		t.Errorf("refusal shows the password: %s%s", out.String(), errOut.String())
	}
}
