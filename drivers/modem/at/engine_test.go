package at

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// advanceUntil moves the fake clock in steps until ch has a result, for
// the tests in which the engine waits for time to pass more than once.
func (r *rig) advanceUntil(ch <-chan result, step time.Duration) result {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case res := <-ch:
			return res
		case <-time.After(2 * time.Millisecond):
			r.clk.Advance(step)
		}
	}
	r.t.Fatal("Do did not return")
	return result{}
}

func TestInitRunsAfterSync(t *testing.T) {
	init := []string{"ATE0", "AT+CMEE=2", "AT+CREG=2", "AT+CGREG=2", "AT+CEREG=2", "AT+CGEREP=2,1"}
	r := newRig(t, Config{Init: init}, func(m *fakeModem, cmd string) string {
		if cmd == "AT+CGEREP=2,1" {
			return lines("ERROR") // an init command the modem lacks is skipped
		}
		return okModem(m, cmd)
	})
	m := r.ready()
	for _, want := range append([]string{"AT"}, init...) {
		if got := m.next(t); got != want {
			t.Fatalf("modem received %q, want %q", got, want)
		}
	}
	if !strings.Contains(r.log.String(), "modem init command failed") {
		t.Errorf("the failed init command was not logged:\n%s", r.log)
	}
	if _, err := r.do("AT+CGMI"); err != nil {
		t.Fatal(err)
	}
}

func TestURCStormDuringCommand(t *testing.T) {
	const storm = 2000
	urc := func(i int) string { return fmt.Sprintf(`+CEREG: 1,"%04X","01A2D001",7`, i) }
	r := newRig(t, Config{}, func(m *fakeModem, cmd string) string {
		if cmd != "AT+COPS?" {
			return okModem(m, cmd)
		}
		var b strings.Builder
		for i := range storm {
			b.WriteString(lines(urc(i)))
			if i == storm/2 {
				b.WriteString(lines(`+COPS: 0,0,"Contoso",7`))
			}
		}
		b.WriteString(lines("OK"))
		return b.String()
	})
	slow, _ := r.eng.Subscribe("+CEREG") // never reads during the storm
	fast, stopFast := r.eng.Subscribe("+CEREG:", "+CREG")
	counted := make(chan int)
	go func() {
		n := 0
		for range fast {
			n++
		}
		counted <- n
	}()
	r.ready()

	start := time.Now()
	resp, err := r.do("AT+COPS?")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{`+COPS: 0,0,"Contoso",7`}; !slices.Equal(resp.Lines, want) {
		t.Errorf("lines %q, want %q", resp.Lines, want)
	}
	t.Logf("AT+COPS? with %d URCs around its answer took %v", storm, time.Since(start))

	// The slow subscriber kept the newest URCs.
	var got []string
	for len(got) < subBuffer+1 {
		select {
		case u := <-slow:
			got = append(got, u.Line)
			continue
		default:
		}
		break
	}
	if len(got) != subBuffer || got[0] != urc(storm-subBuffer) || got[len(got)-1] != urc(storm-1) {
		t.Errorf("slow subscriber got %d URCs from %q to %q, want the last %d", len(got), got[0], got[len(got)-1], subBuffer)
	}
	stopFast()
	t.Logf("fast subscriber got %d of %d", <-counted, storm)
	if n := strings.Count(r.log.String(), "URC subscriber too slow"); n < 1 || n > 2 {
		t.Errorf("%d log lines about slow subscribers, want one per subscriber (rate-limited)", n)
	}
	if _, err := r.do("AT"); err != nil {
		t.Fatal(err)
	}
}

