package usersettings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openmifi/openmifi/internal/atomicfile"
)

const (
	fileVersion = 1
	// maxFileSize is far above any valid file; a larger one is corrupt.
	maxFileSize = 64 << 10
)

// fileV1 is the file's layout; its field names are the names in Keys. It is separate from Settings so that the
// file format does not change when the Go type does, and so that Settings
// has no JSON form that could carry the secrets out through some other
// encoder.
type fileV1 struct {
	Version    int    `json:"version"`
	SSID       string `json:"ssid"`
	Passphrase string `json:"passphrase"`
	Hidden     bool   `json:"hidden"`
	Band       string `json:"band"`
	Channel    int    `json:"channel"`
	Country    string `json:"country"`
	MaxUsers   int    `json:"max_users"`
	Sharing    bool   `json:"sharing"`
	SIMPIN     string `json:"sim_pin"`
	// ConsolePassword is a hash (see HashPassword), never the password.
	// It is left out when there is none, so that a file without one
	// stays as earlier releases wrote and read it.
	ConsolePassword string `json:"console_password,omitempty"`
}

func encode(s Settings) ([]byte, error) {
	b, err := json.MarshalIndent(fileV1{
		Version:    fileVersion,
		SSID:       s.SSID,
		Passphrase: s.Passphrase,
		Hidden:     s.Hidden,
		Band:       s.Band,
		Channel:    s.Channel,
		Country:    s.Country,
		MaxUsers:   s.MaxUsers,
		Sharing:    s.Sharing,
		SIMPIN:     s.SIMPIN,

		ConsolePassword: s.ConsolePassword,
	}, "", "\t")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// decode reads a settings file and validates it, allowing a MaxUsers up to
// maxUsers. Its errors never quote the file's values.
func decode(data []byte, maxUsers int) (Settings, error) {
	if len(data) > maxFileSize {
		return Settings{}, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	// The version comes first so that a file from a newer release is
	// reported as such rather than as one with unknown fields.
	var v struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return Settings{}, jsonError(err, len(data))
	}
	if v.Version != fileVersion {
		return Settings{}, fmt.Errorf("version %d, want %d", v.Version, fileVersion)
	}
	// Unmarshal has seen that data is a single JSON object; what is left
	// is to decode it strictly.
	if err := checkKeys(data); err != nil {
		return Settings{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f fileV1
	if err := dec.Decode(&f); err != nil {
		return Settings{}, jsonError(err, len(data))
	}
	s := Settings{
		SSID:       f.SSID,
		Passphrase: f.Passphrase,
		Hidden:     f.Hidden,
		Band:       f.Band,
		Channel:    f.Channel,
		Country:    f.Country,
		MaxUsers:   f.MaxUsers,
		Sharing:    f.Sharing,
		SIMPIN:     f.SIMPIN,

		ConsolePassword: f.ConsolePassword,
	}
	if err := s.validate(maxUsers); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// checkKeys refuses what encoding/json would let through: a field name in
// another case and a field given twice, neither of which we ever write.
// data must be a well-formed JSON object.
func checkKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return jsonError(err, len(data))
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return jsonError(err, len(data))
		}
		key, _ := tok.(string)
		if key != "version" && !slices.Contains(keys, key) {
			return fmt.Errorf("unknown field %q", key)
		}
		if seen[key] {
			return fmt.Errorf("field %q given twice", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return jsonError(err, len(data))
		}
	}
	return nil
}

// jsonError rewords encoding/json's errors, some of which quote the input
// (a SIM PIN written as a number, a control character in a passphrase).
func jsonError(err error, size int) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax) && syntax.Offset >= int64(size):
		return errors.New("truncated JSON")
	case errors.As(err, &syntax):
		return fmt.Errorf("invalid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ) && typ.Field == "":
		return errors.New("not a JSON object")
	case errors.As(err, &typ):
		return fmt.Errorf("%s: wrong JSON type, want %v", typ.Field, typ.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("truncated JSON")
	}
	// What is left names a field, not a value: `json: unknown field "x"`.
	return err
}

// CorruptError reports a settings file that could not be trusted and was
// moved aside. Open returns it together with a usable Store: it is a
// warning for the user and the logs, not a failure.
type CorruptError struct {
	Path    string
	MovedTo string
	Err     error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("settings file %s is unusable (%v); moved to %s, using defaults", e.Path, e.Err, e.MovedTo)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// Store owns the settings file. Its methods are safe for concurrent use.
type Store struct {
	path string
	mu   sync.Mutex // serializes Update, so one file write at a time
	cur  atomic.Pointer[Settings]
}

// Open loads the settings at path.
//
// A missing file is created with Defaults, so that the random SSID and
// passphrase stay the same across reboots. A file that is not valid JSON
// of version 1, has unknown fields or fails validation is never trusted
// and never deleted: it is renamed to path+".corrupt-"+a UTC timestamp,
// defaults are saved in its place, and Open returns the Store together with
// a *CorruptError. Any other error (the file cannot be read, or the new one
// cannot be written) returns no Store. The directory must exist.
//
// A stored MaxUsers above operatorMaxUsers is not corruption: the operator
// may have lowered its limit since. The value is kept and
// EffectiveMaxUsers clamps it.
func Open(path string, operatorMaxUsers int, rand io.Reader) (*Store, error) {
	st := &Store{path: path}
	data, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := st.reset(rand); err != nil {
			return nil, err
		}
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load settings: %w", err)
	}
	s, err := decode(data, max(operatorMaxUsers, MaxUsersLimit))
	if err == nil {
		st.cur.Store(&s)
		return st, nil
	}
	cerr := &CorruptError{Path: path, Err: err}
	if cerr.MovedTo, err = moveAside(path); err != nil {
		return nil, err
	}
	if err := st.reset(rand); err != nil {
		return nil, err
	}
	return st, cerr
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// One byte more than allowed is enough for decode to refuse it.
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// moveAside renames a corrupt file out of the way, keeping its bytes for
// whoever wants to find out what went wrong.
func moveAside(path string) (string, error) {
	base := path + ".corrupt-" + time.Now().UTC().Format("20060102T150405Z")
	to := base
	for i := 1; ; i++ {
		_, err := os.Lstat(to)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("move corrupt settings aside: %w", err)
		}
		if i > 100 {
			return "", fmt.Errorf("move corrupt settings aside: %s exists", to)
		}
		to = fmt.Sprintf("%s.%d", base, i)
	}
	if err := os.Rename(path, to); err != nil {
		return "", fmt.Errorf("move corrupt settings aside: %w", err)
	}
	return to, nil
}

// reset saves and publishes fresh defaults.
func (st *Store) reset(rand io.Reader) error {
	s, err := Defaults(rand)
	if err != nil {
		return fmt.Errorf("default settings: %w", err)
	}
	if err := st.save(s); err != nil {
		return err
	}
	st.cur.Store(&s)
	return nil
}

func (st *Store) save(s Settings) error {
	data, err := encode(s)
	if err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	// 0600: the file holds the passphrase and the SIM PIN (and the
	// console password's hash, which need not help a guesser either).
	if err := atomicfile.Write(st.path, data, 0o600); err != nil {
		return fmt.Errorf("save settings: %w", err)
	}
	return nil
}

// FileName is the settings file's name in hotspotd's state directory.
const FileName = "user.json"

// Load reads the settings file at path, checked as Open checks it, but
// never writes, renames or creates anything: it is for readers other than
// the Store's owner, such as the init, which asks for the console password
// from the file hotspotd keeps. A MaxUsers up to MaxUsersLimit is
// accepted. Its errors never quote the file's values.
func Load(path string) (Settings, error) {
	data, err := readFile(path)
	if err != nil {
		return Settings{}, fmt.Errorf("load settings: %w", err)
	}
	s, err := decode(data, MaxUsersLimit)
	if err != nil {
		return Settings{}, fmt.Errorf("settings file %s: %w", path, err)
	}
	return s, nil
}

// Get returns the current settings.
func (st *Store) Get() Settings {
	return *st.cur.Load()
}

// Update applies f to a copy of the settings, validates the result against
// operatorMaxUsers, saves it and only then makes it current. On any error,
// from f included (returned as is), the old settings stay current and on
// disk, and Update returns them with the error. An Update that changes
// nothing does not write the file.
//
// A stored MaxUsers above a since-lowered operatorMaxUsers is accepted as
// long as f leaves it alone, so that unrelated changes (such as the on/off
// choice) still succeed; a new MaxUsers must be within the operator's limit.
func (st *Store) Update(operatorMaxUsers int, f func(*Settings) error) (Settings, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	old := *st.cur.Load()
	s := old
	if err := f(&s); err != nil {
		return old, err
	}
	limit := operatorMaxUsers
	if s.MaxUsers == old.MaxUsers {
		limit = max(limit, old.MaxUsers)
	}
	if err := s.validate(limit); err != nil {
		return old, err
	}
	if s == old {
		return s, nil
	}
	if err := st.save(s); err != nil {
		return old, err
	}
	st.cur.Store(&s)
	return s, nil
}
