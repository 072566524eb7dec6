package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/openmifi/openmifi/drivers/wifi/ap"
	"github.com/openmifi/openmifi/drivers/wifi/nl80211"
	"github.com/openmifi/openmifi/internal/daemon"
)

// wifiFlags are the board's radio, as cmd/init passes it.
type wifiFlags struct {
	phy string
}

func (w *wifiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&w.phy, "wifi-phy", "", "the access point's radio, e.g. phy0 (\"\": the LAN interface's radio, else the first that can be an access point)")
}

// add puts the access point into drv, on the LAN interface: hotspotd
// owns that interface and runs the access point's management plane
// itself. Without a usable radio the driver is left out, with the reason
// in the log, and sharing refuses to start naming it.
func (w *wifiFlags) add(drv *daemon.Drivers, log *slog.Logger, lanIface string, netNS int) (closeRadio func()) {
	radio, err := nl80211.Open(nl80211.Config{PHY: w.phy, Interface: lanIface, NetNS: netNS, Logger: log})
	if err != nil {
		log.Error("access point driver unavailable", "err", err)
		return func() {}
	}
	wap, err := ap.New(ap.Config{Radio: radio, PHY: radio.PHY(), Log: log, GroupRekey: ap.DefaultGroupRekey})
	if err != nil {
		radio.Close()
		log.Error("access point driver unavailable", "err", err)
		return func() {}
	}
	drv.AP = wap
	drv.Services = append(drv.Services, func(ctx context.Context, d *daemon.Daemon) error {
		wap.SetReporter(d.Machine())
		return wap.Run(ctx)
	})
	return func() { radio.Close() }
}
