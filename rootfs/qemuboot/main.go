// qemuboot builds a QEMU board's image and boots it, with the serial
// console on this terminal (Ctrl-A X quits) or on a unix socket, the
// modem simulator on the board's modem port and, as root, the simulated
// cellular network behind its uplink NIC.
//
//	qemuboot -board qemu-x86_64
//	qemuboot set-link -monitor QMP-SOCKET up|down [CID]
//
// The kernel and busybox packages are fetched into the cache once; the
// persistent state disk lives in the cache too (.cache/qemu/BOARD/state.img)
// and survives between boots. scripts/qemu.sh runs this.
//
// The modem simulator (cmd/modemsim, built into .cache/bin) listens on a
// unix socket that QEMU's modem port connects to. The network is a
// network namespace made for this run (package cellnet) that QEMU runs
// in, so that its tap is the uplink NIC's other end; the simulator's
// data path hook is this program's set-link, which sets the NIC's link
// through QEMU's monitor, so that a coverage loss in a scenario is a lost
// carrier in the guest. Everything is stopped and removed when QEMU
// exits, or on SIGINT, SIGTERM or SIGHUP.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/openmifi/openmifi/board"
	"github.com/openmifi/openmifi/rootfs"
	"github.com/openmifi/openmifi/rootfs/qemu"
	"github.com/openmifi/openmifi/rootfs/qemu/cellnet"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "set-link" {
		err = setLink(ctx, os.Args[2:])
	} else {
		err = run(ctx, os.Args[1:], log)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "qemuboot: %v\n", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("qemuboot", flag.ContinueOnError)
	var (
		boardName = fs.String("board", "qemu-x86_64", "QEMU board: "+strings.Join(qemuBoards(), ", "))
		cache     = fs.String("cache", "", "cache directory (default: .cache in the repository)")
		accel     = fs.String("accel", "auto", "auto (kvm when /dev/kvm is usable, else tcg), kvm or tcg")
		socket    = fs.String("console-socket", "", "serve the serial console on this unix socket instead of the terminal")
		disk      = fs.String("disk", "", "state disk image (default: .cache/qemu/BOARD/state.img; \"none\" for none)")
		addArch   = fs.Bool("add-arch", false, "as root: dpkg --add-architecture for a foreign board's packages")
		noReboot  = fs.Bool("no-reboot", false, "exit QEMU on reboot")
		appendCmd = fs.String("append", "", "more kernel command line")
		modem     = fs.Bool("modem", true, "run the modem simulator on the board's modem port")
		scenario  = fs.String("modem-scenario", "", "the modem simulator's scenario (built-in name or file; see cmd/modemsim)")
		modemV    = fs.Bool("modem-v", false, "log every AT command the modem simulator sees")
		network   = fs.Bool("network", true, "as root: the simulated cellular network behind the uplink NIC (false: no NIC)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := board.Get(*boardName)
	if err != nil {
		return err
	}
	if b.QEMU == nil {
		return fmt.Errorf("%s is a hardware board; QEMU boards: %s", b.Name, strings.Join(qemuBoards(), ", "))
	}
	repo, err := rootfs.RepoRoot(ctx)
	if err != nil {
		return err
	}
	if *cache == "" {
		*cache = filepath.Join(repo, ".cache")
	}
	dir := filepath.Join(*cache, "qemu", b.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	res, err := rootfs.Build(ctx, rootfs.Options{
		Board: b, Repo: repo, Cache: *cache, Download: true, AddArch: *addArch, Log: log,
	})
	if err != nil {
		return err
	}
	initrd := filepath.Join(dir, "rootfs.cpio")
	f, err := os.Create(initrd)
	if err != nil {
		return err
	}
	if err := res.Tree.WriteCPIO(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", initrd, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	switch *disk {
	case "none":
		*disk = ""
	case "":
		*disk = filepath.Join(dir, "state.img")
	}
	if *disk != "" {
		if err := qemu.EnsureDisk(*disk, b.QEMU.StateSize); err != nil {
			return err
		}
	}
	acc, err := qemu.Accel(b, *accel)
	if err != nil {
		return err
	}
	bin, err := exec.LookPath(b.QEMU.System)
	if err != nil {
		return fmt.Errorf("%s: %w (Debian: apt-get install %s)", b.QEMU.System, err, debianQEMU(b))
	}
	cfg := qemu.Config{
		Board: b, Kernel: res.KernelImage, Initrd: initrd, Disk: *disk,
		ConsoleSocket: *socket, Accel: acc, NoReboot: *noReboot, Append: *appendCmd,
	}

	// Sockets go in a directory of this run: unix socket paths are
	// short (108 bytes), the cache's path may not be.
	runDir, err := os.MkdirTemp("", "openmifi-qemu-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(runDir)
	withNet := *network && os.Getuid() == 0
	if *network && !withNet {
		log.Warn("not root: no simulated cellular network, the board has no uplink NIC (the modem simulator still runs)")
	}
	var cell *cellnet.Network
	if withNet {
		cfg.Monitor = filepath.Join(runDir, "qmp.sock")
		cell, err = cellnet.Start(ctx, cellnet.Config{Dir: dir, Log: log})
		if err != nil {
			return err
		}
		defer cell.Close()
		cfg.UplinkTap, cfg.UplinkMAC = cell.Tap, cellnet.GuestMAC
	}
	modemWhere := "none"
	if *modem {
		m, where, err := startModem(ctx, b, repo, *cache, dir, runDir, cfg.Monitor, *scenario, *modemV)
		if err != nil {
			return err
		}
		defer m.Close()
		cfg.ModemSocket, modemWhere = filepath.Join(runDir, "modem.sock"), where
	}

	qargs, err := qemu.Args(cfg)
	if err != nil {
		return err
	}
	fi, _ := os.Stat(initrd)
	fmt.Fprintf(os.Stderr, "qemuboot: %s: kernel %s, initramfs %d bytes, accelerator %s, state disk %q; console: %s\n",
		b.Name, res.KernelVersion, fi.Size(), acc, *disk, consoleWhere(*socket))
	fmt.Fprintf(os.Stderr, "qemuboot: modem: %s\n", modemWhere)
	var cmd *exec.Cmd
	if cell != nil {
		fmt.Fprintf(os.Stderr, "qemuboot: cellular network: namespace %s, gateway and DNS %s, DHCP gives the uplink NIC %s, test server http://%s/ (%s), log %s\n",
			cell.Name, cellnet.Gateway.Addr(), cellnet.GuestAddr, cellnet.Gateway.Addr(), cellnet.TestName, filepath.Join(dir, "dnsmasq.log"))
		cmd = cell.Command(ctx, bin, qargs...)
	} else {
		cmd = exec.CommandContext(ctx, bin, qargs...)
	}
	// QEMU owns the terminal; a signal to this program ends QEMU
	// gently, and then the network and the simulator go.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.SysProcAttr = cellnet.DieWithParent()
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("%s: %w", b.QEMU.System, err)
	}
	return nil
}

// startModem builds and starts the modem simulator for board b, its data
// path hook flipping the uplink NIC through the monitor when there is
// one. It returns where it runs, for a person.
func startModem(ctx context.Context, b board.Board, repo, cache, dir, runDir, monitor, scenario string, verbose bool) (*cellnet.Modem, string, error) {
	bin, err := cellnet.BuildModemsim(ctx, repo, filepath.Join(cache, "bin"))
	if err != nil {
		return nil, "", err
	}
	hook := ""
	if monitor != "" {
		self, err := os.Executable()
		if err != nil {
			return nil, "", fmt.Errorf("data path hook: %w", err)
		}
		if hook, err = writeHook(runDir, self, monitor); err != nil {
			return nil, "", err
		}
	}
	logPath := filepath.Join(dir, "modemsim.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	// The simulator keeps its own descriptor of the log.
	defer logf.Close()
	sock := filepath.Join(runDir, "modem.sock")
	m, err := cellnet.StartModem(ctx, cellnet.ModemConfig{
		Bin: bin, Socket: sock, Dialect: b.Modem.Dialect, Scenario: scenario, Hook: hook, Verbose: verbose, Log: logf,
	})
	if err != nil {
		return nil, "", err
	}
	return m, fmt.Sprintf("simulator (%s dialect) on the guest's /dev/%s, log %s", b.Modem.Dialect, b.Modem.Device, logPath), nil
}

// writeHook writes the modem simulator's data path hook: a script that
// runs qemuboot (self) set-link with the monitor's socket.
func writeHook(runDir, self, monitor string) (string, error) {
	if strings.ContainsRune(self+monitor, '\'') {
		return "", fmt.Errorf("data path hook: a quote in %q or %q", self, monitor)
	}
	hook := filepath.Join(runDir, "set-link")
	script := "#!/bin/sh\n# modemsim -hook: called as HOOK up|down CID\nexec '" + self + "' set-link -monitor '" + monitor + "' \"$@\"\n"
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		return "", fmt.Errorf("data path hook: %w", err)
	}
	return hook, nil
}

// setLink is the set-link subcommand: the uplink NIC's link up or down.
func setLink(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("qemuboot set-link", flag.ContinueOnError)
	monitor := fs.String("monitor", "", "QEMU's QMP socket")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *monitor == "" || fs.NArg() < 1 || fs.NArg() > 2 || fs.Arg(0) != "up" && fs.Arg(0) != "down" {
		return errors.New("usage: qemuboot set-link -monitor QMP-SOCKET up|down [CID]")
	}
	return qemu.SetLink(ctx, *monitor, qemu.UplinkNetdev, fs.Arg(0) == "up")
}

func consoleWhere(socket string) string {
	if socket == "" {
		return "this terminal (Ctrl-A X quits QEMU)"
	}
	return socket
}

func qemuBoards() []string {
	var names []string
	for _, b := range board.All() {
		if b.QEMU != nil {
			names = append(names, b.Name)
		}
	}
	return names
}

// debianQEMU names the Debian package with b's QEMU.
func debianQEMU(b board.Board) string {
	switch b.QEMU.System {
	case "qemu-system-x86_64":
		return "qemu-system-x86"
	case "qemu-system-arm", "qemu-system-aarch64":
		return "qemu-system-arm"
	case "qemu-system-mipsel":
		return "qemu-system-mips"
	}
	return "qemu-system"
}
