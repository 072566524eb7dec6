package firmware

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

const board = "qemu-x86_64"

var (
	testTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	kernel   = []byte("tiny kernel\x00\x01\x02")
	rootfs   = []byte("070701 tiny rootfs")
	// sentinels are all the reasons an image can be rejected for.
	sentinels = []error{ErrTruncated, ErrBadMagic, ErrVersion, ErrManifest, ErrNotSigned, ErrHash, ErrWrongBoard, ErrTrailing}
)

// testKey is a fixed key, so that images and seed files are reproducible.
func testKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

func pub(priv ed25519.PrivateKey) []ed25519.PublicKey {
	return []ed25519.PublicKey{priv.Public().(ed25519.PublicKey)}
}

func sources(kernel, rootfs []byte) []Source {
	return []Source{
		{Name: "kernel", R: bytes.NewReader(kernel), Size: int64(len(kernel))},
		{Name: "rootfs", R: bytes.NewReader(rootfs), Size: int64(len(rootfs))},
	}
}

func buildImage(t testing.TB, b string, priv ed25519.PrivateKey) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Build(&buf, Meta{Board: b, Version: "1.2.3", BuildTime: testTime}, sources(kernel, rootfs), priv); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawImage signs an arbitrary manifest and appends data, to reach the
// checks behind the signature.
func rawImage(manifest string, data []byte, priv ed25519.PrivateKey) []byte {
	signed := append(header(len(manifest)), manifest...)
	img := append(signed, ed25519.Sign(priv, signed)...)
	return append(img, data...)
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// goodManifest is a valid manifest for kernel and rootfs, in compact form
// so that tests can edit it with strings.Replace.
func goodManifest() string {
	return fmt.Sprintf(`{"board":"qemu-x86_64","version":"1.2.3","build_time":"2026-01-02T03:04:05Z","parts":[`+
		`{"name":"kernel","offset":0,"size":%d,"sha256":"%s"},`+
		`{"name":"rootfs","offset":%d,"size":%d,"sha256":"%s"}]}`,
		len(kernel), sum(kernel), len(kernel), len(rootfs), sum(rootfs))
}

// boundedReader fails the test when asked for bytes past the size the
// reader was given: a reader must never trust a length it has not checked.
type boundedReader struct {
	t    testing.TB
	data []byte
}

func (r boundedReader) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(b)) > int64(len(r.data)) {
		r.t.Errorf("read of %d bytes at %d from an image of %d", len(b), off, len(r.data))
	}
	return bytes.NewReader(r.data).ReadAt(b, off)
}

func verify(t testing.TB, img []byte, keys []ed25519.PublicKey, b string) (*Manifest, error) {
	t.Helper()
	return Verify(boundedReader{t, img}, int64(len(img)), keys, b)
}

func TestRoundTrip(t *testing.T) {
	priv := testKey(1)
	var buf bytes.Buffer
	built, err := Build(&buf, Meta{Board: board, Version: "1.2.3", BuildTime: testTime.In(time.FixedZone("CET", 3600))}, sources(kernel, rootfs), priv)
	if err != nil {
		t.Fatal(err)
	}
	img := buf.Bytes()
	m, err := verify(t, img, pub(priv), board)
	if err != nil {
		t.Fatal(err)
	}
	if m.Board != board || m.Version != "1.2.3" || !m.BuildTime.Equal(testTime) || m.BuildTime.Location() != time.UTC {
		t.Errorf("manifest %+v", m)
	}
	want := []Part{
		{Name: "kernel", Offset: 0, Size: int64(len(kernel)), SHA256: sum(kernel)},
		{Name: "rootfs", Offset: int64(len(kernel)), Size: int64(len(rootfs)), SHA256: sum(rootfs)},
	}
	if fmt.Sprint(m.Parts) != fmt.Sprint(want) || fmt.Sprint(built.Parts) != fmt.Sprint(want) {
		t.Errorf("parts %v, Build says %v, want %v", m.Parts, built.Parts, want)
	}
	if m.DataOffset != built.DataOffset || m.ImageSize() != int64(len(img)) {
		t.Errorf("data offset %d, Build says %d; image size %d, file %d", m.DataOffset, built.DataOffset, m.ImageSize(), len(img))
	}
	if !bytes.HasPrefix(img[HeaderSize:], []byte("{\n")) {
		t.Errorf("manifest does not start the image after the header: %q", img[:32])
	}

	for name, content := range map[string][]byte{"kernel": kernel, "rootfs": rootfs} {
		var out bytes.Buffer
		if err := Extract(&out, bytes.NewReader(img), m, name); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), content) {
			t.Errorf("extracted %s %q, want %q", name, out.Bytes(), content)
		}
	}

	inspected, err := Inspect(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(inspected) != fmt.Sprint(m) {
		t.Errorf("Inspect %+v, Verify %+v", inspected, m)
	}

	// Any of several keys will do: devices carry the old and the new key
	// across a key rotation.
	keys := append(pub(testKey(2)), pub(priv)...)
	if _, err := verify(t, img, keys, board); err != nil {
		t.Errorf("with the right key second: %v", err)
	}
}

