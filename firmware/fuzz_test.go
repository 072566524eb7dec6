package firmware

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// FuzzVerify feeds arbitrary files to Verify and Inspect. Each input is
// tried twice: as it is, and re-signed with the test key (when its header
// says where the signature goes), because the fuzzer cannot forge a
// signature and would otherwise never get past it to the manifest parser
// and the checks of the parts. The seeds in testdata are images made with
// testKey(1) for board qemu-x86_64.
//
// Every rejection must say why with one of the Err values; every image
// accepted must be exactly as long as its manifest says, give back parts
// that match their hashes, and build again into an image that verifies.
func FuzzVerify(f *testing.F) {
	priv := testKey(1)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkImage(t, data, priv)
		if HeaderSize <= len(data) {
			n := int(binary.BigEndian.Uint32(data[12:16]))
			if n <= MaxManifestSize && HeaderSize+n+SignatureSize <= len(data) {
				signed := bytes.Clone(data)
				copy(signed[HeaderSize+n:], ed25519.Sign(priv, signed[:HeaderSize+n]))
				checkImage(t, signed, priv)
			}
		}
	})
}

func checkImage(t *testing.T, data []byte, priv ed25519.PrivateKey) {
	m, err := verify(t, data, pub(priv), board)
	im, ierr := Inspect(boundedReader{t, data}, int64(len(data)))
	if err != nil {
		if !isRejection(err) {
			t.Fatalf("rejected without a reason from the list: %v", err)
		}
		if ierr == nil && !errors.Is(err, ErrNotSigned) && !errors.Is(err, ErrWrongBoard) && !errors.Is(err, ErrHash) {
			t.Fatalf("Inspect accepts what Verify rejects for its structure: %v", err)
		}
		return
	}
	if ierr != nil {
		t.Fatalf("Verify accepts what Inspect rejects: %v", ierr)
	}
	if fmt.Sprint(im) != fmt.Sprint(m) {
		t.Fatalf("Inspect %+v, Verify %+v", im, m)
	}
	if m.ImageSize() != int64(len(data)) {
		t.Fatalf("manifest describes %d bytes, image has %d", m.ImageSize(), len(data))
	}
	var parts []Source
	for _, p := range m.Parts {
		var b bytes.Buffer
		if err := Extract(&b, bytes.NewReader(data), m, p.Name); err != nil {
			t.Fatalf("extract %s: %v", p.Name, err)
		}
		if sum(b.Bytes()) != p.SHA256 || int64(b.Len()) != p.Size {
			t.Fatalf("extracted %s does not match the manifest", p.Name)
		}
		parts = append(parts, Source{Name: p.Name, R: bytes.NewReader(b.Bytes()), Size: int64(b.Len())})
	}
	var again bytes.Buffer
	if _, err := Build(&again, Meta{Board: m.Board, Version: m.Version, BuildTime: m.BuildTime}, parts, priv); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	m2, err := verify(t, again.Bytes(), pub(priv), board)
	if err != nil {
		t.Fatalf("rebuilt image: %v", err)
	}
	if fmt.Sprint(m2.Parts) != fmt.Sprint(m.Parts) {
		t.Fatalf("rebuilt parts %v, want %v", m2.Parts, m.Parts)
	}
}
