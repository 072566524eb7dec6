package at

import (
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// FuzzResponse feeds arbitrary modem output to the line splitter and the
// exchange of an arbitrary command: whatever the modem sends, every line
// ends up in exactly one place, a finished exchange has a real final result
// code whose error matches it, and the output is cut into the same lines
// however the port's reads split it.
func FuzzResponse(f *testing.F) {
	isURC := New(Config{}).isURC
	f.Fuzz(func(t *testing.T, cmd string, data []byte) {
		var whole splitter
		toks := whole.feed(data, false)
		var halves splitter
		cut := len(data) / 2
		again := append(halves.feed(data[:cut], false), halves.feed(data[cut:], false)...)
		if len(toks) != len(again) {
			t.Fatalf("%d tokens at once, %d in two reads", len(toks), len(again))
		}
		if i := strings.IndexByte(cmd, '='); i >= 0 {
			if got := redact(Command{Text: cmd, Secret: true}); got != cmd[:i+1]+"<hidden>" {
				t.Fatalf("redact(%q) = %q", cmd, got)
			}
		} else if got := redact(Command{Text: cmd, Secret: true}); !strings.HasSuffix(got, "<hidden>") {
			t.Fatalf("redact(%q) = %q", cmd, got)
		}
		x := newExchange(Command{Text: cmd}, isURC)
		answers, urcs := 0, 0
		for i, tok := range toks {
			if tok != again[i] {
				t.Fatalf("token %d: %+v at once, %+v in two reads", i, tok, again[i])
			}
			if tok.overlong {
				x.overlong = true
				continue
			}
			checkLine(t, tok.text)
			if x.done {
				break
			}
			switch x.take(tok.text) {
			case kindAnswer:
				answers++
			case kindURC:
				urcs++
				if _, ok := parseURC(tok.text, time.Time{}); !ok {
					t.Fatalf("URC %q does not parse", tok.text)
				}
			}
		}
		if len(x.lines) != answers {
			t.Fatalf("%d answer lines kept, %d taken", len(x.lines), answers)
		}
		for _, l := range x.lines {
			if final, _ := parseFinal(l); final {
				t.Fatalf("final result code %q among the answer lines", l)
			}
		}
		if !x.done {
			return
		}
		final, err := parseFinal(x.final)
		if !final {
			t.Fatalf("exchange ended on %q", x.final)
		}
		if (err == nil && !x.overlong) != (x.err == nil) {
			t.Fatalf("final %q (overlong %v) gave error %v", x.final, x.overlong, x.err)
		}
	})
}

// checkLine: what the splitter gives is never empty, never too long, and
// holds no line end, NUL or other control character.
func checkLine(t *testing.T, l string) {
	t.Helper()
	if l == "" || len(l) > MaxLine || !utf8.ValidString(l) || l != strings.TrimSpace(l) ||
		strings.ContainsFunc(l, unicode.IsControl) {
		t.Fatalf("splitter gave line %q", l)
	}
}

// FuzzURC feeds arbitrary lines, cleaned as the splitter cleans them, to
// the URC parser and the argument splitter: a URC keeps its line whole,
// its name is where the line starts and its arguments where it ends, and
// Fields finds one field more than there are commas outside quotes and
// parentheses.
func FuzzURC(f *testing.F) {
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		line := clean([]byte(raw))
		u, ok := parseURC(line, at)
		if !ok {
			if final, _ := parseFinal(line); line != "" && !final {
				t.Fatalf("%q is neither a URC nor a final result code", line)
			}
			return
		}
		if u.Line != line || u.Name == "" || !strings.HasPrefix(line, u.Name) ||
			!strings.HasSuffix(line, u.Args) || !u.At.Equal(at) {
			t.Fatalf("parseURC(%q) = %+v", line, u)
		}
		if u.Args != strings.TrimSpace(u.Args) {
			t.Fatalf("arguments %q not trimmed", u.Args)
		}
		fields := Fields(u.Args)
		if u.Args == "" {
			if fields != nil {
				t.Fatalf("Fields(%q) = %q", u.Args, fields)
			}
			return
		}
		if want := topLevelCommas(u.Args) + 1; len(fields) != want {
			t.Fatalf("Fields(%q) = %q, want %d fields", u.Args, fields, want)
		}
		_ = isRegAnswer(u.Args)
	})
}

func topLevelCommas(s string) int {
	n, depth, quoted := 0, 0, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case quoted:
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case r == ',' && depth == 0:
			n++
		}
	}
	return n
}
