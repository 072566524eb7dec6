package nl80211

import (
	"slices"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// wiphyMsg is one message of a GET_WIPHY split dump for radio idx: the
// kernel repeats the index and name in each and adds a slice of the rest.
func wiphyMsg(idx int, name string, rest func(ae *netlink.AttributeEncoder)) []byte {
	return encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_WIPHY, uint32(idx))
		ae.String(unix.NL80211_ATTR_WIPHY_NAME, name)
		ae.Uint32(unix.NL80211_ATTR_GENERATION, 5)
		rest(ae)
	})
}

// band nests a band's attributes the way the kernel does.
func band(ae *netlink.AttributeEncoder, id uint16, f func(ae *netlink.AttributeEncoder)) {
	ae.Nested(unix.NL80211_ATTR_WIPHY_BANDS, func(ae *netlink.AttributeEncoder) error {
		ae.Nested(id, func(ae *netlink.AttributeEncoder) error {
			f(ae)
			return nil
		})
		return nil
	})
}

// freq is one channel, nested under its position in the band.
func freq(ae *netlink.AttributeEncoder, pos uint16, mhz uint32, flags ...uint16) {
	ae.Nested(unix.NL80211_BAND_ATTR_FREQS, func(ae *netlink.AttributeEncoder) error {
		ae.Nested(pos, func(ae *netlink.AttributeEncoder) error {
			ae.Uint32(unix.NL80211_FREQUENCY_ATTR_FREQ, mhz)
			for _, f := range flags {
				ae.Flag(f, true)
			}
			ae.Uint32(unix.NL80211_FREQUENCY_ATTR_MAX_TX_POWER, 2000)
			return nil
		})
		return nil
	})
}

