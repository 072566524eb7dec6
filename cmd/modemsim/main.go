// Command modemsim is a simulated cellular modem for tests, benchmarks
// and the QEMU boards: it speaks AT commands (generic 3GPP, Quectel
// EC25 or SIMCom SIM7600) on a pseudo-terminal, a unix socket or a TCP
// port, and plays a scenario (see internal/modemsim).
//
//	modemsim -dialect quectel -pty /tmp/modem0 -scenario coverage-flap -iface veth-up0
//	modemsim -unix /tmp/modem.sock -pin 1234 -v
//
// It prints the path of each port it serves on stdout, one a line (the
// pty's symlink, or its /dev/pts/N without -pty; the socket path; the
// bound TCP address), and runs until SIGINT or SIGTERM. Without -pty,
// -unix or -tcp it serves on a pty without a link.
//
// The data path: with -iface, an activated context sets that link up
// ("ip link set dev IFACE up") and a lost one sets it down, so that a
// coverage loss is real on the veth or tap behind the modem; with -hook,
// the program is run as "PROGRAM up|down CID" (the QEMU host script can
// flip the uplink NIC through QEMU's monitor, set_link).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/openmifi/openmifi/internal/modemsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "modemsim:", err)
		os.Exit(1)
	}
}

// hookTimeout bounds one run of ip link or the hook program.
const hookTimeout = 10 * time.Second

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("modemsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		dialect  = fs.String("dialect", "generic", "AT dialect: "+strings.Join(modemsim.Dialects(), ", "))
		ptyLink  = fs.String("pty", "", "serve on a pseudo-terminal behind this symlink, e.g. /tmp/modem0")
		unixPath = fs.String("unix", "", "serve on a unix socket at this path (QEMU: -chardev socket,path=PATH)")
		tcpAddr  = fs.String("tcp", "", "serve on this TCP address, e.g. 127.0.0.1:5555")
		scenario = fs.String("scenario", "", "built-in scenario ("+strings.Join(modemsim.Builtins(), ", ")+") or scenario file")
		tech     = fs.String("tech", "lte", "the network's radio technology: gsm, umts or lte")
		pin      = fs.String("pin", "", "the SIM's PIN; the SIM starts locked")
		puk      = fs.String("puk", "", "the SIM's PUK (default 12345678)")
		iface    = fs.String("iface", "", "network interface set up and down with the data path (ip link)")
		hook     = fs.String("hook", "", "program run as PROGRAM up|down CID when the data path changes")
		addr     = fs.String("addr", "", "IPv4 address/prefix of every active context (default 100.64.CID.2/30)")
		gw       = fs.String("gw", "", "IPv4 gateway of every active context (default: the first address of -addr's subnet)")
		dns      = fs.String("dns", "", "comma-separated IPv4 DNS servers of every active context")
		reset    = fs.Duration("reset-time", 3*time.Second, "how long the port is gone after AT+CFUN=1,1")
		regDelay = fs.Duration("register-delay", 0, "how long network registration takes")
		verbose  = fs.Bool("v", false, "log every command line and URC")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if !slices.Contains(modemsim.Dialects(), *dialect) {
		return fmt.Errorf("-dialect %q: not one of %s", *dialect, strings.Join(modemsim.Dialects(), ", "))
	}
	if !slices.Contains([]string{"gsm", "umts", "lte"}, *tech) {
		return fmt.Errorf("-tech %q: not one of gsm, umts, lte", *tech)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg := modemsim.Config{
		Dialect:       *dialect,
		Tech:          *tech,
		PIN:           *pin,
		PUK:           *puk,
		ResetTime:     *reset,
		RegisterDelay: *regDelay,
		Logger:        log,
	}
	if *scenario != "" {
		sc, err := modemsim.LoadScenario(*scenario)
		if err != nil {
			return err
		}
		cfg.Scenario = sc
	}
	lease, err := leaseFlags(*addr, *gw, *dns)
	if err != nil {
		return err
	}
	cfg.Lease = lease
	if *iface != "" || *hook != "" {
		cfg.DataUp = dataPath(ctx, log, *iface, *hook)
	}

	m := modemsim.New(cfg)
	defer m.Close()

	var waits []func() error
	defer func() {
		for _, w := range waits {
			w()
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *ptyLink != "" || *unixPath == "" && *tcpAddr == "" {
		path, wait, err := m.ListenPTY(ctx, *ptyLink)
		if err != nil {
			return err
		}
		waits = append(waits, wait)
		fmt.Fprintln(stdout, path)
	}
	if *unixPath != "" {
		wait, err := m.ListenUnix(ctx, *unixPath)
		if err != nil {
			return err
		}
		waits = append(waits, wait)
		fmt.Fprintln(stdout, *unixPath)
	}
	if *tcpAddr != "" {
		bound, wait, err := m.ListenTCP(ctx, *tcpAddr)
		if err != nil {
			return err
		}
		waits = append(waits, wait)
		fmt.Fprintln(stdout, bound)
	}
	<-ctx.Done()
	log.Info("stopping")
	return nil
}

// leaseFlags turns -addr, -gw and -dns into a Config.Lease (nil: the
// default addressing).
func leaseFlags(addr, gw, dns string) (func(int) modemsim.Lease, error) {
	if addr == "" && gw == "" && dns == "" {
		return nil, nil
	}
	var prefix netip.Prefix
	var gateway netip.Addr
	var servers []netip.Addr
	var err error
	if addr != "" {
		if prefix, err = netip.ParsePrefix(addr); err != nil || !prefix.Addr().Is4() {
			return nil, fmt.Errorf("-addr %q: want an IPv4 address/prefix like 100.64.0.2/30", addr)
		}
		gateway = prefix.Masked().Addr().Next()
	}
	if gw != "" {
		if gateway, err = netip.ParseAddr(gw); err != nil || !gateway.Is4() {
			return nil, fmt.Errorf("-gw %q: want an IPv4 address", gw)
		}
	}
	if dns != "" {
		for _, s := range strings.Split(dns, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(s))
			if err != nil || !a.Is4() {
				return nil, fmt.Errorf("-dns %q: want IPv4 addresses separated by commas", dns)
			}
			servers = append(servers, a)
		}
	}
	return func(cid int) modemsim.Lease {
		l := modemsim.DefaultLease(cid)
		if prefix.IsValid() {
			l.Addr4 = prefix
		}
		if gateway.IsValid() {
			l.Gateway4 = gateway
		}
		if servers != nil {
			l.DNS4 = servers
		}
		return l
	}, nil
}

// dataPath makes the data path real: the interface's link follows the
// contexts, and the hook hears about each change. Failures are logged:
// the modem carries on, as a real one would with a broken host.
func dataPath(ctx context.Context, log *slog.Logger, iface, hook string) func(cid int, up bool) {
	return func(cid int, up bool) {
		state := "down"
		if up {
			state = "up"
		}
		if iface != "" {
			if err := command(ctx, "ip", "link", "set", "dev", iface, state); err != nil {
				log.Error("data path", "iface", iface, "state", state, "err", err)
			} else {
				log.Info("data path", "iface", iface, "state", state, "cid", cid)
			}
		}
		if hook != "" {
			if err := command(ctx, hook, state, strconv.Itoa(cid)); err != nil {
				log.Error("data path hook", "hook", hook, "state", state, "err", err)
			}
		}
	}
}

func command(ctx context.Context, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, hookTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
