// Package strres resolves the operator's references to localized strings,
// such as MOHelpMessage's "@HotSpotMOHelp.dll,-101", against string tables
// shipped in the firmware image.
//
// A reference "@<file>,-<id>" names a table and a string in it (the form of
// Windows' language-neutral registry strings). On our device the table
// "HotSpotMOHelp.dll" is the text file <dir>/HotSpotMOHelp.dll.strings, in
// UTF-8, at most 1 MiB:
//
//	# Shown when the entitlement check fails.
//	[default]
//	101 = Internet sharing is not part of your plan.\nCall 611 to add it.
//
//	[de]
//	101 = Internet-Freigabe ist nicht Teil Ihres Tarifs.\nRufen Sie 611 an.
//
//	[en-US]
//	101 = Tethering is not part of your plan.\nCall 611 to add it.
//
// Blank lines and lines starting with "#" are ignored; spaces around a line,
// its id and its text do not count, and a line may end in "\r\n". A
// section header names a locale ("[en-US]", "[en]", "[pt_BR]"; case and
// "-" versus "_" do not matter) or is "[default]". A section may appear
// more than once; its entries add up. An entry is "<id> = <text>" with an id
// from 0 to 65535, unique within its section, and a non-empty text in which
// "\n" stands for a line break and "\\" for a backslash; any other
// backslash, and any control character except tab, is an error. An entry
// before the first section header, or any other line, is an error naming
// the file and the line.
//
// A string is looked up in the section of the exact locale, then in those
// of the locale with its last subtag removed, one after the other ("zh-Hant-TW",
// "zh-Hant", "zh"), then in [default].
package strres

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxSize is the largest table file Parse reads. Operator messages are a
// few lines; anything near this is a mistake, not a table.
const MaxSize = 1 << 20

// Ref is a parsed string reference.
type Ref struct {
	File string // the table, e.g. "HotSpotMOHelp.dll"
	ID   int    // the string, 0..65535
}

func (r Ref) String() string { return fmt.Sprintf("@%s,-%d", r.File, r.ID) }

