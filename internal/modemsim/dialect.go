package modemsim

import (
	"fmt"
	"strings"
)

// dialect is what sets one modem family apart: identity, defaults,
// response details and vendor commands.
type dialect struct {
	name                          string
	manufacturer, model, revision string
	// cmee is +CMEE at power-on.
	cmee int
	// cgmr formats the +CGMR response.
	cgmr func(rev string) string
	// ati is the ATI response.
	ati func(m *Modem) []string
	// boot are the URCs printed when the modem comes back from a reset.
	boot func(m *Modem) []string
	// pinURC: the modem reports SIM state changes as +CPIN: URCs.
	pinURC bool
	// simReadyURCs follow an unlocked SIM (SMS and phonebook ready).
	simReadyURCs []string
	// simRemoved is the URC when the SIM is pulled ("" none).
	simRemoved string
	// defaultContext: cid 1 is defined (IPV4V6, empty APN) out of the box.
	defaultContext bool
	// dataOnNetdev: the data path follows AT+QNETDEVCTL rather than
	// +CGACT.
	dataOnNetdev bool
	// quoteAddr: +CGPADDR quotes its addresses; zeroAddr: it prints
	// 0.0.0.0 for an inactive context instead of leaving it out.
	quoteAddr, zeroAddr bool
	// cgdcontTail follows <d_comp>,<h_comp> in +CGDCONT? lines.
	cgdcontTail string
	handlers    map[string]handler
}

var dialects map[string]*dialect

func init() {
	dialects = map[string]*dialect{
		"generic": {
			name:         "generic",
			manufacturer: "openmifi",
			model:        "modemsim",
			revision:     "modemsim-1.0",
			cgmr:         func(rev string) string { return rev },
			ati: func(m *Modem) []string {
				return []string{m.d.manufacturer, m.d.model, "Revision: " + m.d.revision}
			},
			boot:      func(*Modem) []string { return nil },
			quoteAddr: true,
			handlers: map[string]handler{
				"+CCID":  iccid("+CCID"),
				"+ICCID": iccid("+ICCID"),
			},
		},
		// Quectel EC25/EG25, after the EC25&EC21 AT Commands Manual and
		// the module's ECM (QNETDEVCTL) notes.
		"quectel": {
			name:         "quectel",
			manufacturer: "Quectel",
			model:        "EC25",
			revision:     "EC25EFAR06A06M4G",
			cmee:         1,
			cgmr:         func(rev string) string { return rev },
			ati: func(m *Modem) []string {
				return []string{m.d.manufacturer, m.d.model, "Revision: " + m.d.revision}
			},
			boot: func(m *Modem) []string {
				urcs := []string{"RDY", fmt.Sprintf("+CFUN: %d", m.cfun), "+CPIN: " + m.simText()}
				if m.sim != simAbsent {
					urcs = append(urcs, "+QUSIM: 1")
				}
				if m.sim == simReady {
					urcs = append(urcs, m.d.simReadyURCs...)
				}
				return urcs
			},
			pinURC:         true,
			simReadyURCs:   []string{"+QIND: SMS DONE", "+QIND: PB DONE"},
			simRemoved:     "+CPIN: NOT READY",
			defaultContext: true,
			dataOnNetdev:   true,
			quoteAddr:      true,
			zeroAddr:       true,
			cgdcontTail:    ",0,0",
			handlers: map[string]handler{
				"+QCCID":      iccid("+QCCID"),
				"+QCFG":       cmdQCFG,
				"+QNETDEVCTL": cmdQNETDEVCTL,
				"+QINDCFG":    cmdQINDCFG,
				"+QNWINFO":    cmdQNWINFO,
				"+QCSQ":       cmdQCSQ,
				"+QPINC":      cmdQPINC,
				"+QICSGP":     cmdQICSGP,
			},
		},
		// SIMCom SIM7600, after the SIM7500_SIM7600 Series AT Command
		// Manual.
		"simcom": {
			name:         "simcom",
			manufacturer: "SIMCOM INCORPORATED",
			model:        "SIMCOM_SIM7600E-H",
			revision:     "LE20B04SIM7600M22",
			cgmr:         func(rev string) string { return "+CGMR: " + rev },
			ati: func(m *Modem) []string {
				return []string{
					"Manufacturer: " + m.d.manufacturer,
					"Model: " + m.d.model,
					"Revision: " + m.d.revision,
					"IMEI: " + m.cfg.IMEI,
					"+GCAP: +CGSM",
				}
			},
			boot: func(m *Modem) []string {
				urcs := []string{"RDY", "+CPIN: " + m.simText()}
				if m.sim == simReady {
					urcs = append(urcs, m.d.simReadyURCs...)
				}
				return urcs
			},
			pinURC:         true,
			simReadyURCs:   []string{"SMS DONE", "PB DONE"},
			simRemoved:     "+CPIN: SIM REMOVED",
			defaultContext: true,
			// SIM7600 prints +CGPADDR addresses bare.
			cgdcontTail: ",0,0",
			handlers: map[string]handler{
				"+CICCID":   iccid("+ICCID"),
				"+CNMP":     cmdCNMP,
				"+CPSI":     cmdCPSI,
				"$QCRMCALL": cmdQCRMCALL,
				"+SPIC":     cmdSPIC,
			},
		},
	}
}

