// Package usersettings is the user's layer of the hotspot settings: SSID,
// passphrase, band and channel, a client limit below the operator's, the
// last on/off choice, the SIM PIN and the console password. The operator's
// provisioning is the other layer; it enters here only as the operator's
// MaxUsers, the ceiling for the user's.
//
// A Store keeps the settings in a JSON file that survives a crash or a power
// cut at any moment (see Open for what happens to a file it cannot trust).
// The file is written with mode 0600 because it holds the passphrase and the
// SIM PIN:
//
//	{
//		"version": 1,
//		"ssid": "openmifi-3F7A",
//		"passphrase": "...",
//		"hidden": false,
//		"band": "2.4GHz",
//		"channel": 6,
//		"country": "00",
//		"max_users": 0,
//		"sharing": false,
//		"sim_pin": "",
//		"console_password": "pbkdf2-sha256$10000$...$..."
//	}
//
// console_password is written only when one is set. A missing field reads
// as its zero value and then has to pass validation like any other; an
// unknown field makes the file unusable, because it means the file was
// written by something that knows more than we do.
//
// The console password is stored only as a salted hash (see
// HashPassword); the init reads it with Load and asks for it before it
// gives the serial console a shell.
//
// Error messages and logs never carry the passphrase, the SIM PIN or the
// console password.
package usersettings

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bands.
const (
	Band24 = "2.4GHz"
	Band5  = "5GHz"
)

// MaxUsersLimit is the most clients any operator may allow (provisioning
// MaxUsers is 1..8). A stored MaxUsers up to this is kept even when the
// operator's current limit is lower.
const MaxUsersLimit = 8

// hidden stands in for the value of a secret setting in errors.
const hidden = "(hidden)"

// Settings are the user's choices.
type Settings struct {
	SSID       string // 1..32 bytes of UTF-8 text without control characters
	Passphrase string // WPA2-PSK: 8..63 printable ASCII (0x20..0x7e), or exactly 64 hex digits (raw PSK)
	Hidden     bool   // hide the SSID in beacons
	Band       string // Band24 or Band5
	Channel    int    // 2.4GHz: 1..13; 5GHz: non-DFS only: 36,40,44,48,149,153,157,161,165
	Country    string // regulatory domain: "00" (world) or an upper-case ISO 3166 alpha-2 code
	MaxUsers   int    // 0 = the operator's MaxUsers; else 1..operator's MaxUsers
	Sharing    bool   // the user's last on/off choice
	SIMPIN     string // "" or 4..8 digits; secret
	// ConsolePassword is "" (no password of the user's) or a hash made
	// by HashPassword; Set takes the password and stores its hash.
	ConsolePassword string
}

// Error is one setting with a value it cannot have.
type Error struct {
	Setting string // the user-facing name, as in Keys
	Value   string // as given; "(hidden)" for the passphrase, the SIM PIN and the console password
	Allowed string // the allowed range or form
	Reason  string // what is wrong; empty means "is out of range"
}

func (e *Error) Error() string {
	v := strconv.Quote(e.Value)
	if e.Value == hidden {
		v = hidden
	}
	reason := e.Reason
	if reason == "" {
		reason = "is out of range"
	}
	s := e.Setting + ": " + v + " " + reason
	if e.Allowed != "" {
		s += " (allowed: " + e.Allowed + ")"
	}
	return s
}

var (
	// ErrUnknownKey is wrapped by Get and Set for a name not in Keys.
	ErrUnknownKey = errors.New("unknown setting")
	// ErrWriteOnly is wrapped by Get for a setting that can only be set.
	ErrWriteOnly = errors.New("write-only")
)

// passphraseAlphabet leaves out characters that are easily confused when
// the passphrase is read off a label or a small display: 0 O 1 l I.
const passphraseAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// Defaults returns the settings of a device the user has not configured:
// an SSID "openmifi-XXXX" and a 12-character passphrase, both random, 2.4GHz
// channel 6, the world regulatory domain, the operator's client limit and
// sharing off. rand is normally crypto/rand.Reader; nil means that.
func Defaults(rand io.Reader) (Settings, error) {
	if rand == nil {
		rand = crand.Reader
	}
	var b [2]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return Settings{}, fmt.Errorf("random SSID: %w", err)
	}
	pass, err := randomString(rand, passphraseAlphabet, 12)
	if err != nil {
		return Settings{}, fmt.Errorf("random passphrase: %w", err)
	}
	return Settings{
		SSID:       fmt.Sprintf("openmifi-%02X%02X", b[0], b[1]),
		Passphrase: pass,
		Band:       Band24,
		Channel:    6,
		Country:    "00",
	}, nil
}

