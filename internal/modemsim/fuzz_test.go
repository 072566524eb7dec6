package modemsim

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/openmifi/openmifi/internal/clock"
)

// FuzzCommandLine feeds arbitrary bytes to a modem of every dialect, as
// if a host (or line noise) wrote them: line assembly, the command line
// parser and every command's parameter handling. Whatever comes in, the
// simulator must not panic or hang, and must still answer a plain AT
// afterwards unless the input reset it.
func FuzzCommandLine(f *testing.F) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		if cmds, err := parseLine(string(data)); err == nil {
			for _, c := range cmds {
				if c.name == "" {
					t.Fatalf("empty command name in %q", data)
				}
			}
		}
		for _, d := range Dialects() {
			m := New(Config{Dialect: d, Clock: clock.NewFake(epoch), Logger: quiet})
			s := newSession(m)
			// Slow commands (a network scan) do not wait here.
			s.wait = func(context.Context, time.Duration) bool { return true }
			if !m.attach(s) {
				t.Fatal("attach failed")
			}
			ctx := context.Background()
			s.input(ctx, data)
			m.mu.Lock()
			gone := m.gone
			s.out = nil
			m.mu.Unlock()
			if gone {
				m.Close()
				continue
			}
			s.input(ctx, []byte("\rATE0V1\rAT\r"))
			s.mu.Lock()
			out := bytes.Join(s.out, nil)
			s.mu.Unlock()
			if !bytes.HasSuffix(out, []byte("\r\nOK\r\n")) {
				t.Fatalf("%s: after %q the modem answers AT with %q", d, data, out)
			}
			m.Close()
		}
	})
}
