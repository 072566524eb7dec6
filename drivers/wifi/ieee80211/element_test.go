package ieee80211

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestParseElements(t *testing.T) {
	in := []byte{0x00, 0x03, 'a', 'b', 'c', 0x03, 0x01, 0x06, 0xdd, 0x00}
	es, err := ParseElements(in)
	if err != nil {
		t.Fatal(err)
	}
	want := Elements{{IDSSID, []byte("abc")}, {IDDSParams, []byte{6}}, {IDVendor, []byte{}}}
	if !reflect.DeepEqual(es, want) {
		t.Fatalf("got %v, want %v", es, want)
	}
	out, err := es.Marshal()
	if err != nil || !bytes.Equal(out, in) {
		t.Errorf("round trip: % x (%v)", out, err)
	}
	// Data must not reach into the next element through append.
	_ = append(es[0].Data, 'X')
	if in[5] != 0x03 {
		t.Error("appending to an element body overwrote the next element")
	}
}

func TestParseElementsEmpty(t *testing.T) {
	for _, in := range [][]byte{nil, {}} {
		es, err := ParseElements(in)
		if err != nil || len(es) != 0 {
			t.Errorf("ParseElements(%v) = %v, %v", in, es, err)
		}
	}
}

func TestParseElementsRejectsTruncated(t *testing.T) {
	for name, in := range map[string][]byte{
		"lone octet":            {0x00},
		"length past end":       {0x00, 0x05, 'a', 'b'},
		"second past end":       {0x03, 0x01, 0x06, 0x30, 0x14, 0x01, 0x00},
		"trailing octet":        {0x03, 0x01, 0x06, 0xdd},
		"length 255, 254 given": append([]byte{0xdd, 0xff}, make([]byte, 254)...),
	} {
		if _, err := ParseElements(in); !errors.Is(err, ErrTruncated) {
			t.Errorf("%s: err %v, want ErrTruncated", name, err)
		}
	}
	if _, err := ParseElements(append([]byte{0xdd, 0xff}, make([]byte, 255)...)); err != nil {
		t.Errorf("255-octet element: %v", err)
	}
}

func TestMarshalRejectsOverlongElement(t *testing.T) {
	if _, err := (Elements{{IDVendor, make([]byte, 256)}}).Marshal(); err == nil {
		t.Error("256-octet element body marshalled")
	}
}

func TestElementLookups(t *testing.T) {
	es := Elements{
		{IDVendor, []byte{0x00, 0x50, 0xf2, 0x04, 0x10}}, // WPS
		{IDSSID, []byte("first")},
		WMMInfo(0x0f),
		{IDSSID, []byte("second")},
	}
	if e, ok := es.Find(IDSSID); !ok || string(e.Data) != "first" {
		t.Errorf("Find: %v %v", e, ok)
	}
	if n := es.Count(IDSSID); n != 2 {
		t.Errorf("Count = %d", n)
	}
	if _, ok := es.Find(IDRSN); ok {
		t.Error("found an RSN element that is not there")
	}
	if e, ok := es.Vendor(OUIMicrosoft, 4); !ok || e.Data[4] != 0x10 {
		t.Errorf("Vendor WPS: %v %v", e, ok)
	}
	if e, ok := es.Vendor(OUIMicrosoft, 2); !ok || len(e.Data) != WMMInfoLen {
		t.Errorf("Vendor WMM: %v %v", e, ok)
	}
	if _, ok := es.Vendor(OUIIEEE, 2); ok {
		t.Error("vendor lookup ignored the OUI")
	}
	if q, ok := es.WMM(); !ok || q != 0x0f {
		t.Errorf("WMM = %#x %v", q, ok)
	}
	if _, ok := (Elements{{IDSSID, make([]byte, 33)}}).SSID(); ok {
		t.Error("33-octet SSID accepted")
	}
	if _, ok := (Elements{{IDDSParams, []byte{1, 2}}}).Channel(); ok {
		t.Error("2-octet DS parameter set accepted")
	}
}

func TestRates(t *testing.T) {
	all := []int{10, 20, 55, 110, 60, 90, 120, 180, 240, 360, 480, 540}
	rs := BandRates(all, true)
	sup, ext, ok := RateElements(rs)
	if !ok {
		t.Fatal("12 rates gave no extended rates element")
	}
	if want := []byte{0x82, 0x84, 0x8b, 0x96, 0x0c, 0x12, 0x18, 0x24}; !bytes.Equal(sup.Data, want) || sup.ID != IDSupportedRates {
		t.Errorf("supported % x, want % x", sup.Data, want)
	}
	if want := []byte{0x30, 0x48, 0x60, 0x6c}; !bytes.Equal(ext.Data, want) || ext.ID != IDExtSupportedRates {
		t.Errorf("extended % x, want % x", ext.Data, want)
	}
	if got := (Elements{sup, ext}).Rates(); !reflect.DeepEqual(got, rs) {
		t.Errorf("Rates() = %v, want %v", got, rs)
	}
	a := BandRates([]int{60, 90, 120, 180, 240, 360, 480, 540}, false)
	if _, _, ok := RateElements(a); ok {
		t.Error("8 rates gave an extended rates element")
	}
	if basic := []bool{a[0].IsBasic(), a[1].IsBasic(), a[2].IsBasic(), a[4].IsBasic()}; !reflect.DeepEqual(basic, []bool{true, false, true, true}) {
		t.Errorf("5 GHz basic rates %v", a)
	}
	if _, err := RateFrom100k(7, false); err == nil {
		t.Error("0.7 Mbit/s accepted")
	}
	if r, _ := RateFrom100k(55, true); r != 0x8b || r.Value() != 11 {
		t.Errorf("5.5 Mbit/s basic = %#x", r)
	}
	station := []Rate{2, 4, 11, 22, 12, 18}
	if !SupportsBasicRates(rs, station) {
		t.Error("station with all basic rates refused")
	}
	if SupportsBasicRates(rs, station[1:]) {
		t.Error("station without 1 Mbit/s accepted")
	}
}

func TestCountryAndExtCapabilities(t *testing.T) {
	e, err := Country{Code: "DE", FirstChannel: 1, NumChannels: 13, MaxPowerDBm: 20}.Element()
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{'D', 'E', ' ', 1, 13, 20}; e.ID != IDCountry || !bytes.Equal(e.Data, want) {
		t.Errorf("country % x", e.Data)
	}
	for _, c := range []Country{{Code: "de", NumChannels: 1}, {Code: "DEU", NumChannels: 1}, {Code: "DE"}} {
		if _, err := c.Element(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if e := ExtCapabilities(ExtCapBSSTransition); !bytes.Equal(e.Data, []byte{0, 0, 0x08}) {
		t.Errorf("ext caps % x", e.Data)
	}
}
