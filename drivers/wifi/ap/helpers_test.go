package ap

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/openmifi/openmifi/drivers/wifi/ieee80211"
	"github.com/openmifi/openmifi/drivers/wifi/nl80211"
	"github.com/openmifi/openmifi/drivers/wifi/wpa"
	"github.com/openmifi/openmifi/internal/clock"
	"github.com/openmifi/openmifi/internal/sharing"
)

const (
	testSSID = "openmifi-test"
	testPass = "correct horse battery"
)

// testPHY is a dual-band radio like mac80211_hwsim's.
func testPHY() nl80211.PHY {
	b24 := nl80211.Band{ID: band2GHz, Rates: []int{10, 20, 55, 110, 60, 90, 120, 180, 240, 360, 480, 540},
		HT: &nl80211.HTCapabilities{Info: 0x116e, AMPDU: 0x1b, MCSSet: [16]byte{0xff, 0xff}}}
	for ch := 1; ch <= 14; ch++ {
		f, _, _ := channelFreq(band24, ch)
		b24.Channels = append(b24.Channels, nl80211.Channel{FreqMHz: f, Number: ch, NoIR: ch >= 12, Disabled: ch == 14})
	}
	b5 := nl80211.Band{ID: band5GHz, Rates: []int{60, 90, 120, 180, 240, 360, 480, 540}}
	for _, ch := range []int{36, 40, 44, 48, 52, 149} {
		b5.Channels = append(b5.Channels, nl80211.Channel{FreqMHz: 5000 + 5*ch, Number: ch, Radar: ch == 52})
	}
	return nl80211.PHY{Name: "phy0", APMode: true, Bands: []nl80211.Band{b24, b5}}
}

func testConfig(max int) sharing.APConfig {
	return sharing.APConfig{SSID: testSSID, Passphrase: testPass, Band: band24, Channel: 6, Country: "00", MaxStations: max}
}

type harness struct {
	t     testing.TB
	radio *fakeRadio
	rep   *fakeReporter
	clk   *clock.Fake
	ap    *AP
	bssid ieee80211.Addr
}

var testStart = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newHarness starts an AP on a fake radio with a fake clock.
func newHarness(t testing.TB, max int, tweak ...func(*Config)) *harness {
	return newHarnessWith(t, testConfig(max), tweak...)
}

