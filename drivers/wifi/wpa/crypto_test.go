package wpa

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// IEEE 802.11-2016 J.4.2 (also in 802.11i H.4); the same numbers appear
// in hostapd's and iwd's unit tests.
func TestPMKAnnexJ4(t *testing.T) {
	for _, tc := range []struct{ pass, ssid, want string }{
		{"password", "IEEE", "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"},
		{"ThisIsAPassword", "ThisIsASSID", "0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af"},
		{strings.Repeat("a", 32), strings.Repeat("Z", 32), "becb93866bb8c3832cb777c2f559807c8c59afcb6eae734885001300a981cc62"},
	} {
		got, err := PMK(tc.pass, []byte(tc.ssid))
		if err != nil {
			t.Fatalf("PMK(%q, %q): %v", tc.pass, tc.ssid, err)
		}
		if !bytes.Equal(got, unhex(t, tc.want)) {
			t.Errorf("PMK(%q, %q) = %x, want %s", tc.pass, tc.ssid, got, tc.want)
		}
	}
}

func TestPMKValidation(t *testing.T) {
	raw := "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"
	got, err := PMK(raw, nil)
	if err != nil || !bytes.Equal(got, unhex(t, raw)) {
		t.Errorf("PMK(64 hex digits) = %x, %v; want the digits as the key", got, err)
	}
	got, err = PMK(strings.ToUpper(raw), []byte("x"))
	if err != nil || !bytes.Equal(got, unhex(t, raw)) {
		t.Errorf("PMK(64 upper-case hex digits) = %x, %v", got, err)
	}
	for name, tc := range map[string]struct{ pass, ssid string }{
		"7 characters":      {"1234567", "net"},
		"64 non-hex":        {strings.Repeat("g", 64), "net"},
		"65 characters":     {strings.Repeat("a", 65), "net"},
		"control character": {"pass\tword", "net"},
		"DEL":               {"password\x7f", "net"},
		"non-ASCII":         {"pässword", "net"},
		"empty SSID":        {"password", ""},
		"33-byte SSID":      {"password", strings.Repeat("s", 33)},
	} {
		_, err := PMK(tc.pass, []byte(tc.ssid))
		if !errors.Is(err, ErrPassphrase) {
			t.Errorf("%s: err = %v, want ErrPassphrase", name, err)
			continue
		}
		if strings.Contains(err.Error(), tc.pass) {
			t.Errorf("%s: error %q repeats the passphrase", name, err)
		}
	}
	for _, ok := range []string{"12345678", strings.Repeat("~", 63), " spaces are fine "} {
		if _, err := PMK(ok, []byte("net")); err != nil {
			t.Errorf("PMK(%q): %v", ok, err)
		}
	}
}

// IEEE 802.11-2016 J.3.2 test cases 1 to 3 (PRF-512), and a shorter
// output from hostapd's tests, which must be a prefix of the longer one.
func TestPRFAnnexJ3(t *testing.T) {
	for _, tc := range []struct {
		key         []byte
		label, data string
		bits        int
		want        string
	}{
		{bytes.Repeat([]byte{0x0b}, 20), "prefix", "Hi There", 512,
			"bcd4c650b30b9684951829e0d75f9d54b862175ed9f00606e17d8da35402ffee75df78c3d31e0f889f012120c0862beb67753e7439ae242edb8373698356cf5a"},
		{[]byte("Jefe"), "prefix", "what do ya want for nothing?", 512,
			"51f4de5b33f249adf81aeb713a3c20f4fe631446fabdfa58244759ae58ef9009a99abf4eac2ca5fa87e692c440eb40023e7babb206d61de7b92f41529092b8fc"},
		{bytes.Repeat([]byte{0xaa}, 20), "prefix", strings.Repeat("\xdd", 50), 512,
			"e1ac546ec4cb636f9976487be5c86be17a0252ca5d8d8df12cfb0473525249ce9dd8d177ead710bc9b590547239107aef7b4abd43d87f0a68f1cbd9e2b6f7607"},
		{[]byte("Jefe"), "prefix-2", "what do ya want for nothing?", 256,
			"47c4908e30c947521ad20be9053450ecbea23d3aa604b77326d8b3825ff7475c"},
		{bytes.Repeat([]byte{0x0b}, 20), "prefix", "Hi There", 192,
			"bcd4c650b30b9684951829e0d75f9d54b862175ed9f00606"},
	} {
		got := PRF(tc.key, tc.label, []byte(tc.data), tc.bits)
		if !bytes.Equal(got, unhex(t, tc.want)) {
			t.Errorf("PRF-%d(%q, %q) = %x, want %s", tc.bits, tc.key, tc.label, got, tc.want)
		}
	}
}

