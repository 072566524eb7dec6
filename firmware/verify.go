package firmware

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Verify checks the image of size bytes in r completely and returns its
// manifest: the header, a signature by one of keys over the header and the
// manifest, the manifest itself, that the image is for board, that the
// file is exactly as long as the manifest says, and every part's hash.
// A rejected image gives an error wrapping one of the Err values.
func Verify(r io.ReaderAt, size int64, keys []ed25519.PublicKey, board string) (*Manifest, error) {
	// An empty board would match nothing, and treating it as "any board"
	// would let a caller who forgot it install a foreign image.
	if board == "" {
		return nil, errors.New("verify image: no board to check the image against")
	}
	if len(keys) == 0 {
		return nil, errors.New("verify image: no keys to check the signature with")
	}
	signed, sig, err := readSigned(r, size)
	if err != nil {
		return nil, err
	}
	if !signedByAny(keys, signed, sig) {
		return nil, fmt.Errorf("%w: the manifest is not signed by any of the %d keys", ErrNotSigned, len(keys))
	}
	m, err := parseManifest(signed[HeaderSize:])
	if err != nil {
		return nil, err
	}
	m.DataOffset = int64(len(signed) + len(sig))
	if m.Board != board {
		return nil, fmt.Errorf("%w: the image is for board %s, this is board %s", ErrWrongBoard, m.Board, board)
	}
	if err := checkSize(m, size); err != nil {
		return nil, err
	}
	for _, p := range m.Parts {
		if err := copyPart(io.Discard, r, m, p); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Inspect reads the manifest of the image of size bytes in r and checks the
// image's structure, but neither the signature nor the parts' hashes nor
// the board: it is for showing what an image claims to be, which is not
// to be trusted.
func Inspect(r io.ReaderAt, size int64) (*Manifest, error) {
	signed, sig, err := readSigned(r, size)
	if err != nil {
		return nil, err
	}
	m, err := parseManifest(signed[HeaderSize:])
	if err != nil {
		return nil, err
	}
	m.DataOffset = int64(len(signed) + len(sig))
	if err := checkSize(m, size); err != nil {
		return nil, err
	}
	return m, nil
}

// Extract copies the part called name from the image in r to w, checking it
// against m's hash on the way, so that it also notices an image file that
// changed since m was read. m must come from Verify for the bytes to be
// trustworthy (from Inspect, they only match an unverified manifest). On
// error w may have received some or all of the part: write to a temporary
// file and keep it only on success.
func Extract(w io.Writer, r io.ReaderAt, m *Manifest, name string) error {
	p, ok := m.Part(name)
	if !ok {
		return fmt.Errorf("extract: the image has no part %q", name)
	}
	if m.DataOffset < HeaderSize+SignatureSize {
		return errors.New("extract: the manifest was not read from an image")
	}
	return copyPart(w, r, m, p)
}

// readSigned reads the header, the manifest and the signature, checking
// each length before reading what it counts. It returns the signed bytes
// (header and manifest) and the signature.
func readSigned(r io.ReaderAt, size int64) (signed, sig []byte, err error) {
	if size < 0 {
		return nil, nil, fmt.Errorf("read image: negative size %d", size)
	}
	head := make([]byte, min(size, HeaderSize))
	if err := readAt(r, head, 0, "header"); err != nil {
		return nil, nil, err
	}
	// Magic before length, so that a short file of something else is
	// called what it is, not a truncated image.
	if n := min(len(head), len(Magic)); string(head[:n]) != Magic[:n] {
		return nil, nil, fmt.Errorf("%w: it starts with %q", ErrBadMagic, head[:n])
	}
	if size < HeaderSize {
		return nil, nil, truncated(size, HeaderSize-size, "the header alone is 16 bytes")
	}
	if v := binary.BigEndian.Uint32(head[8:12]); v != FormatVersion {
		return nil, nil, fmt.Errorf("%w: the image is format version %d, this reads version %d", ErrVersion, v, FormatVersion)
	}
	n := binary.BigEndian.Uint32(head[12:16])
	if n < 1 || n > MaxManifestSize {
		return nil, nil, fmt.Errorf("%w: manifest length %d is outside 1 to %d", ErrManifest, n, MaxManifestSize)
	}
	end := HeaderSize + int64(n) + SignatureSize
	if size < end {
		return nil, nil, truncated(size, end-size, fmt.Sprintf("header, %d-byte manifest and signature need %d", n, end))
	}
	// The header just read stays in place rather than being read again, so
	// that the length checked above is the length in the signed bytes.
	buf := make([]byte, end)
	copy(buf, head)
	if err := readAt(r, buf[HeaderSize:], HeaderSize, "manifest"); err != nil {
		return nil, nil, err
	}
	return buf[:end-SignatureSize], buf[end-SignatureSize:], nil
}

func signedByAny(keys []ed25519.PublicKey, msg, sig []byte) bool {
	for _, k := range keys {
		// ed25519.Verify panics on a key of the wrong length.
		if len(k) == ed25519.PublicKeySize && ed25519.Verify(k, msg, sig) {
			return true
		}
	}
	return false
}

// parseManifest decodes and checks the manifest, strictly: the manifest is
// signed, and a field this reader does not know might change the meaning
// of the image in a way it cannot honour.
func parseManifest(data []byte) (*Manifest, error) {
	// encoding/json would replace invalid UTF-8 silently.
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: not UTF-8", ErrManifest)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: more data after the JSON object", ErrManifest)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	return &m, nil
}

// checkSize compares the file size with the manifest's parts. m.check has
// bounded the sizes, so the sums cannot overflow.
func checkSize(m *Manifest, size int64) error {
	want := m.ImageSize()
	switch {
	case size < want:
		return truncated(size, want-size, fmt.Sprintf("the manifest describes %d", want))
	case size > want:
		return fmt.Errorf("%w: %d bytes after the last part (the file is %d bytes, the manifest describes %d)", ErrTrailing, size-want, size, want)
	}
	return nil
}

// copyPart copies p to w and checks its hash.
func copyPart(w io.Writer, r io.ReaderAt, m *Manifest, p Part) error {
	sum, err := copyHash(w, Source{Name: p.Name, R: io.NewSectionReader(r, m.DataOffset+p.Offset, p.Size), Size: p.Size})
	if err != nil {
		return fmt.Errorf("read image: %w", err)
	}
	if sum != p.SHA256 {
		return fmt.Errorf("%w: part %s has SHA-256 %s, the manifest says %s", ErrHash, p.Name, sum, p.SHA256)
	}
	return nil
}

// readAt fills b from offset off, failing on a short read.
func readAt(r io.ReaderAt, b []byte, off int64, what string) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		// A ReaderAt may report io.EOF with a full read at the end.
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read image %s: %w", what, err)
}

func truncated(size, missing int64, why string) error {
	return fmt.Errorf("%w: %d bytes missing (the file is %d bytes; %s)", ErrTruncated, missing, size, why)
}
