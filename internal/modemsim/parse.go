package modemsim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxLine is the longest command line the modem buffers. Real modems
// accept a few hundred characters (V.250 asks for at least 40); a longer
// line is answered with ERROR once its terminator arrives.
const maxLine = 1024

// op is the form of a command: V.250 action, set (=), read (?) or test (=?).
type op byte

const (
	opAction op = iota
	opSet
	opRead
	opTest
)

// command is one command of a command line, with its name in upper case
// ("+CREG", "E", "&F", "S3", "D", "$QCRMCALL").
type command struct {
	name string
	op   op
	// args is the text after '=' of a set command (quotes kept), the
	// digits after a basic command, or the dial string of D.
	args string
}

// key is how scenario rules name a command: its name followed by "=" for
// set, "?" for read and "=?" for test, so that a prefix selects one form
// or all of them.
func (c command) key() string {
	switch c.op {
	case opSet:
		return c.name + "="
	case opRead:
		return c.name + "?"
	case opTest:
		return c.name + "=?"
	}
	return c.name
}

var errSyntax = errors.New("command line syntax error")

// parseLine splits the body of a command line (the text after "AT") into
// commands, following V.250 §5.3: basic commands follow each other
// directly, extended ones (+, $, ^, #, %) are separated by ';'. Spaces
// outside quoted strings do not count. A malformed line is rejected as a
// whole, before any of it runs.
func parseLine(s string) ([]command, error) {
	var cmds []command
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == ';':
			i++
		case isExtPrefix(c):
			cmd, n, err := parseExtended(s[i:])
			if err != nil {
				return nil, err
			}
			cmds = append(cmds, cmd)
			i += n
		case c == '&':
			if i+1 >= len(s) || !isLetter(s[i+1]) {
				return nil, fmt.Errorf("%w: & without a letter", errSyntax)
			}
			name := "&" + string(upper(s[i+1]))
			i += 2
			j := digits(s, i)
			cmds = append(cmds, command{name: name, args: s[i:j]})
			i = j
		case upper(c) == 'S':
			cmd, n, err := parseSRegister(s[i:])
			if err != nil {
				return nil, err
			}
			cmds = append(cmds, cmd)
			i += n
		case upper(c) == 'D':
			// The dial string runs to the end of the line.
			cmds = append(cmds, command{name: "D", args: strings.TrimSpace(s[i+1:])})
			i = len(s)
		case isLetter(c):
			name := string(upper(c))
			i++
			j := digits(s, i)
			cmd := command{name: name, args: s[i:j]}
			i = j
			if i < len(s) && s[i] == '?' {
				cmd.op = opRead
				i++
			}
			cmds = append(cmds, cmd)
		default:
			return nil, fmt.Errorf("%w: unexpected %q", errSyntax, c)
		}
	}
	return cmds, nil
}

// parseExtended reads one extended command from the start of s and
// returns it with the number of bytes it used.
func parseExtended(s string) (command, int, error) {
	i := 1
	for i < len(s) && isNameChar(s[i]) {
		i++
	}
	if i == 1 {
		return command{}, 0, fmt.Errorf("%w: %q without a name", errSyntax, s[0])
	}
	cmd := command{name: strings.ToUpper(s[:i])}
	i = skipSpaces(s, i)
	switch {
	case strings.HasPrefix(s[i:], "=?"):
		cmd.op = opTest
		i += 2
	case strings.HasPrefix(s[i:], "?"):
		cmd.op = opRead
		i++
	case strings.HasPrefix(s[i:], "="):
		cmd.op = opSet
		i++
		start := i
		quoted := false
		for i < len(s) && (quoted || s[i] != ';') {
			if s[i] == '"' {
				quoted = !quoted
			}
			i++
		}
		if quoted {
			return command{}, 0, fmt.Errorf("%w: unterminated string in %s", errSyntax, cmd.name)
		}
		cmd.args = strings.TrimSpace(s[start:i])
	}
	i = skipSpaces(s, i)
	if i < len(s) && s[i] != ';' {
		return command{}, 0, fmt.Errorf("%w: %q after %s", errSyntax, s[i], cmd.name)
	}
	return cmd, i, nil
}

// parseSRegister reads "S<n>?" or "S<n>=<v>".
func parseSRegister(s string) (command, int, error) {
	j := digits(s, 1)
	if j == 1 {
		return command{}, 0, fmt.Errorf("%w: S without a register number", errSyntax)
	}
	cmd := command{name: "S" + s[1:j]}
	switch {
	case j < len(s) && s[j] == '?':
		cmd.op = opRead
		return cmd, j + 1, nil
	case j < len(s) && s[j] == '=':
		k := digits(s, j+1)
		cmd.op = opSet
		cmd.args = s[j+1 : k]
		return cmd, k, nil
	}
	return command{}, 0, fmt.Errorf("%w: S%s without ? or =", errSyntax, s[1:j])
}

func isExtPrefix(c byte) bool {
	return c == '+' || c == '$' || c == '^' || c == '#' || c == '%'
}

// isNameChar: the characters V.250 §5.4.1 allows in extended names.
func isNameChar(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || strings.IndexByte("!%-./:_", c) >= 0
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

func digits(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

func skipSpaces(s string, i int) int {
	for i < len(s) && s[i] == ' ' {
		i++
	}
	return i
}

// param is one comma-separated parameter of a set command.
type param struct {
	s      string
	quoted bool
}

// params are the parameters of a set command.
type params []param

// splitParams splits the arguments of a set command at commas outside
// quoted strings. Unquoted parameters are trimmed; a quoted one keeps its
// text exactly (V.250 strings carry no escapes that the modem decodes
// here).
func splitParams(s string) (params, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var ps params
	i := 0
	for {
		i = skipSpaces(s, i)
		var p param
		if i < len(s) && s[i] == '"' {
			end := strings.IndexByte(s[i+1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("%w: unterminated string", errSyntax)
			}
			p = param{s: s[i+1 : i+1+end], quoted: true}
			i = skipSpaces(s, i+2+end)
			if i < len(s) && s[i] != ',' {
				return nil, fmt.Errorf("%w: text after a string", errSyntax)
			}
		} else {
			end := strings.IndexByte(s[i:], ',')
			if end < 0 {
				end = len(s) - i
			}
			p = param{s: strings.TrimSpace(s[i : i+end])}
			if strings.IndexByte(p.s, '"') >= 0 {
				return nil, fmt.Errorf("%w: stray quote", errSyntax)
			}
			i += end
		}
		ps = append(ps, p)
		if i >= len(s) {
			return ps, nil
		}
		i++ // the comma
	}
}

// given reports whether parameter i is present and not empty.
func (ps params) given(i int) bool { return i < len(ps) && (ps[i].s != "" || ps[i].quoted) }

// str returns parameter i, or "" when it is missing.
func (ps params) str(i int) string {
	if i < len(ps) {
		return ps[i].s
	}
	return ""
}

// int returns parameter i as a number in [lo, hi], def when it is missing
// or empty, and "incorrect parameters" otherwise.
func (ps params) int(i, def, lo, hi int) (int, error) {
	if !ps.given(i) {
		return def, nil
	}
	if ps[i].quoted {
		return 0, cmeError(cmeBadParam)
	}
	n, err := strconv.Atoi(ps[i].s)
	if err != nil || n < lo || n > hi {
		return 0, cmeError(cmeBadParam)
	}
	return n, nil
}
