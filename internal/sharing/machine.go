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
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/openmifi/openmifi/internal/clock"
	"github.com/openmifi/openmifi/internal/entitlement"
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
		}
	}
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

func (m *Machine) setState(s State) {
	if s == m.state {
		return
	}
	m.log.Info("sharing", "state", s.String(), "was", m.state.String())
	m.state = s
	m.since = m.clk.Now()
}

func (m *Machine) enterOff(r Reason, detail string) {
	for k := range m.timers {
		m.disarm(k)
	}
	clear(m.stations)
	m.retries = 0
	m.setState(Off)
	m.reason, m.errText = r, detail
	if detail != "" {
		m.log.Warn("sharing off", "reason", r.String(), "err", detail)
	} else {
		m.log.Info("sharing off", "reason", r.String())
	}
}

// userOn handles the user's "on".
func (m *Machine) userOn() error {
	switch m.state {
	case Unavailable:
		return ErrUnavailable
	case CheckingEntitlement, Starting, On:
		m.stopAfter = ReasonNone
		return nil
	case Stopping:
		m.wantOn = true
		m.persistChoice(true)
		return nil
	}
	if m.provErr != nil {
		return fmt.Errorf("sharing cannot start: invalid provisioning: %w", m.provErr)
	}
	m.persistChoice(true)
	m.begin()
	return nil
}

func (m *Machine) userOff() error {
	switch m.state {
	case Unavailable:
		return ErrUnavailable
	case Off:
		m.persistChoice(false)
		return nil
	case Stopping:
		m.wantOn = false
		m.persistChoice(false)
		return nil
	case CheckingEntitlement:
		m.persistChoice(false)
		m.cancelOp()
		m.enterOff(ReasonUser, "")
		return nil
	case Starting:
		// The start runs to its end (each step is bounded), then stops:
		// cancelling it half-way would leave no one owning what it started.
		m.persistChoice(false)
		m.stopAfter = ReasonUser
		return nil
	}
	m.persistChoice(false)
	m.stop(ReasonUser, "")
	return nil
}

func (m *Machine) persistChoice(on bool) {
	_, err := m.cfg.Users.Update(m.prov.HotSpot.MaxUsers, func(s *usersettings.Settings) error {
		s.Sharing = on
		return nil
	})
	if err != nil {
		// Sharing still follows the user now; only the next boot may not.
		m.log.Error("persist sharing choice", "on", on, "err", err)
	}
}

// begin starts the way to "on": entitlement if required, then the drivers.
func (m *Machine) begin() {
	m.reason, m.errText = ReasonNone, ""
	if _, err := m.prov.SharingConnections(); err != nil {
		m.enterOff(ReasonStartFailure, err.Error())
		return
	}
	if !m.prov.HotSpot.EntitlementRequired {
		m.startDrivers()
		return
	}
	m.setState(CheckingEntitlement)
	m.launch(opEntitle, m.entitleOp())
}

// entitleOp captures what the plugin is told now, in Run's goroutine, and
// returns the operation that runs it.
func (m *Machine) entitleOp() func(context.Context) opResult {
	env := entitlement.Env{
		IMSI: m.identity.IMSI, ICCID: m.identity.ICCID, IMEI: m.identity.IMEI,
		MCC: m.identity.MCC, MNC: m.identity.MNC,
		URL: m.prov.HotSpot.EntitlementURL,
	}
	if m.uplink.Up {
		env.Interface = m.uplink.Interface
	}
	plugin, check := m.prov.HotSpot.EntitlementDll, m.cfg.Entitler.Check
	return func(ctx context.Context) opResult {
		res, err := check(ctx, plugin, env)
		return opResult{result: res, err: err}
	}
}

