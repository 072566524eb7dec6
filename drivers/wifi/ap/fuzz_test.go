package ap

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/openmifi/openmifi/drivers/wifi/ieee80211"
	"github.com/openmifi/openmifi/drivers/wifi/nl80211"
)

// FuzzAP feeds the AP a script of radio events (management frames,
// EAPOL frames, transmit statuses, time passing) from stations that do not
// know the passphrase, and checks that nothing panics, that no station is
// ever authorized or reported joined, and that the station table stays
// bounded.
//
// The script is a run of operations: an opcode byte, a station byte
// (one of four), then for frames a length byte and that many bytes.
func FuzzAP(f *testing.F) {
	s := newSupplicant(f, 1, testPass)
	bssid := ieee80211.Addr{0x02, 0, 0, 0, 0xaa, 0x01}
	op := func(code, sta byte, frame []byte) []byte {
		return append([]byte{code, sta, byte(len(frame))}, frame...)
	}
	auth, assoc := s.auth(bssid), s.assoc(bssid)
	f.Add(append(append(op(0, 0, auth), op(0, 0, assoc)...), op(3, 0, nil)...))
	f.Add(append(append(append(op(5, 1, nil), op(6, 1, nil)...), op(7, 1, nil)...), op(4, 1, []byte{10})...))
	f.Add(append(append(append(op(5, 2, nil), op(6, 2, nil)...), op(8, 2, nil)...), op(1, 2, []byte{2, 3, 0, 95, 2, 1, 10})...))
	f.Add(op(0, 3, s.mgmt(bssid, &ieee80211.Deauth{Reason: 3})))
	f.Fuzz(fuzzBody)
}

// fuzzPSK is the AP's key in FuzzAP; the stations have testPass's.
var fuzzPSK = strings.Repeat("5a", 32)

func fuzzBody(t *testing.T, script []byte) {
	// The PSK given as 64 hex digits spares a PBKDF2 per run.
	cfg := testConfig(2)
	cfg.Passphrase = fuzzPSK
	h := newHarnessWith(t, cfg)
	h.ap.cfg.MaxPending = 3
	stas := make([]*supplicant, 4)
	for i := range stas {
		stas[i] = newSupplicant(t, byte(i+1), testPass)
		stas[i].aa = h.radio.addr
	}
	for len(script) >= 2 {
		code, s := script[0], stas[script[1]%4]
		script = script[2:]
		var data []byte
		var arg byte
		if len(script) > 0 {
			arg = script[0]
		}
		if code%10 <= 1 && len(script) > 0 {
			n := min(int(script[0]), len(script)-1)
			data, script = script[1:1+n], script[1+n:]
		}
		switch code % 10 {
		case 0: // any management frame, mostly addressed to us
			if len(data) >= ieee80211.HeaderLen && data[0]&1 == 0 {
				data[0] &^= 0x0c
				copy(data[4:10], h.bssid[:])
				copy(data[16:22], h.bssid[:])
			}
			h.frame(data, s.mac)
		case 1: // any EAPOL frame
			h.eapolFrom(s, data)
		case 2: // the AP's last EAPOL frame back to it
			if out := h.radio.takeEAPOL(s.mac); len(out) > 0 {
				h.eapolFrom(s, out[len(out)-1])
			}
		case 3:
			h.event(nl80211.Event{Kind: nl80211.EventTxStatus, Cookie: h.radio.cookie, Ack: arg&1 == 0})
		case 4:
			h.advance(time.Duration(arg) * 50 * time.Millisecond)
		case 5:
			h.frame(s.auth(h.bssid), s.mac)
		case 6:
			h.frame(s.assoc(h.bssid), s.mac)
		case 7: // answer as a station with the wrong passphrase
			for _, fr := range h.radio.takeEAPOL(s.mac) {
				if r := s.answer(fr); r != nil {
					h.eapolFrom(s, r)
				}
			}
		case 8:
			h.ap.SetMaxStations(context.Background(), 1+int(arg%3))
		case 9:
			h.event(nl80211.Event{Kind: nl80211.EventStationGone, MAC: s.mac})
		}
		for _, st := range stas {
			if h.authorized(st) {
				t.Fatalf("station %s authorized without the passphrase", st.mac)
			}
		}
		if ev := h.rep.take(); len(ev) > 0 {
			t.Fatalf("reported %v", ev)
		}
		if h.ap.pending > 3 || h.ap.countAssociated(nil) > 3 {
			t.Fatalf("%d pending, %d associated", h.ap.pending, h.ap.countAssociated(nil))
		}
	}
	if err := h.ap.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.clk.Pending() != 0 || len(h.ap.stations) != 0 {
		t.Fatalf("after Stop: %d timers, %d stations", h.clk.Pending(), len(h.ap.stations))
	}
}