// RFC 3394 section 4.1 to 4.6.
func TestKeyWrapRFC3394(t *testing.T) {
	const (
		kek128 = "000102030405060708090A0B0C0D0E0F"
		kek192 = "000102030405060708090A0B0C0D0E0F1011121314151617"
		kek256 = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
		data16 = "00112233445566778899AABBCCDDEEFF"
		data24 = "00112233445566778899AABBCCDDEEFF0001020304050607"
		data32 = "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F"
	)
	for _, tc := range []struct{ name, kek, data, want string }{
		{"4.1", kek128, data16, "1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5"},
		{"4.2", kek192, data16, "96778B25AE6CA435 F92B5B97C050AED2 468AB8A17AD84E5D"},
		{"4.3", kek256, data16, "64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7"},
		{"4.4", kek192, data24, "031D33264E15D332 68F24EC260743EDC E1C6C7DDEE725A93 6BA814915C6762D2"},
		{"4.5", kek256, data24, "A8F9BC1612C68B3F F6E6F4FBE30E71E4 769C8B80A32CB895 8CD5D17D6B254DA1"},
		{"4.6", kek256, data32, "28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21"},
	} {
		kek, data, want := unhex(t, tc.kek), unhex(t, tc.data), unhex(t, tc.want)
		got, err := KeyWrap(kek, data)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: KeyWrap = %X, %v; want %X", tc.name, got, err, want)
		}
		back, err := KeyUnwrap(kek, want)
		if err != nil || !bytes.Equal(back, data) {
			t.Errorf("%s: KeyUnwrap = %X, %v; want %X", tc.name, back, err, data)
		}
		for i := range want {
			bad := bytes.Clone(want)
			bad[i] ^= 0x01
			if _, err := KeyUnwrap(kek, bad); !errors.Is(err, ErrUnwrap) {
				t.Fatalf("%s: KeyUnwrap with byte %d altered: err = %v, want ErrUnwrap", tc.name, i, err)
			}
		}
	}
}

func TestKeyWrapLengths(t *testing.T) {
	kek := make([]byte, 16)
	for _, n := range []int{0, 8, 15, 17, 23} {
		if _, err := KeyWrap(kek, make([]byte, n)); err == nil {
			t.Errorf("KeyWrap of %d bytes: no error", n)
		}
	}
	for _, n := range []int{0, 8, 16, 23, 25} {
		if _, err := KeyUnwrap(kek, make([]byte, n)); err == nil {
			t.Errorf("KeyUnwrap of %d bytes: no error", n)
		}
	}
	if _, err := KeyWrap(make([]byte, 7), make([]byte, 16)); err == nil {
		t.Error("KeyWrap with a 7-byte KEK: no error")
	}
}

// A WPA2-PSK CCMP 4-way handshake between an AP and iwd, as kept in iwd's
// unit tests (unit/test-eapol.c, eapol_sm_test_ptk): the PSK, the
// addresses and the four frames. It checks PTK derivation and MIC against
// another implementation. The expected PTK was computed independently
// with Python's hashlib and hmac; the three MICs verify under its KCK.
var captured = struct {
	psk, aa, spa, apRSNE        string
	msg1, msg2, msg3, msg4, ptk string
}{
	psk:    "bf9aa3155300125e7a5ebb2a549f8cd4edab8ee12e94bfc24b3357ad049665d9",
	aa:     "24a2e1ec1704",
	spa:    "a0a8cd1c7ec9",
	apRSNE: "30140100000fac040100000fac040100000fac020000",
	msg1: "0203005f 02 008a 0010 0000000000000000" +
		"c2bb57ab588f92ebbd44e811094f601c087986030c3ac749cc61d63e33832e50" +
		strings.Repeat("00", 50),
	msg2: "01030075 02 010a 0000 0000000000000000" +
		"3289e91565094f329a9cd54a4a090d2cf4344683bf50efee3608b64856800e84" +
		strings.Repeat("00", 32) + "01c31b82ff62a379b08dd1fc82c2f768" +
		"0016 30140100000fac040100000fac040100000fac020000",
	msg3: "02030097 02 13ca 0010 0000000000000001" +
		"c2bb57ab588f92ebbd44e811094f601c087986030c3ac749cc61d63e33832e50" +
		strings.Repeat("00", 32) + "f535d91809731a1d290894705e919c8e" +
		"0038 1918df1ef0e7696652e257938034e17038b98b4c45a923b7b6fa8c33e37b" +
		"dcd47feab11c226a2c5e38d5ad799405d610a69551d60be60a5b",
	msg4: "0103005f 02 030a 0000 0000000000000001" +
		strings.Repeat("00", 64) + "9e57a4c09bafb3375e46d386cf872753 0000",
	ptk: "284db5b1cfbce425f4f50047648387bc 247a9094e543de1b1e3dd4a05cd0e776 3c7d088b94100f21066d7b18a17ee0ad",
}

