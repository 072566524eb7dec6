package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openmifi/openmifi/board"
)

type mountPoint struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

// earlyMounts are the kernel file systems and the RAM-backed directories
// everything else needs. /run holds the control socket and the logs; /tmp
// is small so that nothing fills the RAM through it.
var earlyMounts = []mountPoint{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "mode=0620,ptmxmode=0666"},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755,size=8m"},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777,size=8m"},
}

func mountAll(log *slog.Logger) {
	for _, m := range earlyMounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			log.Error("mount", "target", m.target, "err", err)
			continue
		}
		err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data)
		if err != nil && !errors.Is(err, unix.EBUSY) {
			log.Error("mount", "target", m.target, "fstype", m.fstype, "err", err)
		}
	}
}

// loopbackUp brings lo up; the kernel gives it 127.0.0.1/8 and ::1 then.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: set flags: %w", err)
	}
	return nil
}

// loadModules inserts the board's modules, each after its dependencies.
// A module that fails is reported and the rest still load: a missing
// radio must not cost the console.
func loadModules(b board.Board, log *slog.Logger) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		log.Error("modules: uname", "err", err)
		return
	}
	dir := filepath.Join("/lib/modules", unix.ByteSliceToString(uts.Release[:]))
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		log.Error("modules", "err", err)
		return
	}
	deps, err := parseModulesDep(f)
	f.Close()
	if err != nil {
		log.Error("modules", "err", err)
		return
	}
	order, err := deps.loadOrder(b.Modules)
	if err != nil {
		log.Error("modules", "err", err)
	}
	start := time.Now()
	loaded := 0
	for _, m := range order {
		err := insmod(filepath.Join(dir, m.file), m.params)
		switch {
		case errors.Is(err, unix.ENODEV):
			// Hardware or a CPU feature it drives is absent: an
			// accelerated crc32c on a CPU without SSE4.2, say.
			log.Info("module not for this machine", "name", modName(m.file), "err", err)
		case err != nil:
			log.Error("module", "name", modName(m.file), "err", err)
		default:
			loaded++
		}
	}
	log.Info("modules loaded", "count", loaded, "of", len(order), "took", time.Since(start).Round(time.Millisecond))
}

func insmod(file, params string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), params, 0)
	if errors.Is(err, unix.EEXIST) {
		return nil // built in, or loaded already
	}
	return err
}

// uptime is the time since the kernel started.
func uptime() time.Duration {
	data, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f, _, _ := strings.Cut(string(data), " ")
	s, err := strconv.ParseFloat(f, 64)
	if err != nil {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}

// readBoard reads the board definition the image build wrote.
func readBoard(path string) (board.Board, error) {
	f, err := os.Open(path)
	if err != nil {
		return board.Board{}, fmt.Errorf("board: %w", err)
	}
	defer f.Close()
	return decodeBoard(f)
}

// mvid returns the -mvid flag value for hotspotd: the board's fixed ID,
// or the first line of the board's file; "" when hotspotd reads it from
// the SIM.
func mvid(b board.Board) (string, error) {
	switch b.MVID.Source {
	case board.MVIDFixed:
		return b.MVID.Value, nil
	case board.MVIDFile:
		f, err := os.Open(b.MVID.Value)
		if err != nil {
			return "", fmt.Errorf("mobile variant ID: %w", err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, 256))
		if err != nil {
			return "", fmt.Errorf("mobile variant ID: %w", err)
		}
		line, _, _ := strings.Cut(string(data), "\n")
		return strings.TrimSpace(line), nil
	}
	return "", nil
}
