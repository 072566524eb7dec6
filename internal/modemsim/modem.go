package modemsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/openmifi/openmifi/internal/clock"
)

// ErrPortGone is what Serve returns when the simulated modem dropped its
// port: after AT+CFUN=1,1, a "reset" or a "port gone" scenario step. The
// port can be served again once the modem is back (WaitPresent).
var ErrPortGone = errors.New("modem port gone")

// Config describes the simulated modem. The zero value is a generic 3GPP
// LTE modem with a SIM without PIN, in coverage, on the real clock.
type Config struct {
	// Dialect is "generic" (3GPP TS 27.007 and V.250 only), "quectel"
	// (EC25/EG25) or "simcom" (SIM7600). Empty means generic; see
	// Dialects.
	Dialect string

	// PIN, when set, locks the SIM at power-on until AT+CPIN="<PIN>".
	PIN string
	// PUK unblocks the SIM after three wrong PINs; default "12345678".
	PUK string

	// Identities; the defaults are valid test values (Luhn check digits,
	// the 3GPP test network 001/01).
	IMEI, IMSI, ICCID string
	// PLMN is the network's MCC and MNC ("00101"), OperatorLong and
	// OperatorShort its names in +COPS.
	PLMN, OperatorLong, OperatorShort string
	// Tech is the network's radio technology: "gsm", "umts" or "lte"
	// (the default); +COPS and +CREG report it as <AcT> 0, 2 or 7.
	Tech string
	// RSSI is the +CSQ <rssi> in coverage, 0..31; default 20 (-73 dBm).
	RSSI int
	// Roaming registers as roaming (stat 5) instead of home (stat 1).
	Roaming bool

	// DefaultAPN is the APN the network reports for a context defined
	// with an empty one; default "internet".
	DefaultAPN string
	// Lease gives the addresses of an activated context; default
	// DefaultLease.
	Lease func(cid int) Lease
	// MaxActive limits how many contexts may be active at once (a modem
	// limited to one data connection); 0 means no limit.
	MaxActive int

	// RegisterDelay is how long registration takes once the SIM is ready
	// and the radio on; meanwhile the modem reports "searching". 0 means
	// at once.
	RegisterDelay time.Duration
	// ScanTime is how long AT+COPS=? takes; default 3 s.
	ScanTime time.Duration
	// ResetTime is how long the port is gone after AT+CFUN=1,1 or a
	// "reset" step; default 3 s.
	ResetTime time.Duration

	// Scenario scripts what happens to the modem over time.
	Scenario *Scenario

	// DataUp is called when the data path of context cid comes up or
	// goes down: when the context is activated or deactivated, and for
	// the quectel dialect when AT+QNETDEVCTL connects or disconnects it.
	// It is called without any lock held, in the goroutine that caused
	// it (for a scenario step on a clock.Fake, inside Advance), and for a
	// command before its response (after it for AT+CFUN=1,1, whose reset
	// takes the data paths down).
	DataUp func(cid int, up bool)

	// Clock drives scenario steps and delays; default clock.Real.
	Clock clock.Clock
	// Logger receives what the modem does; default slog.Default. Commands
	// are logged at debug level, with PINs and passwords left out.
	Logger *slog.Logger
}

// Lease is what the network assigns to an active context.
type Lease struct {
	Addr4    netip.Prefix
	Gateway4 netip.Addr
	DNS4     []netip.Addr
	Addr6    netip.Prefix
	Gateway6 netip.Addr
	DNS6     []netip.Addr
}

// DefaultLease addresses context cid from 100.64.cid.0/30 (shared address
// space, as carrier-grade NAT networks do) and 2001:db8:0:cid::/64.
func DefaultLease(cid int) Lease {
	c := byte(cid)
	return Lease{
		Addr4:    netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64, c, 2}), 30),
		Gateway4: netip.AddrFrom4([4]byte{100, 64, c, 1}),
		DNS4:     []netip.Addr{netip.MustParseAddr("100.64.0.53"), netip.MustParseAddr("100.64.0.54")},
		Addr6:    netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, c, 15: 2}), 64),
		Gateway6: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, c, 15: 1}),
		DNS6:     []netip.Addr{netip.MustParseAddr("2001:db8::53")},
	}
}

