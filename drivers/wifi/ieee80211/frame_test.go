package ieee80211

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	es := Elements{SSID([]byte("openmifi")), {IDSupportedRates, []byte{0x82, 0x84}}, WMMInfo(0)}
	hdr := Header{Flags: FlagRetry, Duration: 314, DA: apAddr, SA: staAddr, BSSID: apAddr, Seq: 0x1230}
	for _, body := range []Body{
		&AssocRequest{Capability: CapESS | CapPrivacy, ListenInterval: 10, Elements: es},
		&AssocRequest{Reassoc: true, Capability: CapESS, ListenInterval: 3, CurrentAP: Addr{1, 2, 3, 4, 5, 6}, Elements: es},
		&AssocResponse{Capability: CapESS, Status: StatusSuccess, AID: 1, Elements: es},
		&AssocResponse{Reassoc: true, Status: StatusTooManyStations},
		&AssocResponse{AID: MaxAID},
		&ProbeRequest{Elements: es},
		&ProbeRequest{},
		&ProbeResponse{BSSInfo{Timestamp: 1 << 40, Interval: 100, Capability: CapESS, Elements: es}},
		&Beacon{BSSInfo{Timestamp: 7, Interval: 200, Capability: CapESS | CapShortSlotTime, Elements: es}},
		&Auth{Algorithm: AuthOpenSystem, Seq: 1},
		&Auth{Algorithm: AuthSharedKey, Seq: 2, Status: StatusAuthAlgUnsupported, Elements: Elements{{IDChallengeText, []byte{1, 2}}}},
		&Auth{Algorithm: AuthSAE, Seq: 1, Rest: []byte{0x13, 0x00, 0xff}},
		&Deauth{Reason: ReasonDeauthLeaving},
		&Deauth{Reason: ReasonMICFailure, Elements: Elements{{IDVendor, []byte{0, 1, 2, 3}}}},
		&Disassoc{Reason: ReasonInactivity},
		&Raw{Kind: SubtypeAction, Data: []byte{3, 0, 1}},
		&Raw{Kind: SubtypeATIM},
	} {
		m := &Mgmt{Header: hdr, Body: body}
		m.Subtype = body.Subtype()
		b, err := m.Marshal()
		if err != nil {
			t.Errorf("%v: marshal: %v", body.Subtype(), err)
			continue
		}
		got, err := ParseMgmt(b)
		if err != nil {
			t.Errorf("%v: parse: %v", body.Subtype(), err)
			continue
		}
		normalize(got)
		normalize(m)
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%v: round trip\n got %+v %+v\nwant %+v %+v", body.Subtype(), got.Header, got.Body, m.Header, m.Body)
		}
	}
}

// normalize makes empty and nil slices alike for comparison.
func normalize(m *Mgmt) {
	fix := func(es *Elements) {
		if len(*es) == 0 {
			*es = nil
		}
		for i := range *es {
			if len((*es)[i].Data) == 0 {
				(*es)[i].Data = nil
			}
		}
	}
	switch b := m.Body.(type) {
	case *AssocRequest:
		fix(&b.Elements)
	case *AssocResponse:
		fix(&b.Elements)
	case *ProbeRequest:
		fix(&b.Elements)
	case *ProbeResponse:
		fix(&b.Elements)
	case *Beacon:
		fix(&b.Elements)
	case *Auth:
		fix(&b.Elements)
		if len(b.Rest) == 0 {
			b.Rest = nil
		}
	case *Deauth:
		fix(&b.Elements)
	case *Disassoc:
		fix(&b.Elements)
	case *Raw:
		if len(b.Data) == 0 {
			b.Data = nil
		}
	}
}

