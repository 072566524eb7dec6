package ieee80211

import (
	"encoding/binary"
	"fmt"
)

// wmmOUIType is the vendor type of WMM elements under OUIMicrosoft.
const wmmOUIType = 2

// WMM element subtypes.
const (
	wmmSubtypeInfo  = 0
	wmmSubtypeParam = 1
	wmmVersion      = 1
)

// WMMInfoLen and WMMParamsLen are the body lengths, vendor header included.
const (
	WMMInfoLen   = 7
	WMMParamsLen = 24
)

// Access categories, in the order of the parameter records (their ACI).
const (
	ACBestEffort = 0
	ACBackground = 1
	ACVideo      = 2
	ACVoice      = 3
)

// WMMAC is the EDCA parameter record of one access category.
type WMMAC struct {
	AIFSN  uint8 // 2..15
	ACM    bool  // admission control mandatory
	ECWMin uint8 // CWmin = 2^ECWMin - 1
	ECWMax uint8
	TXOP   uint16 // TXOP limit in units of 32 µs
}

// WMMParams is the WMM Parameter element an AP sends in beacons, probe
// and association responses.
type WMMParams struct {
	// QoSInfo holds the parameter set count (low four bits), which a
	// change of the parameters increments, and U-APSD support (bit 7).
	QoSInfo uint8
	AC      [4]WMMAC // indexed by ACBestEffort … ACVoice
}

// DefaultWMMParams are the parameters hostapd advertises by default (the
// 802.11 EDCA defaults for an AP's stations).
func DefaultWMMParams() WMMParams {
	return WMMParams{AC: [4]WMMAC{
		ACBestEffort: {AIFSN: 3, ECWMin: 4, ECWMax: 10},
		ACBackground: {AIFSN: 7, ECWMin: 4, ECWMax: 10},
		ACVideo:      {AIFSN: 2, ECWMin: 3, ECWMax: 4, TXOP: 94},
		ACVoice:      {AIFSN: 2, ECWMin: 2, ECWMax: 3, TXOP: 47},
	}}
}

// Element returns the WMM Parameter element.
func (p WMMParams) Element() Element {
	b := make([]byte, 0, WMMParamsLen)
	b = append(b, OUIMicrosoft[:]...)
	b = append(b, wmmOUIType, wmmSubtypeParam, wmmVersion, p.QoSInfo, 0)
	for aci, ac := range p.AC {
		aciAIFSN := byte(aci)<<5 | ac.AIFSN&0x0f
		if ac.ACM {
			aciAIFSN |= 1 << 4
		}
		b = append(b, aciAIFSN, ac.ECWMax<<4|ac.ECWMin&0x0f)
		b = binary.LittleEndian.AppendUint16(b, ac.TXOP)
	}
	return Element{ID: IDVendor, Data: b}
}

// ParseWMMParams parses a WMM Parameter element body (vendor header
// included). Each record must name the access category of its position.
func ParseWMMParams(data []byte) (WMMParams, error) {
	if len(data) != WMMParamsLen {
		return WMMParams{}, fmt.Errorf("wmm parameter element: length %d, want %d", len(data), WMMParamsLen)
	}
	if OUI(data[:3]) != OUIMicrosoft || data[3] != wmmOUIType || data[4] != wmmSubtypeParam || data[5] != wmmVersion {
		return WMMParams{}, fmt.Errorf("wmm parameter element: header % x", data[:6])
	}
	// data[7] is reserved; it is not kept, so it is not checked either.
	p := WMMParams{QoSInfo: data[6]}
	for i := range p.AC {
		r := data[8+4*i : 12+4*i]
		if int(r[0]>>5&3) != i {
			return WMMParams{}, fmt.Errorf("wmm parameter record %d names access category %d", i, r[0]>>5&3)
		}
		p.AC[i] = WMMAC{
			AIFSN:  r[0] & 0x0f,
			ACM:    r[0]&(1<<4) != 0,
			ECWMin: r[1] & 0x0f,
			ECWMax: r[1] >> 4,
			TXOP:   binary.LittleEndian.Uint16(r[2:]),
		}
	}
	return p, nil
}

// WMMInfo builds the WMM Information element a station sends; qosInfo
// carries its U-APSD flags and max service period length.
func WMMInfo(qosInfo uint8) Element {
	b := make([]byte, 0, WMMInfoLen)
	b = append(b, OUIMicrosoft[:]...)
	b = append(b, wmmOUIType, wmmSubtypeInfo, wmmVersion, qosInfo)
	return Element{ID: IDVendor, Data: b}
}

// WMM reports whether the elements carry a well-formed WMM Information or
// Parameter element (the station is QoS capable) and its QoS info octet.
func (es Elements) WMM() (qosInfo uint8, ok bool) {
	for _, e := range es {
		d := e.Data
		if e.ID != IDVendor || len(d) < WMMInfoLen || OUI(d[:3]) != OUIMicrosoft || d[3] != wmmOUIType || d[5] != wmmVersion {
			continue
		}
		switch {
		case d[4] == wmmSubtypeInfo && len(d) == WMMInfoLen:
			return d[6], true
		case d[4] == wmmSubtypeParam && len(d) == WMMParamsLen:
			return d[6], true
		}
	}
	return 0, false
}
