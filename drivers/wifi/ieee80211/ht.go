package ieee80211

import (
	"encoding/binary"
	"fmt"
)

// HT capability information bits (the Info field).
const (
	HTCapLDPC           = 1 << 0
	HTCapChannelWidth40 = 1 << 1  // 20/40 MHz supported
	HTCapSMPSMask       = 3 << 2  // spatial multiplexing power save
	HTCapSMPSDisabled   = 3 << 2  // the SMPS value for "disabled"
	HTCapGreenfield     = 1 << 4  // deprecated; hostapd leaves it off too
	HTCapSGI20          = 1 << 5  // short guard interval, 20 MHz
	HTCapSGI40          = 1 << 6  // short guard interval, 40 MHz
	HTCapTxSTBC         = 1 << 7  // transmit STBC
	HTCapRxSTBCMask     = 3 << 8  // receive STBC streams
	HTCapDelayedBA      = 1 << 10 // HT-delayed block ack
	HTCapMaxAMSDU7935   = 1 << 11
	HTCapDSSSCCK40      = 1 << 12
	HTCap40Intolerant   = 1 << 14
	HTCapLSIGTXOP       = 1 << 15
)

// HTCapabilitiesLen is the body length of the HT Capabilities element.
const HTCapabilitiesLen = 26

// HTCapabilities is the HT Capabilities element. Info, AMPDU (A-MPDU
// parameters: max length exponent | min spacing<<2) and MCSSet are what
// nl80211 reports of a PHY's band; the rest stays zero for an AP.
type HTCapabilities struct {
	Info   uint16
	AMPDU  uint8
	MCSSet [16]byte
	ExtCap uint16
	TxBF   uint32
	ASEL   uint8
}

// ForAP trims a PHY's capability information to what our AP, running on
// a 20 MHz channel unless ht40, can honour: no 40 MHz bits on 20 MHz, no
// greenfield, delayed block ack or 40 MHz intolerance, and spatial
// multiplexing power save disabled (hostapd's default).
func (h HTCapabilities) ForAP(ht40 bool) HTCapabilities {
	keep := uint16(HTCapLDPC | HTCapSGI20 | HTCapTxSTBC | HTCapRxSTBCMask | HTCapMaxAMSDU7935 | HTCapLSIGTXOP)
	if ht40 {
		keep |= HTCapChannelWidth40 | HTCapSGI40 | HTCapDSSSCCK40
	}
	h.Info = h.Info&keep | HTCapSMPSDisabled
	h.ExtCap, h.TxBF, h.ASEL = 0, 0, 0
	return h
}

// Element returns the HT Capabilities element.
func (h HTCapabilities) Element() Element {
	b := make([]byte, 0, HTCapabilitiesLen)
	b = binary.LittleEndian.AppendUint16(b, h.Info)
	b = append(b, h.AMPDU)
	b = append(b, h.MCSSet[:]...)
	b = binary.LittleEndian.AppendUint16(b, h.ExtCap)
	b = binary.LittleEndian.AppendUint32(b, h.TxBF)
	b = append(b, h.ASEL)
	return Element{ID: IDHTCapabilities, Data: b}
}

// ParseHTCapabilities parses an HT Capabilities element body.
func ParseHTCapabilities(data []byte) (HTCapabilities, error) {
	if len(data) != HTCapabilitiesLen {
		return HTCapabilities{}, fmt.Errorf("ht capabilities: length %d, want %d", len(data), HTCapabilitiesLen)
	}
	return HTCapabilities{
		Info:   binary.LittleEndian.Uint16(data),
		AMPDU:  data[2],
		MCSSet: [16]byte(data[3:19]),
		ExtCap: binary.LittleEndian.Uint16(data[19:]),
		TxBF:   binary.LittleEndian.Uint32(data[21:]),
		ASEL:   data[25],
	}, nil
}

// HTCapabilities returns the parsed HT Capabilities element; ok is false
// when there is none or it is malformed.
func (es Elements) HTCapabilities() (h HTCapabilities, ok bool) {
	e, ok := es.Find(IDHTCapabilities)
	if !ok {
		return HTCapabilities{}, false
	}
	h, err := ParseHTCapabilities(e.Data)
	return h, err == nil
}

// HTProtection is the HT protection mode of the HT Operation element.
type HTProtection uint8

// HT protection modes: none needed, non-HT stations in an overlapping BSS,
// 20 MHz stations in a 20/40 MHz BSS, non-HT stations associated.
const (
	HTProtectionNone HTProtection = iota
	HTProtectionNonMember
	HTProtection20MHz
	HTProtectionNonHTMixed
)

// HTOperationLen is the body length of the HT Operation element.
const HTOperationLen = 22

// HTOperation is the HT Operation element: the primary channel, five
// octets of operation information and the basic MCS set.
type HTOperation struct {
	PrimaryChannel uint8
	Info           [5]byte
	BasicMCS       [16]byte
}

// NewHTOperation describes a 20 MHz BSS on channel with the given
// protection mode and an empty basic MCS set, as hostapd has it.
func NewHTOperation(channel uint8, p HTProtection) HTOperation {
	op := HTOperation{PrimaryChannel: channel}
	op.Info[1] = byte(p) & 3
	return op
}

// Protection returns the protection mode.
func (o HTOperation) Protection() HTProtection { return HTProtection(o.Info[1] & 3) }

// Element returns the HT Operation element.
func (o HTOperation) Element() Element {
	b := make([]byte, 0, HTOperationLen)
	b = append(b, o.PrimaryChannel)
	b = append(b, o.Info[:]...)
	b = append(b, o.BasicMCS[:]...)
	return Element{ID: IDHTOperation, Data: b}
}

// ParseHTOperation parses an HT Operation element body.
func ParseHTOperation(data []byte) (HTOperation, error) {
	if len(data) != HTOperationLen {
		return HTOperation{}, fmt.Errorf("ht operation: length %d, want %d", len(data), HTOperationLen)
	}
	return HTOperation{
		PrimaryChannel: data[0],
		Info:           [5]byte(data[1:6]),
		BasicMCS:       [16]byte(data[6:22]),
	}, nil
}