// iccid reads the SIM's ICCID, which needs no PIN.
func iccid(prefix string) handler {
	return func(m *Modem, c command) ([]string, error) {
		switch c.op {
		case opAction, opRead:
		case opTest:
			return nil, nil
		default:
			return nil, errPlain
		}
		if m.sim == simAbsent {
			return nil, cmeError(cmeSIMAbsent)
		}
		return []string{prefix + ": " + m.cfg.ICCID}, nil
	}
}

// cmdQCFG handles the AT+QCFG settings the data path depends on: the USB
// network function (0 RmNet/QMI, 1 ECM, 2 MBIM, 3 RNDIS; it takes effect
// after a reboot, but is reported at once as on the EC25) and the
// network scan mode (0 automatic, 1 GSM, 2 UMTS, 3 LTE).
func cmdQCFG(m *Modem, c command) ([]string, error) {
	if c.op == opTest {
		return []string{`+QCFG: "usbnet",(0-3)`, `+QCFG: "nwscanmode",(0-3),(0,1)`}, nil
	}
	if c.op != opSet {
		return nil, errPlain
	}
	ps, err := splitParams(c.args)
	if err != nil {
		return nil, cmeError(cmeBadParam)
	}
	switch name := strings.ToLower(ps.str(0)); name {
	case "usbnet":
		if !ps.given(1) {
			return []string{fmt.Sprintf(`+QCFG: "usbnet",%d`, m.usbnet)}, nil
		}
		v, err := ps.int(1, 0, 0, 3)
		if err != nil {
			return nil, err
		}
		m.usbnet = v
	case "nwscanmode":
		if !ps.given(1) {
			return []string{fmt.Sprintf(`+QCFG: "nwscanmode",%d`, m.scanMd)}, nil
		}
		v, err := ps.int(1, 0, 0, 3)
		if err != nil {
			return nil, err
		}
		if _, err := ps.int(2, 1, 0, 1); err != nil {
			return nil, err
		}
		m.scanMd = v
		m.setModePref([]int{-1, actGSM, actUMTS, actLTE}[v])
	default:
		return nil, errPlain
	}
	return nil, nil
}

// setModePref forces a technology (-1: whatever the network offers).
func (m *Modem) setModePref(act int) {
	m.modePref = act
	m.update(causeNW)
}

