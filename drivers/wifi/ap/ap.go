// Package ap is the access point logic of hotspotd's own Wi-Fi AP, in the
// way of iwd's AP mode (no hostapd): it builds the beacon, answers probe,
// authentication and association requests, admits at most MaxStations
// stations, runs the WPA2-PSK 4-way and group key handshakes (package wpa)
// for each, and tells the sharing state machine who joined and who left.
// The kernel side is a Radio, which *nl80211.AP implements.
//
// All state is under one mutex: radio events (Run), clock timers and the
// sharing.AccessPoint calls take it in turn, so that a fake clock sees
// every effect of a timer before Advance returns. Reports to the Reporter
// are queued and delivered by Run outside the mutex, in order, because the
// state machine may be calling us while we report to it.
//
// hotspotd puts it together like this:
//
//	radio, err := nl80211.Open(nl80211.Config{Interface: "wlan0", Country: country, Logger: log})
//	wap, err := ap.New(ap.Config{Radio: radio, PHY: radio.PHY(), Log: log, GroupRekey: ap.DefaultGroupRekey})
//	// a daemon service, once the state machine exists:
//	wap.SetReporter(d.Machine())
//	err = wap.Run(ctx)
//
// and hands wap to the state machine as its sharing.AccessPoint.
package ap

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/openmifi/openmifi/drivers/wifi/nl80211"
	"github.com/openmifi/openmifi/internal/clock"
	"github.com/openmifi/openmifi/internal/ratelog"
	"github.com/openmifi/openmifi/internal/sharing"
)

// Reporter hears of stations joining (handshake done, port authorized)
// and leaving. *sharing.Machine implements it.
type Reporter interface {
	StationJoined(sharing.Station)
	StationLeft(mac string)
}

// failureReporter is a Reporter that also hears of an access point that
// stopped by itself; *sharing.Machine is one.
type failureReporter interface {
	DriverFailed(driver string, err error)
}

var errStoppedByKernel = errors.New("stopped by the kernel (interface gone or radio off)")

// Defaults of Config.
const (
	// DefaultGroupRekey is hostapd's usual group key lifetime.
	DefaultGroupRekey = time.Hour
	// DefaultRetransmit is how long we wait for an EAPOL-Key answer
	// before sending our message again.
	DefaultRetransmit = time.Second
	// DefaultAuthTimeout is how long a station may stay authenticated
	// without associating before its entry may be dropped.
	DefaultAuthTimeout = 10 * time.Second
	// DefaultMaxPending bounds the authenticated, not yet associated
	// stations we remember: anyone can send authentication frames
	// from random addresses.
	DefaultMaxPending = 32
)

// Config is what New needs.
type Config struct {
	Radio    Radio
	Reporter Reporter
	// PHY describes the radio: bands, channels, rates and HT capabilities.
	PHY   nl80211.PHY
	Clock clock.Clock  // nil: the wall clock
	Log   *slog.Logger // nil: discard
	Rand  io.Reader    // nil: crypto/rand; ANonces and group keys
	// GroupRekey is the group key lifetime; 0 never rekeys. hotspotd
	// passes DefaultGroupRekey.
	GroupRekey time.Duration
	// Retransmit, AuthTimeout and MaxPending: 0 takes the default.
	Retransmit  time.Duration
	AuthTimeout time.Duration
	MaxPending  int
	// BeaconInterval in TUs (0: 100) and DTIMPeriod (0: 2).
	BeaconInterval int
	DTIMPeriod     int
}

// AP is an access point on one radio. It implements
// sharing.AccessPoint; Run must run for it to answer anything.
type AP struct {
	cfg   Config
	radio Radio
	clk   clock.Clock
	log   *slog.Logger
	rl    *ratelog.Logger

	mu       sync.Mutex
	bss      *bss // nil while stopped
	gen      uint64
	stations map[string]*station
	pending  int     // stations in stAuth
	seq      uint64  // association order
	replies  limiter // answers to strangers: refusals, deauthentications
	probes   limiter
	rekey    *rekey
	reporter Reporter
	reports  []func(Reporter)
	kick     chan struct{}
	country  string // the regulatory country last set on the radio
}