func TestCapturedHandshake(t *testing.T) {
	m1, _ := ParseEAPOL(unhex(t, captured.msg1))
	m2, err := ParseEAPOL(unhex(t, captured.msg2))
	if err != nil || m1 == nil {
		t.Fatalf("parse captured messages 1 and 2: %v", err)
	}
	ptk, err := DerivePTK(unhex(t, captured.psk), unhex(t, captured.aa), unhex(t, captured.spa), m1.Nonce[:], m2.Nonce[:])
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, captured.ptk)
	if !bytes.Equal(ptk.KCK[:], want[:16]) || !bytes.Equal(ptk.KEK[:], want[16:32]) || !bytes.Equal(ptk.TK[:], want[32:]) {
		t.Fatalf("PTK = %x %x %x, want %x", ptk.KCK, ptk.KEK, ptk.TK, want)
	}
	// The PTK is symmetric in the address and nonce order.
	ptk2, _ := DerivePTK(unhex(t, captured.psk), unhex(t, captured.spa), unhex(t, captured.aa), m2.Nonce[:], m1.Nonce[:])
	if ptk2 != ptk {
		t.Error("DerivePTK depends on the argument order")
	}
	for name, f := range map[string]string{"2": captured.msg2, "3": captured.msg3, "4": captured.msg4} {
		b := unhex(t, f)
		if !VerifyMIC(ptk.KCK[:], b) {
			t.Errorf("MIC of captured message %s does not verify", name)
		}
		b[len(b)-1] ^= 1
		if VerifyMIC(ptk.KCK[:], b) {
			t.Errorf("MIC of altered message %s verifies", name)
		}
	}
	m3, err := ParseEAPOL(unhex(t, captured.msg3))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := KeyUnwrap(ptk.KEK[:], m3.KeyData)
	if err != nil {
		t.Fatalf("unwrap message 3 key data: %v", err)
	}
	kd, err := ParseKeyData(plain)
	if err != nil {
		t.Fatalf("parse message 3 key data %x: %v", plain, err)
	}
	if !bytes.Equal(kd.RSNE, unhex(t, captured.apRSNE)) || len(kd.GTK) != 16 || kd.GTKIndex == 0 {
		t.Errorf("message 3 key data = %+v", kd)
	}
}

// Our authenticator, fed iwd's messages 2 and 4, authorizes the station.
func TestAuthenticatorWithCapturedSupplicant(t *testing.T) {
	m1, _ := ParseEAPOL(unhex(t, captured.msg1))
	rsne := unhex(t, captured.apRSNE)
	h, err := NewHandshake(Config{
		PMK: unhex(t, captured.psk), AA: unhex(t, captured.aa), RSNE: rsne,
		GTK: bytes.Repeat([]byte{7}, 16), GTKIndex: 1, Rand: bytes.NewReader(m1.Nonce[:]),
	}, net.HardwareAddr(unhex(t, captured.spa)), rsne)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Start(); err != nil {
		t.Fatal(err)
	}
	h.replay = 0 // that AP counted from 0, we count from 1
	step, err := h.Handle(unhex(t, captured.msg2))
	if err != nil || step.Send == nil {
		t.Fatalf("Handle(captured message 2) = %+v, %v", step, err)
	}
	step, err = h.Handle(unhex(t, captured.msg4))
	if err != nil || !step.Authorize || !step.InstallPairwise {
		t.Fatalf("Handle(captured message 4) = %+v, %v", step, err)
	}
	if !bytes.Equal(h.TK(), unhex(t, captured.ptk)[32:]) {
		t.Errorf("TK = %x", h.TK())
	}
}

