package ieee80211

import (
	"bytes"
	"errors"
	"fmt"
)

// ElementID identifies an information element.
type ElementID uint8

// The element IDs this package builds or looks at.
const (
	IDSSID              ElementID = 0
	IDSupportedRates    ElementID = 1
	IDDSParams          ElementID = 3
	IDTIM               ElementID = 5
	IDCountry           ElementID = 7
	IDChallengeText     ElementID = 16
	IDPowerCapability   ElementID = 33
	IDSupportedChannels ElementID = 36
	IDERP               ElementID = 42
	IDHTCapabilities    ElementID = 45
	IDRSN               ElementID = 48
	IDExtSupportedRates ElementID = 50
	IDHTOperation       ElementID = 61
	IDExtCapabilities   ElementID = 127
	IDVendor            ElementID = 221
	IDExtension         ElementID = 255
)

// MaxSSIDLen is the longest SSID 802.11 allows.
const MaxSSIDLen = 32

// ErrTruncated is wrapped by every error about input that ends before
// what it announces.
var ErrTruncated = errors.New("truncated")

// Element is one information element. Data is its body, without the ID
// and length octets; after ParseElements it aliases the parsed buffer.
type Element struct {
	ID   ElementID
	Data []byte
}

// Elements is a run of information elements in frame order.
type Elements []Element

// ParseElements splits b into elements. It is strict: an element whose
// length runs past the end of b is an error, and so is a lone trailing
// octet. Empty input gives no elements and no error.
func ParseElements(b []byte) (Elements, error) {
	var es Elements
	for off := 0; off < len(b); {
		if len(b)-off < 2 {
			return nil, fmt.Errorf("element header at offset %d: %w", off, ErrTruncated)
		}
		id, n := ElementID(b[off]), int(b[off+1])
		if len(b)-off-2 < n {
			return nil, fmt.Errorf("element %d at offset %d: length %d, %d octets left: %w",
				id, off, n, len(b)-off-2, ErrTruncated)
		}
		// The capacity is clipped so that appending to Data can never
		// overwrite the elements after it.
		es = append(es, Element{ID: id, Data: b[off+2 : off+2+n : off+2+n]})
		off += 2 + n
	}
	return es, nil
}

// AppendTo appends the elements' wire form to b. It fails if an element
// body is longer than the 255 octets its length field can say.
func (es Elements) AppendTo(b []byte) ([]byte, error) {
	for _, e := range es {
		if len(e.Data) > 255 {
			return nil, fmt.Errorf("element %d: body of %d octets exceeds 255", e.ID, len(e.Data))
		}
		b = append(b, byte(e.ID), byte(len(e.Data)))
		b = append(b, e.Data...)
	}
	return b, nil
}

// Marshal returns the elements' wire form.
func (es Elements) Marshal() ([]byte, error) {
	return es.AppendTo(nil)
}

// Find returns the first element with the given ID.
func (es Elements) Find(id ElementID) (Element, bool) {
	for _, e := range es {
		if e.ID == id {
			return e, true
		}
	}
	return Element{}, false
}

// Count says how many elements have the given ID; a station repeating an
// element that may appear once is suspicious.
func (es Elements) Count(id ElementID) int {
	n := 0
	for _, e := range es {
		if e.ID == id {
			n++
		}
	}
	return n
}

// OUI is an organizationally unique identifier, as vendor elements and
// cipher suites start with.
type OUI [3]byte

// Well-known OUIs.
var (
	OUIIEEE      = OUI{0x00, 0x0f, 0xac} // 802.11 cipher and AKM suites
	OUIMicrosoft = OUI{0x00, 0x50, 0xf2} // WMM, WPA1, WPS
)

// Vendor returns the first vendor-specific element whose body starts with
// oui and the vendor type typ. The returned body still holds the OUI and
// the type.
func (es Elements) Vendor(oui OUI, typ uint8) (Element, bool) {
	prefix := []byte{oui[0], oui[1], oui[2], typ}
	for _, e := range es {
		if e.ID == IDVendor && bytes.HasPrefix(e.Data, prefix) {
			return e, true
		}
	}
	return Element{}, false
}

// SSID builds an SSID element. A hidden network's beacon carries an empty
// one.
func SSID(ssid []byte) Element {
	return Element{ID: IDSSID, Data: ssid}
}

// SSID returns the SSID element's body; ok is false when there is none or
// it is longer than 802.11 allows.
func (es Elements) SSID() (ssid []byte, ok bool) {
	e, ok := es.Find(IDSSID)
	if !ok || len(e.Data) > MaxSSIDLen {
		return nil, false
	}
	return e.Data, true
}

// DSParams builds the DS Parameter Set element: the current channel.
func DSParams(channel uint8) Element {
	return Element{ID: IDDSParams, Data: []byte{channel}}
}

// Channel returns the channel of the DS Parameter Set element.
func (es Elements) Channel() (uint8, bool) {
	e, ok := es.Find(IDDSParams)
	if !ok || len(e.Data) != 1 {
		return 0, false
	}
	return e.Data[0], true
}

// ERP builds the ERP element (2.4 GHz with OFDM rates). Flags are the
// ERPNonERPPresent, ERPUseProtection and ERPBarkerPreamble bits.
func ERP(flags uint8) Element {
	return Element{ID: IDERP, Data: []byte{flags}}
}

// ERP element flags.
const (
	ERPNonERPPresent  = 1 << 0 // an 802.11b-only station is associated
	ERPUseProtection  = 1 << 1 // OFDM frames need RTS/CTS or CTS-to-self
	ERPBarkerPreamble = 1 << 2 // some station cannot do short preamble
)

// ExtCapabilities builds an Extended Capabilities element with the given
// capability bits set (bit n is bit n%8 of octet n/8), long enough to hold
// the highest of them.
func ExtCapabilities(bits ...uint) Element {
	var data []byte
	for _, n := range bits {
		for uint(len(data)) <= n/8 {
			data = append(data, 0)
		}
		data[n/8] |= 1 << (n % 8)
	}
	return Element{ID: IDExtCapabilities, Data: data}
}

// Extended capability bits a Wi-Fi hotspot may advertise.
const (
	ExtCapExtendedChannelSwitching = 2
	ExtCapBSSTransition            = 19
	ExtCapOperatingModeNotif       = 62
)

// Country is what the Country element says: where we are, and one run of
// channels with their transmit power limit.
type Country struct {
	Code         string // ISO 3166-1 alpha-2, e.g. "DE"
	Environment  byte   // ' ' any, 'I' indoor, 'O' outdoor; 0 means ' '
	FirstChannel uint8
	NumChannels  uint8
	MaxPowerDBm  int8
}

// Element builds the Country element. 802.11 wants its length even; with
// the one triplet it is six octets, so no pad octet is needed.
func (c Country) Element() (Element, error) {
	if len(c.Code) != 2 || !isUpperAlpha(c.Code[0]) || !isUpperAlpha(c.Code[1]) {
		return Element{}, fmt.Errorf("country code %q: want two letters A-Z", c.Code)
	}
	if c.NumChannels == 0 {
		return Element{}, errors.New("country element: no channels")
	}
	env := c.Environment
	if env == 0 {
		env = ' '
	}
	data := []byte{c.Code[0], c.Code[1], env, c.FirstChannel, c.NumChannels, byte(c.MaxPowerDBm)}
	return Element{ID: IDCountry, Data: data}, nil
}

func isUpperAlpha(c byte) bool { return c >= 'A' && c <= 'Z' }
