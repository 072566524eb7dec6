package provision

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/openmifi/openmifi/internal/strres"
)

// Problem is one thing wrong (or, with Warning, questionable) in a
// provisioning file.
type Problem struct {
	Pos     Pos
	Setting string // "HotSpot/MaxUsers", "Connections/Cellular/x/APN"; empty for syntax problems
	Value   string // as written; "(hidden)" for secrets
	Allowed string // the allowed range or form, if the problem is about the value
	Msg     string
	Warning bool
}

func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.Pos.String())
	b.WriteString(": ")
	if p.Warning {
		b.WriteString("warning: ")
	}
	if p.Setting != "" {
		b.WriteString(p.Setting)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	if p.Allowed != "" {
		b.WriteString(" (allowed: ")
		b.WriteString(p.Allowed)
		b.WriteString(")")
	}
	return b.String()
}

// Secret is a string that prints as "(hidden)", so that a connection password
// cannot reach a log or a status line by accident.
type Secret string

func (Secret) String() string   { return "(hidden)" }
func (Secret) GoString() string { return "(hidden)" }

// Connection is one cellular connection definition: a packet data context
// on the modem.
type Connection struct {
	Name         string
	Version      int
	UserName     string
	Password     Secret
	TetheringNAI bool
	APN          string // "" lets the network choose
	IPType       string // IP, IPV6 or IPV4V6
	AuthType     string // none, pap or chap
	Pos          Pos
}

// HotSpot holds the internet sharing settings, defaults filled in for the
// optional ones that were not written.
type HotSpot struct {
	Enabled                 bool
	EntitlementRequired     bool
	EntitlementDll          string
	EntitlementURL          string // openmifi extension: the endpoint the HTTP plugin asks
	EntitlementInterval     time.Duration
	MaxUsers                int
	MaxBluetoothUsers       int
	PeerlessTimeout         time.Duration
	PublicConnectionTimeout time.Duration
	MOHelpNumber            string
	MOInfoLink              string
	MOAppLink               string
	MOHelpMessage           string
	DedicatedConnections    []string
	TetheringNAIConnection  string
}

// Provisioning is a validated, $(__MVID)-expanded set of operator settings.
type Provisioning struct {
	HotSpot     HotSpot
	Connections map[string]Connection
	// Set lists the HotSpot settings that were written, with where.
	Set map[string]Pos
}

// Defaults are the values of the seed document for settings not written.
func Defaults() HotSpot {
	return HotSpot{
		Enabled:                 false,
		EntitlementRequired:     true,
		EntitlementInterval:     86400 * time.Second,
		MaxUsers:                5,
		MaxBluetoothUsers:       7,
		PeerlessTimeout:         5 * time.Minute,
		PublicConnectionTimeout: 20 * time.Minute,
	}
}

// Load reads, expands and validates the given files as one provisioning.
// Warnings are returned even when err is nil; err joins every *Problem found.
func Load(mvid string, files ...string) (*Provisioning, []*Problem, error) {
	var all []Entry
	var errs []error
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("open provisioning: %w", err))
			continue
		}
		entries, err := Parse(f, fh)
		fh.Close()
		if err != nil {
			errs = append(errs, err)
		}
		all = append(all, entries...)
	}
	p, warnings, err := Build(all, mvid)
	return p, warnings, errors.Join(append(errs, err)...)
}

// Build validates entries as one provisioning. mvid replaces $(__MVID) in
// names and values; when it is empty the macro is left as written, which
// keeps names comparable for an offline check.
func Build(entries []Entry, mvid string) (*Provisioning, []*Problem, error) {
	b := &builder{
		p: &Provisioning{
			HotSpot:     Defaults(),
			Connections: map[string]Connection{},
			Set:         map[string]Pos{},
		},
		seen: map[string]Pos{},
		conn: map[string]*Connection{},
	}
	for _, e := range entries {
		if len(b.files) == 0 || b.files[len(b.files)-1] != e.Pos.File {
			b.files = append(b.files, e.Pos.File)
		}
		b.entry(e, mvid)
	}
	b.finish()
	return b.p, b.warnings, errors.Join(b.errs...)
}

