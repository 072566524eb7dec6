package usersettings

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// valid returns settings that pass Validate(5); tests change one thing.
func valid() Settings {
	return Settings{
		SSID:       "openmifi-1234",
		Passphrase: "correct horse",
		Band:       Band24,
		Channel:    6,
		Country:    "00",
		SIMPIN:     "1234",
	}
}

func TestDefaults(t *testing.T) {
	s, err := Defaults(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(1); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	if !regexp.MustCompile(`^openmifi-[0-9A-F]{4}$`).MatchString(s.SSID) {
		t.Errorf("SSID %q is not openmifi-XXXX", s.SSID)
	}
	if len(s.Passphrase) != 12 || strings.ContainsAny(s.Passphrase, "0O1lI") {
		t.Errorf("passphrase %q is not 12 unambiguous characters", s.Passphrase)
	}
	for _, c := range s.Passphrase {
		if !strings.ContainsRune(passphraseAlphabet, c) {
			t.Errorf("passphrase %q has %q, not in the alphabet", s.Passphrase, c)
		}
	}
	want := Settings{SSID: s.SSID, Passphrase: s.Passphrase, Band: Band24, Channel: 6, Country: "00"}
	if s != want {
		t.Errorf("Defaults = %+v, want %+v", s, want)
	}

	seen := map[string]bool{}
	for range 20 {
		s, err := Defaults(nil)
		if err != nil {
			t.Fatal(err)
		}
		seen[s.Passphrase] = true
	}
	if len(seen) < 20 {
		t.Errorf("20 calls gave only %d different passphrases", len(seen))
	}
}

func TestDefaultsRandomSource(t *testing.T) {
	src := bytes.Repeat([]byte{0xab, 0xcd, 3, 200}, 100)
	a, err := Defaults(bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Defaults(bytes.NewReader(src))
	if a != b {
		t.Errorf("same random bytes gave %+v and %+v", a, b)
	}
	if a.SSID != "openmifi-ABCD" {
		t.Errorf("SSID = %q, want openmifi-ABCD", a.SSID)
	}

	// Two bytes for the SSID and twelve usable ones are all it takes.
	if _, err := Defaults(bytes.NewReader(bytes.Repeat([]byte{7}, 14))); err != nil {
		t.Errorf("14 random bytes: %v", err)
	}
	if _, err := Defaults(bytes.NewReader([]byte{1, 2, 3})); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short random source: err = %v", err)
	}
	// Every byte is rejected by the sampling; this must fail, not hang.
	stuck := bytes.NewReader(bytes.Repeat([]byte{0xff}, 1<<20))
	if _, err := Defaults(stuck); err == nil {
		t.Error("stuck random source gave settings")
	}
}

func TestValidate(t *testing.T) {
	hex64 := strings.Repeat("0123456789abcdefABCDEF0123456789", 2)
	for _, tt := range []struct {
		name    string
		change  func(*Settings)
		setting string // "" if valid
	}{
		{"valid", func(*Settings) {}, ""},
		{"ssid 0 bytes", func(s *Settings) { s.SSID = "" }, "ssid"},
		{"ssid 1 byte", func(s *Settings) { s.SSID = "a" }, ""},
		{"ssid 32 bytes", func(s *Settings) { s.SSID = strings.Repeat("a", 32) }, ""},
		{"ssid 33 bytes", func(s *Settings) { s.SSID = strings.Repeat("a", 33) }, "ssid"},
		{"ssid 32 bytes of UTF-8", func(s *Settings) { s.SSID = strings.Repeat("ä", 16) }, ""},
		{"ssid 34 bytes of UTF-8", func(s *Settings) { s.SSID = strings.Repeat("ä", 17) }, "ssid"},
		{"ssid invalid UTF-8", func(s *Settings) { s.SSID = "a\xffb" }, "ssid"},
		{"ssid control character", func(s *Settings) { s.SSID = "a\nb" }, "ssid"},
		{"passphrase 7", func(s *Settings) { s.Passphrase = "1234567" }, "passphrase"},
		{"passphrase 8", func(s *Settings) { s.Passphrase = "12345678" }, ""},
		{"passphrase 63", func(s *Settings) { s.Passphrase = strings.Repeat("~", 63) }, ""},
		{"passphrase 64 hex", func(s *Settings) { s.Passphrase = hex64 }, ""},
		{"passphrase 64 non-hex", func(s *Settings) { s.Passphrase = strings.Repeat("g", 64) }, "passphrase"},
		{"passphrase 65 hex", func(s *Settings) { s.Passphrase = hex64 + "a" }, "passphrase"},
		{"passphrase empty", func(s *Settings) { s.Passphrase = "" }, "passphrase"},
		{"passphrase space", func(s *Settings) { s.Passphrase = "        " }, ""},
		{"passphrase non-ASCII", func(s *Settings) { s.Passphrase = "pässwörd" }, "passphrase"},
		{"passphrase tab", func(s *Settings) { s.Passphrase = "pass\tword" }, "passphrase"},
		{"passphrase DEL", func(s *Settings) { s.Passphrase = "password\x7f" }, "passphrase"},
		{"band empty", func(s *Settings) { s.Band = "" }, "band"},
		{"band lower case", func(s *Settings) { s.Band = "5ghz" }, "band"},
		{"2.4GHz channel 0", func(s *Settings) { s.Channel = 0 }, "channel"},
		{"2.4GHz channel 1", func(s *Settings) { s.Channel = 1 }, ""},
		{"2.4GHz channel 13", func(s *Settings) { s.Channel = 13 }, ""},
		{"2.4GHz channel 14", func(s *Settings) { s.Channel = 14 }, "channel"},
		{"2.4GHz channel 36", func(s *Settings) { s.Channel = 36 }, "channel"},
		{"5GHz channel 36", func(s *Settings) { s.Band, s.Channel = Band5, 36 }, ""},
		{"5GHz channel 48", func(s *Settings) { s.Band, s.Channel = Band5, 48 }, ""},
		{"5GHz channel 52 (DFS)", func(s *Settings) { s.Band, s.Channel = Band5, 52 }, "channel"},
		{"5GHz channel 100 (DFS)", func(s *Settings) { s.Band, s.Channel = Band5, 100 }, "channel"},
		{"5GHz channel 149", func(s *Settings) { s.Band, s.Channel = Band5, 149 }, ""},
		{"5GHz channel 165", func(s *Settings) { s.Band, s.Channel = Band5, 165 }, ""},
		{"5GHz channel 169", func(s *Settings) { s.Band, s.Channel = Band5, 169 }, "channel"},
		{"5GHz channel 6", func(s *Settings) { s.Band, s.Channel = Band5, 6 }, "channel"},
		{"5GHz channel 37", func(s *Settings) { s.Band, s.Channel = Band5, 37 }, "channel"},
		{"country US", func(s *Settings) { s.Country = "US" }, ""},
		{"country DE", func(s *Settings) { s.Country = "DE" }, ""},
		{"country lower case", func(s *Settings) { s.Country = "us" }, "country"},
		{"country unassigned", func(s *Settings) { s.Country = "XX" }, "country"},
		{"country empty", func(s *Settings) { s.Country = "" }, "country"},
		{"country 3 letters", func(s *Settings) { s.Country = "USA" }, "country"},
		{"country 01", func(s *Settings) { s.Country = "01" }, "country"},
		{"max_users -1", func(s *Settings) { s.MaxUsers = -1 }, "max_users"},
		{"max_users 0", func(s *Settings) { s.MaxUsers = 0 }, ""},
		{"max_users 1", func(s *Settings) { s.MaxUsers = 1 }, ""},
		{"max_users 5", func(s *Settings) { s.MaxUsers = 5 }, ""},
		{"max_users 6", func(s *Settings) { s.MaxUsers = 6 }, "max_users"},
		{"pin empty", func(s *Settings) { s.SIMPIN = "" }, ""},
		{"pin 3 digits", func(s *Settings) { s.SIMPIN = "123" }, "sim_pin"},
		{"pin 4 digits", func(s *Settings) { s.SIMPIN = "0000" }, ""},
		{"pin 8 digits", func(s *Settings) { s.SIMPIN = "12345678" }, ""},
		{"pin 9 digits", func(s *Settings) { s.SIMPIN = "123456789" }, "sim_pin"},
		{"pin letters", func(s *Settings) { s.SIMPIN = "12a4" }, "sim_pin"},
		{"pin non-ASCII digits", func(s *Settings) { s.SIMPIN = "١٢٣٤" }, "sim_pin"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.change(&s)
			err := s.Validate(5)
			if tt.setting == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if got := problems(t, err); !slices.Equal(got, []string{tt.setting}) {
				t.Fatalf("Validate = %v, want a problem with %s only", err, tt.setting)
			}
		})
	}
}

