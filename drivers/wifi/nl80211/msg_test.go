package nl80211

import (
	"bytes"
	"encoding/binary"
	"net"
	"slices"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// attrs decodes one level of attributes, failing on duplicates: nl80211
// would take the last one and hide a mistake.
func attrs(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	as, err := netlink.UnmarshalAttributes(b)
	if err != nil {
		t.Fatalf("decode attributes: %v", err)
	}
	m := map[uint16][]byte{}
	for _, a := range as {
		typ := a.Type &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER) // the kernel ignores the nested flag
		if _, dup := m[typ]; dup {
			t.Fatalf("attribute %d twice", typ)
		}
		m[typ] = a.Data
	}
	return m
}

// wantSet checks that exactly the attribute types want are present.
func wantSet(t *testing.T, m map[uint16][]byte, want ...uint16) {
	t.Helper()
	var got []uint16
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("attribute types = %v, want %v", got, want)
	}
}

func u16(b []byte) uint16 { return binary.NativeEndian.Uint16(b) }
func u32(b []byte) uint32 { return binary.NativeEndian.Uint32(b) }

func wantU32(t *testing.T, m map[uint16][]byte, typ uint16, want uint32) {
	t.Helper()
	if d := m[typ]; len(d) != 4 || u32(d) != want {
		t.Errorf("attribute %d = %x, want u32 %#x", typ, d, want)
	}
}

func wantU16(t *testing.T, m map[uint16][]byte, typ uint16, want uint16) {
	t.Helper()
	if d := m[typ]; len(d) != 2 || u16(d) != want {
		t.Errorf("attribute %d = %x, want u16 %#x", typ, d, want)
	}
}

func wantU8(t *testing.T, m map[uint16][]byte, typ uint16, want uint8) {
	t.Helper()
	if d := m[typ]; len(d) != 1 || d[0] != want {
		t.Errorf("attribute %d = %x, want u8 %#x", typ, d, want)
	}
}

func wantBytes(t *testing.T, m map[uint16][]byte, typ uint16, want []byte) {
	t.Helper()
	if d, ok := m[typ]; !ok || !bytes.Equal(d, want) {
		t.Errorf("attribute %d = %x, want %x", typ, d, want)
	}
}

func wantFlag(t *testing.T, m map[uint16][]byte, typ uint16) {
	t.Helper()
	if d, ok := m[typ]; !ok || len(d) != 0 {
		t.Errorf("attribute %d = %x (present %v), want a flag", typ, d, ok)
	}
}

var (
	staMAC = net.HardwareAddr{0x02, 0, 0, 0, 1, 0}
	apMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0}
)

func testStartConfig() StartConfig {
	return StartConfig{
		BeaconHead:     bytes.Repeat([]byte{0x80}, 40),
		BeaconTail:     []byte{0x30, 0x14},
		SSID:           []byte("openmifi"),
		BeaconInterval: 100,
		DTIMPeriod:     2,
		FreqMHz:        2437,
		HT20:           true,
		Privacy:        true,
	}
}

