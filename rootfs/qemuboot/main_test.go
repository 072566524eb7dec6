package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openmifi/openmifi/rootfs/qemu/cellnet"
)

func TestWriteHook(t *testing.T) {
	dir := t.TempDir()
	self := "/usr/local/bin/qemuboot"
	hook, err := writeHook(dir, self, "/run/x/qmp.sock")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(hook)
	if err != nil {
		t.Fatal(err)
	}
	// modemsim runs it as HOOK up|down CID: the arguments go on as
	// they are.
	want := "exec '" + self + "' set-link -monitor '/run/x/qmp.sock' \"$@\"\n"
	if !strings.HasPrefix(string(data), "#!/bin/sh\n") || !strings.HasSuffix(string(data), want) {
		t.Errorf("hook script:\n%s", data)
	}
	if fi, _ := os.Stat(hook); fi.Mode()&0o111 == 0 {
		t.Errorf("hook not executable: %v", fi.Mode())
	}
	if _, err := writeHook(dir, self, "/run/it's/qmp.sock"); err == nil {
		t.Error("a quote in the monitor path accepted")
	}
}

func TestSetLinkUsage(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"up"},
		{"-monitor", "/x"},
		{"-monitor", "/x", "sideways", "1"},
		{"-monitor", "/x", "up", "1", "2"},
	} {
		if err := setLink(ctx, args); err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("set-link %q: %v", args, err)
		}
	}
	// Well formed, but no QEMU there: the monitor's error.
	err := setLink(ctx, []string{"-monitor", filepath.Join(t.TempDir(), "none.sock"), "down", "1"})
	if err == nil || !strings.Contains(err.Error(), "qemu monitor") {
		t.Errorf("set-link without a monitor: %v", err)
	}
}

// TestDataPathHook runs the chain a coverage loss takes, without QEMU:
// the modem simulator's data path changes, it runs the hook script, the
// hook runs qemuboot set-link, and set-link asks QEMU's monitor (a fake
// QMP server here) to set the uplink's link. A context activated and
// deactivated over AT stands for coverage coming and going.
func TestDataPathHook(t *testing.T) {
	if testing.Short() {
		t.Skip("builds qemuboot and modemsim; not in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Skipf("go env GOMOD: %v", err)
	}
	repo := filepath.Dir(strings.TrimSpace(string(out)))
	self := filepath.Join(dir, "qemuboot")
	build := exec.CommandContext(ctx, "go", "build", "-o", self, "./rootfs/qemuboot")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build qemuboot: %v\n%s", err, out)
	}
	modemsim, err := cellnet.BuildModemsim(ctx, repo, dir)
	if err != nil {
		t.Fatal(err)
	}

	monitor := filepath.Join(dir, "qmp.sock")
	ln, err := net.Listen("unix", monitor)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	links := make(chan string, 10)
	go serveQMP(ln, links)

	hook, err := writeHook(dir, self, monitor)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "modem.sock")
	m, err := cellnet.StartModem(ctx, cellnet.ModemConfig{Bin: modemsim, Socket: sock, Dialect: "generic", Hook: hook})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	lines := bufio.NewScanner(conn)
	at := func(cmd string) {
		t.Helper()
		io.WriteString(conn, cmd+"\r")
		for lines.Scan() {
			switch l := strings.TrimSpace(lines.Text()); {
			case l == "OK":
				return
			case strings.Contains(l, "ERROR"):
				t.Fatalf("%s: %s", cmd, l)
			}
		}
		t.Fatalf("%s: %v", cmd, lines.Err())
	}
	at(`AT+CGDCONT=1,"IP","internet"`)
	for _, step := range []struct{ cmd, want string }{
		{"AT+CGACT=1,1", `{"name":"uplink","up":true}`},
		{"AT+CGACT=0,1", `{"name":"uplink","up":false}`},
	} {
		at(step.cmd)
		select {
		case got := <-links:
			if got != step.want {
				t.Errorf("after %s: set_link %s, want %s", step.cmd, got, step.want)
			}
		case <-ctx.Done():
			t.Fatalf("after %s: no set_link reached the monitor", step.cmd)
		}
	}
}

// serveQMP answers QMP conversations on ln and sends the arguments of
// every set_link to links.
func serveQMP(ln net.Listener, links chan<- string) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			io.WriteString(conn, `{"QMP": {"version": {}, "capabilities": []}}`+"\r\n")
			dec := json.NewDecoder(conn)
			for {
				var cmd struct {
					Execute   string          `json:"execute"`
					Arguments json.RawMessage `json:"arguments"`
				}
				if dec.Decode(&cmd) != nil {
					return
				}
				if cmd.Execute == "set_link" {
					links <- string(cmd.Arguments)
				}
				io.WriteString(conn, `{"return": {}}`+"\r\n")
			}
		}()
	}
}
