package at

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func splitAll(data string, chunk int) []token {
	var s splitter
	var out []token
	b := []byte(data)
	for len(b) > 0 {
		n := min(chunk, len(b))
		out = append(out, s.feed(b[:n], false)...)
		b = b[n:]
	}
	return out
}

func texts(ts []token) []string {
	var out []string
	for _, t := range ts {
		switch {
		case t.overlong:
			out = append(out, "<overlong>")
		case t.prompt:
			out = append(out, "<prompt>")
		default:
			out = append(out, t.text)
		}
	}
	return out
}

func TestSplitter(t *testing.T) {
	long := strings.Repeat("x", MaxLine)
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"crlf", "\r\n+CSQ: 20,99\r\n\r\nOK\r\n", []string{"+CSQ: 20,99", "OK"}},
		{"lf", "\n+CSQ: 20,99\n\nOK\n", []string{"+CSQ: 20,99", "OK"}},
		{"cr", "AT+CSQ\r\r+CSQ: 20,99\rOK\r", []string{"AT+CSQ", "+CSQ: 20,99", "OK"}},
		{"nul and noise", "\x00\xff\r\nO\x00K\r\n\x1b[0m\r\n", []string{"OK", "[0m"}},
		{"utf-8 kept", "+COPS: 0,0,\"Télé\",7\r\n", []string{"+COPS: 0,0,\"Télé\",7"}},
		{"tabs and spaces", "\t +CME ERROR: 10 \r\n", []string{"+CME ERROR: 10"}},
		{"no end yet", "OK", nil},
		{"longest line", long + "\r\n", []string{long}},
		{"overlong", long + "yy\r\nOK\r\n", []string{"<overlong>", "OK"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{1, 3, 7, 4096} {
				if got := texts(splitAll(tc.in, chunk)); !slices.Equal(got, tc.want) {
					t.Errorf("chunks of %d: %q, want %q", chunk, got, tc.want)
				}
			}
		})
	}
}

func TestSplitterPrompt(t *testing.T) {
	var s splitter
	if got := texts(s.feed([]byte("\r\n> "), true)); !slices.Equal(got, []string{"<prompt>"}) {
		t.Errorf("prompt: %q", got)
	}
	if got := texts(s.feed([]byte("\r\n+CMGS: 4\r\n"), true)); !slices.Equal(got, []string{"+CMGS: 4"}) {
		t.Errorf("after the prompt: %q", got)
	}
	var s2 splitter
	if got := texts(s2.feed([]byte("\r\n> "), false)); got != nil {
		t.Errorf("prompt reported when none is expected: %q", got)
	}
}

func TestParseFinal(t *testing.T) {
	for _, tc := range []struct {
		line  string
		final bool
		err   error
	}{
		{"OK", true, nil},
		{"CONNECT", true, nil},
		{"CONNECT 150000000", true, nil},
		{"ERROR", true, ErrError},
		{"NO CARRIER", true, ErrNoCarrier},
		{"BUSY", true, ErrBusy},
		{"NO ANSWER", true, ErrNoAnswer},
		{"NO DIALTONE", true, ErrNoDialtone},
		{"+CME ERROR: 10", true, &CMEError{Code: 10, Text: "SIM not inserted"}},
		{"+CME ERROR:10", true, &CMEError{Code: 10, Text: "SIM not inserted"}},
		{"+CME ERROR: SIM PIN required", true, &CMEError{Code: 11, Text: "SIM PIN required"}},
		{"+CME ERROR: sim pin required", true, &CMEError{Code: 11, Text: "SIM PIN required"}},
		{"+CME ERROR: PH_SIM PIN required", true, &CMEError{Code: 5, Text: "PH-SIM PIN required"}},
		{"+CME ERROR: Unknown error", true, &CMEError{Code: 100, Text: "unknown"}},
		{"+CME ERROR: 9999", true, &CMEError{Code: 9999}},
		{"+CME ERROR: flux capacitor", true, &CMEError{Code: -1, Text: "flux capacitor"}},
		{"+CMS ERROR: 321", true, &CMSError{Code: 321, Text: "invalid memory index"}},
		{"+CMS ERROR: 38", true, &CMSError{Code: 38}},
		{"+CMS ERROR: memory full", true, &CMSError{Code: 322, Text: "memory full"}},
		{"OKAY", false, nil},
		{"CONNECTED", false, nil},
		{"+CREG: 1", false, nil},
		{"RING", false, nil},
	} {
		final, err := parseFinal(tc.line)
		if final != tc.final || !sameErr(err, tc.err) {
			t.Errorf("parseFinal(%q) = %v, %#v; want %v, %#v", tc.line, final, err, tc.final, tc.err)
		}
	}
}

