// qemuboot builds a QEMU board's image and boots it, with the serial
// console on this terminal (Ctrl-A X quits) or on a unix socket.
//
//	qemuboot -board qemu-x86_64
//
// The kernel and busybox packages are fetched into the cache once; the
// persistent state disk lives in the cache too (.cache/qemu/BOARD/state.img)
// and survives between boots. scripts/qemu.sh runs this.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/openmifi/openmifi/board"
	"github.com/openmifi/openmifi/rootfs"
	"github.com/openmifi/openmifi/rootfs/qemu"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(context.Background(), os.Args[1:], log); err != nil {
		fmt.Fprintf(os.Stderr, "qemuboot: %v\n", err)
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
	qargs, err := qemu.Args(qemu.Config{
		Board: b, Kernel: res.KernelImage, Initrd: initrd, Disk: *disk,
		ConsoleSocket: *socket, Accel: acc, NoReboot: *noReboot, Append: *appendCmd,
	})
	if err != nil {
		return err
	}
	bin, err := exec.LookPath(b.QEMU.System)
	if err != nil {
		return fmt.Errorf("%s: %w (Debian: apt-get install %s)", b.QEMU.System, err, debianQEMU(b))
	}
	fi, _ := os.Stat(initrd)
	fmt.Fprintf(os.Stderr, "qemuboot: %s: kernel %s, initramfs %d bytes, accelerator %s, state disk %q; console: %s\n",
		b.Name, res.KernelVersion, fi.Size(), acc, *disk, consoleWhere(*socket))
	// Exec, so that QEMU owns the terminal and its signals.
	return syscall.Exec(bin, append([]string{bin}, qargs...), os.Environ())
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
