package ieee80211

import (
	"bytes"
	"slices"
	"testing"
)

func TestBeaconHeadTail(t *testing.T) {
	s := captureBSS()
	head, tail, err := s.Beacon()
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMgmt(head)
	if err != nil {
		t.Fatal(err)
	}
	b := m.Body.(*Beacon)
	ids := func(es Elements) []ElementID {
		var out []ElementID
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	if got := ids(b.Elements); !slices.Equal(got, []ElementID{IDSSID, IDSupportedRates, IDDSParams}) {
		t.Errorf("head elements %v", got)
	}
	tes, err := ParseElements(tail)
	if err != nil {
		t.Fatal(err)
	}
	want := []ElementID{IDERP, IDExtSupportedRates, IDRSN, IDHTCapabilities, IDHTOperation, IDExtCapabilities, IDVendor}
	if got := ids(tes); !slices.Equal(got, want) {
		t.Errorf("tail elements %v, want %v", got, want)
	}

	// Hidden: an empty SSID in the beacon, the real one in probe responses.
	s.Hidden = true
	head, _, err = s.Beacon()
	if err != nil {
		t.Fatal(err)
	}
	m, _ = ParseMgmt(head)
	if ssid, ok := m.Body.(*Beacon).Elements.SSID(); !ok || len(ssid) != 0 {
		t.Errorf("hidden beacon SSID %q", ssid)
	}

	// Open 5 GHz without HT: no ERP, no RSN, no privacy bit.
	open := &BSS{BSSID: apAddr, SSID: []byte("x"), Channel: 36, Capability: CapPrivacy,
		Rates: BandRates([]int{60, 90, 120, 180, 240, 360, 480, 540}, false)}
	head, tail, err = open.Beacon()
	if err != nil {
		t.Fatal(err)
	}
	m, _ = ParseMgmt(head)
	if c := m.Body.(*Beacon).Capability; c != CapESS {
		t.Errorf("open capability %#x", c)
	}
	if len(tail) != 0 {
		t.Errorf("open 5 GHz tail % x", tail)
	}
	// Country goes first in the tail.
	open.Country = &Country{Code: "US", FirstChannel: 36, NumChannels: 4, MaxPowerDBm: 23}
	if _, tail, _ = open.Beacon(); !bytes.HasPrefix(tail, []byte{byte(IDCountry), 6, 'U', 'S'}) {
		t.Errorf("tail with country % x", tail)
	}
}

func TestBSSValidate(t *testing.T) {
	good := captureBSS()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(*BSS){
		"no ssid":     func(s *BSS) { s.SSID = nil },
		"long ssid":   func(s *BSS) { s.SSID = make([]byte, 33) },
		"no channel":  func(s *BSS) { s.Channel = 0 },
		"no rates":    func(s *BSS) { s.Rates = nil },
		"no basic":    func(s *BSS) { s.Rates = []Rate{12, 24} },
		"HT, no WMM":  func(s *BSS) { s.WMM = nil },
		"bad country": func(s *BSS) { s.Country = &Country{Code: "X"} },
	} {
		s := captureBSS()
		f(s)
		if _, _, err := s.Beacon(); err == nil {
			t.Errorf("%s: beacon built", name)
		}
		if _, err := s.ProbeResponse(staAddr); err == nil {
			t.Errorf("%s: probe response built", name)
		}
	}
}

func TestProbeResponse(t *testing.T) {
	s := captureBSS()
	s.Hidden = true
	b, err := s.ProbeResponse(staAddr)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMgmt(b)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := m.Body.(*ProbeResponse)
	if !ok || m.DA != staAddr || m.SA != apAddr || m.BSSID != apAddr {
		t.Fatalf("%+v %T", m.Header, m.Body)
	}
	if ssid, _ := p.Elements.SSID(); string(ssid) != "openmifi" {
		t.Errorf("SSID %q", ssid)
	}
	if _, ok := p.Elements.Find(IDTIM); ok {
		t.Error("probe response has a TIM")
	}
	// The probe response body is the beacon's without the TIM.
	head, tail, _ := s.Beacon()
	_ = head
	if !bytes.HasSuffix(b, tail) {
		t.Error("probe response does not end with the beacon tail")
	}
	named := &ProbeRequest{Elements: Elements{SSID([]byte("openmifi"))}}
	other := &ProbeRequest{Elements: Elements{SSID([]byte("other"))}}
	if !named.Wants(s.SSID, true) || other.Wants(s.SSID, false) || (&ProbeRequest{}).Wants(s.SSID, false) {
		t.Error("Wants")
	}
}

func TestAuthResponse(t *testing.T) {
	s := captureBSS()
	req, err := ParseMgmt((&BSS{BSSID: staAddr}).mustMarshal(apAddr, &Auth{Algorithm: AuthOpenSystem, Seq: 1}))
	if err != nil {
		t.Fatal(err)
	}
	req.SA = staAddr
	b, err := s.AuthResponse(req, StatusSuccess)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `b0 00 00 00 02 00 00 00 00 00 02 00 00 00 01 00 02 00 00 00 01 00 00 00
		00 00 02 00 00 00`)
	if !bytes.Equal(b, want) {
		t.Errorf("auth response\n got % x\nwant % x", b, want)
	}
	req.Body = &Auth{Algorithm: AuthSAE, Seq: 1}
	b, _ = s.AuthResponse(req, StatusAuthAlgUnsupported)
	if m, _ := ParseMgmt(b); m.Body.(*Auth).Status != StatusAuthAlgUnsupported || m.Body.(*Auth).Algorithm != AuthSAE {
		t.Errorf("SAE refusal %+v", m.Body)
	}
	req.Body = &Deauth{}
	if _, err := s.AuthResponse(req, StatusSuccess); err == nil {
		t.Error("auth response to a deauth built")
	}
}

