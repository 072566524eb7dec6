package modemsim

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// handler runs one command with m.mu held and returns its information
// text; an error is the final result code.
type handler func(m *Modem, c command) ([]string, error)

// exec runs one command: the dialect's own handler if it has one, else
// the common V.250 / 27.007 one; an unknown command is ERROR whatever
// +CMEE says, as on real modems.
func (m *Modem) exec(c command) ([]string, error) {
	h := m.d.handlers[c.name]
	if h == nil {
		h = common[c.name]
	}
	if h == nil && strings.HasPrefix(c.name, "S") {
		h = cmdS
	}
	if h == nil {
		return nil, errPlain
	}
	return h(m, c)
}

// common are the commands every dialect has.
var common map[string]handler

func init() {
	common = map[string]handler{
		// V.250.
		"E":  basicFlag(func(m *Modem, v int) { m.setEcho(v == 1) }),
		"V":  basicFlag(func(m *Modem, v int) { m.verbose = v == 1 }),
		"Q":  cmdQ,
		"Z":  cmdZ,
		"&F": cmdZ,
		"&W": basicAny,
		"&C": basicAny,
		"&D": basicAny,
		"X":  basicAny,
		"L":  basicAny,
		"M":  basicAny,
		"H":  basicAny,
		"I":  cmdI,
		"D":  func(*Modem, command) ([]string, error) { return nil, errNoCarrier },
		"A":  func(*Modem, command) ([]string, error) { return nil, errNoCarrier },

		"+GMI":  text(func(m *Modem) string { return m.d.manufacturer }),
		"+CGMI": text(func(m *Modem) string { return m.d.manufacturer }),
		"+GMM":  text(func(m *Modem) string { return m.d.model }),
		"+CGMM": text(func(m *Modem) string { return m.d.model }),
		"+GMR":  text(func(m *Modem) string { return m.d.revision }),
		"+CGMR": text(func(m *Modem) string { return m.d.cgmr(m.d.revision) }),
		"+GSN":  text(func(m *Modem) string { return m.cfg.IMEI }),
		"+CGSN": cmdCGSN,
		"+GCAP": text(func(m *Modem) string { return "+GCAP: +CGSM" }),
		"+CIMI": cmdCIMI,
		"+IPR":  setting("+IPR", "115200", "(0,9600,19200,38400,57600,115200,230400,460800,921600)"),
		"+IFC":  setting("+IFC", "0,0", "(0-2),(0-2)"),
		"+CSCS": setting("+CSCS", `"IRA"`, `("IRA","GSM","UCS2")`),
		"+CPAS": text(func(m *Modem) string { return "+CPAS: 0" }),

		"+CMEE":  cmdCMEE,
		"+CPIN":  cmdCPIN,
		"+CPINR": cmdCPINR,
		"+CFUN":  cmdCFUN,
		"+CREG":  regHandler(domCS),
		"+CGREG": regHandler(domPS),
		"+CEREG": regHandler(domEPS),
		"+COPS":  cmdCOPS,
		"+CSQ":   cmdCSQ,
		"+CESQ":  cmdCESQ,

		"+CGATT":     cmdCGATT,
		"+CGDCONT":   cmdCGDCONT,
		"+CGAUTH":    cmdCGAUTH,
		"+CGACT":     cmdCGACT,
		"+CGPADDR":   cmdCGPADDR,
		"+CGCONTRDP": cmdCGCONTRDP,
		"+CGEREP":    cmdCGEREP,
		"+CGPIAF":    cmdCGPIAF,
	}
}

// basicFlag is a basic command taking 0 or 1 (E, V).
func basicFlag(set func(m *Modem, v int)) handler {
	return func(m *Modem, c command) ([]string, error) {
		if c.op != opAction {
			return nil, errPlain
		}
		v, err := strconv.Atoi(c.args)
		if c.args == "" {
			v, err = 0, nil
		}
		if err != nil || v > 1 {
			return nil, errPlain
		}
		set(m, v)
		return nil, nil
	}
}

// basicAny accepts a basic command that changes nothing the simulator
// models (DTR and DCD behaviour, speaker, hang-up without a call).
func basicAny(m *Modem, c command) ([]string, error) {
	if c.op != opAction {
		return nil, errPlain
	}
	return nil, nil
}

