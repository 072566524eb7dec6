package nl80211

import (
	"encoding/binary"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// parseWiphyDump turns the messages of a GET_WIPHY split dump (each the
// attributes of one generic netlink message) into PHYs. A split dump
// spreads one radio over many messages, each repeating the wiphy index and
// carrying a slice of the rest: a band's capabilities in one, its channels
// in the next ones, so parts of the same band are merged by band ID.
func parseWiphyDump(msgs [][]byte) ([]PHY, error) {
	var phys []PHY
	at := map[int]int{} // wiphy index to position in phys
	for i, b := range msgs {
		var p PHY
		if err := parseWiphy(b, &p); err != nil {
			return nil, fmt.Errorf("wiphy message %d: %w", i, err)
		}
		j, ok := at[p.Index]
		if !ok {
			at[p.Index] = len(phys)
			phys = append(phys, p)
			continue
		}
		mergePHY(&phys[j], &p)
	}
	return phys, nil
}

func mergePHY(dst, src *PHY) {
	if src.Name != "" {
		dst.Name = src.Name
	}
	dst.APMode = dst.APMode || src.APMode
	dst.ControlPort = dst.ControlPort || src.ControlPort
	dst.FullAPClientState = dst.FullAPClientState || src.FullAPClientState
	dst.Ciphers = append(dst.Ciphers, src.Ciphers...)
	if src.MaxScanSSIDs != 0 {
		dst.MaxScanSSIDs = src.MaxScanSSIDs
	}
	for _, sb := range src.Bands {
		merged := false
		for k := range dst.Bands {
			db := &dst.Bands[k]
			if db.ID != sb.ID {
				continue
			}
			db.Channels = append(db.Channels, sb.Channels...)
			db.Rates = append(db.Rates, sb.Rates...)
			if sb.HT != nil {
				db.HT = sb.HT
			}
			merged = true
			break
		}
		if !merged {
			dst.Bands = append(dst.Bands, sb)
		}
	}
}

// parseWiphy reads one GET_WIPHY message into p.
func parseWiphy(b []byte, p *PHY) error {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return err
	}
	p.Index = -1
	for ad.Next() {
		switch ad.Type() {
		case unix.NL80211_ATTR_WIPHY:
			p.Index = int(ad.Uint32())
		case unix.NL80211_ATTR_WIPHY_NAME:
			p.Name = ad.String()
		case unix.NL80211_ATTR_SUPPORTED_IFTYPES:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					if nad.Type() == unix.NL80211_IFTYPE_AP {
						p.APMode = true
					}
				}
				return nil
			})
		case unix.NL80211_ATTR_CIPHER_SUITES:
			d := ad.Bytes()
			for len(d) >= 4 {
				p.Ciphers = append(p.Ciphers, binary.NativeEndian.Uint32(d))
				d = d[4:]
			}
		case unix.NL80211_ATTR_MAX_NUM_SCAN_SSIDS:
			p.MaxScanSSIDs = int(ad.Uint8())
		case unix.NL80211_ATTR_FEATURE_FLAGS:
			p.FullAPClientState = ad.Uint32()&unix.NL80211_FEATURE_FULL_AP_CLIENT_STATE != 0
		case unix.NL80211_ATTR_EXT_FEATURES:
			p.ControlPort = extFeature(ad.Bytes(), unix.NL80211_EXT_FEATURE_CONTROL_PORT_OVER_NL80211)
		case unix.NL80211_ATTR_WIPHY_BANDS:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					band := Band{ID: int(nad.Type())}
					nad.Nested(func(bad *netlink.AttributeDecoder) error {
						return parseBand(bad, &band)
					})
					p.Bands = append(p.Bands, band)
				}
				return nil
			})
		}
	}
	if err := ad.Err(); err != nil {
		return err
	}
	if p.Index < 0 {
		return fmt.Errorf("no wiphy index")
	}
	return nil
}

// extFeature tests bit n of an NL80211_ATTR_EXT_FEATURES bitmap.
func extFeature(bitmap []byte, n int) bool {
	return n/8 < len(bitmap) && bitmap[n/8]&(1<<(n%8)) != 0
}

func parseBand(ad *netlink.AttributeDecoder, band *Band) error {
	var ht HTCapabilities
	haveHT := false
	for ad.Next() {
		switch ad.Type() {
		case unix.NL80211_BAND_ATTR_HT_CAPA:
			ht.Info = ad.Uint16()
			haveHT = true
		case unix.NL80211_BAND_ATTR_HT_AMPDU_FACTOR:
			ht.AMPDU = ht.AMPDU&^0x03 | ad.Uint8()&0x03
		case unix.NL80211_BAND_ATTR_HT_AMPDU_DENSITY:
			ht.AMPDU = ht.AMPDU&^0x1c | (ad.Uint8()&0x07)<<2
		case unix.NL80211_BAND_ATTR_HT_MCS_SET:
			copy(ht.MCSSet[:], ad.Bytes())
		case unix.NL80211_BAND_ATTR_FREQS:
			ad.Nested(func(fad *netlink.AttributeDecoder) error {
				for fad.Next() {
					var c Channel
					fad.Nested(func(cad *netlink.AttributeDecoder) error {
						parseChannel(cad, &c)
						return nil
					})
					if c.FreqMHz != 0 {
						c.Number = channelNumber(c.FreqMHz)
						band.Channels = append(band.Channels, c)
					}
				}
				return nil
			})
		case unix.NL80211_BAND_ATTR_RATES:
			ad.Nested(func(rad *netlink.AttributeDecoder) error {
				for rad.Next() {
					rad.Nested(func(r *netlink.AttributeDecoder) error {
						for r.Next() {
							if r.Type() == unix.NL80211_BITRATE_ATTR_RATE {
								band.Rates = append(band.Rates, int(r.Uint32()))
							}
						}
						return nil
					})
				}
				return nil
			})
		}
	}
	if haveHT {
		band.HT = &ht
	}
	return ad.Err()
}

func parseChannel(ad *netlink.AttributeDecoder, c *Channel) {
	for ad.Next() {
		switch ad.Type() {
		case unix.NL80211_FREQUENCY_ATTR_FREQ:
			c.FreqMHz = int(ad.Uint32())
		case unix.NL80211_FREQUENCY_ATTR_DISABLED:
			c.Disabled = true
		case unix.NL80211_FREQUENCY_ATTR_NO_IR:
			c.NoIR = true
		case unix.NL80211_FREQUENCY_ATTR_RADAR:
			c.Radar = true
		case unix.NL80211_FREQUENCY_ATTR_MAX_TX_POWER:
			c.MaxPower = int(ad.Uint32())
		}
	}
}

// channelNumber is the IEEE channel number of a 2.4, 5 or 6 GHz
// frequency, 0 for others.
func channelNumber(mhz int) int {
	switch {
	case mhz == 2484:
		return 14
	case mhz >= 2412 && mhz < 2484:
		return (mhz - 2407) / 5
	case mhz == 5935:
		return 2
	case mhz > 5950 && mhz <= 7115:
		return (mhz - 5950) / 5
	case mhz >= 5000 && mhz <= 5925:
		return (mhz - 5000) / 5
	case mhz >= 4910 && mhz <= 4980:
		return (mhz - 4000) / 5
	}
	return 0
}
