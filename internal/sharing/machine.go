// Package sharing is the state machine that decides when internet sharing is
// on: it follows the user's choice within the operator's provisioning,
// checks entitlement, starts and stops the uplink, firewall, DHCP server and
// access point in order, and turns sharing off by itself on the timeouts of
// the provisioning.
//
// One goroutine, Run, owns all state. Driver work that can take long (the
// entitlement plugin, starting and stopping) runs in a goroutine of Run's
// that reports back as an event, so the user can always turn sharing off and
// always get a status.
//
// Policies the seed document leaves open, decided here:
//   - The persisted on/off choice is the user's: only "on" and "off" from the
//     user change it. A stop by a timeout or a failed entitlement leaves it,
//     so a reboot resumes what the user last chose (and checks entitlement
//     again).
//   - Entitlement runs before the uplink for sharing is acquired, over the
//     device's current connection, as the plugin contacts the operator
//     itself; its environment names the current uplink interface.
//   - A periodic check answering UNAVAILABLE is retried after 1, 2 and 4
//     minutes while sharing stays on; if the third retry is still not
//     SUCCESS, sharing turns off (entitlement unavailable). FAILED turns it
//     off at once.
//   - Sharing is on once the AP, DHCP and firewall run, even when the
//     public connection is not up yet: that is the PublicConnectionTimeout
//     case, counted from the moment sharing is on.
//   - A change of SSID, passphrase, band, channel, country or hidden while on
//     restarts the access point; clients reconnect with the new settings.
package sharing

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/openmifi/openmifi/internal/clock"
	"github.com/openmifi/openmifi/internal/provision"
	"github.com/openmifi/openmifi/internal/usersettings"
)

// RetryBackoff is the UNAVAILABLE retry policy of periodic entitlement
// checks: one retry after each delay, then off.
var RetryBackoff = []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute}

// ErrUnavailable refuses user commands while the operator has not enabled
// sharing.
var ErrUnavailable = errors.New("internet sharing is not available on this device (disabled by the operator)")

// Config wires the machine to its drivers.
type Config struct {
	Clock    clock.Clock  // nil: the wall clock
	Log      *slog.Logger // nil: slog.Default()
	Uplink   Uplink
	AP       AccessPoint
	DHCP     DHCPServer
	Firewall Firewall
	Entitler Entitler
	Users    UserStore
	// ResolveHelp turns MOHelpMessage (@file,-id) into text; nil leaves
	// the message out.
	ResolveHelp func(ref string) (string, error)
	// DriverTimeout bounds each driver call; 0 means one minute.
	DriverTimeout time.Duration
	// Warnings are shown in every status (a corrupt user file set aside).
	Warnings []string
	// UplinkChanged and StationChanged, if set, hear of the events the
	// machine gets, for the drivers that follow them too: the DNS
	// forwarder (the uplink's servers), the DHCP server (leases of
	// stations that left). They run in Run's goroutine and must not block.
	UplinkChanged  func(UplinkStatus)
	StationChanged func(mac net.HardwareAddr, present bool)
}

// Machine is the sharing state machine. Create it with New and run it with
// Run; every other method may be called from any goroutine.
type Machine struct {
	cfg    Config
	clk    clock.Clock
	log    *slog.Logger
	events chan event
	done   chan struct{} // closed when Run returns

	mu     sync.Mutex
	status Status // published snapshot, under mu

	// Everything below belongs to the Run goroutine.
	prov      *provision.Provisioning
	provErr   error
	state     State
	reason    Reason
	errText   string
	since     time.Time
	uplink    UplinkStatus
	identity  Identity
	stations  map[string]stationEntry
	apConfig  APConfig // what the running AP was started with
	fwUplink  string   // what the running firewall masquerades on
	maxUsers  int      // what AP and DHCP enforce now
	wantOn    bool     // turn on again once the current stop is done
	stopAfter Reason   // stop once the current start is done (ReasonNone: don't)
	op        *operation
	opSeq     int
	wg        sync.WaitGroup
	timers    map[timerKind]*armed
	timerSeq  int
	retries   int // periodic entitlement retries used
	helpMsg   *string
}

type stationEntry struct {
	Station
	joined time.Time
}

type operation struct {
	id     int
	kind   opKind
	cancel context.CancelFunc
}

type opKind int

const (
	opEntitle opKind = iota
	opRecheck
	opStart
	opStop
	opRestartAP
)

type timerKind int

const (
	timerPeerless timerKind = iota
	timerPublic
	timerRecheck
)

type armed struct {
	t   clock.Timer
	seq int
}

