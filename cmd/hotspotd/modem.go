package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/openmifi/openmifi/drivers/modem"
	"github.com/openmifi/openmifi/drivers/modem/at"
	"github.com/openmifi/openmifi/internal/daemon"
)

// modemFlags are the board's modem and uplink, as cmd/init passes them.
type modemFlags struct {
	device        string
	baud          int
	dialect       string
	uplink        string
	addressing    string
	singleContext bool
}

func (m *modemFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.device, "modem", "", "the modem's AT port, e.g. /dev/ttyS1 (\"\": no modem driver)")
	fs.IntVar(&m.baud, "modem-baud", 115200, "the AT port's speed")
	fs.StringVar(&m.dialect, "modem-dialect", modem.DialectGeneric, "the modem's AT dialect: generic, quectel or simcom")
	fs.StringVar(&m.uplink, "uplink", "eth0", "the modem's network interface")
	fs.StringVar(&m.addressing, "uplink-addressing", modem.AddressingDHCP,
		"how the uplink interface is addressed: dhcp (ECM), static (raw IP, from +CGPADDR) or none (configured by someone else)")
	fs.BoolVar(&m.singleContext, "modem-single-context", false, "the modem allows one data connection at a time")
}

func (m *modemFlags) check() error {
	switch m.dialect {
	case modem.DialectGeneric, modem.DialectQuectel, modem.DialectSIMCom:
	default:
		return fmt.Errorf("-modem-dialect %q: want generic, quectel or simcom", m.dialect)
	}
	switch m.addressing {
	case modem.AddressingDHCP, modem.AddressingStatic, modem.AddressingNone:
	default:
		return fmt.Errorf("-uplink-addressing %q: want dhcp, static or none", m.addressing)
	}
	if m.baud <= 0 {
		return fmt.Errorf("-modem-baud %d: want a positive speed", m.baud)
	}
	return nil
}

// add puts the modem driver into drv when a modem is given; netNS is the
// network namespace of the uplink interface (0: this one).
func (m *modemFlags) add(drv *daemon.Drivers, log *slog.Logger, netNS int) {
	if m.device == "" {
		return
	}
	// The PIN is read from the user's settings each time the SIM asks
	// for it; the daemon exists by the time the driver runs.
	var d *daemon.Daemon
	mdm := modem.New(modem.Config{
		Open:          at.Serial(m.device, m.baud),
		Dialect:       m.dialect,
		Interface:     m.uplink,
		Addressing:    m.addressing,
		SingleContext: m.singleContext,
		PIN:           func() string { return d.UserSettings().SIMPIN },
		Addresser:     &modem.Netlink{NetNS: netNS, Log: log},
		Log:           log,
	})
	drv.Uplink = mdm
	drv.Services = append(drv.Services, func(ctx context.Context, dm *daemon.Daemon) error {
		d = dm
		return mdm.Run(ctx, dm.Machine())
	})
}
