package modemsim

import (
	"bytes"
	"errors"
	"strconv"
)

// result is a final result code other than OK that does not depend on
// +CMEE: ERROR for an unknown command or a malformed line, NO CARRIER for
// a call that cannot be made.
type result string

func (r result) Error() string { return string(r) }

const (
	errPlain     = result("ERROR")
	errNoCarrier = result("NO CARRIER")
)

// cmeError is a 3GPP TS 27.007 §9.2 error, printed according to +CMEE.
type cmeError int

const (
	cmeNotAllowed   = 3
	cmeNotSupported = 4
	cmeSIMAbsent    = 10
	cmeSIMPIN       = 11
	cmeSIMPUK       = 12
	cmeSIMFailure   = 13
	cmeBadPassword  = 16
	cmeNoService    = 30
	cmeNotAllowedNW = 32
	cmeBadParam     = 50
	cmeUnknown      = 100
	cmeNotSubscr    = 133
	cmeGPRSUnspec   = 148
)

var cmeText = map[cmeError]string{
	cmeNotAllowed:   "operation not allowed",
	cmeNotSupported: "operation not supported",
	cmeSIMAbsent:    "SIM not inserted",
	cmeSIMPIN:       "SIM PIN required",
	cmeSIMPUK:       "SIM PUK required",
	cmeSIMFailure:   "SIM failure",
	cmeBadPassword:  "incorrect password",
	cmeNoService:    "no network service",
	cmeNotAllowedNW: "network not allowed - emergency calls only",
	cmeBadParam:     "Incorrect parameters",
	cmeUnknown:      "unknown",
	cmeNotSubscr:    "requested service option not subscribed",
	cmeGPRSUnspec:   "unspecified GPRS error",
}

func (e cmeError) Error() string {
	if t, ok := cmeText[e]; ok {
		return t
	}
	return "CME error " + strconv.Itoa(int(e))
}

// finalText is the final result code for err (nil: OK) as the modem
// prints it with the current +CMEE and V settings.
func (m *Modem) finalText(err error) string {
	var cme cmeError
	var res result
	switch {
	case err == nil:
		if m.verbose {
			return "OK"
		}
		return "0"
	case errors.As(err, &cme):
		switch m.cmee {
		case 1:
			return "+CME ERROR: " + strconv.Itoa(int(cme))
		case 2:
			return "+CME ERROR: " + cme.Error()
		}
	case errors.As(err, &res):
		if !m.verbose {
			switch res {
			case errNoCarrier:
				return "3"
			}
			return "4"
		}
		return string(res)
	}
	if m.verbose {
		return "ERROR"
	}
	return "4"
}

// response frames the information text and final result of one command
// line as V.250 §5.7 does: with V1 every block between CR LF pairs, with
// V0 text lines ended by CR LF and a numeric result code ended by CR.
func (m *Modem) response(info []string, err error) []byte {
	var b bytes.Buffer
	final := m.finalText(err)
	if m.verbose {
		if len(info) > 0 {
			b.WriteString("\r\n")
			for i, l := range info {
				if i > 0 {
					b.WriteString("\r\n")
				}
				b.WriteString(l)
			}
			b.WriteString("\r\n")
		}
		b.WriteString("\r\n" + final + "\r\n")
		return b.Bytes()
	}
	for _, l := range info {
		b.WriteString(l + "\r\n")
	}
	if len(final) > 1 {
		// An extended result code (+CME ERROR) has no number.
		b.WriteString(final + "\r\n")
	} else {
		b.WriteString(final + "\r")
	}
	return b.Bytes()
}

// urcBytes frames an unsolicited result code.
func (m *Modem) urcBytes(line string) []byte {
	if m.verbose {
		return []byte("\r\n" + line + "\r\n")
	}
	return []byte(line + "\r\n")
}
