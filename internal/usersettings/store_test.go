package usersettings

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const goodFile = `{
	"version": 1,
	"ssid": "kitchen",
	"passphrase": "correct horse",
	"hidden": true,
	"band": "5GHz",
	"channel": 149,
	"country": "DE",
	"max_users": 3,
	"sharing": true,
	"sim_pin": "4321"
}
`

var goodSettings = Settings{
	SSID:       "kitchen",
	Passphrase: "correct horse",
	Hidden:     true,
	Band:       Band5,
	Channel:    149,
	Country:    "DE",
	MaxUsers:   3,
	Sharing:    true,
	SIMPIN:     "4321",
}

func TestOpenMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.json")
	st, err := Open(path, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := st.Get()
	if err := s.Validate(5); err != nil {
		t.Errorf("created settings do not validate: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("Open did not save the defaults: %v", err)
	}
	if fi.Mode() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode())
	}

	// The random passphrase must survive a reboot.
	st2, err := Open(path, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Get() != s {
		t.Errorf("reopened settings %+v differ from created %+v", st2.Get(), s)
	}
}

func TestOpenGood(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.json")
	writeFile(t, path, goodFile)
	st, err := Open(path, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Get(); got != goodSettings {
		t.Errorf("Get = %+v, want %+v", got, goodSettings)
	}
	if got := fileContent(t, path); got != goodFile {
		t.Errorf("Open rewrote a good file:\n%s", got)
	}
}

func TestEncodeMatchesDocumentedFormat(t *testing.T) {
	b, err := encode(goodSettings)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != goodFile {
		t.Errorf("encode =\n%s\nwant\n%s", b, goodFile)
	}
}

func TestOpenCorrupt(t *testing.T) {
	for _, tt := range []struct {
		name, data, err string
	}{
		{"empty", "", "truncated JSON"},
		{"truncated", goodFile[:40], "truncated JSON"},
		{"garbage", "\x00\x01\x02", "invalid JSON at byte 1"},
		{"trailing data", goodFile + "{}", "invalid JSON"},
		{"null", "null", "version 0, want 1"},
		{"array", "[1]", "not a JSON object"},
		{"no version", `{"ssid": "x"}`, "version 0, want 1"},
		{"version 2", strings.Replace(goodFile, `"version": 1`, `"version": 2, "wpa3": true`, 1), "version 2, want 1"},
		{"version as string", strings.Replace(goodFile, `"version": 1`, `"version": "1"`, 1), "version: wrong JSON type"},
		{"unknown field", strings.Replace(goodFile, `"hidden": true`, `"hiden": true`, 1), `unknown field "hiden"`},
		{"field in upper case", strings.Replace(goodFile, `"ssid"`, `"SSID"`, 1), `unknown field "SSID"`},
		{"field twice", strings.Replace(goodFile, `"hidden": true`, `"hidden": true, "hidden": false`, 1), `field "hidden" given twice`},
		{"wrong type", strings.Replace(goodFile, `"channel": 149`, `"channel": "149"`, 1), "channel: wrong JSON type, want int"},
		{"invalid channel", strings.Replace(goodFile, `"channel": 149`, `"channel": 6`, 1), `channel: "6" is out of range`},
		{"invalid ssid", strings.Replace(goodFile, `"ssid": "kitchen"`, `"ssid": ""`, 1), `ssid: "" is out of range`},
		{"max_users above any operator", strings.Replace(goodFile, `"max_users": 3`, `"max_users": 9`, 1), "max_users"},
		{"too large", goodFile + strings.Repeat(" ", maxFileSize), "larger than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "settings.json")
			writeFile(t, path, tt.data)
			st, err := Open(path, 5, nil)
			var cerr *CorruptError
			if !errors.As(err, &cerr) {
				t.Fatalf("Open = %v, want a *CorruptError", err)
			}
			if st == nil {
				t.Fatal("Open returned no Store with the CorruptError")
			}
			t.Log(err)
			if !strings.Contains(cerr.Err.Error(), tt.err) {
				t.Errorf("error %q does not mention %q", cerr.Err, tt.err)
			}
			if cerr.Path != path || !strings.HasPrefix(cerr.MovedTo, path+".corrupt-") {
				t.Errorf("CorruptError{Path: %q, MovedTo: %q}", cerr.Path, cerr.MovedTo)
			}
			if got := fileContent(t, cerr.MovedTo); got != tt.data {
				t.Errorf("moved-aside file changed: %q", got)
			}
			if err := st.Get().Validate(5); err != nil {
				t.Errorf("settings after corruption do not validate: %v", err)
			}
			st2, err := Open(path, 5, nil)
			if err != nil {
				t.Fatalf("defaults were not saved: %v", err)
			}
			if st2.Get() != st.Get() {
				t.Errorf("saved defaults %+v differ from the Store's %+v", st2.Get(), st.Get())
			}
			if _, err := st.Update(5, func(s *Settings) error { s.Sharing = true; return nil }); err != nil {
				t.Errorf("Store unusable after corruption: %v", err)
			}
		})
	}
}

