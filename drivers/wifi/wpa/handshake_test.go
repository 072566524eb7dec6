package wpa

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
)

var (
	testAA   = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	testSPA  = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x01, 0x00}
	testRSNE = []byte{0x30, 0x14, 1, 0, 0x00, 0x0f, 0xac, 4, 1, 0, 0x00, 0x0f, 0xac, 4, 1, 0, 0x00, 0x0f, 0xac, 2, 0x0c, 0}
	testGTK  = bytes.Repeat([]byte{0x47}, 16)
	testPMK  = bytes.Repeat([]byte{0x11}, 32) // any 32 bytes; PBKDF2 is tested on its own
)

// seqReader yields 0, 1, 2, … so that every nonce of a test is known.
type seqReader struct{ n byte }

func (r *seqReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.n
		r.n++
	}
	return len(p), nil
}

func newTestHandshake(t testing.TB) *Handshake {
	t.Helper()
	h, err := NewHandshake(Config{
		PMK: testPMK, AA: testAA, RSNE: testRSNE, GTK: testGTK, GTKIndex: 1,
		GTKRSC: 0x0102030405, Rand: &seqReader{},
	}, testSPA, testRSNE)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// supplicant is the station's side, written from the standard rather than
// from the authenticator's code: it checks every message the AP sends.
type supplicant struct {
	t       testing.TB
	pmk     []byte
	rsne    []byte // sent in message 2
	apRSNE  []byte // expected in message 3
	snonce  [32]byte
	anonce  [32]byte
	ptk     PTK
	gtk     []byte
	gtkIdx  int
	gtkRSC  [8]byte
	lastRC  uint64
	version byte // EAPOL protocol version it sends
}

func newSupplicant(t testing.TB, pmk []byte) *supplicant {
	s := &supplicant{t: t, pmk: pmk, rsne: testRSNE, apRSNE: testRSNE, version: 1}
	for i := range s.snonce {
		s.snonce[i] = 0xc0 + byte(i)
	}
	return s
}

// testMIC is HMAC-SHA1-128 over b with the MIC field zeroed.
func testMIC(kck, b []byte) []byte {
	c := bytes.Clone(b)
	clear(c[81:97])
	m := hmac.New(sha1.New, kck)
	m.Write(c)
	return m.Sum(nil)[:16]
}

func (s *supplicant) frame(info KeyInfo, rc uint64, nonce []byte, data []byte) []byte {
	b := make([]byte, 99+len(data))
	b[0], b[1] = s.version, 3
	binary.BigEndian.PutUint16(b[2:], uint16(95+len(data)))
	b[4] = 2
	binary.BigEndian.PutUint16(b[5:], uint16(info))
	binary.BigEndian.PutUint64(b[9:], rc)
	copy(b[17:49], nonce)
	binary.BigEndian.PutUint16(b[97:], uint16(len(data)))
	copy(b[99:], data)
	copy(b[81:], testMIC(s.ptk.KCK[:], b))
	return b
}

func (s *supplicant) msg2(m1 []byte) []byte {
	t := s.t
	t.Helper()
	if len(m1) != 99 || m1[1] != 3 || m1[4] != 2 {
		t.Fatalf("message 1 is not an empty EAPOL-Key frame: %x", m1)
	}
	if info := binary.BigEndian.Uint16(m1[5:]); info != 0x008a {
		t.Fatalf("message 1 key information %#04x, want 0x008a", info)
	}
	if binary.BigEndian.Uint16(m1[7:]) != 16 || !bytes.Equal(m1[81:97], make([]byte, 16)) {
		t.Fatalf("message 1 key length or MIC wrong: %x", m1)
	}
	rc := binary.BigEndian.Uint64(m1[9:])
	if rc <= s.lastRC {
		t.Fatalf("message 1 replay counter %d not above %d", rc, s.lastRC)
	}
	s.lastRC = rc
	copy(s.anonce[:], m1[17:49])
	ptk, err := DerivePTK(s.pmk, testSPA, testAA, s.snonce[:], s.anonce[:])
	if err != nil {
		t.Fatal(err)
	}
	s.ptk = ptk
	return s.frame(0x010a, rc, s.snonce[:], s.rsne)
}

// readProtected checks the MIC and the fields common to message 3 and group
// message 1, and returns the unwrapped key data.
func (s *supplicant) readProtected(m []byte, wantInfo uint16, what string) ([]byte, uint64) {
	t := s.t
	t.Helper()
	if len(m) < 99 || int(binary.BigEndian.Uint16(m[2:]))+4 != len(m) {
		t.Fatalf("%s: bad length: %x", what, m)
	}
	if info := binary.BigEndian.Uint16(m[5:]); info != wantInfo {
		t.Fatalf("%s: key information %#04x, want %#04x", what, info, wantInfo)
	}
	if !hmac.Equal(m[81:97], testMIC(s.ptk.KCK[:], m)) {
		t.Fatalf("%s: MIC does not verify", what)
	}
	rc := binary.BigEndian.Uint64(m[9:])
	if rc <= s.lastRC {
		t.Fatalf("%s: replay counter %d not above %d", what, rc, s.lastRC)
	}
	s.lastRC = rc
	copy(s.gtkRSC[:], m[65:73])
	plain, err := KeyUnwrap(s.ptk.KEK[:], m[99:])
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return plain, rc
}

func (s *supplicant) msg4(m3 []byte) []byte {
	t := s.t
	t.Helper()
	plain, rc := s.readProtected(m3, 0x13ca, "message 3")
	if !bytes.Equal(m3[17:49], s.anonce[:]) || binary.BigEndian.Uint16(m3[7:]) != 16 {
		t.Fatalf("message 3: ANonce or key length differ from message 1")
	}
	// Our RSN element, then the GTK KDE, then padding.
	n := len(s.apRSNE)
	if !bytes.Equal(plain[:n], s.apRSNE) {
		t.Fatalf("message 3: key data %x does not start with the AP's RSNE", plain)
	}
	s.readGTK(plain[n:])
	return s.frame(0x030a, rc, nil, nil)
}

func (s *supplicant) readGTK(b []byte) {
	t := s.t
	t.Helper()
	if len(b) < 24 || !bytes.Equal(b[:6], []byte{0xdd, 22, 0x00, 0x0f, 0xac, 1}) {
		t.Fatalf("no GTK KDE in %x", b)
	}
	s.gtkIdx = int(b[6] & 3)
	s.gtk = bytes.Clone(b[8:24])
	if rest := b[24:]; len(rest) > 0 && (rest[0] != 0xdd || !bytes.Equal(rest[1:], make([]byte, len(rest)-1))) {
		t.Fatalf("bad padding %x", rest)
	}
}

func (s *supplicant) group2(g1 []byte) []byte {
	s.t.Helper()
	plain, rc := s.readProtected(g1, 0x1382, "group message 1")
	s.readGTK(plain)
	return s.frame(0x0302, rc, nil, nil)
}

// complete runs the 4-way handshake to the end.
func complete(t *testing.T, h *Handshake, s *supplicant) {
	t.Helper()
	m1, err := h.Start()
	if err != nil {
		t.Fatal(err)
	}
	step, err := h.Handle(s.msg2(m1))
	if err != nil {
		t.Fatalf("message 2: %v", err)
	}
	step, err = h.Handle(s.msg4(step.Send))
	if err != nil || !step.Authorize || !step.InstallPairwise || step.Send != nil {
		t.Fatalf("message 4: %+v, %v", step, err)
	}
}

func TestFullHandshake(t *testing.T) {
	h, s := newTestHandshake(t), newSupplicant(t, testPMK)
	if h.State() != StateIdle || h.TK() != nil {
		t.Fatalf("new handshake: state %s, TK %x", h.State(), h.TK())
	}
	m1, err := h.Start()
	if err != nil {
		t.Fatal(err)
	}
	if h.State() != StateWaitMsg2 {
		t.Fatalf("after Start: %s", h.State())
	}
	step, err := h.Handle(s.msg2(m1))
	if err != nil || step.Send == nil || step.Authorize || step.InstallPairwise || step.Deauth {
		t.Fatalf("message 2: %+v, %v", step, err)
	}
	if h.State() != StateWaitMsg4 {
		t.Fatalf("after message 2: %s", h.State())
	}
	step, err = h.Handle(s.msg4(step.Send))
	if err != nil || !step.Authorize || !step.InstallPairwise || step.Send != nil || step.Deauth {
		t.Fatalf("message 4: %+v, %v", step, err)
	}
	if h.State() != StateDone {
		t.Fatalf("after message 4: %s", h.State())
	}
	if !bytes.Equal(h.TK(), s.ptk.TK[:]) {
		t.Errorf("TK %x, the station has %x", h.TK(), s.ptk.TK)
	}
	if !bytes.Equal(s.gtk, testGTK) || s.gtkIdx != 1 {
		t.Errorf("station got GTK %x index %d", s.gtk, s.gtkIdx)
	}
	if s.gtkRSC != [8]byte{5, 4, 3, 2, 1, 0, 0, 0} {
		t.Errorf("message 3 RSC %x", s.gtkRSC)
	}
	// Once done, no further 4-way message is taken.
	if _, err := h.Handle(s.msg4(forgedMsg3(s))); err == nil {
		t.Error("message 4 accepted after completion")
	}
}

// forgedMsg3 builds a message 3 as a forger knowing the PTK would, with the
// next replay counter: even its answer is not taken after completion.
func forgedMsg3(s *supplicant) []byte {
	k := &KeyFrame{ProtocolVersion: 2, Info: 0x13ca, KeyLength: 16, ReplayCounter: s.lastRC + 1, Nonce: s.anonce}
	data, _ := KeyWrap(s.ptk.KEK[:], padKeyData(append(bytes.Clone(testRSNE), gtkKDE(testGTK, 1)...)))
	k.KeyData = data
	b := k.Marshal()
	copy(b[81:], testMIC(s.ptk.KCK[:], b))
	return b
}

func TestWrongPassphrase(t *testing.T) {
	const secret = "not-the-passphrase"
	wrong, err := PMK(secret, []byte("openmifi"))
	if err != nil {
		t.Fatal(err)
	}
	h, s := newTestHandshake(t), newSupplicant(t, wrong)
	m, err := h.Start()
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		step, err := h.Handle(s.msg2(m))
		if !errors.Is(err, ErrMIC) || !isZero(step) {
			t.Fatalf("attempt %d: Handle = %+v, %v; want ErrMIC and no step", attempt, step, err)
		}
		for _, leak := range []string{secret, fmt.Sprintf("%x", wrong), fmt.Sprintf("%x", testPMK), fmt.Sprintf("%x", s.ptk.KCK)} {
			if strings.Contains(err.Error(), leak) {
				t.Fatalf("error %q leaks a secret", err)
			}
		}
		var ok bool
		m, ok = h.Retransmit()
		if !ok {
			if attempt != MaxAttempts {
				t.Fatalf("gave up after %d attempts, want %d", attempt, MaxAttempts)
			}
			break
		}
	}
	if h.State() != StateFailed || h.MICFailures() != MaxAttempts || h.TK() != nil {
		t.Fatalf("state %s, %d MIC failures, TK %x", h.State(), h.MICFailures(), h.TK())
	}
	if _, err := h.Handle(s.msg2(h.lastMsg1(s))); !errors.Is(err, ErrFailed) {
		t.Errorf("Handle after failure: %v, want ErrFailed", err)
	}
	if _, err := h.RekeyGroup(testGTK, 2); !errors.Is(err, ErrFailed) {
		t.Errorf("RekeyGroup after failure: %v, want ErrFailed", err)
	}
}

