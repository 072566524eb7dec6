package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fixture is a directory with a kernel, a root filesystem and a key pair:
// the private key in opsign's format and the public key both as a file
// and in a directory of keys.
type fixture struct {
	dir, kernel, rootfs, key, pub, keyDir string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	fx := fixture{
		dir:    dir,
		kernel: filepath.Join(dir, "vmlinuz"),
		rootfs: filepath.Join(dir, "rootfs.cpio"),
		key:    filepath.Join(dir, "image.key"),
		pub:    filepath.Join(dir, "image.pub"),
		keyDir: filepath.Join(dir, "keys"),
	}
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	pubText := "# image key\n" + base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)) + "\n"
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize))
	files := map[string]string{
		fx.kernel:                             "kernel bytes",
		fx.rootfs:                             "rootfs bytes, a few more",
		fx.key:                                base64.StdEncoding.EncodeToString(priv) + "\n",
		fx.pub:                                pubText,
		filepath.Join(dir, "other.pub"):       base64.StdEncoding.EncodeToString(other.Public().(ed25519.PublicKey)) + "\n",
		filepath.Join(fx.keyDir, "a-old.pub"): base64.StdEncoding.EncodeToString(other.Public().(ed25519.PublicKey)) + "\n",
		filepath.Join(fx.keyDir, "b-current.pub"): pubText,
		filepath.Join(fx.keyDir, "README"):        "not a key",
	}
	if err := os.Mkdir(fx.keyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return fx
}

// fwimage runs the command with SOURCE_DATE_EPOCH set to epoch ("" for
// unset) and returns its exit status and output.
func fwimage(t *testing.T, epoch string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(name string) string {
		if name == "SOURCE_DATE_EPOCH" {
			return epoch
		}
		return ""
	}
	code := run(env{getenv: getenv, stdout: &stdout, stderr: &stderr}, args)
	return code, stdout.String(), stderr.String()
}

