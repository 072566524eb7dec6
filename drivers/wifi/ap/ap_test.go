package ap

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/openmifi/openmifi/drivers/wifi/ieee80211"
	"github.com/openmifi/openmifi/drivers/wifi/nl80211"
	"github.com/openmifi/openmifi/drivers/wifi/wpa"
)

func TestStationJoins(t *testing.T) {
	h := newHarness(t, 5)
	cfg := h.radio.started
	if cfg == nil || cfg.FreqMHz != 2437 || !cfg.HT20 || !cfg.Privacy || string(cfg.SSID) != testSSID {
		t.Fatalf("StartAP got %+v", cfg)
	}
	if len(h.radio.groupKeys) != 1 || !strings.HasPrefix(h.radio.groupKeys[0], "1 ") {
		t.Fatalf("group keys %v", h.radio.groupKeys)
	}
	tail, err := ieee80211.ParseElements(cfg.BeaconTail)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []ieee80211.ElementID{ieee80211.IDRSN, ieee80211.IDHTCapabilities, ieee80211.IDHTOperation} {
		if _, ok := tail.Find(id); !ok {
			t.Errorf("beacon tail lacks element %d", id)
		}
	}
	if _, ok := tail.WMM(); !ok {
		t.Error("beacon tail lacks WMM")
	}

	s := newSupplicant(t, 1, testPass)
	h.associate(s)
	p, ok := h.radio.station(s.mac)
	if !ok || p.params.AID != 1 || !p.params.WMM || len(p.params.Rates) != 12 || p.authorized {
		t.Fatalf("kernel station %+v", p)
	}
	if n := h.exchangeEAPOL(s); n != 2 {
		t.Errorf("AP sent %d EAPOL frames, want messages 1 and 3", n)
	}
	p, _ = h.radio.station(s.mac)
	if !p.authorized || len(p.tk) != 16 || bytes.Equal(p.tk, make([]byte, 16)) {
		t.Fatalf("station not authorized with a key: %+v", p)
	}
	if !bytes.Equal(p.tk, s.ptk.TK[:]) {
		t.Error("AP installed a TK other than the station's")
	}
	if want := fmt.Sprintf("1 %x", s.gtk); s.gidx != 1 || h.radio.groupKeys[0] != want {
		t.Errorf("station got GTK %d %x, AP has %v", s.gidx, s.gtk, h.radio.groupKeys)
	}
	expectEvents(t, h.rep.take(), "joined 02:11:22:33:44:01 -40")
	if got := h.ap.Stations(); len(got) != 1 || got[0].MAC.String() != s.mac.String() {
		t.Errorf("Stations() = %v", got)
	}
	// No timer is left behind a completed handshake.
	if n := h.clk.Pending(); n != 0 {
		t.Errorf("%d timers pending", n)
	}
	// The station leaves.
	bye := s.mgmt(h.bssid, &ieee80211.Deauth{Reason: ieee80211.ReasonDeauthLeaving})
	h.frame(bye, s.mac)
	expectEvents(t, h.rep.take(), "left 02:11:22:33:44:01")
	if _, ok := h.radio.station(s.mac); ok {
		t.Error("station still in the kernel")
	}
}

func TestRun(t *testing.T) {
	h := newHarness(t, 5)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.ap.Run(ctx) }()
	s := newSupplicant(t, 1, testPass)
	s.aa = h.radio.addr
	h.radio.events <- nl80211.Event{Kind: nl80211.EventFrame, Frame: s.auth(h.bssid), SignalDBm: -55}
	h.radio.events <- nl80211.Event{Kind: nl80211.EventFrame, Frame: s.assoc(h.bssid), SignalDBm: -55}
	// The fake's cookies count from 1: the association response is 2.
	h.radio.events <- nl80211.Event{Kind: nl80211.EventTxStatus, Cookie: 2, Ack: true}
	for range 2 { // messages 1 and 3
		<-h.radio.eapolSent
		out := h.radio.takeEAPOL(s.mac)
		if len(out) != 1 {
			t.Fatalf("AP sent %d EAPOL frames", len(out))
		}
		h.radio.events <- nl80211.Event{Kind: nl80211.EventEAPOL, MAC: s.mac, Frame: s.answer(out[0])}
	}
	<-h.rep.notify
	expectEvents(t, h.rep.take(), "joined 02:11:22:33:44:01 -55")
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Run: %v", err)
	}
}