func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	if ae, ok := a.(*CMEError); ok {
		be, ok := b.(*CMEError)
		return ok && *ae == *be
	}
	if ae, ok := a.(*CMSError); ok {
		be, ok := b.(*CMSError)
		return ok && *ae == *be
	}
	return errors.Is(a, b)
}

// TestCMETable checks that every code maps to its text and back, in both
// of the forms modems print.
func TestCMETable(t *testing.T) {
	for code, text := range cmeText {
		for _, arg := range []string{strconv.Itoa(code), text, strings.ToUpper(text), " " + text + " "} {
			if e := parseCME(arg); e.Code != code || e.Text != text {
				t.Errorf("parseCME(%q) = %+v, want %d %q", arg, e, code, text)
			}
		}
	}
	for code, text := range cmsText {
		for _, arg := range []string{strconv.Itoa(code), text} {
			if e := parseCMS(arg); e.Code != code || e.Text != text {
				t.Errorf("parseCMS(%q) = %+v, want %d %q", arg, e, code, text)
			}
		}
	}
	if got := (&CMEError{Code: 10, Text: "SIM not inserted"}).Error(); got != "+CME ERROR: 10 (SIM not inserted)" {
		t.Errorf("Error() = %q", got)
	}
}

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		text  string
		names []cmdName
		dial  bool
	}{
		{"AT", nil, false},
		{"ATE0", nil, false},
		{"AT&D2", nil, false},
		{"AT+CREG?", []cmdName{{"+CREG", formRead}}, false},
		{"at+creg?", []cmdName{{"+CREG", formRead}}, false},
		{"AT+COPS=?", []cmdName{{"+COPS", formTest}}, false},
		{"AT+CGDCONT=1,\"IP\",\"a;b\"", []cmdName{{"+CGDCONT", formSet}}, false},
		{"AT+CGMI", []cmdName{{"+CGMI", formExec}}, false},
		{"AT+CREG?;+CGREG?", []cmdName{{"+CREG", formRead}, {"+CGREG", formRead}}, false},
		{"ATE0+CMEE=2", []cmdName{{"+CMEE", formSet}}, false},
		{"AT^SYSINFO", []cmdName{{"^SYSINFO", formExec}}, false},
		{"AT$QCRMCALL=1,1", []cmdName{{"$QCRMCALL", formSet}}, false},
		{"ATD*99#", nil, true},
		{"ATD+4912345;", nil, true},
		{"ATA", nil, true},
	} {
		names, dial := parseCommand(tc.text)
		if !slices.Equal(names, tc.names) || dial != tc.dial {
			t.Errorf("parseCommand(%q) = %v, %v; want %v, %v", tc.text, names, dial, tc.names, tc.dial)
		}
	}
}

func TestTimeouts(t *testing.T) {
	def := 5 * time.Second
	for text, want := range map[string]time.Duration{
		"AT+CSQ":                def,
		"AT+COPS?":              def,
		"AT+COPS=?":             180 * time.Second,
		"AT+COPS=1,2,\"26201\"": 180 * time.Second,
		"AT+CGACT=1,1":          150 * time.Second,
		"AT+CGATT=1":            140 * time.Second,
		"AT+CFUN=1,1":           60 * time.Second,
		"ATD*99#":               dialTimeout,
	} {
		if got := newExchange(Command{Text: text}, nil).timeout(def); got != want {
			t.Errorf("timeout of %s = %v, want %v", text, got, want)
		}
	}
}