func TestAssocResponse(t *testing.T) {
	s := captureBSS()
	req, err := ParseMgmt(unhex(t, stripComments(supplicantAssocReq)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.AssocResponse(req, StatusSuccess, 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMgmt(b)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := m.Body.(*AssocResponse)
	if !ok || r.Reassoc || r.AID != 1 || r.Status != StatusSuccess || m.DA != staAddr || r.Capability != CapESS|CapPrivacy|CapShortSlotTime {
		t.Fatalf("%+v %+v", m.Header, m.Body)
	}
	if b[28] != 0x01 || b[29] != 0xc0 {
		t.Errorf("AID octets % x", b[28:30])
	}
	for _, id := range []ElementID{IDSupportedRates, IDExtSupportedRates, IDHTCapabilities, IDHTOperation} {
		if _, ok := r.Elements.Find(id); !ok {
			t.Errorf("no element %d", id)
		}
	}
	if _, ok := r.Elements.Vendor(OUIMicrosoft, 2); !ok {
		t.Error("no WMM parameter element for a WMM station")
	}

	// The station limit: status 17, AID 0, no WMM for a non-WMM station.
	a := req.Body.(*AssocRequest)
	a.Elements = slices.DeleteFunc(slices.Clone(a.Elements), func(e Element) bool { return e.ID == IDVendor })
	b, err = s.AssocResponse(req, StatusTooManyStations, 3)
	if err != nil {
		t.Fatal(err)
	}
	m, _ = ParseMgmt(b)
	r = m.Body.(*AssocResponse)
	if r.Status != StatusTooManyStations || r.AID != 0 || b[26] != 17 || b[27] != 0 {
		t.Errorf("refusal %+v", r)
	}
	if _, ok := r.Elements.Vendor(OUIMicrosoft, 2); ok {
		t.Error("WMM parameter element for a non-WMM station")
	}

	a.Reassoc = true
	b, _ = s.AssocResponse(req, StatusSuccess, 2)
	if m, _ := ParseMgmt(b); m.Subtype != SubtypeReassocResponse {
		t.Errorf("reassociation answered with %v", m.Subtype)
	}
	for _, aid := range []uint16{0, MaxAID + 1} {
		if _, err := s.AssocResponse(req, StatusSuccess, aid); err == nil {
			t.Errorf("AID %d accepted", aid)
		}
	}
	req.Body = &Auth{}
	if _, err := s.AssocResponse(req, StatusSuccess, 1); err == nil {
		t.Error("association response to an auth built")
	}
}

func TestDeauthDisassoc(t *testing.T) {
	s := captureBSS()
	want := unhex(t, `c0 00 00 00 ff ff ff ff ff ff 02 00 00 00 01 00 02 00 00 00 01 00 00 00 03 00`)
	if b := s.Deauth(Broadcast, ReasonDeauthLeaving); !bytes.Equal(b, want) {
		t.Errorf("deauth % x", b)
	}
	m, err := ParseMgmt(s.Disassoc(staAddr, ReasonInactivity))
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := m.Body.(*Disassoc); !ok || d.Reason != ReasonInactivity || m.DA != staAddr {
		t.Errorf("disassoc %+v %+v", m.Header, m.Body)
	}
}
