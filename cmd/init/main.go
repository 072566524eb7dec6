// init is openmifi's PID 1: it mounts the kernel file systems, loads the
// board's kernel modules, names the host, brings up the loopback, mounts
// the persistent storage for the user's settings and leases, supervises
// hotspotd (started with the board's LAN, modem and uplink, restarted
// with back-off, its log kept in a ring under /run/openmifi), keeps a
// shell on the serial console, reaps orphans, and powers off or reboots
// cleanly when busybox poweroff, halt or reboot ask.
//
// It reads what it needs of the board from /etc/openmifi/board.json,
// which the image build writes. The console shell is a root shell; when
// the user (hotspotctl set console_password=...) or the board set a
// console password, the init asks for it before each shell.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openmifi/openmifi/board"
)

// Paths in the image; rootfs (the image build) puts the files there.
const (
	boardPath        = "/etc/openmifi/board.json"
	provisioningPath = "/etc/openmifi/provisioning.xml"
	stateDir         = "/var/lib/openmifi"
	logDir           = "/run/openmifi"
	hotspotdPath     = "/usr/bin/hotspotd"
	// ringSize bounds each of the two files of hotspotd's log.
	ringSize = 256 << 10
)

// shellEnv is the environment of the console shell and the services.
var shellEnv = []string{"PATH=/usr/bin:/bin", "HOME=/root", "TERM=vt100", "SHELL=/bin/sh", "USER=root"}

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "init: this is openmifi's PID 1; it runs only as the first process of the device")
		os.Exit(2)
	}
	console := io.Writer(os.Stderr)
	log := slog.New(slog.NewTextHandler(&prefixWriter{prefix: []byte("init: "), w: console}, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{} // the console has no use for 1970's dates
			}
			return a
		},
	}))

	mountAll(log)
	p := newProcs(log)
	go p.reap()
	// Signals that ask for a shutdown, registered before anything can
	// send them. Ctrl-Alt-Del (SIGINT) reboots instead of resetting.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPWR)
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF); err != nil {
		log.Warn("ctrl-alt-del to SIGINT", "err", err)
	}

	b, err := readBoard(boardPath)
	if err != nil {
		// Still give a console, so that someone can look.
		log.Error("no board definition: console only", "err", err)
		b = board.Board{Hostname: "openmifi"}
	}
	if err := unix.Sethostname([]byte(b.Hostname)); err != nil {
		log.Error("host name", "err", err)
	}
	if err := loopbackUp(); err != nil {
		log.Error("loopback", "err", err)
	}
	loadModules(b, log)
	mountState(b, p, log)

	ctx, stop := context.WithCancel(context.Background())
	if b.Name != "" {
		startHotspotd(ctx, b, p, console, log)
	}
	var shell atomic.Int64
	go consoleShell(ctx, b, p, &shell, log)

	sig := <-sigs
	cmd := unix.LINUX_REBOOT_CMD_POWER_OFF
	if sig == unix.SIGTERM || sig == unix.SIGINT {
		cmd = unix.LINUX_REBOOT_CMD_RESTART
	}
	log.Info("shutdown requested", "signal", sig)
	shutdown(cmd, func() {
		stop()
		// An interactive shell ignores SIGTERM; a hangup ends it and
		// its jobs, as pulling the cable would.
		if pid := shell.Load(); pid > 0 {
			unix.Kill(-int(pid), unix.SIGHUP)
		}
	}, log)
}

// mountState mounts the persistent storage, or a tmpfs in its place with
// a warning on the console.
func mountState(b board.Board, p *procs, log *slog.Logger) {
	s := storage{
		Storage: b.Storage,
		dir:     stateDir,
		wait:    3 * time.Second,
		mke2fs: func(dev string) error {
			log.Info("formatting blank storage", "device", dev)
			return p.run([]string{"/bin/mke2fs", "-q", "-L", "openmifi", dev})
		},
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		log.Error("state directory", "err", err)
	}
	err := s.mount()
	if err == nil {
		log.Info("persistent storage mounted", "device", b.Storage.Device, "fstype", b.Storage.FSType, "at", stateDir)
	} else {
		log.Warn("WARNING: no persistent storage; settings and leases last until reboot", "err", err)
		if err := unix.Mount("tmpfs", stateDir, "tmpfs", stateFlags, "mode=0700,size=4m"); err != nil {
			log.Error("tmpfs for state", "err", err)
		}
	}
	if err := os.Chmod(stateDir, 0o700); err != nil {
		log.Error("state directory", "err", err)
	}
}

