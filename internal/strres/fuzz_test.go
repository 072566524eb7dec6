package strres

import (
	"strings"
	"testing"
	"unicode"
)

// FuzzParse feeds arbitrary text to the table parser: a broken table in an
// image must give an error, never a panic, and every string of a table it
// accepts must be found under its own section.
func FuzzParse(f *testing.F) {
	f.Add(table)
	f.Fuzz(func(t *testing.T, data string) {
		tab, err := Parse("fuzz.strings", strings.NewReader(data))
		if err != nil {
			return
		}
		for sec, entries := range tab.sections {
			for id, text := range entries {
				if got, ok := tab.Lookup(id, sec); !ok || got != text {
					t.Errorf("Lookup(%d, %q) = %q, %v; want %q", id, sec, got, ok, text)
				}
				if text == "" || strings.ContainsFunc(text, func(r rune) bool {
					return r != '\t' && r != '\n' && unicode.IsControl(r)
				}) {
					t.Errorf("string %d in [%s] is %q", id, sec, text)
				}
			}
		}
	})
}

// FuzzParseRef checks that ParseRef never panics and that what it accepts
// prints back to a reference with the same meaning.
func FuzzParseRef(f *testing.F) {
	f.Add("@HotSpotMOHelp.dll,-101")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		if r.ID < 0 || r.ID > 65535 || r.File == "" || strings.ContainsAny(r.File, `/\,`) {
			t.Fatalf("ParseRef(%q) = %+v", s, r)
		}
		r2, err := ParseRef(r.String())
		if err != nil || r2 != r {
			t.Fatalf("ParseRef(%q) = %+v, %v; want %+v", r.String(), r2, err, r)
		}
	})
}
