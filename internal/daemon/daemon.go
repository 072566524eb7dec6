// Package daemon puts hotspotd together: the operator provisioning, the
// user's settings, the sharing state machine with its drivers, and the
// control socket. cmd/hotspotd gives it flags and real drivers; tests give
// it fakes.
package daemon

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/openmifi/openmifi/internal/clock"
	"github.com/openmifi/openmifi/internal/control"
	"github.com/openmifi/openmifi/internal/entitlement"
	"github.com/openmifi/openmifi/internal/provision"
	"github.com/openmifi/openmifi/internal/sharing"
	"github.com/openmifi/openmifi/internal/strres"
	"github.com/openmifi/openmifi/internal/usersettings"
)

// Config is where hotspotd finds and keeps things.
type Config struct {
	Provisioning []string // operator provisioning files, read as one
	MVID         string   // mobile variant ID for $(__MVID); "" leaves it as written
	StateDir     string   // persistent: the user's settings
	Socket       string   // control socket
	// Listener is the control socket when the caller took it already
	// (control.Listen), before opening any driver; nil: New takes Socket.
	Listener   *control.Listener
	StringsDir string // operator string tables (MOHelpMessage)
	Locale     string // for the string tables
	KeysDir    string // operator public keys for the entitlement plugin
	Log        *slog.Logger
	Clock      clock.Clock
}

// Drivers are the hardware side. A nil driver is one this build or board
// does not have: starting sharing then fails with a clear error.
type Drivers struct {
	Uplink   sharing.Uplink
	AP       sharing.AccessPoint
	DHCP     sharing.DHCPServer
	Firewall sharing.Firewall
	// Entitler nil: the plugin runner, with the keys of KeysDir.
	Entitler sharing.Entitler
	// UplinkChanged and StationChanged are passed to the state machine's
	// observers (sharing.Config).
	UplinkChanged  func(sharing.UplinkStatus)
	StationChanged func(mac net.HardwareAddr, present bool)
	// Services run beside the state machine while the daemon runs, and
	// stop with it: drivers with a life of their own, such as the modem,
	// which reports to d.Machine(). An error other than the end of the
	// context is logged; the daemon carries on.
	Services []func(ctx context.Context, d *Daemon) error
}

// Daemon is one running hotspotd.
type Daemon struct {
	cfg      Config
	log      *slog.Logger
	ln       *control.Listener
	machine  *sharing.Machine
	store    *usersettings.Store
	services []func(ctx context.Context, d *Daemon) error
}

// New takes the control socket (so that a second hotspotd fails before it
// touches anything), reads the settings and builds the state machine. An
// invalid provisioning is not an error here: the daemon stays up for
// management and sharing refuses to start with that error.
func New(cfg Config, drv Drivers) (*Daemon, error) {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = control.Listen(cfg.Socket); err != nil {
			return nil, err
		}
	}
	d, err := build(cfg, drv, log)
	if err != nil {
		ln.Close()
		return nil, err
	}
	d.ln = ln
	return d, nil
}

