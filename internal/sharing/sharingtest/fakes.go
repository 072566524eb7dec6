// Package sharingtest provides fake drivers for the sharing state machine:
// they record what they were asked, in order, and fail or block on demand.
package sharingtest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/openmifi/openmifi/internal/entitlement"
	"github.com/openmifi/openmifi/internal/provision"
	"github.com/openmifi/openmifi/internal/sharing"
	"github.com/openmifi/openmifi/internal/usersettings"
)

// Log records driver calls across all fakes, so tests can check their order.
type Log struct {
	mu    sync.Mutex
	calls []string
}

func (l *Log) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, fmt.Sprintf(format, args...))
}

// Calls returns the calls so far and forgets them.
func (l *Log) Calls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.calls
	l.calls = nil
	return c
}

// String lists the calls so far without forgetting them.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.calls, ", ")
}

// Drivers is one set of fakes sharing a Log.
type Drivers struct {
	Log      *Log
	Uplink   *Uplink
	AP       *AP
	DHCP     *DHCP
	Firewall *Firewall
	Entitler *Entitler
}

// New returns fakes that succeed at everything and entitle.
func New() *Drivers {
	l := &Log{}
	return &Drivers{
		Log:      l,
		Uplink:   &Uplink{log: l},
		AP:       &AP{log: l},
		DHCP:     &DHCP{log: l},
		Firewall: &Firewall{log: l, counters: map[netip.Addr]sharing.Counters{}},
		Entitler: &Entitler{log: l, result: entitlement.Success},
	}
}

// Config fills the drivers of a sharing.Config.
func (d *Drivers) Config(c sharing.Config) sharing.Config {
	c.Uplink, c.AP, c.DHCP, c.Firewall, c.Entitler = d.Uplink, d.AP, d.DHCP, d.Firewall, d.Entitler
	return c
}

// gate lets a test make a call fail or wait.
type gate struct {
	mu    sync.Mutex
	err   error
	block chan struct{}
}

// FailWith makes the call fail with err (nil: succeed again).
func (g *gate) FailWith(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.err = err
}

// Block makes the call wait until the returned function is called or its
// context ends.
func (g *gate) Block() (release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := make(chan struct{})
	g.block = ch
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			if g.block == ch {
				g.block = nil
			}
			g.mu.Unlock()
			close(ch)
		})
	}
}

func (g *gate) pass(ctx context.Context) error {
	g.mu.Lock()
	err, block := g.err, g.block
	g.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

// Uplink is a fake cellular side.
type Uplink struct {
	gate
	log      *Log
	mu       sync.Mutex
	acquired bool
	conns    []provision.Connection
}

func (u *Uplink) Acquire(ctx context.Context, conns []provision.Connection) error {
	var names []string
	for _, c := range conns {
		names = append(names, c.Name)
	}
	u.log.add("uplink acquire [%s]", strings.Join(names, ";"))
	if err := u.pass(ctx); err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.acquired, u.conns = true, conns
	return nil
}

func (u *Uplink) Release(ctx context.Context) error {
	u.log.add("uplink release")
	u.mu.Lock()
	defer u.mu.Unlock()
	u.acquired = false
	return nil
}

// Acquired reports whether sharing holds the uplink, and which connections.
func (u *Uplink) Acquired() (bool, []provision.Connection) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.acquired, u.conns
}

// AP is a fake access point.
type AP struct {
	gate
	log     *Log
	mu      sync.Mutex
	running bool
	cfg     sharing.APConfig
}

func (a *AP) Start(ctx context.Context, cfg sharing.APConfig) error {
	a.log.add("ap start ssid=%q max=%d", cfg.SSID, cfg.MaxStations)
	if err := a.pass(ctx); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.running, a.cfg = true, cfg
	return nil
}

func (a *AP) Stop(ctx context.Context) error {
	a.log.add("ap stop")
	a.mu.Lock()
	defer a.mu.Unlock()
	a.running = false
	return nil
}

