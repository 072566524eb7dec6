package usersettings

import (
	"crypto/pbkdf2"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The console password is kept only as a salted PBKDF2-HMAC-SHA256 hash,
// written as "pbkdf2-sha256$ITERATIONS$SALT$KEY" (salt and key in
// unpadded standard base64), so that the settings file, a backup of it or
// a corrupt copy moved aside never gives the password away, and so that a
// stronger scheme can be added later beside this one.
const (
	passwordScheme = "pbkdf2-sha256"

	// PasswordIterations is the PBKDF2 work for a new hash. The hash is
	// checked on the device itself, whose MIPS or ARM core of a few
	// hundred MHz computes SHA-256 at a few MB/s in Go: 10000 iterations
	// (about 20000 SHA-256 blocks) keep a console login under about a
	// quarter of a second there, while still making each guess against
	// a stolen file cost 10000 HMACs. Far higher counts would make the
	// console feel broken; the serial line itself limits online guessing,
	// with the init's back-off on top.
	PasswordIterations = 10000

	// minIterations and maxIterations bound what a stored hash may ask
	// for: below, the hash is too weak to be one we wrote; above, a
	// crafted file could keep the init busy for minutes per login.
	minIterations = 1000
	maxIterations = 1000000

	saltLen    = 16
	minSaltLen = 8
	maxSaltLen = 64
	keyLen     = sha256.Size

	// MaxPasswordLen bounds a console password; it is typed on a serial
	// console whose line discipline keeps at most 4095 bytes of a line.
	MaxPasswordLen = 128
)

var b64 = base64.RawStdEncoding.Strict()

// ErrBadPasswordHash is wrapped by CheckPassword for a hash string that
// is not of the form HashPassword writes.
var ErrBadPasswordHash = errors.New("malformed password hash")

// HashPassword returns a new hash of password with a random salt from
// rand (nil means crypto/rand).
func HashPassword(rand io.Reader, password string) (string, error) {
	if rand == nil {
		rand = crand.Reader
	}
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key, err := pbkdf2.Key(sha256.New, password, salt, PasswordIterations, keyLen)
	if err != nil {
		return "", fmt.Errorf("password hash: %w", err)
	}
	return passwordScheme + "$" + strconv.Itoa(PasswordIterations) + "$" +
		b64.EncodeToString(salt) + "$" + b64.EncodeToString(key), nil
}

// CheckPassword reports whether password matches hash, comparing in
// constant time. A malformed hash matches nothing and gives an error
// wrapping ErrBadPasswordHash.
func CheckPassword(hash, password string) (bool, error) {
	iter, salt, want, err := parsePasswordHash(hash)
	if err != nil {
		return false, err
	}
	got, err := pbkdf2.Key(sha256.New, password, salt, iter, len(want))
	if err != nil {
		return false, fmt.Errorf("password hash: %w", err)
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// ValidPasswordHash reports whether hash has the form HashPassword
// writes, such as a board's default console password.
func ValidPasswordHash(hash string) bool {
	_, _, _, err := parsePasswordHash(hash)
	return err == nil
}

// parsePasswordHash reads a stored hash. Only the canonical form is
// accepted (decimal iterations without sign or leading zero, strict
// base64), so that a hash that loads is saved again byte for byte. Its
// errors never quote the hash.
func parsePasswordHash(hash string) (iter int, salt, key []byte, err error) {
	bad := func(what string) (int, []byte, []byte, error) {
		return 0, nil, nil, fmt.Errorf("%w: %s", ErrBadPasswordHash, what)
	}
	parts := strings.Split(hash, "$")
	if len(parts) != 4 {
		return bad("want scheme$iterations$salt$key")
	}
	if parts[0] != passwordScheme {
		return bad("unknown scheme")
	}
	n := parts[1]
	if n == "" || len(n) > 7 || n[0] == '0' || strings.ContainsFunc(n, func(r rune) bool { return r < '0' || r > '9' }) {
		return bad("iterations are not a number")
	}
	iter, _ = strconv.Atoi(n)
	if iter < minIterations || iter > maxIterations {
		return bad(fmt.Sprintf("iterations not in %d..%d", minIterations, maxIterations))
	}
	if salt, err = b64.DecodeString(parts[2]); err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return bad(fmt.Sprintf("salt is not %d to %d bytes of base64", minSaltLen, maxSaltLen))
	}
	if key, err = b64.DecodeString(parts[3]); err != nil || len(key) != keyLen {
		return bad(fmt.Sprintf("key is not %d bytes of base64", keyLen))
	}
	return iter, salt, key, nil
}

// validConsolePassword is what a console password may be: something that
// can be typed at a line-editing console, where control characters erase,
// interrupt or end the line.
func validConsolePassword(p string) bool {
	return len(p) >= 1 && len(p) <= MaxPasswordLen && utf8.ValidString(p) &&
		!strings.ContainsFunc(p, unicode.IsControl)
}
