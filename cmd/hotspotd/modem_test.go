package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openmifi/openmifi/internal/clock"
	"github.com/openmifi/openmifi/internal/ctl"
	"github.com/openmifi/openmifi/internal/daemon"
	"github.com/openmifi/openmifi/internal/modemsim"
	"github.com/openmifi/openmifi/internal/syncbuf"
)

func TestModemFlagsAreChecked(t *testing.T) {
	for _, args := range [][]string{
		{"-modem-dialect", "huawei"},
		{"-uplink-addressing", "ppp"},
		{"-modem-baud", "0"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s", args, code, errOut.String())
		}
	}
}

// TestModemEndToEnd runs hotspotd as a process with -modem on a simulated
// modem's pseudo-terminal: the public connection comes up and hotspotctl
// status shows operator, technology and signal; coverage lost and back
// shows as down, then up. The simulator's scenario runs on a fake clock
// that the test moves on once each state is seen.
func TestModemEndToEnd(t *testing.T) {
	dir := t.TempDir()
	prov := filepath.Join(dir, "provisioning.xml")
	if err := os.WriteFile(prov, []byte(`<Settings Path="HotSpot">
  <Setting Name="Enabled" Value="1" />
  <Setting Name="EntitlementRequired" Value="0" />
</Settings>`), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := modemsim.BuiltinScenario("coverage-flap") // lost at 10m, back at 12m
	if err != nil {
		t.Fatal(err)
	}
	var simLog syncbuf.Buffer
	clk := clock.NewFake(time.Now())
	sim := modemsim.New(modemsim.Config{Scenario: sc, Clock: clk, Logger: slog.New(slog.NewTextHandler(&simLog, nil))})
	defer sim.Close()
	ctx, cancel := context.WithCancel(context.Background())
	link := filepath.Join(dir, "ttyModem")
	path, wait, err := sim.ListenPTY(ctx, link)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := wait(); err != nil {
			t.Errorf("ListenPTY: %v", err)
		}
	}()

	socket := filepath.Join(dir, "ctl.sock")
	cmd := exec.Command(os.Args[0],
		"-provisioning", prov, "-state", filepath.Join(dir, "state"), "-socket", socket,
		"-keys", filepath.Join(dir, "keys"), "-strings", filepath.Join(dir, "strings"),
		"-run", filepath.Join(dir, "run"), "-lan", "none0",
		"-modem", path, "-modem-dialect", "generic", "-uplink", "wwan0", "-uplink-addressing", "none")
	cmd.Env = append(os.Environ(), "HOTSPOTD_TEST_MAIN=1")
	var log syncbuf.Buffer
	cmd.Stderr, cmd.Stdout = &log, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("hotspotd: %v", err)
		}
		if t.Failed() {
			t.Logf("hotspotd log:\n%s\nmodemsim log:\n%s", log.String(), simLog.String())
		}
	}()

	status := func() string {
		var out, errOut bytes.Buffer
		ctl.Main([]string{"-socket", socket, "-timeout", "5s", "status"}, &out, &errOut)
		return out.String() + errOut.String()
	}
	// waitFor polls hotspotctl status until it shows want.
	waitFor := func(want string) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			st := status()
			if strings.Contains(st, want) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("hotspotctl status never showed %q; last:\n%s", want, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	up := "uplink:   up on wwan0, Test PLMN 1-1 LTE, -93 dBm (3/5)"
	waitFor(up)
	clk.Advance(10 * time.Minute)
	waitFor("uplink:   down (deregistered)")
	clk.Advance(2 * time.Minute)
	waitFor(up)
}

// TestModemStaticUplinkInNamespace runs the modem driver as main wires it
// against the simulator, with the uplink interface in a namespace of its
// own: raw-IP ("static") addressing puts the context's address and the
// default route on it.
func TestModemStaticUplinkInNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces")
	}
	router := newNS(t, "m")
	router.sh(t, "ip", "link", "add", "wwan0", "type", "veth", "peer", "name", "peer0")
	router.sh(t, "ip", "link", "set", "peer0", "up")

	dir := t.TempDir()
	prov := filepath.Join(dir, "provisioning.xml")
	if err := os.WriteFile(prov, []byte(`<Settings Path="HotSpot"><Setting Name="Enabled" Value="1" /><Setting Name="EntitlementRequired" Value="0" /></Settings>`), 0o644); err != nil {
		t.Fatal(err)
	}
	var logBuf syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	defer func() {
		if t.Failed() {
			t.Logf("log:\n%s", logBuf.String())
		}
	}()
	sim := modemsim.New(modemsim.Config{Logger: log})
	defer sim.Close()
	ctx, cancel := context.WithCancel(context.Background())
	path, wait, err := sim.ListenPTY(ctx, filepath.Join(dir, "ttyModem"))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	defer func() {
		cancel()
		wait()
	}()

	mf := modemFlags{device: path, baud: 115200, dialect: "generic", uplink: "wwan0", addressing: "static"}
	if err := mf.check(); err != nil {
		t.Fatal(err)
	}
	var drv daemon.Drivers
	mf.add(&drv, log, router.fd)
	socket := filepath.Join(dir, "ctl.sock")
	d, err := daemon.New(daemon.Config{
		Provisioning: []string{prov}, StateDir: filepath.Join(dir, "state"), Socket: socket,
		StringsDir: filepath.Join(dir, "strings"), KeysDir: filepath.Join(dir, "keys"), Log: log,
	}, drv)
	if err != nil {
		t.Fatal(err)
	}
	dctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(dctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var out bytes.Buffer
		ctl.Main([]string{"-socket", socket, "-timeout", "5s", "status"}, &out, &out)
		if strings.Contains(out.String(), "uplink:   up on wwan0, Test PLMN 1-1 LTE") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no uplink:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if a := router.sh(t, "ip", "addr", "show", "dev", "wwan0"); !strings.Contains(a, "inet 100.64.1.2/30") {
		t.Errorf("uplink address:\n%s", a)
	}
	if r := router.sh(t, "ip", "-4", "route", "show", "default"); !strings.Contains(r, "default via 100.64.1.1 dev wwan0") {
		t.Errorf("default route: %q", r)
	}
}
