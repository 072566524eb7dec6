package modemsim

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustScenario(t *testing.T, text string) *Scenario {
	t.Helper()
	sc, err := ParseScenario(t.Name(), strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func builtin(t *testing.T, name string) *Scenario {
	t.Helper()
	sc, err := BuiltinScenario(name)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestBuiltinsParse(t *testing.T) {
	want := []string{"coverage-flap", "echo", "garbage", "hang", "no-coverage", "nw-deact", "port-flap", "sim-locked", "slow"}
	if got := Builtins(); !slices.Equal(got, want) {
		t.Errorf("Builtins() = %q, want %q", got, want)
	}
	for _, name := range Builtins() {
		if _, err := BuiltinScenario(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := BuiltinScenario("nope"); err == nil {
		t.Error("unknown built-in accepted")
	}
}

func TestScenarioErrors(t *testing.T) {
	for _, text := range []string{
		"coverage gone",
		"at 10 coverage lost",
		"at -1m coverage lost",
		"at 1m",
		"nw-deact 1",
		"at 1m nw-deact 99",
		"garbage",
		"every 0s garbage",
		"port gone 5s",
		"at 1m port gone",
		"sim sideways",
		"signal 40",
		"act 5g",
		"echo maybe",
		"slow fast",
		"urc +X: 1",
		"explode",
		"reset",
	} {
		_, err := ParseScenario("test", strings.NewReader("# a comment\n\n"+text+"\n"))
		if err == nil {
			t.Errorf("%q accepted", text)
			continue
		}
		if !strings.HasPrefix(err.Error(), "test:3: ") {
			t.Errorf("%q: error %q does not name the line", text, err)
		}
	}
	sc := mustScenario(t, "garbage every 30s # noise\nat 1h urc +QIND: \"FOTA\",\"START\" # kept as it is\n")
	if len(sc.steps) != 2 || sc.steps[0].every != 30*time.Second || !sc.steps[0].timed {
		t.Errorf("steps %+v", sc.steps)
	}
}

func TestLoadScenario(t *testing.T) {
	if sc, err := LoadScenario("slow"); err != nil || sc.Name != "slow" {
		t.Errorf("built-in: %v, %v", sc, err)
	}
	path := filepath.Join(t.TempDir(), "flap.txt")
	if err := os.WriteFile(path, []byte("at 1m coverage lost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if sc, err := LoadScenario(path); err != nil || len(sc.steps) != 1 {
		t.Errorf("file: %v, %v", sc, err)
	}
	if _, err := LoadScenario(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestScenarioSIMLocked(t *testing.T) {
	c := start(t, Config{Scenario: builtin(t, "sim-locked")}).c
	c.want("AT+CPIN?", "OK", "+CPIN: SIM PIN")
	c.ok(`AT+CPIN="1234"`)
	c.want("AT+CREG?", "OK", "+CREG: 0,1")
}

func TestScenarioNoCoverage(t *testing.T) {
	r := start(t, Config{Scenario: builtin(t, "no-coverage")})
	c := r.c
	c.ok("AT+CMEE=1")
	c.want("AT+CREG?", "OK", "+CREG: 0,2")
	c.want("AT+CEREG?", "OK", "+CEREG: 0,2")
	c.want("AT+CSQ", "OK", "+CSQ: 99,99")
	c.want("AT+COPS?", "OK", "+COPS: 0")
	c.ok(`AT+CGDCONT=1,"IP","a"`)
	c.want("AT+CGACT=1,1", "+CME ERROR: 30")
	r.clk.Advance(time.Hour)
	c.want("AT+CREG?", "OK", "+CREG: 0,2")
	// The scan finds nothing.
	n := r.clk.Pending()
	c.send("AT+COPS=?\r")
	waitTimer(t, r.clk, n)
	r.clk.Advance(3 * time.Second)
	c.expect("+COPS: ,,(0,1,2,3,4),(0,1,2)")
}

// TestScenarioCoverageFlap: "coverage lost at 10 min" in microseconds.
func TestScenarioCoverageFlap(t *testing.T) {
	r := start(t, Config{Scenario: builtin(t, "coverage-flap")})
	c := r.c
	c.ok(`AT+CGDCONT=1,"IP","a"`)
	c.ok("AT+CREG=1;+CGREG=1;+CEREG=2;+CGEREP=2,1")
	c.ok("AT+CGACT=1,1")
	c.expect("+CGEV: ME PDN ACT 1")
	r.clk.Advance(10*time.Minute - time.Second)
	if u := c.urcs(); len(u) != 0 {
		t.Errorf("before 10m: %q", u)
	}
	r.clk.Advance(time.Second)
	if got, want := c.urcs(), []string{"+CREG: 2", "+CGREG: 2", "+CEREG: 2", "+CGEV: NW PDN DEACT 1"}; !slices.Equal(got, want) {
		t.Errorf("coverage lost: %q, want %q", got, want)
	}
	if got := r.data.take(); !slices.Equal(got, []string{"up 1", "down 1"}) {
		t.Errorf("DataUp calls %q", got)
	}
	c.want("AT+CSQ", "OK", "+CSQ: 99,99")
	c.want("AT+CGACT?", "OK", "+CGACT: 1,0")
	r.clk.Advance(2 * time.Minute)
	if got, want := c.urcs(), []string{"+CREG: 1", "+CGREG: 1", `+CEREG: 1,"1A2D","01A2B3C4",7`}; !slices.Equal(got, want) {
		t.Errorf("coverage back: %q, want %q", got, want)
	}
	// Contexts stay down until the host activates them again.
	c.want("AT+CGACT?", "OK", "+CGACT: 1,0")
	c.ok("AT+CGACT=1,1")
	c.expect("+CGEV: ME PDN ACT 1")
}

func TestScenarioNWDeact(t *testing.T) {
	r := start(t, Config{Scenario: builtin(t, "nw-deact")})
	c := r.c
	c.ok(`AT+CGDCONT=1,"IPV4V6","a";+CGEREP=1;+CGACT=1,1`)
	c.expect("+CGEV: ME PDN ACT 1")
	r.clk.Advance(5 * time.Minute)
	c.expect("+CGEV: NW PDN DEACT 1")
	c.want("AT+CGACT?", "OK", "+CGACT: 1,0")
	c.want("AT+CREG?", "OK", "+CREG: 0,1")
	if got := r.data.take(); !slices.Equal(got, []string{"up 1", "down 1"}) {
		t.Errorf("DataUp calls %q", got)
	}

	// On a UMTS network the event is the pre-release-10 form.
	u := start(t, Config{Tech: "umts", Scenario: builtin(t, "nw-deact")})
	u.c.ok(`AT+CGDCONT=1,"IP","a";+CGEREP=1;+CGACT=1,1`)
	u.c.expect("+CGEV: ME PDN ACT 1")
	u.clk.Advance(5 * time.Minute)
	u.c.expect(`+CGEV: NW DEACT "IP","100.64.1.2",1`)
}

func TestScenarioSlow(t *testing.T) {
	r := start(t, Config{Scenario: builtin(t, "slow")}, "echo")
	c := r.c
	// Even ATE0 takes its second; the echo comes at once.
	for _, step := range []struct {
		cmd  string
		wait time.Duration
	}{
		{"ATE0", time.Second},
		{"AT+CSQ", time.Second},
		{`AT+CGDCONT=1,"IP","a"`, time.Second},
		{"AT+CGACT=1,1", 10 * time.Second},
		{"AT+COPS=?", 30 * time.Second},
	} {
		n := r.clk.Pending()
		c.send(step.cmd + "\r")
		waitTimer(t, r.clk, n)
		r.clk.Advance(step.wait - time.Millisecond)
		if u := c.urcs(); len(u) > 1 || len(u) == 1 && u[0] != "ATE0" {
			t.Errorf("%s answered early: %q", step.cmd, u)
		}
		r.clk.Advance(time.Millisecond)
		c.expect("OK")
	}
}

func TestScenarioGarbage(t *testing.T) {
	r := start(t, Config{Scenario: builtin(t, "garbage")})
	c := r.c
	noise := 0
	for range 4 {
		r.clk.Advance(30 * time.Second)
		lines, final := c.cmd("AT+CSQ")
		if final != "OK" {
			t.Fatalf("after garbage: %q %s", lines, final)
		}
		for _, l := range lines {
			if l != "+CSQ: 20,99" {
				noise++
			}
		}
	}
	if noise == 0 {
		t.Error("no garbage seen")
	}
}

func TestScenarioEcho(t *testing.T) {
	r := start(t, Config{Scenario: builtin(t, "echo")}, "echo")
	c := r.c
	c.send("ATE0\r")
	raw(t, c, "ATE0\r\r\nOK\r\n")
	c.send("AT\r")
	raw(t, c, "AT\r\r\nOK\r\n")

	// "echo on" at a time: turned on behind the host's back.
	e := start(t, Config{Scenario: mustScenario(t, "at 1m echo on")})
	e.c.send("AT\r")
	raw(t, e.c, "\r\nOK\r\n")
	e.clk.Advance(time.Minute)
	e.c.send("AT\r")
	raw(t, e.c, "AT\r\r\nOK\r\n")

	// "echo off" without a time: a modem that starts with echo off.
	o := start(t, Config{Scenario: mustScenario(t, "echo off")}, "echo")
	o.c.send("AT\r")
	raw(t, o.c, "\r\nOK\r\n")
}

func TestScenarioPortFlapPipe(t *testing.T) {
	r := start(t, Config{Scenario: builtin(t, "port-flap")})
	c := r.c
	c.ok(`AT+CGDCONT=1,"IP","a";+CGACT=1,1;+CMEE=2`)
	r.clk.Advance(20 * time.Minute)
	if _, err := c.line(); !errors.Is(err, io.EOF) {
		t.Fatalf("port gone: read %v, want EOF", err)
	}
	if err := r.served(); !errors.Is(err, ErrPortGone) {
		t.Fatalf("Serve: %v", err)
	}
	r.clk.Advance(5 * time.Second)
	r.connect(t)
	// The generic modem says nothing on boot; its settings are fresh.
	r.c.want("AT+CMEE?", "OK", "+CMEE: 0")
	r.c.want("AT+CGACT?", "OK", "+CGACT: 1,0")
}

func TestScenarioHang(t *testing.T) {
	r := start(t, Config{Scenario: builtin(t, "hang")})
	c := r.c
	r.clk.Advance(5 * time.Minute)
	c.send("AT\r")
	if u := c.urcs(); len(u) != 0 {
		t.Errorf("a hung modem answered %q", u)
	}
	r.clk.Advance(time.Minute)
	c.want("AT", "OK")
}

func TestScenarioMisc(t *testing.T) {
	sc := mustScenario(t, `
act umts
at 1m roaming on
at 2m act lte
at 3m urc +QIND: "FOTA","START"
at 4m reset
`)
	r := start(t, Config{Scenario: sc, ResetTime: 10 * time.Second})
	c := r.c
	c.ok("AT+CREG=2")
	c.want("AT+CREG?", "OK", `+CREG: 2,1,"1A2D","01A2B3C4",2`)
	r.clk.Advance(time.Minute)
	c.expect(`+CREG: 5,"1A2D","01A2B3C4",2`)
	r.clk.Advance(time.Minute)
	c.expect(`+CREG: 5,"1A2D","01A2B3C4",7`)
	r.clk.Advance(time.Minute)
	c.expect(`+QIND: "FOTA","START"`)
	r.clk.Advance(time.Minute)
	if _, err := c.line(); !errors.Is(err, io.EOF) {
		t.Fatalf("reset: read %v, want EOF", err)
	}
	r.clk.Advance(10 * time.Second)
	r.connect(t)
	r.c.want("AT", "OK")
}

// TestEveryStopsAtClose: a repeating step does not outlive its modem.
func TestEveryStopsAtClose(t *testing.T) {
	r := start(t, Config{Scenario: builtin(t, "garbage")})
	r.clk.Advance(time.Minute)
	if r.clk.Pending() != 1 {
		t.Errorf("pending timers %d, want 1", r.clk.Pending())
	}
	r.m.Close()
	if r.clk.Pending() != 0 {
		t.Errorf("pending timers after Close %d", r.clk.Pending())
	}
}