func (m *Machine) startDrivers() {
	m.setState(Starting)
	conns, _ := m.prov.SharingConnections()
	u := m.cfg.Users.Get()
	ap := APConfig{
		SSID: u.SSID, Passphrase: u.Passphrase, Hidden: u.Hidden, Band: u.Band,
		Channel: u.Channel, Country: u.Country, MaxStations: m.effectiveMaxUsers(),
	}
	uplink := ""
	if m.uplink.Up {
		uplink = m.uplink.Interface
	}
	m.apConfig, m.fwUplink, m.maxUsers = ap, uplink, ap.MaxStations
	m.launch(opStart, func(ctx context.Context) opResult {
		return opResult{err: m.startAll(ctx, conns, uplink, ap)}
	})
}

// startAll brings the drivers up in dependency order; on failure the caller
// stops them all.
func (m *Machine) startAll(ctx context.Context, conns []provision.Connection, uplink string, ap APConfig) error {
	steps := []struct {
		name string
		f    func(context.Context) error
	}{
		{"uplink", func(ctx context.Context) error { return m.cfg.Uplink.Acquire(ctx, conns) }},
		{"firewall", func(ctx context.Context) error { return m.cfg.Firewall.Start(ctx, uplink) }},
		{"dhcp", func(ctx context.Context) error { return m.cfg.DHCP.Start(ctx, ap.MaxStations) }},
		{"access point", func(ctx context.Context) error { return m.cfg.AP.Start(ctx, ap) }},
	}
	for _, s := range steps {
		if err := m.driverCall(ctx, s.f); err != nil {
			return fmt.Errorf("start %s: %w", s.name, err)
		}
	}
	return nil
}

// stopAll stops every driver, in the reverse order of startAll, whatever
// fails on the way.
func (m *Machine) stopAll(ctx context.Context) error {
	var errs []error
	for _, s := range []struct {
		name string
		f    func(context.Context) error
	}{
		{"access point", m.cfg.AP.Stop},
		{"dhcp", m.cfg.DHCP.Stop},
		{"firewall", m.cfg.Firewall.Stop},
		{"uplink", m.cfg.Uplink.Release},
	} {
		if err := m.driverCall(ctx, s.f); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", s.name, err))
		}
	}
	return errors.Join(errs...)
}

func (m *Machine) driverCall(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.DriverTimeout)
	defer cancel()
	return f(ctx)
}

// stop starts the way to "off".
func (m *Machine) stop(r Reason, detail string) {
	m.cancelOp()
	for k := range m.timers {
		m.disarm(k)
	}
	m.setState(Stopping)
	m.launch(opStop, func(ctx context.Context) opResult {
		// A stop must finish even though nobody waits for it.
		return opResult{err: m.stopAll(context.WithoutCancel(ctx)), reason: r, detail: detail}
	})
}

// launch runs f in an operation goroutine; its result comes back as an
// event. Only one operation runs at a time.
func (m *Machine) launch(kind opKind, f func(ctx context.Context) opResult) {
	m.cancelOp()
	m.opSeq++
	ctx, cancel := context.WithCancel(context.Background())
	op := &operation{id: m.opSeq, kind: kind, cancel: cancel}
	m.op = op
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer cancel()
		r := f(ctx)
		r.id, r.kind = op.id, op.kind
		m.send(r)
	}()
}

func (m *Machine) cancelOp() {
	if m.op != nil {
		m.op.cancel()
		m.op = nil
	}
}

type opResult struct {
	id     int
	kind   opKind
	result entitlement.Result
	err    error
	reason Reason // opStop: why
	detail string // opStop: the failure that led to it
}

func (r opResult) apply(m *Machine) {
	if m.op == nil || m.op.id != r.id {
		return // cancelled: whoever cancelled it has moved on
	}
	m.op = nil
	switch r.kind {
	case opEntitle:
		m.afterEntitle(r)
	case opRecheck:
		m.afterRecheck(r)
	case opStart:
		m.afterStart(r)
	case opStop:
		m.afterStop(r)
	case opRestartAP:
		if r.err != nil {
			m.stop(ReasonStartFailure, r.err.Error())
		}
	}
}

