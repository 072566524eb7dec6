package modemsim

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Scenario is a script of what happens to the modem: the state it starts
// in and events at given times. The format is in the package doc.
type Scenario struct {
	Name  string
	steps []step
}

type step struct {
	text  string
	timed bool
	at    time.Duration // first run, from New
	every time.Duration // then again every this long; 0 once
	do    func(m *Modem)
}

// builtins are the named scenarios, in the text format.
var builtins = map[string]string{
	"sim-locked": `# The SIM asks for its PIN (Config.PIN, or 1234).
sim locked
`,
	"no-coverage": `# Radio on, SIM ready, no network: searching for ever.
coverage lost
`,
	"coverage-flap": `# Coverage lost at 10 minutes and back 2 minutes later.
at 10m coverage lost
at 12m coverage back
`,
	"nw-deact": `# The network deactivates context 1 at 5 minutes.
at 5m nw-deact 1
`,
	"slow": `# Every command takes a second; activation 10 s, a network scan 30 s.
slow 1s
slow 10s +CGACT=
slow 30s +COPS=?
`,
	"garbage": `# Binary noise on the line every 30 seconds.
every 30s garbage
`,
	"echo": `# Echo stays on: ATE0 is answered OK and changes nothing.
echo stuck
`,
	"port-flap": `# The port disappears at 20 minutes and is back 5 s later.
at 20m port gone 5s
`,
	"hang": `# The firmware stops answering at 5 minutes, for a minute.
at 5m hang 1m
`,
}

// Builtins lists the names of the built-in scenarios.
func Builtins() []string {
	var names []string
	for n := range builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// BuiltinScenario returns the named built-in scenario.
func BuiltinScenario(name string) (*Scenario, error) {
	text, ok := builtins[name]
	if !ok {
		return nil, fmt.Errorf("no built-in scenario %q (have %s)", name, strings.Join(Builtins(), ", "))
	}
	return ParseScenario(name, strings.NewReader(text))
}

// LoadScenario returns the built-in scenario called nameOrFile, or else
// parses the file of that name.
func LoadScenario(nameOrFile string) (*Scenario, error) {
	if _, ok := builtins[nameOrFile]; ok {
		return BuiltinScenario(nameOrFile)
	}
	f, err := os.Open(nameOrFile)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w (built-in ones: %s)", err, strings.Join(Builtins(), ", "))
	}
	defer f.Close()
	return ParseScenario(nameOrFile, f)
}

// ParseScenario reads a scenario in the text format; name appears in
// errors and logs.
func ParseScenario(name string, r io.Reader) (*Scenario, error) {
	sc := &Scenario{Name: name}
	in := bufio.NewScanner(r)
	for n := 1; in.Scan(); n++ {
		line := strings.TrimSpace(in.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if !strings.Contains(line, "urc ") {
			// A trailing comment; a URC's text is taken as it is.
			if i := strings.Index(line, " #"); i >= 0 {
				line = strings.TrimSpace(line[:i])
			}
		}
		st, err := parseStep(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %q: %w", name, n, line, err)
		}
		sc.steps = append(sc.steps, st)
	}
	if err := in.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return sc, nil
}

func parseStep(line string) (step, error) {
	st := step{text: line}
	f := strings.Fields(line)
	switch {
	case f[0] == "at" || f[0] == "every":
		if len(f) < 3 {
			return st, fmt.Errorf("%s needs a time and an event", f[0])
		}
		d, err := parseDuration(f[1])
		if err != nil {
			return st, err
		}
		st.timed, st.at = true, d
		if f[0] == "every" {
			if d <= 0 {
				return st, fmt.Errorf("every needs a positive interval")
			}
			st.every = d
		}
		f = f[2:]
	case len(f) >= 3 && f[len(f)-2] == "every":
		// "garbage every 30s"
		d, err := parseDuration(f[len(f)-1])
		if err != nil {
			return st, err
		}
		if d <= 0 {
			return st, fmt.Errorf("every needs a positive interval")
		}
		st.timed, st.at, st.every = true, d, d
		f = f[:len(f)-2]
	}
	do, err := parseAction(f, st.timed, line)
	if err != nil {
		return st, err
	}
	st.do = do
	return st, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration %q (like 90s, 10m, 1h30m)", s)
	}
	return d, nil
}

