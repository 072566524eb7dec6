package ieee80211

import (
	"bytes"
	"testing"
)

func TestHTCapabilitiesRoundTrip(t *testing.T) {
	h := HTCapabilities{Info: 0x107e, AMPDU: 0x1b, MCSSet: [16]byte{0xff, 0xff, 12: 1}, ExtCap: 0x0102, TxBF: 0x01020304, ASEL: 9}
	e := h.Element()
	if e.ID != IDHTCapabilities || len(e.Data) != HTCapabilitiesLen {
		t.Fatalf("element %d of %d octets", e.ID, len(e.Data))
	}
	got, err := ParseHTCapabilities(e.Data)
	if err != nil || got != h {
		t.Errorf("round trip %+v (%v)", got, err)
	}
	if _, err := ParseHTCapabilities(e.Data[:25]); err == nil {
		t.Error("25-octet HT capabilities accepted")
	}
	if _, ok := (Elements{{IDHTCapabilities, e.Data[:20]}}).HTCapabilities(); ok {
		t.Error("short HT capabilities element reported")
	}
}

func TestHTForAP(t *testing.T) {
	// mac80211_hwsim: 20/40, greenfield, SGI 20 and 40, DSSS/CCK in 40,
	// static SMPS.
	phy := HTCapabilities{Info: 0x1072, ExtCap: 1, TxBF: 1, ASEL: 1}
	if got := phy.ForAP(false); got.Info != HTCapSMPSDisabled|HTCapSGI20 || got.ExtCap|uint16(got.TxBF)|uint16(got.ASEL) != 0 {
		t.Errorf("HT20: %+v", got)
	}
	if got := phy.ForAP(true).Info; got != HTCapSMPSDisabled|HTCapSGI20|HTCapSGI40|HTCapChannelWidth40|HTCapDSSSCCK40 {
		t.Errorf("HT40: %#x", got)
	}
}

func TestHTOperation(t *testing.T) {
	op := NewHTOperation(11, HTProtectionNonHTMixed)
	e := op.Element()
	want := append([]byte{11, 0, 3, 0, 0, 0}, make([]byte, 16)...)
	if e.ID != IDHTOperation || !bytes.Equal(e.Data, want) {
		t.Errorf("element % x", e.Data)
	}
	got, err := ParseHTOperation(e.Data)
	if err != nil || got != op || got.Protection() != HTProtectionNonHTMixed {
		t.Errorf("round trip %+v (%v)", got, err)
	}
	if _, err := ParseHTOperation(e.Data[1:]); err == nil {
		t.Error("21-octet HT operation accepted")
	}
}

func TestWMM(t *testing.T) {
	p := DefaultWMMParams()
	p.QoSInfo = 0x83
	p.AC[ACVoice].ACM = true
	e := p.Element()
	if e.ID != IDVendor || len(e.Data) != WMMParamsLen || e.Data[8+4*ACVoice] != 0x72 {
		t.Fatalf("element % x", e.Data)
	}
	got, err := ParseWMMParams(e.Data)
	if err != nil || got != p {
		t.Errorf("round trip %+v (%v)", got, err)
	}
	if q, ok := (Elements{e}).WMM(); !ok || q != 0x83 {
		t.Errorf("WMM() on a parameter element: %#x %v", q, ok)
	}
	bad := append([]byte{}, e.Data...)
	bad[8] = 0x23 // BE record claiming to be BK
	if _, err := ParseWMMParams(bad); err == nil {
		t.Error("misordered records accepted")
	}
	if _, err := ParseWMMParams(WMMInfo(0).Data); err == nil {
		t.Error("information element parsed as parameters")
	}
	if want := []byte{0x00, 0x50, 0xf2, 0x02, 0x00, 0x01, 0x05}; !bytes.Equal(WMMInfo(5).Data, want) {
		t.Errorf("WMMInfo % x", WMMInfo(5).Data)
	}
	short := Elements{{IDVendor, []byte{0x00, 0x50, 0xf2, 0x02, 0x00, 0x01}}}
	if _, ok := short.WMM(); ok {
		t.Error("truncated WMM information element accepted")
	}
}