func (m *Modem) setEcho(on bool) {
	if !on && m.echoStuck {
		// The "echo stuck" scenario: the modem says OK and goes on echoing.
		return
	}
	m.echo = on
}

func cmdQ(m *Modem, c command) ([]string, error) {
	// Quiet mode (Q1) would hide every result code; no host wants it.
	if c.op != opAction || c.args != "" && c.args != "0" {
		return nil, errPlain
	}
	return nil, nil
}

func cmdZ(m *Modem, c command) ([]string, error) {
	if c.op != opAction {
		return nil, errPlain
	}
	m.resetSettings()
	return nil, nil
}

func cmdI(m *Modem, c command) ([]string, error) {
	if c.op != opAction || c.args != "" && c.args != "0" {
		return nil, errPlain
	}
	return m.d.ati(m), nil
}

// cmdS reads and writes S-registers. They are kept but not applied: the
// line terminator stays CR and the response formatting CR LF.
func cmdS(m *Modem, c command) ([]string, error) {
	n, err := strconv.Atoi(c.name[1:])
	if err != nil || n > 255 {
		return nil, errPlain
	}
	switch c.op {
	case opRead:
		return []string{fmt.Sprintf("%03d", m.sreg[n])}, nil
	case opSet:
		v, err := strconv.Atoi(c.args)
		if err != nil || v > 255 {
			return nil, errPlain
		}
		m.sreg[n] = v
		return nil, nil
	}
	return nil, errPlain
}

// text is an action command that prints one line; its test form is OK.
func text(f func(m *Modem) string) handler {
	return func(m *Modem, c command) ([]string, error) {
		switch c.op {
		case opAction:
			return []string{f(m)}, nil
		case opTest:
			return nil, nil
		}
		return nil, errPlain
	}
}

// setting is a parameter the simulator accepts and reports but does not
// act on (baud rate, flow control, character set).
func setting(name, value, ranges string) handler {
	return func(m *Modem, c command) ([]string, error) {
		switch c.op {
		case opRead:
			return []string{name + ": " + value}, nil
		case opTest:
			return []string{name + ": " + ranges}, nil
		case opSet:
			if _, err := splitParams(c.args); err != nil {
				return nil, cmeError(cmeBadParam)
			}
			return nil, nil
		}
		return nil, errPlain
	}
}

func cmdCGSN(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opAction:
		return []string{m.cfg.IMEI}, nil
	case opTest:
		return []string{"+CGSN: (0-1)"}, nil
	case opSet:
		// 27.007 release 13: <snt> 0 is the serial number, 1 the IMEI.
		ps, err := splitParams(c.args)
		if err != nil {
			return nil, cmeError(cmeBadParam)
		}
		snt, err := ps.int(0, 0, 0, 1)
		if err != nil {
			return nil, err
		}
		if snt == 0 {
			return []string{m.cfg.IMEI}, nil
		}
		return []string{`+CGSN: "` + m.cfg.IMEI + `"`}, nil
	}
	return nil, errPlain
}

func cmdCIMI(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opAction:
		if err := m.needSIM(); err != nil {
			return nil, err
		}
		return []string{m.cfg.IMSI}, nil
	case opTest:
		return nil, nil
	}
	return nil, errPlain
}

func cmdCMEE(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opRead:
		return []string{fmt.Sprintf("+CMEE: %d", m.cmee)}, nil
	case opTest:
		return []string{"+CMEE: (0-2)"}, nil
	case opSet:
		ps, err := splitParams(c.args)
		if err != nil {
			return nil, cmeError(cmeBadParam)
		}
		n, err := ps.int(0, 0, 0, 2)
		if err != nil {
			return nil, err
		}
		m.cmee = n
		return nil, nil
	}
	return nil, errPlain
}