func TestReproducible(t *testing.T) {
	a := buildImage(t, board, testKey(1))
	b := buildImage(t, board, testKey(1))
	if !bytes.Equal(a, b) {
		t.Error("two builds of the same inputs differ")
	}
	// The inputs do matter, so the equality above is not vacuous.
	var c bytes.Buffer
	if _, err := Build(&c, Meta{Board: board, Version: "1.2.3", BuildTime: testTime.Add(time.Second)}, sources(kernel, rootfs), testKey(1)); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, c.Bytes()) {
		t.Error("a different build time gives the same image")
	}
}

// TestFlippedByte flips a byte in each region and checks the reason given.
func TestFlippedByte(t *testing.T) {
	priv := testKey(1)
	img := buildImage(t, board, priv)
	m, err := verify(t, img, pub(priv), board)
	if err != nil {
		t.Fatal(err)
	}
	data := int(m.DataOffset)
	rootfsAt := data + len(kernel)
	tests := []struct {
		region string
		off    int
		want   error
		text   string
	}{
		{"magic", 0, ErrBadMagic, `starts with "NPENMIFI"`},
		{"magic end", 7, ErrBadMagic, ""},
		{"version", 11, ErrVersion, "version 0"},
		{"version high byte", 8, ErrVersion, ""},
		{"manifest length high byte", 12, ErrManifest, "outside 1 to 65536"},
		{"manifest length low byte", 15, ErrNotSigned, "not signed by any of the 1 keys"},
		{"manifest first byte", HeaderSize, ErrNotSigned, ""},
		{"manifest middle", (HeaderSize + data - SignatureSize) / 2, ErrNotSigned, ""},
		{"manifest last byte", data - SignatureSize - 1, ErrNotSigned, ""},
		{"signature first byte", data - SignatureSize, ErrNotSigned, ""},
		{"signature last byte", data - 1, ErrNotSigned, ""},
		{"kernel first byte", data, ErrHash, "part kernel has SHA-256"},
		{"kernel last byte", rootfsAt - 1, ErrHash, "part kernel"},
		{"rootfs first byte", rootfsAt, ErrHash, "part rootfs"},
		{"rootfs last byte", len(img) - 1, ErrHash, "part rootfs"},
	}
	for _, tt := range tests {
		bad := bytes.Clone(img)
		bad[tt.off] ^= 1
		_, err := verify(t, bad, pub(priv), board)
		if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), tt.text) {
			t.Errorf("%s (byte %d) flipped: %v, want %v with %q", tt.region, tt.off, err, tt.want, tt.text)
		}
	}

	// And every bit of every byte, for the reason only: nothing in the
	// image is unchecked.
	for off := range img {
		for bit := range 8 {
			bad := bytes.Clone(img)
			bad[off] ^= 1 << bit
			if _, err := verify(t, bad, pub(priv), board); !isRejection(err) {
				t.Fatalf("byte %d bit %d flipped: %v", off, bit, err)
			}
		}
	}
}

func isRejection(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func TestCutImage(t *testing.T) {
	priv := testKey(1)
	img := buildImage(t, board, priv)
	m, err := verify(t, img, pub(priv), board)
	if err != nil {
		t.Fatal(err)
	}
	data := int(m.DataOffset)
	tests := []struct {
		cut  int // bytes kept
		need int // the length the reader knows it needs at that point
	}{
		{0, HeaderSize},
		{1, HeaderSize},
		{8, HeaderSize},
		{HeaderSize - 1, HeaderSize},
		{HeaderSize, data},
		{HeaderSize + 10, data},
		{data - SignatureSize, data},
		{data - 1, data},
		{data, len(img)},
		{data + 1, len(img)},
		{data + len(kernel), len(img)},
		{len(img) - 1, len(img)},
	}
	for _, tt := range tests {
		_, err := verify(t, img[:tt.cut], pub(priv), board)
		want := fmt.Sprintf("%d bytes missing (the file is %d bytes", tt.need-tt.cut, tt.cut)
		if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), want) {
			t.Errorf("cut to %d bytes: %v, want %v saying %q", tt.cut, err, ErrTruncated, want)
		}
		if _, err := Inspect(boundedReader{t, img[:tt.cut]}, int64(tt.cut)); !errors.Is(err, ErrTruncated) {
			t.Errorf("Inspect of the image cut to %d bytes: %v", tt.cut, err)
		}
	}

	long := append(bytes.Clone(img), 0)
	if _, err := verify(t, long, pub(priv), board); !errors.Is(err, ErrTrailing) || !strings.Contains(err.Error(), "1 bytes after the last part") {
		t.Errorf("one byte appended: %v, want %v", err, ErrTrailing)
	}

	// A ReaderAt shorter than the size it comes with is a read error, not
	// a panic or a pass.
	if _, err := Verify(bytes.NewReader(img[:len(img)-1]), int64(len(img)), pub(priv), board); err == nil || !strings.Contains(err.Error(), "part \"rootfs\"") {
		t.Errorf("reader shorter than its size: %v", err)
	}
}

