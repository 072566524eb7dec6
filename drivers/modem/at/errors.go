package at

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Final result codes other than OK and CONNECT, and the engine's own
// failures. Do wraps them with the command (secrets hidden), so test with
// errors.Is.
var (
	ErrError      = errors.New("ERROR")       // plain V.250 ERROR, or +CMEE=0
	ErrNoCarrier  = errors.New("NO CARRIER")  // data call dropped or never connected
	ErrBusy       = errors.New("BUSY")        // called party busy
	ErrNoAnswer   = errors.New("NO ANSWER")   // called party did not answer
	ErrNoDialtone = errors.New("NO DIALTONE") // no network to dial on
	ErrTimeout    = errors.New("no final result code before the timeout")
	ErrPortLost   = errors.New("modem port lost") // the port went away while the command was in flight
	ErrClosed     = errors.New("AT engine stopped")
	// ErrOverlong: a line of the response was longer than MaxLine and was
	// dropped, so the response is incomplete.
	ErrOverlong = errors.New("response line too long, dropped")
	// ErrHung ends a port session when the modem has not answered
	// hangAfter commands in a row (or the sync after opening the port).
	ErrHung = errors.New("modem not answering")
)

// CMEError is "+CME ERROR: <err>" (3GPP TS 27.007 §9.2), from the numeric
// form (+CMEE=1) or the verbose one (+CMEE=2). Both forms fill both fields
// when the code is in the table; Code is -1 for a verbose text the table
// does not know, and Text is empty for an unknown number.
type CMEError struct {
	Code int
	Text string
}

func (e *CMEError) Error() string { return formatCode("+CME ERROR", e.Code, e.Text) }

// CMSError is "+CMS ERROR: <err>" (3GPP TS 27.005 §3.2.5), the SMS
// counterpart of CMEError, with the same conventions.
type CMSError struct {
	Code int
	Text string
}

func (e *CMSError) Error() string { return formatCode("+CMS ERROR", e.Code, e.Text) }

func formatCode(prefix string, code int, text string) string {
	switch {
	case code < 0:
		return prefix + ": " + text
	case text == "":
		return fmt.Sprintf("%s: %d", prefix, code)
	default:
		return fmt.Sprintf("%s: %d (%s)", prefix, code, text)
	}
}

func parseCME(arg string) *CMEError {
	code, text := lookupCode(arg, cmeText, cmeCode)
	return &CMEError{Code: code, Text: text}
}

func parseCMS(arg string) *CMSError {
	code, text := lookupCode(arg, cmsText, cmsCode)
	return &CMSError{Code: code, Text: text}
}

// lookupCode maps either form of an error argument to both.
func lookupCode(arg string, texts map[int]string, codes map[string]int) (int, string) {
	arg = strings.TrimSpace(arg)
	if n, err := strconv.Atoi(arg); err == nil && n >= 0 && len(arg) <= 6 {
		return n, texts[n]
	}
	if n, ok := codes[normText(arg)]; ok {
		return n, texts[n]
	}
	return -1, arg
}

