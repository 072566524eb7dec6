// mkrootfs builds a board's root file system as a newc cpio initramfs,
// without root and reproducibly, and copies the board's kernel beside it.
//
//	mkrootfs -board qemu-x86_64 -o out/qemu-x86_64/rootfs.cpio -kernel-out out/qemu-x86_64/vmlinuz
//
// Debian packages (the kernel, busybox-static) are fetched into the cache
// once with -fetch; device programs are cross-compiled unless -bin names
// a directory holding them.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/openmifi/openmifi/board"
	"github.com/openmifi/openmifi/rootfs"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(context.Background(), os.Args[1:], log); err != nil {
		fmt.Fprintf(os.Stderr, "mkrootfs: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("mkrootfs", flag.ContinueOnError)
	var (
		boardName = fs.String("board", "", "board to build for: "+strings.Join(board.Names(), ", "))
		out       = fs.String("o", "", "initramfs to write (newc cpio)")
		kernelOut = fs.String("kernel-out", "", "copy the board's kernel image here")
		cache     = fs.String("cache", "", "cache directory (default: .cache in the repository)")
		bin       = fs.String("bin", "", "directory with the device programs already built for the board")
		kernel    = fs.String("kernel", "", "kernel image with lib/modules beside it, in place of the board's")
		busybox   = fs.String("busybox", "", "static busybox for the board, in place of Debian's busybox-static")
		keys      = fs.String("keys", "", "directory of operator public keys (*.pub) to ship")
		pluginSig = fs.String("plugin-sig", "", "detached signature of the entitlement plugin")
		regdb     = fs.String("regdb", "", "directory with regulatory.db and its .p7s, in place of Debian's wireless-regdb")
		fetch     = fs.Bool("fetch", false, "download missing Debian packages with apt-get")
		addArch   = fs.Bool("add-arch", false, "with -fetch, as root: dpkg --add-architecture for a foreign board")
		mtime     = fs.Uint64("mtime", 0, "modification time of every entry (seconds since 1970)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *boardName == "" || *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("-board and -o are required")
	}
	b, err := board.Get(*boardName)
	if err != nil {
		return err
	}
	res, err := rootfs.Build(ctx, rootfs.Options{
		Board: b, Cache: *cache, Bin: *bin, Kernel: *kernel, Busybox: *busybox,
		Keys: *keys, PluginSig: *pluginSig, RegDB: *regdb, Download: *fetch, AddArch: *addArch,
		MTime: *mtime, Log: log,
	})
	if err != nil {
		return err
	}
	if err := writeAtomic(*out, func(w io.Writer) error { return res.Tree.WriteCPIO(w, *mtime) }); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	if *kernelOut != "" {
		if err := writeAtomic(*kernelOut, func(w io.Writer) error {
			f, err := os.Open(res.KernelImage)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(w, f)
			return err
		}); err != nil {
			return fmt.Errorf("kernel: %w", err)
		}
	}
	fi, err := os.Stat(*out)
	if err != nil {
		return err
	}
	log.Info("initramfs written", "board", b.Name, "file", *out, "bytes", fi.Size(),
		"kernel", res.KernelVersion, "modules", strings.Join(res.Modules, ","))
	fmt.Printf("%s: %s, %d bytes; parts: %s\n", b.Name, *out, fi.Size(), strings.Join(res.SortedSizes(), ", "))
	return nil
}

// writeAtomic writes a file under a temporary name and renames it, so that
// QEMU or the image tool never read half an archive.
func writeAtomic(path string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mkrootfs-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