func TestWrongKey(t *testing.T) {
	img := buildImage(t, board, testKey(1))
	_, err := verify(t, img, pub(testKey(2)), board)
	if !errors.Is(err, ErrNotSigned) {
		t.Errorf("wrong key: %v, want %v", err, ErrNotSigned)
	}
	// A malformed key is skipped, not a panic in ed25519.Verify.
	keys := []ed25519.PublicKey{make(ed25519.PublicKey, 31), nil}
	if _, err := verify(t, img, keys, board); !errors.Is(err, ErrNotSigned) || !strings.Contains(err.Error(), "any of the 2 keys") {
		t.Errorf("malformed keys: %v, want %v", err, ErrNotSigned)
	}
	if _, err := verify(t, img, nil, board); err == nil || isRejection(err) {
		t.Errorf("no keys: %v, want an error about the missing keys", err)
	}
}

func TestWrongBoard(t *testing.T) {
	priv := testKey(1)
	img := buildImage(t, "qemu-armv7", priv)
	_, err := verify(t, img, pub(priv), board)
	if !errors.Is(err, ErrWrongBoard) || err.Error() != "wrong board: the image is for board qemu-armv7, this is board qemu-x86_64" {
		t.Errorf("wrong board: %v", err)
	}
	if _, err := verify(t, img, pub(priv), ""); err == nil || isRejection(err) {
		t.Errorf("no board: %v, want an error about the missing board", err)
	}
}

func TestManifestLength(t *testing.T) {
	priv := testKey(1)
	img := buildImage(t, board, priv)
	for _, n := range []uint32{0, MaxManifestSize + 1, 1 << 31, 1<<32 - 1} {
		bad := bytes.Clone(img)
		copy(bad[12:16], header(int(n))[12:])
		_, err := verify(t, bad, pub(priv), board)
		if !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), fmt.Sprintf("manifest length %d is outside", n)) {
			t.Errorf("manifest length %d: %v, want %v", n, err, ErrManifest)
		}
	}
	// Within bounds but longer than the file: truncated, and nothing is
	// read beyond the file (boundedReader).
	bad := bytes.Clone(img)
	copy(bad[12:16], header(MaxManifestSize)[12:])
	if _, err := verify(t, bad, pub(priv), board); !errors.Is(err, ErrTruncated) {
		t.Errorf("manifest length %d in a %d-byte file: %v, want %v", MaxManifestSize, len(bad), err, ErrTruncated)
	}
}