func build(cfg Config, drv Drivers, log *slog.Logger) (*Daemon, error) {
	prov, warnings, provErr := provision.Load(cfg.MVID, cfg.Provisioning...)
	for _, w := range warnings {
		log.Warn("provisioning", "warning", w.Error())
	}
	if provErr != nil {
		log.Error("invalid provisioning: sharing will refuse to start", "err", provErr)
	}

	var statusWarnings []string
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	store, err := usersettings.Open(filepath.Join(cfg.StateDir, usersettings.FileName), prov.HotSpot.MaxUsers, rand.Reader)
	var corrupt *usersettings.CorruptError
	switch {
	case errors.As(err, &corrupt):
		log.Error("user settings were corrupt: set aside, defaults in use", "err", err)
		statusWarnings = append(statusWarnings, err.Error())
	case err != nil:
		return nil, fmt.Errorf("user settings: %w", err)
	}

	if drv.Entitler == nil {
		keys, err := entitlement.LoadKeys(cfg.KeysDir)
		if err != nil && prov.HotSpot.EntitlementRequired {
			// Without keys no plugin verifies: every check fails, as
			// the seed wants for an unsigned plugin.
			log.Error("operator keys: every entitlement check will fail", "err", err)
		}
		drv.Entitler = &entitlement.Runner{Keys: keys, Log: log}
	}
	var (
		uplink   sharing.Uplink      = noUplink{"uplink (modem)"}
		ap       sharing.AccessPoint = noAP{"access point"}
		dhcp     sharing.DHCPServer  = noDHCP{"DHCP server"}
		firewall sharing.Firewall    = noFirewall{"firewall"}
	)
	if drv.Uplink != nil {
		uplink = drv.Uplink
	}
	if drv.AP != nil {
		ap = drv.AP
	}
	if drv.DHCP != nil {
		dhcp = drv.DHCP
	}
	if drv.Firewall != nil {
		firewall = drv.Firewall
	}

	m := sharing.New(sharing.Config{
		Clock:    cfg.Clock,
		Log:      log,
		Uplink:   uplink,
		AP:       ap,
		DHCP:     dhcp,
		Firewall: firewall,
		Entitler: drv.Entitler,
		Users:    store,
		ResolveHelp: func(ref string) (string, error) {
			return strres.Resolve(cfg.StringsDir, ref, cfg.Locale)
		},
		Warnings:       statusWarnings,
		UplinkChanged:  drv.UplinkChanged,
		StationChanged: drv.StationChanged,
	}, prov, provErr)
	return &Daemon{cfg: cfg, log: log, machine: m, store: store, services: drv.Services}, nil
}

// Machine is the state machine, for drivers to report events to.
func (d *Daemon) Machine() *sharing.Machine { return d.machine }

// UserSettings returns the user's settings as stored, whatever the state
// of sharing (the SIM PIN is needed even where sharing is unavailable).
func (d *Daemon) UserSettings() usersettings.Settings { return d.store.Get() }

// Run serves until ctx is cancelled, then stops sharing and releases the
// socket.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.ln.Close()
	var (
		wg       sync.WaitGroup
		serveErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		srv := &control.Server{Backend: d.machine, Log: d.log}
		if serveErr = srv.Serve(ctx, d.ln); serveErr != nil {
			cancel()
		}
	}()
	for _, svc := range d.services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := svc(ctx, d); err != nil && ctx.Err() == nil {
				d.log.Error("service stopped", "err", err)
			}
		}()
	}
	d.log.Info("hotspotd running", "socket", d.cfg.Socket)
	err := d.machine.Run(ctx)
	cancel()
	wg.Wait()
	return errors.Join(err, serveErr)
}

// noDriver stands for a driver this build does not have: sharing cannot
// start without it, and says which one is missing. Stopping it is a no-op,
// so that the stop after a failed start stays quiet.
type noDriver string

func (n noDriver) err() error               { return fmt.Errorf("no %s driver on this device", string(n)) }
func (noDriver) Stop(context.Context) error { return nil }

type noUplink struct{ noDriver }

func (n noUplink) Acquire(context.Context, []provision.Connection) error { return n.err() }
func (noUplink) Release(context.Context) error                           { return nil }

type noAP struct{ noDriver }

func (n noAP) Start(context.Context, sharing.APConfig) error { return n.err() }
func (n noAP) SetMaxStations(context.Context, int) error     { return n.err() }

type noDHCP struct{ noDriver }

func (n noDHCP) Start(context.Context, int) error        { return n.err() }
func (n noDHCP) SetMaxLeases(context.Context, int) error { return n.err() }
func (noDHCP) Leases() []sharing.Lease                   { return nil }

type noFirewall struct{ noDriver }

func (n noFirewall) Start(context.Context, string) error              { return n.err() }
func (n noFirewall) SetUplink(context.Context, string) error          { return n.err() }
func (noFirewall) Counters() (map[netip.Addr]sharing.Counters, error) { return nil, nil }
