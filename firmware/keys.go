package firmware

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/openmifi/openmifi/internal/entitlement"
)

// maxKeyFileSize bounds a private key file, which holds one line.
const maxKeyFileSize = 4 << 10

// ReadPrivateKey reads an ed25519 private key in the form opsign keygen
// writes it: the standard base64 encoding of the 64-byte key on one line.
// Image signing keys and operator keys share the form so that one tool
// makes both.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read private key %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("read private key %s: larger than %d bytes", path, maxKeyFileSize)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("read private key %s: not base64: %w", path, err)
	}
	if len(b) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("read private key %s: %d bytes, want %d", path, len(b), ed25519.PrivateKeySize)
	}
	return ed25519.PrivateKey(b), nil
}

// LoadPublicKeys reads the keys to verify images with from path: a key
// file as internal/entitlement reads it (one base64 key a line, # comments),
// or a directory whose *.pub files are read in name order. Finding no key
// is an error, since no image could pass.
func LoadPublicKeys(path string) ([]ed25519.PublicKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load image keys: %w", err)
	}
	var keys []ed25519.PublicKey
	if fi.IsDir() {
		keys, err = entitlement.LoadKeys(path)
	} else {
		keys, err = entitlement.ReadKeyFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("load image keys: %w", err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("load image keys: no keys in %s", path)
	}
	return keys, nil
}