func cmdCPIN(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opTest:
		return nil, nil
	case opRead:
		switch m.sim {
		case simAbsent:
			return nil, cmeError(cmeSIMAbsent)
		case simBlocked:
			return nil, cmeError(cmeSIMFailure)
		}
		return []string{"+CPIN: " + m.simText()}, nil
	case opSet:
	default:
		return nil, errPlain
	}
	ps, err := splitParams(c.args)
	if err != nil || !ps.given(0) || len(ps) > 2 {
		return nil, cmeError(cmeBadParam)
	}
	switch m.sim {
	case simAbsent:
		return nil, cmeError(cmeSIMAbsent)
	case simBlocked:
		return nil, cmeError(cmeSIMFailure)
	case simReady:
		return nil, cmeError(cmeNotAllowed)
	case simPIN:
		if len(ps) != 1 {
			return nil, cmeError(cmeBadParam)
		}
		if ps.str(0) == m.pin {
			m.simUnlocked()
			return nil, nil
		}
		m.pinLeft--
		m.log.Info("wrong SIM PIN", "left", m.pinLeft)
		if m.pinLeft <= 0 {
			m.pinLeft = 0
			m.sim = simPUK
			if m.d.pinURC {
				m.urc("+CPIN: SIM PUK")
			}
		}
		return nil, cmeError(cmeBadPassword)
	}
	// SIM PUK: the PUK and a new PIN.
	if len(ps) != 2 {
		return nil, cmeError(cmeSIMPUK)
	}
	if !validPIN(ps.str(1)) {
		return nil, cmeError(cmeBadParam)
	}
	if ps.str(0) == m.cfg.PUK {
		m.pin = ps.str(1)
		m.pinEnabled = true
		m.simUnlocked()
		return nil, nil
	}
	m.pukLeft--
	m.log.Info("wrong SIM PUK", "left", m.pukLeft)
	if m.pukLeft <= 0 {
		m.pukLeft = 0
		m.sim = simBlocked
		m.log.Warn("SIM blocked")
	}
	return nil, cmeError(cmeBadPassword)
}

func validPIN(s string) bool {
	if len(s) < 4 || len(s) > 8 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// cmdCPINR reports the remaining PIN and PUK attempts (27.007 +CPINR).
func cmdCPINR(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opTest:
		return nil, nil
	case opAction, opSet:
	default:
		return nil, errPlain
	}
	sel := ""
	if c.op == opSet {
		ps, err := splitParams(c.args)
		if err != nil {
			return nil, cmeError(cmeBadParam)
		}
		sel = strings.TrimSuffix(strings.ToUpper(ps.str(0)), "*")
	}
	if m.sim == simAbsent {
		return nil, cmeError(cmeSIMAbsent)
	}
	var out []string
	for _, l := range []struct {
		code       string
		left, full int
	}{{"SIM PIN", m.pinLeft, pinTries}, {"SIM PUK", m.pukLeft, pukTries}} {
		if strings.HasPrefix(l.code, sel) {
			out = append(out, fmt.Sprintf("+CPINR: %s,%d,%d", l.code, l.left, l.full))
		}
	}
	return out, nil
}

func cmdCFUN(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opRead:
		return []string{fmt.Sprintf("+CFUN: %d", m.cfun)}, nil
	case opTest:
		return []string{"+CFUN: (0,1,4),(0-1)"}, nil
	case opSet:
	default:
		return nil, errPlain
	}
	ps, err := splitParams(c.args)
	if err != nil {
		return nil, cmeError(cmeBadParam)
	}
	fun, err := ps.int(0, -1, 0, 4)
	if err != nil || fun == -1 || fun == 2 || fun == 3 {
		return nil, cmeError(cmeBadParam)
	}
	rst, err := ps.int(1, 0, 0, 1)
	if err != nil {
		return nil, err
	}
	if rst == 1 {
		// The OK goes out first; then the modem resets and its port
		// disappears (the session's finish does it).
		m.log.Info("reset requested")
		m.cur.resetAfter = m.cfg.ResetTime
		return nil, nil
	}
	if fun != m.cfun {
		m.log.Info("functionality", "cfun", fun)
		m.cfun = fun
		m.update(causeME)
	}
	return nil, nil
}

func regHandler(dom int) handler {
	name := regCmd[dom]
	return func(m *Modem, c command) ([]string, error) {
		switch c.op {
		case opRead:
			return []string{m.regLine(dom, false)}, nil
		case opTest:
			return []string{name + ": (0-2)"}, nil
		case opSet:
			ps, err := splitParams(c.args)
			if err != nil {
				return nil, cmeError(cmeBadParam)
			}
			n, err := ps.int(0, 0, 0, 2)
			if err != nil {
				return nil, err
			}
			m.regN[dom] = n
			return nil, nil
		}
		return nil, errPlain
	}
}

// operator is a network the modem can see.
type operator struct {
	stat              int // 27.007 <stat> of +COPS=?: 2 current, 3 forbidden
	long, short, plmn string
}

