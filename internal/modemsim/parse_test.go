package modemsim

import (
	"errors"
	"slices"
	"testing"
)

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []command
	}{
		{"", nil},
		{"E0V1", []command{{name: "E", args: "0"}, {name: "V", args: "1"}}},
		{"&F;Z", []command{{name: "&F"}, {name: "Z"}}},
		{"+cgmi;+CGMM", []command{{name: "+CGMI"}, {name: "+CGMM"}}},
		{"+CREG?", []command{{name: "+CREG", op: opRead}}},
		{"+CREG=?", []command{{name: "+CREG", op: opTest}}},
		{`+CGDCONT=1,"IP","a;b" ;E1`, []command{{name: "+CGDCONT", op: opSet, args: `1,"IP","a;b"`}, {name: "E", args: "1"}}},
		{"S3?S0=2", []command{{name: "S3", op: opRead}, {name: "S0", op: opSet, args: "2"}}},
		{"D*99#;", []command{{name: "D", args: "*99#;"}}},
		{"$QCRMCALL=1,1", []command{{name: "$QCRMCALL", op: opSet, args: "1,1"}}},
	} {
		got, err := parseLine(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("parseLine(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"+", "&", "&1", "S", "S3", "+CSQ?x", `+CGDCONT=1,"IP`, "!", "+CREG=?1"} {
		if got, err := parseLine(bad); !errors.Is(err, errSyntax) {
			t.Errorf("parseLine(%q) = %+v, %v; want a syntax error", bad, got, err)
		}
	}
}

func TestSplitParams(t *testing.T) {
	ps, err := splitParams(` 1 , "a,b" ,, "" ,x `)
	want := params{{s: "1"}, {s: "a,b", quoted: true}, {}, {quoted: true}, {s: "x"}}
	if err != nil || !slices.Equal(ps, want) {
		t.Errorf("got %+v, %v; want %+v", ps, err, want)
	}
	if !ps.given(3) || ps.given(2) || ps.given(9) {
		t.Error("given")
	}
	if n, err := ps.int(0, 7, 0, 1); n != 1 || err != nil {
		t.Errorf("int(0) = %d, %v", n, err)
	}
	if n, err := ps.int(2, 7, 0, 1); n != 7 || err != nil {
		t.Errorf("int of an empty parameter = %d, %v", n, err)
	}
	for _, i := range []int{1, 4} {
		if _, err := ps.int(i, 0, 0, 9); err == nil {
			t.Errorf("int(%d) accepted %q", i, ps[i].s)
		}
	}
	for _, bad := range []string{`"a`, `"a"b`, `a"b`} {
		if _, err := splitParams(bad); err == nil {
			t.Errorf("splitParams(%q) accepted", bad)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		`+CPIN="1234"`:                    `+CPIN=…`,
		`+cgauth=1,1,"u","secret"`:        `+cgauth=…`,
		`+CGDCONT=1,"IP","a";+CPIN="1"`:   `+CGDCONT=1,"IP","a";+CPIN=…`,
		"\xfe\xfe+QICSGP=1,1,\"a\",\"p\"": "\xfe\xfe+QICSGP=…",
		"+CSQ":                            "+CSQ",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}
