package ieee80211

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestRSNBytes(t *testing.T) {
	want := []byte{0x01, 0x00, 0x00, 0x0f, 0xac, 0x04, 0x01, 0x00, 0x00, 0x0f, 0xac, 0x04,
		0x01, 0x00, 0x00, 0x0f, 0xac, 0x02, 0x00, 0x00}
	if got := WPA2PSK(false).Marshal(); !bytes.Equal(got, want) {
		t.Errorf("WPA2PSK = % x, want % x", got, want)
	}
}

func TestRSNRoundTrip(t *testing.T) {
	for _, r := range []*RSN{
		WPA2PSK(true),
		{Version: 1, GroupCipher: CipherTKIP, PairwiseCiphers: []Suite{CipherCCMP, CipherTKIP},
			AKMs: []Suite{AKMPSK, AKMPSKSHA256}, Capabilities: RSNCapMFPCapable,
			PMKIDs: [][PMKIDLen]byte{{1}, {2, 15: 3}}},
		{Version: 1, GroupCipher: CipherCCMP, PairwiseCiphers: []Suite{CipherCCMP}, AKMs: []Suite{AKMSAE},
			Capabilities: RSNCapMFPCapable | RSNCapMFPRequired, GroupMgmtCipher: CipherBIPCMAC128},
		{Version: 1, GroupCipher: CipherCCMP, PairwiseCiphers: []Suite{}, AKMs: []Suite{}},
	} {
		got, err := ParseRSN(r.Marshal())
		if err != nil {
			t.Errorf("%+v: %v", r, err)
			continue
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip: got %+v, want %+v", got, r)
		}
	}
}

func TestParseRSNDefaults(t *testing.T) {
	r, err := ParseRSN([]byte{0x01, 0x00})
	if err != nil {
		t.Fatal(err)
	}
	want := &RSN{Version: 1, GroupCipher: CipherCCMP, PairwiseCiphers: []Suite{CipherCCMP}, AKMs: []Suite{AKM8021X}}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got %+v, want %+v", r, want)
	}
	r, err = ParseRSN([]byte{0x01, 0x00, 0x00, 0x0f, 0xac, 0x02})
	if err != nil || r.GroupCipher != CipherTKIP || r.PairwiseCiphers[0] != CipherCCMP {
		t.Errorf("group only: %+v %v", r, err)
	}
}

func TestParseRSNRejects(t *testing.T) {
	full := WPA2PSK(false).Marshal()
	for name, in := range map[string][]byte{
		"empty":             {},
		"half version":      {0x01},
		"half group":        full[:4],
		"half count":        full[:7],
		"suite past end":    full[:10],
		"count says two":    append(append([]byte{}, full[:6]...), 0x02, 0x00, 0x00, 0x0f, 0xac, 0x04),
		"half capabilities": full[:19],
		"pmkid past end":    append(append([]byte{}, full...), 0x01, 0x00, 0xaa),
		"trailing octet":    append(append([]byte{}, full...), 0x00, 0x00, 0x00, 0x0f, 0xac, 0x06, 0x99),
	} {
		if _, err := ParseRSN(in); err == nil {
			t.Errorf("%s: % x accepted", name, in)
		}
	}
}

func TestCheckRSN(t *testing.T) {
	ours := WPA2PSK(true).Marshal()
	mod := func(f func(r *RSN)) []byte {
		r := WPA2PSK(false)
		f(r)
		return r.Marshal()
	}
	for _, tc := range []struct {
		name   string
		theirs []byte
		want   StatusCode // StatusSuccess: accepted
	}{
		{"wpa_supplicant", WPA2PSK(false).Marshal(), StatusSuccess},
		{"several offered", mod(func(r *RSN) {
			r.PairwiseCiphers = []Suite{CipherTKIP, CipherCCMP}
			r.AKMs = []Suite{AKM8021X, AKMPSK}
		}), StatusSuccess},
		{"with PMKID", mod(func(r *RSN) { r.PMKIDs = [][PMKIDLen]byte{{1}} }), StatusSuccess},
		{"MFP capable", mod(func(r *RSN) { r.Capabilities = RSNCapMFPCapable }), StatusSuccess},
		{"missing", nil, StatusInvalidElement},
		{"truncated", []byte{0x01, 0x00, 0x00}, StatusInvalidElement},
		{"version 2", mod(func(r *RSN) { r.Version = 2 }), StatusUnsupportedRSNVersion},
		{"TKIP group", mod(func(r *RSN) { r.GroupCipher = CipherTKIP }), StatusInvalidGroupCipher},
		{"TKIP pairwise", mod(func(r *RSN) { r.PairwiseCiphers = []Suite{CipherTKIP} }), StatusInvalidPairwiseCipher},
		{"no pairwise", mod(func(r *RSN) { r.PairwiseCiphers = nil }), StatusInvalidPairwiseCipher},
		{"SAE", mod(func(r *RSN) { r.AKMs = []Suite{AKMSAE} }), StatusInvalidAKMP},
		{"defaults mean 802.1X", []byte{0x01, 0x00}, StatusInvalidAKMP},
		{"MFP required", mod(func(r *RSN) { r.Capabilities = RSNCapMFPCapable | RSNCapMFPRequired }), StatusMFPPolicyViolation},
	} {
		err := CheckRSN(ours, tc.theirs)
		if tc.want == StatusSuccess {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var se *StatusError
		if !errors.As(err, &se) || se.Code != tc.want {
			t.Errorf("%s: err %v, want status %d", tc.name, err, tc.want)
		}
	}
	var se *StatusError
	if err := CheckRSN([]byte{1}, WPA2PSK(false).Marshal()); !errors.As(err, &se) || se.Code != StatusUnspecified {
		t.Errorf("broken own element: %v", err)
	}
}

func TestStatusAndReasonStrings(t *testing.T) {
	if s := StatusTooManyStations.String(); s != "AP unable to handle additional associated stations (17)" {
		t.Errorf("status 17: %q", s)
	}
	if s := StatusCode(999).String(); s != "status 999" {
		t.Errorf("status 999: %q", s)
	}
	if s := ReasonFourWayTimeout.String(); s != "4-way handshake timeout (15)" {
		t.Errorf("reason 15: %q", s)
	}
	e := &StatusError{Code: StatusInvalidAKMP, Reason: "station AKMs [00-0F-AC:8]"}
	if e.Error() != "station AKMs [00-0F-AC:8]: invalid AKMP (43)" {
		t.Errorf("StatusError: %q", e.Error())
	}
}
