package modem

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/openmifi/openmifi/drivers/modem/at"
)

// The parsers below read the information text of 3GPP TS 27.007 answers
// and URCs (without the "+NAME: " prefix, as at.URC.Args and the lines of
// an at.Response after trimming it). They are lenient about what they do
// not need and return ok=false only when what they need is not there:
// modems differ in the optional fields they print.

// args returns the text after "NAME:" in line, or ok=false when line is
// not named so.
func args(line, name string) (string, bool) {
	rest, ok := strings.CutPrefix(line, name+":")
	if !ok {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// Registration states (<stat> of +CREG, +CGREG, +CEREG).
const (
	regNotSearching = 0
	regHome         = 1
	regSearching    = 2
	regDenied       = 3
	regUnknown      = 4
	regRoaming      = 5
)

// reg is one registration report.
type reg struct {
	stat int
	lac  string // location or tracking area code, hex as printed
	ci   string
	act  int // -1: not given
}

func (r reg) registered() bool { return r.stat == regHome || r.stat == regRoaming }

// parseRegURC reads "+CREG: <stat>[,<lac>,<ci>[,<AcT>...]]".
func parseRegURC(a string) (reg, bool) {
	return parseReg(at.Fields(a))
}

// parseRegAnswer reads the answer to AT+CREG?: "<n>,<stat>[,<lac>,...]".
func parseRegAnswer(a string) (reg, bool) {
	f := at.Fields(a)
	if len(f) < 2 {
		return reg{}, false
	}
	return parseReg(f[1:])
}

func parseReg(f []string) (reg, bool) {
	if len(f) == 0 {
		return reg{}, false
	}
	stat, err := strconv.Atoi(f[0])
	if err != nil || stat < 0 || stat > 11 {
		return reg{}, false
	}
	r := reg{stat: stat, act: -1}
	if len(f) >= 3 {
		r.lac, r.ci = f[1], f[2]
	}
	if len(f) >= 4 {
		if act, err := strconv.Atoi(f[3]); err == nil && act >= 0 {
			r.act = act
		}
	}
	return r, true
}

// technology names an access technology (<AcT> of 27.007 §7.3) the way
// people know it.
func technology(act int) string {
	switch act {
	case 0, 1:
		return "GSM"
	case 3:
		return "EDGE"
	case 2:
		return "UMTS"
	case 4, 5, 6:
		return "HSPA"
	case 7, 10:
		return "LTE"
	case 8:
		return "EC-GSM-IoT"
	case 9:
		return "NB-IoT"
	case 11, 12:
		return "5G"
	case 13:
		return "5G NSA"
	}
	return ""
}

// cops is the answer to AT+COPS?: "<mode>[,<format>,<oper>[,<AcT>]]".
type cops struct {
	format int // 0 long name, 1 short name, 2 numeric; -1: not registered
	oper   string
	act    int // -1: not given
}

func parseCOPS(a string) (cops, bool) {
	f := at.Fields(a)
	if len(f) == 0 {
		return cops{}, false
	}
	if _, err := strconv.Atoi(f[0]); err != nil {
		return cops{}, false
	}
	c := cops{format: -1, act: -1}
	if len(f) < 3 {
		return c, true
	}
	format, err := strconv.Atoi(f[1])
	if err != nil || format < 0 || format > 2 {
		return cops{}, false
	}
	c.format, c.oper = format, f[2]
	if format == 2 && !validPLMN(c.oper) {
		return cops{}, false
	}
	if len(f) >= 4 {
		if act, err := strconv.Atoi(f[3]); err == nil && act >= 0 {
			c.act = act
		}
	}
	return c, true
}

// validPLMN: MCC and MNC, five or six digits.
func validPLMN(s string) bool {
	if len(s) != 5 && len(s) != 6 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// signal is a signal strength in dBm, 0 when unknown, and what kind of
// measurement it is, for the bars.
type signal struct {
	dbm  int
	kind string // "rssi", "rscp", "rsrp"
}

// parseCSQ reads "<rssi>,<ber>": rssi 0 is -113 dBm or less, 31 is -51 dBm
// or more, 99 unknown.
func parseCSQ(a string) (signal, bool) {
	f := at.Fields(a)
	if len(f) < 1 {
		return signal{}, false
	}
	rssi, err := strconv.Atoi(f[0])
	if err != nil || rssi < 0 || (rssi > 31 && rssi != 99) {
		return signal{}, false
	}
	if rssi == 99 {
		return signal{}, true
	}
	return signal{dbm: -113 + 2*rssi, kind: "rssi"}, true
}

// parseCESQ reads "<rxlev>,<ber>,<rscp>,<ecno>,<rsrq>,<rsrp>[,...]" and
// returns the measurement of the technology in use: RSRP for LTE, RSCP for
// UMTS, RXLEV for GSM (27.007 §8.69).
func parseCESQ(a string) (signal, bool) {
	f := at.Fields(a)
	if len(f) < 6 {
		return signal{}, false
	}
	var v [6]int
	for i := range v {
		n, err := strconv.Atoi(f[i])
		if err != nil || n < 0 || n > 255 {
			return signal{}, false
		}
		v[i] = n
	}
	switch {
	case v[5] <= 97:
		return signal{dbm: v[5] - 141, kind: "rsrp"}, true
	case v[2] <= 96:
		return signal{dbm: v[2] - 121, kind: "rscp"}, true
	case v[0] <= 63:
		return signal{dbm: v[0] - 111, kind: "rssi"}, true
	}
	return signal{}, true
}

// bars turns a measurement into 0..5 bars. The thresholds are those phones
// commonly use: RSRP is some 20 dB below the RSSI of the same cell.
func (s signal) bars() int {
	if s.dbm == 0 {
		return 0
	}
	var top int
	switch s.kind {
	case "rsrp":
		top = -80
	case "rscp":
		top = -75
	default:
		top = -65
	}
	for b := 5; b > 0; b-- {
		if s.dbm >= top-10*(5-b) {
			return b
		}
	}
	return 0
}

// parseCPIN reads "READY", "SIM PIN", "SIM PUK"...
func parseCPIN(a string) string {
	return strings.ToUpper(strings.Trim(strings.TrimSpace(a), `"`))
}

// parseAddr reads an address as modems print them: the usual notations,
// or 27.007's dotted decimal bytes (4 for IPv4, 16 for IPv6).
func parseAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	b, ok := dottedBytes(s)
	if !ok || len(b) != 16 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16([16]byte(b)), true
}

func dottedBytes(s string) ([]byte, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 4 && len(parts) != 8 && len(parts) != 16 && len(parts) != 32 {
		return nil, false
	}
	b := make([]byte, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 255 || len(p) > 3 {
			return nil, false
		}
		b[i] = byte(n)
	}
	return b, true
}

// parseCGPADDR reads "<cid>[,<addr>[,<addr>]]"; unspecified addresses
// (0.0.0.0, what some modems print for an inactive context) are left out.
func parseCGPADDR(a string) (cid int, addrs []netip.Addr, ok bool) {
	f := at.Fields(a)
	if len(f) == 0 {
		return 0, nil, false
	}
	cid, err := strconv.Atoi(f[0])
	if err != nil || cid < 0 {
		return 0, nil, false
	}
	for _, s := range f[1:] {
		if s == "" {
			continue
		}
		ad, ok := parseAddr(s)
		if !ok {
			return 0, nil, false
		}
		if !ad.IsUnspecified() {
			addrs = append(addrs, ad)
		}
	}
	return cid, addrs, true
}

// contrdp is one line of the answer to AT+CGCONTRDP: one address family
// of an active context.
type contrdp struct {
	cid     int
	apn     string
	addr    netip.Prefix // invalid when not given
	gateway netip.Addr
	dns     []netip.Addr
}

// parseCGCONTRDP reads "<cid>,<bearer>,<apn>[,<local_addr_and_subnet_mask>
// [,<gw_addr>[,<DNS_prim>[,<DNS_sec>...]]]]". The address and mask are
// dotted bytes ("100.64.1.2.255.255.255.252"), or, after AT+CGPIAF, an
// address and a mask with a space between them, or CIDR notation.
func parseCGCONTRDP(a string) (contrdp, bool) {
	f := at.Fields(a)
	if len(f) < 3 {
		return contrdp{}, false
	}
	cid, err := strconv.Atoi(f[0])
	if err != nil || cid < 0 {
		return contrdp{}, false
	}
	c := contrdp{cid: cid, apn: f[2]}
	if len(f) > 3 && f[3] != "" {
		p, ok := parseAddrMask(f[3])
		if !ok {
			return contrdp{}, false
		}
		c.addr = p
	}
	if len(f) > 4 && f[4] != "" {
		if g, ok := parseAddr(f[4]); ok && !g.IsUnspecified() {
			c.gateway = g
		}
	}
	for i := 5; i < len(f) && i < 7; i++ {
		if d, ok := parseAddr(f[i]); ok && !d.IsUnspecified() {
			c.dns = append(c.dns, d)
		}
	}
	return c, true
}

func parseAddrMask(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, true
	}
	if addr, mask, ok := strings.Cut(s, " "); ok {
		a, ok1 := parseAddr(addr)
		m, ok2 := parseAddr(mask)
		if !ok1 || !ok2 || a.BitLen() != m.BitLen() {
			return netip.Prefix{}, false
		}
		return prefixFromMask(a, m.AsSlice())
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), true
	}
	b, ok := dottedBytes(s)
	if !ok {
		return netip.Prefix{}, false
	}
	switch len(b) {
	case 8:
		return prefixFromMask(netip.AddrFrom4([4]byte(b[:4])), b[4:])
	case 32:
		return prefixFromMask(netip.AddrFrom16([16]byte(b[:16])), b[16:])
	case 4:
		a := netip.AddrFrom4([4]byte(b))
		return netip.PrefixFrom(a, 32), true
	case 16:
		a := netip.AddrFrom16([16]byte(b))
		return netip.PrefixFrom(a, 128), true
	}
	return netip.Prefix{}, false
}