func (m *Modem) operators() []operator {
	return []operator{
		{2, m.cfg.OperatorLong, m.cfg.OperatorShort, m.cfg.PLMN},
		{3, "Forbidden PLMN", "Forbidden", forbiddenPLMN},
	}
}

// forbiddenPLMN is a network +COPS=? shows that refuses registration.
const forbiddenPLMN = "00102"

func (m *Modem) operatorName(format int) string {
	switch format {
	case 1:
		return m.cfg.OperatorShort
	case 2:
		return m.cfg.PLMN
	}
	return m.cfg.OperatorLong
}

func cmdCOPS(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opRead:
		if !m.camped {
			return []string{fmt.Sprintf("+COPS: %d", m.copsMode)}, nil
		}
		return []string{fmt.Sprintf(`+COPS: %d,%d,"%s",%d`, m.copsMode, m.copsFormat, m.operatorName(m.copsFormat), m.act())}, nil
	case opTest:
		if m.cfun != 1 {
			return nil, cmeError(cmeNotAllowed)
		}
		var list []string
		if m.coverage {
			for _, o := range m.operators() {
				if o.stat == 2 && !m.camped {
					o.stat = 1 // available
				}
				list = append(list, fmt.Sprintf(`(%d,"%s","%s","%s",%d)`, o.stat, o.long, o.short, o.plmn, m.act()))
			}
		}
		return []string{"+COPS: " + strings.Join(list, ",") + ",,(0,1,2,3,4),(0,1,2)"}, nil
	case opSet:
	default:
		return nil, errPlain
	}
	ps, err := splitParams(c.args)
	if err != nil {
		return nil, cmeError(cmeBadParam)
	}
	mode, err := ps.int(0, 0, 0, 4)
	if err != nil {
		return nil, err
	}
	format, err := ps.int(1, m.copsFormat, 0, 2)
	if err != nil {
		return nil, err
	}
	switch mode {
	case 3:
		m.copsFormat = format
		return nil, nil
	case 1, 4:
		if !ps.given(2) {
			return nil, cmeError(cmeBadParam)
		}
		m.copsFormat = format
		oper := ps.str(2)
		found := false
		for _, o := range m.operators() {
			if oper == []string{o.long, o.short, o.plmn}[format] {
				if o.stat == 3 {
					if mode == 1 {
						return nil, cmeError(cmeNotAllowedNW)
					}
					mode = 0 // manual/automatic falls back to automatic
				}
				found = true
			}
		}
		if !found {
			if mode == 1 {
				return nil, cmeError(cmeNoService)
			}
			mode = 0
		}
		if mode == 4 {
			mode = 1
		}
	}
	if err := m.needSIM(); err != nil && mode != 2 {
		return nil, err
	}
	if mode == 2 {
		m.log.Info("deregistering")
	}
	if mode == 1 && !m.coverage {
		return nil, cmeError(cmeNoService)
	}
	m.copsMode = mode
	m.update(causeME)
	return nil, nil
}

func cmdCSQ(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opAction:
		return []string{"+CSQ: " + m.csq()}, nil
	case opTest:
		return []string{"+CSQ: (0-31,99),(0-7,99)"}, nil
	}
	return nil, errPlain
}

// cmdCESQ reports the extended signal quality of the technology in use,
// derived from the +CSQ level: RSSI -113 + 2*rssi dBm.
func cmdCESQ(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opTest:
		return []string{"+CESQ: (0-63,99),(0-7,99),(0-96,255),(0-49,255),(0-34,255),(0-97,255)"}, nil
	case opAction:
	default:
		return nil, errPlain
	}
	if !m.camped {
		return []string{"+CESQ: 99,99,255,255,255,255"}, nil
	}
	dbm := -113 + 2*m.rssi
	switch m.act() {
	case actGSM:
		// <rxlev> 0 is below -110 dBm, 63 at or above -48 dBm.
		return []string{fmt.Sprintf("+CESQ: %d,0,255,255,255,255", clamp(dbm+111, 0, 63))}, nil
	case actUMTS:
		// <rscp> 0 is below -120 dBm; <ecno> 0 is below -24 dB.
		return []string{fmt.Sprintf("+CESQ: 99,99,%d,%d,255,255", clamp(dbm-5+121, 0, 96), 38)}, nil
	}
	// <rsrq> 0 is below -19.5 dB (here -10 dB); <rsrp> 0 is below
	// -140 dBm, about 20 dB under the total RSSI on a 10 MHz carrier.
	return []string{fmt.Sprintf("+CESQ: 99,99,255,255,%d,%d", 20, clamp(dbm-20+141, 0, 97))}, nil
}

