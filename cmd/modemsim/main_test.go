package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openmifi/openmifi/internal/syncbuf"
	"golang.org/x/sys/unix"
)

// start runs the command with args until the test ends and returns the
// paths it printed once it has printed n of them.
func start(t *testing.T, n int, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, &stdout, t.Output()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := strings.Fields(stdout.String())
		if len(lines) >= n {
			return lines
		}
		select {
		case err := <-done:
			t.Fatalf("run ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("printed %q", lines)
		}
		time.Sleep(time.Millisecond)
	}
}

type port struct {
	t  *testing.T
	rw interface {
		io.ReadWriter
		SetReadDeadline(time.Time) error
	}
	r *bufio.Reader
}

// cmd sends a command line and returns the lines of its response,
// final result code included.
func (p *port) cmd(line string) []string {
	p.t.Helper()
	if _, err := p.rw.Write([]byte(line + "\r")); err != nil {
		p.t.Fatal(err)
	}
	var lines []string
	for {
		p.rw.SetReadDeadline(time.Now().Add(5 * time.Second))
		l, err := p.r.ReadString('\n')
		if err != nil {
			p.t.Fatalf("%s: %v after %q", line, err, lines)
		}
		l = strings.TrimSpace(l)
		if l == "" || l == line {
			continue
		}
		lines = append(lines, l)
		if l == "OK" || strings.Contains(l, "ERROR") {
			return lines
		}
	}
}

func (p *port) want(line string, want ...string) {
	p.t.Helper()
	if got := p.cmd(line); strings.Join(got, "|") != strings.Join(want, "|") {
		p.t.Errorf("%s: %q, want %q", line, got, want)
	}
}

func TestPTYAndHook(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "modem0")
	log := filepath.Join(dir, "hook.log")
	hook := filepath.Join(dir, "hook")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\necho \"$1 $2\" >>"+log+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	paths := start(t, 1, "-dialect", "quectel", "-pty", link, "-scenario", "sim-locked", "-pin", "4321",
		"-hook", hook, "-addr", "10.11.12.13/24", "-dns", "10.11.12.53")
	if paths[0] != link {
		t.Fatalf("printed %q, want %s", paths, link)
	}
	f, err := os.OpenFile(link, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := &port{t: t, rw: f, r: bufio.NewReader(f)}
	p.want("ATE0", "OK")
	p.want("AT+CPIN?", "+CPIN: SIM PIN", "OK")
	p.want(`AT+CPIN="4321"`, "OK")
	p.want("AT+CGMM", "+CPIN: READY", "+QIND: SMS DONE", "+QIND: PB DONE", "EC25", "OK")
	p.want(`AT+CGDCONT=1,"IP","";+QNETDEVCTL=1,1,0`, "OK")
	p.want("AT+CGCONTRDP=1", `+CGCONTRDP: 1,5,"internet","10.11.12.13.255.255.255.0","10.11.12.1","10.11.12.53"`, "OK")
	p.want("AT+QNETDEVCTL=0,1,0", "OK")
	if got, _ := os.ReadFile(log); string(got) != "up 1\ndown 1\n" {
		t.Errorf("hook ran with %q", got)
	}
}

func TestUnixAndTCP(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "modem.sock")
	paths := start(t, 2, "-dialect", "simcom", "-tech", "umts", "-unix", sock, "-tcp", "127.0.0.1:0")
	if paths[0] != sock {
		t.Errorf("printed %q, want %s first", paths, sock)
	}
	for i, addr := range []string{"unix:" + sock, "tcp:" + paths[1]} {
		network, address, _ := strings.Cut(addr, ":")
		conn, err := net.Dial(network, address)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		p := &port{t: t, rw: conn.(interface {
			io.ReadWriter
			SetReadDeadline(time.Time) error
		}), r: bufio.NewReader(conn)}
		p.want("ATE0", "OK")
		p.want("AT+CICCID", "+ICCID: 89001010123456789015", "OK")
		if i == 0 {
			p.want("AT+CGMR", "+CGMR: LE20B04SIM7600M22", "OK")
			p.want("AT+COPS?", `+COPS: 0,0,"Test PLMN 1-1",2`, "OK")
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-dialect", "nokia"},
		{"-tech", "5g"},
		{"-scenario", filepath.Join(t.TempDir(), "missing")},
		{"-addr", "10.0.0.1"},
		{"-gw", "fe80::1"},
		{"-dns", "8.8.8.8,x"},
		{"stray"},
		{"-nope"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

// TestIface makes a coverage loss real on a veth end, on the real clock:
// up when the context is activated, down when coverage goes.
func TestIface(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a veth pair")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2; make test installs it)")
	}
	var b [3]byte
	rand.Read(b[:])
	ifname := "msim" + hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "link", "add", ifname, "type", "veth", "peer", "name", ifname+"p").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", ifname).Run() })

	scenario := filepath.Join(t.TempDir(), "flap.txt")
	if err := os.WriteFile(scenario, []byte("at 1500ms coverage lost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "modem0")
	start(t, 1, "-pty", link, "-iface", ifname, "-scenario", scenario)
	f, err := os.OpenFile(link, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := &port{t: t, rw: f, r: bufio.NewReader(f)}
	p.want("ATE0", "OK")
	if isUp(t, ifname) {
		t.Fatal("interface up before any context")
	}
	p.want(`AT+CGDCONT=1,"IP","internet";+CGACT=1,1`, "OK")
	if !isUp(t, ifname) {
		t.Error("interface not up after +CGACT")
	}
	deadline := time.Now().Add(5 * time.Second)
	for isUp(t, ifname) {
		if time.Now().After(deadline) {
			t.Fatal("interface still up after coverage was lost")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.want("AT+CGACT?", "+CGACT: 1,0", "OK")
}

func isUp(t *testing.T, ifname string) bool {
	t.Helper()
	b, err := os.ReadFile("/sys/class/net/" + ifname + "/flags")
	if err != nil {
		t.Fatal(err)
	}
	flags, err := strconv.ParseUint(strings.TrimSpace(string(b)), 0, 32)
	if err != nil {
		t.Fatal(err)
	}
	return flags&unix.IFF_UP != 0
}