func TestOpenCorruptTwice(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "settings.json")
	var moved []string
	for i := range 3 {
		data := "broken " + strconv.Itoa(i)
		writeFile(t, path, data)
		_, err := Open(path, 5, nil)
		var cerr *CorruptError
		if !errors.As(err, &cerr) {
			t.Fatalf("Open = %v, want a *CorruptError", err)
		}
		if got := fileContent(t, cerr.MovedTo); got != data {
			t.Errorf("%s holds %q, want %q", cerr.MovedTo, got, data)
		}
		moved = append(moved, cerr.MovedTo)
	}
	for i := range moved {
		if got := fileContent(t, moved[i]); got != "broken "+strconv.Itoa(i) {
			t.Errorf("%s was overwritten: %q", moved[i], got)
		}
	}
}

func TestOpenIOError(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should be cannot be read.
	st, err := Open(dir, 5, nil)
	var cerr *CorruptError
	if st != nil || err == nil || errors.As(err, &cerr) {
		t.Errorf("Open(directory) = %v, %v; want no Store and an I/O error", st, err)
	}

	st, err = Open(filepath.Join(dir, "missing", "settings.json"), 5, nil)
	if st != nil || err == nil {
		t.Errorf("Open in a missing directory = %v, %v; want an error", st, err)
	}
}