func clamp(v, lo, hi int) int { return min(max(v, lo), hi) }

func cmdCGATT(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opRead:
		att := 0
		if registered(m.stat(domPS)) {
			att = 1
		}
		return []string{fmt.Sprintf("+CGATT: %d", att)}, nil
	case opTest:
		return []string{"+CGATT: (0,1)"}, nil
	case opSet:
	default:
		return nil, errPlain
	}
	ps, err := splitParams(c.args)
	if err != nil {
		return nil, cmeError(cmeBadParam)
	}
	st, err := ps.int(0, -1, 0, 1)
	if err != nil || st < 0 {
		return nil, cmeError(cmeBadParam)
	}
	if st == 1 {
		if err := m.needSIM(); err != nil {
			return nil, err
		}
	}
	if st == 1 && !m.coverage {
		return nil, cmeError(cmeNoService)
	}
	m.psDetached = st == 0
	m.update(causeME)
	return nil, nil
}

var pdpTypes = []string{"IP", "IPV6", "IPV4V6"}

func cmdCGDCONT(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opRead:
		var out []string
		for _, cid := range m.cids() {
			p := m.pdps[cid]
			addr := "0.0.0.0"
			if p.typ == "IPV6" {
				addr = "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"
			}
			out = append(out, fmt.Sprintf(`+CGDCONT: %d,"%s","%s","%s",0,0%s`, cid, p.typ, p.apn, addr, m.d.cgdcontTail))
		}
		return out, nil
	case opTest:
		var out []string
		for _, t := range pdpTypes {
			out = append(out, fmt.Sprintf(`+CGDCONT: (1-%d),"%s",,,(0-2),(0-4)`, maxCID, t))
		}
		return out, nil
	case opSet:
	default:
		return nil, errPlain
	}
	ps, err := splitParams(c.args)
	if err != nil {
		return nil, cmeError(cmeBadParam)
	}
	cid, err := ps.int(0, 0, 1, maxCID)
	if err != nil || cid == 0 {
		return nil, cmeError(cmeBadParam)
	}
	p := m.pdps[cid]
	if len(ps) == 1 {
		// The cid alone undefines the context.
		if p != nil && p.active {
			return nil, cmeError(cmeNotAllowed)
		}
		delete(m.pdps, cid)
		return nil, nil
	}
	typ := strings.ToUpper(ps.str(1))
	valid := false
	for _, t := range pdpTypes {
		valid = valid || typ == t
	}
	apn := ps.str(2)
	if !valid || len(apn) > 100 {
		return nil, cmeError(cmeBadParam)
	}
	if p == nil {
		p = &pdp{cid: cid}
		m.pdps[cid] = p
	}
	p.typ, p.apn = typ, apn
	return nil, nil
}

func cmdCGAUTH(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opRead:
		var out []string
		for _, cid := range m.cids() {
			a := m.auths[cid]
			out = append(out, fmt.Sprintf(`+CGAUTH: %d,%d,"%s"`, cid, a.prot, a.user))
		}
		return out, nil
	case opTest:
		return []string{fmt.Sprintf("+CGAUTH: (1-%d),(0-2),,", maxCID)}, nil
	case opSet:
	default:
		return nil, errPlain
	}
	ps, err := splitParams(c.args)
	if err != nil {
		return nil, cmeError(cmeBadParam)
	}
	cid, err := ps.int(0, 0, 1, maxCID)
	if err != nil || cid == 0 {
		return nil, cmeError(cmeBadParam)
	}
	prot, err := ps.int(1, 0, 0, 2)
	if err != nil {
		return nil, err
	}
	if prot == 0 {
		m.auths[cid] = auth{}
		return nil, nil
	}
	if len(ps.str(2)) > 64 || len(ps.str(3)) > 64 {
		return nil, cmeError(cmeBadParam)
	}
	m.auths[cid] = auth{prot: prot, user: ps.str(2), pass: ps.str(3)}
	return nil, nil
}