// problems returns the settings named by the *Error values joined in err.
func problems(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("%v is not a joined error", err)
	}
	var names []string
	for _, e := range j.Unwrap() {
		var se *Error
		if !errors.As(e, &se) {
			t.Fatalf("%v is not an *Error", e)
		}
		names = append(names, se.Setting)
	}
	return names
}

func TestValidateReportsAll(t *testing.T) {
	s := Settings{Band: Band5, Channel: 6, Country: "xx", MaxUsers: 9, SIMPIN: "1"}
	want := []string{"ssid", "passphrase", "channel", "country", "max_users", "sim_pin"}
	if got := problems(t, s.Validate(8)); !slices.Equal(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
}

func TestValidateNoOperatorLimit(t *testing.T) {
	s := valid()
	if err := s.Validate(0); err != nil {
		t.Errorf("MaxUsers 0 with no operator limit: %v", err)
	}
	s.MaxUsers = 1
	if err := s.Validate(0); err == nil {
		t.Error("MaxUsers 1 with no operator limit validates")
	}
}

func TestErrorMessages(t *testing.T) {
	for _, tt := range []struct {
		change func(*Settings)
		want   string
	}{
		{func(s *Settings) { s.SSID = "" }, `ssid: "" is out of range (allowed: 1 to 32 bytes)`},
		{func(s *Settings) { s.SSID = "a\x1b[2J" }, `ssid: "a\x1b[2J" is not printable UTF-8 text (allowed: 1 to 32 bytes of UTF-8 text without control characters)`},
		{func(s *Settings) { s.Band = "6GHz" }, `band: "6GHz" is out of range (allowed: 2.4GHz or 5GHz)`},
		{func(s *Settings) { s.Band, s.Channel = Band5, 52 }, `channel: "52" is out of range (allowed: 36, 40, 44, 48, 149, 153, 157, 161 or 165 on 5GHz)`},
		{func(s *Settings) { s.Country = "EU" }, `country: "EU" is not a regulatory domain (allowed: "00" (world) or an ISO 3166 country code such as US or DE)`},
		{func(s *Settings) { s.MaxUsers = 6 }, `max_users: "6" is out of range (allowed: 0 (the operator's limit) or 1 to 5)`},
		{func(s *Settings) { s.Passphrase = "short" }, `passphrase: (hidden) is out of range (allowed: 8 to 63 printable ASCII characters, or 64 hex digits)`},
		{func(s *Settings) { s.SIMPIN = "12" }, `sim_pin: (hidden) is out of range (allowed: empty, or 4 to 8 digits)`},
	} {
		s := valid()
		tt.change(&s)
		if err := s.Validate(5); err == nil || err.Error() != tt.want {
			t.Errorf("Validate = %v\nwant %s", err, tt.want)
		}
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	for _, secret := range []string{"1234567", "pässwörd-secret", strings.Repeat("g", 64), "secret\x00secret", strings.Repeat("x", 70)} {
		s := valid()
		s.Passphrase = secret
		err := s.Validate(5)
		if err == nil {
			t.Fatalf("passphrase %q validates", secret)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "secret") {
			t.Errorf("error shows the passphrase: %v", err)
		}
	}
	for _, pin := range []string{"123", "123456789", "12ab"} {
		s := valid()
		s.SIMPIN = pin
		err := s.Validate(5)
		if err == nil {
			t.Fatalf("PIN %q validates", pin)
		}
		if strings.Contains(err.Error(), pin) {
			t.Errorf("error shows the PIN: %v", err)
		}
	}
}

func TestGetSet(t *testing.T) {
	for _, tt := range []struct {
		key, value, get string
	}{
		{"ssid", "my net", "my net"},
		{"ssid", " spaced ", " spaced "},
		{"passphrase", " pass word ", " pass word "},
		{"hidden", "on", "on"},
		{"hidden", "1", "on"},
		{"hidden", "TRUE", "on"},
		{"hidden", "off", "off"},
		{"hidden", "0", "off"},
		{"hidden", "false", "off"},
		{"band", "5GHz", "5GHz"},
		{"band", "5ghz", "5GHz"},
		{"band", " 2.4ghz ", "2.4GHz"},
		{"band", "6GHz", "6GHz"},
		{"channel", "11", "11"},
		{"channel", " 1 ", "1"},
		{"channel", "-3", "-3"},
		{"country", "de", "DE"},
		{"max_users", "3", "3"},
		{"sharing", "on", "on"},
		{"sharing", "off", "off"},
	} {
		s := valid()
		if err := s.Set(tt.key, tt.value); err != nil {
			t.Errorf("Set(%q, %q): %v", tt.key, tt.value, err)
			continue
		}
		got, err := s.Get(tt.key)
		if err != nil || got != tt.get {
			t.Errorf("after Set(%q, %q): Get = %q, %v; want %q", tt.key, tt.value, got, err, tt.get)
		}
	}
}

func TestGetAllKeys(t *testing.T) {
	s := valid()
	for _, k := range Keys() {
		_, err := s.Get(k)
		if k == "sim_pin" {
			continue
		}
		if err != nil {
			t.Errorf("Get(%q): %v", k, err)
		}
		if err := s.Set(k, "1"); errors.Is(err, ErrUnknownKey) {
			t.Errorf("Set(%q) does not know the key", k)
		}
	}
	want := []string{"ssid", "passphrase", "hidden", "band", "channel", "country", "max_users", "sharing", "sim_pin",
		"console_password"}
	if !slices.Equal(Keys(), want) {
		t.Errorf("Keys = %q, want %q", Keys(), want)
	}
	Keys()[0] = "changed"
	if Keys()[0] != "ssid" {
		t.Error("Keys returns its own slice")
	}
}

func TestSIMPINWriteOnly(t *testing.T) {
	s := valid()
	if err := s.Set("sim_pin", "87654321"); err != nil {
		t.Fatal(err)
	}
	if s.SIMPIN != "87654321" {
		t.Errorf("SIMPIN = %q after Set", s.SIMPIN)
	}
	got, err := s.Get("sim_pin")
	if got != "" || !errors.Is(err, ErrWriteOnly) || err.Error() != "sim_pin is write-only" {
		t.Errorf(`Get("sim_pin") = %q, %v; want "", "sim_pin is write-only"`, got, err)
	}
	if strings.Contains(err.Error(), "87654321") {
		t.Error("error shows the PIN")
	}
}

func TestSetErrors(t *testing.T) {
	for _, tt := range []struct{ key, value string }{
		{"channel", "six"},
		{"channel", "6.0"},
		{"channel", ""},
		{"channel", "99999999999999999999999"},
		{"max_users", "many"},
		{"hidden", "maybe"},
		{"sharing", ""},
	} {
		s := valid()
		err := s.Set(tt.key, tt.value)
		var se *Error
		if !errors.As(err, &se) || se.Setting != tt.key || se.Value != tt.value || se.Allowed == "" {
			t.Errorf("Set(%q, %q) = %#v, want an *Error for the setting", tt.key, tt.value, err)
		}
		if s != valid() {
			t.Errorf("failed Set(%q, %q) changed the settings to %+v", tt.key, tt.value, s)
		}
	}

	s := valid()
	err := s.Set("colour", "red")
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"colour"`) ||
		!strings.Contains(err.Error(), strings.Join(Keys(), ", ")) {
		t.Errorf("Set of an unknown key = %v", err)
	}
	if _, err := s.Get("SSID"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Get of an unknown key = %v", err)
	}
}

func TestSetBand(t *testing.T) {
	for _, tt := range []struct {
		band    string
		channel int
		set     string
		want    Settings
	}{
		// A channel the new band lacks moves to the band's default.
		{Band24, 11, "5GHz", Settings{Band: Band5, Channel: 36}},
		{Band5, 149, "2.4GHz", Settings{Band: Band24, Channel: 6}},
		{Band24, 0, "5ghz", Settings{Band: Band5, Channel: 36}},
		// A channel valid on the new band stays.
		{Band24, 40, "5GHz", Settings{Band: Band5, Channel: 40}},
		{Band5, 13, "2.4GHz", Settings{Band: Band24, Channel: 13}},
		// No switch: nothing to repair, Validate reports.
		{Band24, 36, "2.4GHz", Settings{Band: Band24, Channel: 36}},
		// An unknown band leaves the channel to Validate.
		{Band24, 6, "60GHz", Settings{Band: "60GHz", Channel: 6}},
	} {
		s := Settings{Band: tt.band, Channel: tt.channel}
		if err := s.Set("band", tt.set); err != nil {
			t.Fatal(err)
		}
		if s != tt.want {
			t.Errorf("%s channel %d, set band %q: got %s channel %d, want %s channel %d",
				tt.band, tt.channel, tt.set, s.Band, s.Channel, tt.want.Band, tt.want.Channel)
		}
	}
}

func TestEffectiveMaxUsers(t *testing.T) {
	for _, tt := range []struct{ user, operator, want int }{
		{0, 5, 5},
		{3, 5, 3},
		{5, 5, 5},
		{8, 3, 3},
		{0, 8, 8},
	} {
		s := Settings{MaxUsers: tt.user}
		if got := s.EffectiveMaxUsers(tt.operator); got != tt.want {
			t.Errorf("user %d, operator %d: EffectiveMaxUsers = %d, want %d", tt.user, tt.operator, got, tt.want)
		}
	}
}
