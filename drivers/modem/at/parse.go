package at

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxLine is the longest line the engine accepts from the modem. The
// longest legitimate lines are +COPS=? operator lists and SMS PDUs, a few
// hundred bytes; anything longer is noise or a modem gone mad, and
// buffering it without limit would let the modem exhaust our memory.
const MaxLine = 4096

// token is what the splitter makes of the byte stream.
type token struct {
	text     string // a cleaned, non-empty line
	overlong bool   // a line longer than MaxLine was dropped
	prompt   bool   // the "> " data prompt (+CMGS and friends)
	err      error  // the port failed; the last token of a session
}

// splitter cuts the modem's byte stream into lines. V.250 frames every
// result with <CR><LF>, an echo ends with <CR> alone, and some firmwares
// end lines with a bare <LF>: any CR or LF ends a line and empty lines are
// skipped, so all three work.
type splitter struct {
	buf     []byte
	discard bool // in the middle of an overlong line
}

// feed consumes p and returns the tokens it completes. wantPrompt says a
// command waits for the "> " prompt, which has no line end: it is reported
// as soon as it is all the modem has sent.
func (s *splitter) feed(p []byte, wantPrompt bool) []token {
	var out []token
	for _, b := range p {
		if b == '\r' || b == '\n' {
			if s.discard {
				s.discard = false
				continue
			}
			if line := clean(s.buf); line != "" {
				out = append(out, token{text: line})
			}
			s.buf = s.buf[:0]
			continue
		}
		if s.discard {
			continue
		}
		if len(s.buf) >= MaxLine {
			s.discard = true
			s.buf = s.buf[:0]
			out = append(out, token{overlong: true})
			continue
		}
		s.buf = append(s.buf, b)
	}
	if wantPrompt && !s.discard && strings.TrimSpace(clean(s.buf)) == ">" {
		s.buf = s.buf[:0]
		out = append(out, token{prompt: true})
	}
	return out
}

// clean drops what cannot be part of a result: NULs and other control
// bytes (line noise, a modem booting at another baud rate) and bytes that
// are not UTF-8. Operator names may legitimately be UTF-8, so valid
// multi-byte characters stay.
func clean(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && size <= 1:
			// invalid byte: skip it
		case r == '\t':
			sb.WriteByte(' ')
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
			// control character
		default:
			sb.Write(b[:size])
		}
		b = b[size:]
	}
	return strings.TrimSpace(sb.String())
}

// parseFinal reports whether line is a final result code (V.250 §5.7.1,
// 27.007 §9.2, 27.005 §3.2.5) and the error it stands for. Only the verbose
// form (ATV1) is recognised: the numeric one ("0", "4") is
// indistinguishable from information text such as the IMSI.
func parseFinal(line string) (bool, error) {
	switch line {
	case "OK":
		return true, nil
	case "ERROR":
		return true, ErrError
	case "NO CARRIER":
		return true, ErrNoCarrier
	case "BUSY":
		return true, ErrBusy
	case "NO ANSWER":
		return true, ErrNoAnswer
	case "NO DIALTONE", "NO DIAL TONE":
		return true, ErrNoDialtone
	}
	if line == "CONNECT" || strings.HasPrefix(line, "CONNECT ") {
		return true, nil
	}
	if arg, ok := strings.CutPrefix(line, "+CME ERROR:"); ok {
		return true, parseCME(arg)
	}
	if arg, ok := strings.CutPrefix(line, "+CMS ERROR:"); ok {
		return true, parseCMS(arg)
	}
	return false, nil
}

// namePrefixes start the names of extended commands and of the results
// named after them: + for 3GPP, and the vendors' ^ (Huawei, Cinterion),
// $ (Qualcomm), # (Telit), % (Nordic), * (Sierra, SIMCom).
const namePrefixes = "+^$#%*"