// TestTake is the URC/answer disambiguation, line by line.
func TestTake(t *testing.T) {
	e := New(Config{URCPrefixes: []string{"+XVENDOR:"}})
	for _, tc := range []struct {
		cmd, line string
		want      lineKind
	}{
		{"AT+CREG?", "+CREG: 2,1,\"00C3\",\"0000A13B\",7", kindAnswer},
		{"AT+CREG?", "+CREG: 0,1", kindAnswer},
		{"AT+CREG?", "+CREG: 1", kindURC},
		{"AT+CREG?", "+CREG: 1,\"00C3\",\"0000A13B\",7", kindURC},
		{"AT+CREG?", "+CREG: 1,,,7", kindURC},
		{"AT+CREG=?", "+CREG: (0-2)", kindAnswer},
		{"AT+CREG=2", "+CREG: 2", kindURC},
		{"AT+CEREG?", "+CEREG: 2,5,\"1A2B\",\"01A2D001\",7", kindAnswer},
		{"AT+CEREG?", "+CREG: 5", kindURC},
		{"AT+COPS?", "+CREG: 1", kindURC},
		{"AT+COPS?", "+COPS: 0,0,\"Contoso\",7", kindAnswer},
		{"AT+CPIN?", "+CPIN: READY", kindAnswer},
		{"AT+CPIN=\"1234\"", "+CPIN: READY", kindURC},
		{"AT+CPIN=\"1234\"", "AT+CPIN=\"1234\"", kindEcho},
		{"AT+CSQ", "at+csq", kindEcho},
		{"AT+CUSD=1,\"*100#\",15", "+CUSD: 0,\"Balance\",15", kindURC},
		{"AT+CUSD?", "+CUSD: 1", kindAnswer},
		{"AT+CGMI", "Quectel", kindAnswer},
		{"AT+CICCID", "+ICCID: 8986", kindAnswer},
		{"AT+CSQ", "RING", kindURC},
		{"AT+CSQ", "+QIND: \"csq\",20,99", kindURC},
		{"AT+CSQ", "+XVENDOR: 1", kindURC},
		{"AT+CSQ", "+XOTHER: 1", kindAnswer},
		{"AT+CSQ", "+CGEV: NW DETACH", kindURC},
		{"AT+CSQ", "^SYSSTART", kindURC},
		{"AT+CSQ", "OK", kindFinal},
		{"ATD*99#", "NO CARRIER", kindFinal},
	} {
		x := newExchange(Command{Text: tc.cmd}, e.isURC)
		if got := x.take(tc.line); got != tc.want {
			t.Errorf("%s: %q is %v, want %v", tc.cmd, tc.line, got, tc.want)
		}
	}
}

func TestEchoOnlyBeforeTheAnswer(t *testing.T) {
	x := newExchange(Command{Text: "ATI"}, New(Config{}).isURC)
	for _, l := range []string{"ATI", "Quectel", "ATI", "OK"} {
		x.take(l)
	}
	if !slices.Equal(x.lines, []string{"Quectel", "ATI"}) || x.final != "OK" {
		t.Errorf("lines %q, final %q", x.lines, x.final)
	}
}

func TestSplitName(t *testing.T) {
	for _, tc := range []struct{ line, name, args string }{
		{"+CREG: 1", "+CREG", "1"},
		{"+CREG:1", "+CREG", "1"},
		{"+QIND: SMS DONE", "+QIND", "SMS DONE"},
		{"^SYSSTART", "^SYSSTART", ""},
		{"^SYSSTART AIRPLANE MODE", "^SYSSTART", "AIRPLANE MODE"},
		{"RING", "RING", ""},
		{"SMS DONE", "SMS DONE", ""},
		{"Revision: EC25EFAR06A06M4G", "Revision: EC25EFAR06A06M4G", ""},
	} {
		if name, args := splitName(tc.line); name != tc.name || args != tc.args {
			t.Errorf("splitName(%q) = %q, %q; want %q, %q", tc.line, name, args, tc.name, tc.args)
		}
	}
}

func TestFields(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"1", []string{"1"}},
		{`2,1,"00C3","0000A13B",7`, []string{"2", "1", "00C3", "0000A13B", "7"}},
		{`0,"a,b" , 3`, []string{"0", "a,b", "3"}},
		{`(2,"A","A","00101",7),,(0-4),(0,1)`, []string{`(2,"A","A","00101",7)`, "", "(0-4)", "(0,1)"}},
		{`"unterminated,x`, []string{`"unterminated,x`}},
	} {
		if got := Fields(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Fields(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct {
		cmd  Command
		want string
	}{
		{Command{Text: "AT+CPIN=\"1234\""}, "AT+CPIN=\"1234\""},
		{Command{Text: "AT+CPIN=\"1234\"", Secret: true}, "AT+CPIN=<hidden>"},
		{Command{Text: "AT+CGAUTH=1,1,\"u\",\"p\"", Secret: true}, "AT+CGAUTH=<hidden>"},
		{Command{Text: "AT+QSECRET", Secret: true}, "AT+QSECRET<hidden>"},
		{Command{Text: "ATD*99***1#", Secret: true}, "AT<hidden>"},
	} {
		if got := redact(tc.cmd); got != tc.want {
			t.Errorf("redact(%q) = %q, want %q", tc.cmd.Text, got, tc.want)
		}
	}
}
