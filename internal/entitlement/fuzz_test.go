package entitlement

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzParseKeys checks that any key file gives keys or an error, never a
// panic, and that what it accepts is exactly one 32-byte key per line that
// is neither blank nor a comment.
func FuzzParseKeys(f *testing.F) {
	f.Fuzz(func(t *testing.T, data string) {
		keys, err := parseKeys("fuzz.pub", []byte(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.pub:") {
				t.Errorf("error does not name the file and line: %v", err)
			}
			return
		}
		lines := 0
		for _, line := range strings.Split(data, "\n") {
			line = strings.TrimSpace(line)
			if line != "" && !strings.HasPrefix(line, "#") {
				lines++
			}
		}
		if len(keys) != lines {
			t.Errorf("%d keys from %d key lines", len(keys), lines)
		}
		for _, k := range keys {
			if len(k) != ed25519.PublicKeySize {
				t.Errorf("key of %d bytes", len(k))
			}
		}
	})
}

// FuzzParseSignature checks that any signature file gives a 64-byte
// signature or an error, and that an accepted one is the file's only
// content apart from trailing white space.
func FuzzParseSignature(f *testing.F) {
	f.Fuzz(func(t *testing.T, data string) {
		sig, err := parseSignature([]byte(data))
		if err != nil {
			return
		}
		if len(sig) != ed25519.SignatureSize {
			t.Fatalf("signature of %d bytes", len(sig))
		}
		if want := base64.StdEncoding.EncodeToString(sig); strings.TrimRight(data, " \t\r\n") != want {
			t.Errorf("accepted %q for signature %q", data, want)
		}
	})
}