func cmdCGACT(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opRead:
		var out []string
		for _, cid := range m.cids() {
			st := 0
			if m.pdps[cid].active {
				st = 1
			}
			out = append(out, fmt.Sprintf("+CGACT: %d,%d", cid, st))
		}
		return out, nil
	case opTest:
		return []string{"+CGACT: (0,1)"}, nil
	case opSet:
	default:
		return nil, errPlain
	}
	ps, err := splitParams(c.args)
	if err != nil {
		return nil, cmeError(cmeBadParam)
	}
	st, err := ps.int(0, -1, 0, 1)
	if err != nil || st < 0 {
		return nil, cmeError(cmeBadParam)
	}
	cids, err := m.cidList(ps[1:])
	if err != nil {
		return nil, err
	}
	for _, cid := range cids {
		p := m.pdps[cid]
		if st == 0 {
			m.deactivate(p, "")
			continue
		}
		if err := m.activate(p); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// cidList reads a list of defined cids; none means every defined one.
func (m *Modem) cidList(ps params) ([]int, error) {
	if len(ps) == 0 {
		return m.cids(), nil
	}
	var cids []int
	for i := range ps {
		cid, err := ps.int(i, 0, 1, maxCID)
		if err != nil || cid == 0 || m.pdps[cid] == nil {
			return nil, cmeError(cmeBadParam)
		}
		cids = append(cids, cid)
	}
	return cids, nil
}

// lease is Config.Lease for cid, with the default standing in for what
// it leaves out or gets wrong, so that responses always hold addresses.
func (m *Modem) lease(cid int) Lease {
	l, def := m.cfg.Lease(cid), DefaultLease(cid)
	if !l.Addr4.IsValid() || !l.Addr4.Addr().Is4() {
		l.Addr4 = def.Addr4
	}
	if !l.Gateway4.Is4() {
		l.Gateway4 = def.Gateway4
	}
	if !l.Addr6.IsValid() || !l.Addr6.Addr().Is6() || l.Addr6.Addr().Is4In6() {
		l.Addr6 = def.Addr6
	}
	if !l.Gateway6.Is6() {
		l.Gateway6 = def.Gateway6
	}
	return l
}

// addrs are the addresses of an active context, in 27.007 order: IPv4
// first.
func (m *Modem) addrs(p *pdp) []string {
	l := m.lease(p.cid)
	var out []string
	if p.typ != "IPV6" {
		out = append(out, l.Addr4.Addr().String())
	}
	if p.typ != "IP" {
		out = append(out, m.ip6(l.Addr6.Addr()))
	}
	return out
}

// ip6 prints an IPv6 address as +CGPIAF says: 27.007's dotted decimal
// bytes by default, colon notation on request.
func (m *Modem) ip6(a netip.Addr) string {
	if m.piaf[0] == 1 {
		return a.String()
	}
	return dotted(a.AsSlice())
}

func dotted(b []byte) string {
	parts := make([]string, len(b))
	for i, v := range b {
		parts[i] = strconv.Itoa(int(v))
	}
	return strings.Join(parts, ".")
}

func cmdCGPADDR(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opTest:
		var cids []string
		for _, cid := range m.cids() {
			cids = append(cids, strconv.Itoa(cid))
		}
		return []string{"+CGPADDR: (" + strings.Join(cids, ",") + ")"}, nil
	case opAction, opSet:
	default:
		return nil, errPlain
	}
	ps, err := splitParams(c.args)
	if err != nil {
		return nil, cmeError(cmeBadParam)
	}
	cids, err := m.cidList(ps)
	if err != nil {
		return nil, err
	}
	q := ""
	if m.d.quoteAddr {
		q = `"`
	}
	var out []string
	for _, cid := range cids {
		p := m.pdps[cid]
		line := fmt.Sprintf("+CGPADDR: %d", cid)
		switch {
		case p.active:
			for _, a := range m.addrs(p) {
				line += "," + q + a + q
			}
		case m.d.zeroAddr:
			line += "," + q + "0.0.0.0" + q
		}
		out = append(out, line)
	}
	return out, nil
}