// TestEndlessChatter: a modem that never stops sending lines does not
// starve the callers.
func TestEndlessChatter(t *testing.T) {
	r := newRig(t, Config{}, func(m *fakeModem, cmd string) string {
		if cmd == "AT+CGMI" {
			return lines("Contoso Wireless", "OK")
		}
		return okModem(m, cmd)
	})
	m := r.ready()
	stop := make(chan struct{})
	flooding := make(chan struct{})
	go func() {
		defer close(flooding)
		burst := strings.Repeat(lines("+CREG: 1", "RING")+"\x00\xff", 50)
		for {
			select {
			case <-stop:
				return
			default:
				m.write(burst)
			}
		}
	}()
	for range 20 {
		resp, err := r.do("AT+CGMI")
		if err != nil || !slices.Equal(resp.Lines, []string{"Contoso Wireless"}) {
			t.Fatalf("AT+CGMI during chatter: %d lines %.200q, %v", len(resp.Lines), resp.Lines, err)
		}
	}
	r.stop()
	close(stop)
	m.vanish() // a write blocked on the full pty returns
	<-flooding
}

func TestTimeoutThenLateAnswer(t *testing.T) {
	var late atomic.Bool
	r := newRig(t, Config{Timeout: 5 * time.Second}, func(m *fakeModem, cmd string) string {
		switch cmd {
		case "AT+CSQ":
			late.Store(true)
			return "" // answered late, with the probe's answer
		case "AT":
			if late.Swap(false) {
				return lines("+CSQ: 20,99", "OK") + lines("OK")
			}
		case "AT+CGMI":
			return lines("Contoso Wireless", "OK")
		}
		return okModem(m, cmd)
	})
	m := r.ready()
	ch := r.async(context.Background(), Command{Text: "AT+CSQ"})
	m.expect(t, "AT+CSQ")
	r.clk.Advance(5*time.Second - time.Millisecond)
	select {
	case res := <-ch:
		t.Fatalf("Do returned %v before its timeout", res.err)
	case <-time.After(20 * time.Millisecond):
	}
	r.clk.Advance(time.Millisecond)
	res := wait(t, ch)
	if !errors.Is(res.err, ErrTimeout) {
		t.Fatalf("error %v, want ErrTimeout", res.err)
	}
	m.expect(t, "AT") // the probe after a timeout

	// The next command waits for the late answer to drain and gets its
	// own answer, not the stale one.
	res = r.advanceUntil(r.async(context.Background(), Command{Text: "AT+CGMI"}), 50*time.Millisecond)
	if res.err != nil || !slices.Equal(res.resp.Lines, []string{"Contoso Wireless"}) {
		t.Fatalf("AT+CGMI after a timeout: %q, %v", res.resp.Lines, res.err)
	}
	if !strings.Contains(r.log.String(), "stray final result code dropped") {
		t.Errorf("the probe's own OK was not dropped as stray:\n%s", r.log)
	}
}

func TestCancelWhileQueued(t *testing.T) {
	release := make(chan struct{})
	r := newRig(t, Config{}, func(m *fakeModem, cmd string) string {
		if cmd == "AT+COPS=?" {
			<-release
			return lines(`+COPS: (2,"Contoso","Contoso","00101",7),,(0-4),(0-2)`, "OK")
		}
		return okModem(m, cmd)
	})
	m := r.ready()
	first := r.async(context.Background(), Command{Text: "AT+COPS=?"})
	m.expect(t, "AT+COPS=?")
	ctx, cancel := context.WithCancel(context.Background())
	queued := r.async(ctx, Command{Text: "AT+CSQ"})
	time.Sleep(20 * time.Millisecond)
	cancel()
	if res := wait(t, queued); !errors.Is(res.err, context.Canceled) {
		t.Fatalf("queued command: %v, want context.Canceled", res.err)
	}
	close(release)
	if res := wait(t, first); res.err != nil {
		t.Fatalf("command in flight: %v", res.err)
	}
	if _, err := r.do("AT+CGMI"); err != nil {
		t.Fatal(err)
	}
	m.expect(t, "AT+CGMI") // and never AT+CSQ
}

