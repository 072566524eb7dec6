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
	"github.com/openmifi/openmifi/rootfs"
	"github.com/openmifi/openmifi/rootfs/qemu"
)

// testWriter sends log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestBootX8664 is the CI boot test: it builds the qemu-x86_64 image,
// boots it with the serial console on a QEMU socket and drives the
// console: the shell prompt, hotspotd running, hotspotctl answering,
// hotspotd restarted after kill -9, the state disk and the radios there,
// and a clean power off that ends QEMU. KVM is used when it is usable;
// OPENMIFI_QEMU_ACCEL=tcg forces emulation.
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

	// First boot: formats the disk, runs hotspotd, survives its crash.
	m.boot()
	pid := m.pidof()
	if pid == "" {
		t.Fatal("hotspotd is not running")
	}
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
	m.shutdown("reboot", "reboot")
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
	var qemuOut bytes.Buffer
	m.proc = exec.CommandContext(m.ctx, m.bin, args...)
	m.proc.Stdout, m.proc.Stderr = &qemuOut, &qemuOut
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