// splitName cuts a result line into its name and arguments: "+CREG: 1"
// is ("+CREG", "1"), "^SYSSTART AIRPLANE MODE" is ("^SYSSTART", "AIRPLANE
// MODE"), and a line without a name prefix is all name: "RING", "SMS DONE".
func splitName(line string) (name, args string) {
	if line == "" || !strings.ContainsRune(namePrefixes, rune(line[0])) {
		return line, ""
	}
	i := strings.IndexAny(line, ": ")
	if i < 0 {
		return line, ""
	}
	return line[:i], strings.TrimSpace(line[i+1:])
}

// parseURC makes a URC of a line; ok is false for lines that cannot be
// one (finals other than NO CARRIER, empty lines).
func parseURC(line string, at time.Time) (URC, bool) {
	if line == "" {
		return URC{}, false
	}
	if final, _ := parseFinal(line); final && line != "NO CARRIER" {
		return URC{}, false
	}
	name, args := splitName(line)
	return URC{Name: name, Args: args, Line: line, At: at}, true
}

// defaultURCs are the unsolicited result codes the engine recognises in the
// middle of a response. 3GPP ones (TS 27.007, 27.005) first, then those
// of the modems we ship: Quectel (RDY, +QIND, +QUSIM...), SIMCom (SMS
// DONE, +CNSMOD...), and the common Huawei/Cinterion ^ ones. Boards add
// others with Config.URCPrefixes.
var defaultURCs = []string{
	// registration and packet domain
	"+CREG", "+CGREG", "+CEREG", "+C5GREG", "+CGEV",
	// SIM and functionality
	"+CPIN", "+CFUN",
	// calls and supplementary services
	"RING", "+CRING", "+CLIP", "+CCWA", "+CSSI", "+CSSU", "+CUSD", "NO CARRIER",
	// SMS and cell broadcast
	"+CMTI", "+CMT", "+CDSI", "+CDS", "+CBM",
	// indicators and time zone
	"+CIEV", "+CTZV", "+CTZE", "+CTZEU",
	// Quectel
	"RDY", "POWERED DOWN", "+QIND", "+QUSIM", "+QSIMSTAT", "+QIURC", "+QNETDEVSTATUS",
	// SIMCom
	"SMS DONE", "PB DONE", "+CNSMOD", "+CPSI", "+SIMCARD", "*PSUTTZ", "+PSUTTZ",
	// Huawei, Cinterion
	"^SYSSTART", "^SHUTDOWN", "^SIMST", "^MODE", "^RSSI", "^HCSQ", "^NDISSTAT",
}

// regNames are the registration results whose read answer and URC share a
// name and differ only in shape; see isRegAnswer.
var regNames = map[string]bool{"+CREG": true, "+CGREG": true, "+CEREG": true, "+C5GREG": true}

// isRegAnswer tells the answer to AT+CREG? ("+CREG: <n>,<stat>[,<lac>,...]")
// from the URC ("+CREG: <stat>[,<lac>,<ci>[,<AcT>]]"), which share a name.
// The answer starts with two bare numbers; the URC has one number alone or
// followed by the quoted (or empty) location area code.
func isRegAnswer(args string) bool {
	f := splitFields(args)
	return len(f) >= 2 && isDigits(f[0]) && isDigits(f[1])
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Fields splits the arguments of a result ("2,1,\"1A2B\",\"01A2D001\",7")
// at the commas that are neither inside double quotes nor inside
// parentheses (the ranges of test command answers), trims spaces and
// removes the quotes around each field.
func Fields(args string) []string {
	f := splitFields(args)
	for i, s := range f {
		if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
			f[i] = s[1 : len(s)-1]
		}
	}
	return f
}

