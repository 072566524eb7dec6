package ieee80211

import (
	"bytes"
	"reflect"
	"testing"
)

// The seed corpora are under testdata/fuzz (see seeds_test.go).

func FuzzParseElements(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := ParseElements(b)
		if err != nil {
			return
		}
		// The parser keeps everything, so marshalling gives the input
		// back exactly.
		out, err := es.Marshal()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("round trip: % x -> % x (%v)", b, out, err)
		}
		exerciseElements(es)
	})
}

// exerciseElements runs every accessor an AP uses on hostile elements:
// none may panic.
func exerciseElements(es Elements) {
	es.SSID()
	es.Channel()
	es.HTCapabilities()
	es.WMM()
	rates := es.Rates()
	SupportsBasicRates(BandRates([]int{10, 20, 55, 110}, true), rates)
	if e, ok := es.Find(IDRSN); ok {
		_ = CheckRSN(WPA2PSK(true).Marshal(), e.Data)
	}
	if e, ok := es.Find(IDHTOperation); ok {
		_, _ = ParseHTOperation(e.Data)
	}
	if e, ok := es.Vendor(OUIMicrosoft, 2); ok {
		_, _ = ParseWMMParams(e.Data)
	}
}

func FuzzParseMgmt(f *testing.F) {
	bss := captureBSS()
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMgmt(b)
		if err != nil {
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("marshal of a parsed frame: %v", err)
		}
		m2, err := ParseMgmt(out)
		if err != nil {
			t.Fatalf("reparse: %v\n% x", err, out)
		}
		normalize(m)
		normalize(m2)
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip:\n%+v %+v\n%+v %+v", m.Header, m.Body, m2.Header, m2.Body)
		}
		// Only the AID's top bits may differ between input and output.
		if _, isResp := m.Body.(*AssocResponse); !isResp && !bytes.Equal(out, b) {
			t.Fatalf("re-marshal differs:\n% x\n% x", b, out)
		}
		// What the AP does with a frame must not panic either.
		switch body := m.Body.(type) {
		case *ProbeRequest:
			body.Wants(bss.SSID, false)
			exerciseElements(body.Elements)
		case *Auth:
			if _, err := bss.AuthResponse(m, StatusSuccess); err != nil {
				t.Fatal(err)
			}
		case *AssocRequest:
			exerciseElements(body.Elements)
			if _, err := bss.AssocResponse(m, StatusSuccess, 1); err != nil {
				t.Fatal(err)
			}
		case *Beacon:
			exerciseElements(body.Elements)
		}
	})
}

func FuzzParseRSN(f *testing.F) {
	ours := WPA2PSK(true).Marshal()
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = CheckRSN(ours, b)
		r, err := ParseRSN(b)
		if err != nil {
			return
		}
		r2, err := ParseRSN(r.Marshal())
		if err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip: %+v -> %+v", r, r2)
		}
	})
}
