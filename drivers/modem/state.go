package modem

// The modem's state: identity, SIM, registration, operator and signal,
// read after every (re)open, polled, and followed through URCs.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/openmifi/openmifi/drivers/modem/at"
	"github.com/openmifi/openmifi/internal/sharing"
)

// setup runs after every Ready: what the modem knew is forgotten when its
// port came back.
func (s *session) setup(ctx context.Context) {
	var info []any
	for _, c := range []struct{ key, cmd string }{{"manufacturer", "AT+CGMI"}, {"model", "AT+CGMM"}, {"revision", "AT+CGMR"}} {
		if resp, err := s.do(ctx, c.cmd); err == nil {
			info = append(info, c.key, value(resp, c.cmd[2:]))
		}
	}
	s.log.Info("modem", info...)
	if s.d.cfg.Dialect == DialectQuectel {
		s.checkUSBNet(ctx)
	}
	s.checkSIM(ctx)
	if s.sim == "READY" {
		s.identify(ctx)
	}
	s.refreshRegs(ctx)
	s.refreshSignal(ctx)
	s.reconcile(ctx)
}

// answer is the last line of an answer (the newest, should a URC that
// looks like the answer have joined it: see package at) without its
// "+NAME:" prefix, if it has one.
func answer(resp at.Response, name string) string {
	if len(resp.Lines) == 0 {
		return ""
	}
	l := resp.Lines[len(resp.Lines)-1]
	if name != "" {
		if rest, ok := args(l, name); ok {
			return rest
		}
	}
	if i := strings.Index(l, ":"); i > 0 && l[0] == '+' {
		return strings.TrimSpace(l[i+1:])
	}
	return strings.TrimSpace(l)
}

// value is a one-value answer (an IMEI, a model name), unquoted.
func value(resp at.Response, name string) string {
	return strings.Trim(answer(resp, name), `"`)
}

// checkUSBNet warns when the Quectel network interface is not in the mode
// the board expects: changing it takes a modem restart, which is the
// board's decision, not the driver's.
func (s *session) checkUSBNet(ctx context.Context) {
	resp, err := s.do(ctx, `AT+QCFG="usbnet"`)
	if err != nil {
		return
	}
	f := at.Fields(answer(resp, "+QCFG"))
	want := map[string]string{AddressingDHCP: "1", AddressingStatic: "0"}[s.d.cfg.Addressing]
	if len(f) >= 2 && want != "" && f[1] != want {
		s.log.Warn("Quectel usbnet mode does not match the board's addressing", "usbnet", f[1], "want", want, "addressing", s.d.cfg.Addressing)
	}
}

// checkSIM reads the SIM state and enters the PIN if it is asked for and
// one is set that was not tried before.
func (s *session) checkSIM(ctx context.Context) {
	resp, err := s.do(ctx, "AT+CPIN?")
	if err != nil {
		var cme *at.CMEError
		switch {
		case errors.As(err, &cme) && (cme.Code == 10 || strings.Contains(strings.ToLower(cme.Text), "not inserted")):
			s.sim = "ABSENT"
		case errors.As(err, &cme) && (cme.Code == 13 || strings.Contains(strings.ToLower(cme.Text), "failure")):
			s.sim = "FAILURE"
		case errors.As(err, &cme) && strings.Contains(strings.ToLower(cme.Text), "blocked"):
			s.sim = "BLOCKED"
		default:
			s.log.Warn("SIM state unknown", "err", err)
		}
		return
	}
	s.sim = parseCPIN(value(resp, "+CPIN"))
	if s.sim == "SIM PIN" {
		s.enterPIN(ctx)
	}
}

func (s *session) enterPIN(ctx context.Context) {
	pin := s.d.cfg.PIN()
	if pin == "" || pin == s.triedPIN {
		return
	}
	s.triedPIN = pin
	s.log.Info("entering the SIM PIN")
	_, err := s.cmd(ctx, at.Command{Text: `AT+CPIN="` + pin + `"`, Secret: true})
	if err != nil {
		s.log.Warn("SIM PIN refused; it will not be entered again until it is changed", "err", err)
	}
	if resp, err := s.do(ctx, "AT+CPIN?"); err == nil {
		s.sim = parseCPIN(value(resp, "+CPIN"))
	}
}

// simBlock is why the SIM keeps the connection down, or "".
func (s *session) simBlock() string {
	switch s.sim {
	case "READY":
		return ""
	case "SIM PIN":
		if s.triedPIN != "" && s.triedPIN == s.d.cfg.PIN() {
			return ReasonPINRejected
		}
		return ReasonPINRequired
	case "SIM PUK", "SIM PUK2":
		return ReasonPUKRequired
	case "BLOCKED", "FAILURE":
		return ReasonSIMBlocked
	case "ABSENT":
		return ReasonNoSIM
	case "":
		// Unknown (the modem would not say): the network will tell.
		return ""
	}
	return ReasonSIMRemoved
}