// cmdCGCONTRDP reports the dynamic parameters of active contexts: one
// line per address family, "<addr>.<mask>" in dotted form (or as +CGPIAF
// asks for IPv6), gateway and DNS servers.
func cmdCGCONTRDP(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opTest:
		var cids []string
		for _, cid := range m.cids() {
			if m.pdps[cid].active {
				cids = append(cids, strconv.Itoa(cid))
			}
		}
		return []string{"+CGCONTRDP: (" + strings.Join(cids, ",") + ")"}, nil
	case opAction, opSet:
	default:
		return nil, errPlain
	}
	ps, err := splitParams(c.args)
	if err != nil {
		return nil, cmeError(cmeBadParam)
	}
	var cids []int
	if ps.given(0) {
		cid, err := ps.int(0, 0, 1, maxCID)
		if err != nil || m.pdps[cid] == nil {
			return nil, cmeError(cmeBadParam)
		}
		cids = []int{cid}
	} else {
		cids = m.cids()
	}
	var out []string
	for _, cid := range cids {
		p := m.pdps[cid]
		if !p.active {
			continue
		}
		l := m.lease(cid)
		bearer := 4 + cid // EPS bearer identities start at 5
		head := fmt.Sprintf(`+CGCONTRDP: %d,%d,"%s"`, cid, bearer, m.apn(p))
		if p.typ != "IPV6" {
			a := l.Addr4.Addr().As4()
			out = append(out, fmt.Sprintf(`%s,"%s","%s"%s`, head, dotted(append(a[:], mask(l.Addr4.Bits(), 4)...)),
				l.Gateway4, dnsFields(l.DNS4, func(a netip.Addr) string { return a.String() })))
		}
		if p.typ != "IP" {
			out = append(out, fmt.Sprintf(`%s,"%s","%s"%s`, head, m.ip6Prefix(l.Addr6),
				m.ip6(l.Gateway6), dnsFields(l.DNS6, m.ip6)))
		}
	}
	return out, nil
}

// ip6Prefix prints an IPv6 address with its subnet: dotted address and
// mask by default; with +CGPIAF=1 the colon form, separated by a space
// or, with <IPv6_SubnetNotation> 1, in CIDR notation.
func (m *Modem) ip6Prefix(p netip.Prefix) string {
	a := p.Addr().As16()
	mask := mask(p.Bits(), 16)
	switch {
	case m.piaf[0] == 0:
		return dotted(append(a[:], mask...))
	case m.piaf[1] == 1:
		return p.String()
	}
	return p.Addr().String() + " " + netip.AddrFrom16([16]byte(mask)).String()
}

// mask is a subnet mask of n bytes with the first bits set.
func mask(bits, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		switch {
		case bits >= 8*(i+1):
			b[i] = 0xff
		case bits > 8*i:
			b[i] = byte(0xff << (8*(i+1) - bits))
		}
	}
	return b
}

func dnsFields(dns []netip.Addr, format func(netip.Addr) string) string {
	s := ""
	for i := 0; i < 2 && i < len(dns); i++ {
		s += `,"` + format(dns[i]) + `"`
	}
	return s
}

func cmdCGEREP(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opRead:
		return []string{fmt.Sprintf("+CGEREP: %d,%d", m.cgerep, m.cgerepBfr)}, nil
	case opTest:
		return []string{"+CGEREP: (0-2),(0-1)"}, nil
	case opSet:
	default:
		return nil, errPlain
	}
	ps, err := splitParams(c.args)
	if err != nil {
		return nil, cmeError(cmeBadParam)
	}
	mode, err := ps.int(0, 0, 0, 2)
	if err != nil {
		return nil, err
	}
	bfr, err := ps.int(1, 0, 0, 1)
	if err != nil {
		return nil, err
	}
	m.cgerep, m.cgerepBfr = mode, bfr
	return nil, nil
}

func cmdCGPIAF(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opRead:
		return []string{fmt.Sprintf("+CGPIAF: %d,%d,%d,%d", m.piaf[0], m.piaf[1], m.piaf[2], m.piaf[3])}, nil
	case opTest:
		return []string{"+CGPIAF: (0-1),(0-1),(0-1),(0-1)"}, nil
	case opSet:
	default:
		return nil, errPlain
	}
	ps, err := splitParams(c.args)
	if err != nil || len(ps) > 4 {
		return nil, cmeError(cmeBadParam)
	}
	var piaf [4]int
	for i := range piaf {
		if piaf[i], err = ps.int(i, m.piaf[i], 0, 1); err != nil {
			return nil, err
		}
	}
	m.piaf = piaf
	return nil, nil
}
