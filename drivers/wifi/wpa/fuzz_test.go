package wpa

import (
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzParseEAPOL: any bytes either parse into a frame that marshals back to
// exactly the EAPOL PDU it came from, or give ErrMalformed; never a panic.
// Seeds: the captured handshake and testdata/fuzz/FuzzParseEAPOL.
func FuzzParseEAPOL(f *testing.F) {
	for _, s := range []string{captured.msg1, captured.msg2, captured.msg3, captured.msg4} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseEAPOL(b)
		if err != nil {
			if k != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseEAPOL = %+v, %v", k, err)
			}
			_, _ = MIC(make([]byte, KCKLen), b) // must not panic either
			return
		}
		n := eapolHeaderLen + int(binary.BigEndian.Uint16(b[2:4]))
		if got := k.Marshal(); !bytes.Equal(got, b[:n]) {
			t.Fatalf("Marshal(ParseEAPOL(b)) = %x, want %x", got, b[:n])
		}
		if _, err := MIC(make([]byte, KCKLen), b); err != nil {
			t.Fatalf("MIC of a parsed frame: %v", err)
		}
		if _, err := ParseKeyData(k.KeyData); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("ParseKeyData: %v", err)
		}
	})
}

// FuzzParseKeyData: key data reaches ParseKeyData from message 2 (after its
// MIC) and from a supplicant's unwrap; it must not panic either way.
func FuzzParseKeyData(f *testing.F) {
	f.Add(unhex(f, captured.apRSNE))
	f.Add(padKeyData(append(unhex(f, captured.apRSNE), gtkKDE(testGTK, 1)...)))
	f.Add([]byte{0xdd, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		kd, err := ParseKeyData(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseKeyData: %v", err)
			}
			return
		}
		if kd.RSNE != nil && (kd.RSNE[0] != elemRSN || int(kd.RSNE[1]) != len(kd.RSNE)-2) {
			t.Fatalf("RSNE %x is not one element", kd.RSNE)
		}
		if kd.GTK != nil && (len(kd.GTK) < 5 || len(kd.GTK) > 32 || kd.GTKIndex > 3) {
			t.Fatalf("GTK %x index %d", kd.GTK, kd.GTKIndex)
		}
	})
}

// fuzzStage drives a fresh handshake with a well-behaved supplicant to
// stage%5: idle, wait-msg2, wait-msg4, done, wait-group-msg2.
func fuzzStage(t testing.TB, stage uint8) (*Handshake, *supplicant) {
	h, s := newTestHandshake(t), newSupplicant(t, testPMK)
	stage %= 5
	if stage == 0 {
		return h, s
	}
	m, err := h.Start()
	if err != nil {
		t.Fatal(err)
	}
	if stage == 1 {
		s.msg2(m) // the station knows the PTK, as a real one would
		return h, s
	}
	step, err := h.Handle(s.msg2(m))
	if err != nil {
		t.Fatal(err)
	}
	if stage == 2 {
		return h, s
	}
	if _, err := h.Handle(s.msg4(step.Send)); err != nil {
		t.Fatal(err)
	}
	if stage == 4 {
		if _, err := h.RekeyGroup(bytes.Repeat([]byte{0x77}, 16), 2); err != nil {
			t.Fatal(err)
		}
	}
	return h, s
}

// FuzzHandle feeds arbitrary frames to a Handshake in every state and
// checks, with the station's own keys and a MIC computed apart from the
// package, that nothing advances without a valid MIC.
func FuzzHandle(f *testing.F) {
	// Valid answers for each stage, for the fuzzer to mutate.
	_, s := fuzzStage(f, 1)
	f.Add(uint8(1), s.frame(0x010a, s.lastRC, s.snonce[:], testRSNE))
	h, s := fuzzStage(f, 2)
	f.Add(uint8(2), s.frame(0x030a, h.replay, nil, nil))
	h, s = fuzzStage(f, 4)
	f.Add(uint8(4), s.frame(0x0302, h.replay, nil, nil))
	f.Add(uint8(3), s.frame(0x0302, h.replay, nil, nil))
	f.Add(uint8(0), unhex(f, captured.msg2))
	f.Add(uint8(2), unhex(f, captured.msg4))

	f.Fuzz(func(t *testing.T, stage uint8, frame []byte) {
		h, s := fuzzStage(t, stage)
		before, anonce := h.State(), h.anonce
		step, err := h.Handle(frame)

		validUnder := func(kck []byte) bool {
			k, perr := ParseEAPOL(frame)
			if perr != nil {
				return false
			}
			n := keyHeaderLen + len(k.KeyData)
			return hmac.Equal(frame[micOffset:micOffset+MICLen], testMIC(kck, frame[:n]))
		}
		if step.Authorize || step.InstallPairwise {
			if before != StateWaitMsg4 || !validUnder(s.ptk.KCK[:]) {
				t.Fatalf("authorized in state %s by %x", before, frame)
			}
		}
		if step.GroupDone && (before != StateWaitGroup2 || !validUnder(s.ptk.KCK[:])) {
			t.Fatalf("group done in state %s by %x", before, frame)
		}
		if step.Send != nil && before == StateWaitMsg2 {
			k, _ := ParseEAPOL(frame)
			ptk, _ := DerivePTK(testPMK, testAA, testSPA, anonce[:], k.Nonce[:])
			if !validUnder(ptk.KCK[:]) {
				t.Fatalf("message 3 sent for %x", frame)
			}
		}
		if err != nil {
			if step.Send != nil || step.Authorize || step.InstallPairwise || step.GroupDone {
				t.Fatalf("error %v with step %+v", err, step)
			}
			if !step.Deauth && h.State() != before {
				t.Fatalf("dropped frame moved %s to %s", before, h.State())
			}
		}
	})
}
