// Package modem is the cellular uplink: it drives the modem over AT
// commands (drivers/modem/at) and keeps the public connection up. It
// unlocks the SIM with the user's PIN (once per PIN: a wrong one is never
// tried again, PUK and a blocked SIM are states, not retries), follows
// registration (+CREG/+CGREG/+CEREG, read and as URCs), operator (+COPS)
// and signal (+CSQ, +CESQ), turns connections from the provisioning into
// packet data contexts (+CGDCONT, +CGAUTH, +CGACT or Quectel's
// +QNETDEVCTL), addresses the uplink interface (DHCP on ECM, the lease
// kept for as long as the context; statically on raw IP) and reports the public connection up or down, with the reason,
// to the sharing state machine.
//
// Context 1 is the device's own (default) connection, brought up as soon
// as the modem is registered; a connection that sharing acquires runs on
// context 2. The uplink interface carries one of them at a time. On a
// modem limited to one data connection (and on Quectel, whose network
// interface serves one context) the default context is torn down while
// sharing uses its own, and restored on Release.
package modem

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/openmifi/openmifi/drivers/modem/at"
	"github.com/openmifi/openmifi/internal/clock"
	"github.com/openmifi/openmifi/internal/provision"
	"github.com/openmifi/openmifi/internal/sharing"
)

// Reporter is told about the public connection; *sharing.Machine is one.
type Reporter interface {
	PublicUp(sharing.UplinkInfo)
	PublicDown(reason string)
	SetIdentity(sharing.Identity)
}

// Reasons the public connection is down, as PublicDown reports them.
const (
	ReasonDeregistered = "deregistered"
	ReasonNetworkDeact = "network deactivation"
	ReasonPortLost     = "port lost"
	ReasonSIMRemoved   = "SIM removed"
	ReasonNoSIM        = "no SIM"
	ReasonPINRequired  = "SIM PIN required"
	ReasonPINRejected  = "SIM PIN rejected"
	ReasonPUKRequired  = "SIM PUK required"
	ReasonSIMBlocked   = "SIM blocked"
	ReasonNoModem      = "modem not answering"
	// ReasonSwitching: sharing moves to its own context, or gives it
	// back; the interface has no address until the other one is up.
	ReasonSwitching = "switching connection"
)

// Dialects the driver speaks.
const (
	DialectGeneric = "generic"
	DialectQuectel = "quectel"
	DialectSIMCom  = "simcom"
)

const (
	defaultCID = 1
	sharingCID = 2

	defaultSignalEvery = 30 * time.Second
	minRetry           = time.Second
	maxRetry           = time.Minute
)

// Config describes the board's modem.
type Config struct {
	Open          at.OpenFunc
	Dialect       string // generic (default), quectel or simcom
	Interface     string // the uplink network interface, e.g. wwan0
	Addressing    string // AddressingDHCP (default), AddressingStatic or AddressingNone
	SingleContext bool   // the modem allows one active data connection
	// PIN returns the user's SIM PIN ("" for none); it is asked each time
	// the SIM wants one, so a PIN changed in the settings is used.
	PIN func() string
	// Default is the device's own connection on context 1; nil keeps the
	// modem's definition of context 1, or defines it with the network's
	// APN.
	Default *provision.Connection
	// Addresser configures the interface; nil: &Netlink{}.
	Addresser Addresser
	// SignalEvery is how often signal and operator are read; 0: 30 s.
	SignalEvery time.Duration
	// ATTimeout, when set, is the timeout of every command, the engine's
	// long ones for network commands included; 0 leaves the engine's.
	// Tests on a fake clock set it long, so that moving the clock on by
	// minutes does not time out a command in flight.
	ATTimeout time.Duration
	Clock     clock.Clock
	Log       *slog.Logger
}

// Driver is the modem driver. Create it with New, start it with Run.
type Driver struct {
	cfg  Config
	log  *slog.Logger
	clk  clock.Clock
	eng  *at.Engine
	kick chan struct{}

	mu   sync.Mutex
	want *provision.Connection // the sharing connection; nil: the default
}

