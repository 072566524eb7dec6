package ap

import (
	"fmt"
	"slices"

	"github.com/openmifi/openmifi/drivers/wifi/nl80211"
	"github.com/openmifi/openmifi/internal/usersettings"
)

// Band names as the user's settings spell them.
const (
	band24 = usersettings.Band24
	band5  = usersettings.Band5
)

// nl80211 band identifiers.
const (
	band2GHz = 0
	band5GHz = 1
)

// channels5 are the 5 GHz channels an AP may use without radar detection;
// we do no DFS.
var channels5 = []int{36, 40, 44, 48, 149, 153, 157, 161, 165}

// channelFreq maps a channel of a band to its centre frequency in MHz.
func channelFreq(band string, ch int) (freq, bandID int, err error) {
	switch band {
	case band24, "":
		switch {
		case ch >= 1 && ch <= 13:
			return 2412 + 5*(ch-1), band2GHz, nil
		case ch == 14:
			return 2484, band2GHz, nil
		}
		return 0, 0, fmt.Errorf("channel %d is not a 2.4 GHz channel (allowed: 1..14)", ch)
	case band5:
		if slices.Contains(channels5, ch) {
			return 5000 + 5*ch, band5GHz, nil
		}
		return 0, 0, fmt.Errorf("channel %d is not a 5 GHz channel usable without radar detection (allowed: %v)", ch, channels5)
	}
	return 0, 0, fmt.Errorf("unknown band %q (allowed: %s, %s)", band, band24, band5)
}

// pickChannel finds the channel in the PHY and refuses it unless an AP may
// transmit on it.
func pickChannel(phy nl80211.PHY, band string, ch int) (*nl80211.Band, nl80211.Channel, error) {
	freq, bandID, err := channelFreq(band, ch)
	if err != nil {
		return nil, nl80211.Channel{}, err
	}
	for i := range phy.Bands {
		b := &phy.Bands[i]
		if b.ID != bandID {
			continue
		}
		for _, c := range b.Channels {
			if c.FreqMHz != freq {
				continue
			}
			switch {
			case c.Disabled:
				return nil, c, fmt.Errorf("channel %d (%d MHz) is disabled on %s (regulatory domain)", ch, freq, phy.Name)
			case c.NoIR:
				return nil, c, fmt.Errorf("channel %d (%d MHz) is passive-scan only (no-IR) on %s: an access point may not transmit there", ch, freq, phy.Name)
			case c.Radar:
				return nil, c, fmt.Errorf("channel %d (%d MHz) needs radar detection (DFS) on %s, which we do not do", ch, freq, phy.Name)
			}
			return b, c, nil
		}
		return nil, nl80211.Channel{}, fmt.Errorf("radio %s has no channel %d (%d MHz)", phy.Name, ch, freq)
	}
	return nil, nl80211.Channel{}, fmt.Errorf("radio %s has no %s band", phy.Name, bandName(bandID))
}

func bandName(id int) string {
	if id == band5GHz {
		return band5
	}
	return band24
}
