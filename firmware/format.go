// Package firmware writes and reads openmifi firmware images: one file that
// holds a board's kernel and root filesystem, a manifest that describes
// them, and an ed25519 signature over the manifest.
//
// # Image format, version 1
//
// Integers are unsigned and big-endian. Offsets in this table count from the
// first byte of the file; M is the manifest length.
//
//	offset  size  content
//	0       8     magic, the ASCII bytes "OPENMIFI"
//	8       4     format version, 1
//	12      4     manifest length M, 1 to 65536 (MaxManifestSize)
//	16      M     manifest: one JSON object, UTF-8, described below
//	16+M    64    ed25519 signature of the first 16+M bytes: header and manifest
//	80+M    ...   the parts' bytes, back to back, in the manifest's order
//
// The manifest has exactly these fields; a reader refuses any other (it
// matches names as encoding/json does, ignoring case; Build writes them in
// lowercase):
//
//	{
//	  "board": "qemu-x86_64",                 1 to 64 bytes of [a-z0-9._-]
//	  "version": "0.1.0",                     1 to 64 bytes of [A-Za-z0-9._+~-]
//	  "build_time": "2026-01-02T03:04:05Z",   RFC 3339, written in UTC
//	  "parts": [                              1 to 16 parts (MaxParts)
//	    {"name": "kernel", "offset": 0, "size": 4096, "sha256": "…"},
//	    {"name": "rootfs", "offset": 4096, "size": 8192, "sha256": "…"}
//	  ]
//	}
//
// Part names are 1 to 32 bytes of [a-z0-9._-] and unique; "kernel" and
// "rootfs" must be present. A part's offset counts from the first byte after
// the signature (80+M), not from the start of the file, so that the manifest
// need not contain its own length. The first part is at offset 0, every
// other one starts where the one before it ends, no part is empty, and the
// file ends exactly where the last part ends. sha256 is the part's SHA-256
// in 64 lowercase hexadecimal digits.
//
// Every byte of an image is therefore checked by something: the signature
// covers the header and the manifest, the manifest covers each part by its
// hash, and there is no padding or trailing space for anything unchecked.
// Parts are not aligned; an installer extracts them into the board's flash
// partitions.
//
// A reader trusts no length before it has checked it: the manifest length
// is bounded before anything is allocated for it and compared with the
// file size before the manifest is read; the signature is verified before
// the manifest is parsed; the parts' sizes are compared with the file size
// before any part is read.
//
// The writer is deterministic: the same inputs, build time and key give the
// same bytes (ed25519 signatures are deterministic), so a release can be
// rebuilt and compared.
package firmware

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Layout constants of format version 1.
const (
	Magic           = "OPENMIFI"
	FormatVersion   = 1
	HeaderSize      = 16
	SignatureSize   = ed25519.SignatureSize
	MaxManifestSize = 64 << 10
	MaxParts        = 16
)

// requiredParts are the parts every image needs to boot.
var requiredParts = []string{"kernel", "rootfs"}

// Errors that reject an image. Verify, Inspect and Extract wrap one of them
// with the details, so callers can tell the reasons apart with errors.Is.
var (
	ErrTruncated  = errors.New("truncated image")
	ErrBadMagic   = errors.New("bad magic: not an openmifi firmware image")
	ErrVersion    = errors.New("unsupported image format version")
	ErrManifest   = errors.New("bad manifest")
	ErrNotSigned  = errors.New("bad signature")
	ErrHash       = errors.New("hash mismatch")
	ErrWrongBoard = errors.New("wrong board")
	ErrTrailing   = errors.New("trailing data")
)

// Manifest describes an image. Its JSON form is the signed manifest.
type Manifest struct {
	Board     string    `json:"board"`
	Version   string    `json:"version"`
	BuildTime time.Time `json:"build_time"`
	Parts     []Part    `json:"parts"`

	// DataOffset is where the parts begin in the image file, 80 plus the
	// manifest's length. Build, Verify and Inspect set it and Extract
	// needs it; it is derived from the header, so it is not in the JSON.
	DataOffset int64 `json:"-"`
}

// Part is one named piece of an image.
type Part struct {
	Name string `json:"name"`
	// Offset counts from Manifest.DataOffset.
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Part returns the part called name.
func (m *Manifest) Part(name string) (Part, bool) {
	for _, p := range m.Parts {
		if p.Name == name {
			return p, true
		}
	}
	return Part{}, false
}

// ImageSize is the size of the whole image file, which check has shown
// not to overflow.
func (m *Manifest) ImageSize() int64 {
	n := m.DataOffset
	for _, p := range m.Parts {
		n += p.Size
	}
	return n
}

const (
	nameChars    = "abcdefghijklmnopqrstuvwxyz0123456789._-"
	versionChars = nameChars + "ABCDEFGHIJKLMNOPQRSTUVWXYZ+~"
)

// check validates everything in m that does not depend on the file it came
// from. Build runs it too, so that it never writes an image that Verify
// would refuse.
func (m *Manifest) check() error {
	if err := checkWord("board", m.Board, 64, nameChars); err != nil {
		return err
	}
	if err := checkWord("version", m.Version, 64, versionChars); err != nil {
		return err
	}
	if m.BuildTime.IsZero() {
		return errors.New("build time is missing")
	}
	if len(m.Parts) == 0 || len(m.Parts) > MaxParts {
		return fmt.Errorf("%d parts, want 1 to %d", len(m.Parts), MaxParts)
	}
	seen := make(map[string]bool)
	var next int64
	for _, p := range m.Parts {
		if err := checkWord("part name", p.Name, 32, nameChars); err != nil {
			return err
		}
		if seen[p.Name] {
			return fmt.Errorf("part %q appears twice", p.Name)
		}
		seen[p.Name] = true
		if p.Size < 1 {
			return fmt.Errorf("part %q has size %d, want at least 1", p.Name, p.Size)
		}
		if p.Offset != next {
			return fmt.Errorf("part %q is at offset %d, want %d: parts lie back to back from offset 0", p.Name, p.Offset, next)
		}
		if p.Size > math.MaxInt64-MaxManifestSize-HeaderSize-SignatureSize-next {
			return fmt.Errorf("part %q has size %d: the image would be larger than any file", p.Name, p.Size)
		}
		next += p.Size
		if err := checkHash(p.SHA256); err != nil {
			return fmt.Errorf("part %q: %w", p.Name, err)
		}
	}
	for _, name := range requiredParts {
		if !seen[name] {
			return fmt.Errorf("no %q part", name)
		}
	}
	return nil
}

// checkWord checks that s has 1 to max bytes, all from chars. The
// character sets keep names safe to print on a console and to use in
// file names.
func checkWord(what, s string, max int, chars string) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("%s %q is %d bytes, want 1 to %d", what, s, len(s), max)
	}
	for _, c := range []byte(s) {
		if !strings.ContainsRune(chars, rune(c)) {
			return fmt.Errorf("%s %q has a character outside %q", what, s, chars)
		}
	}
	return nil
}

// checkHash insists on the one spelling Build writes, lowercase hex, so that
// comparing the strings compares the hashes.
func checkHash(s string) error {
	if len(s) != 2*32 {
		return fmt.Errorf("sha256 %q has %d digits, want 64", s, len(s))
	}
	if _, err := hex.DecodeString(s); err != nil || strings.ToLower(s) != s {
		return fmt.Errorf("sha256 %q is not lowercase hexadecimal", s)
	}
	return nil
}
