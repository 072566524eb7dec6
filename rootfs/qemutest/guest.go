package qemutest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/openmifi/openmifi/board"
	"github.com/openmifi/openmifi/internal/syncbuf"
	"github.com/openmifi/openmifi/rootfs"
	"github.com/openmifi/openmifi/rootfs/qemu"
	"github.com/openmifi/openmifi/rootfs/qemu/cellnet"
)

// TestModules are kernel modules a test image loads beyond the board's
// (which include the CCMP cipher the access point needs): BIP's cmac for
// protected management frames, which the image has no modprobe to load on
// demand, and veth, for the tests in the guest that pair namespaces as
// they do on a host.
var TestModules = []board.Module{{Name: "cmac"}, {Name: "veth"}}

// TestRadios is how many mac80211_hwsim radios a test image has: the
// board's AP radio (phy0, which hotspotd holds from its start: nl80211
// gives one process a radio's management frames), two clients (phy1,
// phy2), and one for hostapd, the baseline (phy3, HostapdIface).
const TestRadios = 4

// HostapdIface is the interface of the radio hostapd runs on in a test
// image.
const HostapdIface = "wlan3"

// TestMemory is the RAM (MiB) of a guest booting a test image: the
// initramfs, unpacked into RAM, carries the tools' libraries and the Go
// test binaries too (tens of MiB beyond the device's image), and a short
// unpack truncates files at random.
const TestMemory = 512

// ImageOptions say what goes into a test image.
type ImageOptions struct {
	Board string // default qemu-x86_64
	Repo  string // "" finds it
	// Dir receives the initramfs; "" is .cache/qemu/BOARD/test-image.
	Dir string
	// TestTools adds hostapd, wpa_supplicant, iw and ip with their
	// libraries (rootfs.TestTools), and StampTool.
	TestTools bool
	// GoTests are package patterns (./drivers/wifi/...) whose tests
	// are built with go test -c for the board and put under
	// rootfs.TestDir.
	GoTests []string
	Log     *slog.Logger
}

// Image is a built test image.
type Image struct {
	Board  board.Board
	Repo   string
	Kernel string
	Initrd string
	Size   int
	// GoTests are the test binaries in the image, and the packages
	// whose tests did not build.
	GoTests []GoTestBinary
}

