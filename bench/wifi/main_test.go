package main

import (
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{[]time.Duration{3, 1, 2}, 2},
		{[]time.Duration{4, 1, 3, 2}, 2},
		{[]time.Duration{5}, 5},
	} {
		in := append([]time.Duration(nil), tc.in...)
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Errorf("median sorted its argument: %v", tc.in)
			}
		}
	}
}

func TestPrintTable(t *testing.T) {
	var b strings.Builder
	results := map[string]map[string][]time.Duration{
		"hostapd":  {mAPStart: {500 * time.Millisecond, 700 * time.Millisecond, 600 * time.Millisecond}},
		"hotspotd": {mAPStart: {300 * time.Millisecond}},
	}
	printTable(&b, results, map[string]string{"hotspotd": "hotspotd: sharing did not start: no AP\nmore"})
	out := b.String()
	for _, want := range []string{"600 ms (500 ms–700 ms)", "300 ms (300 ms–300 ms)", "0.50", "hotspotd: not available: sharing did not start: no AP\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "more") {
		t.Errorf("more than the error's first line:\n%s", out)
	}
}

func TestParseAPOnly(t *testing.T) {
	log := `time=2026-12-03T13:36:40.100Z level=INFO msg="DHCP server started" interface=wlan0
hotspotd: level=WARN msg="noise"
time=2026-12-03T13:36:40.142Z level=INFO msg="access point started" ssid=x channel=6
`
	if d, err := parseAPOnly(log); err != nil || d != 42*time.Millisecond {
		t.Errorf("got %v %v", d, err)
	}
	if _, err := parseAPOnly(`time=2026-12-03T13:36:40.100Z level=INFO msg="DHCP server started"`); err == nil {
		t.Error("no error without the access point's line")
	}
}