// prefixFromMask accepts only contiguous masks.
func prefixFromMask(a netip.Addr, mask []byte) (netip.Prefix, bool) {
	bits, seenZero := 0, false
	for _, m := range mask {
		for i := 7; i >= 0; i-- {
			if m&(1<<i) != 0 {
				if seenZero {
					return netip.Prefix{}, false
				}
				bits++
			} else {
				seenZero = true
			}
		}
	}
	return netip.PrefixFrom(a, bits), true
}

// cgev is a packet domain event (+CGEV, 27.007 §10.1.19) that matters
// here: a context or the whole attachment going away.
type cgev struct {
	deact   bool // a context was deactivated; cid says which (0: unknown)
	network bool // by the network
	detach  bool // the whole packet domain: every context is gone
	cid     int
}

// parseCGEV reads the events of release 10 and later ("NW PDN DEACT 1",
// "ME PDN DEACT 1", "NW DEACT <p_cid>,<cid>,<type>") and the older form
// naming the context by type and address ("NW DEACT "IP","10.0.0.2",1").
func parseCGEV(a string) (cgev, bool) {
	a = strings.TrimSpace(a)
	var e cgev
	var rest string
	switch {
	case strings.HasPrefix(a, "NW PDN DEACT"):
		e.network, rest = true, a[len("NW PDN DEACT"):]
	case strings.HasPrefix(a, "ME PDN DEACT"):
		rest = a[len("ME PDN DEACT"):]
	case strings.HasPrefix(a, "NW DEACT"):
		e.network, rest = true, a[len("NW DEACT"):]
	case strings.HasPrefix(a, "ME DEACT"):
		rest = a[len("ME DEACT"):]
	case a == "NW DETACH" || a == "ME DETACH":
		return cgev{detach: true, network: a == "NW DETACH"}, true
	default:
		return cgev{}, false
	}
	e.deact = true
	f := at.Fields(rest)
	if len(f) == 0 {
		return e, true
	}
	// The old form quotes the type first; the cid is the last field then.
	// The new form gives the cid first (with <p_cid> for a secondary
	// context: "NW DEACT <p_cid>,<cid>,<event_type>").
	pick := f[0]
	if strings.HasPrefix(strings.TrimSpace(rest), `"`) || strings.HasPrefix(strings.TrimSpace(rest), "IP") {
		pick = f[len(f)-1]
	} else if len(f) >= 3 {
		pick = f[1]
	}
	if cid, err := strconv.Atoi(pick); err == nil && cid > 0 {
		e.cid = cid
	}
	return e, true
}

// parseQNETDEVSTATUS reads Quectel's "<cid>,<state>[,...]".
func parseQNETDEVSTATUS(a string) (cid int, up bool, ok bool) {
	f := at.Fields(a)
	if len(f) < 2 {
		return 0, false, false
	}
	cid, err1 := strconv.Atoi(f[0])
	st, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return 0, false, false
	}
	return cid, st == 1, true
}

// parseCGDCONTCIDs reads the cids of AT+CGDCONT? answer lines.
func parseCGDCONTCID(a string) (int, bool) {
	f := at.Fields(a)
	if len(f) < 2 {
		return 0, false
	}
	cid, err := strconv.Atoi(f[0])
	return cid, err == nil && cid > 0
}
