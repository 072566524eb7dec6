package modemsim

import (
	"errors"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSIMPIN(t *testing.T) {
	r := start(t, Config{PIN: "1234"})
	c := r.c
	c.ok("AT+CMEE=1")
	c.want("AT+CPIN?", "OK", "+CPIN: SIM PIN")
	c.want("AT+CIMI", "+CME ERROR: 11")
	c.want("AT+CREG?", "OK", "+CREG: 0,0")
	c.want("AT+COPS?", "OK", "+COPS: 0")
	c.want(`AT+CPIN="0000"`, "+CME ERROR: 16")
	c.want("AT+CPINR", "OK", "+CPINR: SIM PIN,2,3", "+CPINR: SIM PUK,10,10")
	c.want(`AT+CPINR="SIM PUK"`, "OK", "+CPINR: SIM PUK,10,10")
	c.want(`AT+CPIN="1234"`, "OK")
	c.want("AT+CPIN?", "OK", "+CPIN: READY")
	c.want("AT+CPINR", "OK", "+CPINR: SIM PIN,3,3", "+CPINR: SIM PUK,10,10")
	c.want("AT+CIMI", "OK", "001010123456789")
	c.want("AT+CREG?", "OK", "+CREG: 0,1")
	c.want(`AT+CPIN="1234"`, "+CME ERROR: 3")
	c.want(`AT+CPIN=`, "+CME ERROR: 50")
	// The generic dialect reports no SIM URCs.
	if u := c.urcs(); len(u) != 0 {
		t.Errorf("URCs %q", u)
	}
}

func TestSIMPUK(t *testing.T) {
	r := start(t, Config{Dialect: "quectel", PIN: "1111"})
	c := r.c
	// Quectel's +CMEE is 1 at power-on.
	c.want(`AT+CPIN="0000"`, "+CME ERROR: 16")
	c.want(`AT+CPIN="0000"`, "+CME ERROR: 16")
	c.want(`AT+QPINC="SC"`, "OK", `+QPINC: "SC",1,10`)
	c.want(`AT+CPIN="0000"`, "+CME ERROR: 16")
	c.expect("+CPIN: SIM PUK")
	c.want("AT+CPIN?", "OK", "+CPIN: SIM PUK")
	c.want(`AT+CPIN="1111"`, "+CME ERROR: 12")
	c.want(`AT+CPIN="00000000","2222"`, "+CME ERROR: 16")
	c.want(`AT+QPINC?`, "OK", `+QPINC: "SC",0,9`, `+QPINC: "P2",3,10`)
	c.want(`AT+CPIN="12345678","22"`, "+CME ERROR: 50")
	c.want(`AT+CPIN="12345678","2222"`, "OK")
	if got, want := c.urcs(), []string{"+CPIN: READY", "+QIND: SMS DONE", "+QIND: PB DONE"}; !slices.Equal(got, want) {
		t.Errorf("URCs after the PUK: %q, want %q", got, want)
	}
	c.want("AT+CPIN?", "OK", "+CPIN: READY")

	// After a reset the new PIN is the one asked for.
	c.ok("AT+CFUN=1,1")
	r.clk.Advance(3 * time.Second)
	r.connect(t)
	c = r.c
	c.expect("+QUSIM: 1")
	c.ok("ATE0")
	c.want("AT+CPIN?", "OK", "+CPIN: SIM PIN")
	c.want(`AT+CPIN="1111"`, "+CME ERROR: 16")
	c.ok(`AT+CPIN="2222"`)
}

func TestSIMBlocked(t *testing.T) {
	r := start(t, Config{PIN: "1111", Scenario: mustScenario(t, "sim puk")})
	c := r.c
	c.ok("AT+CMEE=2")
	c.want("AT+CPIN?", "OK", "+CPIN: SIM PUK")
	for range 9 {
		c.want(`AT+CPIN="00000000","2222"`, "+CME ERROR: incorrect password")
	}
	c.want("AT+CPINR", "OK", "+CPINR: SIM PIN,0,3", "+CPINR: SIM PUK,1,10")
	c.want(`AT+CPIN="00000000","2222"`, "+CME ERROR: incorrect password")
	c.want("AT+CPIN?", "+CME ERROR: SIM failure")
	c.want(`AT+CPIN="12345678","2222"`, "+CME ERROR: SIM failure")
	c.want("AT+CIMI", "+CME ERROR: SIM failure")
	c.want("AT+CREG?", "OK", "+CREG: 0,0")
}

func TestSIMAbsent(t *testing.T) {
	r := start(t, Config{Scenario: mustScenario(t, "sim absent")})
	c := r.c
	c.ok("AT+CMEE=1")
	c.want("AT+CPIN?", "+CME ERROR: 10")
	c.want("AT+CCID", "+CME ERROR: 10")
	c.want("AT+CIMI", "+CME ERROR: 10")
	c.want("AT+CREG?", "OK", "+CREG: 0,0")
	c.want("AT+CGSN", "OK", "356938035643809")
}

func TestRegistrationFormats(t *testing.T) {
	r := start(t, Config{})
	c := r.c
	for _, name := range []string{"+CREG", "+CGREG", "+CEREG"} {
		c.want("AT"+name+"?", "OK", name+": 0,1")
		c.ok("AT" + name + "=1")
		c.want("AT"+name+"?", "OK", name+": 1,1")
		c.ok("AT" + name + "=2")
		c.want("AT"+name+"?", "OK", name+`: 2,1,"1A2D","01A2B3C4",7`)
		c.ok("AT" + name + "=0")
		c.want("AT"+name+"?", "OK", name+": 0,1")
		c.want("AT"+name+"=3", "ERROR")
		c.want("AT"+name+"=?", "OK", name+": (0-2)")
	}
}

func TestRegistrationURCs(t *testing.T) {
	r := start(t, Config{})
	c := r.c
	c.ok("AT+CREG=1;+CGREG=2;+CEREG=2")
	c.ok("AT+COPS=2")
	if got, want := c.urcs(), []string{"+CREG: 0", "+CGREG: 0", "+CEREG: 0"}; !slices.Equal(got, want) {
		t.Errorf("after deregistration: %q, want %q", got, want)
	}
	c.want("AT+CEREG?", "OK", "+CEREG: 2,0")
	c.ok("AT+COPS=0")
	want := []string{"+CREG: 1", `+CGREG: 1,"1A2D","01A2B3C4",7`, `+CEREG: 1,"1A2D","01A2B3C4",7`}
	if got := c.urcs(); !slices.Equal(got, want) {
		t.Errorf("after registration: %q, want %q", got, want)
	}
}

func TestRegistrationDelayAndRoaming(t *testing.T) {
	r := start(t, Config{PIN: "1234", RegisterDelay: 30 * time.Second, Roaming: true})
	c := r.c
	c.ok("AT+CREG=1")
	c.ok(`AT+CPIN="1234"`)
	c.expect("+CREG: 2")
	c.want("AT+CREG?", "OK", "+CREG: 1,2")
	c.want("AT+CSQ", "OK", "+CSQ: 99,99")
	r.clk.Advance(30 * time.Second)
	c.expect("+CREG: 5")
	c.want("AT+CGREG?", "OK", "+CGREG: 0,5")
}

func TestOperator(t *testing.T) {
	r := start(t, Config{})
	c := r.c
	c.want("AT+COPS?", "OK", `+COPS: 0,0,"Test PLMN 1-1",7`)
	c.ok("AT+COPS=3,2")
	c.want("AT+COPS?", "OK", `+COPS: 0,2,"00101",7`)
	c.ok("AT+COPS=3,1")
	c.want("AT+COPS?", "OK", `+COPS: 0,1,"Test",7`)
	c.ok(`AT+COPS=1,2,"00101"`)
	c.want("AT+COPS?", "OK", `+COPS: 1,2,"00101",7`)
	c.ok("AT+CMEE=2")
	c.want(`AT+COPS=1,2,"00102"`, "+CME ERROR: network not allowed - emergency calls only")
	c.want(`AT+COPS=1,0,"Nowhere"`, "+CME ERROR: no network service")
	c.ok(`AT+COPS=4,2,"99999"`) // manual/automatic falls back
	c.want("AT+COPS?", "OK", `+COPS: 0,2,"00101",7`)
	c.ok("AT+COPS=2")
	c.want("AT+COPS?", "OK", "+COPS: 2")
	c.ok("AT+COPS=0")

	// The scan takes Config.ScanTime on the modem's clock.
	n := r.clk.Pending()
	c.send("AT+COPS=?\r")
	waitTimer(t, r.clk, n)
	r.clk.Advance(3 * time.Second)
	c.expect(`+COPS: (2,"Test PLMN 1-1","Test","00101",7),(3,"Forbidden PLMN","Forbidden","00102",7),,(0,1,2,3,4),(0,1,2)`)
	c.expect("OK")
}

func TestSignal(t *testing.T) {
	r := start(t, Config{})
	c := r.c
	c.want("AT+CSQ", "OK", "+CSQ: 20,99")
	c.want("AT+CSQ=?", "OK", "+CSQ: (0-31,99),(0-7,99)")
	c.want("AT+CESQ", "OK", "+CESQ: 99,99,255,255,20,48")
	c.ok("AT+CFUN=4")
	c.want("AT+CSQ", "OK", "+CSQ: 99,99")
	c.want("AT+CESQ", "OK", "+CESQ: 99,99,255,255,255,255")
	c.ok("AT+CFUN=1")

	g := start(t, Config{Tech: "gsm", RSSI: 10})
	g.c.want("AT+CESQ", "OK", "+CESQ: 18,0,255,255,255,255")
	g.c.want("AT+CEREG?", "OK", "+CEREG: 0,0")
	g.c.want("AT+CREG=2;+CREG?", "OK", `+CREG: 2,1,"1A2D","3C4D",0`)
}

func TestContexts(t *testing.T) {
	r := start(t, Config{})
	c := r.c
	c.want("AT+CGDCONT?", "OK")
	c.ok(`AT+CGDCONT=1,"IP","internet.example"`)
	c.ok(`AT+CGDCONT=2,"IPV4V6",""`)
	c.want("AT+CGDCONT?", "OK",
		`+CGDCONT: 1,"IP","internet.example","0.0.0.0",0,0`,
		`+CGDCONT: 2,"IPV4V6","","0.0.0.0",0,0`)
	c.want(`AT+CGDCONT=3,"X25","a"`, "ERROR")
	c.want(`AT+CGDCONT=16,"IP","a"`, "ERROR")
	c.ok(`AT+CGAUTH=1,2,"user","secret"`)
	c.want("AT+CGAUTH?", "OK", `+CGAUTH: 1,2,"user"`, `+CGAUTH: 2,0,""`)
	c.ok("AT+CGEREP=2,1")
	c.want("AT+CGEREP?", "OK", "+CGEREP: 2,1")
	c.want("AT+CGACT?", "OK", "+CGACT: 1,0", "+CGACT: 2,0")
	c.want("AT+CGPADDR=1", "OK", "+CGPADDR: 1")

	c.ok("AT+CGACT=1,1")
	c.expect("+CGEV: ME PDN ACT 1")
	if got := r.data.take(); !slices.Equal(got, []string{"up 1"}) {
		t.Errorf("DataUp calls %q", got)
	}
	c.want("AT+CGACT?", "OK", "+CGACT: 1,1", "+CGACT: 2,0")
	c.want("AT+CGPADDR=1", "OK", `+CGPADDR: 1,"100.64.1.2"`)
	c.want("AT+CGPADDR", "OK", `+CGPADDR: 1,"100.64.1.2"`, "+CGPADDR: 2")
	c.want("AT+CGCONTRDP=1", "OK",
		`+CGCONTRDP: 1,5,"internet.example","100.64.1.2.255.255.255.252","100.64.1.1","100.64.0.53","100.64.0.54"`)

	c.ok("AT+CGACT=1,2")
	c.expect("+CGEV: ME PDN ACT 2")
	c.want("AT+CGPADDR=2", "OK", `+CGPADDR: 2,"100.64.2.2","32.1.13.184.0.0.0.2.0.0.0.0.0.0.0.2"`)
	c.want("AT+CGCONTRDP=2", "OK",
		`+CGCONTRDP: 2,6,"internet","100.64.2.2.255.255.255.252","100.64.2.1","100.64.0.53","100.64.0.54"`,
		`+CGCONTRDP: 2,6,"internet","32.1.13.184.0.0.0.2.0.0.0.0.0.0.0.2.255.255.255.255.255.255.255.255.0.0.0.0.0.0.0.0","32.1.13.184.0.0.0.2.0.0.0.0.0.0.0.1","32.1.13.184.0.0.0.0.0.0.0.0.0.0.0.83"`)
	c.ok("AT+CGPIAF=1,1")
	c.want("AT+CGPIAF?", "OK", "+CGPIAF: 1,1,0,0")
	c.want("AT+CGPADDR=2", "OK", `+CGPADDR: 2,"100.64.2.2","2001:db8:0:2::2"`)
	c.want("AT+CGCONTRDP", "OK",
		`+CGCONTRDP: 1,5,"internet.example","100.64.1.2.255.255.255.252","100.64.1.1","100.64.0.53","100.64.0.54"`,
		`+CGCONTRDP: 2,6,"internet","100.64.2.2.255.255.255.252","100.64.2.1","100.64.0.53","100.64.0.54"`,
		`+CGCONTRDP: 2,6,"internet","2001:db8:0:2::2/64","2001:db8:0:2::1","2001:db8::53"`)
	c.ok("AT+CGPIAF=1,0")
	c.want("AT+CGCONTRDP=2", "OK",
		`+CGCONTRDP: 2,6,"internet","100.64.2.2.255.255.255.252","100.64.2.1","100.64.0.53","100.64.0.54"`,
		`+CGCONTRDP: 2,6,"internet","2001:db8:0:2::2 ffff:ffff:ffff:ffff::","2001:db8:0:2::1","2001:db8::53"`)

	c.want("AT+CGDCONT=1", "ERROR") // active: cannot be undefined
	c.ok("AT+CGACT=0,1")
	c.expect("+CGEV: ME PDN DEACT 1")
	c.want("AT+CGACT?", "OK", "+CGACT: 1,0", "+CGACT: 2,1")
	c.want("AT+CGACT=1,5", "ERROR")
	c.ok("AT+CGACT=0")
	c.expect("+CGEV: ME PDN DEACT 2")
	if got := r.data.take(); !slices.Equal(got, []string{"up 2", "down 1", "down 2"}) {
		t.Errorf("DataUp calls %q", got)
	}
	c.ok("AT+CGDCONT=1")
	c.want("AT+CGDCONT?", "OK", `+CGDCONT: 2,"IPV4V6","","0.0.0.0",0,0`)
}

func TestContextNeedsService(t *testing.T) {
	r := start(t, Config{MaxActive: 1})
	c := r.c
	c.ok("AT+CMEE=1")
	c.ok(`AT+CGDCONT=1,"IP","a";+CGDCONT=2,"IP","b"`)
	c.ok("AT+CGACT=1,1")
	c.want("AT+CGACT=1,2", "+CME ERROR: 3")
	c.ok("AT+CGEREP=1")
	c.ok("AT+CGATT=0")
	c.expect("+CGEV: ME DETACH")
	c.want("AT+CGATT?", "OK", "+CGATT: 0")
	c.want("AT+CGACT=1,1", "+CME ERROR: 30")
	c.ok("AT+CGATT=1")
	c.ok("AT+CFUN=0")
	c.expect("+CGEV: ME DETACH")
	c.want("AT+CGACT=1,2", "+CME ERROR: 30")
	if got := r.data.take(); !slices.Equal(got, []string{"up 1", "down 1"}) {
		t.Errorf("DataUp calls %q", got)
	}
}

func TestCMEE(t *testing.T) {
	r := start(t, Config{})
	c := r.c
	c.want("AT+CMEE?", "OK", "+CMEE: 0")
	c.want("AT+CMEE=?", "OK", "+CMEE: (0-2)")
	c.want("AT+CFUN=7", "ERROR")
	c.ok("AT+CMEE=1")
	c.want("AT+CFUN=7", "+CME ERROR: 50")
	c.ok("AT+CMEE=2")
	c.want("AT+CFUN=7", "+CME ERROR: Incorrect parameters")
	c.want("AT+CMEE=3", "+CME ERROR: Incorrect parameters")
	// An unknown command is ERROR whatever +CMEE says.
	c.want("AT+FOO", "ERROR")
	c.want("AT+CGMI?", "ERROR")
	c.ok("ATZ")
	c.want("AT+CMEE?", "OK", "+CMEE: 0")
}

// TestEcho checks the bytes: echo of the command line as it came,
// then the response framed by CR LF.
func TestEcho(t *testing.T) {
	r := start(t, Config{}, "echo")
	c := r.c
	c.send("AT+CSQ\r")
	raw(t, c, "AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
	c.send("ATE0\r")
	raw(t, c, "ATE0\r\r\nOK\r\n")
	c.send("AT+CSQ\r")
	raw(t, c, "\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
	c.send("ATE1\r")
	raw(t, c, "\r\nOK\r\n")
	c.send("AT\r")
	raw(t, c, "AT\r\r\nOK\r\n")
	c.send("ATE0V0\r")
	raw(t, c, "ATE0V0\r0\r")
	c.send("AT+CSQ\r")
	raw(t, c, "+CSQ: 20,99\r\n0\r")
	c.send("AT+FOO\r")
	raw(t, c, "4\r")
	c.send("ATV1\r")
	raw(t, c, "\r\nOK\r\n")
}

func raw(t *testing.T, c *client, want string) {
	t.Helper()
	c.rw.SetReadDeadline(time.Now().Add(ioTimeout))
	// The line reader stops at a CR and leaves the LF after it.
	if b, err := c.r.Peek(1); err == nil && b[0] == '\n' && !strings.HasPrefix(want, "\n") {
		c.r.ReadByte()
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c.r, got); err != nil {
		t.Fatalf("read %q: %v (got %q)", want, err, got)
	}
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestCommandLines(t *testing.T) {
	r := start(t, Config{})
	c := r.c
	c.want("AT+CGMI;+CGMM", "OK", "openmifi", "modemsim")
	c.want("at+cgmi; +cgmm ;E0V1", "OK", "openmifi", "modemsim")
	c.want("AT+CGMI;+NOPE;+CGMM", "ERROR", "openmifi")
	c.want(`AT+CGDCONT=1,"IP,"`, "ERROR")
	c.want("AT", "OK")
	c.want("ATS3?", "OK", "013")
	c.ok("ATS0=2")
	c.want("ATS0?", "OK", "002")
	c.want("ATD*99#", "NO CARRIER")
	c.want("ATQ1", "ERROR")

	// Noise before AT is ignored; a line without AT is not answered.
	c.want("xyzAT+CGMM", "OK", "modemsim")
	c.send("hello\r")
	c.want("AT", "OK")
	// Backspace edits the line; A/ repeats the last one.
	c.send("AT+CSX\bQ\r")
	c.expect("+CSQ: 20,99")
	c.expect("OK")
	c.send("A/")
	c.expect("+CSQ: 20,99")
	c.expect("OK")
	// An overlong line is refused once it ends.
	c.want("AT"+strings.Repeat("X", 2000), "ERROR")
	c.want("AT", "OK")
}

func TestFunctionality(t *testing.T) {
	r := start(t, Config{})
	c := r.c
	c.ok(`AT+CGDCONT=1,"IP","a"`)
	c.ok("AT+CGACT=1,1")
	c.ok("AT+CGEREP=1;+CREG=1")
	c.want("AT+CFUN?", "OK", "+CFUN: 1")
	c.want("AT+CFUN=?", "OK", "+CFUN: (0,1,4),(0-1)")
	c.ok("AT+CFUN=4")
	if got, want := c.urcs(), []string{"+CREG: 0", "+CGEV: ME DETACH"}; !slices.Equal(got, want) {
		t.Errorf("airplane mode: %q, want %q", got, want)
	}
	c.want("AT+CFUN?", "OK", "+CFUN: 4")
	c.want("AT+CGACT?", "OK", "+CGACT: 1,0")
	c.ok("AT+CFUN=1")
	c.expect("+CREG: 1")
	if got := r.data.take(); !slices.Equal(got, []string{"up 1", "down 1"}) {
		t.Errorf("DataUp calls %q", got)
	}
}

// TestReset: AT+CFUN=1,1 answers OK, drops the port, and the modem comes
// back powered on afresh with its boot URCs.
func TestReset(t *testing.T) {
	r := start(t, Config{Dialect: "quectel"})
	c := r.c
	c.ok("AT+CGACT=1,1;+QNETDEVCTL=1,1,0")
	c.ok("AT+CMEE=2;+CREG=1")
	c.ok("AT+CFUN=1,1")
	if l, err := c.line(); !errors.Is(err, io.EOF) {
		t.Fatalf("after reset: %q, %v; want EOF", l, err)
	}
	if err := r.served(); !errors.Is(err, ErrPortGone) {
		t.Errorf("Serve: %v, want ErrPortGone", err)
	}
	if got := r.data.take(); !slices.Equal(got, []string{"up 1", "down 1"}) {
		t.Errorf("DataUp calls %q", got)
	}
	// While it is gone, a new session ends at once.
	r.connect(t)
	if err := r.served(); !errors.Is(err, ErrPortGone) {
		t.Errorf("Serve while gone: %v, want ErrPortGone", err)
	}
	r.clk.Advance(3 * time.Second)
	r.connect(t)
	c = r.c
	want := []string{"RDY", "+CFUN: 1", "+CPIN: READY", "+QUSIM: 1", "+QIND: SMS DONE", "+QIND: PB DONE"}
	if got := c.urcs(); !slices.Equal(got, want) {
		t.Errorf("boot URCs %q, want %q", got, want)
	}
	// Settings are back to their defaults: echo on, +CMEE 1, +CREG 0.
	c.send("AT+CMEE?\r")
	c.expect("AT+CMEE?")
	c.expect("+CMEE: 1")
	c.expect("OK")
	c.ok("ATE0")
	c.want("AT+CREG?", "OK", "+CREG: 0,1")
	c.want("AT+CGACT?", "OK", "+CGACT: 1,0")
}

// TestURCBetweenCommandAndResponse: a slow command's response comes
// after what happened while it ran.
func TestURCBetweenCommandAndResponse(t *testing.T) {
	sc := mustScenario(t, "slow 10s +CGACT=\nat 5s urc +TEST: between")
	r := start(t, Config{Scenario: sc})
	c := r.c
	c.ok(`AT+CGDCONT=1,"IP","a";+CGEREP=1`)
	n := r.clk.Pending()
	c.send("AT+CGACT=1,1\r")
	waitTimer(t, r.clk, n)
	r.clk.Advance(10 * time.Second)
	for _, want := range []string{"+TEST: between", "OK", "+CGEV: ME PDN ACT 1"} {
		if got := c.mustLine(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestDialects(t *testing.T) {
	names := Dialects()
	if !slices.Equal(names, []string{"generic", "quectel", "simcom"}) {
		t.Errorf("Dialects() = %q", names)
	}
}

// TestLease: a Config.Lease that leaves addresses out gets the defaults
// rather than a broken response.
func TestLease(t *testing.T) {
	r := start(t, Config{Dialect: "simcom", PLMN: "1", Lease: func(cid int) Lease {
		if cid == 1 {
			return Lease{}
		}
		return Lease{Addr4: netip.MustParsePrefix("10.9.8.7/24"), Gateway4: netip.MustParseAddr("10.9.8.1")}
	}})
	c := r.c
	c.ok(`AT+CGDCONT=2,"IP","x";+CGACT=1,1;+CGACT=1,2`)
	c.want("AT+CGPADDR", "OK", "+CGPADDR: 1,100.64.1.2,32.1.13.184.0.0.0.1.0.0.0.0.0.0.0.2", "+CGPADDR: 2,10.9.8.7")
	c.want("AT+CGCONTRDP=2", "OK", `+CGCONTRDP: 2,6,"x","10.9.8.7.255.255.255.0","10.9.8.1"`)
	c.want("AT+CPSI?", "OK", "+CPSI: LTE,Online,1,0x1A2D,27446255,257,EUTRAN-BAND3,1300,5,5,-100,-930,-730,15")
}