// parseAction turns the event words into what they do to the modem
// (called with m.mu held). timed says whether it has a time; without one
// it describes the modem's state at power-on.
func parseAction(f []string, timed bool, line string) (func(*Modem), error) {
	need := func(n int, usage string) error {
		if len(f) != n {
			return fmt.Errorf("usage: %s", usage)
		}
		return nil
	}
	needTime := func() error {
		if !timed {
			return fmt.Errorf("%s needs a time (at DURATION or every DURATION)", f[0])
		}
		return nil
	}
	switch f[0] {
	case "coverage":
		if err := need(2, "coverage lost|back"); err != nil {
			return nil, err
		}
		switch f[1] {
		case "lost":
			return func(m *Modem) { m.setCoverage(false) }, nil
		case "back":
			return func(m *Modem) { m.setCoverage(true) }, nil
		}
		return nil, fmt.Errorf("usage: coverage lost|back")

	case "nw-deact":
		if err := need(2, "nw-deact CID"); err != nil {
			return nil, err
		}
		cid, err := strconv.Atoi(f[1])
		if err != nil || cid < 1 || cid > maxCID {
			return nil, fmt.Errorf("bad cid %q", f[1])
		}
		if err := needTime(); err != nil {
			return nil, err
		}
		return func(m *Modem) { m.nwDeact(cid) }, nil

	case "sim":
		if err := need(2, "sim locked|puk|ready|absent|inserted"); err != nil {
			return nil, err
		}
		state := f[1]
		switch state {
		case "locked", "puk", "ready", "absent", "removed", "inserted":
		default:
			return nil, fmt.Errorf("usage: sim locked|puk|ready|absent|inserted")
		}
		return func(m *Modem) { m.setSIM(state) }, nil

	case "slow":
		if len(f) != 2 && len(f) != 3 {
			return nil, fmt.Errorf("usage: slow DURATION [COMMAND]")
		}
		d, err := parseDuration(f[1])
		if err != nil {
			return nil, err
		}
		prefix := ""
		if len(f) == 3 {
			prefix = strings.ToUpper(f[2])
			prefix = strings.TrimPrefix(prefix, "AT")
		}
		return func(m *Modem) {
			m.slow = append(m.slow, slowRule{prefix: prefix, d: d})
		}, nil

	case "garbage":
		if err := need(1, "garbage"); err != nil {
			return nil, err
		}
		if err := needTime(); err != nil {
			return nil, err
		}
		return func(m *Modem) { m.garbage() }, nil

	case "echo":
		if err := need(2, "echo on|off|stuck"); err != nil {
			return nil, err
		}
		switch f[1] {
		case "on", "off":
			on := f[1] == "on"
			return func(m *Modem) {
				if !timed {
					m.echoDefault = on
				}
				m.echo = on || m.echoStuck
			}, nil
		case "stuck":
			return func(m *Modem) { m.echoStuck, m.echo = true, true }, nil
		}
		return nil, fmt.Errorf("usage: echo on|off|stuck")

	case "port":
		if len(f) != 3 || f[1] != "gone" {
			return nil, fmt.Errorf("usage: port gone DURATION")
		}
		d, err := parseDuration(f[2])
		if err != nil {
			return nil, err
		}
		if err := needTime(); err != nil {
			return nil, err
		}
		return func(m *Modem) { m.portGone(d, nil, nil) }, nil

	case "reset":
		if err := need(1, "reset"); err != nil {
			return nil, err
		}
		if err := needTime(); err != nil {
			return nil, err
		}
		return func(m *Modem) { m.portGone(m.cfg.ResetTime, nil, nil) }, nil

	case "hang":
		if err := need(2, "hang DURATION"); err != nil {
			return nil, err
		}
		d, err := parseDuration(f[1])
		if err != nil {
			return nil, err
		}
		return func(m *Modem) {
			m.log.Info("firmware hangs", "for", d)
			m.hungUntil = m.clk.Now().Add(d)
		}, nil

	case "signal":
		if err := need(2, "signal RSSI (0..31, as +CSQ)"); err != nil {
			return nil, err
		}
		rssi, err := strconv.Atoi(f[1])
		if err != nil || rssi < 0 || rssi > 31 {
			return nil, fmt.Errorf("bad rssi %q (0..31)", f[1])
		}
		return func(m *Modem) {
			m.rssi = rssi
			m.update(causeNW)
		}, nil

	case "act":
		if err := need(2, "act gsm|umts|lte"); err != nil {
			return nil, err
		}
		act, ok := techs[f[1]]
		if !ok {
			return nil, fmt.Errorf("usage: act gsm|umts|lte")
		}
		return func(m *Modem) {
			m.netAcT = act
			m.update(causeNW)
		}, nil

	case "roaming":
		if err := need(2, "roaming on|off"); err != nil {
			return nil, err
		}
		on := f[1] == "on"
		if !on && f[1] != "off" {
			return nil, fmt.Errorf("usage: roaming on|off")
		}
		return func(m *Modem) {
			m.cfg.Roaming = on
			m.update(causeNW)
		}, nil

	case "urc":
		if len(f) < 2 {
			return nil, fmt.Errorf("usage: urc TEXT")
		}
		if err := needTime(); err != nil {
			return nil, err
		}
		text := strings.TrimSpace(line[strings.Index(line, "urc ")+4:])
		return func(m *Modem) { m.urc(text) }, nil
	}
	return nil, fmt.Errorf("unknown event %q", f[0])
}

