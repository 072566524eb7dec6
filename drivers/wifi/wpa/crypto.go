package wpa

import (
	"bytes"
	"crypto/aes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
)

// Key sizes of WPA2-PSK with CCMP (IEEE 802.11 tables 12-4 and 12-8).
const (
	PMKLen   = 32
	NonceLen = 32
	KCKLen   = 16
	KEKLen   = 16
	TKLen    = 16 // CCMP-128 temporal key
	GTKLen   = 16 // CCMP-128 group key
	MICLen   = 16 // HMAC-SHA1-128
)

// ErrPassphrase is returned by PMK for a passphrase or SSID the standard
// does not allow. Its text never repeats the passphrase.
var ErrPassphrase = errors.New("invalid WPA passphrase")

// PMK derives the pairwise master key of WPA2-PSK from the passphrase and
// SSID (IEEE 802.11 J.4: PBKDF2-HMAC-SHA1, 4096 iterations, 32 bytes).
// A passphrase of 8 to 63 printable ASCII characters is hashed with the SSID
// (1 to 32 bytes); one of exactly 64 hex digits is the PSK itself, as
// wpa_supplicant and hostapd accept it.
func PMK(passphrase string, ssid []byte) ([]byte, error) {
	if len(passphrase) == 2*PMKLen {
		psk, err := hex.DecodeString(passphrase)
		if err != nil {
			return nil, fmt.Errorf("%w: 64 characters but not hex digits", ErrPassphrase)
		}
		return psk, nil
	}
	if len(passphrase) < 8 || len(passphrase) > 63 {
		return nil, fmt.Errorf("%w: length %d, want 8 to 63 characters", ErrPassphrase, len(passphrase))
	}
	for i := 0; i < len(passphrase); i++ {
		if c := passphrase[i]; c < 0x20 || c > 0x7e {
			return nil, fmt.Errorf("%w: character %d is not printable ASCII", ErrPassphrase, i+1)
		}
	}
	if len(ssid) < 1 || len(ssid) > 32 {
		return nil, fmt.Errorf("%w: SSID length %d, want 1 to 32 bytes", ErrPassphrase, len(ssid))
	}
	pmk, err := pbkdf2.Key(sha1.New, passphrase, ssid, 4096, PMKLen)
	if err != nil {
		return nil, fmt.Errorf("pbkdf2: %w", err)
	}
	return pmk, nil
}

// PRF is the IEEE 802.11 pseudo-random function PRF-bits (12.7.1.2):
// HMAC-SHA1(key, label || 0 || data || i) for i = 0, 1, … concatenated and
// cut to bits/8 bytes (rounded up).
func PRF(key []byte, label string, data []byte, bits int) []byte {
	n := (bits + 7) / 8
	out := make([]byte, 0, n+sha1.Size)
	mac := hmac.New(sha1.New, key)
	for i := 0; len(out) < n; i++ {
		mac.Reset()
		mac.Write([]byte(label))
		mac.Write([]byte{0})
		mac.Write(data)
		mac.Write([]byte{byte(i)})
		out = mac.Sum(out)
	}
	return out[:n]
}

// PTK is the pairwise transient key of a CCMP association, split into its
// parts.
type PTK struct {
	KCK [KCKLen]byte // authenticates EAPOL-Key frames
	KEK [KEKLen]byte // wraps the key data of EAPOL-Key frames
	TK  [TKLen]byte  // encrypts unicast data frames
}

// DerivePTK computes the PTK from the PMK, the two MAC addresses and the two
// nonces (12.7.1.3): PRF-384(PMK, "Pairwise key expansion",
// min(AA,SPA) || max(AA,SPA) || min(ANonce,SNonce) || max(ANonce,SNonce)).
func DerivePTK(pmk []byte, aa, spa net.HardwareAddr, anonce, snonce []byte) (PTK, error) {
	var ptk PTK
	if len(pmk) != PMKLen {
		return ptk, fmt.Errorf("derive PTK: PMK is %d bytes, want %d", len(pmk), PMKLen)
	}
	if len(aa) != 6 || len(spa) != 6 {
		return ptk, fmt.Errorf("derive PTK: addresses must be 6 bytes")
	}
	if len(anonce) != NonceLen || len(snonce) != NonceLen {
		return ptk, fmt.Errorf("derive PTK: nonces must be %d bytes", NonceLen)
	}
	data := make([]byte, 0, 2*6+2*NonceLen)
	data = append(data, minMax(aa, spa)...)
	data = append(data, minMax(anonce, snonce)...)
	b := PRF(pmk, "Pairwise key expansion", data, 8*(KCKLen+KEKLen+TKLen))
	copy(ptk.KCK[:], b[:KCKLen])
	copy(ptk.KEK[:], b[KCKLen:KCKLen+KEKLen])
	copy(ptk.TK[:], b[KCKLen+KEKLen:])
	clear(b)
	return ptk, nil
}

