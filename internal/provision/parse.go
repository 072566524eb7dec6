// Package provision reads the operator's provisioning: the XML blocks
// <Settings Path="HotSpot"> and <Settings Path="Connections"> exactly as
// operators already write them for phones, validated setting by setting.
//
// Nothing is replaced by a default silently: a value out of range, a malformed
// number, an unknown or duplicated name, a missing required value is an error
// that names the file, line, setting, value and allowed range.
package provision

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// maxFileSize bounds what one provisioning file may hold; real ones are a
// few kilobytes, and the parser must not be a way to exhaust a small device.
const maxFileSize = 1 << 20

// Pos is where a setting was written.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Entry is one <Setting Name=… Value=…/> as written, before validation.
type Entry struct {
	Path  string // the enclosing <Settings Path=…>
	Name  string
	Value string
	Pos   Pos
}

// Parse reads the <Settings> blocks of one file. Blocks may stand side by
// side at the top level (as in the seed's second sample) or inside any
// wrapper element. Only syntax is checked here; Build checks meaning.
func Parse(name string, r io.Reader) ([]Entry, error) {
	lr := &io.LimitedReader{R: r, N: maxFileSize + 1}
	d := xml.NewDecoder(lr)
	d.Strict = true

	var (
		entries []Entry
		errs    []error
		path    string // non-empty while inside <Settings>
		inBlock bool
		depth   int // element depth inside the current <Settings>
	)
	fail := func(line int, format string, args ...any) {
		errs = append(errs, &Problem{Pos: Pos{name, line}, Msg: fmt.Sprintf(format, args...)})
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		line, _ := d.InputPos()
		if lr.N <= 0 {
			return nil, &Problem{Pos: Pos{File: name}, Msg: fmt.Sprintf("file is larger than %d bytes", maxFileSize)}
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, &Problem{Pos: Pos{name, se.Line}, Msg: "malformed XML: " + se.Msg}
			}
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case !inBlock && t.Name.Local == "Settings":
				attrs, ok := attributes(t, "Path")
				if !ok {
					fail(line, "<Settings> takes exactly one attribute, Path")
				}
				path = attrs["Path"]
				if path != "HotSpot" && path != "Connections" {
					fail(line, "unknown settings path %q (allowed: HotSpot, Connections)", path)
				}
				inBlock, depth = true, 0
			case !inBlock && t.Name.Local == "Setting":
				fail(line, "<Setting> outside a <Settings> block")
				// Skip it so that its end tag does not confuse the block tracking.
				if err := d.Skip(); err != nil {
					return nil, fmt.Errorf("read %s: %w", name, err)
				}
			case !inBlock:
				// A wrapper around the blocks (a document root of the
				// operator's tooling); its content is what counts.
			case depth == 0 && t.Name.Local == "Setting":
				attrs, ok := attributes(t, "Name", "Value")
				if !ok {
					fail(line, "<Setting> takes exactly the attributes Name and Value")
				} else if path == "HotSpot" || path == "Connections" {
					entries = append(entries, Entry{Path: path, Name: attrs["Name"], Value: attrs["Value"], Pos: Pos{name, line}})
				}
				depth++
			default:
				fail(line, "unexpected element <%s> inside <Settings>", t.Name.Local)
				depth++
			}
		case xml.EndElement:
			if !inBlock {
				continue
			}
			if depth == 0 {
				inBlock, path = false, ""
			} else {
				depth--
			}
		case xml.CharData:
			// Operators paste from web pages; non-breaking spaces between
			// elements (as in the seed itself) are layout, not content.
			text := string(t)
			content := strings.TrimLeftFunc(text, unicode.IsSpace)
			if inBlock && content != "" {
				// InputPos is past the text; name the line where it starts.
				at := line - strings.Count(text, "\n") + strings.Count(text[:len(text)-len(content)], "\n")
				fail(at, "unexpected text %q inside <Settings>", truncate(strings.TrimRightFunc(content, unicode.IsSpace)))
			}
		}
	}
	if inBlock {
		errs = append(errs, &Problem{Pos: Pos{File: name}, Msg: "unterminated <Settings> block"})
	}
	return entries, errors.Join(errs...)
}

// attributes returns the element's attributes if they are exactly the wanted
// ones, each once.
func attributes(t xml.StartElement, want ...string) (map[string]string, bool) {
	m := make(map[string]string, len(t.Attr))
	ok := len(t.Attr) == len(want)
	for _, a := range t.Attr {
		if a.Name.Space != "" {
			ok = false
			continue
		}
		if _, dup := m[a.Name.Local]; dup {
			ok = false
		}
		m[a.Name.Local] = a.Value
	}
	for _, w := range want {
		if _, found := m[w]; !found {
			ok = false
		}
	}
	return m, ok
}

func truncate(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
