package ieee80211

import (
	"bytes"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

// unhex decodes hex written the way Wireshark's packet bytes pane shows
// it, with any spacing and line breaks.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// hostapdBeacon is a beacon in the shape hostapd sends for a WPA2-PSK
// network with 802.11n and WMM on channel 6 of mac80211_hwsim (written
// for this test, field by field; the comments are the hand check).
const hostapdBeacon = `
80 00 00 00                         // beacon, no flags, duration 0
ff ff ff ff ff ff                   // DA broadcast
02 00 00 00 01 00                   // SA
02 00 00 00 01 00                   // BSSID
a0 3c                               // sequence 970, fragment 0
e8 2b 06 00 00 00 00 00             // timestamp 404456 µs
64 00                               // interval 100 TU
11 04                               // ESS, privacy, short slot time
00 08 6f 70 65 6e 6d 69 66 69       // SSID "openmifi"
01 08 82 84 8b 96 0c 12 18 24       // rates 1b 2b 5.5b 11b 6 9 12 18
03 01 06                            // DS: channel 6
05 04 00 02 00 00                   // TIM: DTIM count 0 period 2
2a 01 00                            // ERP: no protection
32 04 30 48 60 6c                   // ext rates 24 36 48 54
30 14 01 00                         // RSN version 1
      00 0f ac 04                   // group CCMP
      01 00 00 0f ac 04             // pairwise CCMP
      01 00 00 0f ac 02             // AKM PSK
      0c 00                         // 16 PTKSA replay counters
2d 1a 0c 00 1b                      // HT caps: SMPS disabled; A-MPDU 64k, 8 µs
      ff ff 00 00 00 00 00 00 00 00 00 00 01 00 00 00    // MCS 0-15, tx defined
      00 00 00 00 00 00 00
3d 16 06 00 00 00 00 00             // HT op: channel 6, 20 MHz, no protection
      00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
7f 08 04 00 00 00 00 00 00 40       // ext caps: bits 2, 62
dd 18 00 50 f2 02 01 01 01 00       // WMM parameter, version 1, set count 1
      03 a4 00 00                   // BE aifsn 3 cw 15-1023
      27 a4 00 00                   // BK aifsn 7 cw 15-1023
      42 43 5e 00                   // VI aifsn 2 cw 7-15 txop 3008 µs
      62 32 2f 00                   // VO aifsn 2 cw 3-7 txop 1504 µs
`

// supplicantAssocReq is an association request in the shape
// wpa_supplicant (with mac80211) sends to the network above.
const supplicantAssocReq = `
00 00 3a 01                         // assoc request, duration 314 µs
02 00 00 00 01 00                   // DA = BSSID
02 00 00 00 00 00                   // SA (the station)
02 00 00 00 01 00                   // BSSID
10 00                               // sequence 1
31 04                               // ESS, privacy, short preamble, short slot
05 00                               // listen interval 5
00 08 6f 70 65 6e 6d 69 66 69       // SSID "openmifi"
01 08 02 04 0b 16 0c 12 18 24       // rates
32 04 30 48 60 6c                   // ext rates
30 14 01 00 00 0f ac 04 01 00 00 0f ac 04 01 00 00 0f ac 02 00 00    // RSN
3b 03 51 51 53                      // supported operating classes 81; 81 83
2d 1a 2c 10 1b                      // HT caps: SMPS disabled, SGI20, DSSS/CCK 40
      ff ff 00 00 00 00 00 00 00 00 00 00 01 00 00 00
      00 00 00 00 00 00 00
7f 08 04 00 00 00 00 00 00 40       // ext caps
dd 07 00 50 f2 02 00 01 00          // WMM information, version 1, no U-APSD
`

// supplicantProbeReq is a wildcard probe request as a scanning station
// sends it.
const supplicantProbeReq = `
40 00 00 00 ff ff ff ff ff ff 02 00 00 00 00 00 ff ff ff ff ff ff 20 00
00 00                               // wildcard SSID
01 08 02 04 0b 16 0c 12 18 24
32 04 30 48 60 6c
2d 1a 2c 10 1b ff ff 00 00 00 00 00 00 00 00 00 00 01 00 00 00
      00 00 00 00 00 00 00
7f 08 04 00 00 00 00 00 00 40
`

var (
	apAddr  = Addr{0x02, 0, 0, 0, 0x01, 0}
	staAddr = Addr{0x02, 0, 0, 0, 0, 0}
)

// hwsimHT is the HT capability hostapd advertises on mac80211_hwsim.
var hwsimHT = HTCapabilities{
	Info:   HTCapSMPSDisabled,
	AMPDU:  0x1b,
	MCSSet: [16]byte{0xff, 0xff, 12: 0x01},
}

// captureBSS is the configuration our builder needs to send the beacon
// above.
func captureBSS() *BSS {
	wmm := DefaultWMMParams()
	wmm.QoSInfo = 1
	return &BSS{
		BSSID:           apAddr,
		SSID:            []byte("openmifi"),
		Channel:         6,
		Capability:      CapShortSlotTime,
		Rates:           BandRates([]int{10, 20, 55, 110, 60, 90, 120, 180, 240, 360, 480, 540}, true),
		RSN:             WPA2PSK(true),
		HT:              &hwsimHT,
		WMM:             &wmm,
		ExtCapabilities: []uint{ExtCapExtendedChannelSwitching, ExtCapOperatingModeNotif},
	}
}

func TestCaptureHostapdBeacon(t *testing.T) {
	raw := unhex(t, stripComments(hostapdBeacon))
	m, err := ParseMgmt(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, ok := m.Body.(*Beacon)
	if !ok {
		t.Fatalf("body %T, want *Beacon", m.Body)
	}
	if m.DA != Broadcast || m.SA != apAddr || m.BSSID != apAddr || m.Seq>>4 != 970 {
		t.Errorf("header %+v", m.Header)
	}
	if b.Timestamp != 404456 || b.Interval != 100 || b.Capability != CapESS|CapPrivacy|CapShortSlotTime {
		t.Errorf("fixed fields %d %d %#x", b.Timestamp, b.Interval, b.Capability)
	}
	if ssid, ok := b.Elements.SSID(); !ok || string(ssid) != "openmifi" {
		t.Errorf("ssid %q %v", ssid, ok)
	}
	if ch, ok := b.Elements.Channel(); !ok || ch != 6 {
		t.Errorf("channel %d %v", ch, ok)
	}
	if got := len(b.Elements.Rates()); got != 12 {
		t.Errorf("%d rates, want 12", got)
	}
	rsnElem, _ := b.Elements.Find(IDRSN)
	rsn, err := ParseRSN(rsnElem.Data)
	if err != nil {
		t.Fatal(err)
	}
	if rsn.GroupCipher != CipherCCMP || !slices.Equal(rsn.AKMs, []Suite{AKMPSK}) || rsn.Capabilities != RSNCapPTKSAReplay16 {
		t.Errorf("rsn %+v", rsn)
	}
	if ht, ok := b.Elements.HTCapabilities(); !ok || ht != hwsimHT {
		t.Errorf("ht %+v %v", ht, ok)
	}
	e, ok := b.Elements.Vendor(OUIMicrosoft, 2)
	if !ok {
		t.Fatal("no WMM element")
	}
	wmm, err := ParseWMMParams(e.Data)
	if err != nil {
		t.Fatal(err)
	}
	if want := captureBSS().WMM; wmm != *want {
		t.Errorf("wmm %+v, want %+v", wmm, *want)
	}
	if out, err := m.Marshal(); err != nil || !bytes.Equal(out, raw) {
		t.Errorf("re-marshal differs (%v):\n got % x\nwant % x", err, out, raw)
	}
}

// TestBeaconMatchesHostapd builds the beacon of the same network and
// checks it is hostapd's byte for byte, apart from the fields the kernel
// fills in (sequence number, timestamp) and the TIM it inserts.
func TestBeaconMatchesHostapd(t *testing.T) {
	raw := unhex(t, stripComments(hostapdBeacon))
	head, tail, err := captureBSS().Beacon()
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(raw)
	clear(want[22:24]) // sequence control
	clear(want[24:32]) // timestamp
	tim := []byte{0x05, 0x04, 0x00, 0x02, 0x00, 0x00}
	got := slices.Concat(head, tim, tail)
	if !bytes.Equal(got, want) {
		t.Errorf("beacon:\n got % x\nwant % x", got, want)
	}
	if i := bytes.Index(want, tim); i != len(head) {
		t.Errorf("head is %d octets, the TIM sits at %d", len(head), i)
	}
}

func TestCaptureSupplicantAssocRequest(t *testing.T) {
	raw := unhex(t, stripComments(supplicantAssocReq))
	m, err := ParseMgmt(raw)
	if err != nil {
		t.Fatal(err)
	}
	a, ok := m.Body.(*AssocRequest)
	if !ok {
		t.Fatalf("body %T, want *AssocRequest", m.Body)
	}
	if a.Reassoc || a.ListenInterval != 5 || a.Capability != CapESS|CapPrivacy|CapShortPreamble|CapShortSlotTime {
		t.Errorf("fixed fields %+v", a)
	}
	if m.SA != staAddr || m.Duration != 314 {
		t.Errorf("header %+v", m.Header)
	}
	rsn, _ := a.Elements.Find(IDRSN)
	ours := captureBSS().RSN.Marshal()
	if err := CheckRSN(ours, rsn.Data); err != nil {
		t.Errorf("CheckRSN: %v", err)
	}
	if !SupportsBasicRates(captureBSS().Rates, a.Elements.Rates()) {
		t.Error("station rates do not cover our basic rates")
	}
	if qos, ok := a.Elements.WMM(); !ok || qos != 0 {
		t.Errorf("wmm %#x %v", qos, ok)
	}
	ht, ok := a.Elements.HTCapabilities()
	if !ok || ht.Info != HTCapSMPSDisabled|HTCapSGI20|HTCapDSSSCCK40 {
		t.Errorf("ht %+v %v", ht, ok)
	}
	if e, ok := a.Elements.Find(59); !ok || !bytes.Equal(e.Data, []byte{81, 81, 83}) {
		t.Errorf("operating classes element %v %v", e, ok)
	}
	if out, err := m.Marshal(); err != nil || !bytes.Equal(out, raw) {
		t.Errorf("re-marshal differs (%v)", err)
	}
}

func TestCaptureProbeRequest(t *testing.T) {
	m, err := ParseMgmt(unhex(t, stripComments(supplicantProbeReq)))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := m.Body.(*ProbeRequest)
	if !ok {
		t.Fatalf("body %T", m.Body)
	}
	if !p.Wants([]byte("openmifi"), false) {
		t.Error("wildcard probe not answered by a visible network")
	}
	if p.Wants([]byte("openmifi"), true) {
		t.Error("wildcard probe answered by a hidden network")
	}
}

// stripComments drops the "//" comments from annotated hex.
func stripComments(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		line, _, _ = strings.Cut(line, "//")
		out = append(out, line)
	}
	return strings.Join(out, " ")
}