// randomString draws n characters uniformly from alphabet (at most 256
// characters), rejecting the bytes that would bias the choice. It reads no
// more than it needs, so a short test source goes a long way.
func randomString(rand io.Reader, alphabet string, n int) (string, error) {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, n)
	// A working source rejects few bytes; a stuck one must not hang us.
	for tries := 0; tries < 64; tries++ {
		b := buf[:n-len(out)]
		if _, err := io.ReadFull(rand, b); err != nil {
			return "", err
		}
		for _, c := range b {
			if int(c) < limit {
				out = append(out, alphabet[int(c)%len(alphabet)])
			}
		}
		if len(out) == n {
			return string(out), nil
		}
	}
	return "", errors.New("random source returns too few usable bytes")
}

// Validate reports every setting that is out of its range, as an
// errors.Join of *Error. operatorMaxUsers is the operator's MaxUsers.
func (s Settings) Validate(operatorMaxUsers int) error {
	return s.validate(operatorMaxUsers)
}

// validate checks MaxUsers against maxUsers, which is the operator's limit
// for a new choice but may be higher for a stored one (see Store.Update).
func (s Settings) validate(maxUsers int) error {
	var errs []error
	bad := func(setting, value, allowed, reason string) {
		errs = append(errs, &Error{Setting: setting, Value: value, Allowed: allowed, Reason: reason})
	}

	switch {
	case len(s.SSID) < 1 || len(s.SSID) > 32:
		bad("ssid", s.SSID, "1 to 32 bytes", "")
	case !printableUTF8(s.SSID):
		bad("ssid", s.SSID, "1 to 32 bytes of UTF-8 text without control characters",
			"is not printable UTF-8 text")
	}

	if !validPassphrase(s.Passphrase) {
		reason := "has a character that is not printable ASCII"
		if len(s.Passphrase) < 8 || len(s.Passphrase) > 64 {
			reason = ""
		} else if len(s.Passphrase) == 64 {
			reason = "has 64 characters but is not 64 hex digits"
		}
		bad("passphrase", hidden, "8 to 63 printable ASCII characters, or 64 hex digits", reason)
	}

	if s.Band != Band24 && s.Band != Band5 {
		bad("band", s.Band, Band24+" or "+Band5, "")
	} else if !channelOK(s.Band, s.Channel) {
		bad("channel", strconv.Itoa(s.Channel), allowedChannels(s.Band), "")
	}

	if !validCountry(s.Country) {
		bad("country", s.Country, `"00" (world) or an ISO 3166 country code such as US or DE`,
			"is not a regulatory domain")
	}

	if s.MaxUsers != 0 && (s.MaxUsers < 1 || s.MaxUsers > maxUsers) {
		allowed := "0 (no operator limit is set)"
		if maxUsers >= 1 {
			allowed = fmt.Sprintf("0 (the operator's limit) or 1 to %d", maxUsers)
		}
		bad("max_users", strconv.Itoa(s.MaxUsers), allowed, "")
	}

	if s.SIMPIN != "" && !validPIN(s.SIMPIN) {
		bad("sim_pin", hidden, "empty, or 4 to 8 digits", "")
	}

	if s.ConsolePassword != "" && !ValidPasswordHash(s.ConsolePassword) {
		bad("console_password", hidden, "empty, or a hash made by 'hotspotctl set console_password=...'",
			"is not a password hash")
	}
	return errors.Join(errs...)
}

// EffectiveMaxUsers is the client limit to enforce: the user's choice, or
// the operator's when the user has none, but never above the operator's
// (which may have been lowered since the user chose).
func (s Settings) EffectiveMaxUsers(operatorMaxUsers int) int {
	if s.MaxUsers == 0 {
		return operatorMaxUsers
	}
	return min(s.MaxUsers, operatorMaxUsers)
}

func printableUTF8(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, unicode.IsControl)
}

func validPassphrase(p string) bool {
	if len(p) == 64 {
		return !strings.ContainsFunc(p, func(r rune) bool {
			return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F')
		})
	}
	if len(p) < 8 || len(p) > 63 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] > 0x7e {
			return false
		}
	}
	return true
}

func validPIN(pin string) bool {
	if len(pin) < 4 || len(pin) > 8 {
		return false
	}
	return !strings.ContainsFunc(pin, func(r rune) bool { return r < '0' || r > '9' })
}

// channels5 are the 5 GHz channels that need no radar detection (DFS),
// which our access point does not do.
var channels5 = []int{36, 40, 44, 48, 149, 153, 157, 161, 165}

var defaultChannel = map[string]int{Band24: 6, Band5: 36}

func channelOK(band string, ch int) bool {
	switch band {
	case Band24:
		return 1 <= ch && ch <= 13
	case Band5:
		return slices.Contains(channels5, ch)
	}
	return false
}

func allowedChannels(band string) string {
	switch band {
	case Band24:
		return "1 to 13 on " + Band24
	case Band5:
		return "36, 40, 44, 48, 149, 153, 157, 161 or 165 on " + Band5
	}
	return "a channel of the band"
}