// New returns a machine for the given operator provisioning. provErr is the
// provisioning's validation error, if any: the daemon stays manageable but
// sharing refuses to start with that error.
func New(cfg Config, prov *provision.Provisioning, provErr error) *Machine {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.DriverTimeout == 0 {
		cfg.DriverTimeout = time.Minute
	}
	if prov == nil {
		prov = &provision.Provisioning{HotSpot: provision.Defaults()}
		if provErr == nil {
			provErr = errors.New("no provisioning")
		}
	}
	m := &Machine{
		cfg:      cfg,
		clk:      cfg.Clock,
		log:      cfg.Log,
		events:   make(chan event, 64),
		done:     make(chan struct{}),
		prov:     prov,
		provErr:  provErr,
		stations: map[string]stationEntry{},
		timers:   map[timerKind]*armed{},
	}
	m.since = m.clk.Now()
	m.maxUsers = m.effectiveMaxUsers()
	switch {
	case provErr != nil:
		m.state, m.reason, m.errText = Off, ReasonInvalidProvisioning, provErr.Error()
	case !prov.HotSpot.Enabled:
		m.state = Unavailable
	default:
		m.state = Off
	}
	m.publish()
	return m
}

// Run owns the machine until ctx is cancelled; then it stops sharing, if it
// is on, and returns.
func (m *Machine) Run(ctx context.Context) error {
	defer close(m.done)
	if m.state == Off && m.provErr == nil && m.cfg.Users.Get().Sharing {
		m.log.Info("resuming sharing: the user left it on")
		m.begin()
		m.publish()
	}
	for {
		select {
		case <-ctx.Done():
			m.shutdown()
			return nil
		case e := <-m.events:
			e.apply(m)
			m.publish()
		}
	}
}

// shutdown stops whatever runs, synchronously: the daemon is exiting and
// must leave the kernel and the modem as it found them.
func (m *Machine) shutdown() {
	active := m.state == Starting || m.state == On || m.state == Stopping ||
		(m.op != nil && m.op.kind == opStart)
	if m.op != nil {
		m.op.cancel()
	}
	m.wg.Wait()
	for k := range m.timers {
		m.disarm(k)
	}
	if active {
		m.log.Info("stopping sharing: shutdown")
		ctx, cancel := context.WithTimeout(context.Background(), 4*m.cfg.DriverTimeout)
		if err := m.stopAll(ctx); err != nil {
			m.log.Warn("stop on shutdown", "err", err)
		}
		cancel()
	}
	if m.state != Off && m.state != Unavailable {
		m.enterOff(ReasonShutdown, "")
	}
	m.publish()
}

// event is something that happened, applied by Run.
type event interface{ apply(m *Machine) }

// send hands e to Run; it gives up once Run has returned.
func (m *Machine) send(e event) bool {
	select {
	case m.events <- e:
		return true
	case <-m.done:
		return false
	}
}

// call sends a request and waits for Run's answer.
func (m *Machine) call(ctx context.Context, f func() error) error {
	reply := make(chan error, 1)
	if !m.send(request{f, reply}) {
		return errors.New("hotspotd is shutting down")
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-m.done:
		return errors.New("hotspotd is shutting down")
	}
}

type request struct {
	f     func() error
	reply chan error
}

func (r request) apply(m *Machine) {
	err := r.f()
	// The caller reads Status next: it must see what the request did.
	m.publish()
	r.reply <- err
}

// TurnOn is the user turning sharing on. It returns once the request is
// accepted (or refused); Status tells how it goes.
func (m *Machine) TurnOn(ctx context.Context) error {
	return m.call(ctx, m.userOn)
}

// TurnOff is the user turning sharing off.
func (m *Machine) TurnOff(ctx context.Context) error {
	return m.call(ctx, m.userOff)
}

// UpdateSettings applies f to the user's settings, validated against the
// operator's limits, persists them and applies them to a running hotspot.
func (m *Machine) UpdateSettings(ctx context.Context, f func(*usersettings.Settings) error) (usersettings.Settings, error) {
	var out usersettings.Settings
	err := m.call(ctx, func() error {
		if m.state == Unavailable {
			return ErrUnavailable
		}
		s, err := m.cfg.Users.Update(m.prov.HotSpot.MaxUsers, f)
		if err != nil {
			return err
		}
		out = s
		m.applySettings()
		return nil
	})
	if err != nil {
		// out is Run's until the reply: after a cancelled wait it may
		// still be written.
		return usersettings.Settings{}, err
	}
	return out, nil
}

// Settings returns the user's settings, refused while sharing is unavailable.
func (m *Machine) Settings() (usersettings.Settings, error) {
	m.mu.Lock()
	unavailable := m.status.State == Unavailable
	m.mu.Unlock()
	if unavailable {
		return usersettings.Settings{}, ErrUnavailable
	}
	return m.cfg.Users.Get(), nil
}

