package modem

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openmifi/openmifi/drivers/modem/at"
	"github.com/openmifi/openmifi/internal/clock"
	"github.com/openmifi/openmifi/internal/provision"
)

// scriptModem is a modem that answers from a table: what the simulator
// cannot be asked to do (refuse an activation once, lack +CGCONTRDP, call
// its SIM blocked) is written out here.
type scriptModem struct {
	mu      sync.Mutex
	answers map[string][]string // command -> lines, final result last
	once    map[string][]string // answered once, before answers
	seen    []string
}

// defaultAnswers are a registered LTE modem with one IPv4 context.
func defaultAnswers() map[string][]string {
	ok := []string{"OK"}
	return map[string][]string{
		"AT": ok, "ATE0": ok, "AT+CMEE=2": ok, "AT+CREG=2": ok, "AT+CGREG=2": ok, "AT+CEREG=2": ok, "AT+CGEREP=2,1": ok,
		"AT+CGMI": {"Acme", "OK"}, "AT+CGMM": {"X1", "OK"}, "AT+CGMR": {"1.0", "OK"},
		"AT+CPIN?":    {"+CPIN: READY", "OK"},
		"AT+CGSN":     {"356938035643809", "OK"},
		"AT+CIMI":     {"310260123456789", "OK"},
		"AT+CCID":     {"+CCID: 8901260123456789012", "OK"},
		"AT+CREG?":    {`+CREG: 2,1,"00C3","0000A13F",7`, "OK"},
		"AT+CGREG?":   {`+CGREG: 2,1,"00C3","0000A13F",7`, "OK"},
		"AT+CEREG?":   {`+CEREG: 2,1,"00C3","0000A13F",7`, "OK"},
		"AT+COPS=3,2": ok, "AT+COPS=3,0": ok,
		"AT+CESQ":                    {"ERROR"},
		"AT+CSQ":                     {"+CSQ: 25,99", "OK"},
		"AT+CGDCONT?":                {`+CGDCONT: 1,"IP","fast.example","0.0.0.0",0,0`, "OK"},
		"AT+CGACT=1,1":               ok,
		"AT+CGACT=1,2":               ok,
		"AT+CGACT=0,2":               ok,
		"AT+CGAUTH=2,0":              ok,
		`AT+CGDCONT=2,"IP","tether"`: ok,
		"AT+CGPADDR=1":               {`+CGPADDR: 1,"10.20.30.40"`, "OK"},
		"AT+CGPADDR=2":               {`+CGPADDR: 2,"10.20.30.41"`, "OK"},
		"AT+CGCONTRDP=1":             {"ERROR"},
		"AT+CGCONTRDP=2":             {"ERROR"},
	}
}

func (m *scriptModem) answer(cmd string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen = append(m.seen, cmd)
	if a, ok := m.once[cmd]; ok {
		delete(m.once, cmd)
		return a
	}
	if a, ok := m.answers[cmd]; ok {
		return a
	}
	if strings.HasPrefix(cmd, "AT+COPS?") {
		return []string{`+COPS: 0,0,"T-Test"`, "OK"} // no AcT: the answer ends in a quote
	}
	return []string{"ERROR"}
}

func (m *scriptModem) commands() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.seen...)
}

// port serves m over an in-memory stream.
type scriptPort struct {
	m      *scriptModem
	r      *io.PipeReader
	w      *io.PipeWriter
	line   []byte
	out    chan []byte
	closed chan struct{}
	once   sync.Once
}

func (m *scriptModem) open() (at.Port, error) {
	r, w := io.Pipe()
	p := &scriptPort{m: m, r: r, w: w, out: make(chan []byte, 64), closed: make(chan struct{})}
	go func() {
		for {
			select {
			case b := <-p.out:
				if _, err := w.Write(b); err != nil {
					return
				}
			case <-p.closed:
				return
			}
		}
	}()
	return p, nil
}

func (p *scriptPort) Read(b []byte) (int, error) { return p.r.Read(b) }

func (p *scriptPort) Write(b []byte) (int, error) {
	for _, c := range b {
		if c != '\r' {
			p.line = append(p.line, c)
			continue
		}
		var resp bytes.Buffer
		for _, l := range p.m.answer(string(p.line)) {
			resp.WriteString("\r\n" + l + "\r\n")
		}
		p.line = p.line[:0]
		select {
		case p.out <- resp.Bytes():
		case <-p.closed:
			return 0, errors.New("closed")
		}
	}
	return len(b), nil
}