func (a *AP) SetMaxStations(ctx context.Context, n int) error {
	a.log.add("ap max %d", n)
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.running {
		return errors.New("access point not running")
	}
	a.cfg.MaxStations = n
	return nil
}

// Running reports whether the AP runs and with what.
func (a *AP) Running() (bool, sharing.APConfig) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.running, a.cfg
}

// DHCP is a fake DHCP server.
type DHCP struct {
	gate
	log     *Log
	mu      sync.Mutex
	running bool
	max     int
	leases  []sharing.Lease
}

func (d *DHCP) Start(ctx context.Context, maxLeases int) error {
	d.log.add("dhcp start max=%d", maxLeases)
	if err := d.pass(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.running, d.max = true, maxLeases
	return nil
}

func (d *DHCP) Stop(ctx context.Context) error {
	d.log.add("dhcp stop")
	d.mu.Lock()
	defer d.mu.Unlock()
	d.running = false
	return nil
}

func (d *DHCP) SetMaxLeases(ctx context.Context, n int) error {
	d.log.add("dhcp max %d", n)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.max = n
	return nil
}

func (d *DHCP) Leases() []sharing.Lease {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.leases)
}

// SetLeases replaces the lease list.
func (d *DHCP) SetLeases(l []sharing.Lease) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.leases = l
}

// Running reports whether the server runs and its lease limit.
func (d *DHCP) Running() (bool, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running, d.max
}

// Firewall is a fake NAT and filter.
type Firewall struct {
	gate
	log      *Log
	mu       sync.Mutex
	running  bool
	uplink   string
	counters map[netip.Addr]sharing.Counters
}

func (f *Firewall) Start(ctx context.Context, uplink string) error {
	f.log.add("firewall start uplink=%q", uplink)
	if err := f.pass(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running, f.uplink = true, uplink
	return nil
}

func (f *Firewall) SetUplink(ctx context.Context, uplink string) error {
	f.log.add("firewall uplink=%q", uplink)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uplink = uplink
	return nil
}

func (f *Firewall) Stop(ctx context.Context) error {
	f.log.add("firewall stop")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running = false
	return nil
}

func (f *Firewall) Counters() (map[netip.Addr]sharing.Counters, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[netip.Addr]sharing.Counters, len(f.counters))
	for k, v := range f.counters {
		out[k] = v
	}
	return out, nil
}

// Count sets one client's counters.
func (f *Firewall) Count(addr netip.Addr, c sharing.Counters) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counters[addr] = c
}

// Running reports whether the rules are installed and the NAT interface.
func (f *Firewall) Running() (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running, f.uplink
}

// Entitler is a fake entitlement check.
type Entitler struct {
	gate
	log    *Log
	mu     sync.Mutex
	result entitlement.Result
	envs   []entitlement.Env
}

func (e *Entitler) Check(ctx context.Context, plugin string, env entitlement.Env) (entitlement.Result, error) {
	e.log.add("entitle %s", plugin)
	e.mu.Lock()
	e.envs = append(e.envs, env)
	res := e.result
	e.mu.Unlock()
	if err := e.pass(ctx); err != nil {
		return entitlement.Unavailable, err
	}
	if res != entitlement.Success {
		return res, fmt.Errorf("fake says %v", res)
	}
	return res, nil
}

// Answer sets what the following checks answer.
func (e *Entitler) Answer(r entitlement.Result) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.result = r
}

// Envs returns the environment of every check so far.
func (e *Entitler) Envs() []entitlement.Env {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.envs)
}

// Users is an in-memory sharing.UserStore that validates like the real one.
type Users struct {
	mu sync.Mutex
	s  usersettings.Settings
}

// NewUsers returns a store holding s.
func NewUsers(s usersettings.Settings) *Users { return &Users{s: s} }

func (u *Users) Get() usersettings.Settings {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.s
}

func (u *Users) Update(operatorMaxUsers int, f func(*usersettings.Settings) error) (usersettings.Settings, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.s
	if err := f(&s); err != nil {
		return u.s, err
	}
	if err := s.Validate(operatorMaxUsers); err != nil {
		return u.s, err
	}
	u.s = s
	return s, nil
}