// BuildImage builds a test image of the board: its normal image plus the
// test modules, tools and Go test binaries asked for.
func BuildImage(ctx context.Context, opts ImageOptions) (*Image, error) {
	if opts.Board == "" {
		opts.Board = "qemu-x86_64"
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	b, err := board.Get(opts.Board)
	if err != nil {
		return nil, err
	}
	if opts.Repo == "" {
		if opts.Repo, err = rootfs.RepoRoot(ctx); err != nil {
			return nil, err
		}
	}
	if opts.Dir == "" {
		opts.Dir = filepath.Join(opts.Repo, ".cache", "qemu", b.Name, "test-image")
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("test image: %w", err)
	}
	b.Modules = append(append([]board.Module(nil), b.Modules...), TestModules...)
	for i, m := range b.Modules {
		if m.Name == "mac80211_hwsim" {
			b.Modules[i].Params = []string{fmt.Sprintf("radios=%d", TestRadios)}
		}
	}
	if b.QEMU != nil && b.QEMU.Memory < TestMemory {
		q := *b.QEMU
		q.Memory = TestMemory
		b.QEMU = &q
	}
	img := &Image{Board: b, Repo: opts.Repo, Initrd: filepath.Join(opts.Dir, "rootfs.cpio")}

	var extras []rootfs.Extra
	if opts.TestTools {
		tools, err := rootfs.TestTools()
		if err != nil {
			return nil, err
		}
		extras = append(extras, tools...)
		stamp := filepath.Join(opts.Dir, "stamp")
		if err := goBuild(ctx, opts.Repo, b.Arch, stamp, "./rootfs/qemutest/stamp"); err != nil {
			return nil, err
		}
		extras = append(extras, rootfs.TestFile("stamp", stamp, 0o755))
	}
	if len(opts.GoTests) > 0 {
		bins, files, err := BuildGoTests(ctx, opts.Repo, b.Arch, filepath.Join(opts.Dir, "gotests"), opts.GoTests, opts.Log)
		if err != nil {
			return nil, err
		}
		img.GoTests = bins
		extras = append(extras, files...)
	}

	res, err := rootfs.Build(ctx, rootfs.Options{
		Board: b, Repo: opts.Repo, Download: true, AddArch: os.Getuid() == 0,
		Extra: extras, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	var cpio bytes.Buffer
	if err := res.Tree.WriteCPIO(&cpio, 0); err != nil {
		return nil, err
	}
	if err := os.WriteFile(img.Initrd, cpio.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("test image: %w", err)
	}
	img.Kernel, img.Size = res.KernelImage, cpio.Len()
	return img, nil
}

// goBuild builds a static program for arch, as the image's are.
func goBuild(ctx context.Context, repo string, arch board.Arch, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", out, pkg)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), arch.Env()...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// GoTestBinary is one package's tests built for the guest.
type GoTestBinary struct {
	Package string // import path
	// Dir is the binary's directory in the image, holding the
	// package's testdata; the tests run there.
	Dir      string
	Path     string // the binary in the image
	BuildErr error  // why it is not in the image
}

// BuildGoTests compiles the tests of the packages matching patterns for
// arch (static, CGO_ENABLED=0) into dir and returns them with the files
// that put them and their testdata into the image. Packages without
// tests are left out; a package whose tests do not build is returned with
// BuildErr, so that one broken package does not stop an image.
func BuildGoTests(ctx context.Context, repo string, arch board.Arch, dir string, patterns []string, log *slog.Logger) ([]GoTestBinary, []rootfs.Extra, error) {
	args := append([]string{"list", "-e", "-f", "{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}\t{{.Dir}}{{end}}"}, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		// A pattern matching nothing is no error: no tests to run.
		if strings.Contains(stderr.String(), "matched no packages") {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("go list %v: %v: %s", patterns, err, strings.TrimSpace(stderr.String()))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	var bins []GoTestBinary
	var extras []rootfs.Extra
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, pkgDir, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		name := strings.ReplaceAll(strings.TrimPrefix(pkg, "github.com/openmifi/openmifi/"), "/", "-")
		bin := GoTestBinary{Package: pkg, Dir: rootfs.TestDir + "/" + name, Path: rootfs.TestDir + "/" + name + "/" + name + ".test"}
		host := filepath.Join(dir, name+".test")
		os.Remove(host)
		log.Info("building tests for the guest", "package", pkg)
		// Stripped: the image is unpacked into the guest's RAM.
		c := exec.CommandContext(ctx, "go", "test", "-c", "-trimpath", "-ldflags=-s -w", "-o", host, pkg)
		c.Dir = repo
		c.Env = append(os.Environ(), arch.Env()...)
		if out, err := c.CombinedOutput(); err != nil {
			bin.BuildErr = fmt.Errorf("go test -c %s: %v\n%s", pkg, err, out)
			bins = append(bins, bin)
			continue
		}
		extras = append(extras, rootfs.TestFile(name+"/"+name+".test", host, 0o755))
		td, err := testdata(pkgDir, name)
		if err != nil {
			return nil, nil, err
		}
		extras = append(extras, td...)
		bins = append(bins, bin)
	}
	return bins, extras, nil
}

// testdata puts a package's testdata directory beside its test binary,
// where the tests look for it.
func testdata(pkgDir, name string) ([]rootfs.Extra, error) {
	root := filepath.Join(pkgDir, "testdata")
	var extras []rootfs.Extra
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == root {
			return nil
		}
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(pkgDir, p)
		if err != nil {
			return err
		}
		extras = append(extras, rootfs.TestFile(name+"/"+filepath.ToSlash(rel), p, 0o644))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("testdata of %s: %w", pkgDir, err)
	}
	return extras, nil
}

// BootOptions are a guest's QEMU settings.
type BootOptions struct {
	// Dir holds the console socket; "" is a new temporary directory,
	// removed by Close.
	Dir string
	// Accel is kvm, tcg or "" (auto, or $OPENMIFI_QEMU_ACCEL).
	Accel string
	// Disk is a state disk image; "" boots without one. A disk that
	// was booted before keeps the last boot's leases and settings: give
	// each cellular boot a fresh one.
	Disk string
	// Cellular gives the guest its public connection, as the boot
	// test's does: the modem simulator (the board's dialect) on the
	// modem port and the simulated cellular network (package cellnet)
	// behind the uplink NIC, with QEMU run inside the network's
	// namespace. Without it hotspotd finds no modem and sharing cannot
	// start. It needs root; Close stops both.
	Cellular bool
}

// Guest is a booted test image, driven over its serial console.
type Guest struct {
	Console *Console
	Accel   string
	// Booted is the time from QEMU's start to the shell prompt.
	Booted time.Duration

	cmd     *exec.Cmd
	exited  chan error
	qemuOut *syncbuf.Buffer
	tmp     string
	args    []string

	// The cellular side (BootOptions.Cellular), nil without it or
	// once closed; its logs stay in dir.
	cellular bool
	cell     *cellnet.Network
	modem    *cellnet.Modem
	modemLog *os.File
	dir      string
}

var (
	readyRE  = regexp.MustCompile(`openmifi ready"? board=\S+ uptime=`)
	promptRE = regexp.MustCompile(`openmifi:\S*# `)
)

// Boot starts QEMU with img and waits for the console's shell prompt.
// QEMU ends when ctx is done, or with Poweroff or Close.
func Boot(ctx context.Context, img *Image, opts BootOptions) (*Guest, error) {
	bin, err := exec.LookPath(img.Board.QEMU.System)
	if err != nil {
		return nil, fmt.Errorf("%s not installed: %w", img.Board.QEMU.System, err)
	}
	want := opts.Accel
	if want == "" {
		want = os.Getenv("OPENMIFI_QEMU_ACCEL")
	}
	accel, err := qemu.Accel(img.Board, want)
	if err != nil {
		return nil, err
	}
	g := &Guest{Accel: accel, qemuOut: &syncbuf.Buffer{}}
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "openmifi-guest-"); err != nil {
			return nil, err
		}
		g.tmp = dir
	}
	g.dir = dir
	sock := filepath.Join(dir, "console.sock")
	os.Remove(sock)
	cfg := qemu.Config{
		Board: img.Board, Kernel: img.Kernel, Initrd: img.Initrd, Disk: opts.Disk,
		ConsoleSocket: sock, Accel: accel, NoReboot: true,
	}
	if opts.Cellular {
		if err := g.startCellular(ctx, img, dir, &cfg); err != nil {
			g.Close()
			return nil, err
		}
	}
	if g.args, err = qemu.Args(cfg); err != nil {
		g.Close()
		return nil, err
	}
	start := time.Now()
	if g.cell != nil {
		g.cmd = g.cell.Command(ctx, bin, g.args...)
	} else {
		g.cmd = exec.CommandContext(ctx, bin, g.args...)
	}
	g.cmd.Stdout, g.cmd.Stderr = g.qemuOut, g.qemuOut
	// No QEMU left behind by a test binary killed on a timeout.
	g.cmd.SysProcAttr = cellnet.DieWithParent()
	if err := g.cmd.Start(); err != nil {
		g.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	g.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, exited chan<- error) { exited <- cmd.Wait() }(g.cmd, g.exited)
	if g.Console, err = Dial(ctx, sock); err != nil {
		g.Close()
		return nil, err
	}
	if _, err := g.Console.Expect(ctx, readyRE); err != nil {
		g.Close()
		return nil, fmt.Errorf("boot: %w\nQEMU: %s", err, g.qemuOut.String())
	}
	if _, err := g.Console.Expect(ctx, promptRE); err != nil {
		g.Close()
		return nil, fmt.Errorf("boot: %w", err)
	}
	if strings.Contains(g.Console.Transcript(), "Initramfs unpacking failed") {
		g.Close()
		return nil, fmt.Errorf("boot: the initramfs (%d bytes) did not fit in the guest's RAM (%d MiB)", img.Size, img.Board.QEMU.Memory)
	}
	g.Booted = time.Since(start)
	return g, nil
}

// startCellular starts the modem simulator and the simulated network
// for one boot and connects cfg's modem port and uplink NIC to them.
func (g *Guest) startCellular(ctx context.Context, img *Image, dir string, cfg *qemu.Config) error {
	g.cellular = true
	bin, err := cellnet.BuildModemsim(ctx, img.Repo, dir)
	if err != nil {
		return err
	}
	// dnsmasq's log and leases are in dir, the network's own per boot:
	// a lease of an earlier boot does not linger.
	if g.cell, err = cellnet.Start(ctx, cellnet.Config{Dir: dir}); err != nil {
		return err
	}
	cfg.UplinkTap, cfg.UplinkMAC = g.cell.Tap, cellnet.GuestMAC
	if g.modemLog, err = os.Create(filepath.Join(dir, "modemsim.log")); err != nil {
		return fmt.Errorf("modem simulator log: %w", err)
	}
	cfg.ModemSocket = filepath.Join(dir, "modem.sock")
	g.modem, err = cellnet.StartModem(ctx, cellnet.ModemConfig{
		Bin: bin, Socket: cfg.ModemSocket, Dialect: img.Board.Modem.Dialect, Verbose: true, Log: g.modemLog,
	})
	return err
}

// CellularLogs are the modem simulator's and dnsmasq's logs of a
// cellular boot, for failure reports; "" without one. They outlive Close
// when BootOptions.Dir was given.
func (g *Guest) CellularLogs() string {
	if !g.cellular || g.dir == "" {
		return ""
	}
	modem, _ := os.ReadFile(filepath.Join(g.dir, "modemsim.log"))
	dns, _ := os.ReadFile(filepath.Join(g.dir, "dnsmasq.log"))
	return fmt.Sprintf("--- modem simulator:\n%s\n--- dnsmasq:\n%s", modem, dns)
}

// Run runs a shell command in the guest and returns its output and exit
// status; it gives up after timeout.
func (g *Guest) Run(ctx context.Context, timeout time.Duration, cmdline string) (string, int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return g.Console.Run(ctx, cmdline)
}

// Check runs a command that must succeed.
func (g *Guest) Check(ctx context.Context, timeout time.Duration, cmdline string) (string, error) {
	out, rc, err := g.Run(ctx, timeout, cmdline)
	if err != nil {
		return out, err
	}
	if rc != 0 {
		return out, fmt.Errorf("guest: %s: exit %d: %s", cmdline, rc, strings.TrimSpace(out))
	}
	return out, nil
}

// Transcript is everything the console printed, and what QEMU said.
func (g *Guest) Transcript() string {
	s := ""
	if g.Console != nil {
		s = g.Console.Transcript()
	}
	if q := g.qemuOut.String(); q != "" {
		s += "\n--- QEMU output:\n" + q
	}
	return s
}

// Poweroff shuts the guest down and waits for QEMU to exit.
func (g *Guest) Poweroff(ctx context.Context) error {
	if err := g.Console.Send("poweroff\n"); err != nil {
		return err
	}
	select {
	case err := <-g.exited:
		g.exited = nil
		g.Close()
		return err
	case <-time.After(60 * time.Second):
		g.Close()
		return errors.New("QEMU still running 60 s after poweroff")
	case <-ctx.Done():
		g.Close()
		return ctx.Err()
	}
}

// Close kills QEMU if it still runs and removes the temporary files.
func (g *Guest) Close() {
	if g.Console != nil {
		g.Console.Close()
	}
	if g.exited != nil && g.cmd != nil && g.cmd.Process != nil {
		g.cmd.Process.Kill()
		<-g.exited
		g.exited = nil
	}
	// After QEMU: its modem port and NIC are the simulator's and the
	// network's clients.
	if g.modem != nil {
		g.modem.Close()
		g.modem = nil
	}
	if g.modemLog != nil {
		g.modemLog.Close()
		g.modemLog = nil
	}
	if g.cell != nil {
		g.cell.Close()
		g.cell = nil
	}
	if g.tmp != "" {
		os.RemoveAll(g.tmp)
		g.tmp = ""
	}
}

// QEMUArgs is QEMU's command line, for failure reports.
func (g *Guest) QEMUArgs() string { return strings.Join(g.args, " ") }

// Quote quotes s for the guest's shell.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
