package entitlement

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	// maxPluginSize bounds what Check reads into memory. Plugins are small
	// programs; anything near this is a mistake, and the whole file has to
	// fit in RAM on a device with little of it.
	maxPluginSize = 64 << 20
	// maxTextSize bounds key and signature files, which hold a few lines.
	maxTextSize = 64 << 10
)

// LoadKeys reads the operator's public keys from every *.pub file in dir, in
// name order. A directory without key files gives no keys and no error;
// Check then fails every plugin. A missing directory is an error that
// satisfies errors.Is(err, fs.ErrNotExist).
func LoadKeys(dir string) ([]ed25519.PublicKey, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load operator keys: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".pub") && !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var keys []ed25519.PublicKey
	for _, name := range names {
		k, err := ReadKeyFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("load operator keys: %w", err)
		}
		keys = append(keys, k...)
	}
	return keys, nil
}

// ReadKeyFile reads one key file.
func ReadKeyFile(path string) ([]ed25519.PublicKey, error) {
	data, err := readSmall(path, maxTextSize)
	if err != nil {
		return nil, err
	}
	return parseKeys(path, data)
}

// Verify checks plugin's signature against keys exactly as Check does,
// without running it: for the image build.
func Verify(plugin string, keys []ed25519.PublicKey) error {
	_, err := readVerified(plugin, keys)
	return err
}

// parseKeys reads a key file; name only labels errors.
func parseKeys(name string, data []byte) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := base64.StdEncoding.Strict().DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: key is not base64: %w", name, i+1, err)
		}
		if len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%s:%d: key is %d bytes, want %d", name, i+1, len(b), ed25519.PublicKeySize)
		}
		keys = append(keys, ed25519.PublicKey(b))
	}
	return keys, nil
}

// parseSignature reads a .sig file. Only trailing white space is allowed
// around the base64, so that a file written by echo or an editor passes,
// while anything else that is not exactly one signature is rejected.
func parseSignature(data []byte) ([]byte, error) {
	s := strings.TrimRight(string(data), " \t\r\n")
	if s == "" {
		return nil, errors.New("signature file is empty")
	}
	// DecodeString skips newlines anywhere; a signature is a single line.
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("signature is not a single line")
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("signature is not base64: %w", err)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("signature is %d bytes, want %d", len(sig), ed25519.SignatureSize)
	}
	return sig, nil
}

// readVerified returns the plugin's bytes once one of keys has verified
// them. The caller executes these very bytes, so that replacing the file
// after the check changes nothing.
func readVerified(plugin string, keys []ed25519.PublicKey) ([]byte, error) {
	if plugin == "" {
		return nil, errors.New("no entitlement plugin is configured")
	}
	code, err := readSmall(plugin, maxPluginSize)
	if err != nil {
		return nil, fmt.Errorf("entitlement plugin: %w", err)
	}
	sigData, err := readSmall(plugin+".sig", maxTextSize)
	if err != nil {
		return nil, fmt.Errorf("entitlement plugin %s is not signed: %w", plugin, err)
	}
	sig, err := parseSignature(sigData)
	if err != nil {
		return nil, fmt.Errorf("entitlement plugin %s has a bad signature file: %w", plugin, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no operator keys are installed to verify entitlement plugin %s", plugin)
	}
	for _, k := range keys {
		if len(k) == ed25519.PublicKeySize && ed25519.Verify(k, code, sig) {
			return code, nil
		}
	}
	return nil, fmt.Errorf("entitlement plugin %s is not signed by the operator", plugin)
}

// readSmall reads the regular file at path, refusing one larger than limit.
func readSmall(path string, limit int64) ([]byte, error) {
	// O_NONBLOCK so that a FIFO at path cannot stall the check in open;
	// regular files ignore it.
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}
