package ieee80211

import "fmt"

// Rate is a legacy bit rate as the rates elements carry it: the low seven
// bits in units of 500 kbit/s, the top bit (Basic) set for the rates every
// station of the BSS must support.
type Rate uint8

// Basic marks a rate of the basic rate set.
const Basic Rate = 0x80

// RateFrom100k converts a rate in units of 100 kbit/s (as nl80211 reports
// bitrates) to a Rate.
func RateFrom100k(r int, basic bool) (Rate, error) {
	if r <= 0 || r%5 != 0 || r/5 > 127 {
		return 0, fmt.Errorf("bitrate %d00 kbit/s does not fit a rates element", r)
	}
	v := Rate(r / 5)
	if basic {
		v |= Basic
	}
	return v, nil
}

// Value is the rate without the basic bit, in units of 500 kbit/s.
func (r Rate) Value() uint8 { return uint8(r &^ Basic) }

// IsBasic says whether the rate is in the basic rate set.
func (r Rate) IsBasic() bool { return r&Basic != 0 }

// isDSSS says whether the rate is one of 802.11b's (1, 2, 5.5, 11 Mbit/s).
func (r Rate) isDSSS() bool {
	switch r.Value() {
	case 2, 4, 11, 22:
		return true
	}
	return false
}

// BandRates turns a band's bitrates (units of 100 kbit/s, from the PHY)
// into the rates an AP advertises, with hostapd's default basic rates
// marked: 1, 2, 5.5 and 11 Mbit/s on 2.4 GHz, 6, 12 and 24 Mbit/s on
// 5 GHz. Rates that do not fit the element are skipped.
func BandRates(bitrates []int, twoGHz bool) []Rate {
	basic := map[int]bool{60: true, 120: true, 240: true}
	if twoGHz {
		basic = map[int]bool{10: true, 20: true, 55: true, 110: true}
	}
	var rs []Rate
	for _, b := range bitrates {
		r, err := RateFrom100k(b, basic[b])
		if err == nil {
			rs = append(rs, r)
		}
	}
	return rs
}

// maxSupportedRates is how many rates the Supported Rates element holds;
// the rest go in Extended Supported Rates.
const maxSupportedRates = 8

// RateElements splits rates into the Supported Rates element (the first
// eight) and, when there are more, the Extended Supported Rates element
// (ok false when there are not).
func RateElements(rates []Rate) (supported Element, extended Element, ok bool) {
	n := min(len(rates), maxSupportedRates)
	supported = Element{ID: IDSupportedRates, Data: ratesBytes(rates[:n])}
	if len(rates) <= maxSupportedRates {
		return supported, Element{}, false
	}
	return supported, Element{ID: IDExtSupportedRates, Data: ratesBytes(rates[n:])}, true
}

func ratesBytes(rs []Rate) []byte {
	b := make([]byte, len(rs))
	for i, r := range rs {
		b[i] = byte(r)
	}
	return b
}

// Rates returns the rates of the Supported Rates and Extended Supported
// Rates elements together, in that order. Besides rates the elements may
// hold BSS membership selectors (HT PHY 127, VHT 126…), which come back as
// they are.
func (es Elements) Rates() []Rate {
	var rs []Rate
	for _, id := range []ElementID{IDSupportedRates, IDExtSupportedRates} {
		if e, ok := es.Find(id); ok {
			for _, b := range e.Data {
				rs = append(rs, Rate(b))
			}
		}
	}
	return rs
}

// SupportsBasicRates says whether a station's rates include every basic
// rate of ours; a station that does not is refused with
// StatusBasicRatesUnsupported.
func SupportsBasicRates(ours, theirs []Rate) bool {
	for _, o := range ours {
		if !o.IsBasic() {
			continue
		}
		found := false
		for _, t := range theirs {
			if t.Value() == o.Value() {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
