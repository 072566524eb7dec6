package qemutest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openmifi/openmifi/board"
	"github.com/openmifi/openmifi/internal/syncbuf"
	"github.com/openmifi/openmifi/rootfs"
	"github.com/openmifi/openmifi/rootfs/qemu"
	"github.com/openmifi/openmifi/rootfs/qemu/cellnet"
)

// testWriter sends log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestBootX8664 is the CI boot test: it builds the qemu-x86_64 image,
// boots it with the serial console on a QEMU socket, the modem simulator
// on its second serial port and the simulated cellular network behind
// its uplink NIC, and drives the console: the shell prompt, hotspotd
// running, the public connection up with the simulated operator and
// technology, eth0 addressed by the network's DHCP, the network's DNS and
// test server reached, the NIC's link following QEMU's monitor,
// hotspotctl answering, hotspotd restarted after kill -9, the state disk
// and the radios there, and a clean power off that ends QEMU; then a
// second boot, from the same state disk with the modem power-cycled,
// keeps the user's settings and brings the public connection up again
// (early in that faster boot the kernel's random number generator is not
// seeded yet, which the first DHCP exchange must cope with). KVM is used
// when it is usable; OPENMIFI_QEMU_ACCEL=tcg forces emulation.
func TestBootX8664(t *testing.T) {
	bootAndCheck(t, "qemu-x86_64", 4*time.Minute)
}

// TestBootARMv7 is the slower test: the same userland, cross-compiled,
// on an emulated ARMv7 with Debian's armmp kernel.
func TestBootARMv7(t *testing.T) {
	bootAndCheck(t, "qemu-armv7", 8*time.Minute)
}

