package control

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/openmifi/openmifi/internal/sharing"
	"github.com/openmifi/openmifi/internal/usersettings"
)

func TestDecodeRequest(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{`{"cmd":"status"}` + "\n", ""},
		{`{"cmd":"status"}`, ""}, // EOF ends a request too
		{`{"cmd":"get","key":"ssid"}`, ""},
		{`{"cmd":"get"}`, ""},
		{`{"cmd":"set","settings":{"ssid":"x"}}`, ""},
		{``, "malformed request"},
		{`{}`, "no command"},
		{`{"cmd":"reboot"}`, `unknown command "reboot"`},
		{`{"cmd":"status","extra":1}`, "unknown field"},
		{`{"cmd":"status","key":"ssid"}`, "status takes no arguments"},
		{`{"cmd":"set"}`, "set takes at least one setting"},
		{`{"cmd":"set","settings":{}}`, "set takes at least one setting"},
		{`{"cmd":"get","settings":{"a":"b"}}`, "get takes a key"},
		{`{"cmd":"on"} {"cmd":"off"}`, "more than one JSON value"},
		{`{"cmd":`, "malformed request"},
		{`[1,2]`, "malformed request"},
		{strings.Repeat(" ", MaxRequest) + `{"cmd":"on"}`, "larger than"},
	} {
		_, err := DecodeRequest(strings.NewReader(tc.in))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%.40q: %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%.40q: error %v, want %q", tc.in, err, tc.err)
		}
	}
}

// backend is a minimal Backend.
type backend struct {
	mu    sync.Mutex
	on    bool
	users usersettings.Settings
}

func (b *backend) Status() sharing.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := sharing.Status{State: sharing.Off, SSID: b.users.SSID}
	if b.on {
		st.State = sharing.On
		st.Clients = []sharing.Client{{MAC: "02:00:00:00:00:01"}}
	}
	return st
}

func (b *backend) TurnOn(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.on = true
	return nil
}

func (b *backend) TurnOff(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.on {
		return errors.New("already off")
	}
	b.on = false
	return nil
}

func (b *backend) Settings() (usersettings.Settings, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.users, nil
}

func (b *backend) UpdateSettings(_ context.Context, f func(*usersettings.Settings) error) (usersettings.Settings, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.users
	if err := f(&s); err != nil {
		return b.users, err
	}
	if err := s.Validate(8); err != nil {
		return b.users, err
	}
	b.users = s
	return s, nil
}

func serve(t *testing.T) (*Client, *backend, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctl") // short: socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "hotspotd.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	u, err := usersettings.Defaults(strings.NewReader(strings.Repeat("x", 1024)))
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{users: u}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Server{Backend: b}).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		ln.Close()
	})
	return &Client{Socket: path}, b, path
}

func TestServer(t *testing.T) {
	c, b, path := serve(t)
	ctx := context.Background()

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}

	st, err := c.Status(ctx)
	if err != nil || st.State != sharing.Off {
		t.Fatalf("status: %v %v", st.State, err)
	}
	resp, err := c.Do(ctx, Request{Cmd: CmdOn})
	if err != nil || resp.Status.State != sharing.On {
		t.Fatalf("on: %+v %v", resp, err)
	}
	resp, err = c.Do(ctx, Request{Cmd: CmdClients})
	if err != nil || len(resp.Clients) != 1 {
		t.Errorf("clients: %+v %v", resp, err)
	}
	if _, err := c.Do(ctx, Request{Cmd: CmdOff}); err != nil {
		t.Fatalf("off: %v", err)
	}
	if _, err := c.Do(ctx, Request{Cmd: CmdOff}); err == nil || err.Error() != "already off" {
		t.Errorf("second off: %v", err)
	}

	resp, err = c.Do(ctx, Request{Cmd: CmdSet, Settings: map[string]string{"ssid": "pocket", "passphrase": "correct horse"}})
	if err != nil || resp.Settings["ssid"] != "pocket" {
		t.Fatalf("set: %+v %v", resp, err)
	}
	if strings.Contains(resp.Settings["passphrase"], "correct horse") {
		t.Error("set echoed the passphrase")
	}
	if b.users.Passphrase != "correct horse" {
		t.Error("passphrase not set")
	}
	resp, err = c.Do(ctx, Request{Cmd: CmdGet, Key: "passphrase"})
	if err != nil || resp.Settings["passphrase"] != "correct horse" {
		t.Errorf("get passphrase: %+v %v", resp, err)
	}
	resp, err = c.Do(ctx, Request{Cmd: CmdGet})
	if err != nil || strings.Contains(resp.Settings["passphrase"], "correct horse") || resp.Settings["sim_pin"] != "(not set)" {
		t.Errorf("get all: %+v %v", resp, err)
	}
	if _, err := c.Do(ctx, Request{Cmd: CmdSet, Settings: map[string]string{"ssid": ""}}); err == nil {
		t.Error("empty ssid accepted")
	}
	if _, err := c.Do(ctx, Request{Cmd: CmdSet, Settings: map[string]string{"sharing": "on"}}); err == nil || !strings.Contains(err.Error(), "hotspotctl on") {
		t.Errorf("set sharing: %v", err)
	}
	if _, err := c.Do(ctx, Request{Cmd: CmdGet, Key: "sim_pin"}); err == nil {
		t.Error("sim_pin readable")
	}
}

func TestBadRequestsDoNotStopTheServer(t *testing.T) {
	c, _, path := serve(t)
	for _, raw := range []string{
		"garbage\n",
		`{"cmd":"status","key":` + "\n",
		strings.Repeat("A", MaxRequest+10),
		"\x00\xff\xfe\n",
		"", // connect and close
	} {
		conn, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte(raw))
		if raw != "" {
			var buf [512]byte
			n, _ := conn.Read(buf[:])
			if !strings.Contains(string(buf[:n]), `"error"`) {
				t.Errorf("%.20q: reply %q", raw, buf[:n])
			}
		}
		conn.Close()
	}
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatalf("server gone after bad requests: %v", err)
	}
}

func TestSecondListenerRefused(t *testing.T) {
	_, _, path := serve(t)
	if ln, err := Listen(path); err == nil {
		ln.Close()
		t.Fatal("a second daemon got the socket")
	} else if !strings.Contains(err.Error(), "another hotspotd is running") {
		t.Errorf("error %v", err)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s")
	// A daemon killed with SIGKILL leaves its socket file behind.
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ln.Close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
}

func TestClientUnreachable(t *testing.T) {
	c := &Client{Socket: filepath.Join(t.TempDir(), "none.sock")}
	if _, err := c.Status(context.Background()); !errors.Is(err, ErrUnreachable) {
		t.Errorf("err = %v", err)
	}
}