// New returns a driver for cfg; nothing happens until Run.
func New(cfg Config) *Driver {
	if cfg.Dialect == "" {
		cfg.Dialect = DialectGeneric
	}
	if cfg.Addressing == "" {
		cfg.Addressing = AddressingDHCP
	}
	if cfg.SignalEvery <= 0 {
		cfg.SignalEvery = defaultSignalEvery
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.PIN == nil {
		cfg.PIN = func() string { return "" }
	}
	if cfg.Addresser == nil {
		cfg.Addresser = &Netlink{Log: cfg.Log, Clock: cfg.Clock}
	}
	log := cfg.Log.With("driver", "modem")
	return &Driver{
		cfg:  cfg,
		log:  log,
		clk:  cfg.Clock,
		kick: make(chan struct{}, 1),
		eng: at.New(at.Config{
			Open: cfg.Open,
			// Verbose errors, and every registration and packet domain
			// change reported, so that little needs polling.
			Init:    []string{"ATE0", "AT+CMEE=2", "AT+CREG=2", "AT+CGREG=2", "AT+CEREG=2", "AT+CGEREP=2,1"},
			Timeout: cfg.ATTimeout,
			Clock:   cfg.Clock,
			Log:     log,
		}),
	}
}

// Acquire asks for the connection sharing uses: the first with
// TetheringNAI set, else the first one; nil or none keeps the default
// connection. It returns at once; the result is reported.
func (d *Driver) Acquire(ctx context.Context, conns []provision.Connection) error {
	var want *provision.Connection
	for i := range conns {
		if conns[i].TetheringNAI {
			want = &conns[i]
			break
		}
	}
	if want == nil && len(conns) > 0 {
		want = &conns[0]
	}
	if want != nil {
		if err := checkConn(*want); err != nil {
			return err
		}
		c := *want
		want = &c
	}
	d.mu.Lock()
	d.want = want
	d.mu.Unlock()
	d.poke()
	return nil
}

// Release gives the sharing connection back: the default one returns.
func (d *Driver) Release(ctx context.Context) error {
	d.mu.Lock()
	d.want = nil
	d.mu.Unlock()
	d.poke()
	return nil
}

func (d *Driver) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// checkConn refuses what cannot be written into an AT command line.
func checkConn(c provision.Connection) error {
	for _, s := range []string{c.APN, c.UserName, string(c.Password)} {
		if strings.ContainsAny(s, "\"\r\n\x1a\x1b") {
			return fmt.Errorf("connection %s: APN, user name or password holds a character an AT command cannot carry", c.Name)
		}
	}
	return nil
}

// target is a context the interface should carry.
type target struct {
	cid  int
	conn *provision.Connection // nil: the modem's own definition
}

func (t target) same(o target) bool {
	if t.cid != o.cid || (t.conn == nil) != (o.conn == nil) {
		return false
	}
	return t.conn == nil || *t.conn == *o.conn
}

func (d *Driver) target() target {
	d.mu.Lock()
	want := d.want
	d.mu.Unlock()
	def := target{cid: defaultCID, conn: d.cfg.Default}
	if want == nil {
		return def
	}
	// A connection like the default one needs no context of its own,
	// except the tethering one, which the network tells apart by APN and
	// account even when they look alike.
	if !want.TetheringNAI && d.cfg.Default != nil && want.APN == d.cfg.Default.APN &&
		want.IPType == d.cfg.Default.IPType && want.UserName == d.cfg.Default.UserName {
		return def
	}
	return target{cid: sharingCID, conn: want}
}

// exclusive says whether the interface's context must be the only active
// one of ours.
func (d *Driver) exclusive() bool {
	return d.cfg.SingleContext || d.cfg.Dialect == DialectQuectel
}

// Run drives the modem until ctx ends, reporting to r, and returns ctx's
// error once the AT engine has stopped.
func (d *Driver) Run(ctx context.Context, r Reporter) error {
	// A Watcher's changes (a DHCP lease renewed, lost) are followed; its
	// upkeep ends with the driver.
	var changes <-chan AddrChange
	if w, ok := d.cfg.Addresser.(Watcher); ok {
		changes = w.Changes()
		defer w.Close()
	}
	ctx, cancel := context.WithCancel(ctx)
	urcs, unsub := d.eng.Subscribe("+CREG", "+CGREG", "+CEREG", "+CGEV", "+CPIN", "+SIMCARD", "+QNETDEVSTATUS")
	engDone := make(chan struct{})
	go func() {
		defer close(engDone)
		d.eng.Run(ctx)
	}()
	fwdDone := make(chan struct{})
	defer func() {
		cancel()
		unsub()
		<-engDone
		<-fwdDone
	}()

	s := &session{d: d, r: r, log: d.log, regs: map[string]reg{}, activated: map[int]bool{},
		pollC: make(chan struct{}, 1), retryC: make(chan struct{}, 1)}
	s.armPoll()
	// Commands run under the port's context, which ends as soon as the
	// engine reports the port lost: a command waiting for the port to
	// come back would keep this loop from hearing of the loss.
	events := make(chan at.Event, 16)
	go func() {
		defer close(fwdDone)
		var cancelPort context.CancelFunc = func() {}
		defer func() { cancelPort() }()
		for ev := range d.eng.Events() {
			switch ev.Kind {
			case at.Ready:
				cancelPort()
				pctx, c := context.WithCancel(ctx)
				cancelPort = c
				s.setPort(pctx)
			case at.Lost:
				cancelPort()
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			s.stopTimers()
			return ctx.Err()
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			s.event(ctx, ev)
		case u, ok := <-urcs:
			if !ok {
				urcs = nil
				continue
			}
			s.urc(ctx, u)
		case <-d.kick:
			s.reconcile(ctx)
		case <-s.pollC:
			s.poll(ctx)
			s.armPoll()
		case <-s.retryC:
			s.reconcile(ctx)
		case c := <-changes:
			s.addrChanged(c)
		}
	}
}

// session is the modem's state as Run's goroutine knows it; only that
// goroutine touches it, except for port (under portMu), which the event
// forwarder sets.
type session struct {
	d   *Driver
	r   Reporter
	log *slog.Logger

	ready      bool
	sim        string // +CPIN state; "" unknown
	triedPIN   string // the PIN entered last; never entered twice
	identified bool
	regs       map[string]reg
	operator   string
	plmn       string
	tech       string
	sig        signal

	activated map[int]bool // contexts of ours the modem has active
	up        bool
	cur       target
	addr      Addressing
	addrLost  string // why the interface lost its addressing while up
	lastInfo  *sharing.UplinkInfo
	lastDown  string

	portMu sync.Mutex
	port   context.Context // nil until the first Ready

	retry         time.Duration
	pollT, retryT clock.Timer
	pollC, retryC chan struct{}
}

func (s *session) setPort(ctx context.Context) {
	s.portMu.Lock()
	s.port = ctx
	s.portMu.Unlock()
}

// cmd runs one command under ctx and the port's context.
func (s *session) cmd(ctx context.Context, c at.Command) (at.Response, error) {
	s.portMu.Lock()
	port := s.port
	s.portMu.Unlock()
	if port == nil {
		return at.Response{}, fmt.Errorf("%s: %w", c.Text, at.ErrPortLost)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer context.AfterFunc(port, cancel)()
	defer cancel()
	if c.Timeout == 0 {
		c.Timeout = s.d.cfg.ATTimeout
	}
	return s.d.eng.Do(ctx, c)
}

func (s *session) portAlive() bool {
	s.portMu.Lock()
	defer s.portMu.Unlock()
	return s.port != nil && s.port.Err() == nil
}

func (s *session) do(ctx context.Context, text string) (at.Response, error) {
	return s.cmd(ctx, at.Command{Text: text})
}

func signalTimer(c chan struct{}) func() {
	return func() {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func (s *session) armPoll() {
	s.pollT = s.d.clk.AfterFunc(s.d.cfg.SignalEvery, signalTimer(s.pollC))
}

// retryLater reconciles again after a back-off of 1 s doubling to a minute.
func (s *session) retryLater() {
	if s.retryT != nil {
		s.retryT.Stop()
	}
	s.retry = min(max(2*s.retry, minRetry), maxRetry)
	s.retryT = s.d.clk.AfterFunc(s.retry, signalTimer(s.retryC))
}

func (s *session) stopTimers() {
	for _, t := range []clock.Timer{s.pollT, s.retryT} {
		if t != nil {
			t.Stop()
		}
	}
}

func (s *session) event(ctx context.Context, ev at.Event) {
	switch ev.Kind {
	case at.Ready:
		// The engine has logged it.
		s.ready = true
		s.setup(ctx)
	case at.Lost:
		s.log.Warn("modem port lost", "err", ev.Err)
		s.ready, s.sim, s.identified = false, "", false
		s.regs = map[string]reg{}
		s.activated = map[int]bool{}
		s.setDown(ctx, ReasonPortLost)
	case at.Reset:
		s.log.Warn("modem reset by the AT engine: it had stopped answering")
	}
}
