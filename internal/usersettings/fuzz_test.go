package usersettings

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the file decoder: a damaged settings
// file must give an error, never a panic, and whatever it accepts must
// survive being saved and loaded again unchanged.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(goodFile))
	f.Add([]byte(strings.Replace(goodFile, `"sim_pin": "4321"`,
		`"sim_pin": "4321", "console_password": "pbkdf2-sha256$10000$AAAAAAAAAAAAAAAAAAAAAA$`+strings.Repeat("A", 42)+`E"`, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decode(data, MaxUsersLimit)
		if err != nil {
			return
		}
		out, err := encode(s)
		if err != nil {
			t.Fatalf("encode %+v: %v", s, err)
		}
		s2, err := decode(out, MaxUsersLimit)
		if err != nil {
			t.Fatalf("saved settings do not load: %v\n%s", err, out)
		}
		if s2 != s {
			t.Fatalf("round trip changed %+v to %+v", s, s2)
		}
		out2, err := encode(s2)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", out, out2)
		}
	})
}
