package ctl

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/openmifi/openmifi/internal/control"
	"golang.org/x/sys/unix"
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

func TestSecretsFromStandardInput(t *testing.T) {
	var asked []string
	readSecret = func(key string) (string, error) {
		asked = append(asked, key)
		return "from stdin " + key, nil
	}
	defer func() {
		readSecret = func(key string) (string, error) { return readSecretFrom(os.Stdin, os.Stderr, key) }
	}()
	got, err := request([]string{"set", "ssid=home", "passphrase", "sim_pin"})
	want := control.Request{Cmd: "set", Settings: map[string]string{
		"ssid": "home", "passphrase": "from stdin passphrase", "sim_pin": "from stdin sim_pin"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("%+v %v, want %+v", got, err, want)
	}
	if _, err := request([]string{"set", "ssid"}); err == nil {
		t.Error("a setting that is no secret was read from standard input")
	}
	if fmt.Sprint(asked) != "[passphrase sim_pin]" {
		t.Errorf("asked for %v", asked)
	}
}

func TestReadLine(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"secret pass\n", "secret pass", ""},
		{"crlf\r\n", "crlf", ""},
		{"no newline", "no newline", ""},
		{"", "", "no value"},
		{strings.Repeat("x", maxSecret+5) + "\n", "", "longer than"},
	} {
		got, err := readLine(strings.NewReader(tc.in), "passphrase")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "xxx") {
				t.Errorf("%.20q: %v, want an error with %q and no value", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %q %v, want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestReadSecretFromAPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fmt.Fprintln(w, "piped secret")
	w.Close()
	var prompt bytes.Buffer
	got, err := readSecretFrom(r, &prompt, "console_password")
	if err != nil || got != "piped secret" || prompt.Len() != 0 {
		t.Errorf("%q %v, prompt %q", got, err, prompt.String())
	}
}

func TestReadSecretFromATerminalWithoutEcho(t *testing.T) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer master.Close()
	// Through SyscallConn: Fd would put the master in blocking mode,
	// and the read deadline below would never fire.
	rc, err := master.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	cerr := rc.Control(func(fd uintptr) {
		if err = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); err == nil {
			n, err = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
		}
	})
	if err = errors.Join(cerr, err); err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()

	var prompt bytes.Buffer
	type result struct {
		v   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := readSecretFrom(tty, &prompt, "passphrase")
		done <- result{v, err}
	}()
	// Type once echo is off: wait for the terminal to say so.
	deadline := time.Now().Add(5 * time.Second)
	for {
		tm, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		if err == nil && tm.Lflag&unix.ECHO == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("echo never went off")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := master.WriteString("typed secret\n"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.v != "typed secret" {
		t.Fatalf("%q %v", r.v, r.err)
	}
	master.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	echoed, _ := io.ReadAll(master)
	if bytes.Contains(echoed, []byte("typed secret")) {
		t.Errorf("the terminal echoed the secret: %q", echoed)
	}
	if tm, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS); err != nil || tm.Lflag&unix.ECHO == 0 {
		t.Errorf("echo not restored: %v", err)
	}
	if prompt.String() != "passphrase: \n" {
		t.Errorf("prompt %q", prompt.String())
	}
}