func TestStartAPAttrs(t *testing.T) {
	cfg := testStartConfig()
	m := attrs(t, startAPAttrs(7, cfg, true))
	wantSet(t, m,
		unix.NL80211_ATTR_IFINDEX, unix.NL80211_ATTR_BEACON_HEAD, unix.NL80211_ATTR_BEACON_TAIL,
		unix.NL80211_ATTR_BEACON_INTERVAL, unix.NL80211_ATTR_DTIM_PERIOD, unix.NL80211_ATTR_SSID,
		unix.NL80211_ATTR_HIDDEN_SSID, unix.NL80211_ATTR_WIPHY_FREQ, unix.NL80211_ATTR_WIPHY_CHANNEL_TYPE,
		unix.NL80211_ATTR_AUTH_TYPE, unix.NL80211_ATTR_PRIVACY, unix.NL80211_ATTR_WPA_VERSIONS,
		unix.NL80211_ATTR_CIPHER_SUITES_PAIRWISE, unix.NL80211_ATTR_CIPHER_SUITE_GROUP, unix.NL80211_ATTR_AKM_SUITES,
		unix.NL80211_ATTR_CONTROL_PORT, unix.NL80211_ATTR_CONTROL_PORT_ETHERTYPE, unix.NL80211_ATTR_CONTROL_PORT_NO_ENCRYPT,
		unix.NL80211_ATTR_CONTROL_PORT_OVER_NL80211, unix.NL80211_ATTR_SOCKET_OWNER)
	wantU32(t, m, unix.NL80211_ATTR_IFINDEX, 7)
	wantBytes(t, m, unix.NL80211_ATTR_BEACON_HEAD, cfg.BeaconHead)
	wantBytes(t, m, unix.NL80211_ATTR_BEACON_TAIL, cfg.BeaconTail)
	wantU32(t, m, unix.NL80211_ATTR_BEACON_INTERVAL, 100)
	wantU32(t, m, unix.NL80211_ATTR_DTIM_PERIOD, 2)
	wantBytes(t, m, unix.NL80211_ATTR_SSID, []byte("openmifi"))
	wantU32(t, m, unix.NL80211_ATTR_HIDDEN_SSID, unix.NL80211_HIDDEN_SSID_NOT_IN_USE)
	wantU32(t, m, unix.NL80211_ATTR_WIPHY_FREQ, 2437)
	wantU32(t, m, unix.NL80211_ATTR_WIPHY_CHANNEL_TYPE, unix.NL80211_CHAN_HT20)
	wantU32(t, m, unix.NL80211_ATTR_AUTH_TYPE, unix.NL80211_AUTHTYPE_OPEN_SYSTEM)
	wantFlag(t, m, unix.NL80211_ATTR_PRIVACY)
	wantU32(t, m, unix.NL80211_ATTR_WPA_VERSIONS, unix.NL80211_WPA_VERSION_2)
	wantBytes(t, m, unix.NL80211_ATTR_CIPHER_SUITES_PAIRWISE, u32s(0x000fac04))
	wantU32(t, m, unix.NL80211_ATTR_CIPHER_SUITE_GROUP, 0x000fac04)
	wantBytes(t, m, unix.NL80211_ATTR_AKM_SUITES, u32s(0x000fac02))
	wantFlag(t, m, unix.NL80211_ATTR_CONTROL_PORT)
	wantU16(t, m, unix.NL80211_ATTR_CONTROL_PORT_ETHERTYPE, 0x888e)
	wantFlag(t, m, unix.NL80211_ATTR_CONTROL_PORT_NO_ENCRYPT)
	wantFlag(t, m, unix.NL80211_ATTR_CONTROL_PORT_OVER_NL80211)
	wantFlag(t, m, unix.NL80211_ATTR_SOCKET_OWNER)
}

func TestStartAPAttrsOpenHiddenNoControlPort(t *testing.T) {
	cfg := testStartConfig()
	cfg.Privacy, cfg.Hidden, cfg.HT20 = false, true, false
	cfg.ProbeRespIEs = []byte{0xdd, 0x01, 0x00}
	m := attrs(t, startAPAttrs(7, cfg, false))
	for _, typ := range []uint16{unix.NL80211_ATTR_PRIVACY, unix.NL80211_ATTR_WPA_VERSIONS,
		unix.NL80211_ATTR_CIPHER_SUITES_PAIRWISE, unix.NL80211_ATTR_CIPHER_SUITE_GROUP,
		unix.NL80211_ATTR_AKM_SUITES, unix.NL80211_ATTR_CONTROL_PORT_OVER_NL80211,
		unix.NL80211_ATTR_CONTROL_PORT_NO_ENCRYPT} {
		if _, ok := m[typ]; ok {
			t.Errorf("attribute %d present in an open AP without control port over nl80211", typ)
		}
	}
	wantU32(t, m, unix.NL80211_ATTR_HIDDEN_SSID, unix.NL80211_HIDDEN_SSID_ZERO_LEN)
	wantU32(t, m, unix.NL80211_ATTR_WIPHY_CHANNEL_TYPE, unix.NL80211_CHAN_NO_HT)
	wantBytes(t, m, unix.NL80211_ATTR_IE_PROBE_RESP, cfg.ProbeRespIEs)
	wantFlag(t, m, unix.NL80211_ATTR_SOCKET_OWNER)
}

