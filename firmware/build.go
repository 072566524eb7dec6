package firmware

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Meta is what an image says about itself besides its parts.
type Meta struct {
	Board   string
	Version string
	// BuildTime goes into the manifest in UTC. It is an input rather than
	// the time of the build so that rebuilding gives the same bytes.
	BuildTime time.Time
}

// Source is the content of one part for Build.
type Source struct {
	Name string
	// R is read twice, once to hash and once to copy, which is why Build
	// takes a ReaderAt and not a stream: the manifest with the hashes comes
	// before the parts in the image.
	R    io.ReaderAt
	Size int64
}

// Build writes an image of parts, in their order, signed with priv. It
// returns the manifest it wrote. On error, w may hold a partial image.
func Build(w io.Writer, meta Meta, parts []Source, priv ed25519.PrivateKey) (*Manifest, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("build image: private key is %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	// A key whose public half does not belong to its seed makes signatures
	// that no key verifies; better to fail here than on every device.
	if !ed25519.NewKeyFromSeed(priv.Seed()).Equal(priv) {
		return nil, errors.New("build image: private key is inconsistent")
	}
	m := &Manifest{Board: meta.Board, Version: meta.Version, BuildTime: meta.BuildTime.UTC()}
	var off int64
	for _, s := range parts {
		sum, err := copyHash(io.Discard, s)
		if err != nil {
			return nil, fmt.Errorf("build image: %w", err)
		}
		m.Parts = append(m.Parts, Part{Name: s.Name, Offset: off, Size: s.Size, SHA256: sum})
		off += s.Size
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	// Indented so that the manifest reads well in a hex dump of the image.
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("build image: encode manifest: %w", err)
	}
	if len(body) > MaxManifestSize {
		return nil, fmt.Errorf("build image: manifest is %d bytes, more than %d", len(body), MaxManifestSize)
	}
	signed := append(header(len(body)), body...)
	sig := ed25519.Sign(priv, signed)
	if _, err := w.Write(signed); err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	if _, err := w.Write(sig); err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	for i, s := range parts {
		sum, err := copyHash(w, s)
		if err != nil {
			return nil, fmt.Errorf("build image: %w", err)
		}
		// The manifest is already written; a part that changed between the
		// two reads would make an image that fails verification.
		if sum != m.Parts[i].SHA256 {
			return nil, fmt.Errorf("build image: part %q changed while the image was being written", s.Name)
		}
	}
	m.DataOffset = int64(len(signed) + len(sig))
	return m, nil
}

// copyHash copies s to w and returns its SHA-256 in hex.
func copyHash(w io.Writer, s Source) (string, error) {
	if s.Size < 0 {
		return "", fmt.Errorf("part %q has negative size %d", s.Name, s.Size)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(h, w), io.NewSectionReader(s.R, 0, s.Size))
	if err != nil {
		return "", fmt.Errorf("part %q: %w", s.Name, err)
	}
	if n != s.Size {
		return "", fmt.Errorf("part %q: read %d bytes, want %d", s.Name, n, s.Size)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// header is the header of an image whose manifest is n bytes long.
func header(n int) []byte {
	b := []byte(Magic)
	b = binary.BigEndian.AppendUint32(b, FormatVersion)
	return binary.BigEndian.AppendUint32(b, uint32(n))
}