type builder struct {
	p        *Provisioning
	seen     map[string]Pos
	files    []string
	conn     map[string]*Connection
	connSet  map[string]map[string]bool
	errs     []error
	warnings []*Problem
}

func (b *builder) problem(pos Pos, setting, value, allowed, format string, args ...any) {
	b.errs = append(b.errs, &Problem{Pos: pos, Setting: setting, Value: value, Allowed: allowed, Msg: fmt.Sprintf(format, args...)})
}

func (b *builder) warn(pos Pos, setting, format string, args ...any) {
	b.warnings = append(b.warnings, &Problem{Pos: pos, Setting: setting, Msg: fmt.Sprintf(format, args...), Warning: true})
}

var macro = regexp.MustCompile(`\$\(([^)]*)\)`)

// expand replaces $(__MVID). Any other macro is an error: the device
// defines no other, and leaving it would send the literal text to the modem.
func expand(s, mvid string) (string, error) {
	var bad []string
	out := macro.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$(__MVID)" {
			if mvid == "" {
				return m
			}
			return mvid
		}
		bad = append(bad, m)
		return m
	})
	if len(bad) > 0 {
		return s, fmt.Errorf("unknown macro %s (the only one defined is $(__MVID))", strings.Join(bad, ", "))
	}
	return out, nil
}

func (b *builder) entry(e Entry, mvid string) {
	name, err := expand(e.Name, mvid)
	if err != nil {
		b.problem(e.Pos, e.Path+"/"+e.Name, "", "", "%v", err)
		return
	}
	setting := e.Path + "/" + name
	value, err := expand(e.Value, mvid)
	if err != nil {
		b.problem(e.Pos, setting, e.Value, "", "%v", err)
		return
	}
	if prev, dup := b.seen[setting]; dup {
		b.problem(e.Pos, setting, "", "", "duplicate setting (first written at %s)", prev)
		return
	}
	b.seen[setting] = e.Pos
	switch e.Path {
	case "HotSpot":
		b.hotspot(e.Pos, name, value)
	case "Connections":
		b.connection(e.Pos, setting, name, value)
	}
}

// field describes one HotSpot setting.
type field struct {
	allowed string
	set     func(h *HotSpot, v string) error
}

// errRange marks a value outside the allowed range, as opposed to one of the
// wrong form.
var errRange = errors.New("out of range")

func boolField(dst func(*HotSpot) *bool) field {
	return field{"0 or 1", func(h *HotSpot, v string) error {
		switch v {
		case "0":
			*dst(h) = false
		case "1":
			*dst(h) = true
		default:
			return errors.New("is not 0 or 1")
		}
		return nil
	}}
}

func intField(lo, hi int, unit time.Duration, zeroMsg string, dst func(*HotSpot, int, time.Duration)) field {
	allowed := fmt.Sprintf("%d to %d", lo, hi)
	switch unit {
	case time.Second:
		allowed += " seconds"
	case time.Minute:
		allowed += " minutes"
	}
	return field{allowed, func(h *HotSpot, v string) error {
		n, err := parseUint(v)
		if err != nil {
			return err
		}
		if n == 0 && zeroMsg != "" {
			return errors.New(zeroMsg)
		}
		if n < lo || n > hi {
			return errRange
		}
		dst(h, n, time.Duration(n)*unit)
		return nil
	}}
}

func stringField(allowed string, check func(string) error, dst func(*HotSpot, string)) field {
	return field{allowed, func(h *HotSpot, v string) error {
		if check != nil {
			if err := check(v); err != nil {
				return err
			}
		}
		dst(h, v)
		return nil
	}}
}

// parseUint accepts plain decimal digits only: a sign, a space, a hex prefix
// or a fraction in an operator file is a mistake worth pointing out.
func parseUint(v string) (int, error) {
	if v == "" {
		return 0, errors.New("is empty, not a whole number")
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, errors.New("is not a whole number")
		}
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errRange
	}
	return n, nil
}