func newHarnessWith(t testing.TB, apcfg sharing.APConfig, tweak ...func(*Config)) *harness {
	h := &harness{t: t, radio: newFakeRadio(), rep: newFakeReporter(), clk: clock.NewFake(testStart)}
	cfg := Config{Radio: h.radio, Reporter: h.rep, PHY: testPHY(), Clock: h.clk, Log: testLogger(t)}
	for _, f := range tweak {
		f(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.ap = a
	if err := a.Start(context.Background(), apcfg); err != nil {
		t.Fatalf("Start: %v", err)
	}
	h.bssid = ieee80211.Addr(h.radio.addr)
	return h
}

// event hands the AP one radio event, as Run does, and delivers reports.
func (h *harness) event(ev nl80211.Event) {
	h.ap.handleEvent(context.Background(), ev)
	h.ap.deliver()
}

func (h *harness) frame(b []byte, from net.HardwareAddr) {
	h.event(nl80211.Event{Kind: nl80211.EventFrame, MAC: from, Frame: b, SignalDBm: -42})
}

func (h *harness) advance(d time.Duration) {
	h.clk.Advance(d)
	h.ap.deliver()
}

// sentMgmt parses the management frames the AP sent since the last call.
func (h *harness) sentMgmt() []*ieee80211.Mgmt {
	var out []*ieee80211.Mgmt
	for _, b := range h.radio.takeFrames() {
		m, err := ieee80211.ParseMgmt(b)
		if err != nil {
			h.t.Fatalf("AP sent an unparsable frame %x: %v", b, err)
		}
		out = append(out, m)
	}
	return out
}

// supplicant is a minimal WPA2-PSK station.
type supplicant struct {
	t    testing.TB
	mac  net.HardwareAddr
	pmk  []byte
	rsne []byte
	aa   net.HardwareAddr
	ptk  wpa.PTK
	have bool
	gtk  []byte
	gidx int
}

// pmks caches PMKs: PBKDF2 is most of a fuzz run's time otherwise.
var pmks sync.Map

func newSupplicant(t testing.TB, n byte, pass string) *supplicant {
	v, ok := pmks.Load(pass)
	if !ok {
		pmk, err := wpa.PMK(pass, []byte(testSSID))
		if err != nil {
			t.Fatal(err)
		}
		v, _ = pmks.LoadOrStore(pass, pmk)
	}
	pmk := v.([]byte)
	rsne, _ := ieee80211.Elements{ieee80211.WPA2PSK(false).Element()}.Marshal()
	return &supplicant{t: t, mac: net.HardwareAddr{0x02, 0x11, 0x22, 0x33, 0x44, n}, pmk: pmk, rsne: rsne}
}

func (s *supplicant) addr() ieee80211.Addr { return ieee80211.Addr(s.mac) }

func (s *supplicant) mgmt(bssid ieee80211.Addr, body ieee80211.Body) []byte {
	b, err := (&ieee80211.Mgmt{Header: ieee80211.Header{DA: bssid, SA: s.addr(), BSSID: bssid}, Body: body}).Marshal()
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

func (s *supplicant) auth(bssid ieee80211.Addr) []byte {
	return s.mgmt(bssid, &ieee80211.Auth{Algorithm: ieee80211.AuthOpenSystem, Seq: 1})
}

func (s *supplicant) assoc(bssid ieee80211.Addr) []byte {
	rates := ieee80211.BandRates([]int{10, 20, 55, 110, 60, 90, 120, 180, 240, 360, 480, 540}, true)
	sup, ext, _ := ieee80211.RateElements(rates)
	rsn, _ := ieee80211.ParseElements(s.rsne)
	es := ieee80211.Elements{ieee80211.SSID([]byte(testSSID)), sup, ext, rsn[0], ieee80211.WMMInfo(0)}
	return s.mgmt(bssid, &ieee80211.AssocRequest{Capability: ieee80211.CapESS | ieee80211.CapPrivacy, ListenInterval: 5, Elements: es})
}

// answer returns the station's reply to an EAPOL-Key frame from the AP,
// nil if it drops the frame (a MIC it cannot verify).
func (s *supplicant) answer(frame []byte) []byte {
	k, err := wpa.ParseEAPOL(frame)
	if err != nil {
		s.t.Fatalf("AP sent a bad EAPOL frame: %v", err)
	}
	reply := &wpa.KeyFrame{ProtocolVersion: 1, ReplayCounter: k.ReplayCounter}
	switch {
	case k.Info&wpa.InfoPairwise != 0 && k.Info&wpa.InfoMIC == 0: // message 1
		var snonce [wpa.NonceLen]byte
		rand.Read(snonce[:])
		ptk, err := wpa.DerivePTK(s.pmk, s.aa, s.mac, k.Nonce[:], snonce[:])
		if err != nil {
			s.t.Fatal(err)
		}
		s.ptk, s.have = ptk, true
		reply.Info = wpa.DescriptorVersionAESSHA1 | wpa.InfoPairwise | wpa.InfoMIC
		reply.Nonce = snonce
		reply.KeyData = s.rsne
	case k.Info&wpa.InfoPairwise != 0: // message 3
		if !s.have || !wpa.VerifyMIC(s.ptk.KCK[:], frame) {
			return nil
		}
		s.unwrap(k)
		reply.Info = wpa.DescriptorVersionAESSHA1 | wpa.InfoPairwise | wpa.InfoMIC | wpa.InfoSecure
	default: // group message 1
		if !s.have || !wpa.VerifyMIC(s.ptk.KCK[:], frame) {
			return nil
		}
		s.unwrap(k)
		reply.Info = wpa.DescriptorVersionAESSHA1 | wpa.InfoMIC | wpa.InfoSecure
	}
	b := reply.Marshal()
	mic, err := wpa.MIC(s.ptk.KCK[:], b)
	if err != nil {
		s.t.Fatal(err)
	}
	copy(reply.MIC[:], mic)
	return reply.Marshal()
}

func (s *supplicant) unwrap(k *wpa.KeyFrame) {
	data, err := wpa.KeyUnwrap(s.ptk.KEK[:], k.KeyData)
	if err != nil {
		s.t.Fatalf("unwrap key data: %v", err)
	}
	kd, err := wpa.ParseKeyData(data)
	if err != nil {
		s.t.Fatal(err)
	}
	s.gtk, s.gidx = kd.GTK, kd.GTKIndex
}

// eapolFrom feeds an EAPOL frame from st to the AP.
func (h *harness) eapolFrom(s *supplicant, frame []byte) {
	h.event(nl80211.Event{Kind: nl80211.EventEAPOL, MAC: s.mac, Frame: frame, SignalDBm: -40})
}

// exchangeEAPOL lets the station answer what the AP sent it until the AP
// has nothing more to say; it returns how many frames the AP sent.
func (h *harness) exchangeEAPOL(s *supplicant) int {
	n := 0
	for range 10 {
		out := h.radio.takeEAPOL(s.mac)
		if len(out) == 0 {
			return n
		}
		for _, f := range out {
			n++
			if r := s.answer(f); r != nil {
				h.eapolFrom(s, r)
			}
		}
	}
	h.t.Fatal("EAPOL exchange does not end")
	return n
}

// associate runs authentication and association; it fails the test
// unless both succeed. Message 1 is out when it returns.
func (h *harness) associate(s *supplicant) {
	h.t.Helper()
	s.aa = h.radio.addr
	h.frame(s.auth(h.bssid), s.mac)
	if st := h.lastStatus(ieee80211.SubtypeAuth); st != ieee80211.StatusSuccess {
		h.t.Fatalf("%s: authentication: %v", s.mac, st)
	}
	h.frame(s.assoc(h.bssid), s.mac)
	m := h.last(ieee80211.SubtypeAssocResponse)
	if r := m.Body.(*ieee80211.AssocResponse); r.Status != ieee80211.StatusSuccess {
		h.t.Fatalf("%s: association: %v", s.mac, r.Status)
	}
	// The station acknowledges the association response.
	h.event(nl80211.Event{Kind: nl80211.EventTxStatus, Cookie: h.radio.cookie, Ack: true})
}

// join associates s and runs its handshake.
func (h *harness) join(s *supplicant) {
	h.t.Helper()
	h.associate(s)
	h.exchangeEAPOL(s)
}

// last returns the last management frame of a subtype the AP sent.
func (h *harness) last(st ieee80211.Subtype) *ieee80211.Mgmt {
	h.t.Helper()
	var found *ieee80211.Mgmt
	for _, m := range h.sentMgmt() {
		if m.Body.Subtype() == st {
			found = m
		}
	}
	if found == nil {
		h.t.Fatalf("AP sent no %v", st)
	}
	return found
}

func (h *harness) lastStatus(st ieee80211.Subtype) ieee80211.StatusCode {
	h.t.Helper()
	return h.last(st).Body.(*ieee80211.Auth).Status
}

func (h *harness) authorized(s *supplicant) bool {
	st, ok := h.radio.station(s.mac)
	return ok && st.authorized
}

func expectEvents(t testing.TB, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("reports %q, want %q", got, want)
	}
}
