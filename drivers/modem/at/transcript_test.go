package at

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A transcript is a conversation with a modem, one line per event:
//
//	# comment
//	@echo on|off    the modem echoes command lines (from here on)
//	>> AT           the engine sends this on its own (sync, init, probe)
//	> AT+COPS?      the test calls Do with this command
//	>! AT+CPIN=...  the same, as a secret command
//	>| text         prompt data the command sends at "> " (Ctrl-Z added)
//	< +COPS: ...    the modem sends this line, framed <CR><LF>...<CR><LF>
//	<< "\r\n> "     the modem sends these bytes (a Go string literal)
//	= +COPS: ...    Do's answer has this line (in order)
//	. OK            Do's final result code
//	! cme 10 text   Do's error: error, cme N [text], cms N [text],
//	                no carrier, busy, no answer, no dialtone
//	~ +CREG: 1      a URC the subscriber gets (in order, whole file)
type transcript struct {
	steps []tstep // what the modem does, in order
	calls []tcall // what the test does, in order
	urcs  []string
}

type tstep struct {
	expect string // a command line to read ("" for output steps)
	data   bool   // expect is prompt data, ended by Ctrl-Z
	echo   *bool  // switches echo
	out    string // bytes to write
	line   int
}

type tcall struct {
	cmd       Command
	lines     []string
	final     string
	err       string
	line      int
	wantLines bool // the transcript lists the answer lines (else: none expected)
}

func parseTranscript(path string) (*transcript, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := &transcript{}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		op, arg, _ := strings.Cut(line, " ")
		var call *tcall
		if len(tr.calls) > 0 {
			call = &tr.calls[len(tr.calls)-1]
		}
		switch op {
		case "@echo":
			on := arg == "on"
			tr.steps = append(tr.steps, tstep{echo: &on, line: n})
		case ">>":
			tr.steps = append(tr.steps, tstep{expect: arg, line: n})
		case ">", ">!":
			tr.steps = append(tr.steps, tstep{expect: arg, line: n})
			tr.calls = append(tr.calls, tcall{cmd: Command{Text: arg, Secret: op == ">!"}, final: "OK", line: n})
		case ">|":
			if call == nil {
				return nil, fmt.Errorf("%s:%d: prompt data without a command", path, n)
			}
			call.cmd.Prompt = arg
			tr.steps = append(tr.steps, tstep{expect: arg, data: true, line: n})
		case "<":
			tr.steps = append(tr.steps, tstep{out: lines(arg), line: n})
		case "<<":
			s, err := strconv.Unquote(arg)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %v", path, n, err)
			}
			tr.steps = append(tr.steps, tstep{out: s, line: n})
		case "=", ".", "!":
			if call == nil {
				return nil, fmt.Errorf("%s:%d: expectation without a command", path, n)
			}
			switch op {
			case "=":
				call.lines = append(call.lines, arg)
				call.wantLines = true
			case ".":
				call.final = arg
			case "!":
				call.err = arg
				call.final = ""
			}
		case "~":
			tr.urcs = append(tr.urcs, arg)
		default:
			return nil, fmt.Errorf("%s:%d: unknown line %q", path, n, line)
		}
	}
	return tr, sc.Err()
}

// play is the modem's side of a transcript.
func play(m *fakeModemPort, steps []tstep) error {
	echo := false
	for _, st := range steps {
		switch {
		case st.echo != nil:
			echo = *st.echo
		case st.expect != "" && st.data:
			got, err := m.readUntil('\x1a')
			if err != nil {
				return fmt.Errorf("line %d: waiting for prompt data: %w", st.line, err)
			}
			if got != st.expect {
				return fmt.Errorf("line %d: got prompt data %q, want %q", st.line, got, st.expect)
			}
			if echo {
				m.write(got + "\x1a")
			}
		case st.expect != "":
			got, err := m.readUntil('\r')
			if err != nil {
				return fmt.Errorf("line %d: waiting for %q: %w", st.line, st.expect, err)
			}
			got = strings.TrimLeft(got, "\n")
			if got != st.expect {
				return fmt.Errorf("line %d: modem got %q, want %q", st.line, got, st.expect)
			}
			if echo {
				m.write(got + "\r")
			}
		default:
			m.write(st.out)
		}
	}
	return nil
}

// fakeModemPort is the master side of a pty read byte-wise by a
// transcript.
type fakeModemPort struct {
	f   *os.File
	buf []byte
}