var hotspotFields = map[string]field{
	"Enabled":             boolField(func(h *HotSpot) *bool { return &h.Enabled }),
	"EntitlementRequired": boolField(func(h *HotSpot) *bool { return &h.EntitlementRequired }),
	"EntitlementDll": stringField("a path to the entitlement plugin", nil,
		func(h *HotSpot, v string) { h.EntitlementDll = v }),
	"EntitlementURL": stringField("an http:// or https:// URL", checkHTTPURL,
		func(h *HotSpot, v string) { h.EntitlementURL = v }),
	"EntitlementInterval": intField(0, 604800, time.Second, "",
		func(h *HotSpot, _ int, d time.Duration) { h.EntitlementInterval = d }),
	"MaxUsers": intField(1, 8, 0, "",
		func(h *HotSpot, n int, _ time.Duration) { h.MaxUsers = n }),
	"MaxBluetoothUsers": intField(1, 7, 0, "",
		func(h *HotSpot, n int, _ time.Duration) { h.MaxBluetoothUsers = n }),
	"PeerlessTimeout": intField(1, 120, time.Minute, "is not supported: a time-out is required",
		func(h *HotSpot, _ int, d time.Duration) { h.PeerlessTimeout = d }),
	"PublicConnectionTimeout": intField(1, 60, time.Minute, "is not supported: a time-out is required",
		func(h *HotSpot, _ int, d time.Duration) { h.PublicConnectionTimeout = d }),
	"MOHelpNumber": stringField("a phone number: digits, spaces and + * # - ( ), at most 32 characters", checkPhone,
		func(h *HotSpot, v string) { h.MOHelpNumber = v }),
	"MOInfoLink": stringField("an http(s) link, e.g. contoso.com/help or https://contoso.com/help", checkInfoLink,
		func(h *HotSpot, v string) { h.MOInfoLink = v }),
	"MOAppLink": stringField("app://<GUID>, e.g. app://12345678-9012-3456-7890-123456789012", checkAppLink,
		func(h *HotSpot, v string) { h.MOAppLink = v }),
	"MOHelpMessage": stringField("@<res_file>,-<id>, e.g. @HotSpotMOHelp.dll,-101", checkResRef,
		func(h *HotSpot, v string) { h.MOHelpMessage = v }),
	"DedicatedConnections": stringField("connection names separated by ';'", checkNameList,
		func(h *HotSpot, v string) { h.DedicatedConnections = splitNames(v) }),
	"TetheringNAIConnection": stringField("a connection name", checkName,
		func(h *HotSpot, v string) { h.TetheringNAIConnection = strings.TrimSpace(v) }),
}

