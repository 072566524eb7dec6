package ieee80211

import "testing"

func BenchmarkParseAssocRequest(b *testing.B) {
	raw := unhex(b, stripComments(supplicantAssocReq))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMgmt(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBeacon(b *testing.B) {
	s := captureBSS()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Beacon(); err != nil {
			b.Fatal(err)
		}
	}
}