func TestWrongPassphraseNeverJoins(t *testing.T) {
	h := newHarness(t, 5)
	s := newSupplicant(t, 1, "not the passphrase")
	h.associate(s)
	for i := 0; i < 10; i++ {
		h.exchangeEAPOL(s)
		h.advance(DefaultRetransmit)
		if h.authorized(s) {
			t.Fatal("station with the wrong passphrase authorized")
		}
	}
	if dels := h.radio.takeDels(); len(dels) != 1 || dels[0] != s.mac.String()+" 2" {
		t.Errorf("DelStation calls %v, want one with reason 2", dels)
	}
	expectEvents(t, h.rep.take())
	if len(h.ap.stations) != 0 || h.clk.Pending() != 0 {
		t.Errorf("%d stations, %d timers left", len(h.ap.stations), h.clk.Pending())
	}
}

func TestHandshakeTimeout(t *testing.T) {
	h := newHarness(t, 5)
	s := newSupplicant(t, 1, testPass)
	h.associate(s)
	sent := 0
	for i := 0; i < 10 && h.clk.Pending() > 0; i++ {
		sent += len(h.radio.takeEAPOL(s.mac))
		h.advance(DefaultRetransmit)
	}
	if sent != wpa.MaxAttempts {
		t.Errorf("message 1 sent %d times, want %d", sent, wpa.MaxAttempts)
	}
	if dels := h.radio.takeDels(); len(dels) != 1 || dels[0] != s.mac.String()+" 15" {
		t.Errorf("DelStation calls %v, want one with reason 15", dels)
	}
	if len(h.ap.stations) != 0 {
		t.Errorf("station kept")
	}
	expectEvents(t, h.rep.take())
	// Without the acknowledgement of the association response, message
	// 1 goes after a short wait.
	s2 := newSupplicant(t, 2, testPass)
	s2.aa = h.radio.addr
	h.frame(s2.auth(h.bssid), s2.mac)
	h.frame(s2.assoc(h.bssid), s2.mac)
	if n := len(h.radio.takeEAPOL(s2.mac)); n != 0 {
		t.Fatalf("message 1 before the association response was acknowledged")
	}
	h.advance(assocAckWait)
	h.exchangeEAPOL(s2)
	expectEvents(t, h.rep.take(), "joined 02:11:22:33:44:02 -40")
}

func TestMaxStationsRefusesAtAuthentication(t *testing.T) {
	h := newHarness(t, 1)
	s1, s2 := newSupplicant(t, 1, testPass), newSupplicant(t, 2, testPass)
	h.join(s1)
	h.frame(s2.auth(h.bssid), s2.mac)
	if st := h.lastStatus(ieee80211.SubtypeAuth); st != ieee80211.StatusTooManyStations {
		t.Fatalf("second station: %v, want 17", st)
	}
	// Associating anyway is a class 2 frame from an unauthenticated
	// station.
	h.frame(s2.assoc(h.bssid), s2.mac)
	m := h.last(ieee80211.SubtypeDeauth)
	if m.Body.(*ieee80211.Deauth).Reason != ieee80211.ReasonClass2FromNonauth || m.DA != s2.addr() {
		t.Errorf("got %+v", m)
	}
	// Two authenticate, the first associates: the second is refused at
	// association.
	h2 := newHarness(t, 1)
	s1.aa, s2.aa = h2.radio.addr, h2.radio.addr
	h2.frame(s1.auth(h2.bssid), s1.mac)
	h2.frame(s2.auth(h2.bssid), s2.mac)
	h2.frame(s1.assoc(h2.bssid), s1.mac)
	h2.frame(s2.assoc(h2.bssid), s2.mac)
	if r := h2.last(ieee80211.SubtypeAssocResponse).Body.(*ieee80211.AssocResponse); r.Status != ieee80211.StatusTooManyStations {
		t.Errorf("second association: %v", r.Status)
	}
	if _, ok := h2.radio.station(s2.mac); ok {
		t.Error("refused station added to the kernel")
	}
}