func (fx fixture) build(t *testing.T, out string, extra ...string) {
	t.Helper()
	args := append([]string{"build", "-board", "qemu-x86_64", "-kernel", fx.kernel, "-rootfs", fx.rootfs,
		"-key", fx.key, "-version", "0.1.0", "-out", out}, extra...)
	if code, _, stderr := fwimage(t, "1767323045", args...); code != 0 {
		t.Fatalf("build exit %d: %s", code, stderr)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildVerifyExtract(t *testing.T) {
	fx := newFixture(t)
	img := filepath.Join(fx.dir, "a.img")
	code, stdout, stderr := fwimage(t, "1767323045", "build", "-board", "qemu-x86_64", "-kernel", fx.kernel,
		"-rootfs", fx.rootfs, "-key", fx.key, "-version", "0.1.0", "-out", img)
	if code != 0 {
		t.Fatalf("build exit %d: %s", code, stderr)
	}
	size := len(readFile(t, img))
	for _, want := range []string{
		"board qemu-x86_64, version 0.1.0, built 2026-01-02T03:04:05Z",
		"kernel ", " 12 ", "rootfs ", " 24 ", "total ", " " + strconv.Itoa(size) + " ",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("build report lacks %q:\n%s", want, stdout)
		}
	}

	for _, keys := range []string{fx.pub, fx.keyDir} {
		code, stdout, stderr := fwimage(t, "", "verify", "-keys", keys, "-board", "qemu-x86_64", img)
		if code != 0 || !strings.Contains(stdout, "ok: board qemu-x86_64, version 0.1.0") {
			t.Errorf("verify -keys %s: exit %d, %q, %q", keys, code, stdout, stderr)
		}
	}

	code, stdout, stderr = fwimage(t, "", "info", img)
	if code != 0 || !strings.Contains(stdout, "signature not checked") || !strings.Contains(stdout, "sha256 ") {
		t.Errorf("info: exit %d, %q, %q", code, stdout, stderr)
	}

	out := filepath.Join(fx.dir, "rootfs.out")
	if code, _, stderr := fwimage(t, "", "extract", "-keys", fx.pub, "-board", "qemu-x86_64", "-part", "rootfs", img, out); code != 0 || stderr != "" {
		t.Fatalf("extract: exit %d, %q", code, stderr)
	}
	if !bytes.Equal(readFile(t, out), readFile(t, fx.rootfs)) {
		t.Error("extracted rootfs differs from the input")
	}
	out = filepath.Join(fx.dir, "kernel.out")
	code, _, stderr = fwimage(t, "", "extract", "-part", "kernel", img, out)
	if code != 0 || !strings.Contains(stderr, "signature not checked") {
		t.Errorf("extract without keys: exit %d, %q", code, stderr)
	}
	if !bytes.Equal(readFile(t, out), readFile(t, fx.kernel)) {
		t.Error("extracted kernel differs from the input")
	}
	if code, _, stderr := fwimage(t, "", "extract", "-part", "dtb", img, out); code != 1 || !strings.Contains(stderr, `no part "dtb"`) {
		t.Errorf("extract of a missing part: exit %d, %q", code, stderr)
	}
}

func TestReproducible(t *testing.T) {
	fx := newFixture(t)
	a, b, c := filepath.Join(fx.dir, "a.img"), filepath.Join(fx.dir, "b.img"), filepath.Join(fx.dir, "c.img")
	fx.build(t, a)
	fx.build(t, b)
	// -time wins over SOURCE_DATE_EPOCH, and RFC 3339 names the same time.
	fx.build(t, c, "-time", "2026-01-02T04:04:05+01:00")
	if !bytes.Equal(readFile(t, a), readFile(t, b)) || !bytes.Equal(readFile(t, a), readFile(t, c)) {
		t.Error("builds of the same inputs differ")
	}
}

func TestBuildTime(t *testing.T) {
	fx := newFixture(t)
	args := []string{"build", "-board", "qemu-x86_64", "-kernel", fx.kernel, "-rootfs", fx.rootfs,
		"-key", fx.key, "-version", "0.1.0", "-out", filepath.Join(fx.dir, "x.img")}
	tests := []struct {
		epoch string
		extra []string
		text  string
	}{
		{"", nil, "no build time"},
		{"yesterday", nil, `SOURCE_DATE_EPOCH "yesterday"`},
		{"", []string{"-time", "2026-01-02"}, `-time "2026-01-02"`},
	}
	for _, tt := range tests {
		code, _, stderr := fwimage(t, tt.epoch, append(args, tt.extra...)...)
		if code != 1 || !strings.Contains(stderr, tt.text) {
			t.Errorf("SOURCE_DATE_EPOCH=%q %v: exit %d, %q, want %q", tt.epoch, tt.extra, code, stderr, tt.text)
		}
	}
	if _, err := os.Stat(filepath.Join(fx.dir, "x.img")); err == nil {
		t.Error("image written without a build time")
	}
}

func TestVerifyRejects(t *testing.T) {
	fx := newFixture(t)
	img := filepath.Join(fx.dir, "a.img")
	fx.build(t, img)
	good := readFile(t, img)
	bad := func(name string, data []byte) string {
		path := filepath.Join(fx.dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 0x80
	tests := []struct {
		name, keys, board, image, text string
	}{
		{"flipped byte", fx.pub, "qemu-x86_64", bad("flipped.img", flipped), "hash mismatch: part rootfs"},
		{"cut image", fx.pub, "qemu-x86_64", bad("cut.img", good[:10]), "truncated image: 6 bytes missing"},
		{"wrong key", filepath.Join(fx.dir, "other.pub"), "qemu-x86_64", img, "bad signature"},
		{"wrong board", fx.pub, "qemu-armv7", img, "wrong board: the image is for board qemu-x86_64, this is board qemu-armv7"},
		{"no image", fx.pub, "qemu-x86_64", filepath.Join(fx.dir, "none.img"), "no such file"},
		{"no keys", filepath.Join(fx.dir, "none.pub"), "qemu-x86_64", img, "no such file"},
		{"empty key directory", t.TempDir(), "qemu-x86_64", img, "no keys in"},
	}
	for _, tt := range tests {
		code, stdout, stderr := fwimage(t, "", "verify", "-keys", tt.keys, "-board", tt.board, tt.image)
		if code != 1 || stdout != "" || !strings.Contains(stderr, tt.text) {
			t.Errorf("%s: exit %d, %q, %q, want exit 1 with %q", tt.name, code, stdout, stderr, tt.text)
		}
		// extract refuses the same images and leaves no file behind.
		out := filepath.Join(fx.dir, "out")
		if code, _, _ := fwimage(t, "", "extract", "-keys", tt.keys, "-board", tt.board, "-part", "kernel", tt.image, out); code != 1 {
			t.Errorf("%s: extract exit %d, want 1", tt.name, code)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: extract wrote a file", tt.name)
		}
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"flash"},
		{"verify", "-board", "qemu-x86_64", "x.img"},
		{"verify", "-keys", "k.pub", "x.img"},
		{"extract", "-board", "qemu-x86_64", "-part", "kernel", "x.img", "out"},
		{"extract", "x.img", "out"},
		{"info"},
		{"build", "-board", "qemu-x86_64"},
	} {
		if code, _, stderr := fwimage(t, "1", args...); code != 2 || !strings.Contains(stderr, "usage:") {
			t.Errorf("%q: exit %d, %q, want 2 and the usage", args, code, stderr)
		}
	}
}