// hwsimDump is shaped like mac80211_hwsim's split dump under the world
// regulatory domain: capabilities first, then one channel per message,
// then the rates; a second radio that cannot be an AP.
func hwsimDump() [][]byte {
	var msgs [][]byte
	msgs = append(msgs, wiphyMsg(0, "phy0", func(ae *netlink.AttributeEncoder) {
		ae.Uint8(unix.NL80211_ATTR_MAX_NUM_SCAN_SSIDS, 255)
		ae.Bytes(unix.NL80211_ATTR_CIPHER_SUITES, u32s(0x000fac01, 0x000fac05, 0x000fac02, 0x000fac04, 0x000fac06))
		ae.Nested(unix.NL80211_ATTR_SUPPORTED_IFTYPES, func(ae *netlink.AttributeEncoder) error {
			for _, it := range []uint16{unix.NL80211_IFTYPE_ADHOC, unix.NL80211_IFTYPE_STATION, unix.NL80211_IFTYPE_AP, unix.NL80211_IFTYPE_MONITOR} {
				ae.Flag(it, true)
			}
			return nil
		})
	}))
	msgs = append(msgs, wiphyMsg(0, "phy0", func(ae *netlink.AttributeEncoder) {
		band(ae, unix.NL80211_BAND_2GHZ, func(ae *netlink.AttributeEncoder) {
			ae.Bytes(unix.NL80211_BAND_ATTR_HT_MCS_SET, []byte{0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0})
			ae.Uint16(unix.NL80211_BAND_ATTR_HT_CAPA, 0x107e)
			ae.Uint8(unix.NL80211_BAND_ATTR_HT_AMPDU_FACTOR, 3)
			ae.Uint8(unix.NL80211_BAND_ATTR_HT_AMPDU_DENSITY, 6)
		})
	}))
	for i, mhz := range []uint32{2412, 2437, 2467, 2484} {
		var flags []uint16
		switch mhz {
		case 2467:
			flags = []uint16{unix.NL80211_FREQUENCY_ATTR_NO_IR}
		case 2484:
			flags = []uint16{unix.NL80211_FREQUENCY_ATTR_DISABLED}
		}
		msgs = append(msgs, wiphyMsg(0, "phy0", func(ae *netlink.AttributeEncoder) {
			band(ae, unix.NL80211_BAND_2GHZ, func(ae *netlink.AttributeEncoder) { freq(ae, uint16(i), mhz, flags...) })
		}))
	}
	msgs = append(msgs, wiphyMsg(0, "phy0", func(ae *netlink.AttributeEncoder) {
		band(ae, unix.NL80211_BAND_2GHZ, func(ae *netlink.AttributeEncoder) {
			ae.Nested(unix.NL80211_BAND_ATTR_RATES, func(ae *netlink.AttributeEncoder) error {
				for i, r := range []uint32{10, 20, 55, 110, 60, 540} {
					ae.Nested(uint16(i), func(ae *netlink.AttributeEncoder) error {
						ae.Uint32(unix.NL80211_BITRATE_ATTR_RATE, r)
						if r == 20 {
							ae.Flag(unix.NL80211_BITRATE_ATTR_2GHZ_SHORTPREAMBLE, true)
						}
						return nil
					})
				}
				return nil
			})
		})
	}))
	msgs = append(msgs, wiphyMsg(0, "phy0", func(ae *netlink.AttributeEncoder) {
		band(ae, unix.NL80211_BAND_5GHZ, func(ae *netlink.AttributeEncoder) {
			freq(ae, 0, 5180)
		})
	}))
	msgs = append(msgs, wiphyMsg(0, "phy0", func(ae *netlink.AttributeEncoder) {
		band(ae, unix.NL80211_BAND_5GHZ, func(ae *netlink.AttributeEncoder) {
			freq(ae, 1, 5260, unix.NL80211_FREQUENCY_ATTR_RADAR, unix.NL80211_FREQUENCY_ATTR_NO_IR)
		})
	}))
	msgs = append(msgs, wiphyMsg(0, "phy0", func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_FEATURE_FLAGS, unix.NL80211_FEATURE_SK_TX_STATUS|unix.NL80211_FEATURE_FULL_AP_CLIENT_STATE)
		ext := make([]byte, 8)
		n := unix.NL80211_EXT_FEATURE_CONTROL_PORT_OVER_NL80211
		ext[n/8] |= 1 << (n % 8)
		ae.Bytes(unix.NL80211_ATTR_EXT_FEATURES, ext)
	}))
	msgs = append(msgs, wiphyMsg(1, "phy1", func(ae *netlink.AttributeEncoder) {
		ae.Nested(unix.NL80211_ATTR_SUPPORTED_IFTYPES, func(ae *netlink.AttributeEncoder) error {
			ae.Flag(unix.NL80211_IFTYPE_STATION, true)
			return nil
		})
		ae.Bytes(unix.NL80211_ATTR_EXT_FEATURES, []byte{0xff})
	}))
	return msgs
}

func TestParseWiphyDump(t *testing.T) {
	phys, err := parseWiphyDump(hwsimDump())
	if err != nil {
		t.Fatal(err)
	}
	if len(phys) != 2 {
		t.Fatalf("%d radios, want 2", len(phys))
	}
	p := phys[0]
	if p.Index != 0 || p.Name != "phy0" || !p.APMode || !p.ControlPort || !p.FullAPClientState || p.MaxScanSSIDs != 255 {
		t.Errorf("phy0 = %+v", p)
	}
	if !slices.Contains(p.Ciphers, 0x000fac04) || len(p.Ciphers) != 5 {
		t.Errorf("ciphers = %x", p.Ciphers)
	}
	if len(p.Bands) != 2 {
		t.Fatalf("%d bands, want 2 (parts of one band merged)", len(p.Bands))
	}
	b := p.Bands[0]
	if b.ID != unix.NL80211_BAND_2GHZ {
		t.Errorf("first band %d", b.ID)
	}
	want := []Channel{
		{FreqMHz: 2412, Number: 1, MaxPower: 2000},
		{FreqMHz: 2437, Number: 6, MaxPower: 2000},
		{FreqMHz: 2467, Number: 12, NoIR: true, MaxPower: 2000},
		{FreqMHz: 2484, Number: 14, Disabled: true, MaxPower: 2000},
	}
	if !slices.Equal(b.Channels, want) {
		t.Errorf("2.4 GHz channels\n got %+v\nwant %+v", b.Channels, want)
	}
	if !slices.Equal(b.Rates, []int{10, 20, 55, 110, 60, 540}) {
		t.Errorf("rates %v", b.Rates)
	}
	if b.HT == nil || b.HT.Info != 0x107e || b.HT.AMPDU != 3|6<<2 || b.HT.MCSSet[0] != 0xff || b.HT.MCSSet[12] != 1 {
		t.Errorf("HT = %+v", b.HT)
	}
	b5 := p.Bands[1]
	if b5.ID != unix.NL80211_BAND_5GHZ || b5.HT != nil || len(b5.Channels) != 2 ||
		b5.Channels[0].Number != 36 || !b5.Channels[1].Radar || b5.Channels[1].Number != 52 {
		t.Errorf("5 GHz band = %+v", b5)
	}
	q := phys[1]
	if q.Name != "phy1" || q.APMode || q.ControlPort || q.FullAPClientState { // its bitmap stops short of the bit
		t.Errorf("phy1 = %+v", q)
	}
}