func TestCancelWhileInFlight(t *testing.T) {
	r := newRig(t, Config{}, func(m *fakeModem, cmd string) string {
		if cmd == "AT+COPS=?" || cmd == "" {
			return "" // the scan runs; the abort is answered by hand
		}
		return okModem(m, cmd)
	})
	m := r.ready()
	ctx, cancel := context.WithCancel(context.Background())
	scan := r.async(ctx, Command{Text: "AT+COPS=?"})
	m.expect(t, "AT+COPS=?")
	next := r.async(context.Background(), Command{Text: "AT+CSQ"})
	cancel()
	if res := wait(t, scan); !errors.Is(res.err, context.Canceled) {
		t.Fatalf("cancelled command: %v, want context.Canceled", res.err)
	}
	m.expect(t, "") // the character that aborts the scan
	// Until the modem has finished with the scan, nothing else is sent.
	m.quiet(t, 50*time.Millisecond)
	m.write(lines("OK"))
	m.expect(t, "AT+CSQ")
	if res := wait(t, next); res.err != nil {
		t.Fatal(res.err)
	}
}

func TestCancelAtThePrompt(t *testing.T) {
	r := newRig(t, Config{}, func(m *fakeModem, cmd string) string {
		switch {
		case strings.HasPrefix(cmd, "AT+CMGS="):
			return "" // the prompt comes when the test says
		case cmd == "\x1b":
			return lines("OK")
		}
		return okModem(m, cmd)
	})
	m := r.ready()
	ctx, cancel := context.WithCancel(context.Background())
	sms := r.async(ctx, Command{Text: `AT+CMGS="+15551234567"`, Prompt: "never sent"})
	m.expect(t, `AT+CMGS="+15551234567"`)
	cancel()
	if res := wait(t, sms); !errors.Is(res.err, context.Canceled) {
		t.Fatalf("cancelled SMS: %v", res.err)
	}
	m.write("\r\n> ")
	m.expect(t, "\x1b") // ESC, not the text
	if _, err := r.do("AT+CSQ"); err != nil {
		t.Fatal(err)
	}
	m.expect(t, "AT+CSQ")
}

func TestIdleLines(t *testing.T) {
	r := newRig(t, Config{}, okModem)
	urcs, _ := r.eng.Subscribe()
	m := r.ready()
	m.write(lines("OK", "+CREG: 2,1", "+XVENDOR: 7", "NO CARRIER", "+CREG: 1"))
	var got []string
	for len(got) < 3 {
		select {
		case u := <-urcs:
			got = append(got, u.Line)
		case <-time.After(5 * time.Second):
			t.Fatalf("URCs %q", got)
		}
	}
	// A stray OK and an answer to AT+CREG? are no URCs; an unknown line
	// is, when no command is in flight.
	if want := []string{"+XVENDOR: 7", "NO CARRIER", "+CREG: 1"}; !slices.Equal(got, want) {
		t.Errorf("URCs %q, want %q", got, want)
	}
}