// New returns a stopped access point.
func New(cfg Config) (*AP, error) {
	if cfg.Radio == nil {
		return nil, errors.New("access point: no radio")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Retransmit <= 0 {
		cfg.Retransmit = DefaultRetransmit
	}
	if cfg.AuthTimeout <= 0 {
		cfg.AuthTimeout = DefaultAuthTimeout
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.BeaconInterval <= 0 {
		cfg.BeaconInterval = 100
	}
	if cfg.DTIMPeriod <= 0 {
		cfg.DTIMPeriod = 2
	}
	return &AP{
		cfg: cfg, radio: cfg.Radio, clk: cfg.Clock, log: cfg.Log, reporter: cfg.Reporter,
		rl:       ratelog.New(cfg.Log, cfg.Clock),
		stations: map[string]*station{},
		// Answers to frames anyone can send: a few per second is
		// plenty for real clients and little for a flood.
		replies: limiter{n: 20, interval: time.Second},
		probes:  limiter{n: 50, interval: time.Second},
		kick:    make(chan struct{}, 1),
	}, nil
}

// Run handles the radio's events and delivers reports until ctx is done or
// the radio closes its event channel. hotspotd runs it for the AP's
// lifetime; Stop the AP before returning from it.
func (a *AP) Run(ctx context.Context) error {
	events := a.radio.Events()
	links, _ := a.radio.(linkReader)
	var tick chan struct{} // nil: no link refresh
	var stopLinks func()
	if links != nil {
		tick = make(chan struct{}, 1)
		stopLinks = a.armLinks(tick)
		defer func() { stopLinks() }()
	}
	for {
		select {
		case <-ctx.Done():
			a.deliver()
			return ctx.Err()
		case ev, ok := <-events:
			if !ok {
				a.deliver()
				return errors.New("access point: radio event channel closed")
			}
			a.handleEvent(ctx, ev)
		case <-a.kick:
		case <-tick:
			a.refreshLinks(links)
			stopLinks = a.armLinks(tick)
		}
		a.deliver()
	}
}

// maxReports bounds the queue should Run not be running.
const maxReports = 4096

// SetReporter replaces Config.Reporter: hotspotd builds the AP before the
// state machine that hears from it.
func (a *AP) SetReporter(r Reporter) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reporter = r
}

// report queues f for Run; a.mu is held.
func (a *AP) report(f func(Reporter)) {
	if a.reporter == nil {
		return
	}
	if len(a.reports) >= maxReports {
		a.reports = a.reports[1:]
		a.rl.Debug("reports", "access point: report queue full, dropping the oldest (is Run running?)")
	}
	a.reports = append(a.reports, f)
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// deliver hands the queued reports to the Reporter outside a.mu.
func (a *AP) deliver() {
	a.mu.Lock()
	r, to := a.reports, a.reporter
	a.reports = nil
	a.mu.Unlock()
	for _, f := range r {
		f(to)
	}
}

// opTimeout bounds radio calls made from events and timers, which have no
// caller's context.
const opTimeout = 5 * time.Second

func opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// Start brings the access point up with cfg, restarting it if it runs.
func (a *AP) Start(ctx context.Context, cfg sharing.APConfig) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.bss != nil {
		if err := a.stopLocked(ctx); err != nil {
			a.log.Warn("access point: stop before a restart", "err", err)
		}
	}
	b, err := a.newBSS(cfg)
	if err != nil {
		return fmt.Errorf("access point: %w", err)
	}
	if r, ok := a.radio.(countrySetter); ok && cfg.Country != "" && cfg.Country != a.country {
		// A hint the kernel intersects with what the radio may do; a
		// radio that refuses it keeps the domain it has.
		if err := r.SetCountry(ctx, cfg.Country); err != nil {
			a.log.Warn("access point: regulatory country", "country", cfg.Country, "err", err)
		} else {
			a.country = cfg.Country
		}
	}
	if err := a.radio.StartAP(ctx, b.startConfig()); err != nil {
		return fmt.Errorf("access point: start on %d MHz: %w", b.freq, err)
	}
	if err := a.radio.SetGroupKey(ctx, b.gtkIdx, b.gtk, make([]byte, 6)); err != nil {
		if serr := a.radio.StopAP(ctx); serr != nil {
			a.log.Warn("access point: stop after a failed start", "err", serr)
		}
		return fmt.Errorf("access point: set group key: %w", err)
	}
	a.gen++
	a.bss = b
	a.armRekey()
	a.log.Info("access point started", "ssid", cfg.SSID, "channel", cfg.Channel, "freq_mhz", b.freq,
		"ht", b.ht, "hidden", cfg.Hidden, "max_stations", b.max)
	return nil
}

// Stop deauthenticates every station and stops beaconing. Stopping a
// stopped AP does nothing.
func (a *AP) Stop(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.bss == nil {
		return nil
	}
	return a.stopLocked(ctx)
}

func (a *AP) stopLocked(ctx context.Context) error {
	a.stopRekey() // first: no group key goes in while stations go
	for _, st := range a.sortedStations() {
		a.deauth(ctx, st, reasonLeaving)
	}
	a.gen++
	a.bss = nil
	if err := a.radio.StopAP(ctx); err != nil {
		return fmt.Errorf("access point: stop: %w", err)
	}
	a.log.Info("access point stopped")
	return nil
}

// SetMaxStations changes the station limit; when lowered below the number
// of associated stations, the newest are disconnected and the oldest kept.
func (a *AP) SetMaxStations(ctx context.Context, n int) error {
	if n < 1 || n > maxAID {
		return fmt.Errorf("access point: station limit %d out of range (allowed: 1..%d)", n, maxAID)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.bss == nil {
		return nil
	}
	a.bss.max = n
	assoc := a.associated()
	// Stations still in their handshake go first, then the newest
	// joined ones.
	slices.SortStableFunc(assoc, func(x, y *station) int {
		if (x.state == stJoined) != (y.state == stJoined) {
			if x.state == stJoined {
				return -1
			}
			return 1
		}
		return cmp.Compare(x.seq, y.seq)
	})
	for i := len(assoc) - 1; i >= n; i-- {
		st := assoc[i]
		a.log.Info("station disconnected: client limit lowered", "mac", macValue(st.mac), "max_stations", n)
		a.deauth(ctx, st, reasonAPFull)
	}
	return nil
}

// Stations lists the joined stations, oldest first.
func (a *AP) Stations() []sharing.Station {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []sharing.Station
	for _, st := range a.sortedStations() {
		if st.state == stJoined {
			out = append(out, sharing.Station{MAC: slices.Clone(st.mac), SignalDBm: st.signal})
		}
	}
	return out
}

// handleEvent is one radio event.
func (a *AP) handleEvent(ctx context.Context, ev nl80211.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.bss == nil {
		return
	}
	switch ev.Kind {
	case nl80211.EventFrame:
		a.handleFrame(ctx, ev)
	case nl80211.EventEAPOL:
		a.handleEAPOL(ctx, ev)
	case nl80211.EventTxStatus:
		a.handleTxStatus(ctx, ev)
	case nl80211.EventStationGone:
		if st := a.stations[string(ev.MAC)]; st != nil {
			a.log.Info("station gone", "mac", macValue(st.mac))
			st.inKernel = false
			a.forget(st)
		}
	case nl80211.EventStopped:
		a.log.Warn("access point stopped by the kernel")
		a.report(func(r Reporter) {
			if f, ok := r.(failureReporter); ok {
				f.DriverFailed("access point", errStoppedByKernel)
			}
		})
		a.stopRekey()
		for _, st := range a.sortedStations() {
			st.inKernel = false
			a.forget(st)
		}
		a.gen++
		a.bss = nil
	}
}
