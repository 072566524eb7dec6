// Command opsign makes and checks the operator signatures that
// internal/entitlement demands of an entitlement plugin, for use in the
// image build:
//
//	opsign keygen PRIVFILE PUBFILE   make a key pair
//	opsign sign PRIVFILE FILE        write FILE.sig
//	opsign verify PUBFILE FILE       exit 0 if FILE.sig verifies, 1 if not
//
// Errors other than an invalid or missing signature exit with status 2.
//
// PUBFILE is a key file as the device reads it (see internal/entitlement):
// install it in the image's operator key directory. PRIVFILE holds the
// standard base64 encoding of the 64-byte ed25519 private key on one line;
// it is created with mode 0600 and belongs on the signing machine only.
// keygen never overwrites an existing file.
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/openmifi/openmifi/internal/entitlement"
)

const usage = `usage:
	opsign keygen PRIVFILE PUBFILE
	opsign sign PRIVFILE FILE
	opsign verify PUBFILE FILE
`

// errInvalid marks a signature that does not verify, as opposed to a
// failure to check at all; verify exits 1 for it.
var errInvalid = errors.New("signature does not verify")

// keygen writes a new key pair. The private key is written first and
// removed again if the public one cannot be written, so a failure leaves
// no half pair behind.
func keygen(privPath, pubPath string, random io.Reader) error {
	pub, priv, err := ed25519.GenerateKey(random)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := writeNew(privPath, base64.StdEncoding.EncodeToString(priv)+"\n", 0o600); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	pubText := "# ed25519 operator key for entitlement plugins, made by opsign\n" +
		base64.StdEncoding.EncodeToString(pub) + "\n"
	if err := writeNew(pubPath, pubText, 0o644); err != nil {
		os.Remove(privPath)
		return fmt.Errorf("keygen: %w", err)
	}
	return nil
}

// writeNew creates path with data, refusing to replace an existing file.
func writeNew(path, data string, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.WriteString(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func readPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("%s: private key is not base64: %w", path, err)
	}
	if len(b) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%s: private key is %d bytes, want %d", path, len(b), ed25519.PrivateKeySize)
	}
	// The second half is the public key; if it does not match the seed,
	// the file is damaged and every signature would fail on the device.
	priv := ed25519.PrivateKey(b)
	if !ed25519.NewKeyFromSeed(priv.Seed()).Equal(priv) {
		return nil, fmt.Errorf("%s: private key is inconsistent", path)
	}
	return priv, nil
}

func sign(privPath, path string) error {
	priv, err := readPrivateKey(privPath)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(priv, data)) + "\n"
	if err := os.WriteFile(path+".sig", []byte(sig), 0o644); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	return nil
}

// verify returns nil if one of the keys in pubPath signed path, and an
// error wrapping errInvalid if the signature is missing or none did. It
// uses the device's own verification, so the build accepts exactly what
// the device will.
func verify(pubPath, path string) error {
	keys, err := entitlement.ReadKeyFile(pubPath)
	if err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	if err := entitlement.Verify(path, keys); err != nil {
		return fmt.Errorf("verify %s: %w: %v", path, errInvalid, err)
	}
	return nil
}

// run carries out one command line and returns the exit status.
func run(args []string, stderr io.Writer) int {
	var err error
	switch {
	case len(args) == 3 && args[0] == "keygen":
		err = keygen(args[1], args[2], rand.Reader)
	case len(args) == 3 && args[0] == "sign":
		err = sign(args[1], args[2])
	case len(args) == 3 && args[0] == "verify":
		err = verify(args[1], args[2])
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "opsign: %v\n", err)
		if errors.Is(err, errInvalid) {
			return 1
		}
		return 2
	}
	return 0
}

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}