func bootAndCheck(t *testing.T, boardName string, timeout time.Duration) {
	if testing.Short() {
		t.Skip("boots QEMU; not in -short")
	}
	if os.Getuid() != 0 {
		t.Skip("boot test runs as root (as make test does on CI): it may add Debian architectures and fetch packages")
	}
	b, err := board.Get(boardName)
	if err != nil {
		t.Fatal(err)
	}
	qemuBin, err := exec.LookPath(b.QEMU.System)
	if err != nil {
		t.Skipf("%s not installed (apt-get install qemu-system-x86 qemu-system-arm): %v", b.QEMU.System, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	repo, err := rootfs.RepoRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	buildStart := time.Now()
	res, err := rootfs.Build(ctx, rootfs.Options{
		Board: b, Repo: repo, Download: true, AddArch: true,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if errors.Is(err, rootfs.ErrNotFetched) {
		t.Skipf("a Debian package could not be fetched: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	initrd := filepath.Join(dir, "rootfs.cpio")
	var cpio bytes.Buffer
	if err := res.Tree.WriteCPIO(&cpio, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(initrd, cpio.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("image built in %v: initramfs %d bytes, hotspotd %d bytes, kernel %s",
		time.Since(buildStart).Round(time.Millisecond), cpio.Len(), res.Sizes["hotspotd"], res.KernelVersion)

	// A blank state disk: the first boot formats it.
	disk := filepath.Join(dir, "state.img")
	if err := qemu.EnsureDisk(disk, b.QEMU.StateSize); err != nil {
		t.Fatal(err)
	}
	accel, err := qemu.Accel(b, os.Getenv("OPENMIFI_QEMU_ACCEL"))
	if err != nil {
		t.Fatal(err)
	}
	m := &machine{t: t, ctx: ctx, bin: qemuBin, repo: repo, board: b, cfg: qemu.Config{
		Board: b, Kernel: res.KernelImage, Initrd: initrd, Disk: disk,
		ConsoleSocket: filepath.Join(dir, "console.sock"), Accel: accel, NoReboot: true,
	}}
	m.startCellular(dir)

	// First boot: formats the disk, runs hotspotd, survives its crash.
	m.boot()
	m.waitHotspotd()
	pid := m.pidof()
	if pid == "" {
		t.Fatal("hotspotd is not running")
	}
	m.checkCellular()
	out, rc := m.run("hotspotctl status")
	if rc != 0 || !strings.Contains(out, "sharing:") {
		t.Fatalf("hotspotctl status: exit %d\n%s", rc, out)
	}
	if out, rc := m.run("grep ' /var/lib/openmifi ' /proc/mounts"); rc != 0 || !strings.Contains(out, "/dev/vda /var/lib/openmifi ext2") {
		t.Errorf("state disk not mounted: exit %d\n%s", rc, out)
	}
	if out, rc := m.run("ls /sys/class/ieee80211 | wc -l"); rc != 0 || !strings.Contains(out, "3") {
		t.Errorf("want three hwsim radios: exit %d\n%s", rc, out)
	}

	// kill -9: the init starts hotspotd again after its first back-off
	// delay (1 s).
	killed := time.Now()
	if _, rc := m.run("kill -9 " + pid); rc != 0 {
		t.Fatalf("kill -9 %s failed", pid)
	}
	var newPid string
	for time.Since(killed) < 20*time.Second {
		if newPid = m.pidof(); newPid != "" && newPid != pid {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if newPid == "" || newPid == pid {
		t.Fatalf("hotspotd not restarted after kill -9 of %s (pidof: %q)", pid, newPid)
	}
	t.Logf("hotspotd %s killed, restarted as %s after %v", pid, newPid, time.Since(killed).Round(100*time.Millisecond))
	var status string
	for range 20 {
		if status, rc = m.run("hotspotctl status"); rc == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if rc != 0 {
		t.Fatalf("hotspotctl status after the restart: exit %d\n%s", rc, status)
	}
	if out, _ := m.run("hotspotd-log | grep -c 'hotspotd running'"); !strings.Contains(out, "2") {
		t.Errorf("hotspotd-log should show both runs:\n%s", out)
	}
	if out, rc := m.run("hotspotctl set ssid=boot-test-ssid"); rc != 0 {
		t.Fatalf("hotspotctl set: exit %d\n%s", rc, out)
	}
	m.shutdown("poweroff", "power off")

	// Second boot: the user's setting is still there, nothing formatted.
	// The modem was off with the device.
	m.powerCycleModem()
	m.boot()
	if strings.Contains(m.con.Transcript(), "formatting") {
		t.Error("second boot formatted the state disk again")
	}
	var got string
	for range 20 {
		if got, rc = m.run("hotspotctl get ssid"); rc == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(got, "boot-test-ssid") {
		t.Errorf("ssid after a reboot: exit %d\n%s", rc, got)
	}
	// The uplink comes up again with a freshly powered modem and the
	// persisted settings.
	m.checkCellular()
	m.checkConsolePassword()
	m.shutdown("reboot", "reboot")
}

// checkConsolePassword sets a console password and leaves the shell: the
// init asks for the password before the next one, refuses a wrong one
// and lets the right one in. The password is cleared again after.
func (m *machine) checkConsolePassword() {
	t := m.t
	t.Helper()
	const pw = "boot-test-pw"
	if out, rc := m.run("hotspotctl set console_password=" + pw); rc != 0 {
		t.Fatalf("hotspotctl set console_password: exit %d\n%s", rc, out)
	}
	ctx, cancel := context.WithTimeout(m.ctx, time.Minute)
	defer cancel()
	step := func(send string, want *regexp.Regexp) {
		t.Helper()
		if err := m.con.Send(send); err != nil {
			t.Fatal(err)
		}
		if _, err := m.con.Expect(ctx, want); err != nil {
			t.Fatal(err)
		}
	}
	password := regexp.MustCompile(`login\r*\nPassword: `)
	step("exit\n", password)
	step("not-"+pw+"\n", regexp.MustCompile(`Login incorrect`))
	if _, err := m.con.Expect(ctx, password); err != nil {
		t.Fatal(err)
	}
	step(pw+"\n", regexp.MustCompile(`openmifi:\S*# `))
	if strings.Contains(m.con.Transcript(), pw+"\r") {
		t.Error("the console echoed the password")
	}
	if out, rc := m.run("hotspotctl set console_password="); rc != 0 {
		t.Fatalf("clearing the console password: exit %d\n%s", rc, out)
	}
}

// machine is one QEMU board under test, booted as often as the test
// wants from the same image and state disk.
type machine struct {
	t     *testing.T
	ctx   context.Context
	bin   string
	repo  string
	board board.Board
	cfg   qemu.Config

	con    *Console
	exited chan error
	proc   *exec.Cmd
	boots  int

	// cell is the simulated cellular network QEMU runs in.
	cell *cellnet.Network
	// modem is the modem simulator on the board's modem port.
	modem    *cellnet.Modem
	modemCfg cellnet.ModemConfig
}

// boot starts QEMU and waits for the shell prompt.
func (m *machine) boot() {
	t := m.t
	t.Helper()
	m.boots++
	args, err := qemu.Args(m.cfg)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(m.cfg.ConsoleSocket)
	var qemuOut syncbuf.Buffer
	if m.cell != nil {
		m.proc = m.cell.Command(m.ctx, m.bin, args...)
	} else {
		m.proc = exec.CommandContext(m.ctx, m.bin, args...)
	}
	m.proc.Stdout, m.proc.Stderr = &qemuOut, &qemuOut
	m.proc.SysProcAttr = cellnet.DieWithParent()
	start := time.Now()
	if err := m.proc.Start(); err != nil {
		t.Fatal(err)
	}
	m.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, exited chan<- error) { exited <- cmd.Wait() }(m.proc, m.exited)
	con, err := Dial(m.ctx, m.cfg.ConsoleSocket)
	if err != nil {
		t.Fatal(err)
	}
	m.con = con
	boot := m.boots
	t.Cleanup(func() {
		con.Close()
		if t.Failed() {
			t.Logf("boot %d: qemu %s\nQEMU said: %s\nconsole transcript:\n%s", boot, strings.Join(args, " "), qemuOut.String(), con.Transcript())
		}
		saveTranscript(m.repo, m.board.Name, boot, con.Transcript())
	})
	match, err := con.Expect(m.ctx, regexp.MustCompile(`openmifi ready"? board=\S+ uptime=([0-9.]+m?s)`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := con.Expect(m.ctx, regexp.MustCompile(`openmifi:\S*# `)); err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("boot: %s accel=%s boot %d: shell prompt %.1fs after QEMU started (kernel uptime at the init's ready: %s)",
		m.board.Name, m.cfg.Accel, boot, time.Since(start).Seconds(), match[1])
	t.Log(line)
	fmt.Println(line)
}

// run runs a shell command on the console.
func (m *machine) run(cmdline string) (string, int) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(m.ctx, 30*time.Second)
	defer cancel()
	out, rc, err := m.con.Run(ctx, cmdline)
	if err != nil {
		m.t.Fatal(err)
	}
	return out, rc
}

var pidRE = regexp.MustCompile(`(?m)^(\d+)\s*$`)

func (m *machine) pidof() string {
	m.t.Helper()
	out, _ := m.run("pidof hotspotd")
	if match := pidRE.FindStringSubmatch(out); match != nil {
		return match[1]
	}
	return ""
}

// shutdown types command (poweroff, reboot), waits for the init to say
// it halted the system with what, and for QEMU (run with -no-reboot) to
// exit.
func (m *machine) shutdown(command, what string) {
	t := m.t
	t.Helper()
	start := time.Now()
	if err := m.con.Send(command + "\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.con.Expect(m.ctx, regexp.MustCompile(`system halted: `+what)); err != nil {
		t.Error(err)
	}
	select {
	case err := <-m.exited:
		if err != nil {
			t.Errorf("QEMU after %s: %v", command, err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("QEMU still running 30 s after %s", command)
		m.proc.Process.Kill()
		<-m.exited
	}
	t.Logf("%s: QEMU exited after %v", command, time.Since(start).Round(time.Millisecond))
}

// saveTranscript keeps the last test's consoles in the cache for a person
// to read (.cache/qemu/BOARD/boot-test-N.log).
func saveTranscript(repo, board string, boot int, transcript string) {
	dir := filepath.Join(repo, ".cache", "qemu", board)
	if os.MkdirAll(dir, 0o755) == nil {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("boot-test-%d.log", boot)), []byte(transcript), 0o644)
	}
}

// startCellular starts the modem simulator (the board's dialect) and the
// simulated cellular network for the machine's boots, and stops them
// when the test ends. The modem simulator's log goes to the test's log
// if the test fails.
func (m *machine) startCellular(dir string) {
	t := m.t
	t.Helper()
	bin, err := cellnet.BuildModemsim(m.ctx, m.repo, dir)
	if err != nil {
		t.Fatal(err)
	}
	cell, err := cellnet.Start(m.ctx, cellnet.Config{Dir: dir, Log: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cell.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			dns, _ := os.ReadFile(filepath.Join(dir, "dnsmasq.log"))
			t.Logf("dnsmasq log:\n%s", dns)
		}
	})
	m.cell = cell
	m.cfg.UplinkTap, m.cfg.UplinkMAC = cell.Tap, cellnet.GuestMAC
	m.cfg.Monitor = filepath.Join(dir, "qmp.sock")

	logPath := filepath.Join(dir, "modemsim.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	m.cfg.ModemSocket = filepath.Join(dir, "modem.sock")
	m.modemCfg = cellnet.ModemConfig{
		Bin: bin, Socket: m.cfg.ModemSocket, Dialect: m.board.Modem.Dialect, Verbose: true, Log: logf,
	}
	if m.modem, err = cellnet.StartModem(m.ctx, m.modemCfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if m.modem != nil {
			if err := m.modem.Close(); err != nil {
				t.Error(err)
			}
		}
		logf.Close()
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("modem simulator log:\n%s", data)
		}
	})
}

// powerCycleModem stops the modem simulator and starts a fresh one, as
// the device's power switch does to its modem; QEMU, which is off too,
// connects to the new one when it starts.
func (m *machine) powerCycleModem() {
	t := m.t
	t.Helper()
	if err := m.modem.Close(); err != nil {
		t.Error(err)
	}
	var err error
	if m.modem, err = cellnet.StartModem(m.ctx, m.modemCfg); err != nil {
		t.Fatal(err)
	}
}

// waitHotspotd waits until hotspotd's log says it runs. If hotspotd
// refuses the modem flags the init passes (its modem driver not there
// yet), the modem and the network are checked from the shell instead, so
// that the test tells which half works, and the test fails.
func (m *machine) waitHotspotd() {
	t := m.t
	t.Helper()
	var out string
	for range 60 {
		out, _ = m.run("hotspotd-log | grep -e 'hotspotd running' -e 'flag provided but not defined' | tail -n 1")
		switch {
		case strings.Contains(out, "flag provided but not defined"):
			m.hotspotdRefusesFlags()
		case strings.Contains(out, "hotspotd running"):
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	log, _ := m.run("hotspotd-log | tail -n 20")
	t.Fatalf("hotspotd never said it runs; its log:\n%s", log)
}

func (m *machine) hotspotdRefusesFlags() {
	t := m.t
	t.Helper()
	log, _ := m.run("hotspotd-log | tail -n 5")
	t.Logf("hotspotd refuses its command line:\n%s", log)
	// The modem simulator answers on the modem port.
	port := "/dev/" + m.board.Modem.Device
	out, _ := m.run("stty -F " + port + " raw -echo 115200; (timeout 3 cat " + port + " > /tmp/at.out &); sleep 0.5; printf 'ATI\\r' > " + port + "; sleep 1; cat /tmp/at.out")
	if !strings.Contains(out, "modemsim") || !strings.Contains(out, "OK") {
		t.Errorf("no modem simulator answering ATI on %s:\n%s", port, out)
	}
	// The network's DHCP, asked by busybox's client in hotspotd's place.
	m.run(`printf '#!/bin/sh\n[ "$1" = bound ] && ip addr add $ip/$mask dev $interface\nexit 0\n' > /tmp/dhcp.sh; chmod +x /tmp/dhcp.sh`)
	if out, rc := m.run("ip link set eth0 up; udhcpc -i eth0 -n -q -t 10 -T 1 -s /tmp/dhcp.sh"); rc != 0 {
		t.Errorf("udhcpc on eth0: exit %d\n%s", rc, out)
	}
	m.checkNetwork()
	t.Fatalf("hotspotd does not take the modem flags the init passes (-modem, -modem-baud, -modem-dialect, -uplink, -uplink-addressing): its modem driver is not there yet")
}

// checkCellular checks hotspotd's public connection over the simulated
// modem (operator and technology in hotspotctl status, once registered
// and its default context is up), eth0's address from the network's
// DHCP, and the network's services.
func (m *machine) checkCellular() {
	t := m.t
	t.Helper()
	want := regexp.MustCompile(`uplink: +up on eth0, Test PLMN 1-1 LTE`)
	var status string
	start := time.Now()
	for time.Since(start) < 90*time.Second {
		status, _ = m.run("hotspotctl status")
		if want.MatchString(status) {
			break
		}
		time.Sleep(time.Second)
	}
	if !want.MatchString(status) {
		log, _ := m.run("hotspotd-log | grep -v 'level=DEBUG' | tail -n 40")
		// Tells the network's part from the driver's: busybox's
		// DHCP client asks the network directly.
		diag, _ := m.run("ip link show dev eth0; cat /sys/class/net/eth0/carrier; udhcpc -i eth0 -n -q -t 3 -T 1 -s /bin/true 2>&1")
		t.Errorf("no public connection over the simulated modem after %v; hotspotctl status:\n%s\nhotspotd log:\n%s\neth0 and busybox udhcpc:\n%s",
			time.Since(start).Round(time.Second), status, log, diag)
	} else {
		// The kernel's seeding shows whether the first DHCP
		// exchange had to wait for it.
		how, _ := m.run("hotspotd-log | grep -e 'DHCP lease' -e 'random number' | tail -n 4; dmesg | grep -i 'crng init'")
		t.Logf("public connection up %v after the prompt:\n%s\n%s", time.Since(start).Round(100*time.Millisecond), status, how)
	}
	m.checkNetwork()
}

// checkNetwork checks, from the guest, eth0's address from the simulated
// network, its test server and DNS, and the NIC's carrier following
// set_link on QEMU's monitor (the modem simulator's data path hook).
func (m *machine) checkNetwork() {
	t := m.t
	t.Helper()
	addr := cellnet.GuestAddr.String() + "/24"
	var out string
	for range 30 {
		if out, _ = m.run("ip -4 addr show dev eth0"); strings.Contains(out, addr) {
			break
		}
		time.Sleep(time.Second)
	}
	if !strings.Contains(out, addr) {
		t.Errorf("eth0 has no %s from the network's DHCP:\n%s", addr, out)
		return
	}
	gw := cellnet.Gateway.Addr().String()
	// No -T: Debian 12's static busybox wget crashes with a timeout.
	if out, rc := m.run("wget -q -O- http://" + gw + "/"); rc != 0 || !strings.Contains(out, strings.TrimSpace(cellnet.TestPage)) {
		t.Errorf("test server http://%s/: exit %d\n%s", gw, rc, out)
	}
	if out, rc := m.run("nslookup " + cellnet.TestName + " " + gw); rc != 0 || !strings.Contains(out, gw) {
		t.Errorf("DNS of %s at %s: exit %d\n%s", cellnet.TestName, gw, rc, out)
	}
	// The carrier follows the monitor: what a coverage loss in a modem
	// scenario does through the simulator's hook.
	for _, up := range []bool{false, true} {
		if err := qemu.SetLink(m.ctx, m.cfg.Monitor, qemu.UplinkNetdev, up); err != nil {
			t.Errorf("set_link: %v", err)
			return
		}
		want := map[bool]string{false: "0", true: "1"}[up]
		var carrier string
		for range 20 {
			if carrier, _ = m.run("cat /sys/class/net/eth0/carrier"); strings.TrimSpace(carrier) == want {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if strings.TrimSpace(carrier) != want {
			t.Errorf("eth0 carrier %q after set_link up=%v", strings.TrimSpace(carrier), up)
		}
	}
}