func TestPortVanishes(t *testing.T) {
	init := []string{"ATE0", "AT+CMEE=2", "AT+CEREG=2"}
	r := newRig(t, Config{Init: init}, func(m *fakeModem, cmd string) string {
		if cmd == "AT+CSQ" {
			return "" // the modem resets before it answers
		}
		return okModem(m, cmd)
	})
	m := r.ready()
	for range 1 + len(init) {
		m.next(t)
	}
	inFlight := r.async(context.Background(), Command{Text: "AT+CSQ"})
	m.expect(t, "AT+CSQ")
	m.vanish()
	res := wait(t, inFlight)
	if !errors.Is(res.err, ErrPortLost) {
		t.Fatalf("command in flight when the port vanished: %v, want ErrPortLost", res.err)
	}
	if ev := r.event(Lost); ev.Err == nil {
		t.Error("Lost event without the error")
	}
	// A command queued while the port is away waits for the next Ready.
	queued := r.async(context.Background(), Command{Text: "AT+CGMI"})

	r.waitTimers(1)
	r.clk.Advance(time.Second - time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	if n := r.opens.Load(); n != 1 {
		t.Fatalf("reopened before the back-off: %d opens", n)
	}
	r.clk.Advance(time.Millisecond)
	m2 := r.modem()
	r.event(Ready)
	for _, want := range append([]string{"AT"}, init...) {
		if got := m2.next(t); got != want {
			t.Fatalf("after the reopen the modem received %q, want %q", got, want)
		}
	}
	if res := wait(t, queued); res.err != nil {
		t.Fatalf("queued command: %v", res.err)
	}
	m2.expect(t, "AT+CGMI")
}

func TestReopenBackoff(t *testing.T) {
	const failures = 7
	var calls atomic.Int32
	r := newRig(t, Config{}, okModem)
	r.eng.cfg.Open = func() (Port, error) {
		if calls.Add(1) <= failures {
			return nil, fmt.Errorf("open /dev/ttyUSB2: %w", os.ErrNotExist)
		}
		return r.open()
	}
	r.start()
	backoff := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i, d := range backoff {
		d *= time.Second
		r.waitTimers(1)
		r.clk.Advance(d - time.Millisecond)
		time.Sleep(10 * time.Millisecond)
		if n := calls.Load(); n != int32(i+1) {
			t.Fatalf("open %d came before its back-off of %v", n, d)
		}
		r.clk.Advance(time.Millisecond)
		deadline := time.Now().Add(5 * time.Second)
		for calls.Load() != int32(i+2) {
			if time.Now().After(deadline) {
				t.Fatalf("no open %d after a back-off of %v", i+2, d)
			}
			time.Sleep(time.Millisecond)
		}
	}
	r.modem()
	r.event(Ready)
}

func TestHungModem(t *testing.T) {
	for _, reset := range []bool{true, false} {
		t.Run(fmt.Sprintf("ResetOnHang=%v", reset), func(t *testing.T) {
			var hung atomic.Bool
			r := newRig(t, Config{Timeout: 5 * time.Second, ProbeEvery: 30 * time.Second, ResetOnHang: reset, Init: []string{"ATE0"}},
				func(m *fakeModem, cmd string) string {
					if hung.Load() {
						return ""
					}
					return okModem(m, cmd)
				})
			m := r.ready()
			m.expect(t, "ATE0")
			hung.Store(true)

			// Idle: the probe finds the modem silent, twice more, and
			// then the engine gives up on it.
			var events []Event
			deadline := time.Now().Add(10 * time.Second)
			for len(events) == 0 || events[len(events)-1].Kind != Lost {
				if time.Now().After(deadline) {
					t.Fatalf("no Lost event; events %v", events)
				}
				select {
				case ev := <-r.events:
					events = append(events, ev)
				case <-time.After(2 * time.Millisecond):
					r.clk.Advance(time.Second)
				}
			}
			want := []string{"AT", "AT", "AT"}
			wantEvents := []EventKind{Lost}
			if reset {
				want = append(want, "AT+CFUN=1,1")
				wantEvents = []EventKind{Reset, Lost}
			}
			// The fake modem's reader may still be behind the engine's
			// events on a loaded machine: wait for what is owed, then
			// take whatever else arrived.
			var got []string
			for range want {
				select {
				case c := <-m.cmds:
					got = append(got, c)
				case <-time.After(5 * time.Second):
				}
			}
			for len(m.cmds) > 0 {
				got = append(got, <-m.cmds)
			}
			if !slices.Equal(got, want) {
				t.Errorf("the hung modem received %q, want %q", got, want)
			}
			var kinds []EventKind
			for _, ev := range events {
				kinds = append(kinds, ev.Kind)
			}
			if !slices.Equal(kinds, wantEvents) {
				t.Errorf("events %v, want %v", kinds, wantEvents)
			}
			lost := events[len(events)-1]
			if !errors.Is(lost.Err, ErrHung) {
				t.Errorf("Lost with %v, want ErrHung", lost.Err)
			}
			// 30 s idle, then three probes of 5 s (and 5 s for the reset).
			if took := lost.At.Sub(epoch); took > 60*time.Second {
				t.Errorf("the hang was noticed after %v", took)
			}

			// The modem comes back; the engine reopens and inits it.
			hung.Store(false)
			r.waitTimers(1)
			r.clk.Advance(time.Second)
			m2 := r.modem()
			r.event(Ready)
			m2.expect(t, "AT")
			m2.expect(t, "ATE0")
		})
	}
}

func TestSecretsStayOutOfLogs(t *testing.T) {
	const pin, password = "8452", "pw-7731-x"
	r := newRig(t, Config{Timeout: 5 * time.Second}, func(m *fakeModem, cmd string) string {
		switch {
		case strings.HasPrefix(cmd, "AT+CPIN="):
			return lines("+CME ERROR: incorrect password")
		case strings.HasPrefix(cmd, "AT+CGAUTH="):
			return "" // times out
		}
		return okModem(m, cmd)
	})
	m := r.ready()
	m.echo.Store(true) // the modem echoes the secrets back

	_, err := r.eng.Do(context.Background(), Command{Text: `AT+CPIN="` + pin + `"`, Secret: true})
	if cme, ok := errors.AsType[*CMEError](err); !ok || cme.Code != 16 {
		t.Fatalf("wrong PIN: %v, want +CME ERROR 16", err)
	}
	if strings.Contains(err.Error(), pin) || !strings.Contains(err.Error(), "AT+CPIN=<hidden>") {
		t.Errorf("error %q", err)
	}

	m.expect(t, `AT+CPIN="`+pin+`"`)
	auth := r.async(context.Background(), Command{Text: `AT+CGAUTH=1,1,"openmifi","` + password + `"`, Secret: true})
	m.expect(t, `AT+CGAUTH=1,1,"openmifi","`+password+`"`)
	res := r.advanceUntil(auth, time.Second)
	if !errors.Is(res.err, ErrTimeout) || strings.Contains(res.err.Error(), password) {
		t.Errorf("timed-out secret command: %v", res.err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.eng.Do(ctx, Command{Text: `AT+CPIN="` + pin + `"`, Secret: true}); err == nil || strings.Contains(err.Error(), pin) {
		t.Errorf("cancelled secret command: %v", err)
	}
	if _, err := r.eng.Do(context.Background(), Command{Text: "AT+CPIN=" + pin + "\r", Secret: true}); err == nil || strings.Contains(err.Error(), pin) {
		t.Errorf("invalid secret command: %v", err)
	}
	r.stop()

	log := r.log.String()
	for _, secret := range []string{pin, password} {
		if strings.Contains(log, secret) {
			t.Errorf("the log shows %q:\n%s", secret, log)
		}
	}
	for _, want := range []string{"AT+CPIN=<hidden>", "AT+CGAUTH=<hidden>"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not show %q:\n%s", want, log)
		}
	}
}

func TestOverlongLines(t *testing.T) {
	r := newRig(t, Config{}, func(m *fakeModem, cmd string) string {
		if cmd == "AT+COPS=?" {
			return lines(strings.Repeat("(2,\"Contoso\"),", 500), "OK")
		}
		return okModem(m, cmd)
	})
	m := r.ready()
	urcs, _ := r.eng.Subscribe("+CREG")
	_, err := r.do("AT+COPS=?")
	if !errors.Is(err, ErrOverlong) {
		t.Fatalf("response with an overlong line: %v, want ErrOverlong", err)
	}
	// An overlong line while idle is dropped and the next URC arrives.
	m.write(lines(strings.Repeat("\xff", 3*MaxLine), "+CREG: 1"))
	select {
	case u := <-urcs:
		if u.Line != "+CREG: 1" {
			t.Errorf("URC %q", u.Line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no URC after an overlong line")
	}
	if _, err := r.do("AT+CSQ"); err != nil {
		t.Fatal(err)
	}
	if strings.Count(r.log.String(), "overlong line") != 2 {
		t.Errorf("overlong lines not logged:\n%s", r.log)
	}
}

func TestRunEndsEverything(t *testing.T) {
	r := newRig(t, Config{}, func(m *fakeModem, cmd string) string {
		if cmd == "AT+COPS=?" {
			return ""
		}
		return okModem(m, cmd)
	})
	urcs, _ := r.eng.Subscribe()
	m := r.ready()
	inFlight := r.async(context.Background(), Command{Text: "AT+COPS=?"})
	m.expect(t, "AT+COPS=?")
	queued := r.async(context.Background(), Command{Text: "AT+CSQ"})
	time.Sleep(20 * time.Millisecond)
	r.stop() // checks that no goroutine of the engine is left

	for _, ch := range []<-chan result{inFlight, queued} {
		if res := wait(t, ch); !errors.Is(res.err, ErrClosed) {
			t.Errorf("command pending when Run ended: %v, want ErrClosed", res.err)
		}
	}
	if _, err := r.do("AT"); !errors.Is(err, ErrClosed) {
		t.Errorf("Do after Run: %v, want ErrClosed", err)
	}
	for range r.events {
	}
	for range urcs {
	}
	late, stop := r.eng.Subscribe()
	stop()
	if _, open := <-late; open {
		t.Error("Subscribe after Run gave an open channel")
	}
	if err := r.eng.Run(context.Background()); err == nil {
		t.Error("second Run did not fail")
	}
}

func TestDoRefusesNonCommands(t *testing.T) {
	e := New(Config{})
	for _, cmd := range []Command{
		{Text: ""},
		{Text: "hello"},
		{Text: "ATE0\rAT+CFUN=0"},
		{Text: "AT+CMGS=\"1\"", Prompt: "text\x1aAT+CFUN=0"},
		{Text: "AT\n"},
	} {
		if _, err := e.Do(context.Background(), cmd); err == nil {
			t.Errorf("Do(%q) accepted", cmd.Text)
		}
	}
}

func TestSerialPort(t *testing.T) {
	master, slave := openPTY(t)
	// The engine opens the device itself. This descriptor stays open
	// because a pty master reads EIO while no slave is open, and the
	// modem would see that before the engine's open.
	defer slave.Close()
	device := slave.Name()
	m := startModem(master, func(m *fakeModem, cmd string) string {
		switch cmd {
		case "AT+CSQ":
			return lines("+CSQ: 17,99", "OK")
		case "AT+COPS?":
			return ""
		}
		return okModem(m, cmd)
	})
	defer m.vanish()
	r := newRig(t, Config{Open: Serial(device, 115200)}, nil)
	r.start()
	defer func() {
		if t.Failed() {
			t.Logf("log:\n%s", r.log)
		}
	}()
	r.event(Ready)
	// Idle across a few read timeouts of the serial port.
	time.Sleep(3 * serialReadTimeout / 2)
	resp, err := r.do("AT+CSQ")
	if err != nil || !slices.Equal(resp.Lines, []string{"+CSQ: 17,99"}) {
		t.Fatalf("AT+CSQ over the serial port: %q, %v", resp.Lines, err)
	}
	m.expect(t, "AT+CSQ")
	inFlight := r.async(context.Background(), Command{Text: "AT+COPS?"})
	m.expect(t, "AT+COPS?")
	m.vanish()
	if res := wait(t, inFlight); !errors.Is(res.err, ErrPortLost) {
		t.Errorf("command in flight when the tty went away: %v, want ErrPortLost", res.err)
	}
	r.event(Lost)
	start := time.Now()
	r.stop()
	if took := time.Since(start); took > 2*serialReadTimeout {
		t.Errorf("Run took %v to stop", took)
	}
	if _, err := Serial("/dev/nonexistent-tty", 115200)(); err == nil || !strings.Contains(err.Error(), "/dev/nonexistent-tty") {
		t.Errorf("opening a missing device: %v", err)
	}
}