func (m *Machine) afterEntitle(r opResult) {
	m.log.Info("entitlement", "result", r.result.String())
	switch r.result {
	case entitlement.Success:
		m.startDrivers()
	case entitlement.Failed:
		m.enterOff(ReasonEntitlementFailed, errText(r.err))
	default:
		m.enterOff(ReasonEntitlementUnavailable, errText(r.err))
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (m *Machine) afterStart(r opResult) {
	if reason := m.stopAfter; reason != ReasonNone {
		m.stopAfter = ReasonNone
		m.stop(reason, "")
		return
	}
	if r.err != nil {
		m.log.Error("sharing failed to start", "err", r.err)
		m.stop(ReasonStartFailure, r.err.Error())
		return
	}
	m.setState(On)
	m.retries = 0
	if len(m.stations) == 0 {
		m.arm(timerPeerless, m.prov.HotSpot.PeerlessTimeout)
	}
	if !m.uplink.Up {
		m.arm(timerPublic, m.prov.HotSpot.PublicConnectionTimeout)
	}
	m.armRecheck(m.prov.HotSpot.EntitlementInterval)
	// Whatever changed while starting is applied now.
	m.syncUplink(false)
	m.applySettings()
}

func (m *Machine) armRecheck(d time.Duration) {
	if m.prov.HotSpot.EntitlementRequired && m.prov.HotSpot.EntitlementInterval > 0 {
		m.arm(timerRecheck, d)
	}
}

func (m *Machine) afterStop(r opResult) {
	if r.err != nil {
		m.log.Error("stopping sharing", "err", r.err)
		if r.detail == "" {
			r.detail = r.err.Error()
		}
	}
	m.enterOff(r.reason, r.detail)
	if m.wantOn {
		m.wantOn = false
		m.begin()
	}
}

func (m *Machine) afterRecheck(r opResult) {
	m.log.Info("periodic entitlement", "result", r.result.String())
	switch r.result {
	case entitlement.Success:
		m.retries = 0
		m.armRecheck(m.prov.HotSpot.EntitlementInterval)
	case entitlement.Failed:
		m.stop(ReasonEntitlementFailed, errText(r.err))
	default:
		if m.retries >= len(RetryBackoff) {
			m.stop(ReasonEntitlementUnavailable, errText(r.err))
			return
		}
		m.arm(timerRecheck, RetryBackoff[m.retries])
		m.retries++
	}
}

// applySettings brings a running hotspot in line with the user's settings.
func (m *Machine) applySettings() {
	if m.state != On {
		return
	}
	u := m.cfg.Users.Get()
	want := APConfig{
		SSID: u.SSID, Passphrase: u.Passphrase, Hidden: u.Hidden, Band: u.Band,
		Channel: u.Channel, Country: u.Country, MaxStations: m.effectiveMaxUsers(),
	}
	if n := want.MaxStations; n != m.maxUsers {
		m.log.Info("client limit changed", "max_users", n, "was", m.maxUsers)
		m.maxUsers = n
		m.apConfig.MaxStations = n
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.DriverTimeout)
		err := errors.Join(m.cfg.AP.SetMaxStations(ctx, n), m.cfg.DHCP.SetMaxLeases(ctx, n))
		cancel()
		if err != nil {
			m.stop(ReasonStartFailure, fmt.Sprintf("apply client limit %d: %v", n, err))
			return
		}
	}
	if want != m.apConfig {
		m.log.Info("wifi settings changed: restarting the access point")
		m.apConfig = want
		clear(m.stations)
		m.arm(timerPeerless, m.prov.HotSpot.PeerlessTimeout)
		m.launch(opRestartAP, func(ctx context.Context) opResult {
			err := m.driverCall(ctx, m.cfg.AP.Stop)
			if err == nil {
				err = m.driverCall(ctx, func(ctx context.Context) error { return m.cfg.AP.Start(ctx, want) })
			}
			if err != nil {
				err = fmt.Errorf("restart access point: %w", err)
			}
			return opResult{err: err}
		})
	}
}

// syncUplink re-points NAT and routing when the public connection moved.
// force re-applies an unchanged interface: one that went down and came
// back lost its routes in the kernel.
func (m *Machine) syncUplink(force bool) {
	if m.state != On {
		return
	}
	iface := ""
	if m.uplink.Up {
		iface = m.uplink.Interface
	}
	if (iface == m.fwUplink && !force) || iface == "" {
		// Down keeps the old NAT: the connection usually comes back on
		// the same interface, and nothing leaves through a down link.
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.DriverTimeout)
	defer cancel()
	if err := m.cfg.Firewall.SetUplink(ctx, iface); err != nil {
		m.stop(ReasonStartFailure, fmt.Sprintf("re-point NAT to %s: %v", iface, err))
		return
	}
	m.log.Info("NAT follows the uplink", "interface", iface, "was", m.fwUplink)
	m.fwUplink = iface
}

// arm (re)starts timer k.
func (m *Machine) arm(k timerKind, d time.Duration) {
	m.disarm(k)
	m.timerSeq++
	seq := m.timerSeq
	m.timers[k] = &armed{seq: seq, t: m.clk.AfterFunc(d, func() { m.send(timerFired{k, seq}) })}
}

func (m *Machine) disarm(k timerKind) {
	if a := m.timers[k]; a != nil {
		a.t.Stop()
		delete(m.timers, k)
	}
}

type timerFired struct {
	kind timerKind
	seq  int
}

func (e timerFired) apply(m *Machine) {
	a := m.timers[e.kind]
	if a == nil || a.seq != e.seq || m.state != On {
		return // stopped or re-armed after it fired
	}
	delete(m.timers, e.kind)
	h := m.prov.HotSpot
	switch e.kind {
	case timerPeerless:
		m.log.Info("no clients", "for", h.PeerlessTimeout)
		m.stop(ReasonPeerless, "")
	case timerPublic:
		m.log.Info("no public connection", "for", h.PublicConnectionTimeout)
		m.stop(ReasonNoPublicConnection, fmt.Sprintf("no public connection for %v", h.PublicConnectionTimeout))
	case timerRecheck:
		if m.op != nil {
			// An AP restart is under way; check once it is done.
			m.arm(timerRecheck, time.Minute)
			return
		}
		m.launch(opRecheck, m.entitleOp())
	}
}

type publicUp struct{ info UplinkInfo }

func (e publicUp) apply(m *Machine) {
	wasUp := m.uplink.Up
	if !wasUp {
		m.log.Info("public connection up", "interface", e.info.Interface, "operator", e.info.Operator, "technology", e.info.Technology)
	}
	m.uplink = UplinkStatus{Up: true, UplinkInfo: e.info}
	m.disarm(timerPublic)
	m.syncUplink(!wasUp)
}

type publicDown struct{ reason string }

func (e publicDown) apply(m *Machine) {
	if m.uplink.Up {
		m.log.Warn("public connection down", "reason", e.reason)
	}
	m.uplink.Up, m.uplink.DownReason = false, e.reason
	if m.state == On && m.timers[timerPublic] == nil {
		m.arm(timerPublic, m.prov.HotSpot.PublicConnectionTimeout)
	}
}

type stationJoined struct{ st Station }

func (e stationJoined) apply(m *Machine) {
	if m.state != Starting && m.state != On {
		return
	}
	mac := e.st.MAC.String()
	old, ok := m.stations[mac]
	entry := stationEntry{Station: e.st, joined: m.clk.Now()}
	if ok {
		entry.joined = old.joined
	} else {
		m.log.Info("client joined", "mac", mac)
	}
	m.stations[mac] = entry
	m.disarm(timerPeerless)
}

type stationLeft struct{ mac string }

func (e stationLeft) apply(m *Machine) {
	if _, ok := m.stations[e.mac]; !ok {
		return
	}
	delete(m.stations, e.mac)
	m.log.Info("client left", "mac", e.mac)
	if len(m.stations) == 0 && m.state == On {
		m.arm(timerPeerless, m.prov.HotSpot.PeerlessTimeout)
	}
}

type identityEvent struct{ id Identity }

func (e identityEvent) apply(m *Machine) { m.identity = e.id }