// normText makes verbose error texts comparable across vendors, which
// differ in case, punctuation and hyphens ("PH-SIM PIN required",
// "PH_SIM PIN required", "network not allowed, emergency calls only").
func normText(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func reverse(m map[int]string) map[string]int {
	r := make(map[string]int, len(m))
	for code, text := range m {
		r[normText(text)] = code
	}
	return r
}

// cmeText is the common part of 3GPP TS 27.007 §9.2.1 (general) and
// §9.2.2 (packet domain) that cellular data modems print.
var cmeText = map[int]string{
	0:   "phone failure",
	1:   "no connection to phone",
	2:   "phone-adaptor link reserved",
	3:   "operation not allowed",
	4:   "operation not supported",
	5:   "PH-SIM PIN required",
	6:   "PH-FSIM PIN required",
	7:   "PH-FSIM PUK required",
	10:  "SIM not inserted",
	11:  "SIM PIN required",
	12:  "SIM PUK required",
	13:  "SIM failure",
	14:  "SIM busy",
	15:  "SIM wrong",
	16:  "incorrect password",
	17:  "SIM PIN2 required",
	18:  "SIM PUK2 required",
	20:  "memory full",
	21:  "invalid index",
	22:  "not found",
	23:  "memory failure",
	24:  "text string too long",
	25:  "invalid characters in text string",
	26:  "dial string too long",
	27:  "invalid characters in dial string",
	30:  "no network service",
	31:  "network timeout",
	32:  "network not allowed - emergency calls only",
	40:  "network personalization PIN required",
	41:  "network personalization PUK required",
	42:  "network subset personalization PIN required",
	43:  "network subset personalization PUK required",
	44:  "service provider personalization PIN required",
	45:  "service provider personalization PUK required",
	46:  "corporate personalization PIN required",
	47:  "corporate personalization PUK required",
	48:  "hidden key required",
	49:  "EAP method not supported",
	50:  "incorrect parameters",
	51:  "command implemented but currently disabled",
	52:  "command aborted by user",
	53:  "not attached to network due to MT functionality restrictions",
	54:  "modem not allowed - MT restricted to emergency calls only",
	55:  "operation not allowed because of MT functionality restrictions",
	56:  "fixed dial number only allowed - called number is not a fixed dial number",
	57:  "temporarily out of service due to other MT usage",
	58:  "language/alphabet not supported",
	59:  "unexpected data value",
	60:  "system failure",
	61:  "data missing",
	62:  "call barred",
	63:  "message waiting indication subscription failure",
	100: "unknown",
	103: "illegal MS",
	106: "illegal ME",
	107: "GPRS services not allowed",
	108: "GPRS services and non-GPRS services not allowed",
	111: "PLMN not allowed",
	112: "location area not allowed",
	113: "roaming not allowed in this location area",
	114: "GPRS services not allowed in this PLMN",
	115: "no suitable cells in location area",
	122: "congestion",
	125: "not authorized for this CSG",
	126: "insufficient resources",
	127: "missing or unknown APN",
	128: "unknown PDP address or PDP type",
	129: "user authentication failed",
	130: "activation rejected by GGSN, Serving GW or PDN GW",
	131: "activation rejected, unspecified",
	132: "service option not supported",
	133: "requested service option not subscribed",
	134: "service option temporarily out of order",
	140: "feature not supported",
	143: "unknown PDP context",
	148: "unspecified GPRS error",
	149: "PDP authentication failure",
	150: "invalid mobile class",
	171: "last PDN disconnection not allowed",
	177: "operator determined barring",
	178: "maximum number of PDP contexts reached",
	179: "requested APN not supported in current RAT and PLMN combination",
}

// cmsText is 3GPP TS 27.005 §3.2.5 (codes 0..255 are network causes,
// reported by number only).
var cmsText = map[int]string{
	300: "ME failure",
	301: "SMS service of ME reserved",
	302: "operation not allowed",
	303: "operation not supported",
	304: "invalid PDU mode parameter",
	305: "invalid text mode parameter",
	310: "SIM not inserted",
	311: "SIM PIN required",
	312: "PH-SIM PIN required",
	313: "SIM failure",
	314: "SIM busy",
	315: "SIM wrong",
	316: "SIM PUK required",
	317: "SIM PIN2 required",
	318: "SIM PUK2 required",
	320: "memory failure",
	321: "invalid memory index",
	322: "memory full",
	330: "SMSC address unknown",
	331: "no network service",
	332: "network timeout",
	340: "no +CNMA acknowledgement expected",
	500: "unknown error",
}

var (
	cmeCode = func() map[string]int {
		m := reverse(cmeText)
		m[normText("unknown error")] = 100 // how several vendors spell 100
		return m
	}()
	cmsCode = reverse(cmsText)
)
