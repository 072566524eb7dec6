package ap

import (
	"fmt"
	"strings"

	"github.com/openmifi/openmifi/drivers/wifi/ieee80211"
	"github.com/openmifi/openmifi/drivers/wifi/nl80211"
	"github.com/openmifi/openmifi/drivers/wifi/wpa"
	"github.com/openmifi/openmifi/internal/clock"
	"github.com/openmifi/openmifi/internal/sharing"
)

// Reason codes we send, as Radio.DelStation takes them.
const (
	reasonUnspecified      = uint16(ieee80211.ReasonUnspecified)
	reasonPrevAuthNotValid = uint16(ieee80211.ReasonPrevAuthNotValid)
	reasonLeaving          = uint16(ieee80211.ReasonDeauthLeaving)
	reasonAPFull           = uint16(ieee80211.ReasonAPBusy)
	reasonClass2           = uint16(ieee80211.ReasonClass2FromNonauth)
	reasonClass3           = uint16(ieee80211.ReasonClass3FromNonassoc)
	reason4WayTimeout      = uint16(ieee80211.ReasonFourWayTimeout)
	reasonGroupKeyTimeout  = uint16(ieee80211.ReasonGroupKeyTimeout)
	reasonIEDiffers        = uint16(ieee80211.ReasonIEInFourWayDiffers)
)

// bss is the network one Start brought up.
type bss struct {
	ssid   []byte
	hidden bool
	freq   int
	ch     int
	max    int
	ht     bool
	band   *nl80211.Band
	rates  []ieee80211.Rate
	pmk    []byte
	rsne   []byte // our RSN element with its header
	gtk    []byte // the group key the kernel sends with
	gtkIdx int
	// hsGTK is the group key new handshakes hand out: gtk, or the
	// next one while a rekey is under way.
	hsGTK    []byte
	hsGTKIdx int

	frames     *ieee80211.BSS // builds every frame we send
	head, tail []byte         // beacon
	rekeyTimer clock.Timer
	interval   int
	dtim       int
}

// newBSS checks cfg against the radio and derives keys and elements.
func (a *AP) newBSS(cfg sharing.APConfig) (*bss, error) {
	if len(cfg.SSID) == 0 || len(cfg.SSID) > ieee80211.MaxSSIDLen {
		return nil, fmt.Errorf("SSID of %d bytes (allowed: 1..%d)", len(cfg.SSID), ieee80211.MaxSSIDLen)
	}
	if cfg.MaxStations < 1 || cfg.MaxStations > maxAID {
		return nil, fmt.Errorf("station limit %d out of range (allowed: 1..%d)", cfg.MaxStations, maxAID)
	}
	if !a.cfg.PHY.APMode && a.cfg.PHY.Name != "" {
		return nil, fmt.Errorf("radio %s cannot be an access point", a.cfg.PHY.Name)
	}
	band, ch, err := pickChannel(a.cfg.PHY, cfg.Band, cfg.Channel)
	if err != nil {
		return nil, err
	}
	pmk, err := wpa.PMK(cfg.Passphrase, []byte(cfg.SSID))
	if err != nil {
		// The error never holds the passphrase.
		return nil, fmt.Errorf("passphrase: %w", err)
	}
	gtk, err := newGTK(a.cfg.Rand)
	if err != nil {
		return nil, err
	}
	b := &bss{
		ssid: []byte(cfg.SSID), hidden: cfg.Hidden, freq: ch.FreqMHz, ch: cfg.Channel,
		max: cfg.MaxStations, band: band, ht: band.HT != nil,
		rates: ieee80211.BandRates(band.Rates, band.ID == band2GHz),
		pmk:   pmk, gtk: gtk, gtkIdx: 1, hsGTK: gtk, hsGTKIdx: 1,
		interval: a.cfg.BeaconInterval, dtim: a.cfg.DTIMPeriod,
	}
	if len(b.rates) == 0 {
		return nil, fmt.Errorf("radio %s reports no usable rates on %s", a.cfg.PHY.Name, bandName(band.ID))
	}
	rsn := ieee80211.WPA2PSK(true)
	b.rsne, err = ieee80211.Elements{rsn.Element()}.Marshal()
	if err != nil {
		return nil, err
	}
	bssid, err := ieee80211.AddrFrom(a.radio.Addr())
	if err != nil {
		return nil, fmt.Errorf("radio address: %w", err)
	}
	wmm := ieee80211.DefaultWMMParams()
	b.frames = &ieee80211.BSS{
		BSSID: bssid, SSID: b.ssid, Hidden: b.hidden, Channel: uint8(cfg.Channel),
		BeaconInterval: uint16(b.interval), Capability: ieee80211.CapShortSlotTime,
		Rates: b.rates, RSN: rsn, WMM: &wmm,
	}
	if band.HT != nil {
		ht := ieee80211.HTCapabilities{Info: band.HT.Info, AMPDU: band.HT.AMPDU, MCSSet: band.HT.MCSSet}.ForAP(false)
		b.frames.HT = &ht
	}
	b.frames.Country = countryElement(cfg.Country, band, ch)
	if b.head, b.tail, err = b.frames.Beacon(); err != nil {
		return nil, fmt.Errorf("build beacon: %w", err)
	}
	return b, nil
}

func (b *bss) startConfig() nl80211.StartConfig {
	return nl80211.StartConfig{
		BeaconHead: b.head, BeaconTail: b.tail,
		SSID: b.ssid, Hidden: b.hidden,
		BeaconInterval: b.interval, DTIMPeriod: b.dtim,
		FreqMHz: b.freq, HT20: b.ht, Privacy: true,
	}
}

// handshakeConfig is what a new station's handshake starts from.
func (a *AP) handshakeConfig() wpa.Config {
	return wpa.Config{
		PMK: a.bss.pmk, AA: a.radio.Addr(), RSNE: a.bss.rsne,
		GTK: a.bss.hsGTK, GTKIndex: a.bss.hsGTKIdx, Rand: a.cfg.Rand,
	}
}

// countryElement is what the beacon says of the regulatory domain (802.11d):
// the user's country, the run of channels around ours that an AP may use
// in this band, and our channel's power limit. The world domain "00" names
// no country, so it gets no element.
func countryElement(code string, band *nl80211.Band, ch nl80211.Channel) *ieee80211.Country {
	code = strings.ToUpper(code)
	if len(code) != 2 || code[0] < 'A' || code[0] > 'Z' || code[1] < 'A' || code[1] > 'Z' {
		return nil
	}
	step := 1
	if band.ID == band5GHz {
		step = 4 // 5 GHz channels are 20 MHz apart, numbered in 5 MHz
	}
	usable := map[int]bool{}
	for _, c := range band.Channels {
		if !c.Disabled && !c.NoIR && !c.Radar {
			usable[c.Number] = true
		}
	}
	first, last := ch.Number, ch.Number
	for usable[first-step] {
		first -= step
	}
	for usable[last+step] {
		last += step
	}
	power := ch.MaxPower / 100 // mBm
	if power <= 0 || power > 127 {
		power = 20
	}
	return &ieee80211.Country{Code: code, FirstChannel: uint8(first), NumChannels: uint8((last-first)/step + 1), MaxPowerDBm: int8(power)}
}