// keys are the user-facing names, in the order a listing shows them.
var keys = []string{"ssid", "passphrase", "hidden", "band", "channel", "country", "max_users", "sharing", "sim_pin",
	"console_password"}

// Keys returns the names Get and Set accept, in a stable order.
func Keys() []string { return slices.Clone(keys) }

func unknownKey(key string) error {
	return fmt.Errorf("%w %q (settings: %s)", ErrUnknownKey, key, strings.Join(keys, ", "))
}

// Get returns a setting as text: booleans as "on" or "off", max_users 0
// meaning the operator's limit. The passphrase is returned, since showing
// it is how a user connects a new client; the SIM PIN is write-only; the
// console password reads as "(set)" or "(not set)", never as its hash.
func (s Settings) Get(key string) (string, error) {
	switch key {
	case "ssid":
		return s.SSID, nil
	case "passphrase":
		return s.Passphrase, nil
	case "hidden":
		return onOff(s.Hidden), nil
	case "band":
		return s.Band, nil
	case "channel":
		return strconv.Itoa(s.Channel), nil
	case "country":
		return s.Country, nil
	case "max_users":
		return strconv.Itoa(s.MaxUsers), nil
	case "sharing":
		return onOff(s.Sharing), nil
	case "sim_pin":
		return "", fmt.Errorf("%s is %w", key, ErrWriteOnly)
	case "console_password":
		if s.ConsolePassword != "" {
			return "(set)", nil
		}
		return "(not set)", nil
	}
	return "", unknownKey(key)
}

// Set parses value into a setting. Booleans accept on/off, 1/0 and
// true/false; band and country are case-insensitive. Set only parses;
// ranges are Validate's job, so a sequence of Sets may pass through
// invalid combinations.
//
// Switching the band moves the channel to the new band's default (6 on
// 2.4GHz, 36 on 5GHz) unless the current channel is valid there, so that
// "set band 5GHz" alone gives a working configuration; to choose both, set
// the band first, then the channel.
//
// Setting sharing only changes the stored choice; turning sharing on or
// off is the daemon's job.
//
// The console password is the exception to "Set only parses": it is
// checked (1 to MaxPasswordLen bytes of text without control characters)
// and hashed at once, since only the hash is kept; "" clears it.
func (s *Settings) Set(key, value string) error {
	switch key {
	case "ssid":
		s.SSID = value
	case "passphrase":
		s.Passphrase = value
	case "hidden":
		return parseBool(&s.Hidden, key, value)
	case "band":
		s.setBand(value)
	case "channel":
		return parseInt(&s.Channel, key, value, allowedChannels(s.Band))
	case "country":
		s.Country = strings.ToUpper(strings.TrimSpace(value))
	case "max_users":
		return parseInt(&s.MaxUsers, key, value, "0 (the operator's limit) or 1 to the operator's limit")
	case "sharing":
		return parseBool(&s.Sharing, key, value)
	case "sim_pin":
		s.SIMPIN = value
	case "console_password":
		return s.setConsolePassword(value)
	default:
		return unknownKey(key)
	}
	return nil
}

func (s *Settings) setBand(value string) {
	band := strings.TrimSpace(value)
	for _, b := range []string{Band24, Band5} {
		if strings.EqualFold(band, b) {
			band = b
		}
	}
	if band != s.Band && (band == Band24 || band == Band5) && !channelOK(band, s.Channel) {
		s.Channel = defaultChannel[band]
	}
	s.Band = band
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// parseBool and parseInt leave *dst alone on error, so that a failed Set
// changes nothing.
func parseBool(dst *bool, key, value string) error {
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "on", "1", "true":
		*dst = true
	case "off", "0", "false":
		*dst = false
	default:
		return &Error{Setting: key, Value: value, Allowed: "on, off, 1, 0, true, false", Reason: "is not on or off"}
	}
	return nil
}

func parseInt(dst *int, key, value, allowed string) error {
	n, err := strconv.Atoi(strings.TrimSpace(value))
	if err != nil {
		return &Error{Setting: key, Value: value, Allowed: allowed, Reason: "is not a whole number"}
	}
	*dst = n
	return nil
}

func (s *Settings) setConsolePassword(value string) error {
	if value == "" {
		s.ConsolePassword = ""
		return nil
	}
	if !validConsolePassword(value) {
		return &Error{Setting: "console_password", Value: hidden,
			Allowed: fmt.Sprintf("empty (none), or 1 to %d characters without control characters", MaxPasswordLen)}
	}
	h, err := HashPassword(nil, value)
	if err != nil {
		return fmt.Errorf("console_password: %w", err)
	}
	s.ConsolePassword = h
	return nil
}