// cmdQNETDEVCTL connects (op 1), disconnects (0) or auto-connects (3,
// re-dialling after coverage comes back) the ECM data interface:
// AT+QNETDEVCTL=<op>,<cid>[,<urc_en>].
func cmdQNETDEVCTL(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opRead:
		st := 0
		if m.nd.up {
			st = 1
		}
		return []string{fmt.Sprintf("+QNETDEVCTL: %d,%d,%d,%d", m.nd.op, m.nd.cid, m.nd.urc, st)}, nil
	case opTest:
		return []string{fmt.Sprintf("+QNETDEVCTL: (0,1,3),(1-%d),(0,1)", maxCID)}, nil
	case opSet:
	default:
		return nil, errPlain
	}
	ps, err := splitParams(c.args)
	if err != nil {
		return nil, cmeError(cmeBadParam)
	}
	o, err := ps.int(0, -1, 0, 3)
	if err != nil || o < 0 || o == 2 {
		return nil, cmeError(cmeBadParam)
	}
	cid, err := ps.int(1, 0, 1, maxCID)
	if err != nil || cid == 0 || m.pdps[cid] == nil {
		return nil, cmeError(cmeBadParam)
	}
	urc, err := ps.int(2, 0, 0, 1)
	if err != nil {
		return nil, err
	}
	if o == 0 {
		m.nd.op, m.nd.urc = 0, urc
		if m.nd.cid == cid {
			m.deactivate(m.pdps[cid], "")
			m.nd.up = false
		}
		return nil, nil
	}
	if m.nd.up && m.nd.cid != cid {
		return nil, cmeError(cmeNotAllowed)
	}
	m.nd = netdev{op: o, cid: cid, urc: urc, up: m.nd.up}
	if err := m.netdevConnect(); err != nil {
		if o == 3 {
			// Auto-connect waits for service.
			return nil, nil
		}
		return nil, err
	}
	return nil, nil
}

// cmdQINDCFG switches URC groups; only "csq" (+QIND: "csq",<rssi>,<ber>
// on a change) has an effect here.
func cmdQINDCFG(m *Modem, c command) ([]string, error) {
	if c.op != opSet {
		if c.op == opTest {
			return []string{`+QINDCFG: "all",(0,1),(0,1)`, `+QINDCFG: "csq",(0,1),(0,1)`}, nil
		}
		return nil, errPlain
	}
	ps, err := splitParams(c.args)
	if err != nil {
		return nil, cmeError(cmeBadParam)
	}
	name := strings.ToLower(ps.str(0))
	switch name {
	case "all", "csq", "smsfull", "ring", "smsincoming", "act", "ccinfo", "mode":
	default:
		return nil, cmeError(cmeBadParam)
	}
	if !ps.given(1) {
		return []string{fmt.Sprintf(`+QINDCFG: "%s",%d`, name, m.qind[name])}, nil
	}
	v, err := ps.int(1, 0, 0, 1)
	if err != nil {
		return nil, err
	}
	if _, err := ps.int(2, 0, 0, 1); err != nil {
		return nil, err
	}
	m.qind[name] = v
	if name == "all" {
		m.qind["csq"] = v
	}
	return nil, nil
}

func cmdQNWINFO(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opTest:
		return nil, nil
	case opAction:
	default:
		return nil, errPlain
	}
	if !m.camped {
		return []string{"+QNWINFO: No Service"}, nil
	}
	switch m.act() {
	case actGSM:
		return []string{fmt.Sprintf(`+QNWINFO: "GSM","%s","GSM 900",62`, m.cfg.PLMN)}, nil
	case actUMTS:
		return []string{fmt.Sprintf(`+QNWINFO: "WCDMA","%s","WCDMA 2100",10700`, m.cfg.PLMN)}, nil
	}
	return []string{fmt.Sprintf(`+QNWINFO: "FDD LTE","%s","LTE BAND 3",1300`, m.cfg.PLMN)}, nil
}

func cmdQCSQ(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opTest:
		return nil, nil
	case opAction:
	default:
		return nil, errPlain
	}
	if !m.camped {
		return []string{`+QCSQ: "NOSERVICE"`}, nil
	}
	dbm := -113 + 2*m.rssi
	switch m.act() {
	case actGSM:
		return []string{fmt.Sprintf(`+QCSQ: "GSM",%d`, dbm)}, nil
	case actUMTS:
		return []string{fmt.Sprintf(`+QCSQ: "WCDMA",%d,-5`, dbm)}, nil
	}
	// <rssi>,<rsrp>,<sinr>,<rsrq>; SINR in 1/5 dB steps offset by -20 dB.
	return []string{fmt.Sprintf(`+QCSQ: "LTE",%d,%d,150,-10`, dbm, dbm-20)}, nil
}

