package wpa

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Layout of an EAPOL-Key frame (IEEE 802.1X-2010 11.3, IEEE 802.11 12.7.2)
// with the 16-byte MIC of key descriptor version 2. Offsets are from the
// start of the EAPOL header.
const (
	eapolHeaderLen = 4 // protocol version, packet type, body length
	micOffset      = 81
	keyDataLenOff  = 97
	keyHeaderLen   = 99 // everything up to the key data

	// maxEAPOLVersion is the newest EAPOL protocol version (802.1X-2010).
	maxEAPOLVersion = 3
)

const (
	// EAPOLTypeKey is the EAPOL packet type of EAPOL-Key frames.
	EAPOLTypeKey = 3
	// DescriptorRSN is the key descriptor type of IEEE 802.11 (RSN).
	DescriptorRSN = 2
)

// KeyInfo is the Key Information field of an EAPOL-Key frame.
type KeyInfo uint16

// Bits of KeyInfo (IEEE 802.11 figure 12-33).
const (
	InfoVersionMask   KeyInfo = 0x0007 // key descriptor version
	InfoPairwise      KeyInfo = 0x0008 // Key Type: pairwise (else group)
	InfoInstall       KeyInfo = 0x0040
	InfoAck           KeyInfo = 0x0080
	InfoMIC           KeyInfo = 0x0100
	InfoSecure        KeyInfo = 0x0200
	InfoError         KeyInfo = 0x0400
	InfoRequest       KeyInfo = 0x0800
	InfoEncryptedData KeyInfo = 0x1000
	InfoSMK           KeyInfo = 0x2000
)

// DescriptorVersionAESSHA1 is key descriptor version 2: HMAC-SHA1-128 MIC and
// AES key wrap, the one WPA2 with CCMP uses.
const DescriptorVersionAESSHA1 = 2

// Version returns the key descriptor version.
func (i KeyInfo) Version() int { return int(i & InfoVersionMask) }

// ErrMalformed wraps every error of ParseEAPOL and ParseKeyData.
var ErrMalformed = errors.New("malformed EAPOL frame")

// KeyFrame is an EAPOL frame carrying an RSN EAPOL-Key descriptor.
type KeyFrame struct {
	ProtocolVersion uint8 // EAPOL protocol version: 1, 2 or 3
	Info            KeyInfo
	KeyLength       uint16
	ReplayCounter   uint64
	Nonce           [NonceLen]byte
	IV              [16]byte
	RSC             [8]byte // receive sequence counter of the key sent, least significant byte first
	KeyID           [8]byte // reserved in RSN
	MIC             [MICLen]byte
	KeyData         []byte
}

// ParseEAPOL parses an EAPOL-Key frame (from the EAPOL header on, as
// nl80211's control port or a PAE socket delivers it). Bytes after the
// length the EAPOL header gives (Ethernet padding) are ignored; every other
// length must agree exactly. It checks form only: the MIC is checked by
// VerifyMIC, the meaning by the Handshake.
func ParseEAPOL(b []byte) (*KeyFrame, error) {
	if len(b) < eapolHeaderLen {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the EAPOL header", ErrMalformed, len(b))
	}
	k := &KeyFrame{ProtocolVersion: b[0]}
	if k.ProtocolVersion < 1 || k.ProtocolVersion > maxEAPOLVersion {
		return nil, fmt.Errorf("%w: EAPOL protocol version %d", ErrMalformed, b[0])
	}
	if b[1] != EAPOLTypeKey {
		return nil, fmt.Errorf("%w: EAPOL packet type %d is not EAPOL-Key", ErrMalformed, b[1])
	}
	n := eapolHeaderLen + int(binary.BigEndian.Uint16(b[2:4]))
	if n > len(b) {
		return nil, fmt.Errorf("%w: EAPOL body length %d exceeds the %d bytes received", ErrMalformed, n-eapolHeaderLen, len(b)-eapolHeaderLen)
	}
	if n < keyHeaderLen {
		return nil, fmt.Errorf("%w: EAPOL-Key body of %d bytes, want at least %d", ErrMalformed, n-eapolHeaderLen, keyHeaderLen-eapolHeaderLen)
	}
	b = b[:n]
	if b[4] != DescriptorRSN {
		return nil, fmt.Errorf("%w: key descriptor type %d is not RSN", ErrMalformed, b[4])
	}
	k.Info = KeyInfo(binary.BigEndian.Uint16(b[5:7]))
	k.KeyLength = binary.BigEndian.Uint16(b[7:9])
	k.ReplayCounter = binary.BigEndian.Uint64(b[9:17])
	copy(k.Nonce[:], b[17:49])
	copy(k.IV[:], b[49:65])
	copy(k.RSC[:], b[65:73])
	copy(k.KeyID[:], b[73:81])
	copy(k.MIC[:], b[micOffset:micOffset+MICLen])
	dl := int(binary.BigEndian.Uint16(b[keyDataLenOff : keyDataLenOff+2]))
	if dl != n-keyHeaderLen {
		return nil, fmt.Errorf("%w: key data length %d, but %d bytes follow", ErrMalformed, dl, n-keyHeaderLen)
	}
	k.KeyData = append([]byte(nil), b[keyHeaderLen:]...)
	return k, nil
}