func (m *fakeModemPort) readUntil(end byte) (string, error) {
	for {
		if i := strings.IndexByte(string(m.buf), end); i >= 0 {
			s := string(m.buf[:i])
			m.buf = m.buf[i+1:]
			return s, nil
		}
		b := make([]byte, 1024)
		n, err := m.f.Read(b)
		if err != nil {
			return "", err
		}
		m.buf = append(m.buf, b[:n]...)
	}
}

func (m *fakeModemPort) write(s string) { _, _ = m.f.Write([]byte(s)) }

func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			tr, err := parseTranscript(file)
			if err != nil {
				t.Fatal(err)
			}
			runTranscript(t, tr)
		})
	}
}

func runTranscript(t *testing.T, tr *transcript) {
	played := make(chan error, 1)
	r := newRig(t, Config{}, nil)
	r.eng.cfg.Open = func() (Port, error) {
		master, slave := openPTY(t)
		go func() {
			played <- play(&fakeModemPort{f: master}, tr.steps)
		}()
		t.Cleanup(func() { master.Close() })
		return slave, nil
	}
	urcs, _ := r.eng.Subscribe()
	r.start()
	r.event(Ready)
	for _, c := range tr.calls {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := r.eng.Do(ctx, c.cmd)
		cancel()
		where := fmt.Sprintf("line %d, %s", c.line, redact(c.cmd))
		if msg := checkErr(err, c.err); msg != "" {
			t.Errorf("%s: %s", where, msg)
		}
		if c.final != "" && resp.Final != c.final {
			t.Errorf("%s: final %q, want %q", where, resp.Final, c.final)
		}
		if (c.wantLines || c.err == "") && !slices.Equal(resp.Lines, c.lines) {
			t.Errorf("%s: lines\n%q\nwant\n%q", where, resp.Lines, c.lines)
		}
		if c.cmd.Secret && err != nil {
			if args := strings.SplitN(c.cmd.Text, "=", 2); len(args) == 2 && strings.Contains(err.Error(), args[1]) {
				t.Errorf("%s: error %q shows the secret", where, err)
			}
		}
	}
	select {
	case err := <-played:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the transcript did not play to its end")
	}
	var got []string
	for len(got) < len(tr.urcs) {
		select {
		case u := <-urcs:
			got = append(got, u.Line)
		case <-time.After(2 * time.Second):
			t.Fatalf("URCs\n%q\nwant\n%q", got, tr.urcs)
		}
	}
	// Anything else the modem sent has arrived by now, or soon.
	select {
	case u := <-urcs:
		got = append(got, u.Line)
	case <-time.After(50 * time.Millisecond):
	}
	if !slices.Equal(got, tr.urcs) {
		t.Errorf("URCs\n%q\nwant\n%q", got, tr.urcs)
	}
	r.stop()
	log := r.log.String()
	for _, c := range tr.calls {
		if !c.cmd.Secret {
			continue
		}
		_, secret, _ := strings.Cut(c.cmd.Text, "=")
		if secret != "" && strings.Contains(log, secret) {
			t.Errorf("the log shows the secret of line %d:\n%s", c.line, log)
		}
		if !strings.Contains(log, redact(c.cmd)) {
			t.Errorf("the log does not show %q", redact(c.cmd))
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", log)
	}
}

// checkErr compares an error with a transcript's "!" line.
func checkErr(err error, want string) string {
	if want == "" {
		if err != nil {
			return fmt.Sprintf("error %v, want none", err)
		}
		return ""
	}
	if err == nil {
		return fmt.Sprintf("no error, want %s", want)
	}
	kind, rest, _ := strings.Cut(want, " ")
	switch kind {
	case "cme", "cms":
		code, text, _ := strings.Cut(rest, " ")
		n, _ := strconv.Atoi(code)
		var gotCode int
		var gotText string
		if cme, ok := errors.AsType[*CMEError](err); ok && kind == "cme" {
			gotCode, gotText = cme.Code, cme.Text
		} else if cms, ok := errors.AsType[*CMSError](err); ok && kind == "cms" {
			gotCode, gotText = cms.Code, cms.Text
		} else {
			return fmt.Sprintf("error %v, want %s", err, want)
		}
		if gotCode != n || text != "" && gotText != text {
			return fmt.Sprintf("error %v, want %s", err, want)
		}
		return ""
	}
	sentinel := map[string]error{
		"error": ErrError, "no carrier": ErrNoCarrier, "busy": ErrBusy,
		"no answer": ErrNoAnswer, "no dialtone": ErrNoDialtone,
	}[want]
	if sentinel == nil {
		return fmt.Sprintf("transcript error %q unknown", want)
	}
	if !errors.Is(err, sentinel) {
		return fmt.Sprintf("error %v, want %v", err, sentinel)
	}
	return ""
}