func TestNewStationAttrs(t *testing.T) {
	ht := bytes.Repeat([]byte{0x11}, 26)
	p := StationParams{
		MAC: staMAC, AID: 3, ListenInterval: 10, Capability: 0x0431,
		Rates: []byte{0x82, 0x84, 0x8b, 0x96, 0x0c}, HTCapElement: ht, WMM: true,
	}
	m := attrs(t, newStationAttrs(7, p, true))
	wantSet(t, m, unix.NL80211_ATTR_IFINDEX, unix.NL80211_ATTR_MAC, unix.NL80211_ATTR_STA_AID,
		unix.NL80211_ATTR_STA_LISTEN_INTERVAL, unix.NL80211_ATTR_STA_SUPPORTED_RATES,
		unix.NL80211_ATTR_STA_CAPABILITY, unix.NL80211_ATTR_HT_CAPABILITY, unix.NL80211_ATTR_STA_FLAGS2)
	wantBytes(t, m, unix.NL80211_ATTR_MAC, staMAC)
	wantU16(t, m, unix.NL80211_ATTR_STA_AID, 3)
	wantU16(t, m, unix.NL80211_ATTR_STA_LISTEN_INTERVAL, 10)
	wantBytes(t, m, unix.NL80211_ATTR_STA_SUPPORTED_RATES, p.Rates)
	wantU16(t, m, unix.NL80211_ATTR_STA_CAPABILITY, 0x0431)
	wantBytes(t, m, unix.NL80211_ATTR_HT_CAPABILITY, ht)
	// struct nl80211_sta_flag_update: mask, then set.
	want := uint32(1<<unix.NL80211_STA_FLAG_WME | 1<<unix.NL80211_STA_FLAG_SHORT_PREAMBLE |
		1<<unix.NL80211_STA_FLAG_AUTHENTICATED | 1<<unix.NL80211_STA_FLAG_ASSOCIATED)
	wantBytes(t, m, unix.NL80211_ATTR_STA_FLAGS2, u32s(want, want))

	// Without FULL_AP_CLIENT_STATE the kernel refuses the auth/assoc
	// flags; a station without WMM, short preamble or HT gets none.
	p.WMM, p.Capability, p.HTCapElement = false, 0x0401, nil
	m = attrs(t, newStationAttrs(7, p, false))
	if _, ok := m[unix.NL80211_ATTR_HT_CAPABILITY]; ok {
		t.Error("HT capability sent for a non-HT station")
	}
	wantBytes(t, m, unix.NL80211_ATTR_STA_FLAGS2, u32s(0, 0))
}

func TestStationFlagAttrs(t *testing.T) {
	auth := uint32(1 << unix.NL80211_STA_FLAG_AUTHORIZED)
	m := attrs(t, setAuthorizedAttrs(7, staMAC, true))
	wantSet(t, m, unix.NL80211_ATTR_IFINDEX, unix.NL80211_ATTR_MAC, unix.NL80211_ATTR_STA_FLAGS2)
	wantBytes(t, m, unix.NL80211_ATTR_STA_FLAGS2, u32s(auth, auth))
	m = attrs(t, setAuthorizedAttrs(7, staMAC, false))
	wantBytes(t, m, unix.NL80211_ATTR_STA_FLAGS2, u32s(auth, 0))

	m = attrs(t, delStationAttrs(7, staMAC, 4))
	wantSet(t, m, unix.NL80211_ATTR_IFINDEX, unix.NL80211_ATTR_MAC, unix.NL80211_ATTR_MGMT_SUBTYPE, unix.NL80211_ATTR_REASON_CODE)
	wantU8(t, m, unix.NL80211_ATTR_MGMT_SUBTYPE, 12) // IEEE80211_STYPE_DEAUTH >> 4
	wantU16(t, m, unix.NL80211_ATTR_REASON_CODE, 4)
	m = attrs(t, delStationAttrs(7, staMAC, 0))
	wantSet(t, m, unix.NL80211_ATTR_IFINDEX, unix.NL80211_ATTR_MAC)
}