// Marshal returns the frame as sent on the air, MIC field as it is in k.
// KeyData must be shorter than 65441 bytes (the EAPOL length field's limit);
// the frames of a handshake hold less than 200.
func (k *KeyFrame) Marshal() []byte {
	b := make([]byte, keyHeaderLen+len(k.KeyData))
	b[0] = k.ProtocolVersion
	b[1] = EAPOLTypeKey
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)-eapolHeaderLen))
	b[4] = DescriptorRSN
	binary.BigEndian.PutUint16(b[5:7], uint16(k.Info))
	binary.BigEndian.PutUint16(b[7:9], k.KeyLength)
	binary.BigEndian.PutUint64(b[9:17], k.ReplayCounter)
	copy(b[17:49], k.Nonce[:])
	copy(b[49:65], k.IV[:])
	copy(b[65:73], k.RSC[:])
	copy(b[73:81], k.KeyID[:])
	copy(b[micOffset:], k.MIC[:])
	binary.BigEndian.PutUint16(b[keyDataLenOff:], uint16(len(k.KeyData)))
	copy(b[keyHeaderLen:], k.KeyData)
	return b
}

// Element and KDE identifiers found in EAPOL-Key key data.
const (
	elemRSN    = 48   // RSN element
	elemVendor = 0xdd // vendor specific element; KDEs use it too
	kdeGTK     = 1    // GTK KDE data type under OUI 00-0F-AC
)

var ouiIEEE = [3]byte{0x00, 0x0f, 0xac}

// KeyData is what this package reads from (decrypted) key data.
type KeyData struct {
	RSNE     []byte // the first RSN element, with its 2-byte header; nil if none
	GTK      []byte // from the GTK KDE; nil if none
	GTKIndex int    // key ID, 0 to 3
	GTKTx    bool
}

// ParseKeyData reads the RSN element and the GTK KDE out of key data (a
// sequence of elements, possibly ended by 0xdd 0x00… padding). Other
// elements and KDEs are skipped; a second RSN element or GTK KDE is an
// error, as the standard allows one of each.
func ParseKeyData(b []byte) (KeyData, error) {
	var kd KeyData
	for len(b) > 0 {
		if b[0] == elemVendor && (len(b) == 1 || b[1] == 0) {
			for _, c := range b[1:] {
				if c != 0 {
					return KeyData{}, fmt.Errorf("%w: bytes after key data padding", ErrMalformed)
				}
			}
			break
		}
		if len(b) < 2 || len(b) < 2+int(b[1]) {
			return KeyData{}, fmt.Errorf("%w: key data element %d truncated", ErrMalformed, b[0])
		}
		elem, body := b[:2+int(b[1])], b[2:2+int(b[1])]
		b = b[len(elem):]
		switch {
		case elem[0] == elemRSN:
			if kd.RSNE != nil {
				return KeyData{}, fmt.Errorf("%w: two RSN elements in key data", ErrMalformed)
			}
			kd.RSNE = append([]byte(nil), elem...)
		case elem[0] == elemVendor && len(body) >= 4 && [3]byte(body[:3]) == ouiIEEE && body[3] == kdeGTK:
			if kd.GTK != nil {
				return KeyData{}, fmt.Errorf("%w: two GTK KDEs in key data", ErrMalformed)
			}
			g := body[4:]
			if len(g) < 2+5 || len(g) > 2+32 {
				return KeyData{}, fmt.Errorf("%w: GTK KDE of %d bytes", ErrMalformed, len(g))
			}
			kd.GTKIndex = int(g[0] & 0x03)
			kd.GTKTx = g[0]&0x04 != 0
			kd.GTK = append([]byte(nil), g[2:]...)
		}
	}
	return kd, nil
}

// gtkKDE returns the GTK KDE carrying gtk under key ID idx.
func gtkKDE(gtk []byte, idx int) []byte {
	kde := []byte{elemVendor, byte(4 + 2 + len(gtk)), ouiIEEE[0], ouiIEEE[1], ouiIEEE[2], kdeGTK, byte(idx & 0x03), 0}
	return append(kde, gtk...)
}

// padKeyData pads key data for AES key wrap (12.7.2): to a multiple of 8
// bytes and at least 16, with 0xdd then zeros.
func padKeyData(b []byte) []byte {
	if len(b)%8 != 0 || len(b) < 16 {
		b = append(b, elemVendor)
		for len(b)%8 != 0 || len(b) < 16 {
			b = append(b, 0)
		}
	}
	return b
}