func TestSetMaxStationsDropsNewest(t *testing.T) {
	h := newHarness(t, 4)
	var ss []*supplicant
	for i := byte(1); i <= 4; i++ {
		s := newSupplicant(t, i, testPass)
		h.join(s)
		ss = append(ss, s)
	}
	h.rep.take()
	if err := h.ap.SetMaxStations(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	h.ap.deliver()
	dels := h.radio.takeDels()
	want := []string{ss[3].mac.String() + " 5", ss[2].mac.String() + " 5"}
	if fmt.Sprint(dels) != fmt.Sprint(want) {
		t.Errorf("DelStation %v, want %v", dels, want)
	}
	expectEvents(t, h.rep.take(), "left 02:11:22:33:44:04", "left 02:11:22:33:44:03")
	if !h.authorized(ss[0]) || !h.authorized(ss[1]) {
		t.Error("oldest stations dropped")
	}
	// The limit holds for newcomers.
	s5 := newSupplicant(t, 5, testPass)
	h.frame(s5.auth(h.bssid), s5.mac)
	if st := h.lastStatus(ieee80211.SubtypeAuth); st != ieee80211.StatusTooManyStations {
		t.Errorf("newcomer: %v", st)
	}
	if err := h.ap.SetMaxStations(context.Background(), 0); err == nil {
		t.Error("limit 0 accepted")
	}
}

func TestStopDeauthenticatesAll(t *testing.T) {
	h := newHarness(t, 5)
	s1, s2, s3 := newSupplicant(t, 1, testPass), newSupplicant(t, 2, testPass), newSupplicant(t, 3, testPass)
	h.join(s1)
	h.join(s2)
	h.associate(s3) // still in its handshake
	h.rep.take()
	if err := h.ap.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.ap.deliver()
	dels := h.radio.takeDels()
	want := []string{s1.mac.String() + " 3", s2.mac.String() + " 3", s3.mac.String() + " 3"}
	if fmt.Sprint(dels) != fmt.Sprint(want) {
		t.Errorf("DelStation %v, want %v", dels, want)
	}
	expectEvents(t, h.rep.take(), "left 02:11:22:33:44:01", "left 02:11:22:33:44:02")
	if h.radio.started != nil || h.radio.stops != 1 || h.clk.Pending() != 0 {
		t.Errorf("after Stop: started %v, %d stops, %d timers", h.radio.started != nil, h.radio.stops, h.clk.Pending())
	}
	// Idempotent; events while stopped are ignored.
	if err := h.ap.Stop(context.Background()); err != nil || h.radio.stops != 1 {
		t.Errorf("second Stop: %v, %d stops", err, h.radio.stops)
	}
	h.frame(s1.auth(h.bssid), s1.mac)
	if f := h.radio.takeFrames(); len(f) != 0 {
		t.Errorf("stopped AP answered")
	}
	// And it starts again.
	if err := h.ap.Start(context.Background(), testConfig(5)); err != nil {
		t.Fatal(err)
	}
	h.join(s1)
	expectEvents(t, h.rep.take(), "joined 02:11:22:33:44:01 -40")
}

func TestAuthFloodBounded(t *testing.T) {
	h := newHarness(t, 8)
	for i := 0; i < 10000; i++ {
		s := &supplicant{t: t, mac: []byte{0x02, 0xfe, byte(i >> 16), byte(i >> 8), byte(i), 0}}
		h.frame(s.auth(h.bssid), s.mac)
		if i%100 == 0 {
			h.clk.Advance(time.Millisecond)
		}
	}
	if n := len(h.ap.stations); n > DefaultMaxPending {
		t.Errorf("%d stations remembered after a flood", n)
	}
	h.radio.takeFrames()
	// A real client authenticating in the flood still gets in.
	s := newSupplicant(t, 1, testPass)
	h.join(s)
	expectEvents(t, h.rep.take(), "joined 02:11:22:33:44:01 -40")
	// Entries expire.
	h.clk.Advance(DefaultAuthTimeout)
	x := &supplicant{t: t, mac: []byte{0x02, 0xfd, 0, 0, 0, 1}}
	h.frame(x.auth(h.bssid), x.mac)
	for i := byte(2); i < 20; i++ {
		x := &supplicant{t: t, mac: []byte{0x02, 0xfd, 0, 0, 0, i}}
		h.frame(x.auth(h.bssid), x.mac)
	}
	if h.ap.pending > DefaultMaxPending || len(h.ap.stations) > DefaultMaxPending+1 {
		t.Errorf("%d pending, %d stations", h.ap.pending, len(h.ap.stations))
	}
}

func TestProbeResponses(t *testing.T) {
	h := newHarness(t, 5)
	s := newSupplicant(t, 1, testPass)
	probe := func(ssid string) []byte {
		return s.mgmt(ieee80211.Broadcast, &ieee80211.ProbeRequest{Elements: ieee80211.Elements{ieee80211.SSID([]byte(ssid))}})
	}
	for _, c := range []struct {
		ssid   string
		answer bool
	}{{"", true}, {testSSID, true}, {"other", false}} {
		h.frame(probe(c.ssid), s.mac)
		got := h.sentMgmt()
		if (len(got) == 1) != c.answer {
			t.Errorf("probe for %q: %d answers", c.ssid, len(got))
		}
	}
	// Hidden: only the exact SSID.
	h.ap.Stop(context.Background())
	cfg := testConfig(5)
	cfg.Hidden = true
	if err := h.ap.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if head := h.radio.started.BeaconHead; bytes.Contains(head, []byte(testSSID)) {
		t.Error("hidden SSID in the beacon")
	}
	h.frame(probe(""), s.mac)
	if got := h.sentMgmt(); len(got) != 0 {
		t.Error("hidden AP answered a wildcard probe")
	}
	h.frame(probe(testSSID), s.mac)
	if got := h.sentMgmt(); len(got) != 1 || got[0].Body.Subtype() != ieee80211.SubtypeProbeResponse {
		t.Error("hidden AP did not answer a probe for its SSID")
	}
}

func TestAuthAndAssocRefusals(t *testing.T) {
	h := newHarness(t, 5)
	s := newSupplicant(t, 1, testPass)
	s.aa = h.radio.addr
	h.frame(s.mgmt(h.bssid, &ieee80211.Auth{Algorithm: ieee80211.AuthSharedKey, Seq: 1}), s.mac)
	if st := h.lastStatus(ieee80211.SubtypeAuth); st != ieee80211.StatusAuthAlgUnsupported {
		t.Errorf("shared key: %v", st)
	}
	h.frame(s.auth(h.bssid), s.mac)
	h.sentMgmt()
	// A TKIP-only station.
	tkip := &ieee80211.RSN{Version: 1, GroupCipher: ieee80211.CipherCCMP, PairwiseCiphers: []ieee80211.Suite{ieee80211.CipherTKIP}, AKMs: []ieee80211.Suite{ieee80211.AKMPSK}}
	assoc := func(es ieee80211.Elements) ieee80211.StatusCode {
		h.frame(s.mgmt(h.bssid, &ieee80211.AssocRequest{Capability: ieee80211.CapESS, Elements: es}), s.mac)
		return h.last(ieee80211.SubtypeAssocResponse).Body.(*ieee80211.AssocResponse).Status
	}
	sup, _, _ := ieee80211.RateElements(ieee80211.BandRates([]int{10, 20, 55, 110}, true))
	ours := ieee80211.SSID([]byte(testSSID))
	if st := assoc(ieee80211.Elements{ours, sup, tkip.Element()}); st != ieee80211.StatusInvalidPairwiseCipher {
		t.Errorf("TKIP: %v", st)
	}
	if st := assoc(ieee80211.Elements{ours, sup}); st != ieee80211.StatusInvalidElement {
		t.Errorf("no RSN: %v", st)
	}
	g, _, _ := ieee80211.RateElements(ieee80211.BandRates([]int{60, 120, 240}, false))
	if st := assoc(ieee80211.Elements{ours, g, ieee80211.WPA2PSK(false).Element()}); st != ieee80211.StatusBasicRatesUnsupported {
		t.Errorf("no basic rates: %v", st)
	}
	if st := assoc(ieee80211.Elements{ieee80211.SSID([]byte("x")), sup, ieee80211.WPA2PSK(false).Element()}); st != ieee80211.StatusUnspecified {
		t.Errorf("wrong SSID: %v", st)
	}
	if len(h.radio.stations) != 0 {
		t.Error("refused station added")
	}
	// EAPOL from a station that is not associated: class 3.
	h.eapolFrom(s, []byte{2, 3, 0, 0})
	if m := h.last(ieee80211.SubtypeDeauth); m.Body.(*ieee80211.Deauth).Reason != ieee80211.ReasonClass3FromNonassoc {
		t.Errorf("EAPOL from unassociated: %v", m.Body)
	}
}

func TestStartRefusesChannels(t *testing.T) {
	a, _ := New(Config{Radio: newFakeRadio(), PHY: testPHY()})
	for _, c := range []struct {
		band string
		ch   int
		want string
	}{
		{band24, 12, "no-IR"},
		{band24, 14, "disabled"},
		{band24, 15, "not a 2.4 GHz channel"},
		{band5, 52, "not a 5 GHz channel"},
		{band5, 153, "has no channel 153"},
		{"6GHz", 1, "unknown band"},
	} {
		cfg := testConfig(5)
		cfg.Band, cfg.Channel = c.band, c.ch
		err := a.Start(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s channel %d: %v, want %q", c.band, c.ch, err, c.want)
		}
	}
	cfg := testConfig(5)
	cfg.Band, cfg.Channel = band5, 40
	if err := a.Start(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if got := a.radio.(*fakeRadio).started; got.FreqMHz != 5200 || got.HT20 {
		t.Errorf("5 GHz start %+v", got)
	}
	cfg.Passphrase = "short"
	if err := a.Start(context.Background(), cfg); err == nil || strings.Contains(err.Error(), "short") {
		t.Errorf("short passphrase: %v", err)
	}
	// Radar channels are refused even where the PHY lists them.
	phy := testPHY()
	phy.Bands[1].Channels = append(phy.Bands[1].Channels, nl80211.Channel{FreqMHz: 5745, Number: 149, Radar: true})
	phy.Bands[1].Channels[5].Radar = true
	b, _ := New(Config{Radio: newFakeRadio(), PHY: phy})
	cfg.Passphrase, cfg.Channel = testPass, 149
	if err := b.Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "radar") {
		t.Errorf("radar channel: %v", err)
	}
}

func TestChannelFreq(t *testing.T) {
	for _, c := range []struct {
		band     string
		ch, freq int
	}{{band24, 1, 2412}, {band24, 6, 2437}, {band24, 13, 2472}, {band24, 14, 2484}, {band5, 36, 5180}, {band5, 165, 5825}} {
		if f, _, err := channelFreq(c.band, c.ch); err != nil || f != c.freq {
			t.Errorf("%s %d: %d %v", c.band, c.ch, f, err)
		}
	}
}

func TestGroupRekey(t *testing.T) {
	h := newHarness(t, 5, func(c *Config) { c.GroupRekey = time.Hour })
	s1, s2, s3 := newSupplicant(t, 1, testPass), newSupplicant(t, 2, testPass), newSupplicant(t, 3, testPass)
	h.join(s1)
	h.join(s2)
	h.join(s3)
	h.rep.take()
	old := s1.gtk
	h.advance(time.Hour)
	if len(h.radio.groupKeys) != 1 {
		t.Fatal("new group key installed before the stations have it")
	}
	h.exchangeEAPOL(s1)
	h.exchangeEAPOL(s2)
	if len(h.radio.groupKeys) != 1 {
		t.Fatal("new group key installed before every station answered")
	}
	// s3 never answers: after the retries it is dropped with reason 16
	// and the key goes in.
	for i := 0; i < 10 && len(h.radio.groupKeys) == 1; i++ {
		h.radio.takeEAPOL(s3.mac)
		h.advance(DefaultRetransmit)
	}
	if dels := h.radio.takeDels(); len(dels) != 1 || dels[0] != s3.mac.String()+" 16" {
		t.Errorf("DelStation %v", dels)
	}
	expectEvents(t, h.rep.take(), "left 02:11:22:33:44:03")
	if want := fmt.Sprintf("2 %x", s1.gtk); len(h.radio.groupKeys) != 2 || h.radio.groupKeys[1] != want || bytes.Equal(old, s1.gtk) || !bytes.Equal(s1.gtk, s2.gtk) || s1.gidx != 2 {
		t.Errorf("group keys %v, station has %d %x", h.radio.groupKeys, s1.gidx, s1.gtk)
	}
	// A newcomer gets the new key; the next rekey goes back to index 1.
	s4 := newSupplicant(t, 4, testPass)
	h.join(s4)
	if !bytes.Equal(s4.gtk, s1.gtk) || s4.gidx != 2 {
		t.Errorf("newcomer got key %d", s4.gidx)
	}
	h.advance(time.Hour)
	for _, s := range []*supplicant{s1, s2, s4} {
		h.exchangeEAPOL(s)
	}
	if len(h.radio.groupKeys) != 3 || !strings.HasPrefix(h.radio.groupKeys[2], "1 ") {
		t.Errorf("second rekey: %v", h.radio.groupKeys)
	}
}

func TestStationGoneAndKernelStop(t *testing.T) {
	h := newHarness(t, 5)
	s1, s2 := newSupplicant(t, 1, testPass), newSupplicant(t, 2, testPass)
	h.join(s1)
	h.join(s2)
	h.rep.take()
	h.event(nl80211.Event{Kind: nl80211.EventStationGone, MAC: s1.mac})
	expectEvents(t, h.rep.take(), "left 02:11:22:33:44:01")
	h.event(nl80211.Event{Kind: nl80211.EventStopped})
	expectEvents(t, h.rep.take(), "failed access point: "+errStoppedByKernel.Error(), "left 02:11:22:33:44:02")
	if h.clk.Pending() != 0 {
		t.Error("timers left")
	}
}

func TestReassociation(t *testing.T) {
	h := newHarness(t, 5)
	s := newSupplicant(t, 1, testPass)
	h.associate(s)
	// The association response was lost: the station asks again and
	// gets the same answer, its handshake goes on.
	h.frame(s.assoc(h.bssid), s.mac)
	if r := h.last(ieee80211.SubtypeAssocResponse).Body.(*ieee80211.AssocResponse); r.Status != 0 || r.AID != 1 {
		t.Fatalf("repeated association: %+v", r)
	}
	h.exchangeEAPOL(s)
	expectEvents(t, h.rep.take(), "joined 02:11:22:33:44:01 -40")
	// Authenticating again ends the association.
	h.frame(s.auth(h.bssid), s.mac)
	expectEvents(t, h.rep.take(), "left 02:11:22:33:44:01")
	h.sentMgmt()
	h.frame(s.assoc(h.bssid), s.mac)
	h.event(nl80211.Event{Kind: nl80211.EventTxStatus, Cookie: h.radio.cookie, Ack: true})
	h.exchangeEAPOL(s)
	expectEvents(t, h.rep.take(), "joined 02:11:22:33:44:01 -40")
}

func TestRekeyDuringHandshake(t *testing.T) {
	// Rekeying before the retransmission timers fire.
	h := newHarness(t, 5, func(c *Config) { c.GroupRekey = DefaultRetransmit / 2 })
	s1, s2 := newSupplicant(t, 1, testPass), newSupplicant(t, 2, testPass)
	h.associate(s1) // message 1 out
	h.associate(s2)
	// s2 gets message 3 with the first key before the rekey.
	m1 := h.radio.takeEAPOL(s2.mac)
	h.eapolFrom(s2, s2.answer(m1[0]))
	m3 := h.radio.takeEAPOL(s2.mac)
	h.advance(DefaultRetransmit / 2)
	// s1 answers message 1 and gets the new key in message 3.
	h.exchangeEAPOL(s1)
	if s1.gidx != 2 {
		t.Errorf("station in its handshake got key %d", s1.gidx)
	}
	if len(h.radio.groupKeys) != 1 {
		t.Fatal("key installed while s2 has the old one")
	}
	// s2 finishes: it gets the new key right after message 4.
	h.eapolFrom(s2, s2.answer(m3[0]))
	h.exchangeEAPOL(s2)
	if s2.gidx != 2 || !bytes.Equal(s1.gtk, s2.gtk) {
		t.Errorf("s2 has key %d", s2.gidx)
	}
	if len(h.radio.groupKeys) != 2 || h.radio.groupKeys[1] != fmt.Sprintf("2 %x", s2.gtk) {
		t.Errorf("group keys %v", h.radio.groupKeys)
	}
	expectEvents(t, h.rep.take(), "joined 02:11:22:33:44:01 -40", "joined 02:11:22:33:44:02 -40")
}

func TestLogsHoldNoSecrets(t *testing.T) {
	var buf bytes.Buffer
	h := newHarness(t, 5, func(c *Config) {
		c.Log = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.GroupRekey = time.Hour
	})
	good, bad := newSupplicant(t, 1, testPass), newSupplicant(t, 2, "hunter2hunter2")
	h.join(good)
	h.associate(bad)
	for range 6 {
		h.exchangeEAPOL(bad)
		h.advance(DefaultRetransmit)
	}
	h.advance(time.Hour)
	h.exchangeEAPOL(good)
	h.ap.Stop(context.Background())
	out := buf.String()
	if !strings.Contains(out, "02:11:22:33:44:02") || !strings.Contains(out, "wrong passphrase?") {
		t.Errorf("log lacks the failing station:\n%s", out)
	}
	secrets := []string{testPass, "hunter2hunter2", fmt.Sprintf("%x", good.pmk), fmt.Sprintf("%x", good.ptk.TK), fmt.Sprintf("%x", good.gtk)}
	for _, k := range h.radio.groupKeys {
		secrets = append(secrets, k[2:])
	}
	for _, s := range secrets {
		if strings.Contains(strings.ToLower(out), s) {
			t.Errorf("log holds a secret %q", s)
		}
	}
}

func TestStrangersGetBoundedAnswers(t *testing.T) {
	h := newHarness(t, 5)
	for i := 0; i < 1000; i++ {
		s := &supplicant{t: t, mac: []byte{0x02, 0xee, 0, 0, byte(i >> 8), byte(i)}}
		h.eapolFrom(s, []byte{2, 3, 0, 0})                                                                 // class 3
		h.frame(s.mgmt(h.bssid, &ieee80211.AssocRequest{}), s.mac)                                         // class 2
		h.frame(s.mgmt(h.bssid, &ieee80211.Raw{Kind: ieee80211.SubtypeAction, Data: []byte{3, 0}}), s.mac) // block ack: class 3
	}
	if n := len(h.radio.takeFrames()); n == 0 || n > 20 {
		t.Errorf("%d deauthentications to 3000 frames from strangers in no time", n)
	}
	h.advance(time.Second)
	s := &supplicant{t: t, mac: []byte{0x02, 0xee, 1, 0, 0, 0}}
	h.eapolFrom(s, []byte{2, 3, 0, 0})
	if n := len(h.radio.takeFrames()); n != 1 {
		t.Errorf("a second later: %d answers", n)
	}
	// Frames for another BSS, or from group addresses, get nothing.
	other := ieee80211.Addr{0x02, 9, 9, 9, 9, 9}
	h.frame(s.mgmt(other, &ieee80211.Auth{Seq: 1}), s.mac)
	g := &supplicant{t: t, mac: []byte{0x03, 0, 0, 0, 0, 1}}
	h.frame(g.auth(h.bssid), g.mac)
	if n := len(h.radio.takeFrames()); n != 0 || len(h.ap.stations) != 0 {
		t.Errorf("%d answers, %d stations", n, len(h.ap.stations))
	}
}

func TestCountryFollowsTheSettings(t *testing.T) {
	h := newHarness(t, 5) // started with country "00"
	cfg := testConfig(5)
	for _, c := range []string{"00", "DE", "DE", ""} {
		cfg.Country = c
		if err := h.ap.Start(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	// Set once per change; an empty country leaves the radio's domain.
	if want := []string{"00", "DE"}; fmt.Sprint(h.radio.countries) != fmt.Sprint(want) {
		t.Errorf("SetCountry calls %q, want %q", h.radio.countries, want)
	}
}

func TestBeaconNamesTheCountry(t *testing.T) {
	h := newHarness(t, 5)
	cfg := testConfig(5)
	for _, tc := range []struct {
		country string
		want    []byte // the Country element's body; nil: none
	}{
		// Channels 12 and 13 are no-IR and 14 disabled on the test
		// radio: an AP may use 1 to 11.
		{"DE", []byte{'D', 'E', ' ', 1, 11, 20}},
		{"00", nil}, // the world domain names no country
	} {
		cfg.Country = tc.country
		if err := h.ap.Start(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		els, err := ieee80211.ParseElements(h.radio.started.BeaconTail)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		if e, ok := els.Find(ieee80211.IDCountry); ok {
			got = e.Data
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("country %q: Country element % x, want % x", tc.country, got, tc.want)
		}
	}
}