// splitFields is Fields without the unquoting.
func splitFields(args string) []string {
	args = strings.TrimSpace(args)
	if args == "" {
		return nil
	}
	var out []string
	quoted, depth, start := false, 0, 0
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case '"':
			quoted = !quoted
		case '(':
			if !quoted {
				depth++
			}
		case ')':
			if !quoted && depth > 0 {
				depth--
			}
		case ',':
			if !quoted && depth == 0 {
				out = append(out, strings.TrimSpace(args[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(args[start:]))
}

// form is how a command line uses an extended command (V.250 §5.4.2).
type form int

const (
	formExec form = iota // AT+CGMI
	formRead             // AT+CREG?
	formTest             // AT+COPS=?
	formSet              // AT+CREG=2
)

type cmdName struct {
	name string
	form form
}

// parseCommand lists the extended commands on a command line ("AT+CREG?;
// +CGREG?" has two) and whether it dials or answers: their names are how
// the engine recognises the lines that answer the command.
func parseCommand(text string) (names []cmdName, dial bool) {
	s := text
	if len(s) >= 2 && strings.EqualFold(s[:2], "AT") {
		s = s[2:]
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case strings.IndexByte(namePrefixes, c) >= 0:
			j := i + 1
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			n := cmdName{name: strings.ToUpper(s[i:j])}
			rest := s[j:]
			switch {
			case strings.HasPrefix(rest, "=?"):
				n.form = formTest
			case strings.HasPrefix(rest, "?"):
				n.form = formRead
			case strings.HasPrefix(rest, "="):
				n.form = formSet
			}
			names = append(names, n)
			i = j + skipArgs(s[j:])
		case c == '&' || c == '\\':
			i += 2 // &D2, &F, \Q3: the letter is not a command of its own
		case c == 'D' || c == 'd' || c == 'A' || c == 'a':
			// D dials, and the rest of the line is the dial string, which
			// may hold '+'. A answers. Both end in CONNECT or a call
			// failure, after as long as the network takes.
			return names, true
		default:
			i++
		}
	}
	return names, false
}

func isNameChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!%-./_", c) >= 0
}

// skipArgs returns the length of an extended command's arguments up to and
// including the ';' that ends it, ignoring ';' inside quotes.
func skipArgs(s string) int {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ';':
			if !quoted {
				return i + 1
			}
		}
	}
	return len(s)
}

// longTimeouts are the commands that wait for the network, with the
// maximum response times of 3GPP TS 27.007 implementations (Quectel
// EC25/EG25 and SIMCom SIM7600 manuals): operator scans, attach,
// context activation, a radio power cycle, SMS and USSD round trips.
// Read commands (AT+COPS?) answer from the modem's memory and keep the
// default.
var longTimeouts = map[string]time.Duration{
	"+COPS":       180 * time.Second,
	"+CGACT":      150 * time.Second,
	"+CGATT":      140 * time.Second,
	"+CFUN":       60 * time.Second,
	"+CMGS":       120 * time.Second,
	"+CMSS":       120 * time.Second,
	"+CUSD":       120 * time.Second,
	"+CLCK":       60 * time.Second,
	"+QIACT":      150 * time.Second,
	"+QIDEACT":    40 * time.Second,
	"+QNETDEVCTL": 150 * time.Second,
	"$QCRMCALL":   150 * time.Second,
}

// dialTimeout is for ATD and ATA: a data call is set up by the network.
const dialTimeout = 90 * time.Second

// exchange is one command in flight: it sorts the lines that arrive into
// the command's answer and everything else.
type exchange struct {
	echo   string // the command line as it comes back when echoed
	names  []cmdName
	dial   bool
	prompt string // data to send at the "> " prompt
	isURC  func(name string) bool

	lines    []string
	final    string
	err      error
	done     bool
	answered bool // a line of the answer has arrived: no echo after that
	overlong bool
}

func newExchange(cmd Command, isURC func(string) bool) *exchange {
	names, dial := parseCommand(cmd.Text)
	return &exchange{
		echo: clean([]byte(cmd.Text)), names: names, dial: dial,
		prompt: cmd.Prompt, isURC: isURC,
	}
}

// timeout is how long the command may take when the caller does not say.
func (x *exchange) timeout(def time.Duration) time.Duration {
	d := def
	if x.dial {
		d = max(d, dialTimeout)
	}
	for _, n := range x.names {
		if n.form != formRead {
			d = max(d, longTimeouts[n.name])
		}
	}
	return d
}

// lineKind is what a line means to the command in flight.
type lineKind int