func (c Config) withDefaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Dialect, "generic")
	def(&c.PUK, "12345678")
	def(&c.IMEI, "356938035643809")
	def(&c.IMSI, "001010123456789")
	def(&c.ICCID, "89001010123456789015")
	def(&c.PLMN, "00101")
	def(&c.OperatorLong, "Test PLMN 1-1")
	def(&c.OperatorShort, "Test")
	def(&c.DefaultAPN, "internet")
	def(&c.Tech, "lte")
	if c.RSSI == 0 {
		c.RSSI = 20
	}
	if c.Lease == nil {
		c.Lease = DefaultLease
	}
	if c.ScanTime == 0 {
		c.ScanTime = 3 * time.Second
	}
	if c.ResetTime == 0 {
		c.ResetTime = 3 * time.Second
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// 27.007 <AcT> values the simulator uses.
const (
	actGSM  = 0
	actUMTS = 2
	actLTE  = 7
)

var techs = map[string]int{"gsm": actGSM, "umts": actUMTS, "lte": actLTE}

// Registration domains, in the order of regCmd.
const (
	domCS  = iota // +CREG
	domPS         // +CGREG
	domEPS        // +CEREG
)

var regCmd = [3]string{"+CREG", "+CGREG", "+CEREG"}

const maxCID = 15

type simState int

const (
	simReady simState = iota
	simPIN
	simPUK
	simBlocked
	simAbsent
)

const (
	pinTries = 3
	pukTries = 10
)

// pdp is a defined packet data context.
type pdp struct {
	cid    int
	typ    string // IP, IPV6 or IPV4V6
	apn    string
	active bool
}

type auth struct {
	prot       int // 0 none, 1 PAP, 2 CHAP
	user, pass string
}

// netdev is the quectel data interface that AT+QNETDEVCTL drives.
type netdev struct {
	op, cid, urc int
	up           bool
}

// regReport is what the last registration URC of a domain said, so that
// one is sent only on a change.
type regReport struct{ stat, act int }

// slowRule delays the commands whose key starts with prefix.
type slowRule struct {
	prefix string
	d      time.Duration
}

// Modem is a simulated cellular modem. Its state (SIM, registration,
// contexts, settings) is shared by every stream it serves, like the
// several ports of one real modem.
type Modem struct {
	cfg Config
	d   *dialect
	clk clock.Clock
	log *slog.Logger

	mu       sync.Mutex
	closed   bool
	timerSeq int
	timers   map[int]clock.Timer
	sessions map[*session]bool
	// cur is the session whose command is running; URCs that the command
	// causes wait until its final result code.
	cur   *session
	calls []func() // DataUp calls to make once mu is released
	rng   *rand.Rand

	gone bool
	back chan struct{} // closed when the port comes back
	boot []string      // URCs for the first session after a power-on

	// The world around the modem, which a reset does not change.
	echoDefault bool
	echoStuck   bool
	slow        []slowRule
	hungUntil   time.Time
	coverage    bool
	rssi        int
	netAcT      int
	pinEnabled  bool

	// Settings, back to their defaults at power-on and ATZ.
	echo       bool
	verbose    bool
	cmee       int
	regN       [3]int
	cgerep     int
	cgerepBfr  int
	copsFormat int
	piaf       [4]int
	qind       map[string]int
	sreg       map[int]int

	// SIM.
	sim     simState
	pin     string
	pinLeft int
	pukLeft int

	// Radio and registration.
	cfun        int
	copsMode    int
	psDetached  bool
	camped      bool
	regGen      int // invalidates a pending registration timer
	registering bool
	modePref    int // technology forced by AT+CNMP / AT+QCFG="nwscanmode"; -1 none
	rep         [3]regReport
	lastCSQ     string

	// Data.
	pdps   map[int]*pdp
	auths  map[int]auth
	nd     netdev
	dataUp map[int]bool
	usbnet int
	cnmp   int
	scanMd int
}

// New returns a powered-on modem. Scenario steps without a time apply
// now; timed ones count from now on cfg.Clock. Close stops them.
func New(cfg Config) *Modem {
	cfg = cfg.withDefaults()
	d, ok := dialects[cfg.Dialect]
	if !ok {
		cfg.Logger.Error("unknown modem dialect, using generic", "dialect", cfg.Dialect)
		d = dialects["generic"]
	}
	act, ok := techs[cfg.Tech]
	if !ok {
		cfg.Logger.Error("unknown radio technology, using lte", "tech", cfg.Tech)
		act = actLTE
	}
	m := &Modem{
		cfg:         cfg,
		d:           d,
		clk:         cfg.Clock,
		log:         cfg.Logger.With("modem", d.name),
		timers:      make(map[int]clock.Timer),
		sessions:    make(map[*session]bool),
		rng:         rand.New(rand.NewPCG(1, 2)),
		back:        make(chan struct{}),
		echoDefault: true,
		coverage:    true,
		rssi:        cfg.RSSI,
		netAcT:      act,
		pinEnabled:  cfg.PIN != "",
		pin:         cfg.PIN,
		pinLeft:     pinTries,
		pukLeft:     pukTries,
		pdps:        make(map[int]*pdp),
		auths:       make(map[int]auth),
		dataUp:      make(map[int]bool),
		nd:          netdev{cid: 1},
		usbnet:      1,
		cnmp:        2,
		modePref:    -1,
	}
	if d.defaultContext {
		m.pdps[1] = &pdp{cid: 1, typ: "IPV4V6"}
	}
	m.mu.Lock()
	defer m.unlock()
	m.sim = simReady
	if m.pinEnabled {
		m.sim = simPIN
	}
	if cfg.Scenario != nil {
		for _, st := range cfg.Scenario.steps {
			if !st.timed {
				st.do(m)
			}
		}
	}
	m.powerOn()
	if cfg.Scenario != nil {
		for _, st := range cfg.Scenario.steps {
			if st.timed {
				m.schedule(st)
			}
		}
	}
	return m
}

// Dialects lists the dialect names Config.Dialect accepts.
func Dialects() []string {
	var names []string
	for n := range dialects {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Close stops the modem's clock: pending scenario steps, registration and
// port return. Streams being served are not affected; their contexts end
// them.
func (m *Modem) Close() {
	m.mu.Lock()
	defer m.unlock()
	m.closed = true
	for id, t := range m.timers {
		t.Stop()
		delete(m.timers, id)
	}
}

// WaitPresent returns once the modem's port exists (at once unless it is
// gone after a reset), or with ctx's error.
func (m *Modem) WaitPresent(ctx context.Context) error {
	m.mu.Lock()
	gone, back := m.gone, m.back
	m.mu.Unlock()
	if !gone {
		return nil
	}
	select {
	case <-back:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unlock releases mu and then makes the DataUp calls that the work done
// under it queued, so that the callback may take its time (run ip link)
// and even call back into the modem.
func (m *Modem) unlock() {
	calls := m.calls
	m.calls = nil
	m.mu.Unlock()
	for _, f := range calls {
		f()
	}
}

// after runs f with mu held once d has passed on the modem's clock,
// unless the modem is closed first.
func (m *Modem) after(d time.Duration, f func()) {
	if m.closed {
		return
	}
	m.timerSeq++
	id := m.timerSeq
	m.timers[id] = m.clk.AfterFunc(d, func() {
		m.mu.Lock()
		defer m.unlock()
		if _, ok := m.timers[id]; !ok {
			return
		}
		delete(m.timers, id)
		f()
	})
}

// powerOn puts the settings to their power-on values and starts
// registering. Contexts stay defined (they live in non-volatile memory)
// but none is active.
func (m *Modem) powerOn() {
	m.resetSettings()
	m.regN = [3]int{}
	m.cgerep, m.cgerepBfr = 0, 0
	m.piaf = [4]int{}
	m.qind = map[string]int{}
	m.cfun = 1
	m.copsMode = 0
	m.psDetached = false
	m.camped = false
	m.regGen++
	m.registering = false
	if m.pinEnabled && m.sim == simReady {
		m.sim = simPIN
	}
	for _, p := range m.pdps {
		p.active = false
	}
	m.nd.up = false
	m.rep = [3]regReport{}
	m.lastCSQ = ""
	m.update(causeME)
	m.lastCSQ = m.csq()
}

// resetSettings is ATZ and AT&F: the settings of the command interface.
func (m *Modem) resetSettings() {
	m.echo = m.echoDefault
	m.verbose = true
	m.cmee = m.d.cmee
	m.copsFormat = 0
	m.sreg = map[int]int{0: 0, 3: 13, 4: 10, 5: 8, 7: 60}
}

// urc sends an unsolicited result code to every session; one caused by
// a command waits until that command's final result code.
func (m *Modem) urc(line string) {
	if m.cur != nil {
		m.cur.after = append(m.cur.after, line)
		return
	}
	m.broadcast(line)
}

func (m *Modem) broadcast(line string) {
	m.log.Debug("URC", "line", line)
	b := m.urcBytes(line)
	for s := range m.sessions {
		s.send(b)
	}
}

// cgev reports a packet domain event if +CGEREP asks for them.
func (m *Modem) cgev(event string) {
	if m.cgerep > 0 {
		m.urc("+CGEV: " + event)
	}
}

// Why contexts are lost: the network (coverage, deactivation) or the ME
// itself (radio off, detach, SIM gone).
const (
	causeNW = "nw"
	causeME = "me"
)

// searching: the radio is on and the SIM ready, but the modem is not
// (yet) on a cell.
func (m *Modem) radioReady() bool {
	return m.sim == simReady && m.cfun == 1 && m.copsMode != 2
}

// act is the technology in use: the network's, unless a mode preference
// forces another.
func (m *Modem) act() int {
	if m.modePref >= 0 {
		return m.modePref
	}
	return m.netAcT
}

// stat is the 27.007 <stat> of a domain: 0 not registered, 1 home,
// 2 searching, 5 roaming.
func (m *Modem) stat(dom int) int {
	if !m.radioReady() {
		return 0
	}
	if !m.camped {
		return 2
	}
	home := 1
	if m.cfg.Roaming {
		home = 5
	}
	switch dom {
	case domPS:
		if m.psDetached {
			return 0
		}
	case domEPS:
		if m.psDetached || m.act() != actLTE {
			return 0
		}
	}
	return home
}

func registered(stat int) bool { return stat == 1 || stat == 5 }

// update brings registration, contexts and the quectel data interface in
// line with the radio conditions, and reports what changed. cause says
// why contexts that cannot stay up are lost.
func (m *Modem) update(cause string) {
	if !m.radioReady() || !m.coverage {
		m.camped = false
		m.registering = false
		m.regGen++
	} else if !m.camped && !m.registering {
		if m.cfg.RegisterDelay > 0 {
			m.registering = true
			gen := m.regGen
			m.after(m.cfg.RegisterDelay, func() {
				if gen != m.regGen {
					return
				}
				m.registering = false
				m.camped = true
				m.update(causeNW)
			})
		} else {
			m.camped = true
		}
	}

	wasPS := registered(m.rep[domPS].stat)
	for dom := range regCmd {
		st, act := m.stat(dom), m.act()
		old := m.rep[dom]
		m.rep[dom] = regReport{st, act}
		if old.stat == st && (old.act == act || !registered(st)) {
			continue
		}
		if m.regN[dom] == 1 && old.stat != st || m.regN[dom] == 2 {
			m.urc(m.regLine(dom, true))
		}
	}

	if !registered(m.stat(domPS)) {
		lost := false
		for _, cid := range m.cids() {
			if p := m.pdps[cid]; p.active {
				m.deactivate(p, cause)
				lost = true
			}
		}
		if cause == causeME && (wasPS || lost) {
			m.cgev("ME DETACH")
		}
	} else if m.nd.op == 3 && !m.nd.up {
		// Auto-connect (QNETDEVCTL=3) dials again once service is back.
		if err := m.netdevConnect(); err != nil {
			m.log.Info("auto-connect failed", "cid", m.nd.cid, "err", err)
		}
	}

	if q := m.csq(); q != m.lastCSQ {
		m.lastCSQ = q
		if m.qind["csq"] == 1 {
			m.urc(`+QIND: "csq",` + q)
		}
	}
}

// regLine is the +CREG/+CGREG/+CEREG read response or URC of a domain.
func (m *Modem) regLine(dom int, urc bool) string {
	n, st := m.regN[dom], m.stat(dom)
	line := regCmd[dom] + ": "
	if !urc {
		line += fmt.Sprintf("%d,", n)
	}
	line += fmt.Sprint(st)
	if n == 2 && registered(st) {
		line += fmt.Sprintf(`,"%s","%s",%d`, lacTAC, m.cellID(), m.act())
	}
	return line
}

// Location of the simulated cell: one area code serves as LAC and TAC.
const lacTAC = "1A2D"

func (m *Modem) cellID() string {
	if m.act() == actGSM {
		return "3C4D"
	}
	return "01A2B3C4"
}

// csq is the +CSQ value: <rssi>,<ber>.
func (m *Modem) csq() string {
	if !m.camped {
		return "99,99"
	}
	return fmt.Sprintf("%d,99", m.rssi)
}

// cids lists the defined contexts in order.
func (m *Modem) cids() []int {
	var cids []int
	for cid := range m.pdps {
		cids = append(cids, cid)
	}
	sort.Ints(cids)
	return cids
}

// activate brings context p up, as AT+CGACT=1 does.
func (m *Modem) activate(p *pdp) error {
	if p.active {
		return nil
	}
	if err := m.needSIM(); err != nil {
		return err
	}
	if !registered(m.stat(domPS)) {
		return cmeError(cmeNoService)
	}
	if m.cfg.MaxActive > 0 {
		n := 0
		for _, q := range m.pdps {
			if q.active {
				n++
			}
		}
		if n >= m.cfg.MaxActive {
			return cmeError(cmeNotAllowed)
		}
	}
	p.active = true
	m.log.Info("context activated", "cid", p.cid, "type", p.typ, "apn", m.apn(p))
	m.cgev(fmt.Sprintf("ME PDN ACT %d", p.cid))
	if !m.d.dataOnNetdev {
		m.setData(p.cid, true)
	}
	return nil
}

// deactivate takes context p down. cause "nw" is the network's doing and
// is reported per context; an ME detach is reported once by update; a
// command (cause "") is reported as ME PDN DEACT.
func (m *Modem) deactivate(p *pdp, cause string) {
	if !p.active {
		return
	}
	p.active = false
	m.log.Info("context deactivated", "cid", p.cid, "cause", cause)
	switch cause {
	case causeNW:
		if m.act() == actLTE {
			m.cgev(fmt.Sprintf("NW PDN DEACT %d", p.cid))
		} else {
			// Before release 10, and still on GSM/UMTS networks, the event
			// names the context by type and address.
			typ := p.typ
			if typ == "IPV4V6" {
				typ = "IP"
			}
			m.cgev(fmt.Sprintf(`NW DEACT "%s","%s",%d`, typ, m.addrs(p)[0], p.cid))
		}
	case "":
		m.cgev(fmt.Sprintf("ME PDN DEACT %d", p.cid))
	}
	if m.nd.up && m.nd.cid == p.cid {
		m.nd.up = false
		if m.nd.urc == 1 {
			m.urc(fmt.Sprintf(`+QNETDEVSTATUS: %d,0,"%s",0`, p.cid, p.typ))
		}
		if m.nd.op == 3 && cause == causeNW && registered(m.stat(domPS)) {
			// The network dropped the context but not the registration:
			// auto-connect dials again a little later.
			m.after(redialDelay, func() {
				if m.nd.op == 3 && !m.nd.up && registered(m.stat(domPS)) {
					if err := m.netdevConnect(); err != nil {
						m.log.Info("auto-connect failed", "cid", m.nd.cid, "err", err)
					}
				}
			})
		}
	}
	m.setData(p.cid, false)
}

// redialDelay is how long quectel auto-connect waits after the network
// deactivated its context.
const redialDelay = 5 * time.Second

// netdevConnect is the quectel dial: the context of the data interface
// is activated and the interface's data path comes up.
func (m *Modem) netdevConnect() error {
	p := m.pdps[m.nd.cid]
	if p == nil {
		return cmeError(cmeBadParam)
	}
	if err := m.activate(p); err != nil {
		return err
	}
	if m.nd.up {
		return nil
	}
	m.nd.up = true
	if m.nd.urc == 1 {
		m.urc(fmt.Sprintf(`+QNETDEVSTATUS: %d,1,"%s",0`, p.cid, p.typ))
	}
	m.setData(p.cid, true)
	return nil
}

// setData records the state of a data path and queues the DataUp call
// for a change.
func (m *Modem) setData(cid int, up bool) {
	if m.dataUp[cid] == up {
		return
	}
	m.dataUp[cid] = up
	m.log.Info("data path", "cid", cid, "up", up)
	if f := m.cfg.DataUp; f != nil {
		m.calls = append(m.calls, func() { f(cid, up) })
	}
}

// apn is the APN the network reports for p.
func (m *Modem) apn(p *pdp) string {
	if p.apn == "" {
		return m.cfg.DefaultAPN
	}
	return p.apn
}

// needSIM is the error of a command that needs an unlocked SIM.
func (m *Modem) needSIM() error {
	switch m.sim {
	case simAbsent:
		return cmeError(cmeSIMAbsent)
	case simPIN:
		return cmeError(cmeSIMPIN)
	case simPUK:
		return cmeError(cmeSIMPUK)
	case simBlocked:
		return cmeError(cmeSIMFailure)
	}
	return nil
}

// simUnlocked is the SIM becoming ready after a PIN or PUK.
func (m *Modem) simUnlocked() {
	m.sim = simReady
	m.pinLeft = pinTries
	m.pukLeft = pukTries
	m.log.Info("SIM ready")
	if m.d.pinURC {
		m.urc("+CPIN: READY")
	}
	for _, u := range m.d.simReadyURCs {
		m.urc(u)
	}
	m.update(causeME)
}

// portGone drops every session and the port for d, like a USB modem that
// resets: nothing is reported, the contexts are simply gone. last, if
// set, is the final response that session by gets before the drop (the
// OK of AT+CFUN=1,1). The modem's clock is set before any session can
// see the drop, so a test that sees it may advance the clock at once.
func (m *Modem) portGone(d time.Duration, by *session, last []byte) {
	if m.gone {
		return
	}
	m.log.Info("port gone", "for", d)
	m.gone = true
	m.back = make(chan struct{})
	m.after(d, m.portBack)
	for _, p := range m.pdps {
		if p.active {
			p.active = false
			m.setData(p.cid, false)
		}
	}
	m.nd.up = false
	for s := range m.sessions {
		if s == by {
			s.hangUp(last)
		} else {
			s.hangUp(nil)
		}
	}
}

// portBack is the modem coming back from a reset: powered on, its boot
// URCs waiting for the first session.
func (m *Modem) portBack() {
	m.log.Info("port back")
	m.gone = false
	m.powerOn()
	m.boot = m.d.boot(m)
	close(m.back)
}

// simText is the +CPIN: <code> of the SIM state.
func (m *Modem) simText() string {
	switch m.sim {
	case simPIN:
		return "SIM PIN"
	case simPUK:
		return "SIM PUK"
	case simAbsent:
		return "NOT INSERTED"
	case simBlocked:
		return "SIM PUK"
	}
	return "READY"
}
