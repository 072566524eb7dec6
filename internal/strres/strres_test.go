package strres

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Ref
		err  string
	}{
		{in: "@HotSpotMOHelp.dll,-101", want: Ref{"HotSpotMOHelp.dll", 101}},
		{in: "@a,-0", want: Ref{"a", 0}},
		{in: "@a,-65535", want: Ref{"a", 65535}},
		{in: "@a,-007", want: Ref{"a", 7}},
		{in: "@my tables.dll,-1", want: Ref{"my tables.dll", 1}},
		{in: "", err: `does not start with "@"`},
		{in: "HotSpotMOHelp.dll,-101", err: `does not start with "@"`},
		{in: "@HotSpotMOHelp.dll", err: `has no ",-"`},
		{in: "@HotSpotMOHelp.dll-101", err: `has no ",-"`},
		{in: "@,-101", err: "has no file name"},
		{in: `@c:\windows\HotSpotMOHelp.dll,-101`, err: "has a path"},
		{in: "@../etc/passwd,-1", err: "has a path"},
		{in: "@..,-1", err: `has ".." as the file name`},
		{in: "@ a.dll,-1", err: "spaces around"},
		{in: "@a\x00.dll,-1", err: "control characters"},
		{in: "@a,b,-1", err: `has no "-" before the id`},
		{in: "@a,101", err: `has no "-" before the id`},
		{in: "@a,-", err: "has no id"},
		{in: "@a,-65536", err: "has id 65536; want a decimal number from 0 to 65535"},
		{in: "@a,-99999999999999999999999", err: "want a decimal number"},
		{in: "@a,--1", err: `has id "-1"`},
		{in: "@a,-+1", err: `has id "+1"`},
		{in: "@a,- 1", err: `has id " 1"`},
		{in: "@a,-1 ", err: `has id "1 "`},
		{in: "@a,-0x10", err: `has id "0x10"`},
		{in: "@a,-1_000", err: `has id "1_000"`},
	} {
		got, err := ParseRef(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseRef(%q) = %v, %v; want an error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRef(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

const table = "\uFEFF# Operator help, shown when the entitlement check fails.\r\n" + `
[default]
101 = Internet sharing is not part of your plan.\nCall 611 to add it.
102 = Backslash \\ and tab	kept; "=" too: a = b

[en-US]
101 = Tethering is not part of your plan.\nCall 611.

[EN]
101 = Sharing is not part of your plan.
103 = English only

[de]
  101   =   Internet-Freigabe ist nicht Teil Ihres Tarifs.   

[zh-Hant]
101 = 網際網路共用不在您的方案中。

[en-US]
104 = back in en-US
`

func TestLookup(t *testing.T) {
	tab, err := Parse("HotSpotMOHelp.dll.strings", strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		id     int
		locale string
		want   string
		ok     bool
	}{
		{101, "en-US", "Tethering is not part of your plan.\nCall 611.", true},
		{101, "en_US", "Tethering is not part of your plan.\nCall 611.", true},
		{101, "EN-us", "Tethering is not part of your plan.\nCall 611.", true},
		{101, "en_US.UTF-8", "Tethering is not part of your plan.\nCall 611.", true},
		{101, "en-GB", "Sharing is not part of your plan.", true},
		{101, "en", "Sharing is not part of your plan.", true},
		{103, "en-US", "English only", true},
		{104, "en-US", "back in en-US", true},
		{101, "de-DE", "Internet-Freigabe ist nicht Teil Ihres Tarifs.", true},
		{101, "de_AT@euro", "Internet-Freigabe ist nicht Teil Ihres Tarifs.", true},
		{101, "zh-Hant-TW", "網際網路共用不在您的方案中。", true},
		{101, "fr-FR", "Internet sharing is not part of your plan.\nCall 611 to add it.", true},
		{101, "", "Internet sharing is not part of your plan.\nCall 611 to add it.", true},
		{101, "C", "Internet sharing is not part of your plan.\nCall 611 to add it.", true},
		{102, "de", `Backslash \ and tab` + "\t" + `kept; "=" too: a = b`, true},
		{103, "de", "", false},
		{999, "en-US", "", false},
	} {
		got, ok := tab.Lookup(tt.id, tt.locale)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Lookup(%d, %q) = %q, %v; want %q, %v", tt.id, tt.locale, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		name, data, err string
	}{
		{"outside section", "# c\n101 = x\n", "t.strings:2: entry before the first [section]"},
		{"duplicate", "[en]\n101 = a\n\n101 = b\n", "t.strings:4: string 101 is already in [en] on line 2"},
		{"duplicate across headers", "[en-US]\n1 = a\n[en_us]\n1 = b\n", "t.strings:4: string 1 is already in [en-us] on line 2"},
		{"no equals", "[en]\nhello\n", "t.strings:2: want `<id> = <text>`"},
		{"bad id", "[en]\nabc = x\n", `t.strings:2: entry has id "abc"`},
		{"negative id", "[en]\n-101 = x\n", `t.strings:2: entry has id "-101"`},
		{"big id", "[en]\n70000 = x\n", "t.strings:2: entry has id 70000"},
		{"no id", "[en]\n= x\n", "t.strings:2: entry has no id"},
		{"no text", "[en]\n1 =\n", "t.strings:2: string 1: no text"},
		{"unknown escape", "[en]\n1 = C:\\Windows\n", `t.strings:2: string 1: unknown escape \W`},
		{"lone backslash", "[en]\n1 = a\\\n", `t.strings:2: string 1: text ends in a lone \`},
		{"control character", "[en]\n1 = a\x1b[2Jb\n", "t.strings:2: string 1: control character"},
		{"bad section", "[english]\n", "t.strings:1: section [english] is neither"},
		{"empty section", "[]\n", "t.strings:1: section [] is neither"},
		{"unclosed section", "[en\n", "t.strings:1: section header \"[en\" has no closing ]"},
		{"digit language", "[12]\n", "t.strings:1: section [12] is neither"},
		{"not UTF-8", "[en]\n1 = \xff\n", "t.strings:2: not UTF-8"},
		{"too large", "[en]\n1 = " + strings.Repeat("a", MaxSize), "t.strings: larger than"},
	} {
		_, err := Parse("t.strings", strings.NewReader(tt.data))
		if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
			t.Errorf("%s: Parse = %v, want an error starting %q", tt.name, err, tt.err)
		}
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "HotSpotMOHelp.dll.strings"), []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Resolve(dir, "@HotSpotMOHelp.dll,-101", "de_DE.UTF-8")
	if err != nil || got != "Internet-Freigabe ist nicht Teil Ihres Tarifs." {
		t.Errorf("Resolve = %q, %v", got, err)
	}
	got, err = Resolve(dir, "@HotSpotMOHelp.dll,-101", "")
	if err != nil || got != "Internet sharing is not part of your plan.\nCall 611 to add it." {
		t.Errorf("Resolve without locale = %q, %v", got, err)
	}

	_, err = Resolve(dir, "@Other.dll,-101", "en-US")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), `no string table "Other.dll"`) {
		t.Errorf("missing table: %v", err)
	}
	_, err = Resolve(dir, "@HotSpotMOHelp.dll,-103", "de")
	want := filepath.Join(dir, "HotSpotMOHelp.dll.strings") + `: no string 103 for locale "de" or [default]`
	if err == nil || err.Error() != want {
		t.Errorf("missing string: %v\nwant %s", err, want)
	}
	_, err = Resolve(dir, "HotSpotMOHelp.dll,-101", "en")
	if err == nil || err.Error() != `string reference "HotSpotMOHelp.dll,-101" does not start with "@"` {
		t.Errorf("bad reference: %v", err)
	}

	if err := os.WriteFile(filepath.Join(dir, "Broken.dll.strings"), []byte("[en]\n1 = a\n1 = b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Resolve(dir, "@Broken.dll,-1", "en")
	want = filepath.Join(dir, "Broken.dll.strings") + ":3: string 1 is already in [en] on line 2"
	if err == nil || err.Error() != want {
		t.Errorf("broken table: %v\nwant %s", err, want)
	}
}

func TestRefString(t *testing.T) {
	r := Ref{File: "HotSpotMOHelp.dll", ID: 101}
	if r.String() != "@HotSpotMOHelp.dll,-101" {
		t.Errorf("String = %q", r.String())
	}
}