// minMax returns the smaller of a and b (as big-endian numbers) followed by
// the larger.
func minMax(a, b []byte) []byte {
	if bytes.Compare(a, b) > 0 {
		a, b = b, a
	}
	return append(append([]byte{}, a...), b...)
}

// MIC computes the EAPOL-Key MIC of key descriptor version 2 (HMAC-SHA1-128)
// over an EAPOL frame, taking its MIC field as zero whatever it holds. frame
// must be a whole EAPOL-Key frame, such as ParseEAPOL accepts; bytes past its
// EAPOL body length are not covered.
func MIC(kck, frame []byte) ([]byte, error) {
	if len(kck) != KCKLen {
		return nil, fmt.Errorf("MIC: KCK is %d bytes, want %d", len(kck), KCKLen)
	}
	if len(frame) < keyHeaderLen {
		return nil, fmt.Errorf("MIC: frame of %d bytes is too short", len(frame))
	}
	n := eapolHeaderLen + int(binary.BigEndian.Uint16(frame[2:4]))
	if n < keyHeaderLen || n > len(frame) {
		return nil, fmt.Errorf("MIC: EAPOL length field does not fit the frame")
	}
	mac := hmac.New(sha1.New, kck)
	mac.Write(frame[:micOffset])
	mac.Write(make([]byte, MICLen))
	mac.Write(frame[micOffset+MICLen : n])
	return mac.Sum(nil)[:MICLen], nil
}

// VerifyMIC reports whether the MIC field of frame is the MIC of frame under
// kck. The comparison takes constant time.
func VerifyMIC(kck, frame []byte) bool {
	want, err := MIC(kck, frame)
	if err != nil {
		return false
	}
	return hmac.Equal(want, frame[micOffset:micOffset+MICLen])
}

// keyWrapIV is the default initial value of RFC 3394 section 2.2.3.1.
var keyWrapIV = [8]byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}

// KeyWrap encrypts plaintext (a multiple of 8 bytes, at least 16) under kek
// with the AES key wrap of RFC 3394; the result is 8 bytes longer.
func KeyWrap(kek, plaintext []byte) ([]byte, error) {
	if len(plaintext) < 16 || len(plaintext)%8 != 0 {
		return nil, fmt.Errorf("key wrap: %d bytes of key data, want a multiple of 8, at least 16", len(plaintext))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("key wrap: %w", err)
	}
	n := len(plaintext) / 8
	out := make([]byte, 8+len(plaintext))
	copy(out, keyWrapIV[:])
	copy(out[8:], plaintext)
	var buf [16]byte
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(buf[:8], out[:8])
			copy(buf[8:], out[8*i:8*i+8])
			block.Encrypt(buf[:], buf[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(out[:8], binary.BigEndian.Uint64(buf[:8])^t)
			copy(out[8*i:], buf[8:])
		}
	}
	return out, nil
}

// ErrUnwrap is returned by KeyUnwrap when the integrity check fails: wrong
// KEK or altered ciphertext.
var ErrUnwrap = errors.New("key unwrap: integrity check failed")

// KeyUnwrap decrypts and checks ciphertext produced by KeyWrap under kek.
func KeyUnwrap(kek, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < 24 || len(ciphertext)%8 != 0 {
		return nil, fmt.Errorf("key unwrap: %d bytes, want a multiple of 8, at least 24", len(ciphertext))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("key unwrap: %w", err)
	}
	n := len(ciphertext)/8 - 1
	out := make([]byte, len(ciphertext))
	copy(out, ciphertext)
	var buf [16]byte
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(out[:8])^t)
			copy(buf[8:], out[8*i:8*i+8])
			block.Decrypt(buf[:], buf[:])
			copy(out[:8], buf[:8])
			copy(out[8*i:], buf[8:])
		}
	}
	if subtle.ConstantTimeCompare(out[:8], keyWrapIV[:]) != 1 {
		clear(out)
		return nil, ErrUnwrap
	}
	return out[8:], nil
}