// homeNetwork splits the SIM's MCC and MNC off its IMSI. The MNC's length
// is not in the IMSI: it is three digits in North America, two elsewhere
// (the registered network's +COPS is no help: it is a roaming partner's
// when roaming).
func homeNetwork(imsi string) (mcc, mnc string) {
	if len(imsi) < 6 || !validPLMN(imsi[:6]) {
		return "", ""
	}
	mcc = imsi[:3]
	switch {
	case mcc >= "310" && mcc <= "316", mcc == "302", mcc == "334":
		return mcc, imsi[3:6]
	}
	return mcc, imsi[3:5]
}

// identify reads the modem's and SIM's identity for the entitlement check.
func (s *session) identify(ctx context.Context) {
	var id sharing.Identity
	if resp, err := s.do(ctx, "AT+CGSN"); err == nil {
		id.IMEI = value(resp, "+CGSN")
	}
	if resp, err := s.do(ctx, "AT+CIMI"); err == nil {
		id.IMSI = value(resp, "+CIMI")
	}
	iccid := []string{"AT+CCID", "AT+ICCID"}
	switch s.d.cfg.Dialect {
	case DialectQuectel:
		iccid = []string{"AT+QCCID", "AT+CCID"}
	case DialectSIMCom:
		iccid = []string{"AT+CICCID", "AT+CCID"}
	}
	for _, c := range iccid {
		if resp, err := s.do(ctx, c); err == nil && len(resp.Lines) > 0 {
			id.ICCID = value(resp, "")
			break
		}
	}
	id.MCC, id.MNC = homeNetwork(id.IMSI)
	s.log.Info("SIM ready", "iccid", id.ICCID, "mcc", id.MCC, "mnc", id.MNC)
	s.identified = id.IMSI != ""
	s.r.SetIdentity(id)
}

var regCmds = []string{"+CREG", "+CGREG", "+CEREG"}

func (s *session) refreshRegs(ctx context.Context) {
	for _, name := range regCmds {
		resp, err := s.do(ctx, "AT"+name+"?")
		if err != nil {
			continue
		}
		for _, l := range resp.Lines {
			if a, ok := args(l, name); ok {
				if r, ok := parseRegAnswer(a); ok {
					s.regs[name] = r
				}
			}
		}
	}
}

// registered: on a packet domain (+CGREG or +CEREG); +CREG only counts
// for a modem that reports neither.
func (s *session) registered() bool {
	ps := false
	for _, n := range []string{"+CGREG", "+CEREG"} {
		if r, ok := s.regs[n]; ok {
			ps = true
			if r.registered() {
				return true
			}
		}
	}
	return !ps && s.regs["+CREG"].registered()
}

// technology is the access technology of the newest registration that
// names one, else of +COPS.
func (s *session) technology() string {
	for _, n := range []string{"+CEREG", "+CGREG", "+CREG"} {
		if r, ok := s.regs[n]; ok && r.registered() && r.act >= 0 {
			return technology(r.act)
		}
	}
	return s.tech
}

// refreshSignal reads operator (numeric, then long name) and signal. A
// query the modem does not answer (busy, hung, gone) keeps what was known:
// the uplink is re-reported with every poll, and a blank operator or no
// signal must mean the modem said so.
func (s *session) refreshSignal(ctx context.Context) {
	if !s.ready {
		return
	}
	if !s.registered() {
		s.operator, s.plmn = "", ""
	} else {
		if c, err := s.queryCOPS(ctx, 2); err == nil {
			s.plmn = ""
			if c.format == 2 {
				s.plmn = c.oper
			}
		}
		if c, err := s.queryCOPS(ctx, 0); err == nil {
			s.operator = ""
			if c.format >= 0 {
				s.operator = c.oper
				if c.act >= 0 {
					s.tech = technology(c.act)
				}
			}
		}
		if s.operator == "" {
			s.operator = s.plmn
		}
	}
	if sg, err := s.querySignal(ctx); err == nil {
		s.sig = sg
	}
}

// queryCOPS reads the operator in format 0 (long name) or 2 (numeric);
// an answer that names none has format -1.
func (s *session) queryCOPS(ctx context.Context, format int) (cops, error) {
	if _, err := s.do(ctx, fmt.Sprintf("AT+COPS=3,%d", format)); err != nil {
		return cops{}, err
	}
	resp, err := s.do(ctx, "AT+COPS?")
	if err != nil {
		return cops{}, err
	}
	if c, ok := parseCOPS(answer(resp, "+COPS")); ok {
		return c, nil
	}
	return cops{format: -1, act: -1}, nil
}