func TestAIDTopBits(t *testing.T) {
	m := &Mgmt{Body: &AssocResponse{AID: 5}}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if b[28] != 0x05 || b[29] != 0xc0 {
		t.Errorf("AID octets % x, want 05 c0", b[28:30])
	}
	if _, err := (&Mgmt{Body: &AssocResponse{AID: MaxAID + 1}}).Marshal(); err == nil {
		t.Error("AID 2008 marshalled")
	}
	// Above 2007 even the top bits cannot excuse it.
	over := bytes.Clone(b)
	over[28], over[29] = 0xd8, 0xc7 // 2008 | 0xc000
	if _, err := ParseMgmt(over); err == nil {
		t.Error("AID 2008 parsed")
	}
	// A peer that leaves the bits off still parses.
	b[29] = 0
	got, err := ParseMgmt(b)
	if err != nil || got.Body.(*AssocResponse).AID != 5 {
		t.Errorf("AID without top bits: %v", err)
	}
}

func TestFrameControl(t *testing.T) {
	if fc := SubtypeProbeRequest.FrameControl(); fc != 0x0040 {
		t.Errorf("probe request frame control %#04x", fc)
	}
	if fc := SubtypeAuth.FrameControl(); fc != 0x00b0 {
		t.Errorf("auth frame control %#04x", fc)
	}
	if s := Subtype(14).String(); s != "management subtype 14" {
		t.Errorf("subtype 14: %q", s)
	}
	a, err := AddrFrom(staAddr.HardwareAddr())
	if err != nil || a != staAddr || a.String() != "02:00:00:00:00:00" {
		t.Errorf("AddrFrom: %v %v", a, err)
	}
	if _, err := AddrFrom([]byte{1, 2, 3}); err == nil {
		t.Error("3-octet address accepted")
	}
}

func TestParseMgmtRejects(t *testing.T) {
	auth := (&BSS{BSSID: apAddr}).mustMarshal(staAddr, &Auth{Seq: 1})
	with := func(i int, v byte) []byte {
		b := bytes.Clone(auth)
		b[i] = v
		return b
	}
	for name, tc := range map[string]struct {
		in  []byte
		err error
	}{
		"empty":              {nil, ErrTruncated},
		"23-octet header":    {auth[:23], ErrTruncated},
		"data frame":         {with(0, 0x08), ErrNotMgmt},
		"control frame":      {with(0, 0xb4), ErrNotMgmt},
		"protocol version 1": {with(0, 0xb1), ErrNotMgmt},
		"protected":          {with(1, FlagProtected), nil},
		"HT control":         {with(1, FlagOrder), nil},
		"auth cut short":     {auth[:len(auth)-1], ErrTruncated},
		"auth bad element":   {append(bytes.Clone(auth), 0xdd, 0x04, 0x00), ErrTruncated},
		"assoc no interval":  {append(with(0, 0x00)[:24], 0x01, 0x00, 0x05), ErrTruncated},
		"reassoc short AP":   {append(with(0, 0x20)[:24], 0x01, 0x00, 0x05, 0x00, 1, 2, 3, 4, 5), ErrTruncated},
		"beacon short stamp": {append(with(0, 0x80)[:24], 1, 2, 3, 4, 5, 6, 7), ErrTruncated},
		"deauth no reason":   {append(with(0, 0xc0)[:24], 3), ErrTruncated},
		"probe lone octet":   {append(with(0, 0x40)[:24], 0), ErrTruncated},
	} {
		m, err := ParseMgmt(tc.in)
		if err == nil {
			t.Errorf("%s: parsed as %+v", name, m)
			continue
		}
		if tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("%s: err %v, want %v", name, err, tc.err)
		}
	}
}

func TestMarshalWithoutBody(t *testing.T) {
	if _, err := (&Mgmt{}).Marshal(); err == nil {
		t.Error("frame without body marshalled")
	}
	if _, err := (&Mgmt{Body: &Raw{Kind: 16}}).Marshal(); err == nil {
		t.Error("subtype 16 marshalled")
	}
	if _, err := (&Mgmt{Body: &ProbeRequest{Elements: Elements{{IDSSID, make([]byte, 300)}}}}).Marshal(); err == nil {
		t.Error("300-octet element marshalled")
	}
}
