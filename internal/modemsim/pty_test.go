package modemsim

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openmifi/openmifi/internal/clock"
	"golang.org/x/sys/unix"
)

// openPort opens a serial device the way a host does.
func openPort(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// waitLink waits until link points somewhere other than old ("" for
// anything), or is gone when gone is set.
func waitLink(t *testing.T, link, old string, gone bool) string {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for {
		target, err := os.Readlink(link)
		switch {
		case gone && errors.Is(err, fs.ErrNotExist):
			return ""
		case !gone && err == nil && target != old:
			return target
		}
		if time.Now().After(deadline) {
			t.Fatalf("link %s: %q, %v", link, target, err)
		}
		time.Sleep(time.Millisecond)
	}
}

func servePTY(t *testing.T, cfg Config) (*Modem, *clock.Fake, string) {
	t.Helper()
	clk := clock.NewFake(epoch)
	cfg.Clock = clk
	cfg.Logger = testLogger(t)
	m := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	link := filepath.Join(t.TempDir(), "modem0")
	path, wait, err := m.ListenPTY(ctx, link)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if path != link {
		t.Errorf("ListenPTY returned %q, want the link %q", path, link)
	}
	t.Cleanup(func() {
		cancel()
		if err := wait(); err != nil {
			t.Errorf("ListenPTY: %v", err)
		}
		if _, err := os.Lstat(link); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("link left behind: %v", err)
		}
		m.Close()
	})
	return m, clk, link
}

func TestPTY(t *testing.T) {
	_, _, link := servePTY(t, Config{})
	target := waitLink(t, link, "", false)
	if !strings.HasPrefix(target, "/dev/pts/") {
		t.Errorf("link points at %q", target)
	}
	f := openPort(t, link)
	c := newClient(t, f)
	c.send("AT\r")
	raw(t, c, "AT\r\r\nOK\r\n")
	c.ok("ATE0")
	c.want("AT+CGMM", "OK", "modemsim")

	// The host closing and reopening the port is nothing to the modem.
	f.Close()
	c = newClient(t, openPort(t, link))
	c.want("AT+CGMM", "OK", "modemsim")
}

// TestPTYPortFlap: the port disappears (the host's descriptor hangs up,
// the link goes) and comes back as a new pty behind the same link.
func TestPTYPortFlap(t *testing.T) {
	_, clk, link := servePTY(t, Config{Scenario: builtin(t, "port-flap")})
	first := waitLink(t, link, "", false)
	f := openPort(t, link)
	c := newClient(t, f)
	c.ok("ATE0")
	clk.Advance(20 * time.Minute)
	l, err := c.line()
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.EIO) {
		t.Fatalf("port gone: read %q, %v; want EOF or EIO", l, err)
	}
	if _, err := f.Write([]byte("AT\r")); err == nil {
		t.Error("write to a hung-up port succeeded")
	}
	waitLink(t, link, "", true)

	clk.Advance(5 * time.Second)
	second := waitLink(t, link, first, false)
	t.Logf("pty %s, then %s", first, second)
	c = newClient(t, openPort(t, link))
	c.ok("ATE0")
	c.want("AT+CGMI", "OK", "openmifi")
}

func TestPTYReset(t *testing.T) {
	_, clk, link := servePTY(t, Config{Dialect: "simcom"})
	first := waitLink(t, link, "", false)
	c := newClient(t, openPort(t, link))
	c.ok("ATE0")
	c.ok("AT+CFUN=1,1")
	if _, err := c.line(); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.EIO) {
		t.Fatalf("after reset: %v", err)
	}
	clk.Advance(3 * time.Second)
	waitLink(t, link, first, false)
	c = newClient(t, openPort(t, link))
	if got, want := c.urcs(), []string{"RDY", "+CPIN: READY", "SMS DONE", "PB DONE"}; !slices.Equal(got, want) {
		t.Errorf("boot URCs %q, want %q", got, want)
	}
	c.send("AT\r")
	raw(t, c, "AT\r\r\nOK\r\n")
}

func TestUnixSocket(t *testing.T) {
	clk := clock.NewFake(epoch)
	m := New(Config{Dialect: "quectel", Clock: clk, Logger: testLogger(t), Scenario: builtin(t, "port-flap")})
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	path := filepath.Join(t.TempDir(), "modem.sock")
	// A stale socket from an earlier run is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	wait, err := m.ListenUnix(ctx, path)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := wait(); err != nil {
			t.Errorf("ListenUnix: %v", err)
		}
	}()

	dial := func() *client {
		conn, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return newClient(t, conn.(*net.UnixConn))
	}
	c := dial()
	c.ok("ATE0")
	c.want("AT+CGMM", "OK", "EC25")
	clk.Advance(20 * time.Minute)
	if _, err := c.line(); !errors.Is(err, io.EOF) {
		t.Fatalf("port gone: %v", err)
	}
	// While the modem is gone, a connection is dropped at once.
	if _, err := dial().line(); !errors.Is(err, io.EOF) {
		t.Fatalf("connection while gone: %v", err)
	}
	clk.Advance(5 * time.Second)
	c = dial()
	c.expect("+QIND: PB DONE")
	c.ok("ATE0")
	c.want("AT+CGMM", "OK", "EC25")
}

func TestTCP(t *testing.T) {
	m := New(Config{Logger: testLogger(t)})
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	addr, wait, err := m.ListenTCP(ctx, "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := wait(); err != nil {
			t.Errorf("ListenTCP: %v", err)
		}
	}()
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := newClient(t, conn.(*net.TCPConn))
	c.ok("ATE0")
	c.want("AT+CGMI", "OK", "openmifi")
}
