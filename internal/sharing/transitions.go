package sharing

// The way between off and on: the operations Run launches and what it does
// with their results.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/openmifi/openmifi/internal/entitlement"
	"github.com/openmifi/openmifi/internal/provision"
	"github.com/openmifi/openmifi/internal/usersettings"
)

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
	// The firewall starts without an uplink: Acquire may move the public
	// connection to another context or interface, and what was up before
	// it is no longer to be trusted. Once on, syncUplink points NAT and
	// routing at whatever is up by then.
	m.apConfig, m.fwUplink, m.maxUsers = ap, "", ap.MaxStations
	m.launch(opStart, func(ctx context.Context) opResult {
		return opResult{err: m.startAll(ctx, conns, ap)}
	})
}

// startAll brings the drivers up in dependency order; on failure the caller
// stops them all.
func (m *Machine) startAll(ctx context.Context, conns []provision.Connection, ap APConfig) error {
	steps := []struct {
		name string
		f    func(context.Context) error
	}{
		{"uplink", func(ctx context.Context) error { return m.cfg.Uplink.Acquire(ctx, conns) }},
		{"firewall", func(ctx context.Context) error { return m.cfg.Firewall.Start(ctx, "") }},
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