func TestKeyAttrs(t *testing.T) {
	tk := bytes.Repeat([]byte{0xaa}, 16)
	m := attrs(t, pairwiseKeyAttrs(7, staMAC, tk))
	wantSet(t, m, unix.NL80211_ATTR_IFINDEX, unix.NL80211_ATTR_MAC, unix.NL80211_ATTR_KEY_DATA,
		unix.NL80211_ATTR_KEY_CIPHER, unix.NL80211_ATTR_KEY_IDX, unix.NL80211_ATTR_KEY_TYPE)
	wantBytes(t, m, unix.NL80211_ATTR_KEY_DATA, tk)
	wantU32(t, m, unix.NL80211_ATTR_KEY_CIPHER, 0x000fac04)
	wantU8(t, m, unix.NL80211_ATTR_KEY_IDX, 0)
	wantU32(t, m, unix.NL80211_ATTR_KEY_TYPE, unix.NL80211_KEYTYPE_PAIRWISE)

	gtk := bytes.Repeat([]byte{0xbb}, 16)
	rsc := []byte{1, 0, 0, 0, 0, 0}
	m = attrs(t, groupKeyAttrs(7, 1, gtk, rsc))
	wantSet(t, m, unix.NL80211_ATTR_IFINDEX, unix.NL80211_ATTR_KEY_DATA, unix.NL80211_ATTR_KEY_CIPHER,
		unix.NL80211_ATTR_KEY_IDX, unix.NL80211_ATTR_KEY_SEQ, unix.NL80211_ATTR_KEY_TYPE)
	wantU8(t, m, unix.NL80211_ATTR_KEY_IDX, 1)
	wantBytes(t, m, unix.NL80211_ATTR_KEY_SEQ, rsc)
	wantU32(t, m, unix.NL80211_ATTR_KEY_TYPE, unix.NL80211_KEYTYPE_GROUP)
	m = attrs(t, groupKeyAttrs(7, 2, gtk, nil))
	if _, ok := m[unix.NL80211_ATTR_KEY_SEQ]; ok {
		t.Error("KEY_SEQ sent without an RSC")
	}

	m = attrs(t, defaultGroupKeyAttrs(7, 2))
	wantSet(t, m, unix.NL80211_ATTR_IFINDEX, unix.NL80211_ATTR_KEY_IDX, unix.NL80211_ATTR_KEY_DEFAULT, unix.NL80211_ATTR_KEY_DEFAULT_TYPES)
	wantU8(t, m, unix.NL80211_ATTR_KEY_IDX, 2)
	wantFlag(t, m, unix.NL80211_ATTR_KEY_DEFAULT)
	types := attrs(t, m[unix.NL80211_ATTR_KEY_DEFAULT_TYPES])
	wantSet(t, types, unix.NL80211_KEY_DEFAULT_TYPE_MULTICAST)
	wantFlag(t, types, unix.NL80211_KEY_DEFAULT_TYPE_MULTICAST)
}

func TestFrameAttrs(t *testing.T) {
	frame := deauthFrame(staMAC, apMAC, 3)
	m := attrs(t, frameAttrs(7, frame, 2412, true))
	wantSet(t, m, unix.NL80211_ATTR_IFINDEX, unix.NL80211_ATTR_FRAME, unix.NL80211_ATTR_WIPHY_FREQ, unix.NL80211_ATTR_DONT_WAIT_FOR_ACK)
	wantBytes(t, m, unix.NL80211_ATTR_FRAME, frame)
	wantU32(t, m, unix.NL80211_ATTR_WIPHY_FREQ, 2412)
	wantFlag(t, m, unix.NL80211_ATTR_DONT_WAIT_FOR_ACK)
	m = attrs(t, frameAttrs(7, frame, 0, false))
	wantSet(t, m, unix.NL80211_ATTR_IFINDEX, unix.NL80211_ATTR_FRAME)

	eapol := []byte{0x02, 0x03, 0x00, 0x5f}
	m = attrs(t, controlPortAttrs(7, staMAC, eapol, true))
	wantSet(t, m, unix.NL80211_ATTR_IFINDEX, unix.NL80211_ATTR_MAC, unix.NL80211_ATTR_FRAME,
		unix.NL80211_ATTR_CONTROL_PORT_ETHERTYPE, unix.NL80211_ATTR_CONTROL_PORT_NO_ENCRYPT)
	wantBytes(t, m, unix.NL80211_ATTR_MAC, staMAC)
	wantBytes(t, m, unix.NL80211_ATTR_FRAME, eapol)
	wantU16(t, m, unix.NL80211_ATTR_CONTROL_PORT_ETHERTYPE, 0x888e)
	m = attrs(t, controlPortAttrs(7, staMAC, eapol, false))
	if _, ok := m[unix.NL80211_ATTR_CONTROL_PORT_NO_ENCRYPT]; ok {
		t.Error("NO_ENCRYPT on EAPOL to a keyed station")
	}
}