func TestParseWiphyErrors(t *testing.T) {
	noIndex := encode(func(ae *netlink.AttributeEncoder) { ae.String(unix.NL80211_ATTR_WIPHY_NAME, "phy0") })
	if _, err := parseWiphyDump([][]byte{noIndex}); err == nil {
		t.Error("a message without a wiphy index parsed")
	}
	if _, err := parseWiphyDump([][]byte{{0xff, 0xff, 0x01}}); err == nil {
		t.Error("garbage parsed")
	}
	short := encode(func(ae *netlink.AttributeEncoder) { ae.Uint16(unix.NL80211_ATTR_WIPHY, 1) })
	if _, err := parseWiphyDump([][]byte{short}); err == nil {
		t.Error("a 2-byte wiphy index parsed")
	}
}

func TestChoosePHY(t *testing.T) {
	phys, err := parseWiphyDump(hwsimDump())
	if err != nil {
		t.Fatal(err)
	}
	if p, err := choosePHY(phys, ""); err != nil || p.Name != "phy0" {
		t.Errorf("first AP radio = %v, %v", p.Name, err)
	}
	if _, err := choosePHY(phys, "phy1"); err == nil {
		t.Error("phy1 chosen though it cannot be an AP")
	}
	if _, err := choosePHY(phys, "phy9"); err == nil {
		t.Error("a missing radio chosen")
	}
	if _, err := choosePHY(phys[1:], ""); err == nil {
		t.Error("a radio chosen where none can be an AP")
	}
}

func TestChannelNumber(t *testing.T) {
	for mhz, want := range map[int]int{2412: 1, 2472: 13, 2484: 14, 5180: 36, 5825: 165, 5955: 1, 5935: 2, 4920: 184, 900: 0} {
		if got := channelNumber(mhz); got != want {
			t.Errorf("channelNumber(%d) = %d, want %d", mhz, got, want)
		}
	}
}

func TestParseInterface(t *testing.T) {
	b := encode(func(ae *netlink.AttributeEncoder) {
		ae.Uint32(unix.NL80211_ATTR_IFINDEX, 4)
		ae.String(unix.NL80211_ATTR_IFNAME, "wlan0")
		ae.Uint32(unix.NL80211_ATTR_WIPHY, 1)
		ae.Uint32(unix.NL80211_ATTR_IFTYPE, unix.NL80211_IFTYPE_STATION)
		ae.Bytes(unix.NL80211_ATTR_MAC, apMAC)
	})
	ifc, err := parseInterface(b)
	if err != nil {
		t.Fatal(err)
	}
	if ifc.index != 4 || ifc.name != "wlan0" || ifc.wiphy != 1 || ifc.iftype != unix.NL80211_IFTYPE_STATION || ifc.mac.String() != apMAC.String() {
		t.Errorf("interface = %+v", ifc)
	}
}