func TestCorruptErrorHidesSecrets(t *testing.T) {
	for _, data := range []string{
		strings.Replace(goodFile, `"sim_pin": "4321"`, `"sim_pin": 98765`, 1),
		strings.Replace(goodFile, `"sim_pin": "4321"`, `"sim_pin": "98765x"`, 1),
		strings.Replace(goodFile, `"passphrase": "correct horse"`, `"passphrase": "98765`+"\x01"+`"`, 1),
		strings.Replace(goodFile, `"passphrase": "correct horse"`, `"passphrase": "98765"`, 1),
		strings.Replace(goodFile, `"passphrase": "correct horse"`, `"passphrase": 98765`, 1),
		strings.Replace(goodFile, `"passphrase": "correct horse"`, `"passphrase": "98765\q"`, 1),
	} {
		path := filepath.Join(t.TempDir(), "settings.json")
		writeFile(t, path, data)
		_, err := Open(path, 5, nil)
		if err == nil {
			t.Fatalf("Open accepted %s", data)
		}
		if strings.Contains(err.Error(), "98765") {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

func TestMaxUsersAboveLoweredOperatorLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.json")
	writeFile(t, path, strings.Replace(goodFile, `"max_users": 3`, `"max_users": 8`, 1))
	st, err := Open(path, 2, nil)
	if err != nil {
		t.Fatalf("Open with a lowered operator limit: %v", err)
	}
	if got := st.Get().MaxUsers; got != 8 {
		t.Errorf("MaxUsers = %d, want the stored 8", got)
	}
	if got := st.Get().EffectiveMaxUsers(2); got != 2 {
		t.Errorf("EffectiveMaxUsers = %d, want 2", got)
	}
	// Unrelated changes still work and keep the stored value.
	s, err := st.Update(2, func(s *Settings) error { s.Sharing = false; return nil })
	if err != nil || s.MaxUsers != 8 {
		t.Errorf("Update of sharing = %+v, %v; want MaxUsers 8 kept", s, err)
	}
	// A new choice must fit the operator's limit.
	if _, err := st.Update(2, func(s *Settings) error { s.MaxUsers = 7; return nil }); err == nil {
		t.Error("MaxUsers 7 accepted under an operator limit of 2")
	}
	if s, err := st.Update(2, func(s *Settings) error { s.MaxUsers = 2; return nil }); err != nil || s.MaxUsers != 2 {
		t.Errorf("Update to MaxUsers 2 = %+v, %v", s, err)
	}
}

func TestUpdate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.json")
	writeFile(t, path, goodFile)
	st, err := Open(path, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Update(5, func(s *Settings) error {
		if err := s.Set("band", "2.4GHz"); err != nil {
			return err
		}
		return s.Set("ssid", "living room")
	})
	if err != nil {
		t.Fatal(err)
	}
	want := goodSettings
	want.Band, want.Channel, want.SSID = Band24, 6, "living room"
	if got != want || st.Get() != want {
		t.Errorf("Update = %+v, Get = %+v; want %+v", got, st.Get(), want)
	}
	st2, err := Open(path, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Get() != want {
		t.Errorf("reopened = %+v, want %+v", st2.Get(), want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode())
	}
}

func TestUpdateFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "settings.json")
	writeFile(t, path, goodFile)
	st, err := Open(path, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	errMine := errors.New("changed my mind")
	for _, tt := range []struct {
		name string
		f    func(*Settings) error
		is   error
	}{
		{"f fails", func(s *Settings) error { s.SSID = "half done"; return errMine }, errMine},
		{"invalid", func(s *Settings) error { s.SSID = "ok"; s.Passphrase = "short"; return nil }, nil},
		{"set fails", func(s *Settings) error { return s.Set("channel", "x") }, nil},
	} {
		got, err := st.Update(5, tt.f)
		if err == nil || tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("%s: Update error = %v", tt.name, err)
		}
		if got != goodSettings || st.Get() != goodSettings {
			t.Errorf("%s: Update = %+v, Get = %+v; want the old settings", tt.name, got, st.Get())
		}
		if fileContent(t, path) != goodFile {
			t.Errorf("%s: file changed", tt.name)
		}
	}

	// The file cannot be written at all: memory must not run ahead of disk.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(5, func(s *Settings) error { s.Hidden = false; return nil }); err == nil {
		t.Error("Update without a directory succeeded")
	}
	if st.Get() != goodSettings {
		t.Errorf("failed save changed the settings to %+v", st.Get())
	}
	// Nothing to save: no write, no error.
	if _, err := st.Update(5, func(s *Settings) error { return nil }); err != nil {
		t.Errorf("Update without a change: %v", err)
	}
}

func TestUpdateConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.json")
	writeFile(t, path, strings.Replace(goodFile, `"ssid": "kitchen"`, `"ssid": "0"`, 1))
	st, err := Open(path, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	const workers, updates = 8, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range updates {
				_, err := st.Update(5, func(s *Settings) error {
					n, err := strconv.Atoi(s.SSID)
					if err != nil {
						return err
					}
					s.SSID = strconv.Itoa(n + 1)
					return nil
				})
				if err != nil {
					t.Error(err)
				}
				_ = st.Get()
			}
		})
	}
	wg.Wait()
	want := strconv.Itoa(workers * updates)
	if got := st.Get().SSID; got != want {
		t.Errorf("SSID = %q after %s increments", got, want)
	}
	st2, err := Open(path, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := st2.Get().SSID; got != want {
		t.Errorf("file holds SSID %q after %s increments", got, want)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func fileContent(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