func TestDeauthFrame(t *testing.T) {
	f := deauthFrame(staMAC, apMAC, 0x0102)
	want := []byte{
		0xc0, 0x00, 0x00, 0x00, // frame control (deauth), duration
		0x02, 0, 0, 0, 1, 0, // DA
		0x02, 0, 0, 0, 0, 0, // SA
		0x02, 0, 0, 0, 0, 0, // BSSID
		0x00, 0x00, // sequence control
		0x02, 0x01, // reason, little endian
	}
	if !bytes.Equal(f, want) {
		t.Fatalf("deauth frame\n got %x\nwant %x", f, want)
	}
}

func TestSetupAttrs(t *testing.T) {
	m := attrs(t, newInterfaceAttrs(1, "wlan0", unix.NL80211_IFTYPE_AP, nil))
	wantSet(t, m, unix.NL80211_ATTR_WIPHY, unix.NL80211_ATTR_IFNAME, unix.NL80211_ATTR_IFTYPE, unix.NL80211_ATTR_SOCKET_OWNER)
	wantU32(t, m, unix.NL80211_ATTR_WIPHY, 1)
	wantBytes(t, m, unix.NL80211_ATTR_IFNAME, []byte("wlan0\x00"))
	wantU32(t, m, unix.NL80211_ATTR_IFTYPE, unix.NL80211_IFTYPE_AP)
	m = attrs(t, newInterfaceAttrs(1, "wlan0", unix.NL80211_IFTYPE_AP, apMAC))
	wantBytes(t, m, unix.NL80211_ATTR_MAC, apMAC)

	m = attrs(t, setInterfaceAPAttrs(9))
	wantSet(t, m, unix.NL80211_ATTR_IFINDEX, unix.NL80211_ATTR_IFTYPE)
	wantU32(t, m, unix.NL80211_ATTR_IFTYPE, unix.NL80211_IFTYPE_AP)

	for _, ft := range registeredFrames {
		m = attrs(t, registerFrameAttrs(9, ft))
		wantSet(t, m, unix.NL80211_ATTR_IFINDEX, unix.NL80211_ATTR_FRAME_TYPE, unix.NL80211_ATTR_FRAME_MATCH)
		wantU16(t, m, unix.NL80211_ATTR_FRAME_TYPE, ft)
		wantBytes(t, m, unix.NL80211_ATTR_FRAME_MATCH, []byte{})
	}
	if len(registeredFrames) != 7 {
		t.Errorf("%d frame registrations, want 7 (auth, assoc, reassoc, disassoc, deauth, probe, action)", len(registeredFrames))
	}

	m = attrs(t, regAttrs("DE"))
	wantSet(t, m, unix.NL80211_ATTR_REG_ALPHA2)
	wantBytes(t, m, unix.NL80211_ATTR_REG_ALPHA2, []byte("DE\x00"))

	m = attrs(t, setBeaconAttrs(9, []byte{1}, []byte{2}))
	wantSet(t, m, unix.NL80211_ATTR_IFINDEX, unix.NL80211_ATTR_BEACON_HEAD, unix.NL80211_ATTR_BEACON_TAIL)
}