// PublicUp reports that the public connection is up (or that its details,
// such as the signal, changed).
func (m *Machine) PublicUp(info UplinkInfo) { m.send(publicUp{info}) }

// PublicDown reports that the public connection went down, and why.
func (m *Machine) PublicDown(reason string) { m.send(publicDown{reason}) }

// StationJoined reports a Wi-Fi client that completed association.
func (m *Machine) StationJoined(st Station) { m.send(stationJoined{st}) }

// StationLeft reports a Wi-Fi client that left.
func (m *Machine) StationLeft(mac string) { m.send(stationLeft{mac}) }

// DriverFailed reports a driver that stopped working by itself while
// sharing runs (the kernel took the access point down, say): sharing goes
// off as after a failed start, naming it.
func (m *Machine) DriverFailed(driver string, err error) { m.send(driverFailed{driver, err}) }

// SetIdentity reports the modem's and SIM's identity once known.
func (m *Machine) SetIdentity(id Identity) { m.send(identityEvent{id}) }

// Status returns a snapshot; clients, leases and counters are read from the
// drivers while sharing is on.
func (m *Machine) Status() Status {
	m.mu.Lock()
	s := m.status
	s.Clients = slices.Clone(s.Clients)
	m.mu.Unlock()
	if s.State != On {
		s.Clients = nil
		return s
	}
	leases := map[string]Lease{}
	for _, l := range m.cfg.DHCP.Leases() {
		leases[l.MAC.String()] = l
	}
	counters, err := m.cfg.Firewall.Counters()
	if err != nil {
		s.Warnings = append(slices.Clone(s.Warnings), "counters: "+err.Error())
	}
	for i := range s.Clients {
		c := &s.Clients[i]
		if l, ok := leases[c.MAC]; ok {
			c.Addr, c.Hostname = l.Addr, l.Hostname
			c.Counters = counters[l.Addr]
			delete(leases, c.MAC)
		}
	}
	// A lease without a station: a client on a wired LAN, or one the
	// access point has not reported (yet).
	var rest []Client
	for mac, l := range leases {
		rest = append(rest, Client{MAC: mac, Addr: l.Addr, Hostname: l.Hostname, Counters: counters[l.Addr]})
	}
	slices.SortFunc(rest, func(a, b Client) int { return a.Addr.Compare(b.Addr) })
	s.Clients = append(s.Clients, rest...)
	for _, c := range counters {
		s.Total = s.Total.Add(c)
	}
	return s
}

// publish copies the state into the snapshot Status reads.
func (m *Machine) publish() {
	s := Status{
		State:    m.state,
		Reason:   m.reason,
		Error:    m.errText,
		Since:    m.since,
		Uplink:   m.uplink,
		Warnings: m.cfg.Warnings,
	}
	if m.state != Off {
		s.Reason = ReasonNone
	}
	if h := m.help(); h != (Help{}) {
		s.Help = &h
	}
	if m.state != Unavailable {
		u := m.cfg.Users.Get()
		s.SSID = u.SSID
		s.MaxUsers = m.effectiveMaxUsers()
	}
	for mac, st := range m.stations {
		s.Clients = append(s.Clients, Client{MAC: mac, Joined: st.joined, SignalDBm: st.SignalDBm})
	}
	slices.SortFunc(s.Clients, func(a, b Client) int { return a.Joined.Compare(b.Joined) })
	m.mu.Lock()
	m.status = s
	m.mu.Unlock()
}

// help picks the operator help that fits the situation, as the seed
// document assigns it.
func (m *Machine) help() Help {
	h := m.prov.HotSpot
	switch {
	case m.state == Unavailable:
		return Help{InfoLink: h.MOInfoLink}
	case m.state != Off:
		return Help{}
	}
	switch m.reason {
	case ReasonEntitlementFailed, ReasonEntitlementUnavailable:
		out := Help{InfoLink: h.MOInfoLink, AppLink: h.MOAppLink}
		out.Message = m.helpMessage()
		return out
	case ReasonStartFailure, ReasonNoPublicConnection:
		return Help{Number: h.MOHelpNumber}
	}
	return Help{}
}

// helpMessage resolves MOHelpMessage once: the string tables are part of
// the read-only image.
func (m *Machine) helpMessage() string {
	ref := m.prov.HotSpot.MOHelpMessage
	if m.helpMsg == nil {
		msg := ""
		if ref != "" && m.cfg.ResolveHelp != nil {
			var err error
			if msg, err = m.cfg.ResolveHelp(ref); err != nil {
				m.log.Warn("operator help message", "ref", ref, "err", err)
			}
		}
		m.helpMsg = &msg
	}
	return *m.helpMsg
}

func (m *Machine) effectiveMaxUsers() int {
	return m.cfg.Users.Get().EffectiveMaxUsers(m.prov.HotSpot.MaxUsers)
}