// cmdQPINC reports the PIN and PUK attempts left.
func cmdQPINC(m *Modem, c command) ([]string, error) {
	lines := map[string]string{
		"SC": fmt.Sprintf(`+QPINC: "SC",%d,%d`, m.pinLeft, m.pukLeft),
		"P2": fmt.Sprintf(`+QPINC: "P2",%d,%d`, pinTries, pukTries),
	}
	switch c.op {
	case opRead:
		return []string{lines["SC"], lines["P2"]}, nil
	case opTest:
		return []string{`+QPINC: ("SC","P2")`}, nil
	case opSet:
		ps, err := splitParams(c.args)
		if err != nil {
			return nil, cmeError(cmeBadParam)
		}
		if l, ok := lines[strings.ToUpper(ps.str(0))]; ok {
			return []string{l}, nil
		}
		return nil, cmeError(cmeBadParam)
	}
	return nil, errPlain
}

// cmdQICSGP reads and writes a context's APN and credentials the Quectel
// way: AT+QICSGP=<cid>[,<type>,<APN>[,<user>,<password>[,<auth>]]], type
// 1 IPv4, 2 IPv6, 3 IPv4v6. It shares its state with +CGDCONT and
// +CGAUTH.
func cmdQICSGP(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opTest:
		return []string{fmt.Sprintf(`+QICSGP: (1-%d),(1-3),<APN>,<username>,<password>,(0-3)`, maxCID)}, nil
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
	if len(ps) == 1 {
		p, a := m.pdps[cid], m.auths[cid]
		if p == nil {
			return []string{`+QICSGP: 0,"","","",0`}, nil
		}
		t := map[string]int{"IP": 1, "IPV6": 2, "IPV4V6": 3}[p.typ]
		return []string{fmt.Sprintf(`+QICSGP: %d,"%s","%s","%s",%d`, t, p.apn, a.user, a.pass, a.prot)}, nil
	}
	t, err := ps.int(1, 1, 1, 3)
	if err != nil {
		return nil, err
	}
	prot, err := ps.int(5, 0, 0, 3)
	if err != nil {
		return nil, err
	}
	if len(ps.str(2)) > 100 || len(ps.str(3)) > 64 || len(ps.str(4)) > 64 {
		return nil, cmeError(cmeBadParam)
	}
	p := m.pdps[cid]
	if p == nil {
		p = &pdp{cid: cid}
		m.pdps[cid] = p
	}
	p.typ, p.apn = pdpTypes[t-1], ps.str(2)
	// 3 is "PAP or CHAP"; the network here takes either.
	m.auths[cid] = auth{prot: min(prot, 2), user: ps.str(3), pass: ps.str(4)}
	return nil, nil
}

// cnmpModes maps AT+CNMP preferred modes to a forced technology (-1:
// automatic or a combination the network satisfies as it is).
var cnmpModes = map[int]int{2: -1, 13: actGSM, 14: actUMTS, 38: actLTE, 39: -1, 48: -1, 51: -1, 54: -1, 59: -1, 60: -1, 63: -1, 67: -1}

func cmdCNMP(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opRead:
		return []string{fmt.Sprintf("+CNMP: %d", m.cnmp)}, nil
	case opTest:
		return []string{"+CNMP: (2,13,14,38,39,48,51,54,59,60,63,67)"}, nil
	case opSet:
	default:
		return nil, errPlain
	}
	ps, err := splitParams(c.args)
	if err != nil {
		return nil, cmeError(cmeBadParam)
	}
	mode, err := ps.int(0, -1, 0, 99)
	if err != nil {
		return nil, err
	}
	act, ok := cnmpModes[mode]
	if !ok {
		return nil, cmeError(cmeBadParam)
	}
	m.cnmp = mode
	m.setModePref(act)
	return nil, nil
}