const (
	kindAnswer lineKind = iota
	kindURC
	kindEcho
	kindFinal
)

// take sorts one line received while the command is in flight.
//
// The hard case is a URC between the command and its final result. A line
// is a URC when its name is a known URC and not the name of the command in
// flight; a line named after the command is its answer ("+CREG: 2,1"
// answering AT+CREG?), with two refinements where the name is both:
//   - after a set command (AT+CREG=2, AT+CPIN=1234, AT+CUSD=1,...), whose
//     answer is only a final result code, the line is a URC: the modem
//     often reports the change it made before the OK;
//   - for the registration family, the answer to the read command and the
//     URC differ in shape (isRegAnswer), and the shape decides.
//
// Lines with an unknown name, or none, are part of the answer: that is how
// AT+CGMI, AT+CIMI and answers named otherwise (SIMCom's AT+CICCID gives
// +ICCID) work. Where answer and URC cannot be told apart (+CPIN: READY
// during AT+CPIN?), the line goes to the answer: a caller asked for it, and
// a subscriber learns the same from the next URC or query.
func (x *exchange) take(line string) lineKind {
	if final, err := parseFinal(line); final {
		x.final, x.err, x.done = line, err, true
		if x.overlong && err == nil {
			x.err = ErrOverlong
		}
		return kindFinal
	}
	if !x.answered && (strings.EqualFold(line, x.echo) || x.prompt != "" && line == clean([]byte(x.prompt))) {
		// The modem echoes the command line (ATE1, the default until ATE0
		// is sent, and some modems whatever they are told).
		return kindEcho
	}
	name, args := splitName(line)
	if x.isURC(name) {
		urc := true
		for _, n := range x.names {
			if n.name != name {
				continue
			}
			switch {
			case n.form == formSet:
			case regNames[name] && n.form == formRead:
				urc = !isRegAnswer(args)
			default:
				urc = false
			}
		}
		if urc {
			return kindURC
		}
	}
	x.answered = true
	x.lines = append(x.lines, line)
	return kindAnswer
}

// response is what the caller gets.
func (x *exchange) response() Response {
	return Response{Lines: x.lines, Final: x.final}
}

// redact is how a command appears in logs and errors: a secret command
// keeps its name and loses its arguments ("AT+CPIN=<hidden>").
func redact(cmd Command) string {
	t := cmd.Text
	if !cmd.Secret {
		return t
	}
	if i := strings.IndexByte(t, '='); i >= 0 {
		return t[:i+1] + "<hidden>"
	}
	n := min(len(t), 2)
	if len(t) > 2 && strings.IndexByte(namePrefixes, t[2]) >= 0 {
		for n = 3; n < len(t) && isNameChar(t[n]); n++ {
		}
	}
	return t[:n] + "<hidden>"
}

// validate refuses command lines that would break the framing of the
// exchange (a CR ends the line early, Ctrl-Z and ESC end or cancel a
// prompt) or that are not commands at all: nothing but "AT..." lines
// reaches the modem.
func validate(cmd Command) error {
	t := cmd.Text
	if len(t) < 2 || !strings.EqualFold(t[:2], "AT") {
		return fmt.Errorf("command %q does not start with AT", redact(cmd))
	}
	for i := 0; i < len(t); i++ {
		if t[i] < 0x20 || t[i] == 0x7f {
			return fmt.Errorf("command %q holds control character %#02x", redact(cmd), t[i])
		}
	}
	if strings.ContainsAny(cmd.Prompt, "\x1a\x1b") {
		return fmt.Errorf("%s: prompt data holds Ctrl-Z or ESC", redact(cmd))
	}
	return nil
}

// abortable reports whether a character sent to the modem aborts the
// command: V.250 §6.3.1 says so of dialling, and modems do it for the
// operator scan and selection, which can run for minutes.
func (x *exchange) abortable() bool {
	if x.dial {
		return true
	}
	for _, n := range x.names {
		if n.name == "+COPS" && n.form != formRead {
			return true
		}
	}
	return false
}