// TestBadManifest checks the manifest parser behind a valid signature.
func TestBadManifest(t *testing.T) {
	priv := testKey(1)
	data := append(bytes.Clone(kernel), rootfs...)
	good := goodManifest()
	if _, err := verify(t, rawImage(good, data, priv), pub(priv), board); err != nil {
		t.Fatalf("the unedited manifest: %v", err)
	}
	k := len(kernel)
	tests := []struct {
		name, old, new, text string
	}{
		{"unknown field", `"board"`, `"extra":1,"board"`, `unknown field "extra"`},
		{"trailing object", `]}`, `]}{}`, "more data after the JSON object"},
		{"not an object", good, `[]`, "cannot unmarshal array"},
		{"null", good, `null`, "board"},
		{"not JSON", good, `{"board":`, "unexpected EOF"},
		{"not UTF-8", `1.2.3`, "1.2.\xff", "not UTF-8"},
		{"empty board", `"qemu-x86_64"`, `""`, "board"},
		{"board with a newline", `"qemu-x86_64"`, `"qemu\n"`, "board"},
		{"version with a space", `"1.2.3"`, `"1.2 3"`, "version"},
		{"no build time", `"build_time":"2026-01-02T03:04:05Z",`, ``, "build time is missing"},
		{"bad build time", `2026-01-02T03:04:05Z`, `yesterday`, "parsing time"},
		{"no kernel", `"kernel"`, `"dtb"`, `no "kernel" part`},
		{"duplicate part", `"kernel"`, `"rootfs"`, "appears twice"},
		{"part name", `"kernel"`, `"../kernel"`, "part name"},
		{"gap", fmt.Sprintf(`"offset":%d`, k), fmt.Sprintf(`"offset":%d`, k+1), "want " + fmt.Sprint(k)},
		{"overlap", fmt.Sprintf(`"offset":%d`, k), `"offset":0`, "want " + fmt.Sprint(k)},
		{"negative size", fmt.Sprintf(`"size":%d`, k), `"size":-1`, "size -1"},
		{"empty part", fmt.Sprintf(`"size":%d`, k), `"size":0`, "size 0"},
		{"huge size", fmt.Sprintf(`"size":%d`, len(rootfs)), `"size":9223372036854775807`, "larger than any file"},
		{"size not an integer", fmt.Sprintf(`"size":%d`, k), `"size":1e3`, "cannot unmarshal number"},
		{"uppercase hash", sum(kernel), strings.ToUpper(sum(kernel)), "not lowercase"},
		{"short hash", sum(kernel), sum(kernel)[:62], "62 digits"},
	}
	for _, tt := range tests {
		m := strings.Replace(good, tt.old, tt.new, 1)
		if m == good {
			t.Fatalf("%s: %q not in the manifest", tt.name, tt.old)
		}
		_, err := verify(t, rawImage(m, data, priv), pub(priv), board)
		if !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%s: %v, want %v with %q", tt.name, err, ErrManifest, tt.text)
		}
	}

	// Sizes that disagree with the file: checked before anything is read.
	m := strings.Replace(good, fmt.Sprintf(`"size":%d`, len(rootfs)), `"size":1000000000`, 1)
	if _, err := verify(t, rawImage(m, data, priv), pub(priv), board); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), fmt.Sprintf("%d bytes missing", 1000000000-len(rootfs))) {
		t.Errorf("rootfs size beyond the file: %v, want %v", err, ErrTruncated)
	}
}

func TestExtract(t *testing.T) {
	priv := testKey(1)
	img := buildImage(t, board, priv)
	m, err := verify(t, img, pub(priv), board)
	if err != nil {
		t.Fatal(err)
	}
	if err := Extract(io.Discard, bytes.NewReader(img), m, "dtb"); err == nil || !strings.Contains(err.Error(), `no part "dtb"`) {
		t.Errorf("unknown part: %v", err)
	}
	// The file changes after it was verified: Extract notices.
	img[len(img)-1] ^= 1
	if err := Extract(io.Discard, bytes.NewReader(img), m, "rootfs"); !errors.Is(err, ErrHash) {
		t.Errorf("rootfs changed after verification: %v, want %v", err, ErrHash)
	}
	if err := Extract(io.Discard, bytes.NewReader(img), &Manifest{Parts: m.Parts}, "kernel"); err == nil {
		t.Error("manifest without a data offset accepted")
	}
}

func TestBuildRefuses(t *testing.T) {
	priv := testKey(1)
	meta := Meta{Board: board, Version: "1.2.3", BuildTime: testTime}
	inconsistent := bytes.Clone(priv)
	inconsistent[63] ^= 1
	short := sources(kernel, rootfs)
	short[1].Size++
	tests := []struct {
		name  string
		meta  Meta
		parts []Source
		priv  ed25519.PrivateKey
		text  string
	}{
		{"no board", Meta{Version: "1", BuildTime: testTime}, sources(kernel, rootfs), priv, "board"},
		{"no build time", Meta{Board: board, Version: "1"}, sources(kernel, rootfs), priv, "build time"},
		{"no rootfs", meta, sources(kernel, rootfs)[:1], priv, `no "rootfs" part`},
		{"empty kernel", meta, sources(nil, rootfs), priv, "size 0"},
		{"short source", meta, short, priv, "read 18 bytes, want 19"},
		{"short key", meta, sources(kernel, rootfs), priv[:32], "private key is 32 bytes"},
		{"inconsistent key", meta, sources(kernel, rootfs), inconsistent, "inconsistent"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		_, err := Build(&buf, tt.meta, tt.parts, tt.priv)
		if err == nil || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.text)
		}
	}
}