func (p *scriptPort) Close() error {
	p.once.Do(func() {
		close(p.closed)
		p.r.Close()
		p.w.Close()
	})
	return nil
}

type scriptRig struct {
	rig
	m   *scriptModem
	log *syncBuf
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newScriptRig(t *testing.T, m *scriptModem, cfg Config) *scriptRig {
	t.Helper()
	clk := clock.NewFake(epoch)
	buf := &syncBuf{}
	cfg.Open = m.open
	cfg.Clock = clk
	cfg.Log = slog.New(slog.NewTextHandler(io.MultiWriter(buf, t.Output()), &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.ATTimeout = 24 * time.Hour
	cfg.Interface = "rmnet0"
	cfg.Addressing = AddressingStatic
	fa := &fakeAddresser{}
	cfg.Addresser = fa
	d := New(cfg)
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, rec) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
	return &scriptRig{rig: rig{t: t, clk: clk, drv: d, rec: rec, addr: fa}, m: m, log: buf}
}

func TestActivationRefusedIsRetried(t *testing.T) {
	m := &scriptModem{answers: defaultAnswers(), once: map[string][]string{
		"AT+CGACT=1,1": {"+CME ERROR: 30"},
	}}
	r := newScriptRig(t, m, Config{})
	r.expect("down activation failed", 0)
	// The back-off's first retry is a second later; +CGCONTRDP is not
	// known to this modem, so the address stands alone.
	if got := r.expect("up", 200*time.Millisecond); got != "up rmnet0 [10.20.30.40/32] T-Test LTE -63 dBm 5 bars" {
		t.Errorf("got %s", got)
	}
	if _, id := r.rec.last(); id.MCC != "310" || id.ICCID != "8901260123456789012" {
		t.Errorf("identity %+v", id)
	}
	for _, c := range r.m.commands() {
		if strings.HasPrefix(c, "AT+CGDCONT=1") {
			t.Errorf("the modem's own definition of context 1 was overwritten: %s", c)
		}
	}
}

func TestSIMBlocked(t *testing.T) {
	a := defaultAnswers()
	a["AT+CPIN?"] = []string{"+CME ERROR: SIM blocked"}
	r := newScriptRig(t, &scriptModem{answers: a}, Config{PIN: func() string { return "1234" }})
	r.expect("down "+ReasonSIMBlocked, 0)
	for range 3 {
		r.clk.Advance(time.Minute)
	}
	for _, c := range r.m.commands() {
		if strings.HasPrefix(c, "AT+CPIN=") {
			t.Errorf("a PIN was entered into a blocked SIM: %s", c)
		}
	}
}

func TestSecretsAreNotLogged(t *testing.T) {
	a := defaultAnswers()
	a["AT+CPIN?"] = []string{"+CPIN: SIM PIN", "OK"}
	once := map[string][]string{`AT+CPIN="9876"`: {"OK"}}
	m := &scriptModem{answers: a, once: once}
	r := newScriptRig(t, m, Config{PIN: func() string { return "9876" }})
	r.expect("down "+ReasonPINRejected, 0) // the script's SIM stays locked
	m.mu.Lock()
	a["AT+CPIN?"] = []string{"+CPIN: READY", "OK"}
	a[`AT+CGAUTH=2,2,"user","pa55word"`] = []string{"OK"}
	m.mu.Unlock()
	r.clk.Advance(time.Minute)
	r.expect("up", 0)
	conn := provision.Connection{Name: "tether", APN: "tether", IPType: "IP", TetheringNAI: true, UserName: "user", Password: "pa55word", AuthType: "chap"}
	if err := r.drv.Acquire(context.Background(), []provision.Connection{conn}); err != nil {
		t.Fatal(err)
	}
	if got := r.expect("up", 0); !strings.HasPrefix(got, "up rmnet0 [10.20.30.41/32]") {
		t.Errorf("sharing: %s", got)
	}
	if !strings.Contains(strings.Join(m.commands(), "\n"), `AT+CGAUTH=2,2,"user","pa55word"`) {
		t.Errorf("no authentication sent: %q", m.commands())
	}
	if l := r.log.String(); strings.Contains(l, "9876") || strings.Contains(l, "pa55word") {
		t.Errorf("a secret was logged:\n%s", l)
	}
}
