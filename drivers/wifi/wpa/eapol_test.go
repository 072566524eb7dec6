package wpa

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseEAPOLRoundTrip(t *testing.T) {
	for name, s := range map[string]string{"1": captured.msg1, "2": captured.msg2, "3": captured.msg3, "4": captured.msg4} {
		b := unhex(t, s)
		k, err := ParseEAPOL(b)
		if err != nil {
			t.Fatalf("message %s: %v", name, err)
		}
		if got := k.Marshal(); !bytes.Equal(got, b) {
			t.Errorf("message %s: Marshal(Parse(b)) = %x, want %x", name, got, b)
		}
		// Ethernet padding after the EAPOL body is not part of it.
		k2, err := ParseEAPOL(append(bytes.Clone(b), 0, 0, 0))
		if err != nil || !bytes.Equal(k2.Marshal(), b) {
			t.Errorf("message %s with trailing padding: %v", name, err)
		}
	}
	k, _ := ParseEAPOL(unhex(t, captured.msg3))
	want := DescriptorVersionAESSHA1 | InfoPairwise | InfoInstall | InfoAck | InfoMIC | InfoSecure | InfoEncryptedData
	if k.Info != want || k.Info.Version() != 2 || k.KeyLength != 16 || k.ReplayCounter != 1 || len(k.KeyData) != 56 {
		t.Errorf("message 3 fields: %+v", k)
	}
}

func TestParseEAPOLRejects(t *testing.T) {
	good := unhex(t, captured.msg2)
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := map[string][]byte{
		"empty":             {},
		"3 bytes":           good[:3],
		"header only":       good[:4],
		"version 0":         mod(func(b []byte) []byte { b[0] = 0; return b }),
		"version 4":         mod(func(b []byte) []byte { b[0] = 4; return b }),
		"EAP packet":        mod(func(b []byte) []byte { b[1] = 0; return b }),
		"EAPOL-Start":       {2, 1, 0, 0},
		"body beyond frame": good[:len(good)-1],
		"short body":        mod(func(b []byte) []byte { b[2], b[3] = 0, 94; return b[:98] }),
		"WPA1 descriptor":   mod(func(b []byte) []byte { b[4] = 254; return b }),
		"key data len +1":   mod(func(b []byte) []byte { b[98]++; return b }),
		"key data len -1":   mod(func(b []byte) []byte { b[98]--; return b }),
		"key data len huge": mod(func(b []byte) []byte { b[97] = 0xff; return b }),
		"body len 0xffff":   mod(func(b []byte) []byte { b[2], b[3] = 0xff, 0xff; return b }),
	}
	for name, b := range cases {
		if k, err := ParseEAPOL(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ParseEAPOL = %+v, %v; want ErrMalformed", name, k, err)
		}
	}
}

func TestParseKeyData(t *testing.T) {
	rsne := unhex(t, captured.apRSNE)
	gtk := bytes.Repeat([]byte{0x5a}, 16)
	data := append(bytes.Clone(rsne), gtkKDE(gtk, 2)...)
	other := []byte{0xdd, 0x05, 0x00, 0x0f, 0xac, 0x07, 0x00} // another KDE, skipped
	for name, b := range map[string][]byte{
		"plain":       data,
		"padded":      padKeyData(bytes.Clone(data)),
		"other KDE":   append(bytes.Clone(other), data...),
		"vendor elem": append([]byte{0xdd, 0x03, 1, 2, 3}, data...),
	} {
		kd, err := ParseKeyData(b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(kd.RSNE, rsne) || !bytes.Equal(kd.GTK, gtk) || kd.GTKIndex != 2 || kd.GTKTx {
			t.Errorf("%s: %+v", name, kd)
		}
	}
	for name, b := range map[string][]byte{
		"truncated RSNE":      rsne[:len(rsne)-1],
		"lone type":           {0x30},
		"truncated KDE":       data[:len(data)-1],
		"two RSNEs":           append(bytes.Clone(rsne), rsne...),
		"two GTKs":            append(gtkKDE(gtk, 1), gtkKDE(gtk, 2)...),
		"short GTK KDE":       {0xdd, 0x07, 0x00, 0x0f, 0xac, 0x01, 0x01, 0x00, 0x01},
		"data after padding":  {0xdd, 0x00, 0x00, 0x01},
		"garbage after a pad": append(padKeyData(bytes.Clone(rsne)), 0x30),
	} {
		if kd, err := ParseKeyData(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ParseKeyData = %+v, %v; want ErrMalformed", name, kd, err)
		}
	}
}

func TestPadKeyData(t *testing.T) {
	for n := 0; n < 40; n++ {
		b := padKeyData(bytes.Repeat([]byte{1}, n))
		if len(b)%8 != 0 || len(b) < 16 || len(b) < n {
			t.Fatalf("pad %d bytes: got %d", n, len(b))
		}
		if len(b) > n && (b[n] != 0xdd || !bytes.Equal(b[n+1:], make([]byte, len(b)-n-1))) {
			t.Errorf("pad %d bytes: padding %x", n, b[n:])
		}
		if n >= 16 && n%8 == 0 && len(b) != n {
			t.Errorf("pad %d bytes: padded although aligned", n)
		}
	}
}