// cmdCPSI is the SIM7600 serving cell summary. RSRQ, RSRP and RSSI are
// in tenths of dB as the module prints them.
func cmdCPSI(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opTest:
		return []string{"+CPSI: (0-255)"}, nil
	case opSet:
		// Periodic reporting is accepted and not simulated.
		return nil, nil
	case opRead:
	default:
		return nil, errPlain
	}
	opMode := "Online"
	if m.cfun != 1 {
		opMode = "Low Power Mode"
	}
	if !m.camped {
		return []string{"+CPSI: NO SERVICE," + opMode}, nil
	}
	plmn := m.cfg.PLMN
	if len(plmn) >= 5 {
		plmn = plmn[:3] + "-" + plmn[3:]
	}
	dbm := -113 + 2*m.rssi
	switch m.act() {
	case actGSM:
		return []string{fmt.Sprintf("+CPSI: GSM,%s,%s,0x%s,15437,35 EGSM 900,%d,0,40-40", opMode, plmn, lacTAC, dbm)}, nil
	case actUMTS:
		return []string{fmt.Sprintf("+CPSI: WCDMA,%s,%s,0x%s,27446255,WCDMA IMT 2000,123,10700,0,1.5,%d,33,52,500", opMode, plmn, lacTAC, dbm)}, nil
	}
	return []string{fmt.Sprintf("+CPSI: LTE,%s,%s,0x%s,27446255,257,EUTRAN-BAND3,1300,5,5,-100,%d,%d,15",
		opMode, plmn, lacTAC, (dbm-20)*10, dbm*10)}, nil
}

// cmdQCRMCALL starts (1) or stops (0) the RmNet data call on a context:
// AT$QCRMCALL=<action>,<instance>[,<IP type>[,<act>[,<umts profile>]]],
// IP type 1 IPv4, 2 IPv6, 3 both; the UMTS profile is the cid.
func cmdQCRMCALL(m *Modem, c command) ([]string, error) {
	switch c.op {
	case opRead:
		var out []string
		for _, cid := range m.cids() {
			if p := m.pdps[cid]; p.active {
				out = append(out, rmnetLines(p)...)
			}
		}
		return out, nil
	case opTest:
		return []string{fmt.Sprintf("$QCRMCALL: (0-1),(1-2),(1-3),(1-2),(1-%d),(1-%d)", maxCID, maxCID)}, nil
	case opSet:
	default:
		return nil, errPlain
	}
	ps, err := splitParams(c.args)
	if err != nil {
		return nil, cmeError(cmeBadParam)
	}
	action, err := ps.int(0, -1, 0, 1)
	if err != nil || action < 0 {
		return nil, cmeError(cmeBadParam)
	}
	if _, err := ps.int(1, 1, 1, 2); err != nil {
		return nil, err
	}
	if _, err := ps.int(2, 1, 1, 3); err != nil {
		return nil, err
	}
	cid, err := ps.int(4, 1, 1, maxCID)
	if err != nil {
		return nil, err
	}
	p := m.pdps[cid]
	if p == nil {
		return nil, cmeError(cmeBadParam)
	}
	if action == 0 {
		m.deactivate(p, "")
		return nil, nil
	}
	if err := m.activate(p); err != nil {
		return nil, err
	}
	return rmnetLines(p), nil
}

func rmnetLines(p *pdp) []string {
	var out []string
	if p.typ != "IPV6" {
		out = append(out, "$QCRMCALL: 1,V4")
	}
	if p.typ != "IP" {
		out = append(out, "$QCRMCALL: 1,V6")
	}
	return out
}

// cmdSPIC reports the PIN and PUK attempts left, SIMCom's way:
// <pin1>,<puk1>,<pin2>,<puk2>.
func cmdSPIC(m *Modem, c command) ([]string, error) {
	if c.op != opAction {
		return nil, errPlain
	}
	return []string{fmt.Sprintf("+SPIC: %d,%d,%d,%d", m.pinLeft, m.pukLeft, pinTries, pukTries)}, nil
}
