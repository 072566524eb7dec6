package nl80211

import (
	"bufio"
	"encoding/base64"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// loadDump reads a captured dump: one message's attributes per line in
// base64, # comments.
func loadDump(t testing.TB, name string) [][]byte {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var msgs [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		msgs = append(msgs, b)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return msgs
}

// TestParseWiphyCaptured parses a real split dump of mac80211_hwsim's
// phy0, captured in the QEMU guest.
func TestParseWiphyCaptured(t *testing.T) {
	phys, err := parseWiphyDump(loadDump(t, "testdata/wiphy-hwsim.b64"))
	if err != nil {
		t.Fatal(err)
	}
	if len(phys) != 1 {
		t.Fatalf("%d radios, want 1", len(phys))
	}
	p := phys[0]
	if p.Name != "phy0" || p.Index != 0 || !p.APMode || !p.ControlPort || !p.FullAPClientState || p.MaxScanSSIDs != 4 {
		t.Errorf("phy0 = %v %d AP %v control port %v full state %v scan SSIDs %d",
			p.Name, p.Index, p.APMode, p.ControlPort, p.FullAPClientState, p.MaxScanSSIDs)
	}
	if !slices.Contains(p.Ciphers, cipherCCMP) {
		t.Errorf("ciphers %x lack CCMP", p.Ciphers)
	}
	var ids []int
	for _, b := range p.Bands {
		ids = append(ids, b.ID)
	}
	if !slices.Equal(ids, []int{unix.NL80211_BAND_2GHZ, unix.NL80211_BAND_5GHZ, unix.NL80211_BAND_6GHZ, unix.NL80211_BAND_S1GHZ}) {
		t.Fatalf("bands %v", ids)
	}
	b := p.Bands[0]
	if len(b.Channels) != 14 || b.Channels[0].FreqMHz != 2412 || b.Channels[13].Number != 14 {
		t.Errorf("2.4 GHz channels: %+v", b.Channels)
	}
	for _, c := range b.Channels {
		if usable := !c.Disabled && !c.NoIR && !c.Radar; usable != (c.Number <= 11) {
			t.Errorf("channel %d usable for an AP = %v under the world domain", c.Number, usable)
		}
	}
	if !slices.Equal(b.Rates, []int{10, 20, 55, 110, 60, 90, 120, 180, 240, 360, 480, 540}) {
		t.Errorf("2.4 GHz rates %v", b.Rates)
	}
	if b.HT == nil || b.HT.Info != 0x107e || b.HT.AMPDU != 3|6<<2 || b.HT.MCSSet[0] != 0xff || b.HT.MCSSet[1] != 0xff {
		t.Errorf("2.4 GHz HT %+v", b.HT)
	}
	for _, c := range p.Bands[1].Channels {
		if c.FreqMHz == 5260 && !c.Radar {
			t.Error("channel 52 without radar detection")
		}
		if c.Number == 0 {
			t.Errorf("5 GHz channel %d MHz without a number", c.FreqMHz)
		}
	}
	if p.Bands[2].HT != nil {
		t.Error("HT capabilities on the 6 GHz band")
	}
}