// readSeed reads a frame of testdata/fuzz/FuzzParseEAPOL. Those frames were
// built by a few lines of Python (hashlib, hmac) as a supplicant with the
// passphrase "correct horse battery" on SSID "openmifi" would answer our
// authenticator with the test addresses and nonces.
func readSeed(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzParseEAPOL", name))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	lit, ok := strings.CutPrefix(lines[len(lines)-1], "[]byte(")
	if !ok {
		t.Fatalf("%s: not a []byte corpus entry", name)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return []byte(s)
}

func TestHandshakeWithIndependentSupplicant(t *testing.T) {
	pmk, err := PMK("correct horse battery", []byte("openmifi"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandshake(Config{PMK: pmk, AA: testAA, RSNE: testRSNE, GTK: testGTK, GTKIndex: 1, Rand: &seqReader{}}, testSPA, testRSNE)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Start(); err != nil {
		t.Fatal(err)
	}
	step, err := h.Handle(readSeed(t, "msg2-ethernet-padding"))
	if err != nil || step.Send == nil {
		t.Fatalf("message 2: %+v, %v", step, err)
	}
	want := unhex(t, "ee40eaddabf8ff00387b89c7edba153a ff8f7f481ed954a2af99cb4a39c83d1d 4f4bead20f3e5844718111c479012988")
	if !bytes.Equal(h.ptk.KCK[:], want[:16]) || !bytes.Equal(h.ptk.KEK[:], want[16:32]) || !bytes.Equal(h.TK(), want[32:]) {
		t.Fatalf("PTK differs from Python's")
	}
	if step, err = h.Handle(readSeed(t, "msg4-wpa_supplicant-shape")); err != nil || !step.Authorize {
		t.Fatalf("message 4: %+v, %v", step, err)
	}
	if _, err := h.RekeyGroup(testGTK, 2); err != nil {
		t.Fatal(err)
	}
	if step, err = h.Handle(readSeed(t, "group-msg2")); err != nil || !step.GroupDone {
		t.Fatalf("group message 2: %+v, %v", step, err)
	}
}

func TestCryptoArgumentErrors(t *testing.T) {
	n := make([]byte, 32)
	for name, args := range map[string][5][]byte{
		"short PMK":    {n[:31], testAA, testSPA, n, n},
		"short AA":     {n, testAA[:5], testSPA, n, n},
		"long SPA":     {n, testAA, n[:7], n, n},
		"short ANonce": {n, testAA, testSPA, n[:31], n},
		"short SNonce": {n, testAA, testSPA, n, n[:1]},
	} {
		if _, err := DerivePTK(args[0], args[1], args[2], args[3], args[4]); err == nil {
			t.Errorf("DerivePTK with %s: no error", name)
		}
	}
	frame := unhex(t, captured.msg2)
	if _, err := MIC(n[:15], frame); err == nil {
		t.Error("MIC with a 15-byte KCK: no error")
	}
	for _, b := range [][]byte{frame[:98], frame[:len(frame)-1], append([]byte{1, 3, 0, 1}, frame[4:]...)} {
		if _, err := MIC(n[:16], b); err == nil {
			t.Errorf("MIC of a %d-byte frame claiming %x: no error", len(b), b[2:4])
		}
		if VerifyMIC(n[:16], b) {
			t.Error("VerifyMIC of a bad frame")
		}
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestStartWithoutRandomness(t *testing.T) {
	h, err := NewHandshake(Config{PMK: testPMK, AA: testAA, RSNE: testRSNE, GTK: testGTK, GTKIndex: 1, Rand: failingReader{}}, testSPA, testRSNE)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Start(); err == nil || h.State() != StateIdle {
		t.Fatalf("Start without randomness: %v, state %s", err, h.State())
	}
	// Production default: crypto/rand.
	h, err = NewHandshake(Config{PMK: testPMK, AA: testAA, RSNE: testRSNE, GTK: testGTK, GTKIndex: 1}, testSPA, testRSNE)
	if err != nil {
		t.Fatal(err)
	}
	m1, err := h.Start()
	if err != nil || bytes.Equal(m1[17:49], make([]byte, 32)) {
		t.Fatalf("Start with crypto/rand: %x, %v", m1, err)
	}
}
