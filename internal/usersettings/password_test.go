package usersettings

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var hashForm = regexp.MustCompile(`^pbkdf2-sha256\$10000\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashPasswordRoundTrip(t *testing.T) {
	h, err := HashPassword(bytes.NewReader(make([]byte, 16)), "open sesame")
	if err != nil {
		t.Fatal(err)
	}
	if !hashForm.MatchString(h) {
		t.Fatalf("hash %q is not of the documented form", h)
	}
	if strings.Contains(h, "sesame") {
		t.Fatal("hash holds the password")
	}
	for _, tt := range []struct {
		pw   string
		want bool
	}{
		{"open sesame", true},
		{"open sesame ", false},
		{"Open sesame", false},
		{"", false},
	} {
		ok, err := CheckPassword(h, tt.pw)
		if err != nil || ok != tt.want {
			t.Errorf("CheckPassword(%q) = %v, %v; want %v", tt.pw, ok, err, tt.want)
		}
	}

	// The salt comes from rand: the same password hashes differently.
	h2, err := HashPassword(nil, "open sesame")
	if err != nil {
		t.Fatal(err)
	}
	if h2 == h {
		t.Error("two hashes of one password are equal")
	}
	if ok, err := CheckPassword(h2, "open sesame"); !ok || err != nil {
		t.Errorf("CheckPassword with a random salt = %v, %v", ok, err)
	}
}

func TestHashPasswordRandFails(t *testing.T) {
	if _, err := HashPassword(bytes.NewReader(make([]byte, 5)), "pw"); err == nil {
		t.Error("a short random source gives a hash")
	}
}

func TestCheckPasswordMalformed(t *testing.T) {
	good, err := HashPassword(nil, "pw")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	for name, h := range map[string]string{
		"empty":              "",
		"three parts":        strings.Join(parts[:3], "$"),
		"five parts":         good + "$x",
		"scheme":             with(0, "pbkdf2-sha1"),
		"iterations word":    with(1, "many"),
		"iterations zero":    with(1, "0"),
		"iterations leading": with(1, "010000"),
		"iterations sign":    with(1, "+10000"),
		"iterations low":     with(1, "999"),
		"iterations high":    with(1, "1000001"),
		"salt padded":        with(2, parts[2]+"=="),
		"salt not base64":    with(2, "!!!!!!!!!!!!!!!!!!!!!!"),
		"salt short":         with(2, "AAAA"),
		"key short":          with(3, parts[3][:40]),
		"key padded":         with(3, parts[3]+"="),
		"plain password":     "pw",
	} {
		ok, err := CheckPassword(h, "pw")
		if ok || !errors.Is(err, ErrBadPasswordHash) {
			t.Errorf("%s: CheckPassword = %v, %v; want false, ErrBadPasswordHash", name, ok, err)
		}
		if err != nil && h != "" && strings.Contains(err.Error(), h) {
			t.Errorf("%s: error quotes the hash: %v", name, err)
		}
		if ValidPasswordHash(h) {
			t.Errorf("%s: ValidPasswordHash(%q)", name, h)
		}
	}
	if !ValidPasswordHash(good) {
		t.Errorf("ValidPasswordHash(%q) = false", good)
	}
}

func TestSetConsolePassword(t *testing.T) {
	s := valid()
	if got, err := s.Get("console_password"); got != "(not set)" || err != nil {
		t.Errorf("Get before Set = %q, %v", got, err)
	}
	if err := s.Set("console_password", "hunter2 x"); err != nil {
		t.Fatal(err)
	}
	if !hashForm.MatchString(s.ConsolePassword) {
		t.Fatalf("stored %q, want a hash", s.ConsolePassword)
	}
	if ok, err := CheckPassword(s.ConsolePassword, "hunter2 x"); !ok || err != nil {
		t.Errorf("stored hash does not check: %v, %v", ok, err)
	}
	if err := s.Validate(5); err != nil {
		t.Errorf("Validate: %v", err)
	}
	got, err := s.Get("console_password")
	if got != "(set)" || err != nil {
		t.Errorf("Get = %q, %v; want (set)", got, err)
	}

	// A refused password changes nothing and is not shown.
	before := s.ConsolePassword
	for _, bad := range []string{"hunt\ner2", "tab\tbed", "\x1b[A", strings.Repeat("p", MaxPasswordLen+1), "bad\xffutf8"} {
		err := s.Set("console_password", bad)
		var e *Error
		if !errors.As(err, &e) || e.Setting != "console_password" || e.Value != hidden {
			t.Errorf("Set(%q) = %v; want a hidden *Error", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), bad) {
			t.Errorf("error shows the password: %v", err)
		}
		if s.ConsolePassword != before {
			t.Errorf("failed Set(%q) changed the password", bad)
		}
	}
	if err := s.Set("console_password", strings.Repeat("p", MaxPasswordLen)); err != nil {
		t.Errorf("longest password: %v", err)
	}

	if err := s.Set("console_password", ""); err != nil || s.ConsolePassword != "" {
		t.Errorf("Set empty = %v, stored %q; want cleared", err, s.ConsolePassword)
	}
}

func TestValidateConsolePasswordHash(t *testing.T) {
	s := valid()
	s.ConsolePassword = "topsecret"
	err := s.Validate(5)
	if err == nil || !strings.Contains(err.Error(), "console_password") {
		t.Fatalf("Validate of a plain password = %v", err)
	}
	if strings.Contains(err.Error(), "topsecret") {
		t.Errorf("error shows the stored value: %v", err)
	}
}

func TestConsolePasswordPersisted(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	st, err := Open(path, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(5, func(s *Settings) error { return s.Set("console_password", "letmein!") }); err != nil {
		t.Fatal(err)
	}
	hash := st.Get().ConsolePassword
	data := fileContent(t, path)
	if strings.Contains(data, "letmein") || !strings.Contains(data, `"console_password": "`+hash+`"`) {
		t.Errorf("file does not hold just the hash:\n%s", data)
	}

	st2, err := Open(path, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Get().ConsolePassword != hash {
		t.Errorf("reopened hash %q, want %q", st2.Get().ConsolePassword, hash)
	}
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := CheckPassword(s.ConsolePassword, "letmein!"); !ok {
		t.Error("Load's hash does not check")
	}

	// Clearing it leaves the field out, as before there was one.
	if _, err := st2.Update(5, func(s *Settings) error { return s.Set("console_password", "") }); err != nil {
		t.Fatal(err)
	}
	if data := fileContent(t, path); strings.Contains(data, "console_password") {
		t.Errorf("cleared password still in the file:\n%s", data)
	}
}

func TestLoadChangesNothing(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, FileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file = %v, want ErrNotExist", err)
	}
	path := filepath.Join(dir, FileName)
	bad := strings.Replace(goodFile, `"sim_pin": "4321"`, `"sim_pin": "4321", "console_password": "hunter2"`, 1)
	writeFile(t, path, bad)
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "console_password") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Load of a plain-text password = %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || fileContent(t, path) != bad {
		t.Errorf("Load changed the directory: %v", entries)
	}
}

// FuzzPasswordHash feeds arbitrary strings to the hash parser, which reads
// the settings file and the board: it must not panic, and what it accepts
// must be the canonical form, written back byte for byte.
func FuzzPasswordHash(f *testing.F) {
	f.Add("pbkdf2-sha256$10000$AAAAAAAAAAAAAAAAAAAAAA$" + strings.Repeat("A", 42) + "E")
	f.Add("pbkdf2-sha256$1000$AAAAAAAAAAA$AAAA")
	f.Add("pbkdf2-sha256$$$")
	f.Fuzz(func(t *testing.T, h string) {
		iter, salt, key, err := parsePasswordHash(h)
		if err != nil {
			return
		}
		again := strings.Join([]string{passwordScheme, strconv.Itoa(iter), b64.EncodeToString(salt), b64.EncodeToString(key)}, "$")
		if again != h {
			t.Fatalf("accepted %q, which is written as %q", h, again)
		}
	})
}

// BenchmarkCheckPassword is the cost of one console login attempt; see
// PasswordIterations for what it should be on the device.
func BenchmarkCheckPassword(b *testing.B) {
	h, err := HashPassword(nil, "open sesame")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		CheckPassword(h, "open sesame")
	}
}