// querySignal reads +CESQ, and +CSQ where that knows nothing; the zero
// signal is the modem saying it has none.
func (s *session) querySignal(ctx context.Context) (signal, error) {
	resp, cesqErr := s.do(ctx, "AT+CESQ")
	if cesqErr == nil {
		if sg, ok := parseCESQ(answer(resp, "+CESQ")); ok && sg.dbm != 0 {
			return sg, nil
		}
	}
	resp, err := s.do(ctx, "AT+CSQ")
	if err != nil {
		if cesqErr == nil {
			return signal{}, nil
		}
		return signal{}, err
	}
	sg, _ := parseCSQ(answer(resp, "+CSQ"))
	return sg, nil
}

// poll is the periodic look at the modem: signal and operator, a PIN that
// may have been set meanwhile, and the connection.
func (s *session) poll(ctx context.Context) {
	if !s.ready {
		return
	}
	if s.sim != "READY" {
		s.checkSIM(ctx)
	}
	s.refreshSignal(ctx)
	if s.up {
		s.report()
	}
	s.reconcile(ctx)
}

func (s *session) urc(ctx context.Context, u at.URC) {
	switch u.Name {
	case "+CREG", "+CGREG", "+CEREG":
		r, ok := parseRegURC(u.Args)
		if !ok {
			return
		}
		was := s.registered()
		s.regs[u.Name] = r
		now := s.registered()
		switch {
		case was && !now:
			s.log.Warn("deregistered", "by", u.Name, "stat", r.stat)
			s.lost(ctx, s.downReason(ctx))
		case !was && now:
			s.log.Info("registered", "by", u.Name, "technology", s.technology())
			s.refreshSignal(ctx)
			s.reconcile(ctx)
		case now && s.up:
			s.report()
		}
	case "+CGEV":
		e, ok := parseCGEV(u.Args)
		if !ok {
			return
		}
		if e.detach {
			s.activated = map[int]bool{}
			if s.up {
				s.log.Warn("packet domain detached", "event", u.Args)
				s.refreshRegs(ctx)
				s.lost(ctx, s.downReason(ctx))
				s.reconcile(ctx)
			}
			return
		}
		if !e.deact || !e.network {
			return
		}
		delete(s.activated, e.cid)
		if s.up && (e.cid == s.cur.cid || e.cid == 0) {
			s.log.Warn("the network deactivated the context", "cid", s.cur.cid, "event", u.Args)
			s.refreshRegs(ctx)
			reason := ReasonNetworkDeact
			if !s.registered() {
				reason = ReasonDeregistered
			}
			s.lost(ctx, reason)
			s.reconcile(ctx)
		}
	case "+QNETDEVSTATUS":
		// Quectel's interface went down. The URC may be older than a
		// reconnection already made, so the modem is asked first.
		cid, up, ok := parseQNETDEVSTATUS(u.Args)
		if !ok || up || !s.up || cid != s.cur.cid {
			return
		}
		if resp, err := s.do(ctx, "AT+QNETDEVCTL?"); err == nil {
			if f := at.Fields(answer(resp, "+QNETDEVCTL")); len(f) >= 4 && f[1] == fmt.Sprint(cid) && f[3] == "1" {
				return
			}
		}
		s.log.Warn("the modem's network interface went down", "cid", cid)
		s.lost(ctx, ReasonNetworkDeact)
		s.reconcile(ctx)
	case "+CPIN", "+SIMCARD":
		st := parseCPIN(u.Args)
		if u.Name == "+SIMCARD" {
			st = "NOT READY"
		}
		if st == s.sim {
			return
		}
		s.log.Info("SIM state", "state", st)
		s.sim = st
		switch st {
		case "READY":
			s.triedPIN = ""
			if !s.identified {
				s.identify(ctx)
			}
			s.reconcile(ctx)
		case "SIM PIN":
			s.enterPIN(ctx)
			s.reconcile(ctx)
		default:
			s.identified = false
			s.lost(ctx, s.simBlock())
		}
	}
}

// downReason says why registration went away: a SIM that is gone, or the
// network. Modems that report no SIM URC are asked.
func (s *session) downReason(ctx context.Context) string {
	if s.sim == "READY" {
		s.checkSIM(ctx)
	}
	if r := s.simBlock(); r != "" {
		if r == ReasonNoSIM {
			return ReasonSIMRemoved
		}
		return r
	}
	return ReasonDeregistered
}

// blocked says why no connection can be tried now, or "".
func (s *session) blocked() string {
	switch {
	case !s.ready:
		return ReasonNoModem
	case s.simBlock() != "":
		return s.simBlock()
	case !s.registered():
		return ReasonDeregistered
	}
	return ""
}