// ParseRef parses "@<file>,-<id>". The file must be a plain name (tables
// all live in one directory), the id a decimal number from 0 to 65535. The
// errors say what is wrong without repeating s, which the caller has.
func ParseRef(s string) (Ref, error) {
	rest, ok := strings.CutPrefix(s, "@")
	if !ok {
		return Ref{}, errors.New(`does not start with "@"`)
	}
	file, id, ok := strings.Cut(rest, ",")
	switch {
	case !ok:
		return Ref{}, errors.New(`has no ",-" between the file and the id`)
	case file == "":
		return Ref{}, errors.New("has no file name")
	case strings.ContainsAny(file, `/\`):
		return Ref{}, errors.New("has a path in the file name; want a plain name")
	case file == "." || file == "..":
		return Ref{}, fmt.Errorf("has %q as the file name", file)
	case strings.TrimSpace(file) != file:
		return Ref{}, errors.New("has spaces around the file name")
	case strings.ContainsFunc(file, unicode.IsControl) || !utf8.ValidString(file):
		return Ref{}, errors.New("has control characters or invalid UTF-8 in the file name")
	}
	digits, ok := strings.CutPrefix(id, "-")
	if !ok {
		return Ref{}, errors.New(`has no "-" before the id`)
	}
	n, err := parseID(digits)
	if err != nil {
		return Ref{}, err
	}
	return Ref{File: file, ID: n}, nil
}

func parseID(s string) (int, error) {
	if s == "" {
		return 0, errors.New("has no id")
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("has id %q; want a decimal number from 0 to 65535", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("has id %s; want a decimal number from 0 to 65535", s)
	}
	return int(n), nil
}

// Table is one parsed string table.
type Table struct {
	sections map[string]map[int]string // by normalized locale, "default"
}

// Parse reads a table; name is only for error messages (the file's path).
func Parse(name string, r io.Reader) (*Table, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, MaxSize)
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF")) // a byte order mark from an editor

	t := &Table{sections: make(map[string]map[int]string)}
	type entry struct {
		section string
		id      int
	}
	firstLine := make(map[entry]int)
	section := ""
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%s:%d: %s", name, n, fmt.Sprintf(format, args...))
		}
		if !utf8.ValidString(line) {
			return nil, bad("not UTF-8")
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#':
			continue
		case line[0] == '[':
			hdr, ok := strings.CutSuffix(line[1:], "]")
			if !ok {
				return nil, bad("section header %q has no closing ]", line)
			}
			sec, ok := sectionName(hdr)
			if !ok {
				return nil, bad("section [%s] is neither a locale such as [en-US] nor [default]", hdr)
			}
			section = sec
			if t.sections[sec] == nil {
				t.sections[sec] = make(map[int]string)
			}
			continue
		}
		idText, raw, ok := strings.Cut(line, "=")
		if !ok {
			return nil, bad("want `<id> = <text>`, a [section] or a # comment")
		}
		if section == "" {
			return nil, bad("entry before the first [section]")
		}
		id, err := parseID(strings.TrimSpace(idText))
		if err != nil {
			return nil, bad("entry %s", err)
		}
		text, err := unescape(strings.TrimSpace(raw))
		if err != nil {
			return nil, bad("string %d: %v", id, err)
		}
		e := entry{section, id}
		if first, dup := firstLine[e]; dup {
			return nil, bad("string %d is already in [%s] on line %d", id, section, first)
		}
		firstLine[e] = n
		t.sections[section][id] = text
	}
	return t, nil
}

// sectionName returns the normalized name of a section header: "default"
// or a locale.
func sectionName(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "default" {
		return s, true
	}
	s = strings.ReplaceAll(s, "_", "-")
	for i, sub := range strings.Split(s, "-") {
		if len(sub) < 1 || len(sub) > 8 {
			return "", false
		}
		for _, c := range []byte(sub) {
			letter := 'a' <= c && c <= 'z'
			if !letter && !('0' <= c && c <= '9' && i > 0) {
				return "", false
			}
		}
		if i == 0 && (len(sub) < 2 || len(sub) > 3) {
			return "", false
		}
	}
	return s, true
}

func unescape(s string) (string, error) {
	if s == "" {
		return "", errors.New("no text")
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r != '\t' && unicode.IsControl(r) }) {
		return "", errors.New(`control character in the text; write \n for a line break`)
	}
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch {
		case i == len(s):
			return "", errors.New(`text ends in a lone \; write \\ for a backslash`)
		case s[i] == 'n':
			b.WriteByte('\n')
		case s[i] == '\\':
			b.WriteByte('\\')
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return "", fmt.Errorf(`unknown escape \%c; write \\ for a backslash`, r)
		}
	}
	return b.String(), nil
}

// Lookup returns string id for locale, falling back as the package
// documentation describes. locale may be a BCP 47 tag ("en-US") or a POSIX
// one ("en_US.UTF-8"); "" or "C" finds only [default].
func (t *Table) Lookup(id int, locale string) (string, bool) {
	for _, sec := range fallbacks(locale) {
		if s, ok := t.sections[sec][id]; ok {
			return s, true
		}
	}
	return "", false
}

// fallbacks lists the sections to search for locale, most specific first.
func fallbacks(locale string) []string {
	l, _, _ := strings.Cut(locale, ".") // en_US.UTF-8
	l, _, _ = strings.Cut(l, "@")       // de_DE@euro
	l = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(l), "_", "-"))
	var out []string
	if l != "c" && l != "posix" && l != "default" {
		for l != "" {
			out = append(out, l)
			i := strings.LastIndexByte(l, '-')
			if i < 0 {
				break
			}
			l = l[:i]
		}
	}
	return append(out, "default")
}

// Resolve returns the text ref names in locale, reading the table from dir.
func Resolve(dir, ref, locale string) (string, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return "", fmt.Errorf("string reference %q %w", ref, err)
	}
	path := filepath.Join(dir, r.File+".strings")
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no string table %q: %w", r.File, err)
	}
	if err != nil {
		return "", fmt.Errorf("string table %q: %w", r.File, err)
	}
	defer f.Close()
	t, err := Parse(path, f)
	if err != nil {
		return "", err
	}
	s, ok := t.Lookup(r.ID, locale)
	if !ok {
		return "", fmt.Errorf("%s: no string %d for locale %q or [default]", path, r.ID, locale)
	}
	return s, nil
}