// HotSpotSettings lists the setting names of the HotSpot block.
func HotSpotSettings() []string {
	names := make([]string, 0, len(hotspotFields))
	for n := range hotspotFields {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (b *builder) hotspot(pos Pos, name, value string) {
	setting := "HotSpot/" + name
	f, ok := hotspotFields[name]
	if !ok {
		b.problem(pos, setting, "", "", "unknown setting (known: %s)", strings.Join(HotSpotSettings(), ", "))
		return
	}
	b.p.Set[name] = pos
	if err := f.set(&b.p.HotSpot, value); err != nil {
		msg := fmt.Sprintf("%q %v", value, err)
		if errors.Is(err, errRange) {
			msg = fmt.Sprintf("%q is out of range", value)
		}
		b.problem(pos, setting, value, f.allowed, "%s", msg)
	}
}

var (
	phoneRe = regexp.MustCompile(`^[0-9+*#() -]{1,32}$`)
	appRe   = regexp.MustCompile(`^app://[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
	// 3GPP TS 23.003 §9.1: labels of letters, digits and hyphens, separated by dots.
	apnRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
)

func checkPhone(v string) error {
	if !phoneRe.MatchString(v) || !strings.ContainsAny(v, "0123456789") {
		return errors.New("is not a phone number")
	}
	return nil
}

func checkAppLink(v string) error {
	if !appRe.MatchString(v) {
		return errors.New("is not an app:// link with a GUID")
	}
	return nil
}

func checkResRef(v string) error {
	if _, err := strres.ParseRef(v); err != nil {
		return fmt.Errorf("is not a string reference: %v", err)
	}
	return nil
}

// checkInfoLink accepts what the seed writes (a host and path without a
// scheme) as well as full http and https URLs.
func checkInfoLink(v string) error {
	s := v
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	return checkHTTPURL(s)
}

func checkHTTPURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		strings.ContainsAny(v, " \t\r\n") {
		return errors.New("is not an http or https URL")
	}
	return nil
}

func checkName(v string) error {
	n := strings.TrimSpace(v)
	switch {
	case n == "":
		return errors.New("is an empty connection name")
	case strings.ContainsAny(n, "/;"):
		return errors.New("is not a connection name: it contains '/' or ';'")
	}
	return nil
}

func checkNameList(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("is empty: leave the setting out to allow any connection")
	}
	for _, n := range strings.Split(v, ";") {
		if strings.TrimSpace(n) == "" {
			return errors.New("has an empty name between ';'")
		}
		if strings.Contains(n, "/") {
			return fmt.Errorf("has a name with '/' in it: %q", n)
		}
	}
	return nil
}

func splitNames(v string) []string {
	var out []string
	for _, n := range strings.Split(v, ";") {
		out = append(out, strings.TrimSpace(n))
	}
	return out
}

// connFields lists the fields of Cellular/<name>/<field>: the seed's four
// and the three a Linux modem needs that the seed leaves to the phone.
var connFields = []string{"Version", "UserName", "Password", "TetheringNAI", "APN", "IPType", "AuthType"}

func (b *builder) connection(pos Pos, setting, name, value string) {
	parts := strings.Split(name, "/")
	if len(parts) != 3 || parts[0] != "Cellular" || strings.TrimSpace(parts[1]) == "" {
		b.problem(pos, setting, "", "Cellular/<connection name>/<field>", "unknown connection setting")
		return
	}
	cname, fname := parts[1], parts[2]
	c := b.conn[cname]
	if c == nil {
		c = &Connection{Name: cname, Version: 1, Pos: pos}
		b.conn[cname] = c
	}
	if b.connSet == nil {
		b.connSet = map[string]map[string]bool{}
	}
	if b.connSet[cname] == nil {
		b.connSet[cname] = map[string]bool{}
	}
	b.connSet[cname][fname] = true
	bad := func(allowed, format string, args ...any) {
		shown := value
		if fname == "Password" {
			shown = "(hidden)"
		}
		b.problem(pos, setting, shown, allowed, format, args...)
	}
	switch fname {
	case "Version":
		n, err := parseUint(value)
		if err == nil && (n < 1 || n > 65535) {
			err = errRange
		}
		if err != nil {
			bad("1 to 65535", "%q %v", value, err)
			return
		}
		c.Version = n
	case "UserName":
		if len(value) > 127 || strings.ContainsAny(value, "\"\r\n") {
			bad("at most 127 characters, no quotes or line breaks", "not a valid user name")
			return
		}
		c.UserName = value
	case "Password":
		if len(value) > 127 || strings.ContainsAny(value, "\"\r\n") {
			bad("at most 127 characters, no quotes or line breaks", "not a valid password")
			return
		}
		c.Password = Secret(value)
	case "TetheringNAI":
		switch value {
		case "0", "1":
			c.TetheringNAI = value == "1"
		default:
			bad("0 or 1", "%q is not 0 or 1", value)
		}
	case "APN":
		if value != "" && (len(value) > 100 || !apnRe.MatchString(value)) {
			bad("at most 100 characters: labels of letters, digits and '-' separated by '.'", "%q is not an APN", value)
			return
		}
		c.APN = value
	case "IPType":
		v := strings.ToUpper(value)
		if v != "IP" && v != "IPV6" && v != "IPV4V6" {
			bad("IP, IPV6, IPV4V6", "%q is not an IP type", value)
			return
		}
		c.IPType = v
	case "AuthType":
		v := strings.ToLower(value)
		if v != "none" && v != "pap" && v != "chap" {
			bad("none, pap, chap", "%q is not an authentication type", value)
			return
		}
		c.AuthType = v
	default:
		b.problem(pos, setting, "", "", "unknown connection field %q (known: %s)", fname, strings.Join(connFields, ", "))
	}
}

// where names the files for a problem that has no line: a missing setting.
func (b *builder) where() Pos {
	if len(b.files) == 0 {
		return Pos{File: "provisioning"}
	}
	return Pos{File: strings.Join(b.files, ", ")}
}

// finish applies the rules that span settings.
func (b *builder) finish() {
	h := &b.p.HotSpot
	if _, ok := b.p.Set["Enabled"]; !ok {
		b.warn(b.where(), "HotSpot/Enabled", "not set: internet sharing is unavailable (Enabled defaults to 0)")
	}
	if h.EntitlementRequired && strings.TrimSpace(h.EntitlementDll) == "" {
		pos, ok := b.p.Set["EntitlementDll"]
		if !ok {
			pos, ok = b.p.Set["EntitlementRequired"]
		}
		if !ok {
			pos = b.where()
		}
		b.problem(pos, "HotSpot/EntitlementDll", h.EntitlementDll, "a path to the entitlement plugin",
			"required when EntitlementRequired is 1 (its default); set EntitlementRequired to 0 for unlocked devices")
	}
	for name, c := range b.conn {
		set := b.connSet[name]
		if c.IPType == "" {
			c.IPType = "IP"
		}
		if c.AuthType == "" {
			// Credentials without a stated method: CHAP, as phones default to.
			c.AuthType = "none"
			if c.UserName != "" {
				c.AuthType = "chap"
			}
		}
		if c.AuthType != "none" && c.UserName == "" && set["AuthType"] {
			b.problem(c.Pos, "Connections/Cellular/"+name+"/AuthType", c.AuthType, "",
				"authentication %s needs a UserName", c.AuthType)
		}
		b.p.Connections[name] = *c
	}
	if h.TetheringNAIConnection != "" {
		if c, ok := b.p.Connections[h.TetheringNAIConnection]; ok && !c.TetheringNAI {
			b.warn(b.p.Set["TetheringNAIConnection"], "HotSpot/TetheringNAIConnection",
				"connection %q does not have TetheringNAI set to 1", c.Name)
		}
	}
	if _, err := b.p.SharingConnections(); err != nil {
		// The device's own connection provisioning may define them; only
		// the start of sharing can tell for sure.
		pos, ok := b.p.Set["DedicatedConnections"]
		if !ok {
			pos = b.p.Set["TetheringNAIConnection"]
		}
		b.warn(pos, "HotSpot/DedicatedConnections", "%v", err)
	}
}

// SharingConnections resolves DedicatedConnections and TetheringNAIConnection
// to connection definitions. nil means any available connection may carry
// shared traffic. A named connection that is not defined is an error:
// sharing must not start, since it would have no connection to share.
func (p *Provisioning) SharingConnections() ([]Connection, error) {
	names := append([]string(nil), p.HotSpot.DedicatedConnections...)
	if n := p.HotSpot.TetheringNAIConnection; n != "" {
		names = append(names, n)
	}
	var (
		out     []Connection
		missing []string
		seen    = map[string]bool{}
	)
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		c, ok := p.Connections[n]
		if !ok {
			missing = append(missing, strconv.Quote(n))
			continue
		}
		out = append(out, c)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("dedicated connection %s is not defined: sharing would have no connection to use", strings.Join(missing, ", "))
	}
	return out, nil
}
