package ctl

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/openmifi/openmifi/internal/control"
)

func TestRequest(t *testing.T) {
	for _, tc := range []struct {
		words []string
		want  control.Request
		err   string
	}{
		{[]string{"status"}, control.Request{Cmd: "status"}, ""},
		{[]string{"get"}, control.Request{Cmd: "get"}, ""},
		{[]string{"get", "ssid"}, control.Request{Cmd: "get", Key: "ssid"}, ""},
		{[]string{"set", "ssid=a=b", "channel=11"}, control.Request{Cmd: "set", Settings: map[string]string{"ssid": "a=b", "channel": "11"}}, ""},
		{[]string{"set", "ssid="}, control.Request{Cmd: "set", Settings: map[string]string{"ssid": ""}}, ""},
		{[]string{"set"}, control.Request{}, "set needs KEY=VALUE"},
		{[]string{"set", "ssid"}, control.Request{}, `"ssid" is not KEY=VALUE`},
		{[]string{"set", "=x"}, control.Request{}, `"=x" is not KEY=VALUE`},
		{[]string{"set", "ssid=a", "ssid=b"}, control.Request{}, "ssid given twice"},
		{[]string{"get", "a", "b"}, control.Request{}, "at most one key"},
		{[]string{"on", "now"}, control.Request{}, "on takes no arguments"},
		{[]string{"reboot"}, control.Request{}, `unknown command "reboot"`},
	} {
		got, err := request(tc.words)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.words, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %+v %v, want %+v", tc.words, got, err, tc.want)
		}
	}
}

func TestExitCodes(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, ExitUsage, "usage:"},
		{[]string{"frobnicate"}, ExitUsage, "unknown command"},
		{[]string{"-nosuchflag", "status"}, ExitUsage, ""},
		{[]string{"-socket", none, "status"}, ExitUnreachable, "cannot reach hotspotd"},
		{[]string{"-socket", none, "status", "--json"}, ExitUnreachable, "cannot reach hotspotd"},
	} {
		var out, errOut bytes.Buffer
		if code := Main(tc.args, &out, &errOut); code != tc.code || !strings.Contains(errOut.String(), tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want %d, %q", tc.args, code, errOut.String(), tc.code, tc.msg)
		}
	}
}