// lastMsg1 fakes a message 1 with the next replay counter, for feeding the
// supplicant after the authenticator stopped sending.
func (h *Handshake) lastMsg1(s *supplicant) []byte {
	k := &KeyFrame{ProtocolVersion: 2, Info: 0x008a, KeyLength: 16, ReplayCounter: s.lastRC + 1, Nonce: h.anonce}
	return k.Marshal()
}

func TestReplayedMessage2(t *testing.T) {
	h, s := newTestHandshake(t), newSupplicant(t, testPMK)
	m1, _ := h.Start()
	m2 := s.msg2(m1)
	step, err := h.Handle(m2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(m2); err == nil {
		t.Fatal("replayed message 2 accepted in wait-msg4")
	}
	if _, err := h.Handle(s.msg4(step.Send)); err != nil {
		t.Fatalf("message 4 after the replay: %v", err)
	}
	if _, err := h.Handle(m2); err == nil {
		t.Fatal("replayed message 2 accepted after completion")
	}
}

func TestStaleReplayCounter(t *testing.T) {
	h, s := newTestHandshake(t), newSupplicant(t, testPMK)
	m1, _ := h.Start()
	old := s.msg2(m1)
	m1b, ok := h.Retransmit()
	if !ok {
		t.Fatal("no retransmission")
	}
	if _, err := h.Handle(old); !errors.Is(err, ErrReplay) {
		t.Fatalf("answer to the first message 1: %v, want ErrReplay", err)
	}
	step, err := h.Handle(s.msg2(m1b))
	if err != nil {
		t.Fatal(err)
	}
	// A message 4 answering a message 3 we never sent.
	m4 := s.msg4(step.Send)
	binary.BigEndian.PutUint64(m4[9:], s.lastRC+1)
	copy(m4[81:], testMIC(s.ptk.KCK[:], m4))
	if st, err := h.Handle(m4); !errors.Is(err, ErrReplay) || st.Authorize {
		t.Fatalf("message 4 with a future replay counter: %+v, %v", st, err)
	}
}

func TestForgedMIC(t *testing.T) {
	h, s := newTestHandshake(t), newSupplicant(t, testPMK)
	m1, _ := h.Start()
	m2 := s.msg2(m1)
	for _, i := range []int{81, 96, 20, len(m2) - 1} {
		bad := bytes.Clone(m2)
		bad[i] ^= 0x80
		if _, err := h.Handle(bad); !errors.Is(err, ErrMIC) {
			t.Fatalf("message 2 with byte %d flipped: %v, want ErrMIC", i, err)
		}
	}
	step, err := h.Handle(m2)
	if err != nil {
		t.Fatal(err)
	}
	m4 := s.msg4(step.Send)
	for _, i := range []int{81, 90, 96} {
		bad := bytes.Clone(m4)
		bad[i] ^= 1
		if st, err := h.Handle(bad); !errors.Is(err, ErrMIC) || st.Authorize {
			t.Fatalf("message 4 with byte %d flipped: %+v, %v", i, st, err)
		}
	}
	// A message 4 signed with a key derived from another SNonce.
	forger := newSupplicant(t, testPMK)
	forger.snonce[0] ^= 1
	forger.msg2(h.lastMsg1(forger))
	if st, err := h.Handle(forger.frame(0x030a, s.lastRC, nil, nil)); !errors.Is(err, ErrMIC) || st.Authorize {
		t.Fatalf("message 4 under another PTK: %+v, %v", st, err)
	}
	if h.MICFailures() != 8 || h.State() != StateWaitMsg4 {
		t.Fatalf("%d MIC failures, state %s", h.MICFailures(), h.State())
	}
	if st, err := h.Handle(m4); err != nil || !st.Authorize {
		t.Fatalf("the real message 4: %+v, %v", st, err)
	}
}

func TestRSNEMismatch(t *testing.T) {
	h, s := newTestHandshake(t), newSupplicant(t, testPMK)
	// The station claims TKIP as pairwise cipher in message 2.
	s.rsne = bytes.Clone(testRSNE)
	s.rsne[13] = 2
	m1, _ := h.Start()
	step, err := h.Handle(s.msg2(m1))
	if !errors.Is(err, ErrRSNE) || !step.Deauth || step.Send != nil {
		t.Fatalf("Handle = %+v, %v; want ErrRSNE and Deauth", step, err)
	}
	if h.State() != StateFailed {
		t.Fatalf("state %s", h.State())
	}
	if _, ok := h.Retransmit(); ok {
		t.Error("Retransmit after failure")
	}
	// No RSN element at all is no better.
	h, s = newTestHandshake(t), newSupplicant(t, testPMK)
	s.rsne = nil
	m1, _ = h.Start()
	if step, err := h.Handle(s.msg2(m1)); !errors.Is(err, ErrRSNE) || !step.Deauth {
		t.Fatalf("message 2 without RSNE: %+v, %v", step, err)
	}
}

func TestTruncatedFrames(t *testing.T) {
	h, s := newTestHandshake(t), newSupplicant(t, testPMK)
	m1, _ := h.Start()
	m2 := s.msg2(m1)
	for n := 0; n < len(m2); n++ {
		if st, err := h.Handle(m2[:n]); err == nil || !isZero(st) {
			t.Fatalf("message 2 cut to %d bytes: %+v, %v", n, st, err)
		}
	}
	step, err := h.Handle(m2)
	if err != nil {
		t.Fatal(err)
	}
	m4 := s.msg4(step.Send)
	for n := 0; n < len(m4); n++ {
		if st, err := h.Handle(m4[:n]); err == nil || !isZero(st) {
			t.Fatalf("message 4 cut to %d bytes: %+v, %v", n, st, err)
		}
	}
	if st, err := h.Handle(m4); err != nil || !st.Authorize {
		t.Fatalf("whole message 4: %+v, %v", st, err)
	}
}

func TestOutOfOrder(t *testing.T) {
	h, s := newTestHandshake(t), newSupplicant(t, testPMK)
	if _, err := h.Handle(s.frame(0x010a, 0, s.snonce[:], testRSNE)); !errors.Is(err, ErrUnexpected) {
		t.Fatalf("frame before Start: %v", err)
	}
	m1, _ := h.Start()
	if _, err := h.Start(); !errors.Is(err, ErrUnexpected) {
		t.Fatalf("second Start: %v", err)
	}
	s.msg2(m1) // learn the PTK, as a station would
	msg4 := s.frame(0x030a, s.lastRC, nil, nil)
	if st, err := h.Handle(msg4); !errors.Is(err, ErrUnexpected) || st.Authorize {
		t.Fatalf("message 4 before message 2: %+v, %v", st, err)
	}
	group2 := s.frame(0x0302, s.lastRC, nil, nil)
	if st, err := h.Handle(group2); !errors.Is(err, ErrUnexpected) || st.GroupDone {
		t.Fatalf("group message 2 before message 2: %+v, %v", st, err)
	}
	// Message 2 shapes that are not message 2.
	for name, info := range map[string]KeyInfo{
		"no MIC bit":   0x000a,
		"Ack set":      0x018a,
		"Install set":  0x014a,
		"Secure set":   0x030a,
		"group":        0x0102,
		"version 1":    0x0109,
		"Request set":  0x090a,
		"Error set":    0x050a,
		"Encrypted":    0x110a,
		"version 3":    0x010b,
		"SMK message":  0x210a,
		"MIC w/o pair": 0x0102,
	} {
		if st, err := h.Handle(s.frame(info, s.lastRC, s.snonce[:], testRSNE)); !errors.Is(err, ErrUnexpected) || !isZero(st) {
			t.Errorf("message 2 with %s: %+v, %v", name, st, err)
		}
	}
	if h.State() != StateWaitMsg2 || h.MICFailures() != 0 {
		t.Fatalf("state %s, %d MIC failures", h.State(), h.MICFailures())
	}
	if _, err := h.Handle([]byte{1, 1, 0, 0}); !errors.Is(err, ErrMalformed) {
		t.Errorf("EAPOL-Start: %v", err)
	}
}

func TestRetransmission(t *testing.T) {
	h, s := newTestHandshake(t), newSupplicant(t, testPMK)
	if _, ok := h.Retransmit(); ok {
		t.Fatal("Retransmit before Start")
	}
	m1, _ := h.Start()
	anonce := m1[17:49]
	for i := 2; i <= MaxAttempts; i++ {
		m, ok := h.Retransmit()
		if !ok {
			t.Fatalf("attempt %d refused", i)
		}
		if rc := binary.BigEndian.Uint64(m[9:]); rc != uint64(i) {
			t.Errorf("attempt %d: replay counter %d", i, rc)
		}
		if !bytes.Equal(m[17:49], anonce) {
			t.Errorf("attempt %d: ANonce changed", i)
		}
		m1 = m
	}
	step, err := h.Handle(s.msg2(m1))
	if err != nil {
		t.Fatal(err)
	}
	// Message 3 is retransmitted too; the answer to an old one is stale.
	first := step.Send
	m3, ok := h.Retransmit()
	if !ok || binary.BigEndian.Uint64(m3[9:]) != MaxAttempts+2 || bytes.Equal(m3, first) {
		t.Fatalf("message 3 retransmission: ok %v, %x", ok, m3)
	}
	stale := s.msg4(first)
	if _, err := h.Handle(stale); !errors.Is(err, ErrReplay) {
		t.Fatalf("answer to the first message 3: %v", err)
	}
	for i := 3; i <= MaxAttempts; i++ {
		if m3, ok = h.Retransmit(); !ok {
			t.Fatalf("message 3 attempt %d refused", i)
		}
	}
	if st, err := h.Handle(s.msg4(m3)); err != nil || !st.Authorize {
		t.Fatalf("answer to the last message 3: %+v, %v", st, err)
	}
	if _, ok := h.Retransmit(); ok {
		t.Error("Retransmit with nothing outstanding")
	}
	if h.State() != StateDone {
		t.Errorf("state %s", h.State())
	}
}

func TestMessage3Exhaustion(t *testing.T) {
	h, s := newTestHandshake(t), newSupplicant(t, testPMK)
	m1, _ := h.Start()
	if _, err := h.Handle(s.msg2(m1)); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= MaxAttempts; i++ {
		if _, ok := h.Retransmit(); !ok {
			t.Fatalf("attempt %d refused", i)
		}
	}
	if _, ok := h.Retransmit(); ok || h.State() != StateFailed {
		t.Fatalf("after %d attempts: ok %v, state %s", MaxAttempts, ok, h.State())
	}
}

func TestGroupRekey(t *testing.T) {
	h, s := newTestHandshake(t), newSupplicant(t, testPMK)
	complete(t, h, s)
	newGTK := bytes.Repeat([]byte{0x99}, 16)
	g1, err := h.RekeyGroup(newGTK, 2)
	if err != nil || g1 == nil {
		t.Fatalf("RekeyGroup: %x, %v", g1, err)
	}
	if h.State() != StateWaitGroup2 {
		t.Fatalf("state %s", h.State())
	}
	// A lost group message 1 is sent again.
	g1, ok := h.Retransmit()
	if !ok {
		t.Fatal("no group retransmission")
	}
	g2 := s.group2(g1)
	if !bytes.Equal(s.gtk, newGTK) || s.gtkIdx != 2 || s.gtkRSC != [8]byte{} {
		t.Fatalf("station got GTK %x index %d RSC %x", s.gtk, s.gtkIdx, s.gtkRSC)
	}
	bad := bytes.Clone(g2)
	bad[90] ^= 1
	if st, err := h.Handle(bad); !errors.Is(err, ErrMIC) || st.GroupDone {
		t.Fatalf("forged group message 2: %+v, %v", st, err)
	}
	st, err := h.Handle(g2)
	if err != nil || !st.GroupDone || st.Authorize || st.Send != nil {
		t.Fatalf("group message 2: %+v, %v", st, err)
	}
	if _, err := h.Handle(g2); !errors.Is(err, ErrUnexpected) {
		t.Fatalf("replayed group message 2: %v", err)
	}
	// Rekeying again, twice before the station answers: only the answer
	// to the last one counts.
	g1a, _ := h.RekeyGroup(testGTK, 3)
	g1b, err := h.RekeyGroup(newGTK, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(s.group2(g1a)); !errors.Is(err, ErrReplay) {
		t.Fatalf("answer to a superseded group message 1: %v", err)
	}
	if st, err := h.Handle(s.group2(g1b)); err != nil || !st.GroupDone || s.gtkIdx != 1 {
		t.Fatalf("answer to the last group message 1: %+v, %v", st, err)
	}
	if _, err := h.RekeyGroup(newGTK[:5], 1); !errors.Is(err, ErrConfig) {
		t.Errorf("short GTK: %v", err)
	}
	if _, err := h.RekeyGroup(newGTK, 0); !errors.Is(err, ErrConfig) {
		t.Errorf("GTK index 0: %v", err)
	}
}

func TestGroupRetryExhaustion(t *testing.T) {
	h, s := newTestHandshake(t), newSupplicant(t, testPMK)
	complete(t, h, s)
	if _, err := h.RekeyGroup(testGTK, 2); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= MaxAttempts; i++ {
		if _, ok := h.Retransmit(); !ok {
			t.Fatalf("attempt %d refused", i)
		}
	}
	if _, ok := h.Retransmit(); ok || h.State() != StateFailed {
		t.Fatalf("state %s", h.State())
	}
}

func TestRekeyDuringHandshake(t *testing.T) {
	newGTK := bytes.Repeat([]byte{0x33}, 16)

	// Before message 3: message 3 carries the new key.
	h, s := newTestHandshake(t), newSupplicant(t, testPMK)
	m1, _ := h.Start()
	if g, err := h.RekeyGroup(newGTK, 2); g != nil || err != nil {
		t.Fatalf("RekeyGroup in wait-msg2: %x, %v", g, err)
	}
	step, _ := h.Handle(s.msg2(m1))
	step, err := h.Handle(s.msg4(step.Send))
	if err != nil || !step.Authorize || step.Send != nil || !bytes.Equal(s.gtk, newGTK) {
		t.Fatalf("message 4: %+v, %v, station GTK %x", step, err, s.gtk)
	}

	// After message 3: the group handshake follows message 4.
	h, s = newTestHandshake(t), newSupplicant(t, testPMK)
	m1, _ = h.Start()
	step, _ = h.Handle(s.msg2(m1))
	if g, err := h.RekeyGroup(newGTK, 2); g != nil || err != nil {
		t.Fatalf("RekeyGroup in wait-msg4: %x, %v", g, err)
	}
	step, err = h.Handle(s.msg4(step.Send))
	if err != nil || !step.Authorize || !step.InstallPairwise || step.Send == nil {
		t.Fatalf("message 4: %+v, %v", step, err)
	}
	if !bytes.Equal(s.gtk, testGTK) {
		t.Fatalf("message 3 should have had the old GTK")
	}
	if st, err := h.Handle(s.group2(step.Send)); err != nil || !st.GroupDone || !bytes.Equal(s.gtk, newGTK) {
		t.Fatalf("group message 2: %+v, %v", st, err)
	}
}

func TestNewHandshakeRejects(t *testing.T) {
	good := Config{PMK: testPMK, AA: testAA, RSNE: testRSNE, GTK: testGTK, GTKIndex: 1}
	mod := func(f func(c *Config)) Config { c := good; f(&c); return c }
	for name, c := range map[string]Config{
		"short PMK":    mod(func(c *Config) { c.PMK = testPMK[:16] }),
		"short AA":     mod(func(c *Config) { c.AA = testAA[:5] }),
		"no RSNE":      mod(func(c *Config) { c.RSNE = nil }),
		"RSNE length":  mod(func(c *Config) { c.RSNE = testRSNE[:10] }),
		"WPA1 element": mod(func(c *Config) { c.RSNE = append([]byte{0xdd}, testRSNE[1:]...) }),
		"GTK size":     mod(func(c *Config) { c.GTK = testGTK[:8] }),
		"GTK index 0":  mod(func(c *Config) { c.GTKIndex = 0 }),
		"GTK index 4":  mod(func(c *Config) { c.GTKIndex = 4 }),
	} {
		if _, err := NewHandshake(c, testSPA, testRSNE); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
	if _, err := NewHandshake(good, testSPA[:3], testRSNE); !errors.Is(err, ErrConfig) {
		t.Errorf("short SPA: %v", err)
	}
	if _, err := NewHandshake(good, testSPA, testRSNE[:21]); !errors.Is(err, ErrConfig) {
		t.Errorf("bad station RSNE: %v", err)
	}
	// The caller's slices may change afterwards.
	pmk := bytes.Clone(testPMK)
	c := good
	c.PMK, c.Rand = pmk, &seqReader{}
	h, err := NewHandshake(c, testSPA, testRSNE)
	if err != nil {
		t.Fatal(err)
	}
	clear(pmk)
	complete(t, h, newSupplicant(t, testPMK))
	if fmt.Sprint(StateWaitGroup2, State(42)) != "wait-group-msg2 State(42)" {
		t.Error("State.String")
	}
}

func isZero(s Step) bool {
	return s.Send == nil && !s.InstallPairwise && !s.Authorize && !s.GroupDone && !s.Deauth
}