// schedule arms a timed step on the modem's clock.
func (m *Modem) schedule(st step) {
	var fire func()
	fire = func() {
		m.log.Info("scenario", "step", st.text)
		st.do(m)
		if st.every > 0 {
			m.after(st.every, fire)
		}
	}
	m.after(st.at, fire)
}

func (m *Modem) setCoverage(on bool) {
	if m.coverage == on {
		return
	}
	m.log.Info("coverage", "on", on)
	m.coverage = on
	m.update(causeNW)
}

// nwDeact is a network-initiated deactivation of one context.
func (m *Modem) nwDeact(cid int) {
	p := m.pdps[cid]
	if p == nil || !p.active {
		m.log.Info("nw-deact of a context that is not active", "cid", cid)
		return
	}
	m.deactivate(p, causeNW)
}

// setSIM changes the SIM: a state at power-on, or a SIM pulled out
// (absent) and put back (inserted) while running.
func (m *Modem) setSIM(state string) {
	switch state {
	case "locked":
		if m.pin == "" {
			m.pin = "1234"
		}
		m.pinEnabled = true
		m.sim = simPIN
	case "puk":
		if m.pin == "" {
			m.pin = "1234"
		}
		m.pinEnabled = true
		m.pinLeft = 0
		m.sim = simPUK
	case "ready":
		m.pinEnabled = false
		m.sim = simReady
	case "absent", "removed":
		if m.sim == simAbsent {
			return
		}
		m.sim = simAbsent
		if m.d.simRemoved != "" {
			m.urc(m.d.simRemoved)
		}
	case "inserted":
		if m.sim != simAbsent {
			return
		}
		m.sim = simReady
		if m.pinEnabled {
			m.sim = simPIN
		}
		if m.d.pinURC {
			m.urc("+CPIN: " + m.simText())
		}
		if m.sim == simReady {
			for _, u := range m.d.simReadyURCs {
				m.urc(u)
			}
		}
	}
	m.log.Info("SIM", "state", m.simText())
	m.update(causeME)
}

// garbage puts line noise on every session: binary bytes that never form
// a line of their own, so that the next output (which starts with CR LF)
// or an echo closes them.
func (m *Modem) garbage() {
	n := 4 + m.rng.IntN(24)
	b := make([]byte, 0, n+2)
	for len(b) < n {
		c := byte(m.rng.IntN(256))
		if c == '\r' || c == '\n' {
			continue
		}
		b = append(b, c)
	}
	if m.rng.IntN(2) == 0 {
		// Sometimes a noise line with empty lines around it.
		b = append(append([]byte("\r\n\r\n"), b...), "\r\n"...)
	}
	for s := range m.sessions {
		s.send(b)
	}
}
