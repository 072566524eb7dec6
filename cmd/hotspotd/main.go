// hotspotd shares the device's cellular connection over Wi-Fi: it follows
// the operator's provisioning and the user's choices, and serves the control
// socket that hotspotctl speaks to.
//
// hotspotd -check FILE... validates provisioning files offline.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/openmifi/openmifi/drivers/dhcp"
	"github.com/openmifi/openmifi/drivers/dns"
	"github.com/openmifi/openmifi/drivers/firewall"
	"github.com/openmifi/openmifi/drivers/lan"
	"github.com/openmifi/openmifi/drivers/route"
	"github.com/openmifi/openmifi/internal/control"
	"github.com/openmifi/openmifi/internal/daemon"
	"github.com/openmifi/openmifi/internal/provision"
)

// files is a repeatable flag.
type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hotspotd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		check   = fs.Bool("check", false, "validate the provisioning files given as arguments and exit")
		prov    files
		mvid    = fs.String("mvid", "", "mobile variant ID replacing $(__MVID), e.g. the SIM's MCC+MNC")
		state   = fs.String("state", "/var/lib/openmifi", "directory for the user's settings")
		socket  = fs.String("socket", control.DefaultSocket, "control socket")
		strs    = fs.String("strings", "/usr/share/openmifi/strings", "operator string tables")
		locale  = fs.String("locale", localeFromEnv(), "locale for operator messages")
		keys    = fs.String("keys", "/etc/openmifi/operator-keys", "operator public keys for the entitlement plugin")
		verbose = fs.Bool("v", false, "debug logging")
		lan     = fs.String("lan", "wlan0", "LAN interface (the access point's)")
		lanAddr = fs.String("lan-address", "192.168.43.1/24", "the device's LAN address and prefix")
		runDir  = fs.String("run", "/run/openmifi", "run-time state that must not outlive a reboot")
		mdm     modemFlags
		wifi    wifiFlags
	)
	mdm.register(fs)
	wifi.register(fs)
	fs.Var(&prov, "provisioning", "operator provisioning file (repeatable; default /etc/openmifi/provisioning.xml)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *check {
		return checkFiles(fs.Args(), *mvid, stdout, stderr)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hotspotd: unexpected arguments %q (did you mean -check?)\n", fs.Args())
		return 2
	}
	if len(prov) == 0 {
		prov = files{"/etc/openmifi/provisioning.xml"}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	addr, err := netip.ParsePrefix(*lanAddr)
	if err != nil {
		fmt.Fprintf(stderr, "hotspotd: -lan-address: %v\n", err)
		return 2
	}
	if err := mdm.check(); err != nil {
		fmt.Fprintf(stderr, "hotspotd: %v\n", err)
		return 2
	}
	// The control socket before any driver: a second hotspotd must fail
	// before it touches the radio, the firewall or the DHCP server of
	// the first.
	ln, err := control.Listen(*socket)
	if err != nil {
		log.Error("hotspotd", "err", err)
		return 1
	}
	// The access point first: on a board whose LAN interface does not
	// exist yet, the radio driver creates it for the LAN services.
	var wifiDrv daemon.Drivers
	closeRadio := wifi.add(&wifiDrv, log, *lan, 0)
	defer closeRadio()
	drv, closeDrivers := drivers(log, *lan, addr, *runDir, *state)
	defer closeDrivers()
	drv.AP, drv.Services = wifiDrv.AP, append(drv.Services, wifiDrv.Services...)
	mdm.add(&drv, log, 0)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d, err := daemon.New(daemon.Config{
		Provisioning: prov,
		MVID:         *mvid,
		StateDir:     *state,
		Socket:       *socket,
		Listener:     ln,
		StringsDir:   *strs,
		Locale:       *locale,
		KeysDir:      *keys,
		Log:          log,
	}, drv)
	if err != nil {
		log.Error("hotspotd", "err", err)
		return 1
	}
	if err := d.Run(ctx); err != nil {
		log.Error("hotspotd", "err", err)
		return 1
	}
	log.Info("hotspotd stopped")
	return 0
}

// drivers returns the LAN side's drivers: firewall and routing, DHCP and
// DNS (the modem and the access point are added by their flags). A driver
// that cannot be opened is left out, with the reason in the log, and
// sharing then fails to start naming it.
func drivers(log *slog.Logger, lanIface string, addr netip.Prefix, runDir, stateDir string) (daemon.Drivers, func()) {
	return driversIn(0, log, lanIface, addr, runDir, stateDir)
}

// driversIn opens the drivers inside the network namespace fd (0: this
// one), which lets a test run the real ones against its own namespaces.
func driversIn(fd int, log *slog.Logger, lanIface string, addr netip.Prefix, runDir, stateDir string) (daemon.Drivers, func()) {
	var drv daemon.Drivers
	closers := []func(){}
	routes, err := route.New(route.Config{LAN: lanIface, Address: addr, NetNS: fd})
	if err == nil {
		closers = append(closers, func() { routes.Close() })
		var nat *firewall.NAT
		nat, err = firewall.New(firewall.Config{LAN: lanIface, LANPrefix: addr.Masked(), RunDir: runDir, NetNS: fd, Log: log})
		if err == nil {
			closers = append(closers, func() { nat.Close() })
			drv.Firewall = &firewall.Gateway{Routes: routes, NAT: nat}
		}
	}
	if err != nil {
		log.Error("firewall driver unavailable", "err", err)
	}

	srv, err := dhcp.New(dhcp.Config{
		Interface:  lanIface,
		ServerAddr: addr.Addr(),
		Prefix:     addr.Masked(),
		LeaseFile:  filepath.Join(stateDir, "dhcp.leases"),
		NetNS:      fd,
		Log:        log,
	})
	if err != nil {
		log.Error("DHCP server unavailable", "err", err)
	} else {
		svc := &lan.Services{DHCP: srv, DNS: dns.New(dns.Config{
			Listen:    addr.Addr(),
			LANPrefix: addr.Masked(),
			LocalName: "hotspot.lan",
			Domain:    "lan",
			NetNS:     fd,
			Log:       log,
		})}
		drv.DHCP, drv.UplinkChanged, drv.StationChanged = svc, svc.UplinkChanged, svc.StationChanged
	}
	return drv, func() {
		for _, c := range closers {
			c()
		}
	}
}

// checkFiles validates provisioning offline: every problem is printed, and
// the exit status is 1 if any is an error.
func checkFiles(paths []string, mvid string, stdout, stderr io.Writer) int {
	if len(paths) == 0 {
		fmt.Fprintln(stderr, "hotspotd -check: name at least one provisioning file")
		return 2
	}
	p, warnings, err := provision.Load(mvid, paths...)
	for _, w := range warnings {
		fmt.Fprintln(stderr, w.Error())
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		fmt.Fprintf(stderr, "hotspotd -check: %s: invalid\n", strings.Join(paths, ", "))
		return 1
	}
	h := p.HotSpot
	fmt.Fprintf(stdout, "%s: ok: sharing %s, up to %d clients, %d connection(s) defined\n",
		strings.Join(paths, ", "), map[bool]string{true: "enabled", false: "disabled"}[h.Enabled], h.MaxUsers, len(p.Connections))
	return 0
}

// localeFromEnv turns LANG=de_DE.UTF-8 into de-DE.
func localeFromEnv() string {
	l := os.Getenv("LANG")
	if i := strings.IndexAny(l, ".@"); i >= 0 {
		l = l[:i]
	}
	if l == "" || l == "C" || l == "POSIX" {
		return "en-US"
	}
	return strings.ReplaceAll(l, "_", "-")
}