func startHotspotd(ctx context.Context, b board.Board, p *procs, console io.Writer, log *slog.Logger) {
	ring, err := newRingLog(logDir+"/hotspotd.log", ringSize)
	if err != nil {
		log.Error("hotspotd log", "err", err)
		return
	}
	id, err := mvid(b)
	if err != nil {
		log.Error("hotspotd", "err", err)
	}
	argv := hotspotdArgs(b, id)
	svc := &service{
		name:  "hotspotd",
		start: daemonStarter(p, "hotspotd", argv, shellEnv, ring, console),
		log:   log,
		sleep: sleepCtx,
		now:   time.Now,
	}
	go svc.run(ctx)
}

// hotspotdArgs is hotspotd's command line for board b and the mobile
// variant ID id ("" when hotspotd reads it from the SIM): the LAN, the
// access point's radio, and the modem's AT port and uplink interface when
// the board has a modem.
func hotspotdArgs(b board.Board, id string) []string {
	argv := []string{hotspotdPath, "-provisioning", provisioningPath, "-state", stateDir,
		"-lan", b.LAN.Interface, "-lan-address", b.LAN.Address.String()}
	if id != "" {
		argv = append(argv, "-mvid", id)
	}
	if b.WiFi.PHY != "" {
		argv = append(argv, "-wifi-phy", b.WiFi.PHY)
	}
	if b.Modem.Device != "" {
		argv = append(argv, "-modem", "/dev/"+b.Modem.Device)
		if b.Modem.Baud > 0 {
			argv = append(argv, "-modem-baud", strconv.Itoa(b.Modem.Baud))
		}
		if b.Modem.Dialect != "" {
			argv = append(argv, "-modem-dialect", b.Modem.Dialect)
		}
		if b.Uplink.Interface != "" {
			argv = append(argv, "-uplink", b.Uplink.Interface)
		}
		if b.Uplink.Addressing != "" {
			argv = append(argv, "-uplink-addressing", b.Uplink.Addressing)
		}
	}
	return argv
}

// consoleShell keeps a login shell on the board's console, with the
// console as its controlling terminal so that Ctrl-C and job control
// work; a shell that exits is started again. When there is a console
// password, each shell is started only once it has been typed.
func consoleShell(ctx context.Context, b board.Board, p *procs, shell *atomic.Int64, log *slog.Logger) {
	dev := "/dev/console"
	if b.Console.Device != "" {
		dev = "/dev/" + b.Console.Device
	}
	lg := &login{hostname: b.Hostname, password: consolePassword(stateDir, b, log), sleep: sleepCtx}
	first := true
	ready := func() {
		if first {
			log.Info("openmifi ready", "board", b.Name, "uptime", uptime().Round(time.Millisecond))
			first = false
		}
	}
	for ctx.Err() == nil {
		// O_NOCTTY: the terminal is the shell's to own, never the init's,
		// whose process group must not get the console's Ctrl-C.
		fd, err := unix.Open(dev, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err != nil {
			log.Error("console", "device", dev, "err", err)
			dev = "/dev/console"
			time.Sleep(time.Second)
			continue
		}
		if hash := lg.password(); hash != "" {
			ready()
			lg.quiet = ttyQuiet(fd)
			if err := lg.ask(ctx, fdConsole(fd), hash); err != nil {
				unix.Close(fd)
				if ctx.Err() != nil {
					return
				}
				log.Error("console login", "err", err)
				time.Sleep(time.Second)
				continue
			}
		}
		pid, exit, err := p.start("/bin/sh", []string{"-sh"}, &syscall.ProcAttr{
			Dir:   "/root",
			Env:   shellEnv,
			Files: []uintptr{uintptr(fd), uintptr(fd), uintptr(fd)},
			Sys:   &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0},
		})
		unix.Close(fd)
		if err != nil {
			log.Error("console shell", "err", err)
			time.Sleep(time.Second)
			continue
		}
		shell.Store(int64(pid))
		ready()
		select {
		case <-exit:
			shell.Store(0)
		case <-ctx.Done():
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func decodeBoard(r io.Reader) (board.Board, error) {
	var b board.Board
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return board.Board{}, fmt.Errorf("board: %w", err)
	}
	if err := b.Validate(); err != nil {
		return board.Board{}, err
	}
	return b, nil
}

// prefixWriter marks the init's lines on the console, where the kernel's
// and the services' lines appear too. The handler writes whole records.
type prefixWriter struct {
	prefix []byte
	w      io.Writer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	if _, err := p.w.Write(bytes.Join([][]byte{p.prefix, b}, nil)); err != nil {
		return 0, err
	}
	return len(b), nil
}
